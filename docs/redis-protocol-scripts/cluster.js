// Two socket.io servers (A:3101, B:3102) with @socket.io/redis-adapter (classic pub/sub)
// on one Redis, plus socket.io-client sockets, exercising every adapter operation.
// Before each step a marker is PUBLISHed on channel "marker" so sniff.js output is annotated.
// Usage: NODE_PATH=/work/main/tests/clients/node_modules node cluster.js
const { createServer } = require("http");
const { Server } = require("socket.io");
const { io: ioc } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log("[cluster]", ...a);
let marker;
const step = async (name) => { await sleep(400); log(`--- ${name}`); await marker.publish("marker", name); await sleep(100); };

async function startServer(name, port) {
  const pub = createClient({ url: "redis://127.0.0.1:6379" });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server({ adapter: createAdapter(pub, sub, { key: "socket.io" }) });
  const setup = (nsp) => {
    nsp.on("connection", (socket) => {
      const q = socket.handshake.query;
      if (q.room) socket.join(q.room.split(","));
      socket.data = { user: q.name, server: name, n: 42 };
      socket.on("disconnect", (r) => log(`${name}${nsp.name} ${q.name} disconnected: ${r}`));
    });
  };
  setup(io.of("/"));
  setup(io.of("/admin"));
  io.on("hello", (...args) => log(`${name} got serverSideEmit hello`, JSON.stringify(args)));
  io.on("ping", (arg, cb) => { log(`${name} got serverSideEmit ping`, arg); cb(`pong from ${name}`); });
  io.listen(port);
  log(`server ${name} on ${port}, adapter uid=${io.of("/").adapter.uid} admin uid=${io.of("/admin").adapter.uid}`);
  return { io, pub, sub };
}

function client(port, name, room, nsp = "/") {
  const s = ioc(`http://127.0.0.1:${port}${nsp}`, { query: room ? { name, room } : { name }, transports: ["websocket"], forceNew: true });
  s.onAny((ev, ...args) => {
    const last = args[args.length - 1];
    if (typeof last === "function") {
      args.pop();
      log(`client ${name}${nsp === "/" ? "" : nsp} <- ${ev} ${JSON.stringify(args)} (ack requested)`);
      last(ev === "ackbin" ? Buffer.from(name) : `ack from ${name}`);
    } else log(`client ${name}${nsp === "/" ? "" : nsp} <- ${ev} ${JSON.stringify(args)}`);
  });
  return new Promise((r) => s.on("connect", () => r(s)));
}

