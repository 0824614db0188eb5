//! The in-memory `LocalAdapter` under concurrent use from plain threads: joins, leaves,
//! socket removals and broadcast walks (`for_each`) racing each other must keep the room
//! index consistent, never deliver to a socket twice, never deadlock, and leave nothing
//! behind.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tower_socketio::adapter::{Adapter, BroadcastOptions, LocalAdapter, Room};
use tower_socketio::engine::Sid;

const ROOMS: usize = 8;

fn room(i: usize) -> Room {
    Room::Owned(format!("room-{i}"))
}

/// A tiny xorshift generator: deterministic per thread, no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }
}

fn collect(a: &LocalAdapter, opts: &BroadcastOptions) -> Vec<Sid> {
    let mut out = Vec::new();
    a.for_each(opts, &mut |s| out.push(s));
    out
}

fn opts(rooms: &[usize], except: &[usize]) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms.iter().map(|&i| room(i)).collect(),
        except: except.iter().map(|&i| room(i)).collect(),
        ..Default::default()
    }
}

/// Runs `f` on a thread and fails (instead of hanging) if it does not finish in time.
fn join_within(h: std::thread::JoinHandle<()>, limit: Duration, what: &str) {
    let deadline = std::time::Instant::now() + limit;
    while !h.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not finish within {limit:?} (deadlock?)"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    h.join().unwrap_or_else(|_| panic!("{what} panicked"));
}

#[test]
fn rooms_local_adapter_semantics() {
    let a = LocalAdapter::new();
    let s: Vec<Sid> = (0..4).map(|_| Sid::new()).collect();
    for sid in &s {
        a.add_socket(*sid);
    }
    // Joining before registering, or after removal, is ignored.
    let ghost = Sid::new();
    a.join(ghost, &[room(0)]);
    assert!(a.rooms().is_empty());
    assert!(a.socket_rooms(ghost).is_empty());

    a.join(s[0], &[room(0), room(1)]);
    a.join(s[1], &[room(1), room(1), room(2)]);
    a.join(s[2], &[Room::Owned(s[2].to_string())]);
    assert_eq!(a.socket_rooms(s[2]), vec![Room::Owned(s[2].to_string())]);
    assert_eq!(
        a.socket_rooms(s[1])[0],
        Room::Owned(s[1].to_string()),
        "own id first"
    );
    assert_eq!(a.socket_rooms(s[1]).len(), 3, "no duplicates");
    let rooms: BTreeSet<Room> = a.rooms().into_iter().collect();
    assert_eq!(rooms, BTreeSet::from([room(0), room(1), room(2)]));
    assert_eq!(a.socket_count(), 4);

    let set = |v: Vec<Sid>| -> BTreeSet<Sid> {
        let n = v.len();
        let s: BTreeSet<Sid> = v.into_iter().collect();
        assert_eq!(s.len(), n, "a socket selected twice");
        s
    };
    assert_eq!(set(collect(&a, &opts(&[], &[]))).len(), 4);
    assert_eq!(
        set(collect(&a, &opts(&[0, 1, 2], &[]))),
        BTreeSet::from([s[0], s[1]])
    );
    assert_eq!(set(collect(&a, &opts(&[1], &[0]))), BTreeSet::from([s[1]]));
    assert_eq!(
        set(collect(&a, &opts(&[], &[1]))),
        BTreeSet::from([s[2], s[3]])
    );
    let mut o = opts(&[1], &[]);
    o.except_sid = Some(s[0]);
    assert_eq!(set(collect(&a, &o)), BTreeSet::from([s[1]]));
    // A socket id as a room, in `rooms` and in `except`.
    let o = BroadcastOptions {
        rooms: vec![Room::Owned(s[3].to_string()), room(0)],
        except: vec![Room::Owned(s[0].to_string())],
        ..Default::default()
    };
    assert_eq!(set(collect(&a, &o)), BTreeSet::from([s[3]]));
    assert!(collect(&a, &opts(&[7], &[])).is_empty());

    a.leave(s[0], &[room(0), room(5)]);
    a.remove_socket(s[1]);
    a.remove_socket(s[1]);
    let rooms: BTreeSet<Room> = a.rooms().into_iter().collect();
    assert_eq!(rooms, BTreeSet::from([room(1)]));
    assert!(collect(&a, &opts(&[2], &[])).is_empty());
    a.remove_socket(s[0]);
    assert!(a.rooms().is_empty());
    assert_eq!(a.socket_count(), 2);
}

