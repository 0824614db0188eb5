// The Node.js socket.io v4 server of scripts/bench.sh: the same events as
// examples/bench_server.rs, as a Node user would write them.
//   echo:  the arguments go back to the sender as "echo"
//   join:  the socket joins the room "bench"
//   bcast: the arguments are broadcast to the room "bench" as "bcast", the sender included
// Listens with a backlog of 4096, as the Rust servers. Usage: node node_server.js 127.0.0.1:3200
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const [host, port] = (process.argv[2] || "127.0.0.1:3200").split(":");
const server = http.createServer();
const io = new Server(server, { serveClient: false });
io.on("connection", (socket) => {
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("join", () => socket.join("bench"));
  socket.on("bcast", (...args) => io.to("bench").emit("bcast", ...args));
});
server.listen({ host, port: Number(port), backlog: 4096 }, () => {
  console.log(`ready node socket.io ${require("socket.io/package.json").version} on ${host}:${port}`);
});
