// A Node socket.io server with @socket.io/postgres-adapter beside our Rust servers, a
// @socket.io/postgres-emitter, and socket.io-client sockets on every server, driven by
// JSON commands on stdin (one per line); answers are JSON lines on stdout.
// Usage: node cluster.mjs <postgres url> <channel prefix> <table> <rust url 1> <rust url 2>
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import pg from 'pg';
import { createAdapter } from '@socket.io/postgres-adapter';
import { Emitter } from '@socket.io/postgres-emitter';

const [pgUrl, channelPrefix, tableName, rust1, rust2] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const pool = new pg.Pool({ connectionString: pgUrl, application_name: 'tsio-test-node' });
pool.on('error', () => {});
const emitter = new Emitter(pool, '/', { channelPrefix, tableName });

const http = createServer();
const io = new Server(http, {
  adapter: createAdapter(pool, {
    channelPrefix,
    tableName,
    heartbeatInterval: 500,
    heartbeatTimeout: 2000,
  }),
});
const serverEvents = [];
io.on('connection', (socket) => {
  socket.data = { name: socket.handshake.auth.name, server: 'node' };
  socket.on('join', (room, cb) => { socket.join(room); cb && cb(true); });
  socket.on('bcast', (ev, arg) => socket.broadcast.emit(ev, arg));
});
io.on('ping-servers', (arg, cb) => cb && cb('pong from node: ' + arg));
io.on('note', (...args) => serverEvents.push(args));
await new Promise((r) => http.listen(0, '127.0.0.1', r));
const nodeUrl = `http://127.0.0.1:${http.address().port}`;

// Clients: a1 on rust 1, b1 on rust 2, c1 on node; each records every event.
const received = {};
const clients = {};
const show = (a) => (Buffer.isBuffer(a) ? { bin: [...a] } : typeof a === 'string' && a.length > 100 ? { long: a.length, head: a.slice(0, 10) } : a);
const open = (name, url, transport) => new Promise((resolve, reject) => {
  const s = connect(url, { transports: [transport], auth: { name }, forceNew: true, reconnection: false });
  received[name] = [];
  s.onAny((ev, ...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    received[name].push([ev, ...args.map(show)]);
    if (cb) cb(`ack from ${name}`);
  });
  s.on('disconnect', (reason) => received[name].push(['#disconnect', reason]));
  s.on('connect', () => { clients[name] = s; resolve(s); });
  s.on('connect_error', reject);
});
await open('a1', rust1, 'websocket');
await open('b1', rust2, 'polling');
await open('c1', nodeUrl, 'websocket');
await Promise.all(Object.values(clients).map((s) => s.timeout(3000).emitWithAck('join', 'r1')));
await clients.b1.timeout(3000).emitWithAck('join', 'r2');
out({ ready: true, nodeUrl, ids: Object.fromEntries(Object.entries(clients).map(([k, s]) => [k, s.id])) });

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const cmd = JSON.parse(line);
  try {
    switch (cmd.cmd) {
      case 'node-count': out({ count: await io.of('/').adapter.serverCount() }); continue;
      case 'node-emit': io.emit(cmd.ev || 'from-node', cmd.arg ?? 'all'); break;
      case 'node-to-r2': io.to('r2').emit('from-node-r2', 'r2'); break;
      case 'node-except-r2': io.except('r2').emit('from-node-except', 'x'); break;
      case 'node-binary': io.emit('from-node-bin', Buffer.from([7, 8, 9])); break;
      case 'node-big': io.emit('from-node-big', 'n'.repeat(9000)); break;
      case 'node-fetch': {
        const sockets = await io.fetchSockets();
        out({ fetched: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })).sort((a, b) => a.id.localeCompare(b.id)) });
        continue;
      }
      case 'node-acks': {
        const acks = await io.timeout(3000).emitWithAck('ask', 'q');
        out({ acks: acks.sort() });
        continue;
      }
      case 'node-server-side': {
        const answers = await io.serverSideEmitWithAck('ping-servers', 'hi');
        out({ answers: answers.sort() });
        continue;
      }
      case 'node-note': io.serverSideEmit('note', 'from node', 1); break;
      case 'server-events': out({ serverEvents }); continue;
      case 'node-join-r3': io.in('r1').socketsJoin('r3'); break;
      case 'node-leave-r3': io.in('r2').socketsLeave('r3'); break;
      case 'node-to-r3': io.to('r3').emit('in-r3', 'yes'); break;
      case 'node-disconnect': io.in(cmd.room).disconnectSockets(); break;
      case 'emitter-all': emitter.emit('from-emitter', 'all'); break;
      case 'emitter-r2': emitter.to('r2').emit('from-emitter-r2', 'r2'); break;
      case 'emitter-binary': emitter.emit('from-emitter-bin', Buffer.from([4, 5])); break;
      case 'emitter-big': emitter.emit('from-emitter-big', 'e'.repeat(9000)); break;
      case 'emitter-join': emitter.in(cmd.room).socketsJoin(cmd.join); break;
      case 'emitter-note': emitter.serverSideEmit('note', 'from emitter'); break;
      case 'garbage': {
        // What no peer should send: each must be logged and skipped, nothing else.
        const channel = `${channelPrefix}#/`;
        const bad = await pool.query(`INSERT INTO ${tableName} (payload) VALUES ($1) RETURNING id`, [Buffer.from([0xc1, 0x00])]);
        for (const payload of [
          'not json',
          '[1,2]',
          '{"uid":"x","type":3,"attachmentId":"999999999"}',
          `{"uid":"x","type":3,"attachmentId":"${bad.rows[0].id}"}`,
          '{"uid":"x","type":3,"data":{"packet":{"type":2,"data":[]}},"nsp":"/"}',
          '{"uid":"x","type":3,"nsp":"/"}',
        ]) {
          await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
        }
        break;
      }
      case 'rows': {
        const r = await pool.query(`SELECT count(*)::int AS n FROM ${tableName}`);
        out({ rows: r.rows[0].n });
        continue;
      }
      case 'client-broadcast': clients[cmd.from].emit('bcast', 'from-client', cmd.from); break;
      case 'connected': out({ connected: Object.fromEntries(Object.entries(clients).map(([k, s]) => [k, s.connected])) }); continue;
      case 'report': out({ received }); continue;
      case 'clear': for (const k of Object.keys(received)) received[k] = []; break;
      case 'exit': process.exit(0);
      default: out({ error: 'unknown ' + cmd.cmd }); continue;
    }
    out({ done: cmd.cmd });
  } catch (e) {
    out({ error: String(e && e.message || e), cmd: cmd.cmd });
  }
}
