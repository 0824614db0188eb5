// Shared bits of the socket.io-client test scripts: arguments, a watchdog, waiting helpers.
// A script prints JSON lines; the last one is the result the Rust test checks. Any failure
// or timeout exits non-zero with the reason on stderr.
import { io } from "socket.io-client";

export const MODES = ["polling", "websocket", "upgrade"];

/** `node script.mjs <base-url> <polling|websocket|upgrade> [scenario]` */
export function args() {
  const [url, mode, scenario] = process.argv.slice(2);
  if (!url || !MODES.includes(mode)) {
    fail(`usage: ${process.argv[1]} <base-url> <${MODES.join("|")}> [scenario]`);
  }
  return { url, mode, scenario };
}

export function fail(msg) {
  process.stderr.write(`FAIL: ${msg}\n`);
  process.exit(2);
}

/** Kills the script after `ms`: a client must fail, never hang. */
export function watchdog(ms = 20000) {
  setTimeout(() => fail(`watchdog: no result after ${ms} ms`), ms);
}

/** Prints one JSON line. */
export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Prints the result line and exits 0. */
export function done(result) {
  out(result);
  process.exit(0);
}

/** socket.io-client options for `mode`, plus `extra`. Reconnection off unless asked. */
export function options(mode, extra = {}) {
  const transports = {
    polling: ["polling"],
    websocket: ["websocket"],
    upgrade: ["polling", "websocket"],
  }[mode];
  return {
    transports,
    upgrade: mode === "upgrade",
    reconnection: false,
    timeout: 5000,
    ...extra,
  };
}

/** A socket on `url` + `nsp` (the manager is shared for one URL, as in an app). */
export function socket(url, mode, nsp = "/", extra = {}) {
  return io(url + (nsp === "/" ? "" : nsp), options(mode, extra));
}

/** Resolves with the listener's arguments the next time `event` fires. */
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), ms);
    emitter.once(event, (...a) => {
      clearTimeout(t);
      resolve(a);
    });
  });
}

/** Resolves once the socket is connected; rejects on connect_error. */
export function connected(s, ms = 5000) {
  if (s.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`connect to ${s.nsp} timed out`)), ms);
    s.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
    s.once("connect_error", (e) => {
      clearTimeout(t);
      reject(new Error(`connect_error on ${s.nsp}: ${e.message} ${JSON.stringify(e.data)}`));
    });
  });
}

/** The socket's connect_error, as `{message, data}`. */
export async function connectError(s, ms = 5000) {
  const [e] = await once(s, "connect_error", ms);
  return { message: e.message, data: e.data === undefined ? null : e.data };
}

/** emitWithAck with a timeout. */
export function ack(s, event, ...a) {
  return s.timeout(5000).emitWithAck(event, ...a);
}

/** The engine's transport once settled: in upgrade mode, waits for the upgrade. */
export async function finalTransport(s, mode, ms = 5000) {
  const engine = s.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    await once(engine, "upgrade", ms);
  }
  return engine.transport.name;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A Buffer/Uint8Array/ArrayBuffer as an array of numbers, with what it was. */
export function bytes(b) {
  const kind = Buffer.isBuffer(b)
    ? "Buffer"
    : b instanceof ArrayBuffer
      ? "ArrayBuffer"
      : ArrayBuffer.isView(b)
        ? "view"
        : typeof b;
  return { kind, bytes: Array.from(Buffer.from(b)) };
}
