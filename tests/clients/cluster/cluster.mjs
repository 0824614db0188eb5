// A Node socket.io server with @socket.io/redis-adapter beside our Rust servers, plus
// clients on every server, driven by JSON commands on stdin (one per line); answers are
// JSON lines on stdout.
// Usage: node cluster.mjs <redis url> <key> <rust url 1> <rust url 2>
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { createAdapter } from '@socket.io/redis-adapter';
import { Emitter } from '@socket.io/redis-emitter';

const [redisUrl, key, rust1, rust2] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
const emitterClient = pub.duplicate();
await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);
const emitter = new Emitter(emitterClient, { key });

const http = createServer();
const io = new Server(http, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 3000 }) });
io.on('connection', (socket) => {
  socket.data = { name: socket.handshake.auth.name, server: 'node' };
  socket.on('join', (room, cb) => { socket.join(room); cb && cb(true); });
  socket.on('bcast', (ev, arg) => socket.broadcast.emit(ev, arg));
});
io.on('ping-servers', (arg, cb) => cb && cb('pong from node: ' + arg));
await new Promise((r) => http.listen(0, '127.0.0.1', r));
const nodeUrl = `http://127.0.0.1:${http.address().port}`;

// Clients: a1 on rust 1, b1 on rust 2, c1 on node; each records every event.
const received = {};
const clients = {};
const open = (name, url, transport) => new Promise((resolve, reject) => {
  const s = connect(url, { transports: [transport], auth: { name }, forceNew: true });
  received[name] = [];
  s.onAny((ev, ...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    received[name].push([ev, ...args.map((a) => (Buffer.isBuffer(a) ? { bin: [...a] } : a))]);
    if (cb) cb(`ack from ${name}`);
  });
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
      case 'node-emit': io.emit('from-node', 'all'); break;
      case 'node-to-r2': io.to('r2').emit('from-node-r2', 'r2'); break;
      case 'node-except-r2': io.except('r2').emit('from-node-except', 'x'); break;
      case 'node-binary': io.emit('from-node-bin', Buffer.from([7, 8, 9])); break;
      case 'node-fetch': {
        const sockets = await io.fetchSockets();
        out({ fetched: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })).sort((a, b) => a.id.localeCompare(b.id)) });
        continue;
      }
      case 'node-acks': {
        const acks = await io.timeout(2000).emitWithAck('ask', 'q');
        out({ acks: acks.sort() });
        continue;
      }
      case 'node-server-side': {
        const answers = await io.serverSideEmitWithAck('ping-servers', 'hi');
        out({ answers: answers.sort() });
        continue;
      }
      case 'node-join-r3': io.in('r1').socketsJoin('r3'); break;
      case 'node-to-r3': io.to('r3').emit('in-r3', 'yes'); break;
      case 'node-rooms': {
        out({ rooms: [...(await io.of('/').adapter.allRooms())].sort() });
        continue;
      }
      case 'emitter-all': emitter.emit('from-emitter', 'all'); break;
      case 'emitter-r2': emitter.to('r2').emit('from-emitter-r2', 'r2'); break;
      case 'client-broadcast': clients[cmd.from].emit('bcast', 'from-client', cmd.from); break;
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
