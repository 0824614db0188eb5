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
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Notification, Socket, Statement};

use super::{NsState, PostgresAdapter, PostgresAdapterConfig, inbound, nodes::Nodes};
use crate::adapter::{AdapterError, AdapterFactory, LocalAdapter};
use crate::cluster::postgres::{self as wire, Incoming, Outgoing};
use crate::cluster::requests::Pending;
use crate::cluster::values::decode_msgpack;
use crate::engine::Sid;

/// Messages published in one pipelined round: they leave in queue order on one connection,
/// so they reach the other servers in that order.
const BATCH: usize = 16;

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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

type Connected = (Client, mpsc::UnboundedReceiver<Notification>);
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Connected, PostgresLinkError>> + Send>>;
/// Opens a connection and spawns its driver; notifications come through the receiver,
/// which ends when the connection does.
type Connector = Arc<dyn Fn() -> ConnectFuture + Send + Sync>;

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
    /// Everything this server publishes, in order, for the publishing task.
    jobs: mpsc::UnboundedSender<Job>,
}

enum Job {
    Publish {
        channel: String,
        out: Outgoing,
        done: Option<oneshot::Sender<Result<(), AdapterError>>>,
    },
    Cleanup,
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
        mut pg: tokio_postgres::Config,
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
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(5));
        }
        let connector: Connector = Arc::new(move || {
            let pg = pg.clone();
            let tls = tls.clone();
            Box::pin(async move {
                let (client, connection) = pg.connect(tls).await?;
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(drive(connection, tx));
                Ok((client, rx))
            })
        });
        let publisher = PubConn::open(&connector, &config).await?;
        let listener = connector().await?;
        let (listen_tx, listen_rx) = mpsc::unbounded_channel();
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(LinkInner {
            config,
            namespaces: Mutex::new(HashMap::new()),
            listen_tx,
            progress: watch::channel((0, 0)).0,
            jobs,
        });
        tokio::spawn(publish_task(
            connector.clone(),
            inner.config.clone(),
            publisher,
            jobs_rx,
        ));
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

/// A plain SQL identifier, or `schema.table`: it is written into SQL unquoted, as Node does.
fn valid_table_name(name: &str) -> bool {
    let part = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    match name.split_once('.') {
        Some((schema, table)) => part(schema) && part(table),
        None => part(name),
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

    fn job(
        &self,
        ns: &NsState,
        msg: &Value,
        done: Option<oneshot::Sender<Result<(), AdapterError>>>,
    ) {
        let out = wire::encode(msg, self.config.payload_threshold);
        ns.published();
        let job = Job::Publish {
            channel: ns.channel.clone(),
            out,
            done,
        };
        if let Err(mpsc::error::SendError(Job::Publish {
            done: Some(done), ..
        })) = self.jobs.send(job)
        {
            let _ = done.send(Err(AdapterError::Link("postgres link closed".into())));
        }
    }

    /// Publishes `msg` on the channel of `ns` after everything queued before it; resolves
    /// once PostgreSQL took it.
    pub(super) async fn publish(&self, ns: &NsState, msg: Value) -> Result<(), AdapterError> {
        let (tx, rx) = oneshot::channel();
        self.job(ns, &msg, Some(tx));
        rx.await
            .unwrap_or_else(|_| Err(AdapterError::Link("postgres link closed".into())))
    }

    /// Publishes `msg` in order without waiting (answers, heartbeats); a failure is logged.
    pub(super) fn send(&self, ns: &NsState, msg: Value) {
        self.job(ns, &msg, None);
    }
}

/// Drives a connection, passing its notifications on.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    tx: mpsc::UnboundedSender<Notification>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                let _ = tx.send(n);
            }
            Some(Ok(AsyncMessage::Notice(n))) => tracing::debug!(notice = %n, "postgres notice"),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "postgres connection closed");
                return;
            }
            None => return,
        }
    }
}

/// The publishing connection with its prepared statements.
struct PubConn {
    client: Client,
    notify: Statement,
    attach: Statement,
    cleanup: Statement,
}

