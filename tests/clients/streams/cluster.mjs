// A Node socket.io server with @socket.io/redis-streams-adapter (connection state recovery
// on) beside our Rust servers, plus clients on every server, driven by JSON commands on
// stdin (one per line); answers are JSON lines on stdout.
// Usage: node cluster.mjs <redis url> <stream> <prefix> <rust url 1> <rust url 2>
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { createAdapter } from '@socket.io/redis-streams-adapter';

const [redisUrl, streamName, prefix, rust1, rust2] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const redis = createClient({ url: redisUrl });
await redis.connect();

const http = createServer();
const io = new Server(http, {
  adapter: createAdapter(redis, {
    streamName,
    channelPrefix: prefix,
    sessionKeyPrefix: `${prefix}:session:`,
  }),
  connectionStateRecovery: { maxDisconnectionDuration: 30000 },
});
const serverEvents = [];
io.on('connection', (socket) => {
  if (!socket.recovered) socket.data = { name: socket.handshake.auth.name, server: 'node' };
  socket.on('join', (room, cb) => { socket.join(room); cb && cb(true); });
  socket.on('bcast', (ev, arg) => socket.broadcast.emit(ev, arg));
});
io.on('ping-servers', (arg, cb) => {
  serverEvents.push(['ping-servers', arg]);
  if (typeof cb === 'function') cb('pong from node: ' + arg);
});
await new Promise((r) => http.listen(0, '127.0.0.1', r));
const urls = { r1: rust1, r2: rust2, node: `http://127.0.0.1:${http.address().port}` };

// Clients: a1 on rust 1, b1 on rust 2, c1 on node; each records every event.
const received = {};
const clients = {};
const open = (name, at, transport) => new Promise((resolve, reject) => {
  const s = connect(urls[at], { transports: [transport], auth: { name }, forceNew: true, reconnection: false });
  received[name] = [];
  s.onAny((ev, ...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    received[name].push([ev, ...args.map((a) => (Buffer.isBuffer(a) ? { bin: [...a] } : a))]);
    if (cb) cb(`ack from ${name}`);
  });
  s.once('connect', () => { clients[name] = s; resolve(s); });
  s.once('connect_error', reject);
});
await open('a1', 'r1', 'websocket');
await open('b1', 'r2', 'polling');
await open('c1', 'node', 'websocket');
await Promise.all(Object.values(clients).map((s) => s.timeout(3000).emitWithAck('join', 'r1')));
await clients.b1.timeout(3000).emitWithAck('join', 'r2');
const ids = () => Object.fromEntries(Object.entries(clients).map(([k, s]) => [k, s.id]));
out({ ready: true, nodeUrl: urls.node, ids: ids() });

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const cmd = JSON.parse(line);
  try {
    switch (cmd.cmd) {
      case 'node-emit': io.emit('from-node', 'all'); break;
      case 'node-to-r2': io.to('r2').emit('from-node-r2', 'r2'); break;
      case 'node-except-r2': io.except('r2').emit('from-node-except', 'x'); break;
      case 'node-local': io.local.emit('from-node-local', 'here'); break;
      case 'node-binary': io.emit('from-node-bin', Buffer.from([7, 8, 9])); break;
      case 'node-volatile': io.volatile.emit('from-node-vol', 2); break;
      case 'node-to': io.to(cmd.room).emit(cmd.event, cmd.arg); break;
      case 'node-fetch': {
        const sockets = await io.fetchSockets();
        out({ fetched: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })) });
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
      case 'node-server-side-noack': io.serverSideEmit('ping-servers', 'no ack'); break;
      case 'server-events': out({ events: serverEvents.splice(0) }); continue;
      case 'node-join': io.in(cmd.in).socketsJoin(cmd.room); break;
      case 'node-leave': io.in(cmd.in).socketsLeave(cmd.room); break;
      case 'node-disconnect': io.in(cmd.in).disconnectSockets(); break;
      case 'node-count': out({ count: await io.of('/').adapter.serverCount() }); continue;
      case 'client-broadcast': clients[cmd.from].emit('bcast', 'from-client', cmd.from); break;
      case 'connected': out({ connected: Object.fromEntries(Object.entries(clients).map(([k, s]) => [k, s.connected])) }); continue;
      // Cuts a client's connection (the server sees `transport close`, a recoverable reason).
      case 'cut': {
        const s = clients[cmd.client];
        const gone = new Promise((r) => s.once('disconnect', r));
        s.io.engine.close();
        await gone;
        out({ pid: s._pid, offset: s._lastOffset });
        continue;
      }
      // Reconnects a cut client to another server; answers its id and whether it was recovered.
      case 'reconnect': {
        const s = clients[cmd.client];
        s.io.uri = urls[cmd.to];
        const back = new Promise((resolve, reject) => {
          s.once('connect', resolve);
          s.once('connect_error', reject);
        });
        s.connect();
        await back;
        out({ id: s.id, recovered: s.recovered });
        continue;
      }
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
