//! Sending to one socket, underneath [`Socket::emit`] and [`Socket::emit_with_ack`]:
//! encoding, connection state recovery, observers, and the acks that answer.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::Socket;
use crate::ack::AckFuture;
use crate::adapter::{BroadcastOptions, Room};
use crate::errors::{AckError, EmitError};
use crate::handler::run_or_spawn;
use crate::parser::{Args, Encoded};

impl Socket {
    pub(super) fn emit_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        spread: bool,
    ) -> Result<(), EmitError> {
        self.observe_outgoing(event, data, spread);
        if self.pid.is_none() {
            let enc = self.parser().event(self.ns(), event, data, None, spread)?;
            return self.send_encoded(&enc);
        }
        // Connection state recovery: like the reference server, the emit is a broadcast to
        // the socket's own room, so the adapter gives it an offset and keeps it for replay
        // (the client takes the last argument of every event as its offset). The in-memory
        // adapter delivers at once, in order; a slow client is disconnected (recoverably)
        // rather than failing the call.
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        let packet = self.parser().event_packet(self.ns(), event, data, spread)?;
        let opts = BroadcastOptions {
            rooms: vec![Room::Owned(self.id.as_str().to_owned())],
            ..BroadcastOptions::default()
        };
        let ns = self.ns.clone();
        let sid = self.id;
        run_or_spawn(Box::pin(async move {
            if let Err(e) = ns.adapter().broadcast(&*ns, packet, opts).await {
                tracing::warn!(%sid, error = %e, "emit through the adapter failed");
            }
        }));
        Ok(())
    }

    fn observe_outgoing<T: Serialize + ?Sized>(&self, event: &str, data: &T, spread: bool) {
        if let Some(i) = self.ns.instrument().filter(|i| i.events()) {
            let value = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
            let args = match value {
                serde_json::Value::Array(a) if spread => serde_json::Value::Array(a),
                serde_json::Value::Null if spread => serde_json::Value::Array(Vec::new()),
                v => serde_json::Value::Array(vec![v]),
            };
            i.event_sent(self, event, args);
        }
        let observers = self.handlers().any_outgoing.clone();
        if observers.is_empty() {
            return;
        }
        let value = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
        for o in observers {
            o(event, &value);
        }
    }

    pub(super) fn emit_with_ack_inner<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        event: &str,
        args: &T,
        timeout: Duration,
    ) -> AckFuture<R> {
        let id = self.ns.next_ack_id();
        let enc = match self.parser().event(self.ns(), event, args, Some(id), true) {
            Ok(e) => e,
            Err(e) => return AckFuture::failed(AckError::Emit(e.into())),
        };
        self.observe_outgoing(event, args, true);
        let rx = self.register_ack(id);
        if let Err(e) = self.send_encoded(&enc) {
            self.lock_acks().remove(&id);
            return AckFuture::failed(AckError::Emit(e));
        }
        AckFuture::new(rx, timeout)
    }

    pub(crate) fn register_ack(&self, id: u64) -> oneshot::Receiver<Args> {
        let (tx, rx) = oneshot::channel();
        self.lock_acks().insert(id, tx);
        rx
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        self.lock_acks().remove(&id);
    }

    pub(super) fn lock_acks(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Args>>> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an encoded packet on this socket's connection.
    pub(crate) fn send_encoded(&self, enc: &Encoded) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.session.send_all(enc.frames(), enc.len())?;
        if let Some(i) = self.ns.instrument() {
            i.packets_sent(enc.len(), crate::instrument::encoded_bytes(enc));
        }
        Ok(())
    }

    /// Hands a received ack to whoever waits for it.
    pub(crate) fn dispatch_ack(&self, id: u64, args: Args) {
        match self.lock_acks().remove(&id) {
            Some(tx) => {
                let _ = tx.send(args);
            }
            None => tracing::debug!(sid = %self.id, id, "ack for no pending emit"),
        }
    }
}
