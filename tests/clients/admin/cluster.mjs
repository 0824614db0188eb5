// The Admin UI in a cluster: an admin client on the first server, a socket on the second.
// The admin must see both servers' stats under their own ids, the remote socket in the
// socket list and as it connects, and its commands must reach the remote socket.
// Prints "RESULT <json>". Usage: node cluster.mjs <admin url> <client url> [<redis url> <key>]
// With <redis url> <key>, a Node server with @socket.io/redis-adapter and the package's own
// instrument() (server id "node-1") joins the cluster, and the scenario runs twice more:
// the admin on Node with the socket on ours, and the admin on ours with the socket on Node.
import { io } from 'socket.io-client';

const [rustAdmin, rustClient, redisUrl, key] = process.argv.slice(2);
const LIMIT = 10000;
setTimeout(() => { console.error('FAIL: timed out'); process.exit(2); }, 60000).unref();

async function until(what, cond, limit = LIMIT) {
  const end = Date.now() + limit;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const connected = (s) => new Promise((resolve, reject) => {
  s.once('connect', resolve);
  s.once('connect_error', reject);
});

async function scenario(adminUrl, clientUrl) {
  const events = [];
  const servers = new Set();
  const admin = io(adminUrl + '/admin', { transports: ['websocket'], forceNew: true });
  admin.onAny((name, ...args) => {
    if (name === 'server_stats') servers.add(args[0].serverId);
    else events.push([name, ...args]);
  });
  const seen = (name, pred) => events.some((e) => e[0] === name && pred(e));
  const result = {};
  try {
    await connected(admin);
    await until('all_sockets', () => seen('all_sockets', () => true));
    const C = io(clientUrl, { forceNew: true, transports: ['websocket'] });
    await connected(C);
    const cId = C.id;
    await until('socket_connected of the remote socket', () => seen('socket_connected', (e) => e[1].id === cId));
    result.connectedEvent = events.find((e) => e[0] === 'socket_connected' && e[1].id === cId)[1].nsp;
    await until('stats of every server', () => servers.size >= (redisUrl ? 3 : 2));
    result.servers = [...servers].sort();

    // A second admin on the first server lists the remote socket.
    const second = io(adminUrl + '/admin', { transports: ['websocket'], forceNew: true });
    const list = await new Promise((r) => second.once('all_sockets', r));
    second.close();
    const mine = list.find((s) => s.id === cId);
    result.listed = mine ? {
      nsp: mine.nsp,
      data: mine.data,
      hasHandshake: typeof mine.handshake === 'object',
      clientId: mine.clientId === C.io.engine.id.slice(0, 12),
      transport: mine.transport,
    } : null;

    // Commands from the first server reach the socket on the second.
    const cmd = new Promise((r) => C.once('cmd', (...a) => r(a)));
    admin.emit('join', '/', 'roomX', cId);
    await until('room_joined from the remote server', () => seen('room_joined', (e) => e[2] === 'roomX' && e[3] === cId));
    admin.emit('emit', '/', 'roomX', 'cmd', 1, 'two');
    result.cmd = await cmd;
    const gone = new Promise((r) => C.once('disconnect', r));
    admin.emit('_disconnect', '/', false, cId);
    result.disconnect = await gone;
    await until('socket_disconnected from the remote server', () => seen('socket_disconnected', (e) => e[2] === cId));
    C.close();
    return result;
  } catch (e) {
    console.error('events: ' + JSON.stringify(events.map((e) => e[0])));
    throw e;
  } finally {
    admin.close();
  }
}

let nodeServer = null;
try {
  const result = {};
  if (redisUrl) {
    const { createServer } = await import('node:http');
    const { Server } = await import('socket.io');
    const { createClient } = await import('redis');
    const { createAdapter } = await import('@socket.io/redis-adapter');
    const { instrument } = await import('@socket.io/admin-ui');
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    const http = createServer();
    nodeServer = new Server(http, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 3000 }) });
    // Set a field: replacing socket.data would drop the `_admin` entry instrument() put there.
    nodeServer.on('connection', (socket) => { socket.data.server = 'node'; });
    instrument(nodeServer, { auth: false, serverId: 'node-1' });
    await new Promise((r) => http.listen(0, '127.0.0.1', r));
    const nodeUrl = `http://127.0.0.1:${http.address().port}`;
    result.adminOnNode = await scenario(nodeUrl, rustClient);
    result.adminOnRust = await scenario(rustAdmin, nodeUrl);
  }
  result.rust = await scenario(rustAdmin, rustClient);
  console.log('RESULT ' + JSON.stringify(result));
} catch (e) {
  console.error('FAIL: ' + (e.stack || e));
  process.exitCode = 1;
} finally {
  if (nodeServer) nodeServer.close();
  setTimeout(() => process.exit(), 100);
}
