// socket.io-client (npm v4) scenarios against the tower-socketio test servers of
// tests/sio_node.rs. `node client.mjs <base-url> <polling|websocket|upgrade> <scenario>`.
// The last stdout line is a JSON object with what the client observed.
import {
  ack,
  args,
  bytes,
  connectError,
  connected,
  done,
  fail,
  finalTransport,
  once,
  out,
  sleep,
  socket,
  watchdog,
} from "./lib.mjs";

watchdog();
const { url, mode, scenario } = args();

const scenarios = {
  // `/`, a custom namespace, unknown namespaces, dynamic namespaces: one shared connection.
  async namespaces() {
    const main = socket(url, mode, "/");
    await connected(main);
    const admin = socket(url, mode, "/admin");
    await connected(admin);
    const unknown = socket(url, mode, "/nope");
    const unknownErr = await connectError(unknown);
    const tooDeep = socket(url, mode, "/tenant/1/x");
    const tooDeepErr = await connectError(tooDeep);
    const t42 = socket(url, mode, "/tenant/42");
    const t7 = socket(url, mode, "/tenant/7");
    const dyn = socket(url, mode, "/dyn-abc");
    await Promise.all([connected(t42), connected(t7), connected(dyn)]);
    const all = [main, admin, t42, t7, dyn];
    const who = {};
    for (const s of all) who[s.nsp] = await ack(s, "who");
    const transport = await finalTransport(main, mode);
    // after the upgrade: the main namespace still answers
    const again = await ack(main, "who");
    return {
      unknownErr,
      tooDeepErr,
      who,
      again,
      sameManager: [admin, unknown, tooDeep, t42, t7, dyn].every((s) => s.io === main.io),
      engineId: main.io.engine.id,
      transport,
    };
  },

  // Connect middlewares: order, refusals with message and data, async refusals.
  async middleware() {
    const main = socket(url, mode, "/", { auth: { token: "main" } });
    await connected(main);
    const guarded = socket(url, mode, "/guarded", { auth: { token: "bad" } });
    const guardedErr = await connectError(guarded);
    guarded.auth = { token: "ok" };
    guarded.connect();
    await connected(guarded);
    const guardedAck = await ack(guarded, "hello");
    const strict = socket(url, mode, "/strict");
    const strictErr = await connectError(strict);
    const later = socket(url, mode, "/later");
    const laterErr = await connectError(later);
    const transport = await finalTransport(main, mode);
    const mainAck = await ack(main, "hello");
    return { guardedErr, guardedAck, strictErr, laterErr, mainAck, transport };
  },

  // The handshake as the server sees it.
  async handshake() {
    const s = socket(url, mode, "/", {
      auth: { token: "t1" },
      query: { foo: "bar" },
      extraHeaders: { "x-tsio-test": "hello" },
    });
    await connected(s);
    const seen = await ack(s, "handshake");
    const transport = await finalTransport(s, mode);
    const seenLater = await ack(s, "handshake");
    return { id: s.id, seen, seenLater, transport };
  },

  // Typed data, several args, no args, TryData, bad data, fallback, state, extensions.
  async events() {
    const s = socket(url, mode, "/", { auth: { name: "alice" } });
    const welcome = once(s, "welcome");
    await connected(s);
    const echo = once(s, "echo");
    s.emit("typed", { text: "hi", n: 7 });
    s.emit("multi", 1, "two", true);
    s.emit("zero");
    s.emit("zero_data");
    s.emit("try", { text: 5 });
    s.emit("try", { text: "ok", n: 1 });
    s.emit("strict", 42);
    const strictAck = await ack(s, "strict", "not an object");
    const fallback = await ack(s, "something_else", { x: 1 });
    const state = await ack(s, "state");
    const ext = await ack(s, "ext");
    const maybe = await ack(s, "maybe");
    const missingExt = await ack(s, "missing_ext");
    const [echoed] = await echo;
    const [welcomed] = await welcome;
    const transport = await finalTransport(s, mode);
    const last = await ack(s, "done");
    return { strictAck, fallback, state, ext, maybe, missingExt, echoed, welcomed, last, transport };
  },

  // Emits before and right on connect, handled by handlers an async connect handler
  // registers late; CONNECT arrives before what the connect handler emits; 200-event bursts.
  async ordering() {
    const s = socket(url, mode, "/");
    const packets = [];
    s.io.on("packet", (p) => {
      if (p.nsp === "/") packets.push(p.type === 2 ? `event:${p.data[0]}` : `type:${p.type}`);
    });
    let atWelcome = null;
    s.on("welcome", () => {
      atWelcome = { connected: s.connected, id: s.id ?? null };
    });
    const down = [];
    s.on("down", (n) => down.push(n));
    let n = 0;
    for (; n < 5; n++) s.emit("seq", n); // buffered until connected
    s.on("connect", () => {
      for (let i = 0; i < 5; i++) s.emit("seq", n++);
    });
    await connected(s);
    for (let i = 0; i < 200; i++) s.emit("seq", n++);
    const handled = await ack(s, "sync");
    const burst = await ack(s, "burst", 200);
    const deadline = Date.now() + 5000;
    while (down.length < 200 && Date.now() < deadline) await sleep(10);
    const transport = await finalTransport(s, mode);
    return {
      sent: n,
      handled,
      burst,
      down,
      atWelcome,
      firstPackets: packets.slice(0, 2),
      transport,
    };
  },

  // Acks both ways.
  async acks() {
    const s = socket(url, mode, "/");
    s.on("ask", (data, cb) => cb({ answer: data.q * 2 }));
    s.on("ask_multi", (n, cb) => cb(n + 1, "b"));
    s.on("ask_bad", (_data, cb) => cb("not a number"));
    const ignored = [];
    s.on("ignored", (data) => ignored.push(data)); // never calls back
    await connected(s);
    const sum = await ack(s, "sum", 1, 2);
    const pair = await new Promise((resolve) =>
      s.timeout(5000).emit("pair", (err, a, b) => resolve(err ? { err: String(err) } : [a, b])),
    );
    s.emit("maybe_ack", 1); // no callback: the server's AckSender is not requested
    const withAck = await ack(s, "maybe_ack", 2);
    const server = await ack(s, "server_acks");
    const transport = await finalTransport(s, mode);
    return { sum, pair, withAck, server, ignored, transport };
  },

  // Binary both ways, as arguments, inside objects, in acks.
  async binary() {
    const s = socket(url, mode, "/");
    const fromServer = once(s, "bin_struct");
    s.on("bin_ask", (data, cb) => cb(Buffer.from([9, 8, 7])));
    await connected(s);
    s.emit("bin_top", Buffer.from([1, 2, 3]));
    s.emit("bin_struct_in", { name: "file.bin", data: Buffer.from([4, 5, 6]) });
    s.emit("bin_u8", new Uint8Array([7, 8]));
    s.emit("bin_multi", Buffer.from([1]), "mid", Buffer.from([2, 2]));
    s.emit("bin_nested", { a: { list: [Buffer.from([0]), "x", Buffer.from([255, 254])] } });
    const binAck = await ack(s, "bin_ack", Buffer.from([10, 11, 12]));
    const started = await ack(s, "bin_start");
    const [obj] = await fromServer;
    const transport = await finalTransport(s, mode);
    const last = await ack(s, "done");
    return {
      binAck: bytes(binAck),
      started,
      fromServer: { name: obj.name, data: bytes(obj.data), tail: obj.tail },
      last,
      transport,
    };
  },

  // The client leaves one namespace, then the other; a pending server ack fails.
  async client_disconnect() {
    const main = socket(url, mode, "/");
    await connected(main);
    const admin = socket(url, mode, "/admin");
    await connected(admin);
    const transport = await finalTransport(main, mode);
    admin.disconnect();
    const afterAdmin = await ack(main, "ping");
    const never = once(main, "never");
    main.emit("pending_ack");
    await never; // the server now waits for an ack that will not come
    main.disconnect();
    await sleep(100);
    return { afterAdmin, transport, connected: [main.connected, admin.connected] };
  },

  // The server disconnects one socket; the client does not reconnect it.
  async server_disconnect() {
    const opts = { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50 };
    const main = socket(url, mode, "/", opts);
    await connected(main);
    const admin = socket(url, mode, "/admin", opts);
    await connected(admin);
    const transport = await finalTransport(main, mode);
    let attempts = 0;
    main.io.on("reconnect_attempt", () => attempts++);
    const gone = once(admin, "disconnect");
    admin.emit("kick");
    const [reason] = await gone;
    await sleep(300);
    const afterKick = await ack(main, "ping");
    const adminConnected = admin.connected;
    main.disconnect();
    await sleep(100); // let the DISCONNECT leave before the process exits
    return { reason, afterKick, adminConnected, attempts, transport };
  },

  // Connects, says so, then waits to be killed.
  async kill() {
    const s = socket(url, mode, "/");
    await connected(s);
    const transport = await finalTransport(s, mode);
    await ack(s, "ping");
    // let the next long-poll reach the server: with no request in flight a polling server
    // can only notice a dead client by the ping timeout (the reference server too)
    await sleep(300);
    out({ connected: true, transport });
    await sleep(60000);
    fail("not killed");
  },

  // Shutdown (`io.close`): as with the reference server, both sockets see the transport
  // close and the manager tries to reconnect; the closed server refuses the handshakes.
  async shutdown() {
    const opts = { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50 };
    const main = socket(url, mode, "/", opts);
    await connected(main);
    const admin = socket(url, mode, "/admin", opts);
    await connected(admin);
    const transport = await finalTransport(main, mode);
    let attempts = 0;
    main.io.on("reconnect_attempt", () => attempts++);
    let refused = 0;
    const twoRefusals = new Promise((resolve) => {
      main.io.on("reconnect_error", () => {
        refused++;
        if (refused === 2) resolve();
      });
    });
    const reasons = Promise.all([once(main, "disconnect", 8000), once(admin, "disconnect", 8000)]);
    const enginePackets = []; // what the engine delivered after "ready", for diagnosis
    main.io.engine.on("packet", (p) => enginePackets.push(`${p.type}:${p.data ?? ""}`));
    main.emit("ready");
    const [[mainReason], [adminReason]] = await reasons;
    await Promise.race([twoRefusals, sleep(8000)]);
    const connectedAfter = [main.connected, admin.connected];
    main.close();
    admin.close();
    return {
      mainReason,
      adminReason,
      attempts,
      refused,
      connected: connectedAfter,
      transport,
      enginePackets,
    };
  },
};

const run = scenarios[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
run().then(done, (e) => fail(e.stack || String(e)));
