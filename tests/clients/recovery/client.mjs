// Connection state recovery, seen from the official client.
// Usage: node client.mjs <url> <transport: polling|websocket> <cut: close|destroy|mute> <expect: recovered|fresh>
// Prints "READY <socket id>" once joined to room r1, then cuts the connection the chosen way:
//   close   - the client closes its transport (socket.io.engine.close())
//   destroy - the TCP socket under the transport is destroyed (a network cut)
//   mute    - the client stops answering pings, so the server times it out
//   quiet-close - as close, after 1.5 s without any packet (longer than a heartbeat round)
// After the reconnection it prints "RESULT <json>" with what it received and exits.
import { io } from 'socket.io-client';

const [url, transport, cut, expect] = process.argv.slice(2);
const socket = io(url, {
  transports: [transport],
  reconnectionDelay: Number(process.env.RECONNECT_DELAY || 1500),
  reconnectionDelayMax: Number(process.env.RECONNECT_DELAY || 1500),
  randomizationFactor: 0,
});
const events = [];
let firstId = null;
let connects = 0;
socket.onAny((event, ...args) => events.push({ event, args }));
socket.on('connect', async () => {
  connects += 1;
  if (connects === 1) {
    firstId = socket.id;
    await socket.timeout(3000).emitWithAck('join', 'r1');
    socket.emit('set', 'kept-data');
    await socket.timeout(3000).emitWithAck('ping-me');
    // A broadcast before the cut gives the client an offset to come back with.
    await socket.timeout(3000).emitWithAck('warmup');
    await new Promise((r) => setTimeout(r, 200));
    console.log('READY ' + socket.id);
    const engine = socket.io.engine;
    if (cut === 'close') engine.close();
    else if (cut === 'quiet-close') setTimeout(() => engine.close(), 1500);
    else if (cut === 'destroy') {
      const t = engine.transport;
      if (t.ws && t.ws._socket) t.ws._socket.destroy();
      else engine.close();
    } else if (cut === 'mute') {
      // Stop answering pings: the server sees no pong and times the session out.
      const send = engine._sendPacket.bind(engine);
      engine._sendPacket = (type, ...rest) => { if (type !== 'pong') send(type, ...rest); };
    }
    return;
  }
  // Reconnected: say what we got back, give the replay a moment, then report.
  const recovered = socket.recovered;
  const id = socket.id;
  const data = await socket.timeout(3000).emitWithAck('get').catch((e) => 'error: ' + e.message);
  const rooms = await socket.timeout(3000).emitWithAck('rooms').catch((e) => 'error: ' + e.message);
  await new Promise((r) => setTimeout(r, 300));
  console.log('RESULT ' + JSON.stringify({ recovered, sameId: id === firstId, data, rooms, events }));
  socket.disconnect();
  process.exit(0);
});
setTimeout(() => { console.log('TIMEOUT ' + JSON.stringify({ connects, events })); process.exit(1); }, 20000);
