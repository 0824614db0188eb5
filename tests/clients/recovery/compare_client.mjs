// Connection state recovery as the official client sees it, run the same way against the
// reference server and ours by tests/recovery_vs_node.rs.
// Usage: node compare_client.mjs <url> <transport: polling|websocket> <cut> [json|msgpack]
// cut: close (client closes its engine), destroy (TCP socket destroyed), mute (no more pongs:
// ping timeout), conn-close (the server closes the connection: socket.conn.close()),
// bad-ping (the client breaks the Engine.IO protocol: transport error),
// server-disconnect (the server's socket.disconnect()), client-disconnect (socket.disconnect()).
// stdout: "READY <json>" once set up, "AWAY <json>" once cut off; then it waits for a "GO"
// line on stdin, connects again and prints "RESULT <json>" with everything it received.
import { io } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { createInterface } from 'node:readline';

const [url, transport, cut, parserName] = process.argv.slice(2);
const parser = parserName === 'msgpack' ? { parser: msgpackParser } : {};
// Reconnection is done by hand on "GO", so the test decides when the client comes back.
const socket = io(url, { ...parser, transports: [transport], reconnection: false });
const events = [];
let phase = 'first';
socket.onAny((event, ...args) => {
  events.push({ phase, event, args: args.map((a) => (Buffer.isBuffer(a) ? { bin: [...a] } : a)) });
});
const lines = createInterface({ input: process.stdin });
const go = new Promise((r) => lines.once('line', r));
const once = (ev) => new Promise((r) => socket.once(ev, (...a) => r(a)));
const ack = (...a) => socket.timeout(3000).emitWithAck(...a);
setTimeout(() => { console.log('TIMEOUT ' + JSON.stringify({ events })); process.exit(1); }, 25000);

await once('connect');
const firstId = socket.id;
await ack('join', 'r1');
socket.emit('set', 'kept-data');
await ack('echo', 'hello-echo');
await ack('warmup');
const offsetBefore = socket._lastOffset ?? null;
const disconnected = once('disconnect');
console.log('READY ' + JSON.stringify({ id: firstId }));
const engine = socket.io.engine;
switch (cut) {
  case 'close': engine.close(); break;
  case 'destroy': engine.transport.ws._socket.destroy(); break;
  case 'mute': {
    const send = engine._sendPacket.bind(engine);
    engine._sendPacket = (type, ...rest) => { if (type !== 'pong') send(type, ...rest); };
    break;
  }
  case 'conn-close': socket.emit('cut', 'conn-close'); break;
  // A ping from the client breaks Engine.IO v4 (heartbeats go server to client).
  case 'bad-ping': engine._sendPacket('ping'); break;
  case 'server-disconnect': socket.emit('cut', 'server-disconnect'); break;
  case 'client-disconnect': socket.disconnect(); break;
  default: throw new Error('unknown cut ' + cut);
}
const [reason] = await disconnected;
console.log('AWAY ' + JSON.stringify({ reason, active: socket.active }));
await go;
phase = 'second';
socket.connect();
await once('connect');
const recovered = socket.recovered;
const id = socket.id;
const data = await ack('get');
const rooms = await ack('rooms');
console.log('RESULT ' + JSON.stringify({ recovered, sameId: id === firstId, data, rooms, offsetBefore, events }));
socket.disconnect();
process.exit(0);
