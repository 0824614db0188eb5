//! One server's link to PostgreSQL: a listening connection shared by every namespace
//! (LISTEN renewed after an outage, attachments read on it), a publishing connection fed
//! from one ordered queue, and the timers (heartbeats, dead nodes, table cleanup).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use rmpv::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Notification, Socket, Statement};

use super::{NsState, PostgresAdapter, PostgresAdapterConfig, inbound, nodes::Nodes};
use crate::adapter::{AdapterError, AdapterFactory, LocalAdapter};
use crate::cluster::postgres::{self as wire, Incoming};
use crate::cluster::postgres_conn::{
    self, Connected, Connector, MAX_BACKOFF, Publisher, valid_table_name,
};
use crate::cluster::requests::Pending;
use crate::cluster::values::decode_msgpack;
use crate::engine::Sid;

/// Connecting to PostgreSQL failed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresLinkError {
    /// The client failed (bad URL, connection refused, authentication, SQL error).
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The table name is not a plain (optionally schema-qualified) SQL identifier.
    #[error("invalid attachments table name {0:?}: letters, digits, `_`, `$`, and one `.`")]
    TableName(String),
}

/// A server's connections to PostgreSQL, shared by the adapters of all its namespaces.
#[derive(Clone)]
pub struct PostgresLink {
    inner: Arc<LinkInner>,
}

impl std::fmt::Debug for PostgresLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLink")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(super) struct LinkInner {
    pub(super) config: PostgresAdapterConfig,
    /// Namespaces by channel name.
    namespaces: Mutex<HashMap<String, Arc<NsState>>>,
    /// New namespaces for the listening task.
    listen_tx: mpsc::UnboundedSender<Arc<NsState>>,
    /// Namespaces registered, and namespaces listened to at least once.
    progress: watch::Sender<(usize, usize)>,
    /// Everything this server publishes, in order.
    publisher: Publisher,
}

impl PostgresLink {
    /// Connects to PostgreSQL (`postgres://user@host:port/db`, or any connection string
    /// `tokio_postgres::Config` parses) without TLS, creates the attachments table when it
    /// is missing, then keeps both connections up.
    pub async fn connect(
        url: &str,
        config: PostgresAdapterConfig,
    ) -> Result<Self, PostgresLinkError> {
        let pg: tokio_postgres::Config = url.parse()?;
        Self::connect_with(pg, tokio_postgres::NoTls, config).await
    }

