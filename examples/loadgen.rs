//! Load generator of `scripts/bench.sh`: an Engine.IO v4 / Socket.IO v5 client (and a plain
//! WebSocket client for the raw server) written for speed, so it is never the bottleneck.
//!
//! It speaks WebSocket itself over a `TcpStream` (client frames carry a zero mask key, which
//! is legal and makes masking free), gathers every reply to one read into one write, keeps
//! one read and one write buffer per connection and allocates nothing per message. One
//! thread (a current-thread runtime; the script pins it to its own core).
//!
//! ```text
//! loadgen --proto sio|raw
//!         --scenario echo|fanout|fanout-bin|connect|upgrade|polling-echo|churn|cluster|idle|echo-count
//!         --addr 127.0.0.1:3100[,127.0.0.1:3101,…] [--server-pid PID[,PID…]]
//!         [--redis-pid PID]                                         (cluster)
//!         [--clients N] [--inflight K] [--duration SECS] [--warmup SECS] [--concurrency C]
//!         [--rate OPS_PER_S] [--bcast-rate PER_S] [--senders S]     (churn)
//!         [--sources S]                                             (idle)
//!         [--count N]                                               (echo-count)
//! ```
//! `cluster` is `fanout` over several server processes (one address and pid each, joined by
//! an adapter): the receivers are spread round-robin, the sender is on the first; CPU is
//! summed over the pids; with `--redis-pid`, the CPU of that process (the Redis the nodes
//! share) over the same window is reported beside it, not added to it. `idle` opens many connections (from `--sources` loopback addresses
//! 127.0.0.1, 127.0.0.2, … so that each has its own ephemeral port range), all in the room
//! `bench`, measures the server's RSS per connection, then times one broadcast to all.
//! Prints one line `RESULT {json}`: throughput, latency percentiles (µs), the server's CPU
//! time per unit of work (from `/proc/PID/stat`), the load generator's own CPU use, and for
//! the connect scenarios the server's RSS per idle connection (from `/proc/PID/status`).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::time::timeout_at;

// ---------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Sio,
    Raw,
}

#[derive(Clone, Debug)]
struct Opts {
    proto: Proto,
    scenario: String,
    addr: SocketAddr,
    /// Every server address (`cluster`); `addr` is the first.
    addrs: Vec<SocketAddr>,
    /// Every server process: CPU and RSS are summed over them.
    server_pids: Vec<u32>,
    /// cluster: the Redis process the nodes share, whose CPU is reported on its own.
    redis_pid: Option<u32>,
    /// echo-count: the number of echoes.
    count: usize,
    /// idle: the loopback source addresses to connect from (0: one per 5 000 clients: with
    /// fewer, finding a free port for each bind slows connecting down, and the previous
    /// runs' TIME_WAIT sockets can use them up).
    sources: usize,
    clients: usize,
    inflight: usize,
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    /// churn: join+leave operations per second in all.
    rate: f64,
    /// churn: broadcasts per second in all.
    bcast_rate: f64,
    /// churn: the sockets that broadcast (in no room).
    senders: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        proto: Proto::Sio,
        scenario: "echo".into(),
        addr: "127.0.0.1:3100".parse().unwrap(),
        addrs: Vec::new(),
        server_pids: Vec::new(),
        redis_pid: None,
        sources: 0,
        count: 1000,
        clients: 0,
        inflight: 0,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        concurrency: 100,
        rate: 4000.0,
        bcast_rate: 400.0,
        senders: 4,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--proto" => {
                o.proto = match v.as_str() {
                    "raw" => Proto::Raw,
                    _ => Proto::Sio,
                }
            }
            "--scenario" => o.scenario = v,
            "--addr" => {
                o.addrs = v
                    .split(',')
                    .map(|a| a.parse().expect("--addr host:port[,host:port…]"))
                    .collect();
                o.addr = o.addrs[0];
            }
            "--server-pid" => o.server_pids = v.split(',').filter_map(|p| p.parse().ok()).collect(),
            "--redis-pid" => o.redis_pid = v.parse().ok(),
            "--sources" => o.sources = v.parse().expect("--sources"),
            "--count" => o.count = v.parse().expect("--count"),
            "--clients" => o.clients = v.parse().expect("--clients"),
            "--inflight" => o.inflight = v.parse().expect("--inflight"),
            "--duration" => o.duration = Duration::from_secs_f64(v.parse().expect("--duration")),
            "--warmup" => o.warmup = Duration::from_secs_f64(v.parse().expect("--warmup")),
            "--concurrency" => o.concurrency = v.parse().expect("--concurrency"),
            "--rate" => o.rate = v.parse().expect("--rate"),
            "--bcast-rate" => o.bcast_rate = v.parse().expect("--bcast-rate"),
            "--senders" => o.senders = v.parse().expect("--senders"),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    let (clients, inflight) = match o.scenario.as_str() {
        "echo" => (100, 10),
        "fanout" | "fanout-bin" => (1000, 16),
        "connect" => (10_000, 0),
        "upgrade" => (2000, 0),
        "polling-echo" => (200, 10),
        "cluster" => (1000, 16),
        "idle" => (100_000, 0),
        "echo-count" => (1, 1),
        "churn" => (10_000, 64),
        s => panic!("unknown scenario {s}"),
    };
    if o.clients == 0 {
        o.clients = clients;
    }
    if o.inflight == 0 {
        o.inflight = inflight;
    }
    if o.addrs.is_empty() {
        o.addrs.push(o.addr);
    }
    if o.sources == 0 {
        o.sources = o.clients.div_ceil(5_000);
    }
    o
}

// ---------------------------------------------------------------------------------------
// Process statistics from /proc

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux we run on.
    100.0
}

