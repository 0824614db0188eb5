// Brief look at the *sharded* adapter (createShardedAdapter, SSUBSCRIBE/SPUBLISH, Redis >= 7).
// PSUBSCRIBE does not see sharded messages: run `redis-cli monitor` alongside to capture SPUBLISH payloads.
// Usage: NODE_PATH=/work/main/tests/clients/node_modules node sharded.js
const { Server } = require("socket.io");
const { io: ioc } = require("socket.io-client");
const { createClient } = require("redis");
const { createShardedAdapter } = require("@socket.io/redis-adapter");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log("[sharded]", ...a);
async function start(name, port) {
  const pub = createClient({ url: "redis://127.0.0.1:6379" }); const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server({ adapter: createShardedAdapter(pub, sub) });
  io.on("connection", (s) => { if (s.handshake.query.room) s.join(s.handshake.query.room); s.data = { name }; });
  io.on("ping", (a, cb) => cb("pong " + name));
  io.listen(port); log(name, "uid", io.of("/").adapter.uid); return io;
}
(async () => {
  const A = await start("A", 3301); await sleep(200); const B = await start("B", 3302); await sleep(1500);
  const cl = [ioc("http://127.0.0.1:3302", { query: { room: "r1" }, transports: ["websocket"] })];
  cl[0].onAny((ev, ...a) => { const f = a[a.length - 1]; if (typeof f === "function") { a.pop(); f("ack"); } log("client <-", ev, JSON.stringify(a)); });
  await sleep(500);
  log("--- io.emit"); A.emit("ev", 1); await sleep(300);
  log("--- io.to(r1).emit"); A.to("r1").emit("ev", "r1", Buffer.from([1])); await sleep(300);
  log("--- fetchSockets"); log((await A.fetchSockets()).map((s) => s.data)); await sleep(300);
  log("--- timeout emit"); log(await A.timeout(1000).emitWithAck("ackme")); await sleep(300);
  log("--- serverSideEmitWithAck"); log(await A.serverSideEmitWithAck("ping", 1)); await sleep(300);
  cl[0].close(); A.close(); B.close(); await sleep(300); process.exit(0);
})();
