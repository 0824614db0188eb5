//! One server's Redis subscriber connection, shared by the namespaces of a link: subscribes
//! each namespace as it comes, hands every message to the link, and after an outage
//! reconnects with backoff and subscribes everything again. Both Redis adapters use it.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

/// What one namespace listens to.
#[derive(Debug, Clone, Default)]
pub(super) struct Subscription {
    /// Channel patterns (`PSUBSCRIBE`).
    pub patterns: Vec<String>,
    /// Channels (`SUBSCRIBE`).
    pub channels: Vec<String>,
}

/// The handle of the subscriber task; the task ends when it is dropped.
pub(super) struct Subscriber {
    tx: mpsc::UnboundedSender<Subscription>,
    /// Subscriptions registered, and subscriptions made at least once.
    progress: watch::Sender<(usize, usize)>,
}

impl Subscriber {
    /// Starts the task on `first`, reconnecting through `client` when the connection is
    /// lost. `on_message(channel, payload)` runs for every message, in order.
    pub(super) fn spawn(
        client: redis::Client,
        first: redis::aio::PubSub,
        on_message: impl Fn(&str, &[u8]) + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let progress = watch::channel((0, 0)).0;
        tokio::spawn(run(client, first, rx, progress.clone(), on_message));
        Self { tx, progress }
    }

    /// Subscribes (and, after an outage, subscribes again) one namespace's channels.
    pub(super) fn add(&self, sub: Subscription) {
        self.progress
            .send_modify(|(registered, _)| *registered += 1);
        let _ = self.tx.send(sub);
    }

    /// Waits until every subscription added so far has been made.
    pub(super) async fn wait_subscribed(&self) {
        let mut rx = self.progress.subscribe();
        let _ = rx.wait_for(|(registered, done)| done >= registered).await;
    }
}

async fn subscribe(
    sink: &mut redis::aio::PubSubSink,
    sub: &Subscription,
) -> redis::RedisResult<()> {
    if !sub.patterns.is_empty() {
        sink.psubscribe(&sub.patterns).await?;
    }
    if !sub.channels.is_empty() {
        sink.subscribe(&sub.channels).await?;
    }
    Ok(())
}

async fn run(
    client: redis::Client,
    first: redis::aio::PubSub,
    mut new_subs: mpsc::UnboundedReceiver<Subscription>,
    progress: watch::Sender<(usize, usize)>,
    on_message: impl Fn(&str, &[u8]),
) {
    let mut subscribed: Vec<Subscription> = Vec::new();
    let mut next = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let pubsub = match next.take() {
            Some(p) => p,
            None => {
                tokio::time::sleep(backoff).await;
                if new_subs.is_closed() {
                    return;
                }
                match client.get_async_pubsub().await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "redis subscriber: cannot reconnect yet");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut renewed = true;
        for sub in &subscribed {
            if let Err(e) = subscribe(&mut sink, sub).await {
                tracing::warn!(error = %e, "redis resubscribe failed");
                renewed = false;
                break;
            }
        }
        if !renewed {
            continue;
        }
        if backoff > Duration::from_millis(100) || !subscribed.is_empty() {
            tracing::info!(
                namespaces = subscribed.len(),
                "redis subscriber connected and subscribed"
            );
        }
        backoff = Duration::from_millis(100);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        tracing::warn!("redis subscriber connection lost; local sockets keep being served");
                        break;
                    };
                    on_message(msg.get_channel_name(), msg.get_payload_bytes());
                }
                sub = new_subs.recv() => {
                    let Some(sub) = sub else { return };
                    let result = subscribe(&mut sink, &sub).await;
                    subscribed.push(sub);
                    progress.send_modify(|(_, done)| *done += 1);
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "redis subscribe failed");
                        break;
                    }
                }
            }
        }
    }
}
