// Per-socket event middleware seen from socket.io-client.
// Usage: node client.mjs <url> <transport>. Prints one JSON line with what it observed.
import { io } from 'socket.io-client';
const [url, transport] = process.argv.slice(2);
const s = io(url, { transports: [transport] });
const errors = [];
const echoes = [];
s.on('error', (e) => errors.push(e));
s.on('echo', (v) => echoes.push(v));
s.on('connect', async () => {
  const refused = await s.timeout(3000).emitWithAck('secret', 1);
  s.emit('secret', 2);
  const changed = await s.timeout(3000).emitWithAck('double', 21);
  const renamed = await s.timeout(3000).emitWithAck('old-name', 'x');
  for (let i = 0; i < 50; i++) s.emit('seq', i);
  const order = await s.timeout(3000).emitWithAck('order');
  await new Promise((r) => setTimeout(r, 200));
  console.log(JSON.stringify({ refused, changed, renamed, order, errors }));
  process.exit(0);
});
setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000);
