//! PostgreSQL connections as the Postgres adapter and emitter both need them: a connector
//! that spawns each connection's driver (notifications passed on), and the publishing
//! queue: one connection, statements pipelined in queue order, reopened after an outage.
//! tokio-postgres, unlike the redis crate, has no connection manager of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Notification, Socket, Statement};

use super::postgres::Outgoing;

/// Messages published in one pipelined round: they leave in queue order on one connection,
/// so they reach the other servers in that order.
const BATCH: usize = 16;

/// Longest wait between two reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection and the notifications it receives (the receiver ends with the connection).
pub(crate) type Connected = (Client, mpsc::UnboundedReceiver<Notification>);
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Connected, tokio_postgres::Error>> + Send>>;
/// Opens a connection and spawns its driver.
pub(crate) type Connector = Arc<dyn Fn() -> ConnectFuture + Send + Sync>;

/// A connector for `pg` over `tls`; without a connect timeout in `pg`, 5 s is used.
pub(crate) fn connector<T>(mut pg: tokio_postgres::Config, tls: T) -> Connector
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    Arc::new(move || {
        let pg = pg.clone();
        let tls = tls.clone();
        Box::pin(async move {
            let (client, connection) = pg.connect(tls).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(drive(connection, tx));
            Ok((client, rx))
        })
    })
}

/// A plain SQL identifier, or `schema.table`: the table name is written into SQL unquoted,
/// as Node does.
pub(crate) fn valid_table_name(name: &str) -> bool {
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

/// What the publishing task does, in queue order.
enum Job {
    Publish {
        channel: String,
        out: Outgoing,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
    /// Deletes attachment rows older than this.
    Cleanup(Duration),
}

/// The queue of everything one process publishes, served by one task on one connection.
pub(crate) struct Publisher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Publisher {
    /// Opens the publishing connection (creating the attachments `table` when missing) and
    /// starts the task; it ends when the publisher is dropped, after the queue is done.
    pub(crate) async fn start(
        connector: Connector,
        table: String,
    ) -> Result<Self, tokio_postgres::Error> {
        let first = PubConn::open(&connector, &table).await?;
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(publish_task(connector, table, first, rx));
        Ok(Self { jobs })
    }

    /// Queues a message after everything queued before; the receiver tells whether
    /// PostgreSQL took it (an error text otherwise).
    pub(crate) fn publish(
        &self,
        channel: String,
        out: Outgoing,
    ) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Publish {
            channel,
            out,
            done: Some(tx),
        });
        rx
    }

    /// Queues a message without waiting for it; a failure is logged.
    pub(crate) fn send(&self, channel: String, out: Outgoing) {
        let _ = self.jobs.send(Job::Publish {
            channel,
            out,
            done: None,
        });
    }

    /// Queues the deletion of attachment rows older than `age`.
    pub(crate) fn cleanup(&self, age: Duration) {
        let _ = self.jobs.send(Job::Cleanup(age));
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
    async fn open(connector: &Connector, table: &str) -> Result<Self, tokio_postgres::Error> {
        let (client, _) = connector().await?;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)"
        );
        if let Err(e) = client.batch_execute(&create).await {
            // Two processes creating it at once: one of them loses the race, harmlessly.
            let exists: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[&table])
                .await?
                .get(0);
            if exists.is_none() {
                return Err(e);
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

    async fn run(&self, job: &Job) -> Result<(), tokio_postgres::Error> {
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
            Job::Cleanup(age) => {
                let n = self
                    .client
                    .execute(&self.cleanup, &[&age.as_secs_f64()])
                    .await?;
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
    table: String,
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
            match PubConn::open(&connector, &table).await {
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
        let results: Vec<Result<(), String>> = match &conn {
            Some(c) => futures_util::future::join_all(batch.iter().map(|j| c.run(j)))
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
                    let _ = done.send(result);
                }
                Job::Publish { channel, .. } => {
                    if let Err(e) = result {
                        tracing::warn!(%channel, error = %e, "postgres: cluster message not published");
                    }
                }
                Job::Cleanup(_) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "postgres: attachments cleanup failed");
                    }
                }
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
