// socket.io-client with socket.io-msgpack-parser against our server.
// Usage: node client.mjs <url> <transport: polling|websocket>
// Checks: connect, events both ways, binary inline both ways, acks both ways, a custom
// namespace. Prints "OK" at the end, exits non-zero on any failure.
import { io } from 'socket.io-client';
import parser from 'socket.io-msgpack-parser';

const [url, transport] = process.argv.slice(2);
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
setTimeout(() => fail('timeout'), 10000);
const socket = io(url, { transports: [transport], parser, auth: { token: 'abc' } });
socket.on('connect_error', (e) => fail('connect_error ' + e.message));
socket.on('ask', (n, cb) => cb(n * 2));
socket.on('connect', async () => {
  const hello = await socket.timeout(3000).emitWithAck('hello', { a: 1 }, 'two');
  if (JSON.stringify(hello) !== JSON.stringify({ got: [{ a: 1 }, 'two'], token: 'abc' })) fail('hello ack ' + JSON.stringify(hello));
  const bin = await socket.timeout(3000).emitWithAck('bin', { name: 'f', data: Buffer.from([1, 2, 3]) });
  if (!Buffer.isBuffer(bin.data) || bin.data.length !== 3 || bin.name !== 'f!') fail('binary ack ' + JSON.stringify(bin));
  const pushed = await new Promise((r) => { socket.once('pushed', (...a) => r(a)); socket.emit('push'); });
  if (pushed.length !== 2 || pushed[0] !== 'x' || !Buffer.isBuffer(pushed[1].data)) fail('server push ' + JSON.stringify(pushed));
  const show = (v) => JSON.stringify(v, function (k, x) {
    return Buffer.isBuffer(this[k]) ? { $bin: [...this[k]] } : x;
  });
  const sent = [{ z: 1, a: [Buffer.from([5]), { b: Buffer.from([6, 7]) }] }, 'x', null];
  const relayed = await new Promise((r, j) => socket.timeout(3000).emit('relay', ...sent, (err, ...reply) => (err ? j(err) : r(reply))));
  if (show(relayed) !== show(sent)) fail('Value relay ' + show(relayed));
  const asked = await socket.timeout(3000).emitWithAck('ask-me');
  if (asked !== 42) fail('server emit_with_ack ' + JSON.stringify(asked));
  const admin = io(url + '/admin', { transports: [transport], parser });
  await new Promise((r, j) => { admin.on('connect', r); admin.on('connect_error', (e) => j(e)); });
  const echo = await admin.timeout(3000).emitWithAck('echo', [1, [2, { b: null }]]);
  if (JSON.stringify(echo) !== JSON.stringify([1, [2, { b: null }]])) fail('admin echo ' + JSON.stringify(echo));
  console.log('OK');
  process.exit(0);
});
