// Two socket.io-client sockets per namespace talk through a relay server: every event with
// any argument list (none, null, an array, several, binary at any depth, keys in a set order)
// and acks with any argument list, both ways. The same script runs against our relay
// (examples/relay.rs) and the Node reference relay (node_relay.mjs); the Rust test compares
// the two results line for line.
// Usage: node client.mjs <base-url> <polling|websocket|upgrade>
import { args, connected, done, fail, finalTransport, socket, watchdog } from "../sio/lib.mjs";

const { url, mode } = args();
watchdog(25000);

/** A value as text, Buffers as {"$bin":[...]}, key order kept (JSON.stringify keeps it). */
function show(v) {
  return JSON.stringify(v, function (k, x) {
    const raw = this[k];
    if (Buffer.isBuffer(raw) || raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
      return { $bin: Array.from(Buffer.from(raw)) };
    }
    return x;
  });
}

const b = (...xs) => Buffer.from(xs);
/** Argument lists sent as events, and the lists receivers answer acks with. */
const LISTS = [
  [],
  [null],
  [[1, 2]],
  [1, 2],
  ["text", 1.5, true, { z: 1, a: 2, m: { y: null, b: [] } }],
  [b(1, 2, 3)],
  [{ z: 1, a: [b(0x1e, 0), { deep: [[b(255)]] }] }, "mid", b(), [b(7), b(8)]],
];

const NAMESPACES = ["/", "/relay-ns/42"];

async function pair(nsp) {
  const a = socket(url, mode, nsp, { forceNew: true });
  const c = socket(url, mode, nsp, { forceNew: true });
  await Promise.all([connected(a), connected(c)]);
  return [a, c];
}

/** Sends every list from `from` to `to`, as plain events then with acks; returns what `to`
 * saw and what `from`'s callbacks got, as text. */
async function exchange(from, to, tag) {
  const seen = [];
  const expected = LISTS.length * 2;
  const all = new Promise((resolve) => {
    to.onAny((ev, ...xs) => {
      const cb = typeof xs[xs.length - 1] === "function" ? xs.pop() : null;
      seen.push(`${ev} ${show(xs)}${cb ? " +ack" : ""}`);
      if (cb) cb(...LISTS[Number(ev.split("-")[2])].slice().reverse());
      if (seen.length === expected) resolve();
    });
  });
  LISTS.forEach((l, i) => from.emit(`${tag}-ev-${i}`, ...l));
  const replies = await Promise.all(
    LISTS.map(
      (l, i) =>
        new Promise((resolve, reject) => {
          from.timeout(5000).emit(`${tag}-ask-${i}`, ...l, (err, ...reply) =>
            err ? reject(err) : resolve(show(reply)),
          );
        }),
    ),
  );
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${tag}: got ${seen.length}/${expected} events: ${seen}`)), 5000);
  });
  await Promise.race([all, late]).catch((e) => fail(e.message));
  clearTimeout(timer);
  to.offAny();
  const sent = LISTS.map((l) => show(l));
  // What the receiver saw must be what was sent, and each reply the list the receiver gave.
  const ok =
    LISTS.every((_, i) => seen.includes(`${tag}-ev-${i} ${sent[i]}`) && seen.includes(`${tag}-ask-${i} ${sent[i]} +ack`)) &&
    replies.every((r, i) => r === show(LISTS[i].slice().reverse()));
  return { ok, seen: seen.sort(), replies };
}

const result = {};
for (const nsp of NAMESPACES) {
  const [a, c] = await pair(nsp);
  const there = await exchange(a, c, "a2c");
  const back = await exchange(c, a, "c2a");
  result[nsp] = { there, back };
  if (nsp === "/") result.transport = await finalTransport(a, mode);
  a.disconnect();
  c.disconnect();
}
done(result);
