// Captures what @socket.io/postgres-adapter 0.5 and @socket.io/postgres-emitter 0.1 put on
// the wire: two Node servers with the adapter, one client, an emitter, and a LISTEN on the
// namespace's channel; every operation in turn, then the rows of the attachments table.
// Run with node_modules beside it: ln -s <repo>/tests/clients/node_modules docs/postgres-protocol-scripts/
// (ES modules resolve next to the script), then node docs/postgres-protocol-scripts/capture.mjs.
// DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/test. Output: sample-output.txt.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import pg from 'pg';
import { createAdapter } from '@socket.io/postgres-adapter';
import { Emitter } from '@socket.io/postgres-emitter';

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const prefix = 'cap' + process.pid;
const table = 'cap_att_' + process.pid;
const pool = new pg.Pool({ connectionString: url });
await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`);
const listener = new pg.Client({ connectionString: url });
await listener.connect();
listener.on('notification', (m) => console.log('NOTIFY', m.channel, m.payload));
await listener.query(`LISTEN "${prefix}#/"`);

async function node(name) {
  const http = createServer();
  const io = new Server(http, {
    adapter: createAdapter(pool, { channelPrefix: prefix, tableName: table, heartbeatInterval: 1000 }),
  });
  io.on('connection', (s) => {
    s.data = { name };
    s.join('r1');
    s.onAny((...a) => { const cb = a[a.length - 1]; if (typeof cb === 'function') cb('ack ' + name); });
  });
  io.on('sse', (a, cb) => cb && cb('sse answer ' + name));
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  return { io, url: `http://127.0.0.1:${http.address().port}` };
}
const A = await node('A');
const B = await node('B');
const c = connect(B.url, { transports: ['websocket'] });
c.onAny((...a) => {
  const cb = a[a.length - 1];
  if (typeof cb === 'function') cb('client ack');
  console.log('CLIENT', JSON.stringify(a.map((x) => (Buffer.isBuffer(x) ? 'bin' + x.length : x))).slice(0, 100));
});
await new Promise((r) => c.on('connect', r));
await new Promise((r) => setTimeout(r, 1500));
const step = async (label, f) => { console.log('---', label); await f(); await new Promise((r) => setTimeout(r, 400)); };
await step('emit', () => A.io.emit('ev', 1, 'a', { x: null }));
await step('to r1 except r2', () => A.io.to('r1').except('r2').emit('ev2', 2));
await step('binary', () => A.io.emit('bin', Buffer.from([1, 2, 3]), 'x'));
await step('big', () => A.io.emit('big', 'x'.repeat(9000)));
await step('ack', async () => console.log('ACKS', await A.io.timeout(1000).emitWithAck('ask2', 'q')));
await step('fetch', async () => console.log('FETCH', (await A.io.fetchSockets()).length));
await step('join', () => A.io.in('r1').socketsJoin(['r3']));
await step('leave', () => A.io.in('r1').socketsLeave('r3'));
await step('sse', () => A.io.serverSideEmit('sse', 1));
await step('sse ack', async () => console.log('SSE', await A.io.serverSideEmitWithAck('sse', 2)));
await step('disconnect', () => A.io.in('nothere').disconnectSockets(true));
const em = new Emitter(pool, '/', { channelPrefix: prefix, tableName: table });
await step('emitter', () => em.to('r1').emit('fromem', 1));
await step('emitter bin', () => em.emit('fromem', Buffer.from([5])));
await step('emitter join', () => em.socketsJoin('r9'));
await step('emitter sse', () => em.serverSideEmit('sse', 3));
const rows = await pool.query(`SELECT id, created_at, encode(payload,'hex') h FROM ${table}`);
for (const r of rows.rows) console.log('ROW', r.id, typeof r.id, r.h.slice(0, 400));
await pool.query(`DROP TABLE ${table}`);
process.exit(0);
