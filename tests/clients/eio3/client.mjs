// socket.io-client 2.x (npm alias `socket.io-client-v2`: Engine.IO v3, Socket.IO protocol v4)
// scenarios against the tower-socketio servers of tests/eio3.rs, which set `allow_eio3`.
// `node client.mjs <base-url> <polling|websocket|upgrade> <scenario> [base64]`.
// The last stdout line is a JSON object with what the client observed; any failure or
// timeout exits non-zero with the reason on stderr.
import io from "socket.io-client-v2";

const MODES = ["polling", "websocket", "upgrade"];
const [url, mode, scenario, flag] = process.argv.slice(2);
if (!url || !MODES.includes(mode) || !scenario) {
  fail(`usage: client.mjs <base-url> <${MODES.join("|")}> <scenario> [base64]`);
}
// `base64`: the client asks for binary as base64 text (b64=1) instead of binary frames.
const forceBase64 = flag === "base64";

function fail(msg) {
  process.stderr.write(`FAIL: ${msg}\n`);
  process.exit(2);
}
setTimeout(() => fail("watchdog: no result after 20000 ms"), 20000);
process.on("unhandledRejection", (e) => fail(`unhandled: ${e && e.stack ? e.stack : e}`));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A socket on `nsp`; sockets of one URL share the manager (one Engine.IO connection). */
function socket(nsp = "/", extra = {}) {
  return io(url + (nsp === "/" ? "" : nsp), {
    transports: { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode],
    upgrade: mode === "upgrade",
    reconnection: false,
    timeout: 5000,
    forceBase64,
    ...extra,
  });
}

/** Resolves with the listener's arguments the next time `event` fires. */
function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), ms);
    emitter.once(event, (...a) => {
      clearTimeout(t);
      resolve(a);
    });
  });
}

/** Resolves once connected; rejects on an `error` (refusal) or `connect_error`. */
function connected(s, ms = 5000) {
  if (s.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`connect to ${s.nsp} timed out`)), ms);
    s.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
    for (const ev of ["error", "connect_error"]) {
      s.once(ev, (e) => {
        clearTimeout(t);
        reject(new Error(`${ev} on ${s.nsp}: ${JSON.stringify(e)} ${e && e.message}`));
      });
    }
  });
}

