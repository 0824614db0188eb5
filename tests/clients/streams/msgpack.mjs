// socket.io-client with socket.io-msgpack-parser, driven by lines on stdin; prints one line
// per event ("EV <json>", buffers as {bin: [...]}) and per step.
// Usage: node msgpack.mjs <url>. Commands: "cut" (close the connection: the server sees
// `transport close`), "to <url>" (reconnect there; prints "BACK <id> <recovered>").
import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';
import parser from 'socket.io-msgpack-parser';

const show = (a) => (Buffer.isBuffer(a) ? { bin: [...a] } : a);
const s = io(process.argv[2], { transports: ['websocket'], parser, reconnection: false });
s.onAny((ev, ...args) => console.log('EV ' + JSON.stringify([ev, ...args.map(show)])));
s.once('connect', () => console.log('READY ' + s.id));
s.on('connect_error', (e) => console.log('ERROR ' + e.message));
setTimeout(() => process.exit(1), 60000);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'cut') {
    const gone = new Promise((r) => s.once('disconnect', r));
    s.io.engine.close();
    await gone;
    console.log('CUT ' + s._pid);
  } else if (line.startsWith('to ')) {
    s.io.uri = line.slice(3);
    const back = new Promise((r) => s.once('connect', r));
    s.connect();
    await back;
    console.log(`BACK ${s.id} ${s.recovered}`);
  }
}
