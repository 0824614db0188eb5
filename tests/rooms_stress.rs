//! Concurrency: 200 socket.io-client sockets (half polling, half WebSocket, one Node process,
//! each socket on its own connection) join and leave random rooms while the server
//! broadcasts to rooms in a loop, in phases:
//!
//! 1. churn: every socket joins/leaves random rooms; meanwhile two server tasks broadcast
//!    numbered "noise" events to rooms (`to(r)`, `to([a, b]).except(c)`) and a third reads
//!    the adapter (`fetch_sockets`, `rooms`, `sockets`) in a loop;
//! 2. stable: membership is checked against the server's view, then numbered broadcasts
//!    with every kind of selection go out, then a fence to everyone.
//!
//! Checks: nothing deadlocks (generous limits everywhere); the server's rooms match what each
//! client was told; in a stable phase every socket gets exactly the broadcasts its rooms
//! select, once each, in order; during churn, noise reaches every socket whose membership
//! of the rooms involved did not change during the phase, exactly when its rooms select it,
//! and never arrives twice or out of order; after everyone disconnects the adapter is empty.

mod common;
mod rooms_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tower_socketio::{SocketIo, SocketRef};

use rooms_support::{Driver, room_handlers, socket_of};

const SOCKETS: usize = 200;
const ROOMS: usize = 8;
const PHASES: u64 = 4;
const OPS: usize = 4;
const STABLE: u64 = 24;
/// Limit for one phase step (a churn round, a fence).
const PHASE: Duration = Duration::from_secs(90);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }
    fn room(&mut self) -> String {
        format!("r{}", self.next() % ROOMS)
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    serde_json::from_value(v.clone()).expect("array of strings")
}

/// Noise of one kind: `(seq, rooms targeted, room excluded)`.
type NoiseLog = Vec<(u64, Vec<String>, Option<String>)>;

