//! One server's link to Redis for the Streams adapter: the stream reader, the subscriber
//! connection, a connection for commands, and the handling of what other servers send.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::AsyncCommands;
use rmpv::Value;
use tokio::sync::{mpsc, oneshot};

use super::super::RedisConnectError;
use super::super::link::bounded;
use super::super::pubsub::{Subscriber, Subscription};
use super::{NsState, RedisStreamsAdapter, RedisStreamsConfig};
use crate::adapter::{
    AdapterError, AdapterFactory, BroadcastOptions, LocalAdapter, LocalNamespace,
};
use crate::cluster::redis_streams::{self as wire, Message, stream_entries};
use crate::cluster::values;
use crate::engine::Sid;
use crate::parser::EventPacket;

/// Own broadcasts read back before their sender asked (kept for it a little while).
const EARLY_CAP: usize = 1024;

/// A server's connection to Redis, shared by the Streams adapters of all its namespaces.
#[derive(Clone)]
pub struct RedisStreamsLink {
    inner: Arc<LinkInner>,
}

impl std::fmt::Debug for RedisStreamsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsLink")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Broadcasts of this server waiting for the reader to deliver them here.
#[derive(Default)]
pub(super) struct OwnBroadcasts {
    /// Senders waiting, by entry id.
    waiting: HashMap<String, oneshot::Sender<usize>>,
    /// Entries read back before their sender knew their id: (id, count). Bounded: a sender
    /// that gave up leaves its entry here until pushed out.
    early: VecDeque<(String, usize)>,
}

impl OwnBroadcasts {
    fn delivered(&mut self, id: &str, count: usize) {
        match self.waiting.remove(id) {
            Some(tx) => {
                let _ = tx.send(count);
            }
            None => {
                if self.early.len() >= EARLY_CAP {
                    self.early.pop_front();
                }
                self.early.push_back((id.to_owned(), count));
            }
        }
    }
}

/// Removes a sender's registration if it stops waiting (timeout or dropped future).
struct Waiting<'a> {
    own: &'a Own,
    id: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.own.lock().waiting.remove(self.id);
    }
}

pub(super) struct LinkInner {
    pub(super) config: RedisStreamsConfig,
    pub(super) conn: redis::aio::ConnectionManager,
    namespaces: Mutex<HashMap<String, Arc<NsState>>>,
    subscriber: Subscriber,
    /// Answers this server sends, in order, from one task.
    answer_tx: mpsc::UnboundedSender<(String, Vec<u8>)>,
    pub(super) own: Own,
    /// The newest stream entry delivered here: every entry up to it has reached our
    /// sockets' queues, so it is the offset of a packet sent to one of them now.
    delivered: Mutex<Option<Arc<str>>>,
}

/// [`OwnBroadcasts`] behind a lock that survives poisoning.
#[derive(Default)]
pub(super) struct Own(Mutex<OwnBroadcasts>);

