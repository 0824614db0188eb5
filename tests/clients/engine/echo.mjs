// Connects, sends a text and a binary message, waits for both echoes, then closes.
import { args, closed, connect, messages, ready, run } from "./lib.mjs";

run(async () => {
  const { url, mode } = args();
  const socket = connect(url, mode);
  const opened = new Promise((r) => socket.once("open", () => r(socket.transport.name)));
  await ready(socket, mode);
  const openedOn = await opened;
  const echoes = messages(socket, 2);
  socket.send("hello ☃");
  socket.send(Uint8Array.from([1, 2, 3, 255]));
  const got = await echoes;
  const transport = socket.transport.name;
  const reason = closed(socket);
  socket.close();
  return { openedOn, transport, echoes: got, closeReason: await reason };
});
