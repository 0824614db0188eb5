//! The observer the core calls: turns what happens into admin events, queued in order for
//! one task that emits them to the admin namespace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::serialize;
use super::time::iso;
use crate::adapter::Room;
use crate::engine::{CloseReason, Frame, Sid};
use crate::errors::DisconnectReason;
use crate::instrument::Instrument;
use crate::ns::Namespace;
use crate::operators::BroadcastOperators;
use crate::parser::{Args, Encoded};
use crate::socket::Socket;

/// One admin event: to every admin socket of the cluster, or to one local admin socket.
pub(super) struct Out {
    to: Option<Sid>,
    event: &'static str,
    args: Vec<Value>,
    /// Its approximate size, counted against [`MAX_QUEUED_BYTES`].
    size: usize,
}

/// Bytes of admin events waiting for the emitting task before new ones are dropped: with
/// large events and slow dashboards, the queue is bounded in memory, not only in length.
const MAX_QUEUED_BYTES: usize = 32 << 20;

/// Approximate JSON size of a value. Values here come from parsed packets (depth bounded by
/// the parser) or from the server's own data.
fn approx_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(approx_size).sum::<usize>(),
        Value::Object(m) => {
            2 + m
                .iter()
                .map(|(k, v)| k.len() + 3 + approx_size(v))
                .sum::<usize>()
        }
    }
}

/// Counters behind `aggregatedEvents`, read and cleared at each stats tick.
#[derive(Default)]
pub(super) struct Counters {
    pub connections: AtomicU64,
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Disconnections by reason.
    pub disconnections: Mutex<HashMap<&'static str, u64>>,
    /// Connections still on long-polling.
    pub polling: AtomicUsize,
}

impl Counters {
    /// One connection less on long-polling; saturating, for connections opened before the
    /// server was instrumented.
    fn polling_done(&self) {
        let _ = self
            .polling
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

pub(super) struct Observer {
    admin_ns: String,
    dev: bool,
    tx: mpsc::Sender<Out>,
    pub counters: Counters,
    dropped: AtomicU64,
    queued_bytes: Arc<AtomicUsize>,
}

impl Observer {
    pub fn new(admin_ns: String, dev: bool, tx: mpsc::Sender<Out>) -> Self {
        Self {
            admin_ns,
            dev,
            tx,
            counters: Counters::default(),
            dropped: AtomicU64::new(0),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The byte count the emitting task releases as it sends.
    pub fn queued_bytes(&self) -> Arc<AtomicUsize> {
        self.queued_bytes.clone()
    }

    /// Queues an event for every admin socket.
    pub fn broadcast(&self, event: &'static str, args: Vec<Value>) {
        self.push(Out {
            to: None,
            event,
            args,
            size: 0,
        });
    }

    /// Queues an event for one local admin socket.
    pub fn send_to(&self, sid: Sid, event: &'static str, args: Vec<Value>) {
        self.push(Out {
            to: Some(sid),
            event,
            args,
            size: 0,
        });
    }

    fn push(&self, mut out: Out) {
        out.size = out.args.iter().map(approx_size).sum();
        let size = out.size;
        let before = self.queued_bytes.fetch_add(size, Ordering::AcqRel);
        if before + size > MAX_QUEUED_BYTES || self.tx.try_send(out).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            // Full (dashboards far behind) or closed (server going away).
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "admin UI: event queue full, events dropped");
            }
        }
    }

    fn now() -> Value {
        Value::String(iso(SystemTime::now()))
    }

    fn room_events(&self, ns: &str, sid: Sid, rooms: &[Room], joined: bool) {
        let event = if joined { "room_joined" } else { "room_left" };
        for room in rooms {
            self.broadcast(
                event,
                vec![
                    ns.into(),
                    room.as_ref().into(),
                    sid.as_str().into(),
                    Self::now(),
                ],
            );
        }
    }
}

impl Instrument for Observer {
    fn events(&self) -> bool {
        self.dev
    }

    fn socket_connected(&self, socket: &std::sync::Arc<Socket>) {
        if !self.dev {
            return;
        }
        // The socket's own room first, as the reference's adapter reports it.
        self.room_events(
            socket.ns(),
            socket.id(),
            &[socket.id().as_str().to_owned().into()],
            true,
        );
        self.broadcast(
            "socket_connected",
            vec![serialize::local_socket(socket), Self::now()],
        );
    }

    fn socket_disconnected(&self, socket: &Socket, reason: DisconnectReason, rooms: &[Room]) {
        if !self.dev {
            return;
        }
        self.broadcast(
            "socket_disconnected",
            vec![
                socket.ns().into(),
                socket.id().as_str().into(),
                reason.as_str().into(),
                Self::now(),
            ],
        );
        self.room_events(socket.ns(), socket.id(), rooms, false);
    }

    fn rooms_changed(&self, ns: &str, sid: Sid, rooms: &[Room], joined: bool) {
        if self.dev {
            self.room_events(ns, sid, rooms, joined);
        }
    }

    fn transport_upgraded(&self, socket: &Socket) {
        if !self.dev {
            return;
        }
        self.broadcast(
            "socket_updated",
            vec![json!({
                "id": socket.id().as_str(),
                "nsp": socket.ns(),
                "transport": "websocket",
            })],
        );
    }