impl PubConn {
    /// Connects, creates the attachments table when it is missing, prepares the statements.
    async fn open(
        connector: &Connector,
        config: &PostgresAdapterConfig,
    ) -> Result<Self, PostgresLinkError> {
        let (client, _) = connector().await?;
        let table = &config.table_name;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)"
        );
        if let Err(e) = client.batch_execute(&create).await {
            // Two servers creating it at once: one of them loses the race, harmlessly.
            let exists: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[table])
                .await?
                .get(0);
            if exists.is_none() {
                return Err(e.into());
            }
        }
        let notify = client.prepare("SELECT pg_notify($1, $2)").await?;
        // The row and its NOTIFY in one statement: one round trip, kept in order.
        let attach = client
            .prepare(&format!(
                "WITH a AS (INSERT INTO {table} (payload) VALUES ($1) RETURNING id) \
                 SELECT pg_notify($2, $3 || a.id::text || '\"}}') FROM a"
            ))
            .await?;
        let cleanup = client
            .prepare(&format!(
                "DELETE FROM {table} WHERE created_at < now() - make_interval(secs => $1)"
            ))
            .await?;
        Ok(Self {
            client,
            notify,
            attach,
            cleanup,
        })
    }

    async fn run(
        &self,
        job: &Job,
        config: &PostgresAdapterConfig,
    ) -> Result<(), tokio_postgres::Error> {
        match job {
            Job::Publish {
                channel,
                out: Outgoing::Notify(json),
                ..
            } => self.client.execute(&self.notify, &[channel, json]).await,
            Job::Publish {
                channel,
                out:
                    Outgoing::Attachment {
                        payload,
                        header_start,
                    },
                ..
            } => {
                self.client
                    .execute(&self.attach, &[payload, channel, header_start])
                    .await
            }
            Job::Cleanup => {
                let age = config.cleanup_interval.as_secs_f64();
                let n = self.client.execute(&self.cleanup, &[&age]).await?;
                tracing::debug!(rows = n, "old attachments deleted");
                Ok(n)
            }
        }
        .map(|_| ())
    }
}

/// The publishing task: takes the queue in order, a batch at a time, pipelined on one
/// connection; reconnects (with backoff) when the connection is gone, failing what comes
/// meanwhile at once.
async fn publish_task(
    connector: Connector,
    config: PostgresAdapterConfig,
    first: PubConn,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let mut conn = Some(first);
    let mut retry_at = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            tracing::warn!("postgres publishing connection lost; reconnecting");
            conn = None;
        }
        if conn.is_none() && Instant::now() >= retry_at {
            match PubConn::open(&connector, &config).await {
                Ok(c) => {
                    tracing::info!("postgres publishing connection back");
                    conn = Some(c);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "postgres publishing connection: cannot reconnect yet");
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let results = match &conn {
            Some(c) => futures_util::future::join_all(batch.iter().map(|j| c.run(j, &config)))
                .await
                .into_iter()
                .map(|r| r.map_err(|e| e.to_string()))
                .collect(),
            None => vec![Err("postgres unavailable".to_owned()); batch.len()],
        };
        for (job, result) in batch.drain(..).zip(results) {
            match job {
                Job::Publish {
                    done: Some(done), ..
                } => {
                    let _ = done.send(result.map_err(AdapterError::Link));
                }
                Job::Publish { channel, .. } => {
                    if let Err(e) = result {
                        tracing::warn!(%channel, error = %e, "postgres: cluster message not published");
                    }
                }
                Job::Cleanup => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "postgres: attachments cleanup failed");
                    }
                }
            }
        }
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
                let _ = inner.jobs.send(Job::Cleanup);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_table_name;

    #[test]
    fn table_names_are_plain_identifiers() {
        for ok in ["socket_io_attachments", "app.att$1", "_t"] {
            assert!(valid_table_name(ok), "{ok}");
        }
        for bad in ["", "1t", "a.b.c", "t; DROP TABLE x", "\"t\"", "a.", "t-1"] {
            assert!(!valid_table_name(bad), "{bad}");
        }
    }
}
