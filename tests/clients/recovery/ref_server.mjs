// The reference server for tests/recovery_vs_node.rs: socket.io 4.8 with connection state
// recovery and the same handlers as the Rust server of that test.
// Usage: node ref_server.mjs <recovery window ms> <ping interval ms> <ping timeout ms> [json|msgpack]
// stdout (JSON lines): {"port":N} once listening; {"disconnect":reason} for every socket that
// leaves; {"burst":true} once a burst is out.
// stdin (JSON lines): {"cmd":"burst","sid":<socket id>} emits what a client that is away misses.
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import msgpackParser from 'socket.io-msgpack-parser';

const [windowMs, pingInterval, pingTimeout] = process.argv.slice(2, 5).map(Number);
const parser = process.argv[5] === 'msgpack' ? { parser: msgpackParser } : {};
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const http = createServer();
const io = new Server(http, {
  ...parser,
  pingInterval,
  pingTimeout,
  connectionStateRecovery: { maxDisconnectionDuration: windowMs, skipMiddlewares: true },
});
io.on('connection', (socket) => {
  // An emit from the connect handler, to the socket alone.
  socket.emit('hello', 'welcome');
  socket.on('join', (room, cb) => { socket.join(room); cb(true); });
  socket.on('set', (v) => { socket.data.v = v; });
  socket.on('get', (cb) => cb(socket.data.v ?? null));
  socket.on('rooms', (cb) => cb([...socket.rooms].filter((r) => r !== socket.id).sort()));
  // socket.emit with a single string argument: the case a client must not take as an offset.
  socket.on('echo', (v, cb) => { socket.emit('echo', v); cb(true); });
  socket.on('warmup', (cb) => { io.emit('warm', 0); cb(true); });
  socket.on('cut', (how) => {
    if (how === 'conn-close') socket.conn.close();
    else if (how === 'server-disconnect') socket.disconnect();
  });
  socket.on('disconnect', (reason) => out({ disconnect: reason }));
});
await new Promise((r) => http.listen(0, '127.0.0.1', r));
out({ port: http.address().port });

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'burst') {
    for (let i = 0; i < 3; i++) {
      io.to('r1').emit('room', i);
      io.emit('all', i);
      io.to('r2').emit('other', i);
      io.to(cmd.sid).emit('direct', i);
      io.to('r1').emit('bin', Buffer.from([1, 2, 3]), i);
    }
    out({ burst: true });
  }
}