    /// [`connect`](Self::connect) with a parsed configuration and a TLS connector (such as
    /// `postgres-native-tls` or `tokio-postgres-rustls` provide). Without a connect timeout
    /// in `pg`, 5 s is used.
    pub async fn connect_with<T>(
        pg: tokio_postgres::Config,
        tls: T,
        config: PostgresAdapterConfig,
    ) -> Result<Self, PostgresLinkError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        if !valid_table_name(&config.table_name) {
            return Err(PostgresLinkError::TableName(config.table_name));
        }
        let connector = postgres_conn::connector(pg, tls);
        let publisher = Publisher::start(connector.clone(), config.table_name.clone()).await?;
        let listener = connector().await?;
        let (listen_tx, listen_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(LinkInner {
            config,
            namespaces: Mutex::new(HashMap::new()),
            listen_tx,
            progress: watch::channel((0, 0)).0,
            publisher,
        });
        tokio::spawn(listen_task(
            Arc::downgrade(&inner),
            connector,
            listener,
            listen_rx,
        ));
        tokio::spawn(timers(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// The adapter factory to give `SocketIoBuilder::adapter`.
    pub fn factory(&self) -> AdapterFactory {
        let link = self.inner.clone();
        Arc::new(move |nsp: &str| {
            Box::new(PostgresAdapter {
                local: LocalAdapter::new(),
                link: link.clone(),
                ns: Arc::new(NsState {
                    nsp: nsp.to_owned(),
                    uid: Sid::new().to_string(),
                    channel: wire::channel(&link.config.channel_prefix, nsp),
                    local: OnceLock::new(),
                    pending: Pending::default(),
                    nodes: Nodes::new(link.config.heartbeat_timeout),
                    last_publish: Mutex::new(Instant::now()),
                }),
            })
        })
    }

    /// Waits until every namespace created so far is listened to and has greeted the
    /// cluster: call it before accepting clients. The other nodes become known as their
    /// answers to the greeting come in.
    pub async fn wait_listening(&self) {
        let mut rx = self.inner.progress.subscribe();
        let _ = rx.wait_for(|(registered, done)| done >= registered).await;
    }
}

impl LinkInner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<NsState>>> {
        self.namespaces.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn register(&self, ns: Arc<NsState>) {
        if ns.channel.len() > wire::MAX_CHANNEL_LEN {
            tracing::error!(
                channel = %ns.channel,
                "channel name longer than PostgreSQL's 63 bytes: this namespace cannot reach the cluster"
            );
        }
        self.lock().insert(ns.channel.clone(), ns.clone());
        self.progress
            .send_modify(|(registered, _)| *registered += 1);
        let _ = self.listen_tx.send(ns);
    }

    /// Publishes `msg` on the channel of `ns` after everything queued before it; resolves
    /// once PostgreSQL took it.
    pub(super) async fn publish(&self, ns: &NsState, msg: Value) -> Result<(), AdapterError> {
        let out = wire::encode(&msg, self.config.payload_threshold);
        ns.published();
        match self.publisher.publish(ns.channel.clone(), out).await {
            Ok(result) => result.map_err(AdapterError::Link),
            Err(_) => Err(AdapterError::Link("postgres link closed".into())),
        }
    }

    /// Publishes `msg` in order without waiting (answers, heartbeats); a failure is logged.
    pub(super) fn send(&self, ns: &NsState, msg: Value) {
        let out = wire::encode(&msg, self.config.payload_threshold);
        ns.published();
        self.publisher.send(ns.channel.clone(), out);
    }
}

type Resolved = Pin<Box<dyn Future<Output = Option<(Arc<NsState>, Value)>> + Send>>;

/// A notification turned into the message it stands for: at once, or once its row is read.
fn resolve(
    inner: &LinkInner,
    client: &Arc<Client>,
    fetch: &Statement,
    note: &Notification,
) -> Option<Resolved> {
    let ns = inner.lock().get(note.channel()).cloned()?;
    let Some(incoming) = wire::decode_notification(note.payload()) else {
        tracing::warn!(channel = note.channel(), "undecodable notification skipped");
        return None;
    };
    match incoming {
        Incoming::Message(v) => Some(Box::pin(std::future::ready(Some((ns, v))))),
        Incoming::Attachment { uid, .. } if uid.as_deref() == Some(ns.uid.as_str()) => None,
        Incoming::Attachment { id, .. } => {
            let client = client.clone();
            let fetch = fetch.clone();
            Some(Box::pin(async move {
                let row = match client.query_opt(&fetch, &[&id]).await {
                    Ok(Some(row)) => row,
                    Ok(None) => {
                        tracing::warn!(channel = %ns.channel, id, "attachment row gone (cleaned up?): message skipped");
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!(channel = %ns.channel, id, error = %e, "attachment not read: message skipped");
                        return None;
                    }
                };
                let payload: Option<&[u8]> = row.try_get(0).ok().flatten();
                match payload.and_then(decode_msgpack) {
                    Some(v) => Some((ns, v)),
                    None => {
                        tracing::warn!(channel = %ns.channel, id, "undecodable attachment skipped");
                        None
                    }
                }
            }))
        }
    }
}

/// Says hello on a namespace's channel: every node answers with a heartbeat.
fn greet(inner: &LinkInner, ns: &NsState) {
    inner.send(ns, ns.message(wire::INITIAL_HEARTBEAT, None));
}

/// The listening task: LISTENs on every namespace's channel, hands messages over in the
/// order they were notified (attachments are read in between, without reordering), and
/// after an outage reconnects with backoff and LISTENs again.
async fn listen_task(
    link: Weak<LinkInner>,
    connector: Connector,
    first: Connected,
    mut new_ns: mpsc::UnboundedReceiver<Arc<NsState>>,
) {
    let mut listening: Vec<Arc<NsState>> = Vec::new();
    let mut next = Some(first);
    let mut backoff = Duration::from_millis(100);
    'connect: loop {
        let (client, mut notes) = match next.take() {
            Some(c) => c,
            None => {
                tokio::time::sleep(backoff).await;
                if link.strong_count() == 0 {
                    return;
                }
                match connector().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "postgres listening connection: cannot reconnect yet");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        let Some(table) = link.upgrade().map(|l| l.config.table_name.clone()) else {
            return;
        };
        let client = Arc::new(client);
        let fetch = match client
            .prepare(&format!("SELECT payload FROM {table} WHERE id = $1"))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "postgres listening connection unusable");
                continue;
            }
        };
        for ns in &listening {
            if let Err(e) = client.batch_execute(&wire::listen_sql(&ns.channel)).await {
                tracing::warn!(error = %e, "postgres LISTEN failed");
                continue 'connect;
            }
        }
        if !listening.is_empty() {
            tracing::info!(namespaces = listening.len(), "postgres listening again");
            let Some(inner) = link.upgrade() else { return };
            for ns in &listening {
                greet(&inner, ns);
            }
        }
        backoff = Duration::from_millis(100);
        let mut queue: FuturesOrdered<Resolved> = FuturesOrdered::new();
        loop {
            tokio::select! {
                note = notes.recv() => {
                    let Some(note) = note else {
                        tracing::warn!("postgres listening connection lost; local sockets keep being served");
                        break;
                    };
                    let Some(inner) = link.upgrade() else { return };
                    if let Some(fut) = resolve(&inner, &client, &fetch, &note) {
                        queue.push_back(fut);
                    }
                }
                Some(resolved) = queue.next(), if !queue.is_empty() => {
                    let Some(inner) = link.upgrade() else { return };
                    if let Some((ns, msg)) = resolved {
                        inbound::on_message(&inner, &ns, &msg);
                    }
                }
                ns = new_ns.recv() => {
                    let Some(ns) = ns else { return };
                    let result = client.batch_execute(&wire::listen_sql(&ns.channel)).await;
                    listening.push(ns.clone());
                    let Some(inner) = link.upgrade() else { return };
                    match result {
                        Ok(()) => greet(&inner, &ns),
                        Err(e) => tracing::warn!(error = %e, "postgres LISTEN failed"),
                    }
                    inner.progress.send_modify(|(_, done)| *done += 1);
                }
            }
        }
    }
}

/// Heartbeats after a silence, dead nodes dropped, old attachments deleted.
async fn timers(link: Weak<LinkInner>) {
    let Some((heartbeat, cleanup_every)) = link
        .upgrade()
        .map(|l| (l.config.heartbeat_interval, l.config.cleanup_interval))
    else {
        return;
    };
    let tick = (heartbeat / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticks = tokio::time::interval_at(Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cleanup = tokio::time::interval_at(Instant::now() + cleanup_every, cleanup_every);
    cleanup.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let Some(inner) = link.upgrade() else { return };
                let namespaces: Vec<Arc<NsState>> = inner.lock().values().cloned().collect();
                for ns in namespaces {
                    ns.nodes.sweep();
                    if ns.silent_for() >= heartbeat {
                        inner.send(&ns, ns.message(wire::HEARTBEAT, None));
                    }
                }
            }
            _ = cleanup.tick() => {
                let Some(inner) = link.upgrade() else { return };
                inner.publisher.cleanup(inner.config.cleanup_interval);
            }
        }
    }
}
