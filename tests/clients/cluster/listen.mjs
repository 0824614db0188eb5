// Connects to a server, prints READY, then one line per "tick" event: "tick <n>".
// Usage: node listen.mjs <url>
import { io } from 'socket.io-client';
const s = io(process.argv[2], { transports: ['websocket'] });
s.on('connect', () => console.log('READY'));
s.on('tick', (n) => console.log('tick ' + n));
setTimeout(() => process.exit(1), 60000);
