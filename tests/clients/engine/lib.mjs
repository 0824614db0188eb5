// Shared bits of the engine.io-client test scripts: argument parsing, a watchdog, output.
// Each script prints one JSON line with what it observed; the Rust test checks it.
import { Socket } from "engine.io-client";

/** `node script.mjs <base-url> <upgrade|websocket|polling>` */
export function args() {
  const [url, mode = "upgrade"] = process.argv.slice(2);
  if (!url || !["upgrade", "websocket", "polling"].includes(mode)) {
    fail(`usage: ${process.argv[1]} <base-url> <upgrade|websocket|polling>`);
  }
  return { url, mode };
}

/** A socket on `url` whose transports follow `mode`. */
export function connect(url, mode) {
  const transports = {
    upgrade: ["polling", "websocket"],
    websocket: ["websocket"],
    polling: ["polling"],
  }[mode];
  return new Socket(url, { path: "/engine.io/", transports, upgrade: mode === "upgrade" });
}

/** Resolves once the socket is open on its final transport (after the upgrade, if any). */
export function ready(socket, mode) {
  return new Promise((resolve, reject) => {
    socket.once("error", (e) => reject(new Error(`socket error: ${e}`)));
    socket.once("close", (r) => reject(new Error(`closed before ready: ${r}`)));
    if (mode === "upgrade") {
      socket.once("upgrade", () => resolve());
      socket.once("upgradeError", (e) => reject(new Error(`upgrade failed: ${e}`)));
    } else {
      socket.once("open", () => resolve());
    }
  });
}

/** The next `n` messages, as `{text}` or `{binary: [bytes]}`. */
export function messages(socket, n) {
  return new Promise((resolve) => {
    const got = [];
    const onMessage = (data) => {
      got.push(
        typeof data === "string" ? { text: data } : { binary: Array.from(Buffer.from(data)) },
      );
      if (got.length === n) {
        socket.off("message", onMessage);
        resolve(got);
      }
    };
    socket.on("message", onMessage);
  });
}

/** Resolves with the close reason. */
export function closed(socket) {
  return new Promise((resolve) => socket.once("close", (reason) => resolve(reason)));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

/** Runs `main`, prints its result as JSON and exits; fails after `limitMs`. */
export function run(main, limitMs = 15000) {
  const watchdog = setTimeout(() => fail(`no result after ${limitMs} ms`), limitMs);
  main().then(
    (result) => {
      clearTimeout(watchdog);
      console.log(JSON.stringify(result));
      // Exit once pending I/O (such as the close packet's POST) is done; force it after 2 s.
      setTimeout(() => process.exit(0), 2000).unref();
    },
    (e) => fail(e && e.stack ? e.stack : String(e)),
  );
}
