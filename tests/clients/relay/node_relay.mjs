// The reference relay on the Node socket.io server: what examples/relay.rs does, written
// with Node's API, so the relay tests can compare both servers' behaviour.
// Prints {"url": ...} once listening; runs until killed (stdin closed).
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer();
const io = new Server(http);
function relay(socket) {
  socket.onAny((ev, ...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (!cb) {
      socket.broadcast.emit(ev, ...args);
      return;
    }
    // Per receiver, so every argument of its answer comes back (a broadcast keeps only the
    // first); the first answer wins.
    const others = [...socket.nsp.sockets.values()].filter((s) => s.id !== socket.id);
    if (others.length === 0) return cb();
    let answered = false;
    let left = others.length;
    for (const s of others) {
      s.timeout(5000).emit(ev, ...args, (err, ...reply) => {
        left -= 1;
        if (!err && !answered) {
          answered = true;
          cb(...reply);
        } else if (left === 0 && !answered) cb();
      });
    }
  });
}
io.on("connection", relay); // `/` exists from the start: the pattern below never sees it
io.of(/.*/).on("connection", relay);
http.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${http.address().port}` }) + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
