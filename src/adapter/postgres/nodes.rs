//! The other nodes of a cluster, as Node's `ClusterAdapterWithHeartbeat` counts them: every
//! uid heard from (the emitter's aside) is a node until it has been silent for the heartbeat
//! timeout or says it closes.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The nodes one namespace's adapter knows, by uid, with when each was last heard from.
pub(super) struct Nodes {
    seen: Mutex<HashMap<String, Instant>>,
    timeout: Duration,
    /// Bumped whenever a node is dropped, so requests stop waiting for it.
    dropped: watch::Sender<u64>,
}

impl Nodes {
    pub(super) fn new(timeout: Duration) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            timeout,
            dropped: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message came from `uid`.
    pub(super) fn touch(&self, uid: &str) {
        let now = Instant::now();
        let mut seen = self.lock();
        match seen.get_mut(uid) {
            Some(t) => *t = now,
            None => {
                tracing::debug!(uid, "cluster node joined");
                seen.insert(uid.to_owned(), now);
            }
        }
    }

    /// `uid` is gone (it said so).
    pub(super) fn remove(&self, uid: &str) {
        if self.lock().remove(uid).is_some() {
            tracing::debug!(uid, "cluster node left");
            self.dropped.send_modify(|n| *n += 1);
        }
    }

    /// Drops every node silent for longer than the heartbeat timeout.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        let before = {
            let mut seen = self.lock();
            let before = seen.len();
            seen.retain(|uid, t| {
                let alive = now.duration_since(*t) <= self.timeout;
                if !alive {
                    tracing::info!(
                        uid,
                        "cluster node silent past the heartbeat timeout: dropped"
                    );
                }
                alive
            });
            before - seen.len()
        };
        if before > 0 {
            self.dropped.send_modify(|n| *n += 1);
        }
    }

    /// The uids of the live nodes.
    pub(super) fn alive(&self) -> HashSet<String> {
        self.sweep();
        self.lock().keys().cloned().collect()
    }

    /// Whether `uid` is a live node.
    pub(super) fn is_alive(&self, uid: &str) -> bool {
        self.lock()
            .get(uid)
            .is_some_and(|t| t.elapsed() <= self.timeout)
    }

    /// A receiver that changes whenever a node is dropped.
    pub(super) fn watch_dropped(&self) -> watch::Receiver<u64> {
        self.dropped.subscribe()
    }
}
