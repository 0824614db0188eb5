// Many sockets joining and leaving rooms while the server broadcasts, for rooms_stress.rs.
//
// `node stress.mjs <base-url> <sockets> <seed>`: opens the sockets (even indexes polling, odd
// WebSocket; `forceNew`, so each has its own connection), prints
// {type:"ready", sids:[...]} and then answers one JSON command per stdin line:
//
//   {cmd:"begin", phase}  starts a phase: forgets what was recorded -> {type:"begun", phase}
//   {cmd:"churn", phase, ops, rooms}  every socket does `ops` random joins/leaves of 1-2 of
//        `rooms` rooms (named r0..), one after the other, with small random pauses; all
//        sockets at once. -> {type:"churned", phase, rooms:[[...]], touched:[[...]]}
//        with each socket's rooms as the server's last ack reported them, and the rooms
//        its operations touched.
//   {cmd:"collect", phase}  waits until every socket got `fence` = phase, then
//        -> {type:"collected", phase, stable:[[s...]], n0:[[[s, room]...]], n1:[[s...]],
//            violations:[...]}
//        `stable`: the `b` events ({p, s}) of this phase in arrival order; `n0`/`n1` the
//        noise events ({p, s, r}) of this phase. Violations: an event of another phase, a
//        noise sequence number not strictly increasing, a disconnect.
//   {cmd:"exit"}  disconnects every socket, -> {type:"bye"}, exits 0.
import { io } from "socket.io-client";
import readline from "node:readline";

const [base, countArg, seedArg] = process.argv.slice(2);
const COUNT = Number(countArg || 200);
let seed = Number(seedArg || 1) >>> 0;

setTimeout(() => {
  process.stderr.write("stress: watchdog fired\n");
  process.exit(3);
}, 280_000).unref();

function rand() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (n) => Math.floor(rand() * n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function fresh() {
  return { stable: [], n0: [], n1: [], last: { n0: -1, n1: -1 }, fence: false };
}

const socks = [];
let phase = 0;
const violations = [];
let fenceWaiter = null;

function checkFence() {
  if (fenceWaiter && socks.every((s) => s.rec.fence)) {
    const w = fenceWaiter;
    fenceWaiter = null;
    w();
  }
}

async function openAll() {
  const opened = [];
  for (let i = 0; i < COUNT; i++) {
    const transport = i % 2 === 0 ? "polling" : "websocket";
    const socket = io(base, {
      transports: [transport],
      upgrade: false,
      reconnection: false,
      forceNew: true,
      timeout: 20000,
    });
    const s = { i, socket, rooms: [], touched: new Set(), rec: fresh() };
    socks.push(s);
    socket.on("b", (d) => {
      if (d.p !== phase) violations.push(`${i}: b of phase ${d.p} during ${phase}`);
      else s.rec.stable.push(d.s);
    });
    for (const ev of ["n0", "n1"]) {
      socket.on(ev, (d) => {
        if (d.p !== phase) {
          violations.push(`${i}: ${ev} of phase ${d.p} during ${phase}`);
          return;
        }
        if (d.s <= s.rec.last[ev]) {
          violations.push(`${i}: ${ev} ${d.s} after ${s.rec.last[ev]}`);
        }
        s.rec.last[ev] = d.s;
        s.rec[ev].push(ev === "n0" ? [d.s, d.r] : d.s);
      });
    }
    socket.on("fence", (p) => {
      if (p === phase) s.rec.fence = true;
      checkFence();
    });
    socket.on("disconnect", (reason) => {
      if (!exiting) violations.push(`${i}: disconnected (${reason})`);
    });
    opened.push(
      new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", (e) => reject(new Error(`socket ${i}: ${e.message}`)));
      }),
    );
    // Do not open everything in one burst.
    if (i % 20 === 19) await sleep(10);
  }
  await Promise.all(opened);
}

let exiting = false;

function begin({ phase: p }) {
  phase = p;
  for (const s of socks) {
    s.rec = fresh();
    s.touched = new Set();
  }
  return { type: "begun", phase: p };
}

async function churn({ phase: p, ops, rooms }) {
  if (p !== phase) throw new Error(`churn ${p} during phase ${phase}`);
  await Promise.all(
    socks.map(async (s) => {
      for (let k = 0; k < ops; k++) {
        await sleep(pick(15));
        const names = [`r${pick(rooms)}`];
        if (rand() < 0.4) names.push(`r${pick(rooms)}`);
        names.forEach((n) => s.touched.add(n));
        const ev = rand() < 0.55 ? "join" : "leave";
        s.rooms = await s.socket.timeout(20000).emitWithAck(ev, names);
      }
    }),
  );
  return {
    type: "churned",
    phase: p,
    rooms: socks.map((s) => s.rooms),
    touched: socks.map((s) => [...s.touched]),
  };
}

async function collect({ phase: p }) {
  if (p !== phase) throw new Error(`collect ${p} during phase ${phase}`);
  await Promise.race([
    new Promise((resolve) => {
      fenceWaiter = resolve;
      checkFence();
    }),
    sleep(60000).then(() => {
      throw new Error(
        `fence ${p} missing on sockets ${socks.filter((s) => !s.rec.fence).map((s) => s.i)}`,
      );
    }),
  ]);
  return {
    type: "collected",
    phase: p,
    stable: socks.map((s) => s.rec.stable),
    n0: socks.map((s) => s.rec.n0),
    n1: socks.map((s) => s.rec.n1),
    violations: violations.splice(0),
  };
}

async function main() {
  await openAll();
  out({ type: "ready", sids: socks.map((s) => s.socket.id) });
  const rl = readline.createInterface({ input: process.stdin });
  // Commands run one at a time, in order.
  let chain = Promise.resolve();
  rl.on("line", (line) => {
    if (!line.trim()) return;
    chain = chain.then(async () => {
      const cmd = JSON.parse(line);
      try {
        if (cmd.cmd === "begin") out(begin(cmd));
        else if (cmd.cmd === "churn") out(await churn(cmd));
        else if (cmd.cmd === "collect") out(await collect(cmd));
        else if (cmd.cmd === "exit") {
          exiting = true;
          socks.forEach((s) => s.socket.disconnect());
          out({ type: "bye" });
          setTimeout(() => process.exit(0), 100);
        } else throw new Error(`unknown command ${line}`);
      } catch (e) {
        out({ type: "error", error: String(e && e.stack ? e.stack : e) });
      }
    });
  });
  rl.on("close", () => process.exit(0));
}

main().catch((e) => {
  process.stderr.write(`stress: ${e && e.stack ? e.stack : e}\n`);
  process.exit(2);
});
