//! The in-memory adapter.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use super::{
    Adapter, BoxFuture, BroadcastOptions, LocalNamespace, PersistedSession, RecoveryConfig,
    RecoveryStore, RestoredSession, Room,
};
use crate::engine::{Sid, SidMap, SidSet};
use crate::parser::{Encoded, EventPacket};

/// Rooms kept in memory on this server: the default adapter. With connection state
/// recovery, it also gives each broadcast an offset and keeps what disconnected sockets
/// may need.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    inner: RwLock<Inner>,
    recovery: Option<RecoveryStore>,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<Room, SidSet>,
    /// Every socket, with the rooms it joined (its own-id room is implicit, costing nothing).
    sockets: SidMap<HashSet<Room>>,
}

impl Inner {
    /// Sockets in `room`: its members, or the socket whose id it is.
    fn members(&self, room: &str, f: &mut dyn FnMut(Sid)) {
        if let Some(m) = self.rooms.get(room) {
            m.iter().for_each(|s| f(*s));
        } else if let Some(sid) = Sid::parse(room).filter(|s| self.sockets.contains_key(s)) {
            f(sid);
        }
    }
}

impl LocalAdapter {
    /// An empty adapter.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty adapter with connection state recovery.
    pub fn with_recovery(config: RecoveryConfig) -> Self {
        Self {
            inner: RwLock::default(),
            recovery: Some(RecoveryStore::new(config)),
        }
    }

    /// Whether `opts` aims at one socket of this server by its id and nothing else (a
    /// socket's own emit under connection state recovery). Socket ids are unique across a
    /// cluster, so a cluster adapter need not tell the other servers about it.
    pub fn targets_one_local_socket(&self, opts: &BroadcastOptions) -> bool {
        let [room] = opts.rooms.as_slice() else {
            return false;
        };
        let g = self.read();
        opts.except.is_empty()
            && opts.except_sid.is_none()
            && !g.rooms.contains_key(room)
            && Sid::parse(room).is_some_and(|sid| g.sockets.contains_key(&sid))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Adapter for LocalAdapter {
    fn add_socket(&self, sid: Sid) {
        self.write().sockets.entry(sid).or_default();
    }

    fn join(&self, sid: Sid, rooms: &[Room]) {
        let mut g = self.write();
        let inner = &mut *g;
        let Some(mine) = inner.sockets.get_mut(&sid) else {
            return;
        };
        for room in rooms {
            if room.as_ref() == sid.as_str() {
                continue;
            }
            if mine.insert(room.clone()) {
                inner.rooms.entry(room.clone()).or_default().insert(sid);
            }
        }
    }

    fn leave(&self, sid: Sid, rooms: &[Room]) {
        let mut g = self.write();
        let inner = &mut *g;
        let Some(mine) = inner.sockets.get_mut(&sid) else {
            return;
        };
        for room in rooms {
            if mine.remove(room) {
                if let Some(m) = inner.rooms.get_mut(room) {
                    m.remove(&sid);
                    if m.is_empty() {
                        inner.rooms.remove(room);
                    }
                }
            }
        }
    }

    fn remove_socket(&self, sid: Sid) {
        let mut g = self.write();
        let inner = &mut *g;
        let Some(mine) = inner.sockets.remove(&sid) else {
            return;
        };
        for room in mine {
            if let Some(m) = inner.rooms.get_mut(&room) {
                m.remove(&sid);
                if m.is_empty() {
                    inner.rooms.remove(&room);
                }
            }
        }
    }

    fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        let g = self.read();
        let Some(mine) = g.sockets.get(&sid) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(mine.len() + 1);
        out.push(Room::Owned(sid.as_str().to_owned()));
        out.extend(mine.iter().cloned());
        out
    }

    fn for_each(&self, opts: &BroadcastOptions, f: &mut dyn FnMut(Sid)) {
        let g = self.read();
        let mut excluded = SidSet::default();
        for room in &opts.except {
            g.members(room, &mut |s| {
                excluded.insert(s);
            });
        }
        excluded.extend(opts.except_sid);
        let mut emit = |sid: Sid| {
            if !excluded.contains(&sid) {
                f(sid);
            }
        };
        match opts.rooms.as_slice() {
            [] => g.sockets.keys().for_each(|s| emit(*s)),
            [room] => g.members(room, &mut emit),
            rooms => {
                // A socket in several of the rooms still gets the packet once.
                let mut seen = SidSet::default();
                for room in rooms {
                    g.members(room, &mut |s| {
                        if seen.insert(s) {
                            emit(s);
                        }
                    });
                }
            }
        }
    }

    fn rooms(&self) -> Vec<Room> {
        self.read().rooms.keys().cloned().collect()
    }

    fn socket_count(&self) -> usize {
        self.read().sockets.len()
    }

    fn frame_broadcast(
        &self,
        ns: &dyn LocalNamespace,
        packet: &EventPacket,
        opts: &BroadcastOptions,
    ) -> Encoded {
        match &self.recovery {
            // Volatile packets are not worth recovering, as in the reference server.
            Some(store) if !opts.volatile => {
                let (offset, text) = store.next_offset();
                let enc = ns.parser().encode_event(packet, None, Some(&text));
                store.keep(offset, opts, &enc);
                enc
            }
            _ => ns.parser().encode_event(packet, None, None),
        }
    }

    fn persist_session(&self, session: PersistedSession) -> BoxFuture<'_, ()> {
        if let Some(store) = &self.recovery {
            store.persist(session);
        }
        Box::pin(async {})
    }