    fn connection_opened(&self, polling: bool) {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        if polling {
            self.counters.polling.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn connection_upgraded(&self) {
        self.counters.polling_done();
    }

    fn connection_closed(&self, reason: CloseReason, polling: bool) {
        if polling {
            self.counters.polling_done();
        }
        *self
            .counters
            .disconnections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason.as_str())
            .or_default() += 1;
    }

    fn message_received(&self, bytes: usize) {
        self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn packets_sent(&self, packets: usize, bytes: usize) {
        self.counters
            .packets_out
            .fetch_add(packets as u64, Ordering::Relaxed);
        self.counters
            .bytes_out
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn broadcast_sent(&self, ns: &str, sids: &[Sid], packet: &Encoded) {
        if ns == self.admin_ns {
            return;
        }
        let Some(all) = event_of(packet) else { return };
        for sid in sids {
            self.broadcast(
                "event_sent",
                vec![ns.into(), sid.as_str().into(), all.clone(), Self::now()],
            );
        }
    }

    /// As the reference in development mode: `_admin` (client id and transport) inside the
    /// socket's data, so that every server's dashboard can show them for this socket.
    /// In production mode, `null` becomes `{}`: the reference's dashboard code, on a Node
    /// server of the same cluster, fails on a socket whose data is `null`.
    fn shared_data(&self, socket: &Socket, data: Value) -> Value {
        if !self.dev {
            return match data {
                Value::Null => json!({}),
                other => other,
            };
        }
        let admin = json!({
            "clientId": serialize::client_id(socket.engine_id().as_str()),
            "transport": serialize::transport_name(socket.transport()),
        });
        match data {
            Value::Null => json!({ "_admin": admin }),
            Value::Object(mut m) => {
                m.insert("_admin".into(), admin);
                Value::Object(m)
            }
            other => other,
        }
    }

    fn event_received(&self, socket: &Socket, name: &str, args: &Args) {
        if socket.ns() == self.admin_ns {
            return;
        }
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(Value::String(name.to_owned()));
        all.extend(
            (0..args.len()).map(|i| args.deserialize_nth::<Value>(i).unwrap_or(Value::Null)),
        );
        self.broadcast(
            "event_received",
            vec![
                socket.ns().into(),
                socket.id().as_str().into(),
                Value::Array(all),
                Self::now(),
            ],
        );
    }

    fn event_sent(&self, socket: &Socket, name: &str, args: Value) {
        if socket.ns() == self.admin_ns {
            return;
        }
        let mut all = vec![Value::String(name.to_owned())];
        if let Value::Array(a) = args {
            all.extend(a);
        }
        self.broadcast(
            "event_sent",
            vec![
                socket.ns().into(),
                socket.id().as_str().into(),
                Value::Array(all),
                Self::now(),
            ],
        );
    }
}

/// `[event, ...args]` of an encoded EVENT packet (JSON parser: the array after the packet
/// header; binary placeholders stay as they are). `None` for other packets and for msgpack.
fn event_of(packet: &Encoded) -> Option<Value> {
    let Frame::Text(text) = &packet.head else {
        return None;
    };
    let text = text.as_str();
    // `4` (Engine.IO message), then `2` (EVENT) or `5` (BINARY_EVENT) and the header.
    let body = text.strip_prefix('4')?;
    if !(body.starts_with('2') || body.starts_with('5')) {
        return None;
    }
    let start = body.find('[')?;
    serde_json::from_str(&body[start..]).ok()
}

/// Emits the queued admin events in order, until the server is gone.
pub(super) async fn forward(
    mut rx: mpsc::Receiver<Out>,
    ns: Weak<Namespace>,
    queued_bytes: Arc<AtomicUsize>,
) {
    while let Some(out) = rx.recv().await {
        queued_bytes.fetch_sub(out.size, Ordering::AcqRel);
        let Some(ns) = ns.upgrade() else { return };
        let op = BroadcastOperators::new(ns);
        let op = match out.to {
            Some(sid) => op.to(sid.as_str().to_owned()).local(),
            None => op,
        };
        if let Err(e) = op.emit_args(out.event, &out.args).await {
            tracing::debug!(event = out.event, error = %e, "admin UI: event not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;

    #[test]
    fn event_of_reads_encoded_events() {
        let p = Parser::Json;
        let enc = p
            .event("/", "cmd", &json!([1, "two"]), None, true)
            .expect("encode");
        assert_eq!(event_of(&enc), Some(json!(["cmd", 1, "two"])));
        // Another namespace and an ack id before the array.
        let enc = p
            .event("/chat", "hi", &json!({ "a": [1] }), Some(12), false)
            .expect("encode");
        assert_eq!(event_of(&enc), Some(json!(["hi", { "a": [1] }])));
        // Not an event.
        let enc = p.disconnect("/chat");
        assert_eq!(event_of(&enc), None);
    }

    #[test]
    fn queue_is_bounded_in_bytes() {
        let (tx, _rx) = mpsc::channel(16);
        let o = Observer::new("/admin".into(), true, tx);
        let big = Value::String("x".repeat(MAX_QUEUED_BYTES / 2));
        o.broadcast("a", vec![big.clone()]);
        o.broadcast("b", vec![big]);
        assert_eq!(
            o.dropped.load(Ordering::Relaxed),
            1,
            "the second one is over budget"
        );
        assert!(o.queued_bytes.load(Ordering::Relaxed) <= MAX_QUEUED_BYTES);
    }
}
