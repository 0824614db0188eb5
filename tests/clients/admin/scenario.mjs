// The Admin UI's wire, scenario by scenario, as an admin client sees it. Runs against a
// server at <url>, or, with "ref", against a Node server this script starts with
// @socket.io/admin-ui's instrument() and the same small app the Rust test serves:
//   "/" and "/other": "join"/"leave" a room, "hello" answered by a "hi" echo and an ack.
// Prints "RESULT <json>": every admin event in order, ids, dates and ports normalized.
// Usage: node scenario.mjs <url|ref> <dev|readonly|prod|auth>
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const [target, scenario] = process.argv.slice(2);
const HASH = '$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS'; // "changeit"
const LIMIT = 10000;
setTimeout(() => { console.error('FAIL: scenario timed out'); process.exit(2); }, 60000).unref();

async function startReference() {
  const { createServer } = await import('node:http');
  const { Server } = await import('socket.io');
  const { instrument } = await import('@socket.io/admin-ui');
  const http = createServer();
  const server = new Server(http);
  const app = (socket) => {
    socket.on('join', (room) => socket.join(room));
    socket.on('leave', (room) => socket.leave(room));
    socket.on('hello', (...args) => {
      const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      socket.emit('hi', ...args);
      if (cb) cb('ok');
    });
  };
  server.on('connection', app);
  server.of('/other').on('connection', app);
  const opts = { auth: false, serverId: 'srv-test', mode: 'development' };
  if (scenario === 'readonly') opts.readonly = true;
  if (scenario === 'prod') opts.mode = 'production';
  if (scenario === 'auth') opts.auth = { type: 'basic', username: 'admin', password: HASH };
  instrument(server, opts);
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${http.address().port}`, close: () => { server.close(); } };
}

const ref = target === 'ref' ? await startReference() : null;
const url = ref ? ref.url : target;

// Waits for a condition, polling, with a deadline.
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

// Labels for ids, in order of first sight, filled as the scenario learns them.
const labels = new Map();
const label = (id, name) => labels.set(id, name);
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
function norm(v, key) {
  if (typeof v === 'string') {
    if (labels.has(v)) return labels.get(v);
    for (const [id, l] of labels) if (v.length === 12 && id.startsWith(v)) return l + '.client';
    if (ISO.test(v)) return '<date>';
    if (key === 'time') return '<time>';
    if (key === 'host') return '<host>';
    if (key === 't') return '<t>';
    if (key === 'url') return v.replace(/([?&])t=[^&]*/, '$1t=<t>');
    if (key === 'sec-websocket-key') return '<key>';
    return v;
  }
  if (typeof v === 'number' && key === 'issued') return '<issued>';
  if (Array.isArray(v)) {
    const out = v.map((x) => norm(x));
    return key === 'rooms' ? out.sort() : out;
  }
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = norm(v[k], k);
    return out;
  }
  return v;
}

const bySocket = (list) => [...list].sort((x, y) => `${x.nsp} ${x.id}`.localeCompare(`${y.nsp} ${y.id}`));
const events = []; // [name, ...args] in arrival order, server_stats apart
const stats = [];
function admin(auth, record = true) {
  const s = io(url + '/admin', { transports: ['websocket'], forceNew: true, auth });
  if (record) s.onAny((name, ...args) => {
    if (name === 'server_stats') stats.push({ at: events.length, stats: args[0] });
    else events.push([name, ...args]);
  });
  return s;
}
const seen = (name, pred = () => true) => events.some((e) => e[0] === name && pred(e));
const count = (name, pred = () => true) => events.filter((e) => e[0] === name && pred(e)).length;

const result = {};
try {
  if (scenario === 'auth') {
    // Raw frames: a refused login and an accepted one, as the wire shows them.
    const raw = (auth) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket');
      const frames = [];
      let done = false;
      ws.on('message', (d) => {
        const f = d.toString();
        if (done) return;
        // Engine.IO and CONNECT/CONNECT_ERROR frames, and the `session` event; the reference
        // also sends its admin broadcasts ahead of the CONNECT reply, which are left out.
        if (f.startsWith('0{')) frames.push('0<open>');
        else if (f.startsWith('4') && !f.startsWith('42') || f.startsWith('42/admin,["session"')) {
          frames.push(f.replace(/"sid":"[^"]+"/, '"sid":"<sid>"').replace(/"session","[0-9a-f]{16}"/, '"session","<16 hex>"'));
        }
        if (f.startsWith('0{')) ws.send('40/admin,' + JSON.stringify(auth));
        if (f.startsWith('44') || f.startsWith('40/admin,{')) { done = true; ws.close(); resolve(frames); }
      });
      ws.on('error', reject);
    });
    result.wrongPassword = await raw({ username: 'admin', password: 'nope' });
    result.wrongUser = await raw({ username: 'root', password: 'changeit' });
    result.noAuth = await raw({});
    result.badTypes = await raw({ username: ['admin'], password: { x: 1 } });
    result.unknownSession = await raw({ sessionId: '0123456789abcdef' });
    result.right = await raw({ username: 'admin', password: 'changeit' });
    // With socket.io-client: a session id, then logging in again with it alone.
    const a = admin({ username: 'admin', password: 'changeit' });
    let sessionId = null;
    a.on('session', (id) => { sessionId = id; });
    await connected(a);
    await until('session id', () => sessionId !== null);
    result.sessionIdLength = sessionId.length;
    const again = admin({ sessionId });
    await connected(again);
    result.sessionLogin = 'connected';
    const refused = admin({ username: 'admin', password: 'wrong' });
    result.refused = await connected(refused).then(() => 'connected', (e) => ({ message: e.message, data: e.data ?? null }));
    refused.close(); again.close(); a.close();
  } else {
    const a0 = admin({});
    await connected(a0);
    label(a0.id, 'ADMIN');
    label(a0.io.engine.id, 'ADMIN.engine');
    await until('config', () => seen('config'));
    if (scenario !== 'prod') await until('all_sockets', () => seen('all_sockets'));

    // A: polling first then WebSocket, with a query and an auth payload the UI must not show.
    const A = io(url, { forceNew: true, query: { foo: 'bar' }, auth: { token: 'secret' } });
    await connected(A);
    const aId = A.id;
    label(A.id, 'A');
    label(A.io.engine.id, 'A.engine');
    await until('A upgraded', () => A.io.engine.transport.name === 'websocket');
    if (scenario !== 'prod') await until('socket_updated A', () => seen('socket_updated', (e) => e[1].id === A.id));

    // B: WebSocket only, in /other.
    const B = io(url + '/other', { forceNew: true, transports: ['websocket'] });
    await connected(B);
    const bId = B.id;
    label(B.id, 'B');
    label(B.io.engine.id, 'B.engine');
    if (scenario !== 'prod') await until('socket_connected B', () => seen('socket_connected', (e) => e[1].id === B.id));

    const dev = scenario === 'dev' || scenario === 'readonly';
    A.emit('join', 'room1');
    if (dev) await until('room1 joined', () => seen('room_joined', (e) => e[2] === 'room1'));
    const hi = new Promise((r) => A.once('hi', (...args) => r(args)));
    const ack = await A.timeout(LIMIT).emitWithAck('hello', 1, 'two', { three: 3 });
    result.clientA = { hi: await hi, ack };
    if (dev) await until('hi sent', () => seen('event_sent', (e) => e[3][0] === 'hi'));

    // Commands. Each step ends with an emit whose arrival proves the steps before it ran
    // (one admin connection: the server handles its packets in order).
    const got = [];
    for (const ev of ['cmd', 'cmd2', 'cmd3', 'cmd4']) A.on(ev, (...args) => got.push([ev, ...args]));
    const gotB = [];
    B.on('cmd', (...args) => gotB.push(args));
    const bGone = new Promise((r) => B.once('disconnect', r));
    a0.emit('join', '/', 'room2', A.id);
    a0.emit('emit', '/', 'room2', 'cmd', 42, { x: [1] });
    if (scenario === 'readonly') {
      // Every command is refused. Two stats ticks after they were sent, nothing happened.
      a0.emit('_disconnect', '/other', false, B.id);
      a0.emit('emit', '/other', null, 'cmd', 1);
      const n = stats.length;
      await until('two stats ticks', () => stats.length >= n + 2, 8000);
      const a1 = admin({}, false);
      const second = new Promise((r) => a1.once('all_sockets', r));
      await connected(a1);
      label(a1.id, 'ADMIN2');
      label(a1.io.engine.id, 'ADMIN2.engine');
      result.secondAllSockets = norm(await second);
      const a1Id = a1.id;
      a1.close();
      // Its departure is reported to a0; wait for it, so that it cannot race A's below.
      await until('ADMIN2 left', () => seen('room_left', (e) => e[3] === a1Id));
      result.B = B.connected ? 'connected' : 'disconnected';
    } else {
      await until('cmd', () => got.length === 1);
      a0.emit('leave', '/', 'room1', null);
      if (dev) await until('room1 left', () => seen('room_left', (e) => e[2] === 'room1'));
      a0.emit('emit', '/', 'room1', 'cmd2');
      a0.emit('emit', '/', 'room2', 'cmd3');
      await until('cmd3', () => got.some((g) => g[0] === 'cmd3'));
      if (target !== 'ref') {
        // Malformed commands, sent to our server only: the reference takes them as they
        // come (joins a room named by an object, creates namespace "/42", disconnects
        // everyone for "yes"); ours refuses each without effect.
        a0.emit('join', 42, 'x', null);
        a0.emit('join', '/', { room: 1 }, null);
        a0.emit('leave', '/', null, null);
        a0.emit('_disconnect', '/', 'yes', null);
        a0.emit('_disconnect', '/', true, 17);
        a0.emit('_disconnect', '/');
        a0.emit('emit', '/', null, 5);
        a0.emit('emit', '/', [], 'cmd4');
        a0.emit('emit');
        a0.emit('join', '/nowhere', 'x', null);
      }
      a0.emit('join', '/', 'room3', A.id);
      a0.emit('emit', '/', A.id, 'cmd4', 'last');
      await until('cmd4', () => got.some((g) => g[0] === 'cmd4'));
      result.B = B.connected ? 'connected' : 'disconnected';
      a0.emit('_disconnect', '/other', false, B.id);
      result.bReason = await bGone;
      if (dev) await until('B left its room', () => seen('room_left', (e) => e[3] === bId));
    }
    result.A = { got, connected: A.connected };
    result.gotB = gotB;
    A.disconnect();
    if (dev) {
      await until('A disconnected', () => seen('socket_disconnected', (e) => e[2] === aId));
      const rooms = scenario === 'dev' ? 3 : 2;
      const after = () => events.slice(events.findIndex((e) => e[0] === 'socket_disconnected' && e[2] === aId));
      await until('A left its rooms', () => after().filter((e) => e[0] === 'room_left' && e[3] === aId).length === rooms);
    }
    B.close();
    const n = stats.length;
    const other = (s) => s.stats.namespaces.find((x) => x.name === '/other')?.socketsCount;
    await until('a stats tick after B left', () => stats.length > n && other(stats[stats.length - 1]) === 0, 8000);
    const last = stats[stats.length - 1].stats;
    result.statsKeys = Object.keys(last).sort();
    result.stats = {
      serverId: last.serverId,
      hostnameIsString: typeof last.hostname === 'string' && last.hostname.length > 0,
      pidIsNumber: Number.isInteger(last.pid),
      uptimeIsNumber: typeof last.uptime === 'number',
      namespaces: [...last.namespaces].sort((x, y) => x.name.localeCompare(y.name)),
      aggregatedTypes: [...new Set(stats.flatMap((s) => s.stats.aggregatedEvents.map((e) => e.type)))].sort(),
      aggregatedShape: stats.flatMap((s) => s.stats.aggregatedEvents).every((e) =>
        Number.isInteger(e.timestamp) && e.timestamp % 1000 === 0 && typeof e.type === 'string' && Number.isInteger(e.count)),
    };
    // Rooms left at one disconnection come in no defined order: sort each run. The socket
    // list's order follows each server's namespace map: sort it too.
    const evs = norm(events);
    for (const e of evs) if (e[0] === 'all_sockets') e[1] = bySocket(e[1]);
    if (result.secondAllSockets) result.secondAllSockets = bySocket(result.secondAllSockets);
    for (let i = 0; i < evs.length;) {
      let j = i;
      while (j < evs.length && evs[j][0] === 'room_left' && evs[j][3] === evs[i][3]) j++;
      if (j > i + 1) evs.splice(i, j - i, ...evs.slice(i, j).sort((x, y) => String(x[2]).localeCompare(String(y[2]))));
      i = Math.max(j, i + 1);
    }
    result.events = evs;
    a0.close();
  }
  console.log('RESULT ' + JSON.stringify(result));
} catch (e) {
  console.error('FAIL: ' + (e.stack || e));
  console.log('PARTIAL ' + JSON.stringify(norm(events)));
  process.exitCode = 1;
} finally {
  if (ref) ref.close();
  setTimeout(() => process.exit(), 100);
}