impl Own {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, OwnBroadcasts> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RedisStreamsLink {
    /// Connects to Redis (`redis://host:port`), then keeps every connection up and reads
    /// the stream from its current end.
    ///
    /// The first connection is tried once: a refused connection is reported at once, an
    /// unanswered one after [`RedisStreamsConfig::connect_timeout`] (each step of the
    /// connection is bounded by it). Once connected, the link reconnects by itself.
    pub async fn connect(url: &str, config: RedisStreamsConfig) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(RedisConnectError::Url)?;
        let addr = client.get_connection_info().addr().to_string();
        let timeout = config.connect_timeout;
        // The subscriber connection first: a single attempt, where the connection manager
        // would retry with backoff for seconds before giving up.
        let first = bounded(&addr, timeout, client.get_async_pubsub()).await?;
        let mut conn = bounded(&addr, timeout, client.get_connection_manager()).await?;
        let reader = bounded(&addr, timeout, reader_connection(&client, &config)).await?;
        // Something that accepts connections but does not answer is no Redis; the newest
        // entry is where reading starts.
        let last: redis::Value = bounded(
            &addr,
            timeout,
            redis::cmd("XREVRANGE")
                .arg(&config.stream_name)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn),
        )
        .await?;
        let last = wire::entries(&last).into_iter().next().map(|(id, _)| id);
        let (answer_tx, answer_rx) = mpsc::unbounded_channel();
        let inner = Arc::new_cyclic(|link: &Weak<LinkInner>| {
            let link = link.clone();
            LinkInner {
                config,
                conn: conn.clone(),
                namespaces: Mutex::new(HashMap::new()),
                subscriber: Subscriber::spawn(client.clone(), first, move |channel, payload| {
                    if let Some(inner) = link.upgrade() {
                        inner.on_pubsub(channel, payload);
                    }
                }),
                answer_tx,
                own: Own::default(),
                delivered: Mutex::new(last.as_deref().map(Arc::from)),
            }
        });
        tokio::spawn(answers(conn, answer_rx));
        tokio::spawn(read_stream(
            client,
            reader,
            Arc::downgrade(&inner),
            last.unwrap_or_else(|| "0-0".to_owned()),
        ));
        Ok(Self { inner })
    }

    /// The adapter factory to give `SocketIoBuilder::adapter`.
    pub fn factory(&self) -> AdapterFactory {
        let link = self.inner.clone();
        Arc::new(move |nsp: &str| {
            let uid = Sid::new().to_string();
            let prefix = &link.config.channel_prefix;
            Box::new(RedisStreamsAdapter {
                local: LocalAdapter::new(),
                link: link.clone(),
                ns: Arc::new(NsState {
                    public: format!("{prefix}#{nsp}#"),
                    private: format!("{prefix}#{nsp}#{uid}#"),
                    nsp: nsp.to_owned(),
                    uid,
                    local: std::sync::OnceLock::new(),
                    pending: Default::default(),
                }),
            })
        })
    }

    /// Waits until every namespace created so far is subscribed: call it before accepting
    /// clients, so this server counts in the cluster from its first socket on.
    pub async fn wait_subscribed(&self) {
        self.inner.subscriber.wait_subscribed().await;
    }
}

