//! Requests to the other servers of a cluster, matched to their answers by request id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::adapter::AdapterError;
use crate::engine::Sid;

/// The requests of one namespace still waiting for answers, by request id.
pub(crate) struct Pending<T> {
    map: Mutex<HashMap<String, mpsc::UnboundedSender<T>>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Pending<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<T>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a request with a fresh id; its answers come through [`Request::rx`].
    pub(crate) fn start(&self) -> Request<'_, T> {
        let id = Sid::new().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(id.clone(), tx);
        Request {
            pending: self,
            id,
            rx,
            detached: false,
        }
    }

    /// Hands an answer to the request `id`; `false` when nobody waits for it (any more).
    pub(crate) fn dispatch(&self, id: &str, answer: T) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|tx| tx.send(answer).is_ok())
    }

    /// Forgets the request `id`.
    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// An open request; its entry is removed when it is dropped, unless detached.
pub(crate) struct Request<'a, T> {
    pending: &'a Pending<T>,
    /// The request id, as sent on the wire.
    pub(crate) id: String,
    /// The answers, as they come.
    pub(crate) rx: mpsc::UnboundedReceiver<T>,
    detached: bool,
}

impl<T> Request<'_, T> {
    /// Hands every further answer to `each` until `until`, in a task of its own, then
    /// forgets the request: for answers that come after the caller stopped waiting (the
    /// late acks of a broadcast). `owner` keeps the [`Pending`] (reached by `pending`)
    /// alive meanwhile.
    pub(crate) fn listen_until<S>(
        mut self,
        owner: Arc<S>,
        pending: fn(&S) -> &Pending<T>,
        until: tokio::time::Instant,
        mut each: impl FnMut(T) + Send + 'static,
    ) where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.detached = true;
        let id = std::mem::take(&mut self.id);
        let (_, empty) = mpsc::unbounded_channel();
        let mut rx = std::mem::replace(&mut self.rx, empty);
        tokio::spawn(async move {
            while let Ok(Some(answer)) = tokio::time::timeout_at(until, rx.recv()).await {
                each(answer);
            }
            pending(&owner).remove(&id);
        });
    }

    /// Collects `n` answers, or fails with [`AdapterError::Timeout`].
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) async fn collect(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<T>, AdapterError> {
        let mut out = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(v)) => out.push(v),
                Ok(None) | Err(_) => {
                    tracing::warn!(request = %self.id, got = out.len(), expected = n, "cluster request timed out");
                    return Err(AdapterError::Timeout);
                }
            }
        }
        Ok(out)
    }
}

impl<T> Drop for Request<'_, T> {
    fn drop(&mut self) {
        if !self.detached {
            self.pending.remove(&self.id);
        }
    }
}