/// utime + stime of a process, in microseconds.
fn cpu_us(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &s[s.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    (ut + st) / clock_ticks() * 1e6
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return f64::NAN;
    };
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// CPU of the server and of this process, sampled together.
#[derive(Clone, Copy)]
struct CpuSample {
    server: f64,
    /// `--redis-pid`'s CPU (NaN without one).
    redis: f64,
    me: f64,
    at: Instant,
}

/// The summed RSS of the server processes, in KiB.
fn server_rss_kib(opts: &Opts) -> f64 {
    if opts.server_pids.is_empty() {
        return f64::NAN;
    }
    opts.server_pids
        .iter()
        .map(|p| rss_kib(&p.to_string()))
        .sum()
}

fn sample(opts: &Opts) -> CpuSample {
    CpuSample {
        server: if opts.server_pids.is_empty() {
            f64::NAN
        } else {
            opts.server_pids
                .iter()
                .map(|p| cpu_us(&p.to_string()))
                .sum()
        },
        redis: opts.redis_pid.map_or(f64::NAN, |p| cpu_us(&p.to_string())),
        me: cpu_us("self"),
        at: Instant::now(),
    }
}

// ---------------------------------------------------------------------------------------
// A minimal WebSocket client connection

const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

struct Conn {
    s: TcpStream,
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

impl Conn {
    async fn tcp(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        Conn::with(s, 4096)
    }

    /// A connection from the loopback source address `src` with a small read buffer (it
    /// grows when a message needs more), for many idle connections.
    async fn tcp_from(addr: SocketAddr, src: std::net::IpAddr) -> io::Result<Conn> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(src, 0))?;
        let s = sock.connect(addr).await?;
        Conn::with(s, 512)
    }

    fn with(s: TcpStream, rbuf: usize) -> io::Result<Conn> {
        s.set_nodelay(true)?;
        Ok(Conn {
            s,
            rbuf: vec![0; rbuf],
            start: 0,
            end: 0,
            out: Vec::with_capacity(512),
        })
    }

    /// Opens a WebSocket on `path`.
    async fn ws(addr: SocketAddr, path: &str) -> io::Result<Conn> {
        let mut c = Conn::tcp(addr).await?;
        c.ws_handshake(addr, path).await?;
        Ok(c)
    }

    async fn ws_handshake(&mut self, addr: SocketAddr, path: &str) -> io::Result<()> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.s.write_all(req.as_bytes()).await?;
        let (status, _, _) = self.read_head().await?;
        if status != 101 {
            return Err(bad(&format!("websocket handshake answered {status}")));
        }
        Ok(())
    }

    /// Reads more bytes into the read buffer; errors on EOF.
    async fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.rbuf.len() {
            if self.start > 0 {
                self.rbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.rbuf.len() * 2;
                self.rbuf.resize(n, 0);
            }
        }
        let n = self.s.read(&mut self.rbuf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// Reads an HTTP response head: status, content-length, whether chunked. The body stays
    /// in the buffer.
    async fn read_head(&mut self) -> io::Result<(u16, usize, bool)> {
        loop {
            let buf = &self.rbuf[self.start..self.end];
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..p]).map_err(|_| bad("head"))?;
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("status"))?;
                let mut len = 0;
                let mut chunked = false;
                for line in head.split("\r\n").skip(1) {
                    let Some((k, v)) = line.split_once(':') else {
                        continue;
                    };
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().map_err(|_| bad("content-length"))?;
                    } else if k.eq_ignore_ascii_case("transfer-encoding")
                        && v.to_ascii_lowercase().contains("chunked")
                    {
                        chunked = true;
                    }
                }
                self.start += p + 4;
                return Ok((status, len, chunked));
            }
            self.fill().await?;
        }
    }

    /// One HTTP/1.1 request on a keep-alive connection; the body of the response is
    /// appended to `body`.
    async fn http(
        &mut self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        req_body: &[u8],
        body: &mut Vec<u8>,
    ) -> io::Result<u16> {
        self.out.clear();
        self.out.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
                 Content-Length: {}\r\n\r\n",
                req_body.len()
            )
            .as_bytes(),
        );
        self.out.extend_from_slice(req_body);
        self.s.write_all(&self.out).await?;
        self.out.clear();
        let (status, len, chunked) = self.read_head().await?;
        if chunked {
            // hyper and Node both send a Content-Length for polling; chunked is not needed.
            return Err(bad("chunked response"));
        }
        while self.end - self.start < len {
            self.fill().await?;
        }
        body.extend_from_slice(&self.rbuf[self.start..self.start + len]);
        self.start += len;
        Ok(status)
    }

    /// Queues one masked client frame (zero mask key).
    fn push(&mut self, op: u8, payload: &[u8]) {
        push_frame(&mut self.out, op, payload);
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.s.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Parses the next complete frame already in the buffer: its opcode and payload range.
    fn next_frame(&mut self) -> io::Result<Option<(u8, usize, usize)>> {
        let b = &self.rbuf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x80 == 0 {
            return Err(bad("fragmented frame"));
        }
        if b[1] & 0x80 != 0 {
            return Err(bad("masked server frame"));
        }
        let op = b[0] & 0x0f;
        let (len, hl) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return Ok(None),
            n => (n as usize, 2),
        };
        if b.len() < hl + len {
            return Ok(None);
        }
        let a = self.start + hl;
        self.start = a + len;
        Ok(Some((op, a, a + len)))
    }

    /// Waits for the next text or binary frame, answering WebSocket pings and Engine.IO
    /// pings (`2` → `3`) on the way (when `sio`).
    async fn next_message(&mut self, sio: bool) -> io::Result<(u8, usize, usize)> {
        loop {
            while let Some((op, a, b)) = self.next_frame()? {
                match op {
                    OP_TEXT if sio && &self.rbuf[a..b] == b"2" => {
                        self.push(OP_TEXT, b"3");
                        self.flush().await?;
                    }
                    OP_TEXT | OP_BINARY => return Ok((op, a, b)),
                    OP_PING => {
                        let p = self.rbuf[a..b].to_vec();
                        self.push(OP_PONG, &p);
                        self.flush().await?;
                    }
                    OP_CLOSE => return Err(io::ErrorKind::ConnectionAborted.into()),
                    _ => {}
                }
            }
            self.fill().await?;
        }
    }

    /// Socket.IO: waits for the Engine.IO open packet, joins the main namespace, waits for
    /// the CONNECT reply.
    async fn sio_connect(&mut self, wait_open: bool) -> io::Result<()> {
        if wait_open {
            let (_, a, _) = self.next_message(true).await?;
            if self.rbuf[a] != b'0' {
                return Err(bad("expected engine.io open"));
            }
        }
        self.push(OP_TEXT, b"40");
        self.flush().await?;
        loop {
            let (_, a, b) = self.next_message(true).await?;
            if self.rbuf[a..b].starts_with(b"40") {
                return Ok(());
            }
            if self.rbuf[a..b].starts_with(b"44") {
                return Err(bad("connect refused"));
            }
        }
    }
}