async fn reader_connection(
    client: &redis::Client,
    config: &RedisStreamsConfig,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    // A blocking XREAD holds its connection for up to `block_time`: its own connection,
    // with a response timeout above that.
    let cfg = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(config.block_time + Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

impl LinkInner {
    pub(super) fn register(&self, ns: Arc<NsState>) {
        self.namespaces().insert(ns.nsp.clone(), ns.clone());
        self.subscriber.add(Subscription {
            patterns: Vec::new(),
            channels: vec![ns.public.clone(), ns.private.clone()],
        });
    }

    fn namespaces(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<NsState>>> {
        self.namespaces.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ns(&self, nsp: &str) -> Option<Arc<NsState>> {
        self.namespaces().get(nsp).cloned()
    }

    /// The newest entry delivered here (see [`LinkInner::delivered`]).
    pub(super) fn delivered(&self) -> Option<Arc<str>> {
        self.delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) async fn publish(&self, channel: &str, bytes: Vec<u8>) -> Result<(), AdapterError> {
        let mut conn = self.conn.clone();
        conn.publish::<_, _, ()>(channel, bytes).await.map_err(|e| {
            tracing::warn!(channel, error = %e, "redis publish failed");
            AdapterError::Link(e.to_string())
        })
    }

    /// Appends an entry to the stream, trimmed to about `max_len`; returns its id.
    pub(super) async fn xadd(
        &self,
        uid: &str,
        nsp: &str,
        kind: u64,
        data: &str,
    ) -> Result<String, AdapterError> {
        let mut conn = self.conn.clone();
        let cfg = &self.config;
        wire::xadd(&cfg.stream_name, cfg.max_len, uid, nsp, kind, data)
            .query_async(&mut conn)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "redis XADD failed");
                AdapterError::Link(e.to_string())
            })
    }

    /// Subscribers of a channel: how Node counts the servers of a cluster.
    pub(super) async fn numsub(&self, channel: &str) -> Result<usize, AdapterError> {
        let mut conn = self.conn.clone();
        let (_, n): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .map_err(|e| AdapterError::Link(e.to_string()))?;
        Ok(n)
    }

    /// Waits until the reader has delivered our entry `id` here; returns how many local
    /// sockets took it (0 if the reader is not there within `timeout`).
    pub(super) async fn own_delivered(&self, id: &str, timeout: Duration) -> usize {
        let rx = {
            let mut own = self.own.lock();
            if let Some(at) = own.early.iter().position(|(e, _)| e == id) {
                return own.early.remove(at).map_or(0, |(_, c)| c);
            }
            let (tx, rx) = oneshot::channel();
            own.waiting.insert(id.to_owned(), tx);
            rx
        };
        let _waiting = Waiting { own: &self.own, id };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(count)) => count,
            _ => {
                tracing::warn!(id, "own broadcast not read back from the stream in time");
                0
            }
        }
    }

    fn answer(&self, ns: &NsState, to_uid: &str, kind: u64, data: Value) {
        let channel = ns.response_channel(&self.config.channel_prefix, to_uid);
        let _ = self
            .answer_tx
            .send((channel, wire::message(kind, data, &ns.uid, &ns.nsp)));
    }

    fn on_pubsub(&self, channel: &str, payload: &[u8]) {
        let Some(msg) = Message::from_pubsub(payload) else {
            tracing::debug!(channel, "undecodable message from redis dropped");
            return;
        };
        let Some(ns) = self.ns(&msg.nsp) else { return };
        if channel != ns.public && channel != ns.private {
            return;
        }
        self.on_message(&ns, msg, None);
    }

    fn on_entry(&self, id: &str, fields: &[(Vec<u8>, Vec<u8>)]) {
        match Message::from_entry(fields) {
            Some(msg) => {
                if let Some(ns) = self.ns(&msg.nsp) {
                    self.on_message(&ns, msg, Some(id));
                }
            }
            None => tracing::warn!(id, "undecodable stream entry skipped"),
        }
        *self.delivered.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(id));
    }

    /// A message from the stream (with its entry id) or from pub/sub.
    fn on_message(&self, ns: &NsState, msg: Message, entry: Option<&str>) {
        let own = msg.uid.as_deref() == Some(ns.uid.as_str());
        let Some(local) = ns.local() else { return };
        let opts = || values::opts_from(msg.get("opts"));
        match msg.kind {
            wire::BROADCAST if msg.request_id().is_some() => {
                if !own {
                    self.on_broadcast_with_ack(ns, &local, &msg);
                }
            }
            wire::BROADCAST => {
                // Our own broadcasts are delivered here too, in stream order.
                if own && entry.is_none() {
                    return;
                }
                let count = deliver(&local, &msg, entry).unwrap_or(0);
                if let (true, Some(id)) = (own, entry) {
                    self.own.lock().delivered(id, count);
                }
            }
            _ if own => {}
            kind @ (wire::SOCKETS_JOIN | wire::SOCKETS_LEAVE) => {
                let rooms = match msg.get("rooms") {
                    Some(Value::Array(r)) => r
                        .iter()
                        .filter_map(|r| {
                            r.as_str()
                                .map(|s| crate::adapter::Room::Owned(s.to_owned()))
                        })
                        .collect::<Vec<_>>(),
                    _ => return,
                };
                local.rooms_op(&opts(), &rooms, kind == wire::SOCKETS_JOIN);
            }
            wire::DISCONNECT_SOCKETS => {
                let close = msg.get("close").and_then(Value::as_bool).unwrap_or(false);
                local.disconnect(&opts(), close);
            }
            wire::FETCH_SOCKETS => {
                let (Some(uid), Some(id)) = (msg.uid.as_deref(), msg.request_id()) else {
                    return;
                };
                let sockets: Vec<Value> = local
                    .socket_infos(&opts())
                    .into_iter()
                    .filter_map(|s| {
                        let json = serde_json::json!({
                            "id": s.id, "handshake": s.handshake, "rooms": s.rooms, "data": s.data,
                        });
                        rmpv::ext::to_value(json).ok()
                    })
                    .collect();
                let data = wire::map(vec![
                    ("requestId", Value::from(id)),
                    ("sockets", Value::Array(sockets)),
                ]);
                self.answer(ns, uid, wire::FETCH_SOCKETS_RESPONSE, data);
            }
            wire::SERVER_SIDE_EMIT => {
                let Some(Value::Array(packet)) = msg.get("packet") else {
                    return;
                };
                let Some(event) = packet.first().and_then(Value::as_str) else {
                    return;
                };
                let args: Vec<serde_json::Value> = packet[1..]
                    .iter()
                    .map(|v| rmpv::ext::from_value(v.clone()).unwrap_or_default())
                    .collect();
                let (Some(uid), Some(id)) = (msg.uid.as_deref(), msg.request_id()) else {
                    local.server_event(event, &args, None);
                    return;
                };
                // The handler may answer later (async); no answer (no handler, or the ack
                // dropped) sends nothing, as the reference server.
                let answer = local.server_event_with_ack(event, &args);
                let channel = ns.response_channel(&self.config.channel_prefix, uid);
                let (answer_tx, own_uid, nsp) =
                    (self.answer_tx.clone(), ns.uid.clone(), ns.nsp.clone());
                let id = id.to_owned();
                tokio::spawn(async move {
                    let Some(answer) = answer.await else { return };
                    let answer = rmpv::ext::to_value(answer).unwrap_or(Value::Nil);
                    let data = wire::map(vec![("requestId", Value::from(id)), ("packet", answer)]);
                    let bytes =
                        wire::message(wire::SERVER_SIDE_EMIT_RESPONSE, data, &own_uid, &nsp);
                    let _ = answer_tx.send((channel, bytes));
                });
            }
            wire::FETCH_SOCKETS_RESPONSE
            | wire::SERVER_SIDE_EMIT_RESPONSE
            | wire::BROADCAST_CLIENT_COUNT
            | wire::BROADCAST_ACK => {
                if let Some(id) = msg.request_id().map(str::to_owned) {
                    let response =
                        wire::map(vec![("type", Value::from(msg.kind)), ("data", msg.data)]);
                    ns.pending.dispatch(&id, response);
                }
            }
            kind => tracing::debug!(kind, "unknown cluster message type ignored"),
        }
    }

    /// Another server's broadcast with acks: emitted to our sockets, then our count (always,
    /// even zero) and each ack as it comes, to the requester.
    fn on_broadcast_with_ack(&self, ns: &NsState, local: &Arc<dyn LocalNamespace>, msg: &Message) {
        let (Some(uid), Some(id)) = (msg.uid.clone(), msg.request_id().map(str::to_owned)) else {
            return;
        };
        let Some((_, event, args)) = msg.get("packet").and_then(values::event_of) else {
            return;
        };
        let opts_v = msg.get("opts");
        let opts = values::opts_from(opts_v);
        let timeout = opts_v
            .and_then(|o| values::get(o, "flags"))
            .and_then(|f| values::get(f, "timeout"))
            .and_then(Value::as_u64)
            .map_or(self.config.requests_timeout, Duration::from_millis);
        let Ok(p) = EventPacket::from_values(local.parser(), &ns.nsp, &event, &args) else {
            return;
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let count = local.deliver_with_ack(&p, &opts, timeout, tx);
        let data = wire::map(vec![
            ("requestId", Value::from(id.as_str())),
            ("clientCount", Value::from(count)),
        ]);
        self.answer(ns, &uid, wire::BROADCAST_CLIENT_COUNT, data);
        let channel = ns.response_channel(&self.config.channel_prefix, &uid);
        let (answer_tx, own_uid, nsp) = (self.answer_tx.clone(), ns.uid.clone(), ns.nsp.clone());
        tokio::spawn(async move {
            while let Some((_, result)) = rx.recv().await {
                let Ok(args) = result else { continue };
                let first = values::ack_value(&args);
                let data = wire::map(vec![
                    ("requestId", Value::from(id.as_str())),
                    ("packet", first),
                ]);
                let bytes = wire::message(wire::BROADCAST_ACK, data, &own_uid, &nsp);
                let _ = answer_tx.send((channel.clone(), bytes));
            }
        });
    }
}