    fn restore_session<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
    ) -> BoxFuture<'a, Option<RestoredSession>> {
        let restored = self
            .recovery
            .as_ref()
            .and_then(|store| store.restore(pid, offset));
        Box::pin(async move { restored })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(a: &LocalAdapter, opts: &BroadcastOptions) -> HashSet<Sid> {
        let mut out = HashSet::new();
        a.for_each(opts, &mut |s| assert!(out.insert(s), "delivered twice"));
        out
    }

    #[test]
    fn one_local_socket_by_id() {
        let a = LocalAdapter::new();
        let (s1, s2) = (Sid::new(), Sid::new());
        a.add_socket(s1);
        let to = |rooms: Vec<Room>| BroadcastOptions {
            rooms,
            ..Default::default()
        };
        assert!(a.targets_one_local_socket(&to(vec![s1.as_str().to_owned().into()])));
        assert!(!a.targets_one_local_socket(&to(vec![s2.as_str().to_owned().into()])));
        assert!(!a.targets_one_local_socket(&to(vec!["r1".into()])));
        assert!(!a.targets_one_local_socket(&to(Vec::new())));
        // A named room of that name reaches its members, wherever they are.
        a.add_socket(s2);
        a.join(s2, &[s1.as_str().to_owned().into()]);
        assert!(!a.targets_one_local_socket(&to(vec![s1.as_str().to_owned().into()])));
    }

    #[test]
    fn rooms_and_broadcast_sets() {
        let a = LocalAdapter::new();
        let (s1, s2, s3) = (Sid::new(), Sid::new(), Sid::new());
        for s in [s1, s2, s3] {
            a.add_socket(s);
        }
        a.join(s1, &["r1".into(), "r2".into()]);
        a.join(s2, &["r2".into()]);
        let all = collect(&a, &BroadcastOptions::default());
        assert_eq!(all.len(), 3);
        let opts = BroadcastOptions {
            rooms: vec!["r1".into(), "r2".into()],
            ..Default::default()
        };
        assert_eq!(collect(&a, &opts), HashSet::from([s1, s2]));
        let opts = BroadcastOptions {
            rooms: vec!["r2".into()],
            except: vec!["r1".into()],
            ..Default::default()
        };
        assert_eq!(collect(&a, &opts), HashSet::from([s2]));
        let opts = BroadcastOptions {
            rooms: vec![s3.as_str().to_owned().into()],
            ..Default::default()
        };
        assert_eq!(collect(&a, &opts), HashSet::from([s3]));
        a.remove_socket(s1);
        assert_eq!(a.rooms(), vec![Room::from("r2")]);
        a.leave(s2, &["r2".into()]);
        assert!(a.rooms().is_empty());
    }
}
