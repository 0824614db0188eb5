//! Connection state recovery, in memory: every event without ack a client receives (a
//! broadcast or a socket's own emit) gets an offset and is kept while a disconnected socket
//! could still need it, so a client that comes back within the window gets its id, rooms and
//! data back, and every packet it missed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{BroadcastOptions, Room};
use crate::engine::Sid;
use crate::extensions::Extensions;
use crate::parser::Encoded;

/// Settings of connection state recovery.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryConfig {
    /// How long a disconnected socket's state is kept. Default 2 minutes.
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the connect middlewares. Default true.
    pub skip_middlewares: bool,
    /// Most packets kept per namespace (broadcasts and, since every emit of a recoverable
    /// socket is kept too, emits to single sockets). When the cap is hit the oldest packet is
    /// dropped, and a socket that missed it can no longer be recovered: it reconnects as a
    /// new socket (`recovered() == false`) instead of silently missing a packet.
    /// Default 10 000.
    pub max_packets: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
        }
    }
}

/// The state of a socket that left for a recoverable reason.
#[derive(Debug)]
pub struct PersistedSession {
    /// The socket id, given back on recovery.
    pub sid: Sid,
    /// The private id the client presents to recover.
    pub pid: Sid,
    /// The rooms it was in (its own id excluded).
    pub rooms: Vec<Room>,
    /// Its data store.
    pub data: Extensions,
}

/// A session given back to a reconnecting client, with the broadcasts it missed, in order.
#[derive(Debug)]
pub struct RestoredSession {
    /// The session as it was persisted.
    pub session: PersistedSession,
    /// The packets to send right after the CONNECT reply.
    pub missed: Vec<Encoded>,
}

struct Stored {
    offset: u64,
    at: Instant,
    opts: BroadcastOptions,
    packet: Encoded,
}

struct Away {
    session: PersistedSession,
    since: Instant,
}

/// Offsets, kept packets and sessions of one namespace.
pub(crate) struct RecoveryStore {
    config: RecoveryConfig,
    /// A random prefix, so offsets from an earlier process never match this one's.
    epoch: String,
    next: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    packets: VecDeque<Stored>,
    away: HashMap<Sid, Away>,
    /// Whether the last packet kept pushed out the oldest one.
    at_cap: bool,
}

impl std::fmt::Debug for RecoveryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("RecoveryStore")
            .field("packets", &s.packets.len())
            .field("sessions", &s.away.len())
            .finish()
    }
}

impl RecoveryStore {
    pub(crate) fn new(config: RecoveryConfig) -> Self {
        let epoch = Sid::new().as_str()[..8].to_owned();
        Self {
            config,
            epoch,
            next: AtomicU64::new(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh offset: its number and its text (the extra argument clients see).
    pub(crate) fn next_offset(&self) -> (u64, String) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n, format!("{}-{n:x}", self.epoch))
    }

    fn parse_offset(&self, offset: &str) -> Option<u64> {
        let (epoch, n) = offset.rsplit_once('-')?;
        (epoch == self.epoch).then(|| u64::from_str_radix(n, 16).ok())?
    }

    /// Drops expired sessions, and packets older than the recovery window. Packets are kept
    /// for the whole window even when no socket is away, as the reference server does: a
    /// client's offset is the last packet it received, which may be far older than the
    /// moment its connection died, and a dropped offset packet means no recovery.
    fn prune(&self, s: &mut State, now: Instant) {
        let max = self.config.max_disconnection_duration;
        s.away.retain(|_, a| now.duration_since(a.since) < max);
        while s
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) >= max)
        {
            s.packets.pop_front();
        }
    }

    /// Keeps a broadcast while a disconnected socket might need it.
    pub(crate) fn keep(&self, offset: u64, opts: &BroadcastOptions, packet: &Encoded) {
        let now = Instant::now();
        let mut s = self.lock();
        self.prune(&mut s, now);
        if s.packets.len() >= self.config.max_packets {
            // Said once per stretch at the cap, not once per packet.
            if !s.at_cap {
                tracing::warn!(
                    max = self.config.max_packets,
                    "recovery packet cap reached: dropping the oldest; sockets away since then will reconnect without recovery"
                );
                s.at_cap = true;
            }
            s.packets.pop_front();
        } else {
            s.at_cap = false;
        }
        s.packets.push_back(Stored {
            offset,
            at: now,
            opts: opts.clone(),
            packet: packet.clone(),
        });
    }

    pub(crate) fn persist(&self, session: PersistedSession) {
        let now = Instant::now();
        let mut s = self.lock();
        self.prune(&mut s, now);
        s.away.insert(
            session.pid,
            Away {
                session,
                since: now,
            },
        );
    }

    /// Takes back the session of `pid` if it is still kept and every packet after `offset`
    /// is still there; `None` means the client connects as a new socket.
    pub(crate) fn restore(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        let pid = Sid::parse(pid)?;
        let now = Instant::now();
        let mut s = self.lock();
        self.prune(&mut s, now);
        let away = s.away.remove(&pid)?;
        let offset = self.parse_offset(offset)?;
        // The packet at the client's last offset must still be kept (or be the newest one):
        // otherwise packets after it may have been dropped, and recovery would hide a gap.
        let newest = self.next.load(Ordering::Relaxed) - 1;
        if offset != newest && !s.packets.iter().any(|p| p.offset == offset) {
            return None;
        }
        let session = away.session;
        let mut own_rooms: Vec<&str> = session.rooms.iter().map(|r| r.as_ref()).collect();
        let own_id = session.sid.as_str().to_owned();
        own_rooms.push(&own_id);
        let missed = s
            .packets
            .iter()
            .filter(|p| p.offset > offset && reaches(&p.opts, session.sid, &own_rooms))
            .map(|p| p.packet.clone())
            .collect();
        drop(own_rooms);
        Some(RestoredSession { session, missed })
    }
}