#[test]
fn rooms_local_adapter_under_concurrent_churn() {
    const WORKERS: usize = 6;
    const PER_WORKER: usize = 40;
    const OPS: usize = 3000;
    let a = Arc::new(LocalAdapter::new());
    let stop = Arc::new(AtomicBool::new(false));
    let walks = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(WORKERS + 2));

    // A set of sockets that never change: every broadcast walk must see each of them
    // exactly once, whatever the others do meanwhile.
    let stable: Vec<Sid> = (0..10).map(|_| Sid::new()).collect();
    for s in &stable {
        a.add_socket(*s);
        a.join(*s, &[room(0), room(1)]);
    }

    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let (a, barrier) = (a.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1234_5677));
            let mut mine: Vec<(Sid, HashSet<usize>)> = Vec::new();
            barrier.wait();
            for _ in 0..OPS {
                match rng.next() % 10 {
                    0 if mine.len() < PER_WORKER => {
                        let s = Sid::new();
                        a.add_socket(s);
                        mine.push((s, HashSet::new()));
                    }
                    1 if !mine.is_empty() => {
                        let (s, _) = mine.swap_remove(rng.next() % mine.len());
                        a.remove_socket(s);
                        assert!(a.socket_rooms(s).is_empty());
                    }
                    2..=5 if !mine.is_empty() => {
                        let i = rng.next() % mine.len();
                        let rs: Vec<usize> = (0..1 + rng.next() % 3)
                            .map(|_| rng.next() % ROOMS)
                            .collect();
                        a.join(mine[i].0, &rs.iter().map(|&r| room(r)).collect::<Vec<_>>());
                        mine[i].1.extend(rs);
                    }
                    6..=8 if !mine.is_empty() => {
                        let i = rng.next() % mine.len();
                        let rs: Vec<usize> = (0..1 + rng.next() % 3)
                            .map(|_| rng.next() % ROOMS)
                            .collect();
                        a.leave(mine[i].0, &rs.iter().map(|&r| room(r)).collect::<Vec<_>>());
                        for r in rs {
                            mine[i].1.remove(&r);
                        }
                    }
                    _ => {
                        // Own sockets are only changed by this thread: the adapter must
                        // agree with what it did.
                        if let Some((s, rs)) = mine.get(rng.next() % mine.len().max(1)) {
                            let got: HashSet<String> = a
                                .socket_rooms(*s)
                                .into_iter()
                                .map(|r| r.into_owned())
                                .collect();
                            let mut want: HashSet<String> =
                                rs.iter().map(|&r| room(r).into_owned()).collect();
                            want.insert(s.to_string());
                            assert_eq!(got, want);
                        }
                    }
                }
            }
            for (s, _) in mine {
                a.remove_socket(s);
            }
        }));
    }
    for k in 0..2 {
        let (a, stop, walks, barrier, stable) = (
            a.clone(),
            stop.clone(),
            walks.clone(),
            barrier.clone(),
            stable.clone(),
        );
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            let mut rng = Rng(77 + k);
            let stable: HashSet<Sid> = stable.into_iter().collect();
            while !stop.load(Ordering::Relaxed) {
                let o = match rng.next() % 4 {
                    0 => opts(&[0], &[]),
                    1 => opts(&[0, 1, 2, 3], &[]),
                    2 => opts(&[1, 2, 3, 4, 5, 6, 7], &[5]),
                    _ => opts(&[], &[2]),
                };
                let got = collect(&a, &o);
                let uniq: HashSet<Sid> = got.iter().copied().collect();
                assert_eq!(uniq.len(), got.len(), "a socket selected twice");
                assert!(stable.is_subset(&uniq), "a stable member was missed");
                let _ = a.rooms();
                let _ = a.socket_count();
                walks.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let readers = handles.split_off(WORKERS);
    for (i, h) in handles.into_iter().enumerate() {
        join_within(h, Duration::from_secs(60), &format!("worker {i}"));
    }
    stop.store(true, Ordering::Relaxed);
    for h in readers {
        join_within(h, Duration::from_secs(10), "reader");
    }
    assert!(walks.load(Ordering::Relaxed) > 0);

    // Only the stable sockets remain, in exactly their rooms.
    assert_eq!(a.socket_count(), stable.len());
    let rooms: BTreeSet<Room> = a.rooms().into_iter().collect();
    assert_eq!(rooms, BTreeSet::from([room(0), room(1)]));
    let all: BTreeSet<Sid> = collect(&a, &opts(&[0, 1, 2, 3, 4, 5, 6, 7], &[]))
        .into_iter()
        .collect();
    assert_eq!(all, stable.iter().copied().collect());
    for s in &stable {
        a.remove_socket(*s);
    }
    assert!(a.rooms().is_empty());
    assert_eq!(a.socket_count(), 0);
}
