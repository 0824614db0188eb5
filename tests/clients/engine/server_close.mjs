// Asks the server to close the session ("close me"); reports what arrived and how it closed.
import { args, connect, ready, run, sleep } from "./lib.mjs";

run(async () => {
  const { url, mode } = args();
  const socket = connect(url, mode);
  await ready(socket, mode);
  const got = [];
  socket.on("message", (data) => got.push(String(data)));
  const reason = new Promise((r) => socket.once("close", (reason) => r(reason)));
  // Let the long-polling GET reach the server first.
  await sleep(100);
  socket.send("close me");
  return { transport: socket.transport.name, messages: got, closeReason: await reason };
});
