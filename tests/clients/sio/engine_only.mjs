// A raw engine.io-client (npm) on the Socket.IO path: `idle` never joins a namespace and must
// be closed by the server's connect timeout; `joined` sends a Socket.IO CONNECT and must stay.
// `node engine_only.mjs <base-url> <polling|websocket|upgrade>`
import { Socket } from "engine.io-client";
import { args, done, fail, options, sleep, watchdog } from "./lib.mjs";

watchdog();
const { url, mode } = args();

function open(join) {
  const { transports, upgrade } = options(mode);
  const s = new Socket(url, { path: "/socket.io/", transports, upgrade });
  const state = { opened: false, closed: null, messages: [] };
  s.on("open", () => {
    state.opened = true;
    state.openedAt = Date.now();
    if (join) s.send("0"); // a Socket.IO CONNECT to "/"
  });
  s.on("message", (m) => state.messages.push(String(m)));
  s.on("close", (reason) => {
    state.closed = reason;
    state.closedAfterMs = Date.now() - state.openedAt;
  });
  return { s, state };
}

const idle = open(false);
const joined = open(true);
const deadline = Date.now() + 5000;
while (idle.state.closed === null && Date.now() < deadline) await sleep(20);
if (!idle.state.opened || !joined.state.opened) fail("an engine socket did not open");
// give the joined one time past the connect timeout too
await sleep(500);
const joinedTransport = joined.s.transport?.name ?? null;
const joinedClosed = joined.state.closed;
joined.s.close();
done({
  idle: { closed: idle.state.closed, closedAfterMs: idle.state.closedAfterMs ?? null },
  joined: {
    closed: joinedClosed,
    connectReply: joined.state.messages.find((m) => m.startsWith("0")) ?? null,
    transport: joinedTransport,
  },
});