fn push_frame(out: &mut Vec<u8>, op: u8, payload: &[u8]) {
    out.push(0x80 | op);
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

// ---------------------------------------------------------------------------------------
// Payloads: a timestamp (20 ASCII digits, ns since the start) inside ~100 bytes

const TS_DIGITS: usize = 20;

struct Template {
    buf: Vec<u8>,
    ts_at: usize,
}

impl Template {
    /// `prefix` + `{"t":"<20 digits>","pad":"xxx…"}` + `suffix`; the JSON object is 100 bytes.
    fn json(prefix: &str, suffix: &str) -> Template {
        let mut buf = Vec::new();
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(b"{\"t\":\"");
        let ts_at = buf.len();
        buf.extend_from_slice(&[b'0'; TS_DIGITS]);
        buf.extend_from_slice(b"\",\"pad\":\"");
        buf.extend_from_slice(&[b'x'; 63]);
        buf.extend_from_slice(b"\"}");
        buf.extend_from_slice(suffix.as_bytes());
        Template { buf, ts_at }
    }
    /// `prefix` + 20 digits + filler, 100 bytes in all after the prefix.
    fn binary(prefix: &[u8]) -> Template {
        let mut buf = prefix.to_vec();
        let ts_at = buf.len();
        buf.extend_from_slice(&[b'0'; TS_DIGITS]);
        buf.resize(ts_at + 100, 0xab);
        Template { buf, ts_at }
    }
    fn stamp(&mut self, ns: u64) -> &[u8] {
        let mut v = ns;
        for i in (0..TS_DIGITS).rev() {
            self.buf[self.ts_at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        &self.buf
    }
}

/// The timestamp after the first `"t":"` in a JSON text.
fn ts_in_json(b: &[u8]) -> Option<u64> {
    let p = b.windows(5).position(|w| w == b"\"t\":\"")? + 5;
    ts_digits(b.get(p..p + TS_DIGITS)?)
}

fn ts_digits(d: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

// ---------------------------------------------------------------------------------------
// Shared state of a run (one thread: Rc/Cell)

struct Run {
    epoch: Instant,
    measuring: Cell<bool>,
    stop: Cell<bool>,
    hist: RefCell<Histogram<u64>>,
    count: Cell<u64>,
    errors: Cell<u64>,
}

impl Run {
    fn new() -> Rc<Run> {
        Rc::new(Run {
            epoch: Instant::now(),
            measuring: Cell::new(false),
            stop: Cell::new(false),
            hist: RefCell::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()),
            count: Cell::new(0),
            errors: Cell::new(0),
        })
    }
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
    fn record(&self, sent_ns: u64) {
        if self.measuring.get() {
            let d = self.now_ns().saturating_sub(sent_ns).max(1);
            let _ = self.hist.borrow_mut().record(d);
            self.count.set(self.count.get() + 1);
        }
    }
    fn error(&self, e: &io::Error) {
        if !self.stop.get() {
            self.errors.set(self.errors.get() + 1);
            if self.errors.get() <= 3 {
                eprintln!("loadgen: connection error: {e}");
            }
        }
    }
}

fn ws_path(proto: Proto) -> &'static str {
    match proto {
        Proto::Sio => "/socket.io/?EIO=4&transport=websocket",
        Proto::Raw => "/",
    }
}

/// Opens `n` connections, `concurrency` at a time, each set up by `setup`.
async fn open_all<F, Fut, T>(n: usize, concurrency: usize, setup: F) -> Vec<io::Result<T>>
where
    F: Fn(usize) -> Fut + 'static,
    Fut: std::future::Future<Output = io::Result<T>> + 'static,
    T: 'static,
{
    let sem = Rc::new(Semaphore::new(concurrency));
    let setup = Rc::new(setup);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let sem = sem.clone();
        let setup = setup.clone();
        handles.push(tokio::task::spawn_local(async move {
            let _permit = sem.acquire().await.unwrap();
            setup(i).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(io::Error::other(e))));
    }
    out
}

fn connected<T>(conns: Vec<io::Result<T>>) -> Vec<T> {
    let total = conns.len();
    let ok: Vec<T> = conns
        .into_iter()
        .filter_map(|c| {
            c.map_err(|e| eprintln!("loadgen: connect failed: {e}"))
                .ok()
        })
        .collect();
    if ok.len() < total {
        eprintln!(
            "loadgen: {} of {total} connections failed",
            total - ok.len()
        );
    }
    ok
}

struct Window {
    secs: f64,
    server_us: f64,
    /// `--redis-pid`'s CPU over the window (NaN without one).
    redis_us: f64,
    me_us: f64,
}

/// Warms up, then measures for `duration`; returns the window's length and CPU use.
async fn measure(opts: &Opts, run: &Run) -> Window {
    tokio::time::sleep(opts.warmup).await;
    run.hist.borrow_mut().reset();
    run.count.set(0);
    let a = sample(opts);
    run.measuring.set(true);
    tokio::time::sleep(opts.duration).await;
    run.measuring.set(false);
    let b = sample(opts);
    run.stop.set(true);
    Window {
        secs: (b.at - a.at).as_secs_f64(),
        server_us: b.server - a.server,
        redis_us: b.redis - a.redis,
        me_us: b.me - a.me,
    }
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

fn report(opts: &Opts, fields: &[(&str, f64)], extra: &[(&str, String)]) {
    let mut s = format!(
        "RESULT {{\"proto\":\"{}\",\"scenario\":\"{}\",\"clients\":{},\"inflight\":{}",
        match opts.proto {
            Proto::Sio => "sio",
            Proto::Raw => "raw",
        },
        opts.scenario,
        opts.clients,
        opts.inflight
    );
    for (k, v) in fields {
        s.push_str(&format!(",\"{k}\":{}", json_num(*v)));
    }
    for (k, v) in extra {
        s.push_str(&format!(",\"{k}\":\"{v}\""));
    }
    s.push('}');
    println!("{s}");
}

// ---------------------------------------------------------------------------------------
// Scenario: echo

async fn echo(opts: Opts) {
    let run = Run::new();
    let (addr, proto) = (opts.addr, opts.proto);
    let conns = connected(
        open_all(opts.clients, opts.concurrency, move |_| async move {
            let mut c = Conn::ws(addr, ws_path(proto)).await?;
            if proto == Proto::Sio {
                c.sio_connect(true).await?;
            }
            Ok(c)
        })
        .await,
    );
    let per_conn: Rc<Vec<Cell<u64>>> = Rc::new((0..conns.len()).map(|_| Cell::new(0)).collect());
    for (i, mut c) in conns.into_iter().enumerate() {
        let run = run.clone();
        let per_conn = per_conn.clone();
        let inflight = opts.inflight;
        tokio::task::spawn_local(async move {
            let sio = proto == Proto::Sio;
            let mut tpl = if sio {
                Template::json("42[\"echo\",", "]")
            } else {
                Template::json("", "")
            };
            for _ in 0..inflight {
                let m = tpl.stamp(run.now_ns());
                push_frame(&mut c.out, OP_TEXT, m);
            }
            let r: io::Result<()> = async {
                c.flush().await?;
                while !run.stop.get() {
                    c.fill().await?;
                    while let Some((op, a, b)) = c.next_frame()? {
                        match op {
                            OP_TEXT => {
                                let m = &c.rbuf[a..b];
                                if sio && m == b"2" {
                                    push_frame(&mut c.out, OP_TEXT, b"3");
                                    continue;
                                }
                                if let Some(t) = ts_in_json(m) {
                                    run.record(t);
                                    if run.measuring.get() {
                                        per_conn[i].set(per_conn[i].get() + 1);
                                    }
                                    let m = tpl.stamp(run.now_ns());
                                    push_frame(&mut c.out, OP_TEXT, m);
                                }
                            }
                            OP_CLOSE => return Err(io::ErrorKind::ConnectionAborted.into()),
                            _ => {}
                        }
                    }
                    c.flush().await?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                run.error(&e);
            }
        });
    }
    let w = measure(&opts, &run).await;
    let h = run.hist.borrow();
    let n = run.count.get() as f64;
    let (min, max) = per_conn.iter().fold((u64::MAX, 0), |(lo, hi), c| {
        (lo.min(c.get()), hi.max(c.get()))
    });
    report(
        &opts,
        &[
            ("msgs_per_s", n / w.secs),
            ("p50_us", pct(&h, 0.5)),
            ("p99_us", pct(&h, 0.99)),
            ("p999_us", pct(&h, 0.999)),
            ("server_cpu_us_per_msg", w.server_us / n),
            ("server_cpu_pct", w.server_us / w.secs / 1e4),
            ("loadgen_cpu_pct", w.me_us / w.secs / 1e4),
            ("fairness_min_over_max", min as f64 / max.max(1) as f64),
            ("errors", run.errors.get() as f64),
        ],
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// Scenario: fan-out (one sender, every client in the room)

async fn fanout(opts: Opts, binary: bool) {
    let run = Run::new();
    let proto = opts.proto;
    let addrs = opts.addrs.clone();
    let conns = connected(
        open_all(opts.clients, opts.concurrency, move |i| {
            let addr = addrs[i % addrs.len()];
            async move {
                let mut c = Conn::ws(addr, ws_path(proto)).await?;
                // Joined once an echo comes back after the join (packets are handled in order).
                let mut probe = Template::json("42[\"echo\",", "]");
                if proto == Proto::Sio {
                    c.sio_connect(true).await?;
                    c.push(OP_TEXT, b"42[\"join\"]");
                } else {
                    probe = Template::json("", "");
                }
                let m = probe.stamp(0);
                push_frame(&mut c.out, OP_TEXT, m);
                c.flush().await?;
                loop {
                    let (_, a, b) = c.next_message(proto == Proto::Sio).await?;
                    if ts_in_json(&c.rbuf[a..b]).is_some() {
                        break;
                    }
                }
                Ok(c)
            }
        })
        .await,
    );
    let receivers = conns.len() as u64;
    let sent = Rc::new(Cell::new(0u64));
    let delivered = Rc::new(Cell::new(0u64));
    let room = Rc::new(Notify::new());
    let inflight = opts.inflight as u64;
    for (i, mut c) in conns.into_iter().enumerate() {
        let run = run.clone();
        let (sent, delivered, room) = (sent.clone(), delivered.clone(), room.clone());
        let is_sender = i == 0;
        tokio::task::spawn_local(async move {
            let sio = proto == Proto::Sio;
            let mut tpl = match (sio, binary) {
                (true, false) => Template::json("42[\"bcast\",", "]"),
                (false, false) => Template::json("B", ""),
                (_, true) => Template::binary(if sio { b"" } else { b"B" }),
            };
            let header = b"451-[\"bcast\",{\"_placeholder\":true,\"num\":0}]";
            let r: io::Result<()> = async {
                loop {
                    if is_sender {
                        while sent.get() * receivers - delivered.get().min(sent.get() * receivers)
                            < inflight * receivers
                            && !run.stop.get()
                        {
                            let t = run.now_ns();
                            if sio && binary {
                                push_frame(&mut c.out, OP_TEXT, header);
                            }
                            let m = tpl.stamp(t);
                            push_frame(&mut c.out, if binary { OP_BINARY } else { OP_TEXT }, m);
                            sent.set(sent.get() + 1);
                        }
                        c.flush().await?;
                    }
                    if run.stop.get() {
                        return Ok(());
                    }
                    if is_sender {
                        tokio::select! {
                            r = c.fill() => r?,
                            () = room.notified() => continue,
                        }
                    } else {
                        c.fill().await?;
                    }
                    while let Some((op, a, b)) = c.next_frame()? {
                        let m = &c.rbuf[a..b];
                        let t = match op {
                            OP_TEXT if sio && m == b"2" => {
                                push_frame(&mut c.out, OP_TEXT, b"3");
                                continue;
                            }
                            OP_TEXT if !binary => ts_in_json(m),
                            OP_BINARY if binary => {
                                let off = usize::from(!sio);
                                m.get(off..off + TS_DIGITS).and_then(ts_digits)
                            }
                            OP_CLOSE => return Err(io::ErrorKind::ConnectionAborted.into()),
                            _ => None,
                        };
                        if let Some(t) = t {
                            run.record(t);
                            let d = delivered.get() + 1;
                            delivered.set(d);
                            if sent.get() * receivers - d.min(sent.get() * receivers)
                                < inflight * receivers
                            {
                                room.notify_one();
                            }
                        }
                    }
                    c.flush().await?;
                }
            }
            .await;
            if let Err(e) = r {
                run.error(&e);
            }
        });
    }
    let w = measure(&opts, &run).await;
    let h = run.hist.borrow();
    let n = run.count.get() as f64;
    report(
        &opts,
        &[
            ("receivers", receivers as f64),
            ("nodes", opts.addrs.len() as f64),
            ("deliveries_per_s", n / w.secs),
            ("p50_us", pct(&h, 0.5)),
            ("p99_us", pct(&h, 0.99)),
            ("server_cpu_us_per_delivery", w.server_us / n),
            ("server_cpu_pct", w.server_us / w.secs / 1e4),
            ("redis_cpu_us_per_delivery", w.redis_us / n),
            ("redis_cpu_pct", w.redis_us / w.secs / 1e4),
            ("loadgen_cpu_pct", w.me_us / w.secs / 1e4),
            ("errors", run.errors.get() as f64),
        ],
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// Scenarios: connect (WebSocket directly) and upgrade (polling handshake, then WebSocket)

/// The sid in an Engine.IO open packet `0{"sid":"…",…}`.
fn sid_of(open: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(open).ok()?;
    let p = s.find("\"sid\":\"")? + 7;
    let e = s[p..].find('"')? + p;
    Some(s[p..e].to_owned())
}

async fn upgrade_session(addr: SocketAddr) -> io::Result<Conn> {
    let mut http = Conn::tcp(addr).await?;
    let mut body = Vec::new();
    let status = http
        .http(
            addr,
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            b"",
            &mut body,
        )
        .await?;
    if status != 200 {
        return Err(bad(&format!("polling handshake answered {status}")));
    }
    let sid = sid_of(&body).ok_or_else(|| bad("no sid"))?;
    let mut c = Conn::ws(
        addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
    )
    .await?;
    c.push(OP_TEXT, b"2probe");
    c.flush().await?;
    loop {
        let (_, a, b) = c.next_message(true).await?;
        if &c.rbuf[a..b] == b"3probe" {
            break;
        }
    }
    c.push(OP_TEXT, b"5");
    c.sio_connect(false).await?;
    drop(http);
    Ok(c)
}

async fn connect(opts: Opts, upgrade: bool) {
    let run = Run::new();
    let rss_before = server_rss_kib(&opts);
    let a = sample(&opts);
    let (addr, proto) = (opts.addr, opts.proto);
    let hist = Rc::new(RefCell::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
    ));
    let h2 = hist.clone();
    let conns = connected(
        open_all(opts.clients, opts.concurrency, move |_| {
            let hist = h2.clone();
            async move {
                let t = Instant::now();
                let c = if upgrade {
                    upgrade_session(addr).await?
                } else {
                    let mut c = Conn::ws(addr, ws_path(proto)).await?;
                    if proto == Proto::Sio {
                        c.sio_connect(true).await?;
                    }
                    c
                };
                let _ = hist.borrow_mut().record(t.elapsed().as_nanos() as u64);
                Ok(c)
            }
        })
        .await,
    );
    let b = sample(&opts);
    let n = conns.len() as f64;
    // Idle: keep every connection read (pings answered), let the server settle, then
    // measure its RSS.
    let idle: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::task::spawn_local(async move {
                loop {
                    if c.next_message(proto == Proto::Sio).await.is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = server_rss_kib(&opts);
    run.stop.set(true);
    let h = hist.borrow();
    let secs = (b.at - a.at).as_secs_f64();
    report(
        &opts,
        &[
            ("connected", n),
            ("conns_per_s", n / secs),
            ("p50_us", pct(&h, 0.5)),
            ("p99_us", pct(&h, 0.99)),
            ("server_cpu_us_per_conn", (b.server - a.server) / n),
            ("server_cpu_pct", (b.server - a.server) / secs / 1e4),
            ("loadgen_cpu_pct", (b.me - a.me) / secs / 1e4),
            ("rss_before_kib", rss_before),
            ("rss_after_kib", rss_after),
            ("rss_kib_per_conn", (rss_after - rss_before) / n),
            ("errors", opts.clients as f64 - n),
        ],
        &[],
    );
    for t in idle {
        t.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Scenario: echo-count (exactly `--count` echoes, one at a time, for instruction counts)

/// One connection sends exactly `count` echo messages, each after the previous reply, then
/// exits: two runs with different counts under `valgrind --tool=callgrind` give the server's
/// instructions per echoed message (scripts/callgrind-echo.sh).
async fn echo_count(opts: Opts) {
    let proto = opts.proto;
    let sio = proto == Proto::Sio;
    let r: io::Result<()> = async {
        let mut c = Conn::ws(opts.addr, ws_path(proto)).await?;
        if sio {
            c.sio_connect(true).await?;
        }
        let mut tpl = if sio {
            Template::json("42[\"echo\",", "]")
        } else {
            Template::json("", "")
        };
        for i in 0..opts.count {
            let m = tpl.stamp(i as u64);
            push_frame(&mut c.out, OP_TEXT, m);
            c.flush().await?;
            loop {
                let (_, a, b) = c.next_message(sio).await?;
                if ts_in_json(&c.rbuf[a..b]).is_some() {
                    break;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        eprintln!("loadgen: echo-count: {e}");
        std::process::exit(1);
    }
    report(&opts, &[("echoed", opts.count as f64)], &[]);
}

// ---------------------------------------------------------------------------------------
// Scenario: idle (many idle connections in one room, then one broadcast to all of them)

/// What the idle connections share: how many got the broadcast, when the last did, how many
/// there are, and a signal for when all did.
#[derive(Default)]
struct IdleCount {
    got: Cell<usize>,
    last_ns: Cell<u64>,
    target: Cell<usize>,
    all: Notify,
}

/// Reads one idle connection (answering pings) until it fails, counting the broadcast.
async fn read_idle(mut c: Conn, sio: bool, i: usize, start: Instant, count: Rc<IdleCount>) {
    let r: io::Result<()> = async {
        loop {
            let (_, a, b) = c.next_message(sio).await?;
            if ts_in_json(&c.rbuf[a..b]).is_some() {
                count.last_ns.set(start.elapsed().as_nanos() as u64);
                count.got.set(count.got.get() + 1);
                if count.got.get() == count.target.get() {
                    count.all.notify_one();
                }
            }
        }
    }
    .await;
    if let Err(e) = r {
        eprintln!("loadgen: idle connection {i}: {e}");
    }
}

async fn idle(opts: Opts) {
    let proto = opts.proto;
    let sio = proto == Proto::Sio;
    let sources = opts.sources.max(1);
    let addr = opts.addr;
    let rss_before = server_rss_kib(&opts);
    let hist = Rc::new(RefCell::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
    ));
    // Each connection, once joined, reads on at once (answering pings: opening them all can
    // take longer than a server's ping interval plus timeout) and counts the broadcast.
    let count = Rc::new(IdleCount {
        target: Cell::new(usize::MAX),
        ..IdleCount::default()
    });
    let start = Instant::now();
    let tasks = Rc::new(RefCell::new(Vec::with_capacity(opts.clients)));
    let (h2, c2, tasks2) = (hist.clone(), count.clone(), tasks.clone());
    let a = sample(&opts);
    let conns = connected(
        open_all(opts.clients, opts.concurrency, move |i| {
            let (hist, count, tasks) = (h2.clone(), c2.clone(), tasks2.clone());
            async move {
                let t = Instant::now();
                let src = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % sources) as u8);
                let mut c = Conn::tcp_from(addr, src.into()).await?;
                c.ws_handshake(addr, ws_path(proto)).await?;
                // Joined once the join's ack comes back.
                if sio {
                    c.sio_connect(true).await?;
                    c.push(OP_TEXT, b"421[\"join\"]");
                } else {
                    c.push(OP_TEXT, b"Jbench");
                }
                c.flush().await?;
                loop {
                    let (_, a, b) = c.next_message(sio).await?;
                    if is_join_ack(&c.rbuf[a..b], sio) {
                        break;
                    }
                }
                let _ = hist.borrow_mut().record(t.elapsed().as_nanos() as u64);
                let reader = read_idle(c, sio, i, start, count);
                tasks.borrow_mut().push(tokio::task::spawn_local(reader));
                Ok(())
            }
        })
        .await,
    );
    let b = sample(&opts);
    let n = conns.len();
    count.target.set(n);
    // Let the server settle, then take its RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = server_rss_kib(&opts);
    // The broadcast comes from one more connection, in no room (the raw server sends `B`
    // frames to every connection, this one included; it does not read).
    let mut sender = match Conn::tcp(addr).await {
        Ok(c) => c,
        Err(e) => panic!("loadgen: the sender could not connect: {e}"),
    };
    if let Err(e) = sender.ws_handshake(addr, ws_path(proto)).await {
        panic!("loadgen: the sender's handshake failed: {e}");
    }
    if sio {
        if let Err(e) = sender.sio_connect(true).await {
            panic!("loadgen: the sender's CONNECT failed: {e}");
        }
    }
    let mut tpl = if sio {
        Template::json("42[\"bcast\",", "]")
    } else {
        Template::json("B", "")
    };
    let sent_ns = start.elapsed().as_nanos() as u64;
    let m = tpl.stamp(sent_ns);
    push_frame(&mut sender.out, OP_TEXT, m);
    if let Err(e) = sender.flush().await {
        panic!("loadgen: the broadcast could not be sent: {e}");
    }
    let reached = tokio::time::timeout(Duration::from_secs(60), count.all.notified())
        .await
        .is_ok();
    if !reached {
        eprintln!(
            "loadgen: the broadcast reached {} of {n} connections in 60 s",
            count.got.get()
        );
    }
    let h = hist.borrow();
    let secs = (b.at - a.at).as_secs_f64();
    let nf = n as f64;
    report(
        &opts,
        &[
            ("connected", nf),
            ("sources", sources as f64),
            ("connect_secs", secs),
            ("conns_per_s", nf / secs),
            ("p50_us", pct(&h, 0.5)),
            ("p99_us", pct(&h, 0.99)),
            ("server_cpu_us_per_conn", (b.server - a.server) / nf),
            ("rss_before_kib", rss_before),
            ("rss_after_kib", rss_after),
            ("rss_kib_per_conn", (rss_after - rss_before) / nf),
            ("broadcast_reached", count.got.get() as f64),
            (
                "broadcast_all_ms",
                if reached {
                    (count.last_ns.get() - sent_ns) as f64 / 1e6
                } else {
                    f64::NAN
                },
            ),
            ("errors", opts.clients as f64 - nf),
        ],
        &[],
    );
    for t in tasks.borrow_mut().drain(..) {
        t.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Scenario: echo over long-polling (a GET loop and a POST loop per client)

async fn polling_echo(opts: Opts) {
    let run = Run::new();
    let addr = opts.addr;
    let mut tasks = Vec::new();
    for _ in 0..opts.clients {
        let run = run.clone();
        let inflight = opts.inflight;
        tasks.push(tokio::task::spawn_local(async move {
            let r: io::Result<()> = async {
                let mut get = Conn::tcp(addr).await?;
                let mut post = Conn::tcp(addr).await?;
                let mut body = Vec::new();
                get.http(
                    addr,
                    "GET",
                    "/socket.io/?EIO=4&transport=polling",
                    b"",
                    &mut body,
                )
                .await?;
                let sid = sid_of(&body).ok_or_else(|| bad("no sid"))?;
                let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
                body.clear();
                post.http(addr, "POST", &path, b"40", &mut body).await?;
                loop {
                    body.clear();
                    get.http(addr, "GET", &path, b"", &mut body).await?;
                    if body.split(|&c| c == 0x1e).any(|p| p.starts_with(b"40")) {
                        break;
                    }
                }
                let outstanding = Rc::new(Cell::new(0usize));
                let pings = Rc::new(Cell::new(0usize));
                let wake = Rc::new(Notify::new());
                let (o2, p2, w2, r2, path2) = (
                    outstanding.clone(),
                    pings.clone(),
                    wake.clone(),
                    run.clone(),
                    path.clone(),
                );
                let getter = tokio::task::spawn_local(async move {
                    let mut body = Vec::new();
                    while !r2.stop.get() {
                        body.clear();
                        if get.http(addr, "GET", &path2, b"", &mut body).await.is_err() {
                            return;
                        }
                        for p in body.split(|&c| c == 0x1e) {
                            if p == b"2" {
                                p2.set(p2.get() + 1);
                            } else if let Some(t) = ts_in_json(p) {
                                r2.record(t);
                                o2.set(o2.get().saturating_sub(1));
                            }
                        }
                        w2.notify_one();
                    }
                });
                let mut tpl = Template::json("42[\"echo\",", "]");
                let mut req = Vec::new();
                while !run.stop.get() {
                    req.clear();
                    for _ in 0..pings.replace(0) {
                        if !req.is_empty() {
                            req.push(0x1e);
                        }
                        req.push(b'3');
                    }
                    while outstanding.get() < inflight {
                        if !req.is_empty() {
                            req.push(0x1e);
                        }
                        req.extend_from_slice(tpl.stamp(run.now_ns()));
                        outstanding.set(outstanding.get() + 1);
                    }
                    if !req.is_empty() {
                        body.clear();
                        let s = post.http(addr, "POST", &path, &req, &mut body).await?;
                        if s != 200 {
                            return Err(bad(&format!("POST answered {s}")));
                        }
                    }
                    wake.notified().await;
                }
                getter.abort();
                Ok(())
            }
            .await;
            if let Err(e) = r {
                run.error(&e);
            }
        }));
    }
    let w = measure(&opts, &run).await;
    let h = run.hist.borrow();
    let n = run.count.get() as f64;
    report(
        &opts,
        &[
            ("msgs_per_s", n / w.secs),
            ("p50_us", pct(&h, 0.5)),
            ("p99_us", pct(&h, 0.99)),
            ("server_cpu_us_per_msg", w.server_us / n),
            ("server_cpu_pct", w.server_us / w.secs / 1e4),
            ("loadgen_cpu_pct", w.me_us / w.secs / 1e4),
            ("errors", run.errors.get() as f64),
        ],
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// Scenario: rooms churn (sockets moving between rooms of ~10 while broadcasts run)

/// Room names are `r` + 5 digits, so every frame naming a room has a fixed layout.
const ROOM_DIGITS: usize = 5;

/// A frame payload with a room name at a fixed place, rewritten in place.
struct RoomFrame {
    buf: Vec<u8>,
    at: usize,
}

impl RoomFrame {
    /// `prefix` + `r00000` + `suffix`.
    fn new(prefix: &str, suffix: &str) -> RoomFrame {
        let mut buf = prefix.as_bytes().to_vec();
        buf.push(b'r');
        let at = buf.len();
        buf.extend_from_slice(&[b'0'; ROOM_DIGITS]);
        buf.extend_from_slice(suffix.as_bytes());
        RoomFrame { buf, at }
    }
    fn set(&mut self, room: u32) -> &[u8] {
        set_room(&mut self.buf, self.at, room);
        &self.buf
    }
}

fn set_room(buf: &mut [u8], at: usize, room: u32) {
    let mut v = room;
    for i in (0..ROOM_DIGITS).rev() {
        buf[at + i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// xorshift64*: enough randomness for picking rooms, no allocation, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// What the churn tasks share.
struct Churn {
    /// Room sizes as the load generator asked for them (the server may lag by the moves
    /// in flight).
    sizes: Vec<Cell<u32>>,
    /// Deliveries expected (the room's size when each broadcast was sent) and received,
    /// over the whole run: their difference bounds the broadcasts in flight.
    expected: Cell<i64>,
    delivered: Cell<i64>,
    /// In the measurement window: join+leave operations acknowledged, broadcasts sent,
    /// sender ticks held back by the in-flight bound.
    ops: Cell<u64>,
    broadcasts: Cell<u64>,
    held: Cell<u64>,
    /// Round trip of a move (`leave` + `join` with an ack).
    moves: RefCell<Histogram<u64>>,
}

async fn churn(opts: Opts) {
    let run = Run::new();
    let (addr, proto) = (opts.addr, opts.proto);
    let sio = proto == Proto::Sio;
    let n = opts.clients;
    let rooms = (n / 10).max(1) as u32;
    assert!(rooms < 100_000, "at most 99 999 rooms");
    let senders = opts.senders.max(1);
    let st = Rc::new(Churn {
        sizes: (0..rooms).map(|_| Cell::new(0)).collect(),
        expected: Cell::new(0),
        delivered: Cell::new(0),
        ops: Cell::new(0),
        broadcasts: Cell::new(0),
        held: Cell::new(0),
        moves: RefCell::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()),
    });
    let (join_pre, join_suf, leave_pre, leave_suf) = if sio {
        ("421[\"join\",\"", "\"]", "42[\"leave\",\"", "\"]")
    } else {
        ("J", "", "L", "")
    };
    // The first `senders` connections broadcast and are in no room; every other one starts
    // in room i % rooms (10 per room) and waits for the ack of its join.
    let conns = connected(
        open_all(n + senders, opts.concurrency, move |i| async move {
            let mut c = Conn::ws(addr, ws_path(proto)).await?;
            if sio {
                c.sio_connect(true).await?;
            }
            if i >= senders {
                let mut join = RoomFrame::new(join_pre, join_suf);
                push_frame(
                    &mut c.out,
                    OP_TEXT,
                    join.set(((i - senders) as u32) % rooms),
                );
                c.flush().await?;
                loop {
                    let (_, a, b) = c.next_message(sio).await?;
                    if is_join_ack(&c.rbuf[a..b], sio) {
                        break;
                    }
                }
            }
            Ok(c)
        })
        .await,
    );
    // A failed connection loses its place in the room model; count what is there.
    let mut members = 0u64;
    let mut sender_conns = Vec::new();
    let mut room_of = Vec::new();
    for (k, c) in conns.into_iter().enumerate() {
        if k < senders {
            sender_conns.push(c);
        } else {
            let room = (k - senders) as u32 % rooms;
            st.sizes[room as usize].set(st.sizes[room as usize].get() + 1);
            room_of.push((c, room));
            members += 1;
        }
    }
    if sender_conns.len() < senders {
        eprintln!("loadgen: sender connections failed");
    }
    // Every member moves (leaves its room, joins another) once per `period`, at a random
    // phase, with at most one move in flight: 2 operations per move.
    let period = Duration::from_secs_f64(2.0 * members as f64 / opts.rate.max(1.0));
    for (k, (mut c, mut room)) in room_of.into_iter().enumerate() {
        let (run, st) = (run.clone(), st.clone());
        tokio::task::spawn_local(async move {
            let mut rng = Rng::new(k as u64 + 1);
            let mut join = RoomFrame::new(join_pre, join_suf);
            let mut leave = RoomFrame::new(leave_pre, leave_suf);
            let start = tokio::time::Instant::now();
            let mut next =
                start + period.mul_f64(f64::from(rng.below(1 << 20)) / f64::from(1 << 20));
            let mut pending: Option<u64> = None;
            let r: io::Result<()> = async {
                while !run.stop.get() {
                    tokio::select! {
                        r = c.fill() => r?,
                        () = tokio::time::sleep_until(next), if pending.is_none() => {
                            let mut to = rng.below(rooms - 1);
                            if to >= room {
                                to += 1;
                            }
                            if rooms == 1 {
                                to = 0;
                            }
                            push_frame(&mut c.out, OP_TEXT, leave.set(room));
                            push_frame(&mut c.out, OP_TEXT, join.set(to));
                            let s = &st.sizes;
                            s[room as usize].set(s[room as usize].get() - 1);
                            s[to as usize].set(s[to as usize].get() + 1);
                            room = to;
                            pending = Some(run.now_ns());
                            next += period;
                        }
                    }
                    while let Some((op, a, b)) = c.next_frame()? {
                        let m = &c.rbuf[a..b];
                        match op {
                            OP_TEXT if sio && m == b"2" => push_frame(&mut c.out, OP_TEXT, b"3"),
                            OP_TEXT if is_join_ack(m, sio) => {
                                if let Some(t) = pending.take() {
                                    if run.measuring.get() {
                                        st.ops.set(st.ops.get() + 2);
                                        let d = run.now_ns().saturating_sub(t).max(1);
                                        let _ = st.moves.borrow_mut().record(d);
                                    }
                                }
                                // A slow server slows the moves down, never piles them up.
                                let now = tokio::time::Instant::now();
                                if next < now {
                                    next = now;
                                }
                            }
                            OP_TEXT => {
                                if let Some(t) = ts_in_json(m) {
                                    run.record(t);
                                    st.delivered.set(st.delivered.get() + 1);
                                }
                            }
                            OP_CLOSE => return Err(io::ErrorKind::ConnectionAborted.into()),
                            _ => {}
                        }
                    }
                    c.flush().await?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                run.error(&e);
            }
        });
    }
    // The senders: `bcast_rate` broadcasts per second in all, each to a random room, while
    // the deliveries still expected stay under `inflight` broadcasts' worth.
    let per_sender = opts.bcast_rate / sender_conns.len().max(1) as f64;
    let room_mean = members as f64 / f64::from(rooms);
    let cap = (opts.inflight as f64 * room_mean).max(1.0) as i64;
    for (k, mut c) in sender_conns.into_iter().enumerate() {
        let (run, st) = (run.clone(), st.clone());
        tokio::task::spawn_local(async move {
            let mut rng = Rng::new(0xb0ad_ca57 + k as u64);
            let mut tpl = if sio {
                Template::json("42[\"bcast-room\",\"r00000\",", "]")
            } else {
                Template::json("Rr00000 ", "")
            };
            let room_at = tpl.buf.windows(6).position(|w| w == b"r00000").unwrap() + 1;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last = tokio::time::Instant::now();
            let mut tokens = 0.0f64;
            // At most 10 ms of sending at once after a stall.
            let burst = (per_sender / 100.0).max(2.0);
            let r: io::Result<()> = async {
                while !run.stop.get() {
                    tokio::select! {
                        r = c.fill() => r?,
                        _ = tick.tick() => {
                            let now = tokio::time::Instant::now();
                            tokens = (tokens + (now - last).as_secs_f64() * per_sender).min(burst);
                            last = now;
                            while tokens >= 1.0 {
                                if st.expected.get() - st.delivered.get() >= cap {
                                    if run.measuring.get() {
                                        st.held.set(st.held.get() + 1);
                                    }
                                    break;
                                }
                                let room = rng.below(rooms);
                                set_room(&mut tpl.buf, room_at, room);
                                let m = tpl.stamp(run.now_ns());
                                push_frame(&mut c.out, OP_TEXT, m);
                                let size = st.sizes[room as usize].get();
                                st.expected.set(st.expected.get() + i64::from(size));
                                if run.measuring.get() {
                                    st.broadcasts.set(st.broadcasts.get() + 1);
                                }
                                tokens -= 1.0;
                            }
                        }
                    }
                    while let Some((op, a, b)) = c.next_frame()? {
                        match op {
                            OP_TEXT if sio && &c.rbuf[a..b] == b"2" => {
                                push_frame(&mut c.out, OP_TEXT, b"3")
                            }
                            OP_CLOSE => return Err(io::ErrorKind::ConnectionAborted.into()),
                            _ => {}
                        }
                    }
                    c.flush().await?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                run.error(&e);
            }
        });
    }
    let w = measure(&opts, &run).await;
    let h = run.hist.borrow();
    let mv = st.moves.borrow();
    let deliveries = run.count.get() as f64;
    let ops = st.ops.get() as f64;
    let bcasts = st.broadcasts.get() as f64;
    report(
        &opts,
        &[
            ("members", members as f64),
            ("rooms", f64::from(rooms)),
            ("senders", senders as f64),
            ("target_join_leave_per_s", opts.rate),
            ("target_broadcasts_per_s", opts.bcast_rate),
            ("join_leave_per_s", ops / w.secs),
            ("broadcasts_per_s", bcasts / w.secs),
            ("deliveries_per_s", deliveries / w.secs),
            ("deliveries_per_broadcast", deliveries / bcasts),
            ("p50_us", pct(&h, 0.5)),
            ("p99_us", pct(&h, 0.99)),
            ("move_p50_us", pct(&mv, 0.5)),
            ("move_p99_us", pct(&mv, 0.99)),
            ("server_cpu_us_per_op", w.server_us / (ops + deliveries)),
            ("server_cpu_pct", w.server_us / w.secs / 1e4),
            ("loadgen_cpu_pct", w.me_us / w.secs / 1e4),
            ("sender_held_ticks", st.held.get() as f64),
            ("errors", run.errors.get() as f64),
        ],
        &[],
    );
}

/// The answer to a `join` with an ack: `431[]` (Socket.IO) or `A` (raw).
fn is_join_ack(m: &[u8], sio: bool) -> bool {
    if sio {
        m.starts_with(b"431")
    } else {
        m == b"A"
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    let opts = parse_opts();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    // Every scenario is bounded: connection set-up, warm-up and window, plus a margin.
    let mut limit = opts.warmup + opts.duration + Duration::from_secs(120);
    if opts.scenario == "idle" {
        // Connection set-up of 100 000 sockets takes minutes on a slow server.
        limit += Duration::from_secs(600);
    }
    let deadline = tokio::time::Instant::now() + limit;
    let o = opts.clone();
    let done = local.block_on(&rt, async move {
        timeout_at(deadline, async move {
            match o.scenario.as_str() {
                "echo" => echo(o).await,
                "fanout" => fanout(o, false).await,
                "fanout-bin" => {
                    if o.proto == Proto::Sio || o.proto == Proto::Raw {
                        fanout(o, true).await
                    }
                }
                "connect" => connect(o, false).await,
                "upgrade" => connect(o, true).await,
                "polling-echo" => polling_echo(o).await,
                "churn" => churn(o).await,
                "cluster" => fanout(o, false).await,
                "idle" => idle(o).await,
                "echo-count" => echo_count(o).await,
                s => panic!("unknown scenario {s}"),
            }
        })
        .await
    });
    if done.is_err() {
        eprintln!("loadgen: scenario {} timed out", opts.scenario);
        std::process::exit(2);
    }
    // Connections are dropped with the process; no need to wait for their tasks.
    std::process::exit(0);
}
