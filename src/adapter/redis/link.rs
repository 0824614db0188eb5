//! One server's link to Redis: a subscriber connection shared by every namespace (renewed
//! after an outage), a publishing connection, and the handling of what other servers send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use rmpv::Value;
use tokio::sync::mpsc;

use super::pubsub::{Subscriber, Subscription};
use super::{NsState, RedisAdapter, RedisAdapterConfig};
use crate::adapter::{
    AdapterError, AdapterFactory, BroadcastOptions, LocalAdapter, LocalNamespace,
};
use crate::cluster::redis as wire;
use crate::cluster::requests::Pending;
use crate::cluster::values::{ack_value, event_of, get, get_str, opts_from};
use crate::engine::Sid;
use crate::parser::EventPacket;

/// A server's connection to Redis, shared by the adapters of all its namespaces.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<LinkInner>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(super) struct LinkInner {
    pub(super) config: RedisAdapterConfig,
    conn: redis::aio::ConnectionManager,
    namespaces: Mutex<HashMap<String, Arc<NsState>>>,
    /// The subscriber connection.
    subscriber: Subscriber,
    /// Answers this server sends, in order, from one task.
    answer_tx: mpsc::UnboundedSender<(String, Vec<u8>)>,
}

/// [`RedisLink::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisConnectError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis refused or broke the connection, or the handshake failed (authentication,
    /// database selection, ...).
    #[error("could not connect to Redis at {addr}: {source}")]
    Connect {
        /// Host and port (or socket path) tried; never the credentials.
        addr: String,
        /// What the Redis client reported.
        #[source]
        source: redis::RedisError,
    },
    /// No connection within [`RedisAdapterConfig::connect_timeout`].
    #[error("no connection to Redis at {addr} within {timeout:?}")]
    Timeout {
        /// Host and port (or socket path) tried.
        addr: String,
        /// The connect timeout that ran out.
        timeout: Duration,
    },
}

/// One step of the connection, bounded by the connect timeout.
pub(super) async fn bounded<T>(
    addr: &str,
    timeout: Duration,
    step: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisConnectError> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(RedisConnectError::Connect {
            addr: addr.to_owned(),
            source,
        }),
        Err(_) => Err(RedisConnectError::Timeout {
            addr: addr.to_owned(),
            timeout,
        }),
    }
}