(async () => {
  marker = createClient({ url: "redis://127.0.0.1:6379" });
  await marker.connect();
  await step("start servers");
  const A = await startServer("A", 3101);
  await sleep(300);
  log("PUBSUB NUMSUB after A:", await marker.sendCommand(["PUBSUB", "NUMSUB", "socket.io-request#/#"]));
  const B = await startServer("B", 3102);
  await sleep(300);
  log("PUBSUB CHANNELS:", await marker.sendCommand(["PUBSUB", "CHANNELS", "*"]));
  log("PUBSUB NUMPAT:", await marker.sendCommand(["PUBSUB", "NUMPAT"]));
  log("PUBSUB NUMSUB:", await marker.sendCommand(["PUBSUB", "NUMSUB", "socket.io-request#/#", "socket.io-response#/#", "socket.io-request#/admin#"]));

  await step("connect clients");
  const c1 = await client(3101, "c1", "r1");
  const c2 = await client(3101, "c2", "r2");
  const c3 = await client(3102, "c3", "r1");
  const c4 = await client(3102, "c4");
  const c5 = await client(3101, "c5", "r1", "/admin");
  const c6 = await client(3102, "c6", "r1", "/admin");
  const ioA = A.io, ioB = B.io;

  await step("io.emit");
  ioA.emit("ev", "hello", 1, 2.5, { a: [true, null] });
  await step("io.to('r1').emit");
  ioA.to("r1").emit("ev", "to r1");
  await step("io.to(['r1','r2']).emit");
  ioA.to(["r1", "r2"]).emit("ev", "to r1+r2");
  await step("io.except('r1').emit");
  ioA.except("r1").emit("ev", "except r1");
  await step("io.to('r2').except(['r1','x']).emit");
  ioA.to("r2").except(["r1", "x"]).emit("ev", "to r2 except r1,x");
  await step("socket.broadcast.emit (from c1's socket on A)");
  ioA.of("/").sockets.get(c1.id).broadcast.emit("ev", "broadcast from c1");
  await step("io.local.emit");
  ioA.local.emit("ev", "local only");
  await step("io.volatile.compress(false).emit");
  ioA.volatile.compress(false).emit("ev", "volatile nocompress");
  await step("binary io.emit");
  ioA.emit("bin", Buffer.from([1, 2, 3]), { b: Buffer.from("hi") });
  await step("io.of('/admin').to('r1').emit");
  ioA.of("/admin").to("r1").emit("ev", "admin r1");

  await step("io.timeout(1000).emit with acks (broadcastWithAck)");
  await new Promise((res) => ioA.timeout(1000).emit("ackme", "x", (err, responses) => { log("broadcastWithAck result", err && err.message, JSON.stringify(responses)); res(); }));
  await step("binary ack: io.to('r1').timeout(1000).emitWithAck");
  log("emitWithAck result", JSON.stringify(await ioA.to("r1").timeout(1000).emitWithAck("ackbin")));

  await step("io.fetchSockets()");
  const socks = await ioA.fetchSockets();
  log("fetchSockets:", JSON.stringify(socks.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, remote: s.constructor.name }))));
  await step("io.in('r1').fetchSockets()");
  log("fetchSockets r1:", (await ioA.in("r1").fetchSockets()).map((s) => s.data.user));
  await step("remote socket emit (fetchSockets()[c3].emit)");
  const rc3 = socks.find((s) => s.id === c3.id);
  rc3.emit("direct", "to c3 via RemoteSocket");
  await step("remote socket join/leave/disconnect (RemoteSocket.join)");
  rc3.join("r7");
  await sleep(200);
  rc3.leave("r7");
  await step("RemoteSocket.timeout(1000).emitWithAck (expectSingleResponse)");
  log("remote emitWithAck:", JSON.stringify(await rc3.timeout(1000).emitWithAck("ackme", "single")));

  await step("io.in('r1').socketsJoin('r9')");
  ioA.in("r1").socketsJoin(["r9", "r10"]);
  await step("io.in('r1').socketsLeave('r9')");
  ioA.in("r1").socketsLeave("r9");
  await step("io.of('/').adapter.allRooms()");
  log("allRooms:", [...(await ioA.of("/").adapter.allRooms())]);
  await step("io.allSockets()");
  log("allSockets:", [...(await ioA.allSockets())]);
  await step("serverCount");
  log("serverCount:", await ioA.of("/").adapter.serverCount());

  await step("io.serverSideEmit (no ack)");
  ioA.serverSideEmit("hello", "world", 1);
  await step("io.serverSideEmitWithAck");
  log("serverSideEmitWithAck:", JSON.stringify(await ioA.serverSideEmitWithAck("ping", "p")));

  await step("emitter");
  const epub = createClient({ url: "redis://127.0.0.1:6379" });
  await epub.connect();
  const emitter = new Emitter(epub, { key: "socket.io" });
  await step("emitter.emit");
  emitter.emit("ev", "from emitter", 7);
  await step("emitter.to('r1').emit");
  emitter.to("r1").emit("ev", "emitter r1");
  await step("emitter.to(['r1','r2']).except('r2').emit");
  emitter.to(["r1", "r2"]).except("r2").emit("ev", "emitter r1,r2 except r2");
  await step("emitter.except('r1').emit");
  emitter.except("r1").emit("ev", "emitter except r1");
  await step("emitter.of('/admin').emit");
  emitter.of("/admin").emit("ev", "emitter admin");
  await step("emitter.volatile.compress(true) binary");
  emitter.volatile.compress(true).emit("bin", Buffer.from([0xff, 0x00]));
  await step("emitter.serverSideEmit");
  emitter.serverSideEmit("hello", "from emitter");
  await step("emitter.in('r1').socketsJoin('e1')");
  emitter.in("r1").socketsJoin("e1");
  await step("emitter.socketsLeave('e1')");
  emitter.socketsLeave("e1");

  await step("io.in('r2').disconnectSockets(true)");
  ioA.in("r2").disconnectSockets(true);
  await step("emitter.in('r1').disconnectSockets()");
  emitter.of("/admin").in("r1").disconnectSockets();

  await step("RemoteSocket.disconnect() of c4");
  (await ioA.fetchSockets()).find((s) => s.id === c4.id).disconnect();
  await step("close");
  await sleep(500);
  [c1, c3, c4].forEach((c) => c.close());
  ioA.close(); ioB.close();
  await sleep(300);
  log("PUBSUB NUMSUB after close:", await marker.sendCommand(["PUBSUB", "NUMSUB", "socket.io-request#/#"]));
  process.exit(0);
})();