/// Delivers a broadcast to the local sockets its options select, with the entry id as
/// offset when recovery is on (not for volatile packets or packets with an ack id, as Node).
fn deliver(local: &Arc<dyn LocalNamespace>, msg: &Message, entry: Option<&str>) -> Option<usize> {
    let packet = msg.get("packet")?;
    let (_, event, args) = values::event_of(packet)?;
    let opts_v = msg.get("opts");
    let opts: BroadcastOptions = values::opts_from(opts_v);
    let volatile = opts_v
        .and_then(|o| values::get(o, "flags"))
        .and_then(|f| values::get(f, "volatile"))
        .is_some_and(|v| !v.is_nil());
    let offset = entry
        .filter(|_| local.recovery().is_some() && values::get(packet, "id").is_none() && !volatile);
    let parser = local.parser();
    match EventPacket::from_values(parser, local.path(), &event, &args) {
        Ok(p) => Some(local.deliver(&parser.encode_event(&p, None, offset), &opts)),
        Err(e) => {
            tracing::debug!(error = %e, "remote broadcast dropped");
            None
        }
    }
}

/// The type of a response handed to a pending request.
pub(super) fn response_kind(v: &Value) -> Option<u64> {
    values::get(v, "type").and_then(Value::as_u64)
}

/// A field of a response's `data`.
pub(super) fn response_data<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    values::get(v, "data").and_then(|d| values::get(d, key))
}

