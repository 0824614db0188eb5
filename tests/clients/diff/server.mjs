// The reference side of the differential wire harness (tests/diff/): a Node.js engine.io or
// socket.io server with the behaviour that tests/diff/ours.rs gives tower-socketio, so that
// the same scripted sessions can be run against both and their transcripts compared.
//
// Usage: node server.mjs '<json config>'; prints {"port":N} once listening, exits when its
// stdin closes (the test process went away).
//
// Config: {"layer":"engine"|"sio","port" (default: any),"pingInterval","pingTimeout","maxPayload","upgradeTimeout",
//          "allowEIO3","msgpack"}
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const cfg = JSON.parse(process.argv[2] ?? "{}");

const opts = {
  pingInterval: cfg.pingInterval,
  pingTimeout: cfg.pingTimeout,
  maxHttpBufferSize: cfg.maxPayload,
  upgradeTimeout: cfg.upgradeTimeout,
  allowEIO3: !!cfg.allowEIO3,
};

const server = http.createServer();

if (cfg.layer === "engine") {
  const { Server } = require("engine.io");
  const engine = new Server(opts);
  server.on("request", (req, res) => engine.handleRequest(req, res));
  server.on("upgrade", (req, socket, head) => engine.handleUpgrade(req, socket, head));
  // Sessions that sent "observe" (answered "observing") get "closed:<reason>" for every
  // other session's close.
  const observers = new Set();
  engine.on("connection", (socket) => {
    socket.on("message", (data) => {
      if (data === "observe") {
        observers.add(socket);
        // Acknowledged, so a case knows it is registered before it closes others.
        socket.send("observing");
        return;
      }
      if (data === "close") {
        socket.close();
        return;
      }
      socket.send(data);
    });
    socket.on("close", (reason) => {
      if (observers.delete(socket)) return;
      for (const o of observers) o.send(`closed:${reason}`);
    });
  });
} else {
  const { Server } = require("socket.io");
  const io = new Server(server, {
    ...opts,
    path: "/socket.io/",
    parser: cfg.msgpack ? require("socket.io-msgpack-parser") : undefined,
  });
  const observe = (nsp, reason) => io.of("/observer").emit("gone", nsp, reason);
  // "/": echo and acks, disconnects on demand, a greeting on connect.
  const main = (socket) => {
    socket.emit("welcome", socket.nsp.name);
    socket.on("echo", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      socket.emit("echo", ...args);
      if (ack) ack(...args);
    });
    socket.on("ack", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      if (ack) ack(...args);
    });
    socket.on("bin", () => {
      socket.emit("bin", Buffer.from([1, 2, 3]), { a: [0, { b: Buffer.from([4, 5]) }] }, [Buffer.alloc(0)]);
    });
    socket.on("bye", () => socket.disconnect());
    socket.on("shutdown", () => io.close());
    socket.on("close", () => socket.disconnect(true));
    socket.on("disconnect", (reason) => observe(socket.nsp.name, reason));
  };
  io.of("/").on("connection", main);
  io.of("/second").on("connection", main);
  io.of("/observer").on("connection", () => {});
  io.of("/forbidden").use((_socket, next) => {
    const err = new Error("not allowed");
    err.data = { code: 42 };
    next(err);
  });
  io.of("/forbidden").on("connection", () => {});
}

// Requests received and not yet answered (a long-poll GET waiting, a POST whose body is
// still coming), counted after the server's own listeners are in place so that every
// request is seen; the harness asks for the count on a port of its own, so that asking is
// not itself a request here.
let waiting = 0;
server.on("request", (req, res) => {
  waiting++;
  res.on("close", () => waiting--);
});
const probe = http.createServer((req, res) => res.end(String(waiting)));

server.listen(cfg.port ?? 0, "127.0.0.1", () => {
  probe.listen(0, "127.0.0.1", () => {
    const ports = { port: server.address().port, probe: probe.address().port };
    process.stdout.write(JSON.stringify(ports) + "\n");
  });
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