/// Broadcasts numbered events until `stop`: `n0` to one room, `n1` to two rooms except a
/// third. Returns what was sent.
async fn noise(
    io: SocketIo,
    event: &'static str,
    phase: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> NoiseLog {
    let mut rng = Rng(seed | 1);
    let mut log = Vec::new();
    let mut s = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (rooms, except) = if event == "n0" {
            (vec![rng.room()], None)
        } else {
            (vec![rng.room(), rng.room()], Some(rng.room()))
        };
        let mut op = io.to(rooms.clone()).expect("/");
        if let Some(e) = &except {
            op = op.except(e.clone());
        }
        op.emit(event, &json!({ "p": phase, "s": s, "r": rooms[0] }))
            .await
            .expect("noise broadcast");
        log.push((s, rooms, except));
        s += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    log
}

/// Reads the adapter in a loop until `stop`; returns how many rounds it did.
async fn reader(io: SocketIo, stop: Arc<AtomicBool>) -> usize {
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        let infos = io.of("/").unwrap().fetch_sockets().await.expect("fetch");
        assert_eq!(infos.len(), SOCKETS, "nobody leaves during churn");
        let rooms = io.of("/").unwrap().rooms().await.expect("rooms");
        assert!(rooms.len() <= ROOMS, "{rooms:?}");
        let _ = io.to(["r0", "r1"]).unwrap().sockets();
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rounds
}

/// Whether a socket with rooms `m` (own id aside) and id index `i` is selected.
fn selects(rooms: &[String], except: Option<&String>, m: &BTreeSet<String>) -> bool {
    rooms.iter().any(|r| m.contains(r)) && except.is_none_or(|e| !m.contains(e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rooms_many_sockets_churn_while_broadcasting() {
    let Some(node) = common::node(
        "rooms_many_sockets_churn_while_broadcasting",
        "socket.io-client",
    ) else {
        return;
    };
    common::within(Duration::from_secs(280), "the whole stress test", run(node)).await;
}

async fn run(node: common::Node) {
    let (layer, io) = SocketIo::builder()
        // This test is about rooms, not the slow-client policy: never drop a socket.
        .max_buffered_packets(1_000_000)
        .build_layer();
    io.ns("/", |s: SocketRef| room_handlers(&s, None));
    let server = common::serve_layer(layer).await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("rooms_stress seed: {seed}");
    let mut d = Driver::start(
        &node,
        "stress.mjs",
        &[
            &server.base_url(),
            &SOCKETS.to_string(),
            &(seed as u32).to_string(),
        ],
    )
    .await;
    let ready = d.next_json(PHASE, "all sockets connected").await;
    assert_eq!(ready["type"], json!("ready"), "{ready}");
    let sids: Vec<String> = serde_json::from_value(ready["sids"].clone()).expect("sids");
    assert_eq!(sids.len(), SOCKETS);
    let index: HashMap<String, usize> = sids
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, s)| (s, i))
        .collect();
    assert_eq!(index.len(), SOCKETS, "distinct ids");
    assert_eq!(io.sockets().len(), SOCKETS);
    let handles: Vec<SocketRef> = sids.iter().map(|s| socket_of(&io, "/", s)).collect();

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut members: Vec<BTreeSet<String>> = vec![BTreeSet::new(); SOCKETS];
    for p in 1..=PHASES {
        d.send_line(&json!({"cmd": "begin", "phase": p}).to_string())
            .await;
        let begun = d.next_json(PHASE, "begin").await;
        assert_eq!(begun["type"], json!("begun"), "{begun}");

        // Churn, with broadcasts and adapter reads racing it.
        let stop = Arc::new(AtomicBool::new(false));
        let n0 = tokio::spawn(noise(io.clone(), "n0", p, seed ^ p, stop.clone()));
        let n1 = tokio::spawn(noise(io.clone(), "n1", p, seed ^ (p << 8), stop.clone()));
        let rd = tokio::spawn(reader(io.clone(), stop.clone()));
        d.send_line(&json!({"cmd": "churn", "phase": p, "ops": OPS, "rooms": ROOMS}).to_string())
            .await;
        let churned = d.next_json(PHASE, "churn").await;
        assert_eq!(churned["type"], json!("churned"), "{churned}");
        stop.store(true, Ordering::Relaxed);
        let log0 = common::within(PHASE, "noise n0", n0).await.expect("n0");
        let log1 = common::within(PHASE, "noise n1", n1).await.expect("n1");
        let rounds = common::within(PHASE, "adapter reader", rd)
            .await
            .expect("reader");
        assert!(!log0.is_empty() && !log1.is_empty() && rounds > 0);

        // The server's view equals what each client was told.
        let start = members.clone();
        let mut touched = Vec::with_capacity(SOCKETS);
        for i in 0..SOCKETS {
            let mut told = strings(&churned["rooms"][i]);
            assert!(told.remove(&sids[i]), "{i}: own id in rooms: {told:?}");
            members[i] = told;
            touched.push(strings(&churned["touched"][i]));
        }
        let infos = io.of("/").unwrap().fetch_sockets().await.expect("fetch");
        assert_eq!(infos.len(), SOCKETS);
        for info in &infos {
            let i = index[&info.id];
            assert_eq!(info.rooms[0], info.id, "own id first");
            let server: BTreeSet<String> = info.rooms[1..].iter().cloned().collect();
            assert_eq!(
                server, members[i],
                "socket {i}: server rooms vs client's last ack"
            );
        }
        let all_rooms: BTreeSet<String> = io
            .of("/")
            .unwrap()
            .rooms()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.into_owned())
            .collect();
        let want_rooms: BTreeSet<String> = members.iter().flatten().cloned().collect();
        assert_eq!(all_rooms, want_rooms);

        // Stable membership: broadcasts with every kind of selection.
        let mut expected: Vec<Vec<u64>> = vec![Vec::new(); SOCKETS];
        for s in 0..STABLE {
            let (r1, r2) = (rng.room(), rng.room());
            let j = rng.next() % SOCKETS;
            let data = json!({"p": p, "s": s});
            let (reached, sel): (usize, Box<dyn Fn(usize) -> bool>) = match s % 8 {
                0 => (
                    io.to(r1.clone()).unwrap().emit("b", &data).await.unwrap(),
                    Box::new(|i| members[i].contains(&r1)),
                ),
                1 => (
                    io.to([r1.clone(), r2.clone()])
                        .unwrap()
                        .emit("b", &data)
                        .await
                        .unwrap(),
                    Box::new(|i| members[i].contains(&r1) || members[i].contains(&r2)),
                ),
                2 => (
                    io.to(r1.clone())
                        .unwrap()
                        .except(r2.clone())
                        .emit("b", &data)
                        .await
                        .unwrap(),
                    Box::new(|i| members[i].contains(&r1) && !members[i].contains(&r2)),
                ),
                3 => (
                    io.of("/")
                        .unwrap()
                        .except(r1.clone())
                        .emit("b", &data)
                        .await
                        .unwrap(),
                    Box::new(|i| !members[i].contains(&r1)),
                ),
                4 => (
                    handles[j].to(r1.clone()).emit("b", &data).await.unwrap(),
                    Box::new(|i| i != j && members[i].contains(&r1)),
                ),
                5 => (
                    handles[j].broadcast().emit("b", &data).await.unwrap(),
                    Box::new(|i| i != j),
                ),
                6 => (
                    io.to(sids[j].clone())
                        .unwrap()
                        .emit("b", &data)
                        .await
                        .unwrap(),
                    Box::new(|i| i == j),
                ),
                _ => (
                    io.to(vec![r1.clone(), sids[j].clone()])
                        .unwrap()
                        .emit("b", &data)
                        .await
                        .unwrap(),
                    Box::new(|i| i == j || members[i].contains(&r1)),
                ),
            };
            let mut count = 0;
            for (i, e) in expected.iter_mut().enumerate() {
                if sel(i) {
                    e.push(s);
                    count += 1;
                }
            }
            assert_eq!(reached, count, "phase {p} broadcast {s} (kind {})", s % 8);
        }
        assert_eq!(io.emit("fence", &p).await.unwrap(), SOCKETS);
        d.send_line(&json!({"cmd": "collect", "phase": p}).to_string())
            .await;
        let col = d.next_json(PHASE, "collect").await;
        assert_eq!(col["type"], json!("collected"), "{col}");
        assert_eq!(col["violations"], json!([]), "phase {p}");

        let mut failures = Vec::new();
        let mut decided = 0usize;
        for i in 0..SOCKETS {
            let got: Vec<u64> = serde_json::from_value(col["stable"][i].clone()).unwrap();
            if got != expected[i] {
                failures.push(format!(
                    "socket {i} stable: got {got:?}, expected {:?}",
                    expected[i]
                ));
            }
            // Noise: decidable where the rooms involved were not touched during the phase.
            let got0: BTreeSet<u64> = col["n0"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x[0].as_u64().unwrap())
                .collect();
            let got1: BTreeSet<u64> = serde_json::from_value(col["n1"][i].clone()).unwrap();
            for (log, got, name) in [(&log0, &got0, "n0"), (&log1, &got1, "n1")] {
                for (s, rooms, except) in log {
                    let involved = rooms.iter().chain(except.iter());
                    if involved.clone().any(|r| touched[i].contains(r)) {
                        continue;
                    }
                    let want = selects(rooms, except.as_ref(), &start[i]);
                    decided += usize::from(want);
                    if want != got.contains(s) {
                        failures.push(format!(
                            "socket {i} {name} {s} to {rooms:?} except {except:?}: received {}, rooms {:?}",
                            got.contains(s),
                            start[i]
                        ));
                    }
                }
                let sent: BTreeSet<u64> = log.iter().map(|x| x.0).collect();
                assert!(got.is_subset(&sent), "socket {i}: {name} never sent");
            }
        }
        eprintln!(
            "phase {p}: {} + {} noise broadcasts, {decided} noise deliveries checked, {} adapter reads",
            log0.len(),
            log1.len(),
            rounds
        );
        assert!(decided > 0 || p == 1, "no noise delivery was decidable");
        assert!(
            failures.is_empty(),
            "phase {p}: {} wrong deliveries, first ones:\n{}",
            failures.len(),
            failures
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    d.send_line(&json!({"cmd": "exit"}).to_string()).await;
    let bye = d.next_json(PHASE, "exit").await;
    assert_eq!(bye["type"], json!("bye"), "{bye}");
    // Everyone leaves: no socket, no room remains.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rooms = io.of("/").unwrap().rooms().await.unwrap();
        let n = io.sockets().len();
        if rooms.is_empty() && n == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after every client left: {n} sockets, rooms {rooms:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        io.of("/")
            .unwrap()
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );
    drop(server);
}