impl RedisLink {
    /// Connects to Redis (`redis://host:port`), then keeps both connections up.
    ///
    /// The first connection is tried once: a refused connection is reported at once, an
    /// unanswered one after [`RedisAdapterConfig::connect_timeout`] (each step of the
    /// connection is bounded by it). Once connected, the link reconnects by itself.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(RedisConnectError::Url)?;
        let addr = client.get_connection_info().addr().to_string();
        let timeout = config.connect_timeout;
        // The subscriber connection first: it is a single attempt, where the connection
        // manager would retry with backoff for seconds before giving up.
        let first = bounded(&addr, timeout, client.get_async_pubsub()).await?;
        let conn = bounded(&addr, timeout, client.get_connection_manager()).await?;
        // Something that accepts connections but does not answer is no Redis.
        let mut ping = conn.clone();
        bounded(
            &addr,
            timeout,
            redis::cmd("PING").query_async::<()>(&mut ping),
        )
        .await?;
        let (answer_tx, answer_rx) = mpsc::unbounded_channel();
        let inner = Arc::new_cyclic(|link: &std::sync::Weak<LinkInner>| {
            let link = link.clone();
            LinkInner {
                config,
                conn: conn.clone(),
                namespaces: Mutex::new(HashMap::new()),
                subscriber: Subscriber::spawn(client, first, move |channel, payload| {
                    if let Some(inner) = link.upgrade() {
                        handle(&inner, channel, payload);
                    }
                }),
                answer_tx,
            }
        });
        tokio::spawn(answers(conn, answer_rx));
        Ok(Self { inner })
    }

    /// The adapter factory to give `SocketIoBuilder::adapter`.
    pub fn factory(&self) -> AdapterFactory {
        let link = self.inner.clone();
        Arc::new(move |nsp: &str| {
            let uid = Sid::new().to_string();
            Box::new(RedisAdapter {
                local: LocalAdapter::new(),
                link: link.clone(),
                ns: Arc::new(NsState {
                    channels: wire::Channels::new(&link.config.key, nsp, &uid),
                    nsp: nsp.to_owned(),
                    uid,
                    local: std::sync::OnceLock::new(),
                    pending: Pending::default(),
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

impl LinkInner {
    pub(super) fn register(&self, ns: Arc<NsState>) {
        self.lock().insert(ns.nsp.clone(), ns.clone());
        self.subscriber.add(Subscription {
            patterns: vec![format!("{}*", ns.channels.broadcast)],
            channels: vec![
                ns.channels.request.clone(),
                ns.channels.response.clone(),
                ns.channels.own_response.clone(),
            ],
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<NsState>>> {
        self.namespaces.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn publish(&self, channel: &str, bytes: Vec<u8>) -> Result<(), AdapterError> {
        let mut conn = self.conn.clone();
        conn.publish::<_, _, ()>(channel, bytes).await.map_err(|e| {
            tracing::warn!(channel, error = %e, "redis publish failed");
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

    fn answer(&self, channel: &str, bytes: Vec<u8>) {
        let _ = self.answer_tx.send((channel.to_owned(), bytes));
    }

    fn answer_json(&self, ns: &NsState, body: serde_json::Value) {
        if let Ok(bytes) = serde_json::to_vec(&body) {
            self.answer(&ns.channels.response, bytes);
        }
    }
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

/// Finds the namespace a channel belongs to and what kind of channel it is.
fn route(inner: &LinkInner, channel: &str) -> Option<(Arc<NsState>, Kind)> {
    let key = inner.config.key.as_str();
    let (kind, rest) = if let Some(r) = channel
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix("-request#"))
    {
        (0, r)
    } else if let Some(r) = channel
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix("-response#"))
    {
        (1, r)
    } else {
        (2, channel.strip_prefix(key)?.strip_prefix('#')?)
    };
    let (nsp, _) = rest.split_once('#')?;
    let ns = inner.lock().get(nsp).cloned()?;
    Some((
        ns,
        match kind {
            0 => Kind::Request,
            1 => Kind::Response,
            _ => Kind::Broadcast,
        },
    ))
}

enum Kind {
    Broadcast,
    Request,
    Response,
}

fn handle(inner: &Arc<LinkInner>, channel: &str, payload: &[u8]) {
    let Some((ns, kind)) = route(inner, channel) else {
        return;
    };
    let Some(msg) = wire::decode(payload) else {
        tracing::debug!(channel, "undecodable message from redis dropped");
        return;
    };
    match kind {
        Kind::Broadcast => on_broadcast(&ns, &msg),
        Kind::Request => on_request(inner, &ns, &msg),
        Kind::Response => {
            let Some(id) = get_str(&msg, "requestId") else {
                return;
            };
            ns.pending.dispatch(id, msg.clone());
        }
    }
}

/// A broadcast from another server (or an emitter): delivered to our matching sockets.
fn on_broadcast(ns: &NsState, msg: &Value) {
    let Some([uid, packet, opts, ..]) = msg.as_array().map(Vec::as_slice) else {
        return;
    };
    if uid.as_str() == Some(ns.uid.as_str()) {
        return;
    }
    let Some(local) = ns.local() else { return };
    let Some((nsp, event, args)) = event_of(packet) else {
        return;
    };
    if nsp != ns.nsp {
        return;
    }
    let opts = opts_from(Some(opts));
    match EventPacket::from_values(local.parser(), &nsp, &event, &args) {
        Ok(p) => {
            local.deliver(&local.parser().encode_event(&p, None, None), &opts);
        }
        Err(e) => tracing::debug!(error = %e, "remote broadcast dropped"),
    }
}

fn on_request(inner: &Arc<LinkInner>, ns: &Arc<NsState>, msg: &Value) {
    let Some(local) = ns.local() else { return };
    let own = get_str(msg, "uid") == Some(ns.uid.as_str());
    let request_id = get_str(msg, "requestId").map(str::to_owned);
    let opts = || opts_from(get(msg, "opts"));
    match get(msg, "type").and_then(Value::as_u64) {
        // Applied here when sent; the echo is skipped. Emitters send no uid: applied.
        Some(kind @ (wire::REMOTE_JOIN | wire::REMOTE_LEAVE)) if !own => {
            if get(msg, "opts").is_none() {
                return;
            }
            let rooms: Vec<crate::adapter::Room> = match get(msg, "rooms") {
                Some(Value::Array(r)) => r
                    .iter()
                    .filter_map(|r| {
                        r.as_str()
                            .map(|s| crate::adapter::Room::Owned(s.to_owned()))
                    })
                    .collect(),
                Some(Value::String(s)) => s
                    .as_str()
                    .map(|s| vec![crate::adapter::Room::Owned(s.to_owned())])
                    .unwrap_or_default(),
                _ => return,
            };
            local.rooms_op(&opts(), &rooms, kind == wire::REMOTE_JOIN);
        }
        Some(wire::REMOTE_DISCONNECT) if !own && get(msg, "opts").is_some() => {
            let close = get(msg, "close").and_then(Value::as_bool).unwrap_or(false);
            local.disconnect(&opts(), close);
        }
        Some(wire::REMOTE_FETCH) if !own => {
            let Some(id) = request_id else { return };
            let sockets = local.socket_infos(&opts());
            inner.answer_json(
                ns,
                serde_json::json!({ "requestId": id, "sockets": sockets }),
            );
        }
        Some(wire::SOCKETS) if !own => {
            let Some(id) = request_id else { return };
            let opts = BroadcastOptions {
                rooms: opts_from(Some(msg)).rooms,
                ..Default::default()
            };
            let sockets: Vec<String> = local
                .socket_infos(&opts)
                .into_iter()
                .map(|s| s.id)
                .collect();
            inner.answer_json(
                ns,
                serde_json::json!({ "requestId": id, "sockets": sockets }),
            );
        }
        Some(wire::ALL_ROOMS) if !own => {
            let Some(id) = request_id else { return };
            let mut rooms: Vec<String> =
                local.rooms().into_iter().map(|r| r.into_owned()).collect();
            rooms.extend(
                local
                    .socket_infos(&BroadcastOptions::default())
                    .into_iter()
                    .map(|s| s.id),
            );
            inner.answer_json(ns, serde_json::json!({ "requestId": id, "rooms": rooms }));
        }
        Some(wire::SERVER_SIDE_EMIT) if !own => {
            let Some(Value::Array(data)) = get(msg, "data") else {
                return;
            };
            let Some(event) = data.first().and_then(Value::as_str) else {
                return;
            };
            let args: Vec<serde_json::Value> = data[1..]
                .iter()
                .map(|v| rmpv::ext::from_value(v.clone()).unwrap_or_default())
                .collect();
            let Some(id) = request_id else {
                local.server_event(event, &args, None);
                return;
            };
            let answer = local.server_event_with_ack(event, &args);
            let (inner, ns) = (inner.clone(), ns.clone());
            // The handler may answer later (async); an unanswered ack ends the task at once.
            tokio::spawn(async move {
                if let Some(answer) = answer.await {
                    inner.answer_json(
                        &ns,
                        serde_json::json!({ "type": wire::SERVER_SIDE_EMIT, "requestId": id, "data": answer }),
                    );
                }
            });
        }
        Some(wire::BROADCAST) if !own => on_broadcast_with_ack(inner, ns, &local, msg),
        _ => {}
    }
}

/// Another server's broadcast with acks: emitted to our sockets, then our count (always,
/// even zero) and each ack as it comes.
fn on_broadcast_with_ack(
    inner: &Arc<LinkInner>,
    ns: &Arc<NsState>,
    local: &Arc<dyn LocalNamespace>,
    msg: &Value,
) {
    let Some(id) = get_str(msg, "requestId").map(str::to_owned) else {
        return;
    };
    let Some(packet) = get(msg, "packet") else {
        return;
    };
    let Some((_, event, args)) = event_of(packet) else {
        return;
    };
    let Some(opts_v) = get(msg, "opts") else {
        return;
    };
    let opts = opts_from(Some(opts_v));
    let timeout = get(opts_v, "flags")
        .and_then(|f| get(f, "timeout"))
        .and_then(Value::as_u64)
        .map_or(inner.config.requests_timeout, Duration::from_millis);
    let Ok(p) = EventPacket::from_values(local.parser(), &ns.nsp, &event, &args) else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = local.deliver_with_ack(&p, &opts, timeout, tx);
    inner.answer_json(
        ns,
        serde_json::json!({ "type": wire::BROADCAST_CLIENT_COUNT, "requestId": id, "clientCount": count }),
    );
    let inner = inner.clone();
    let ns = ns.clone();
    tokio::spawn(async move {
        while let Some((_, result)) = rx.recv().await {
            let Ok(args) = result else { continue };
            let first = ack_value(&args);
            let body = Value::Map(vec![
                (Value::from("type"), Value::from(wire::BROADCAST_ACK)),
                (Value::from("requestId"), Value::from(id.as_str())),
                (Value::from("packet"), first),
            ]);
            inner.answer(&ns.channels.response, crate::cluster::values::encode(&body));
        }
    });
}
