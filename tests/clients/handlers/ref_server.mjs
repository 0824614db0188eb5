// The Node reference server for tests/handlers_wire.rs: the same handlers as the Rust server
// of that test, written with Node's API, so a raw client can compare both servers' frames.
// Prints {"url": ...} once listening; exits when stdin closes.
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer();
const io = new Server(http);
io.on("connection", (socket) => {
  // Emits `q` with an ack and the trigger's argument list, then reports the ack's list.
  socket.on("trigger", (...args) => {
    socket.timeout(5000).emit("q", ...args, (err, ...reply) => {
      socket.emit("reply", err ? { error: err.message } : reply);
    });
  });
  const fetch = async () => {
    const sockets = await io.fetchSockets();
    socket.emit("fetched", sockets.map((s) => s.data));
  };
  socket.on("fetch", fetch);
  socket.on("fetch_io", fetch);
});
// A namespace whose clients must send `auth.name`: Node refuses in a middleware.
io.of("/auth").use((socket, next) => {
  if (typeof socket.handshake.auth.name === "string") return next();
  next(new Error("missing name"));
});
io.of("/auth").on("connection", (socket) => socket.emit("hello", socket.handshake.auth.name));
// A refusal with data.
io.of("/data").use((socket, next) => {
  const e = new Error("refused");
  e.data = { code: 7 };
  next(e);
});
http.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${http.address().port}` }) + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
