// The Node.js socket.io v4 server of scripts/bench.sh: the same events as
// examples/bench_server.rs, as a Node user would write them.
//   echo:  the arguments go back to the sender as "echo"
//   join:  the socket joins the room given as argument ("bench" without one) and answers
//          the ack if the client asked for one
//   leave: the socket leaves the room given as argument
//   bcast: the arguments are broadcast to the room "bench" as "bcast", the sender included
//   bcast-room (room, payload): the payload is broadcast to that room as "bcast-room", the
//          sender included (the rooms-churn senders are in no room)
// Listens with a backlog of 4096, as the Rust servers. Usage: node node_server.js 127.0.0.1:3200
// With REDIS_URL set, the node joins a cluster through @socket.io/redis-adapter (key
// BENCH_REDIS_KEY, default "socket.io"), as the adapter's documentation sets it up; with
// BENCH_ADAPTER=streams too, through @socket.io/redis-streams-adapter instead (stream name
// and channel prefix BENCH_REDIS_KEY).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const [host, port] = (process.argv[2] || "127.0.0.1:3200").split(":");
const server = http.createServer();
const io = new Server(server, { serveClient: false });
io.on("connection", (socket) => {
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("join", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    socket.join(typeof args[0] === "string" ? args[0] : "bench");
    if (ack) ack();
  });
  socket.on("leave", (room) => socket.leave(room));
  socket.on("bcast", (...args) => io.to("bench").emit("bcast", ...args));
  socket.on("bcast-room", (room, payload) => io.to(room).emit("bcast-room", payload));
});
async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const key = process.env.BENCH_REDIS_KEY || "socket.io";
    const kind = process.env.BENCH_ADAPTER || "pubsub";
    if (kind === "streams") {
      const { createAdapter } = require("@socket.io/redis-streams-adapter");
      const client = createClient({ url: process.env.REDIS_URL });
      await client.connect();
      io.adapter(createAdapter(client, {
        streamName: key,
        channelPrefix: key,
        sessionKeyPrefix: `${key}:session:`,
      }));
    } else if (kind === "pubsub") {
      const { createAdapter } = require("@socket.io/redis-adapter");
      const pubClient = createClient({ url: process.env.REDIS_URL });
      const subClient = pubClient.duplicate();
      await Promise.all([pubClient.connect(), subClient.connect()]);
      io.adapter(createAdapter(pubClient, subClient, { key }));
    } else {
      throw new Error(`BENCH_ADAPTER=${kind}: expected pubsub or streams`);
    }
  }
  server.listen({ host, port: Number(port), backlog: 4096 }, () => {
    const adapter = io.of("/").adapter.constructor.name;
    console.log(`ready node socket.io ${require("socket.io/package.json").version} (${adapter}) on ${host}:${port}`);
  });
}
main();
