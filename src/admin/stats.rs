//! `server_stats`, every [`STATS_INTERVAL`](super::STATS_INTERVAL), to every admin socket of
//! the cluster.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::observer::{Counters, Observer};
use crate::io::IoInner;

/// What does not change between two stats.
pub(super) struct Base {
    pub server_id: String,
    pub hostname: String,
    pub pid: u32,
    pub started: Instant,
}

/// The counters since the last tick, as the reference's `aggregatedEvents`: one entry per
/// kind, stamped with the current second.
fn aggregated(c: &Counters) -> Vec<Value> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() * 1000);
    let mut out = Vec::new();
    let mut push = |kind: &str, sub: Option<&str>, count: u64| {
        if count > 0 {
            let mut e = json!({ "timestamp": now, "type": kind, "count": count });
            if let Some(sub) = sub {
                e["subType"] = sub.into();
            }
            out.push(e);
        }
    };
    push(
        "rawConnection",
        None,
        c.connections.swap(0, Ordering::Relaxed),
    );
    push("packetsIn", None, c.packets_in.swap(0, Ordering::Relaxed));
    push("bytesIn", None, c.bytes_in.swap(0, Ordering::Relaxed));
    push("packetsOut", None, c.packets_out.swap(0, Ordering::Relaxed));
    push("bytesOut", None, c.bytes_out.swap(0, Ordering::Relaxed));
    let gone = std::mem::take(&mut *c.disconnections.lock().unwrap_or_else(|e| e.into_inner()));
    for (reason, n) in gone {
        push("rawDisconnection", Some(reason), n);
    }
    out
}

fn stats(base: &Base, io: &IoInner, observer: &Observer) -> Value {
    let mut namespaces: Vec<(String, usize)> = io
        .namespaces()
        .iter()
        .map(|ns| (ns.path().to_owned(), ns.socket_count()))
        .collect();
    namespaces.sort();
    json!({
        "serverId": base.server_id,
        "hostname": base.hostname,
        "pid": base.pid,
        "uptime": base.started.elapsed().as_secs_f64(),
        "clientsCount": io.connection_count(),
        "pollingClientsCount": observer.counters.polling.load(Ordering::Relaxed),
        "aggregatedEvents": aggregated(&observer.counters),
        "namespaces": namespaces
            .into_iter()
            .map(|(name, n)| json!({ "name": name, "socketsCount": n }))
            .collect::<Vec<_>>(),
    })
}

/// Sends the stats at once, then every interval, until the server is gone.
pub(super) async fn run(base: Base, io: Weak<IoInner>, observer: Arc<Observer>) {
    let mut tick = tokio::time::interval(super::STATS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(io) = io.upgrade() else { return };
        let s = stats(&base, &io, &observer);
        drop(io);
        observer.broadcast("server_stats", vec![s]);
    }
}