/** Emits with an ack callback; resolves with the ack's arguments. */
function ack(s, event, ...args) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for '${event}'`)), 5000);
    s.emit(event, ...args, (...res) => {
      clearTimeout(t);
      resolve(res);
    });
  });
}

/** The engine's transport once settled: in upgrade mode, waits for the upgrade. */
async function finalTransport(s) {
  const engine = s.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    await once(engine, "upgrade");
  }
  return engine.transport.name;
}

function bytes(b) {
  const kind = Buffer.isBuffer(b) ? "Buffer" : b instanceof ArrayBuffer ? "ArrayBuffer" : typeof b;
  return { kind, bytes: Array.from(Buffer.from(b)) };
}

const TEXT = "héllo wörld 😀 €"; // non-ASCII: v3 lengths count UTF-16 code units

const scenarios = {
  // `/` joined without a CONNECT, auth from the query; events and acks both ways.
  async events() {
    const s = socket("/", { query: { token: "t0", name: "ann é" } });
    const welcome = once(s, "welcome");
    await connected(s);
    const [welcomed] = await welcome;
    const echoed = once(s, "echo");
    s.emit("echo", { text: TEXT, n: 7 });
    const [echo] = await echoed;
    const multi = await ack(s, "multi", 1, "two", { three: 3 });
    s.on("ask", (n, cb) => cb(n * 2, TEXT));
    const askedP = once(s, "asked");
    s.emit("server_ask", 21);
    const [asked] = await askedP;
    // A burst: every packet arrives, in order, whatever the transport batches.
    const down = [];
    s.on("down", (i) => down.push(i));
    for (let i = 0; i < 50; i++) s.emit("seq", i);
    const [count] = await ack(s, "sync");
    const deadline = Date.now() + 5000;
    while (down.length < 50 && Date.now() < deadline) await sleep(10);
    const transport = await finalTransport(s);
    const [last] = await ack(s, "multi", "after", TEXT);
    return { id: s.id, welcomed, echo, multi, asked, count, down, transport, last };
  },

  // Custom namespaces: auth from the query in the CONNECT packet, refusals as `error`.
  async namespaces() {
    const main = socket("/");
    await connected(main);
    const admin = socket("/admin", { query: { token: "secret", lang: "fr" } });
    await connected(admin);
    const [who] = await ack(admin, "who");
    const bad = socket("/admin?token=wrong");
    const [badErr] = await once(bad, "error");
    const data = socket("/data");
    const [dataErr] = await once(data, "error");
    const nope = socket("/nope");
    const [nopeErr] = await once(nope, "error");
    const transport = await finalTransport(main);
    const [whoAgain] = await ack(admin, "who");
    const [mainWho] = await ack(main, "who");
    return {
      who,
      whoAgain,
      mainWho,
      badErr,
      dataErr,
      nopeErr,
      badConnected: bad.connected,
      sameEngine: admin.io === main.io,
      transport,
    };
  },

  // `/` refused by its middleware: the client sees an `error` event, never `connect`.
  async refused() {
    const s = socket("/", { query: { token: "nope" } });
    let connectedEver = false;
    s.on("connect", () => (connectedEver = true));
    const [err] = await once(s, "error");
    await sleep(200);
    return { err, connectedEver };
  },

  // Binary both ways: arguments, nested, acks.
  async binary() {
    const s = socket("/");
    const fromServer = once(s, "bin_back");
    s.on("bin_ask", (d, cb) => cb(Buffer.from([9, 8, 7]), bytes(d).bytes));
    await connected(s);
    const [binAck] = await ack(s, "bin", Buffer.from([1, 2, 3]), { inner: Buffer.from([4, 5]), text: TEXT });
    const askedP = ack(s, "bin_start");
    const [obj] = await fromServer;
    const [asked] = await askedP;
    const big = Buffer.alloc(3000, 7);
    const [bigLen] = await ack(s, "bin_len", big);
    const transport = await finalTransport(s);
    const [afterUpgrade] = await ack(s, "bin", Buffer.from([255, 0]), { inner: Buffer.from([]), text: "x" });
    return {
      binAck: bytes(binAck),
      fromServer: { name: obj.name, data: bytes(obj.data), tail: obj.tail },
      asked,
      bigLen,
      afterUpgrade: bytes(afterUpgrade),
      transport,
    };
  },

  // Client-initiated heartbeat: with a 300 ms interval and timeout the connection lives
  // through many rounds, each ping answered by a pong.
  async heartbeat() {
    const s = socket("/");
    await connected(s);
    const engine = s.io.engine;
    let pings = 0;
    let pongs = 0;
    engine.on("ping", () => pings++);
    engine.on("pong", () => pongs++);
    let disconnected = null;
    s.on("disconnect", (r) => (disconnected = r));
    const transport = await finalTransport(s);
    await sleep(2500);
    const [alive] = await ack(s, "multi", "alive");
    return { pings, pongs, disconnected, alive, transport, pingInterval: engine.pingInterval };
  },

  // The client leaves `/admin`, then `/`.
  async client_disconnect() {
    const main = socket("/");
    await connected(main);
    const admin = socket("/admin", { query: { token: "secret" } });
    await connected(admin);
    const transport = await finalTransport(main);
    admin.disconnect();
    await sleep(200);
    const [mainStill] = await ack(main, "multi", "still");
    main.disconnect();
    await sleep(300);
    return { mainStill, transport };
  },

  // The server disconnects the socket.
  async server_disconnect() {
    const s = socket("/");
    await connected(s);
    const transport = await finalTransport(s);
    const gone = once(s, "disconnect");
    s.emit("disconnect_me");
    const [reason] = await gone;
    return { reason, transport };
  },
};

const run = scenarios[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
run().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(0);
  },
  (e) => fail(e && e.stack ? e.stack : String(e)),
);
