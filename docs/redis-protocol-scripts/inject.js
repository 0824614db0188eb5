// Robustness probe: one Node socket.io server (port 3201) with redis-adapter, one client in room r1
// (and one in /admin). We PUBLISH hand-crafted messages as a foreign node ("RUSTxx") would, and log what
// the Node server does: deliver, ignore, answer, or throw (uncaught exception / unhandled rejection,
// which would CRASH a stock Node process; here we only log them).
// Usage: NODE_PATH=/work/main/tests/clients/node_modules node inject.js
const { Server } = require("socket.io");
const { io: ioc } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");
const notepack = require("notepack.io");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log("[inject]", ...a);
process.on("uncaughtException", (e) => log("!!! uncaughtException (would crash):", e.message));
process.on("unhandledRejection", (e) => log("!!! unhandledRejection (would crash):", e && e.message));

(async () => {
  const pub = createClient({ url: "redis://127.0.0.1:6379" });
  const sub = pub.duplicate();
  sub.on("error", (e) => log("sub client error event:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server({ adapter: createAdapter(pub, sub, { key: "socket.io" }) });
  io.of("/admin");
  io.on("connection", (s) => { s.join("r1"); s.data = { who: "nodeclient" }; });
  io.on("rustping", (arg, cb) => { log("server got rustping", arg); cb && cb({ pong: arg }); });
  io.listen(3201);
  const c = ioc("http://127.0.0.1:3201", { transports: ["websocket"] });
  c.onAny((ev, ...args) => {
    const last = args[args.length - 1];
    if (typeof last === "function") { args.pop(); last("client-ack", Buffer.from([7])); }
    log(`client <- ${ev} ${JSON.stringify(args)}`);
  });
  c.on("disconnect", (r) => log("client disconnected:", r));
  await new Promise((r) => c.on("connect", r));

  const rp = createClient({ url: "redis://127.0.0.1:6379" });
  const rs = rp.duplicate();
  await Promise.all([rp.connect(), rs.connect()]);
  // behave like a foreign node: listen on the response channel
  await rs.subscribe("socket.io-response#/#", (m) => log("response seen:", m[0] === 0x7b ? m.toString() : JSON.stringify(notepack.decode(m))), true);

  let k = 1;
  const cases = [
    ["ok: minimal broadcast (no flags, no except)", "socket.io#/#", notepack.encode(["RUSTxx", { type: 2, data: ["t", "minimal"], nsp: "/" }, { rooms: [] }])],
    ["ok: packet without nsp (defaults to '/')", "socket.io#/#", notepack.encode(["RUSTxx", { type: 2, data: ["t", "no nsp"] }, { rooms: [], except: [] }])],
    ["ok: type as uint8 0xcc02 and uint64 number", "socket.io#/#", Buffer.concat([Buffer.from("93a652555354787883a474797065cc02a46461746192a174cf0000000100000000a36e7370a12f81a5726f6f6d7390", "hex")])],
    ["ignored: wrong nsp in packet vs channel", "socket.io#/#", notepack.encode(["RUSTxx", { type: 2, data: ["t", "nsp /admin on / channel"], nsp: "/admin" }, { rooms: [] }])],
    ["ignored?: rooms as string 'r1'", "socket.io#/#", notepack.encode(["RUSTxx", { type: 2, data: ["t", "rooms string"], nsp: "/" }, { rooms: "r1", except: [] }])],
    ["ignored: room channel for unknown room", "socket.io#/#nope#", notepack.encode(["RUSTxx", { type: 2, data: ["t", "unknown room"], nsp: "/" }, { rooms: ["nope"] }])],
    ["?: room channel without trailing '#'", "socket.io#/#r1", notepack.encode(["RUSTxx", { type: 2, data: ["t", "no trailing #"], nsp: "/" }, { rooms: ["r1"] }])],
    ["?: broadcast with ext-typed value (fixext1 type 5)", "socket.io#/#", Buffer.from("93a652555354787883a47479706502a46461746192a174d40501a36e7370a12f81a5726f6f6d7390", "hex")],
    ["req: fetchSockets (JSON)", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0001", type: 5, opts: { rooms: [], except: [] } }))],
    ["req: fetchSockets (msgpack request also accepted)", "socket.io-request#/#", notepack.encode({ uid: "RUSTxx", requestId: "rq0002", type: 5, opts: { rooms: ["r1"], except: [] } })],
    ["req: allRooms", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0003", type: 1 }))],
    ["req: SOCKETS (type 0, legacy allSockets)", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0004", type: 0, rooms: ["r1"] }))],
    ["req: serverSideEmit with ack", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0005", type: 6, data: ["rustping", 1] }))],
    ["req: broadcastWithAck (msgpack)", "socket.io-request#/#", notepack.encode({ uid: "RUSTxx", requestId: "rq0006", type: 7, packet: { type: 2, data: ["ackme"], nsp: "/" }, opts: { rooms: [], except: [], flags: { timeout: 1000 } } })],
    ["req: broadcastWithAck as JSON", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0007", type: 7, packet: { type: 2, data: ["ackme-json"], nsp: "/" }, opts: { rooms: [], except: [], flags: { timeout: 1000 } } }))],
    ["req: type as string '5'", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0008", type: "5", opts: { rooms: [], except: [] } }))],
    ["?: binary event type 5 with bin", "socket.io#/#", notepack.encode(["RUSTxx", { type: 5, data: ["t", Buffer.from([1, 2])], nsp: "/" }, { rooms: [] }])],
    ["?: fetchSockets without opts", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "rq0009", type: 5 }))],
    ["?: socketsJoin without opts (legacy sid form)", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", type: 2, rooms: ["x"] }))],
    ["?: malformed JSON request", "socket.io-request#/#", Buffer.from("{not json")],
    ["?: broadcast missing opts", "socket.io#/#", notepack.encode(["RUSTxx", { type: 2, data: ["t", "no opts"], nsp: "/" }])],
    ["check: allRooms request (is subscriber still alive?)", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "alive" + (k++), type: 1 }))],
    ["?: broadcast as JSON on broadcast channel", "socket.io#/#", Buffer.from(JSON.stringify(["RUSTxx", { type: 2, data: ["t", "json"], nsp: "/" }, { rooms: [] }]))],
    ["check: allRooms request (is subscriber still alive?)", "socket.io-request#/#", Buffer.from(JSON.stringify({ uid: "RUSTxx", requestId: "alive" + (k++), type: 1 }))],
  ];
  for (const [name, ch, buf] of cases) {
    log(`=== ${name}  (ch=${ch}, ${buf.length} bytes)`);
    await rp.publish(ch, buf);
    await sleep(350);
  }
  log("server adapter uid:", io.of("/").adapter.uid, "still alive");
  c.close(); io.close();
  await sleep(200);
  process.exit(0);
})();
