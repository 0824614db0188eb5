// Server-side events in a mixed cluster: a Node socket.io server with
// @socket.io/redis-adapter beside the Rust servers of tests/redis_server_events.rs.
// Usage: node server_events.mjs <redis url> <key> <servers expected> <rust url>
// Namespaces `/` and `/custom` both handle the server-side event `ping-servers`: every call
// is recorded as {nsp, args, withAck} (withAck: the handler got a callback as last argument),
// and a callback is answered with "node <nsp>: <args as JSON>". A socket.io-client socket on
// the Rust server's `/custom` records the events it receives.
// stdout: {"ready":true} once every server is subscribed in both namespaces, then one JSON
// line per command.
// stdin commands (JSON lines):
//   {"cmd":"emit","nsp","args":[...]}      serverSideEmit("ping-servers", ...args)
//   {"cmd":"emit-ack","nsp","args":[...]}  serverSideEmitWithAck: {"answers":[...]} (sorted)
//   {"cmd":"report"}                       {"calls":[...],"received":[...]}, then cleared
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { createAdapter } from '@socket.io/redis-adapter';

const [redisUrl, key, expected, rustUrl] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const http = createServer();
const io = new Server(http, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 3000 }) });
let calls = [];
let received = [];
for (const nsp of ['/', '/custom']) {
  io.of(nsp).on('ping-servers', (...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    calls.push({ nsp, args, withAck: cb !== null });
    if (cb) cb(`node ${nsp}: ${JSON.stringify(args)}`);
  });
}
await new Promise((r) => http.listen(0, '127.0.0.1', r));
for (const nsp of ['/', '/custom']) {
  for (let i = 0; (await io.of(nsp).adapter.serverCount()) < Number(expected); i++) {
    if (i > 200) throw new Error(`servers not subscribed in ${nsp}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const client = connect(rustUrl + '/custom', { transports: ['websocket'], forceNew: true });
client.onAny((event, ...args) => received.push([event, ...args]));
await new Promise((resolve, reject) => { client.on('connect', resolve); client.on('connect_error', reject); });
out({ ready: true });

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  try {
    switch (cmd.cmd) {
      case 'emit':
        io.of(cmd.nsp).serverSideEmit('ping-servers', ...cmd.args);
        out({ ok: true });
        break;
      case 'emit-ack': {
        const answers = await io.of(cmd.nsp).serverSideEmitWithAck('ping-servers', ...cmd.args);
        out({ answers: answers.sort() });
        break;
      }
      case 'report':
        out({ calls, received });
        calls = [];
        received = [];
        break;
      default:
        out({ error: 'unknown command ' + cmd.cmd });
    }
  } catch (e) {
    out({ error: String(e && e.message || e) });
  }
}
