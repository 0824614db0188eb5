// Stays connected across several short ping intervals, counting the server's pings, then
// checks the session still echoes and closes it.
import { args, closed, connect, messages, ready, run, sleep } from "./lib.mjs";

run(async () => {
  const { url, mode } = args();
  const waitMs = Number(process.argv[4] ?? 1500);
  const socket = connect(url, mode);
  let pings = 0;
  socket.on("ping", () => pings++);
  let closedEarly = null;
  socket.on("close", (r) => (closedEarly ??= r));
  await ready(socket, mode);
  await sleep(waitMs);
  if (closedEarly) throw new Error(`closed while idle: ${closedEarly}`);
  const echo = messages(socket, 1);
  socket.send("still there?");
  const got = await echo;
  const reason = closed(socket);
  socket.close();
  return { transport: socket.transport.name, pings, echoes: got, closeReason: await reason };
});