async fn answers(
    conn: redis::aio::ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    while let Some((channel, bytes)) = rx.recv().await {
        let mut conn = conn.clone();
        if let Err(e) = conn.publish::<_, _, ()>(&channel, bytes).await {
            tracing::warn!(%channel, error = %e, "redis answer not published");
        }
    }
}

/// Reads the stream from `offset` on, entry by entry, for as long as the link lives; after
/// an outage, reconnects with backoff and reads on from the last entry seen.
async fn read_stream(
    client: redis::Client,
    mut conn: redis::aio::MultiplexedConnection,
    link: Weak<LinkInner>,
    mut offset: String,
) {
    let (stream, count, block) = match link.upgrade() {
        Some(l) => (
            l.config.stream_name.clone(),
            l.config.read_count,
            l.config.block_time,
        ),
        None => return,
    };
    let mut backoff = Duration::from_millis(100);
    let mut broken = false;
    loop {
        if broken {
            tokio::time::sleep(backoff).await;
            let Some(l) = link.upgrade() else { return };
            match reader_connection(&client, &l.config).await {
                Ok(c) => {
                    tracing::info!(%offset, "redis stream reader reconnected");
                    conn = c;
                    broken = false;
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "redis stream reader: cannot reconnect yet");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let reply: redis::RedisResult<redis::Value> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&offset)
            .query_async(&mut conn)
            .await;
        let Some(l) = link.upgrade() else { return };
        match reply {
            Ok(v) => {
                for (id, fields) in stream_entries(&v) {
                    l.on_entry(&id, &fields);
                    offset = id;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis stream read failed; local sockets keep being served");
                broken = true;
            }
        }
    }
}