/// Whether a broadcast with `opts` would have reached a socket in `rooms`.
fn reaches(opts: &BroadcastOptions, sid: Sid, rooms: &[&str]) -> bool {
    let included = opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(&r.as_ref()));
    let excluded =
        opts.except_sid == Some(sid) || opts.except.iter().any(|r| rooms.contains(&r.as_ref()));
    included && !excluded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Frame;

    fn packet(n: u64) -> Encoded {
        Encoded {
            head: Frame::message(&n.to_string()),
            attachments: Vec::new(),
        }
    }

    fn store(max_packets: usize) -> RecoveryStore {
        RecoveryStore::new(RecoveryConfig {
            max_packets,
            ..RecoveryConfig::default()
        })
    }

    fn away(store: &RecoveryStore, rooms: &[&str]) -> (Sid, Sid) {
        let (sid, pid) = (Sid::new(), Sid::new());
        store.persist(PersistedSession {
            sid,
            pid,
            rooms: rooms.iter().map(|r| Room::Owned((*r).to_owned())).collect(),
            data: Extensions::new(),
        });
        (sid, pid)
    }

    /// Broadcasts `n` packets to `room` (everyone when `None`); returns their offsets' text.
    fn broadcast(store: &RecoveryStore, room: Option<&str>, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let (offset, text) = store.next_offset();
                let opts = BroadcastOptions {
                    rooms: room
                        .map(|r| Room::Owned(r.to_owned()))
                        .into_iter()
                        .collect(),
                    ..Default::default()
                };
                store.keep(offset, &opts, &packet(offset));
                text.trim_matches('"').to_owned()
            })
            .collect()
    }

    #[test]
    fn restores_only_what_the_socket_missed_in_its_rooms() {
        let s = store(100);
        let before = broadcast(&s, None, 1);
        let (sid, pid) = away(&s, &["a"]);
        broadcast(&s, Some("a"), 2);
        broadcast(&s, Some("b"), 2);
        broadcast(&s, None, 1);
        let r = s.restore(pid.as_str(), &before[0]).expect("restored");
        assert_eq!(r.session.sid, sid);
        assert_eq!(r.missed.len(), 3);
        assert!(
            s.restore(pid.as_str(), &before[0]).is_none(),
            "restored twice"
        );
    }

    #[test]
    fn cap_bounds_memory_and_refuses_a_gap() {
        let s = store(10);
        let first = broadcast(&s, None, 1);
        let (_, pid) = away(&s, &[]);
        broadcast(&s, None, 1000);
        assert_eq!(s.lock().packets.len(), 10, "cap not held");
        assert!(
            s.restore(pid.as_str(), &first[0]).is_none(),
            "recovered across dropped packets"
        );
    }

    #[test]
    fn unknown_or_foreign_offsets_do_not_recover() {
        let s = store(10);
        broadcast(&s, None, 1);
        let (_, pid) = away(&s, &[]);
        assert!(s.restore(pid.as_str(), "zzzzzzzz-1").is_none());
        let (_, pid) = away(&s, &[]);
        assert!(s.restore(pid.as_str(), "garbage").is_none());
        assert!(s.restore("not-a-pid", "x-1").is_none());
    }

    #[test]
    fn packets_outlive_a_quiet_spell_but_not_the_window() {
        let s = RecoveryStore::new(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(300),
            ..RecoveryConfig::default()
        });
        // The client's last packet is older than a heartbeat round when it goes away.
        let last = broadcast(&s, None, 1);
        std::thread::sleep(Duration::from_millis(100));
        let (_, pid) = away(&s, &[]);
        broadcast(&s, None, 2);
        let r = s.restore(pid.as_str(), &last[0]).expect("recovered");
        assert_eq!(r.missed.len(), 2);
        // Past the window, nothing is kept.
        std::thread::sleep(Duration::from_millis(350));
        broadcast(&s, None, 1);
        assert_eq!(s.lock().packets.len(), 1, "packets kept past the window");
    }
}
