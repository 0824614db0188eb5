// Connects to a server over WebSocket, prints READY on connect, "tick <n>" per "tick"
// event and "DISCONNECT <reason>" if it ever loses the connection.
// Usage: node listen.mjs <url>
import { io } from 'socket.io-client';
const s = io(process.argv[2], { transports: ['websocket'] });
s.on('connect', () => console.log('READY'));
s.on('tick', (n) => console.log('tick ' + n));
s.on('disconnect', (reason) => console.log('DISCONNECT ' + reason));
setTimeout(() => process.exit(1), 120000);
