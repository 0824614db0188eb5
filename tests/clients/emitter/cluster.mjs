// A Node socket.io server with the Node adapter of one kind beside one Rust server, and
// socket.io-client sockets on both, driven by JSON commands on stdin (one per line); answers
// are JSON lines on stdout. See tests/emitter_support/mod.rs.
// Usage: node cluster.mjs <rust url> <adapter kind> <adapter args...>
//   redis <redis url> <key>: @socket.io/redis-adapter (classic pub/sub)
//   postgres <postgres url> <channel prefix> <table>: @socket.io/postgres-adapter
//   redis-streams <redis url> <stream and channel prefix>: @socket.io/redis-streams-adapter
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { toNode, fromNode, apply } from './util.mjs';

const [rust, kind, ...adapterArgs] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function adapter() {
  switch (kind) {
    case 'redis': {
      const [redisUrl, key] = adapterArgs;
      const { createClient } = await import('redis');
      const { createAdapter } = await import('@socket.io/redis-adapter');
      const pub = createClient({ url: redisUrl });
      const sub = pub.duplicate();
      await Promise.all([pub.connect(), sub.connect()]);
      return createAdapter(pub, sub, { key, requestsTimeout: 3000 });
    }
    case 'postgres': {
      const [pgUrl, channelPrefix, tableName] = adapterArgs;
      const { default: pg } = await import('pg');
      const { createAdapter } = await import('@socket.io/postgres-adapter');
      // Two connections: one LISTENs, the other runs every query in order. With more, Node's
      // adapter reorders a sender's messages (attachment reads and publishes race on separate
      // connections), and the fences of tests/emitter_support would not fence anything.
      const pool = new pg.Pool({ connectionString: pgUrl, max: 2 });
      pool.on('error', () => {});
      return createAdapter(pool, { channelPrefix, tableName, heartbeatInterval: 500, heartbeatTimeout: 2000 });
    }
    case 'redis-streams': {
      const [redisUrl, name] = adapterArgs;
      const { createClient } = await import('redis');
      const { createAdapter } = await import('@socket.io/redis-streams-adapter');
      const client = createClient({ url: redisUrl });
      await client.connect();
      return createAdapter(client, { streamName: name, channelPrefix: name });
    }
    default: throw new Error('unknown adapter kind ' + kind);
  }
}

const http = createServer();
const io = new Server(http, { adapter: await adapter() });
const serverEvents = [];
for (const nsp of ['/', '/chat']) {
  io.of(nsp).on('connection', (socket) => {
    socket.on('join', (room, cb) => { socket.join(room); cb(true); });
  });
  for (const ev of ['hello', 'job']) {
    io.of(nsp).on(ev, (...args) => serverEvents.push([nsp, ev, ...fromNode(args)]));
  }
}
await new Promise((r) => http.listen(0, '127.0.0.1', r));
const node = `http://127.0.0.1:${http.address().port}`;

// name, server, namespace, transport, rooms
const specs = [
  ['a', rust, '/', 'websocket', ['r1']],
  ['b', rust, '/', 'polling', ['r1', 'r2']],
  ['c', node, '/', 'websocket', ['r1']],
  ['d', node, '/', 'polling', ['r1', 'r2']],
  ['e', rust, '/', 'websocket', []],
  ['f', node, '/', 'websocket', []],
  ['g', rust, '/', 'polling', []],
  ['h', node, '/', 'polling', []],
  ['a_chat', rust, '/chat', 'websocket', ['r1']],
  ['c_chat', node, '/chat', 'websocket', ['r1']],
];
const received = {};
const clients = {};
const open = ([name, url, nsp, transport, rooms]) => new Promise((resolve, reject) => {
  const s = connect(url + nsp, { transports: [transport], forceNew: true, reconnection: false });
  received[name] = [];
  s.onAny((ev, ...args) => received[name].push([ev, ...fromNode(args)]));
  s.on('disconnect', (reason) => received[name].push(['disconnect', reason]));
  s.on('connect', async () => {
    clients[name] = s;
    for (const r of rooms) await s.timeout(3000).emitWithAck('join', r);
    resolve();
  });
  s.on('connect_error', reject);
});
for (const spec of specs) await open(spec);
out({ ready: true, ids: Object.fromEntries(Object.entries(clients).map(([k, s]) => [k, s.id])) });

// Resolves when every named client has an event (or disconnect) called `event`.
const waitFor = async (names, event) => {
  const deadline = Date.now() + 10000;
  while (!names.every((n) => received[n].some((e) => e[0] === event))) {
    if (Date.now() > deadline) throw new Error(`no ${event} for ${names.filter((n) => !received[n].some((e) => e[0] === event))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const take = () => {
  const r = {};
  for (const k of Object.keys(received)) { r[k] = received[k]; received[k] = []; }
  return r;
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const cmd = JSON.parse(line);
  try {
    switch (cmd.cmd) {
      case 'node': apply(io, toNode(cmd.call)); out({ done: 'node' }); break;
      case 'wait': await waitFor(cmd.clients, cmd.event); out({ received: take() }); break;
      case 'fetch': {
        const sockets = await io.of(cmd.nsp).fetchSockets();
        out({ sockets: Object.fromEntries(sockets.map((s) => [s.id, [...s.rooms].sort()])) });
        break;
      }
      case 'server-events': {
        const deadline = Date.now() + 10000;
        while (serverEvents.length < cmd.count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        out({ events: serverEvents.splice(0) });
        break;
      }
      case 'exit': process.exit(0);
      default: out({ error: 'unknown ' + cmd.cmd });
    }
  } catch (e) {
    out({ error: String(e && e.message || e), cmd: cmd.cmd, received });
  }
}
