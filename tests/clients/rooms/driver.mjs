// A controllable set of socket.io-client sockets for the rooms/broadcast tests.
//
// `node driver.mjs <base-url>`; then one JSON command per stdin line, each with a `req`
// number. Every command gets exactly one JSON reply line carrying the same `req`, either
// with its result or with `error`. Every socket records every event it receives (in
// order), its disconnect reasons and its connect errors; `summary` returns all of it.
//
// Commands:
//   {cmd:"open", name, transport:"polling"|"websocket", ns:"/", ack:"answer"|"silent",
//        echo?: event}  -> {sid}                (after the namespace CONNECT)
//        with `echo`, the socket answers each `event` it receives by emitting
//        `got` with the `n` field of its first argument (lets the server pace itself)
//   {cmd:"emit", name, event, args:[...], ack:bool}
//        -> {ack:[...]} when ack, else {ok:true}  (the server's ack arguments)
//   {cmd:"wait", names:[...], event, value}  -> {ok:true} once each named socket received
//        `event` with first argument deep-equal to `value` (the fence of a test phase)
//   {cmd:"wait_disconnect", names:[...]}     -> {reasons:{name: reason}}
//   {cmd:"summary"}                          -> {clients:{name:{sid,events,disconnects,...}}}
//   {cmd:"clear"}                            -> forgets every recorded event
//   {cmd:"close", name}                      -> the socket disconnects itself
//   {cmd:"exit"}                             -> closes every socket and exits 0
//
// Binary values are recorded as {$bin: base64, $type: constructor name}; strings longer
// than 1000 characters as {$strlen: length}. A socket in
// `answer` mode acknowledges every event that asks for it with {from: name, event, args};
// one in `silent` mode never does.
import { io } from "socket.io-client";
import readline from "node:readline";
import { isDeepStrictEqual } from "node:util";

const [base] = process.argv.slice(2);
if (!base) {
  process.stderr.write("usage: driver.mjs <base-url>\n");
  process.exit(2);
}

// Never outlive the test: the Rust side kills us on drop, this is the last resort.
setTimeout(() => {
  process.stderr.write("driver: watchdog fired\n");
  process.exit(3);
}, 240_000).unref();

const clients = new Map();
const waiters = new Set();

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function encode(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const buf = Buffer.isBuffer(v)
      ? v
      : v instanceof ArrayBuffer
        ? Buffer.from(v)
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { $bin: buf.toString("base64"), $type: v.constructor.name };
  }
  if (typeof v === "string" && v.length > 1000) return { $strlen: v.length };
  if (Array.isArray(v)) return v.map(encode);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
  }
  return v;
}

function recheck() {
  for (const w of waiters) {
    if (w.check()) {
      waiters.delete(w);
      clearTimeout(w.timer);
      w.resolve();
    }
  }
}

function until(check, ms, what) {
  return new Promise((resolve, reject) => {
    if (check()) return resolve();
    const w = { check, resolve };
    w.timer = setTimeout(() => {
      waiters.delete(w);
      reject(new Error(`timed out after ${ms} ms waiting for ${what()}`));
    }, ms);
    waiters.add(w);
  });
}

function client(name) {
  const c = clients.get(name);
  if (!c) throw new Error(`no client named ${name}`);
  return c;
}

function open({ name, transport = "websocket", ns = "/", ack = "answer", auth, echo }) {
  if (clients.has(name)) throw new Error(`client ${name} exists`);
  const socket = io(base + (ns === "/" ? "" : ns), {
    transports: [transport],
    upgrade: false,
    reconnection: false,
    forceNew: true,
    timeout: 10000,
    auth,
  });
  const c = { name, socket, transport, ns, events: [], disconnects: [], connectErrors: [] };
  clients.set(name, c);
  socket.onAny((event, ...args) => {
    let cb = null;
    if (args.length && typeof args[args.length - 1] === "function") cb = args.pop();
    c.events.push([event, ...args.map(encode)]);
    if (cb && ack === "answer") cb({ from: name, event, args: args.map(encode) });
    if (echo && event === echo) socket.emit("got", args[0] && args[0].n);
    recheck();
  });
  socket.on("disconnect", (reason) => {
    c.disconnects.push(reason);
    recheck();
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ sid: socket.id }));
    socket.once("connect_error", (e) => {
      c.connectErrors.push(String(e && e.message));
      reject(new Error(`${name}: connect_error ${e && e.message}`));
    });
  });
}

async function run(cmd) {
  switch (cmd.cmd) {
    case "open":
      return open(cmd);
    case "emit": {
      const c = client(cmd.name);
      const args = cmd.args || [];
      if (cmd.ack) {
        const reply = await c.socket.timeout(10000).emitWithAck(cmd.event, ...args);
        return { ack: encode(reply) };
      }
      c.socket.emit(cmd.event, ...args);
      return { ok: true };
    }
    case "wait": {
      const names = cmd.names;
      const has = (n) =>
        client(n).events.some(([e, a]) => e === cmd.event && isDeepStrictEqual(a, cmd.value));
      await until(
        () => names.every(has),
        cmd.ms || 15000,
        () => `${cmd.event}=${JSON.stringify(cmd.value)} on ${names.filter((n) => !has(n))}`,
      );
      return { ok: true };
    }
    case "wait_disconnect": {
      const names = cmd.names;
      await until(
        () => names.every((n) => client(n).disconnects.length > 0),
        cmd.ms || 15000,
        () => `disconnect of ${names.filter((n) => client(n).disconnects.length === 0)}`,
      );
      return { reasons: Object.fromEntries(names.map((n) => [n, client(n).disconnects[0]])) };
    }
    case "summary": {
      const all = {};
      for (const [n, c] of clients) {
        all[n] = {
          sid: c.socket.id ?? null,
          connected: c.socket.connected,
          transport: c.socket.io.engine ? c.socket.io.engine.transport.name : null,
          events: c.events,
          disconnects: c.disconnects,
          connectErrors: c.connectErrors,
        };
      }
      return { clients: all };
    }
    case "clear":
      for (const c of clients.values()) c.events = [];
      return { ok: true };
    case "close":
      client(cmd.name).socket.disconnect();
      return { ok: true };
    case "exit":
      for (const c of clients.values()) c.socket.disconnect();
      out({ req: cmd.req, ok: true });
      setTimeout(() => process.exit(0), 50);
      return null;
    default:
      throw new Error(`unknown command ${cmd.cmd}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ error: `bad command line: ${line}` });
    return;
  }
  Promise.resolve()
    .then(() => run(cmd))
    .then(
      (r) => r && out({ req: cmd.req, ...r }),
      (e) => out({ req: cmd.req, error: String(e && e.stack ? e.stack : e) }),
    );
});
rl.on("close", () => process.exit(0));
