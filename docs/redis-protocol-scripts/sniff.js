// Passive observer: PSUBSCRIBE "*" and print every published message as
// channel + raw hex + decoded form (JSON if first byte is '{', else msgpack via notepack.io).
// Usage: NODE_PATH=/work/main/tests/clients/node_modules node sniff.js [pattern]
const { createClient } = require("redis");
const notepack = require("notepack.io");

const pattern = process.argv[2] || "*";
const show = (v) =>
  JSON.stringify(v, (k, x) => {
    if (x && x.type === "Buffer" && Array.isArray(x.data)) return `<Buffer ${Buffer.from(x.data).toString("hex")}>`;
    return x;
  });

(async () => {
  const sub = createClient({ url: "redis://127.0.0.1:6379" });
  await sub.connect();
  await sub.pSubscribe(
    pattern,
    (msg, channel) => {
      channel = channel.toString();
      if (channel === "marker") {
        console.log(`\n===== ${msg.toString()} =====`);
        return;
      }
      let kind, decoded;
      try {
        if (msg[0] === 0x7b) { kind = "JSON"; decoded = JSON.parse(msg.toString()); }
        else { kind = "MSGPACK"; decoded = notepack.decode(msg); }
      } catch (e) { kind = "UNDECODABLE"; decoded = e.message; }
      console.log(`[${new Date().toISOString().slice(11, 23)}] ch=${channel} len=${msg.length} ${kind}`);
      console.log(`  hex: ${msg.toString("hex")}`);
      if (kind === "JSON") console.log(`  raw: ${msg.toString()}`);
      console.log(`  dec: ${show(decoded)}`);
    },
    true // return buffers
  );
  console.error("sniffer ready");
})();
