//! Receiving on one socket: an event through the event middlewares to its handler.

use std::sync::Arc;

use super::Socket;
use crate::extract::{Context, Kind};
use crate::handler::run_or_spawn;
use crate::middleware::{EventRejection, IncomingEvent};
use crate::parser::Args;

impl Socket {
    /// Takes a received event: through the event middlewares when there are some (the
    /// returned future must finish before the socket's next packet), else straight to its
    /// handler.
    pub(crate) fn receive_event(
        self: &Arc<Self>,
        name: String,
        args: Args,
        ack: Option<u64>,
    ) -> Option<crate::handler::BoxFuture> {
        let middlewares = self.handlers().middlewares.clone();
        if middlewares.is_empty() {
            self.dispatch_event(&name, &args, ack);
            return None;
        }
        let socket = self.clone();
        Some(Box::pin(async move {
            let mut event = IncomingEvent {
                name,
                args,
                wants_ack: ack.is_some(),
                parser: socket.parser(),
            };
            for mw in middlewares {
                match mw(event).await {
                    Ok(next) => event = next,
                    Err(EventRejection(message)) => {
                        tracing::debug!(sid = %socket.id, %message, "event refused by middleware");
                        let body = serde_json::json!({ "error": message });
                        let enc = match ack {
                            Some(id) => socket.parser().ack(socket.ns(), id, &body, false),
                            None => socket.parser().event(
                                socket.ns(),
                                "error",
                                &serde_json::json!({ "message": message }),
                                None,
                                false,
                            ),
                        };
                        if let Ok(enc) = enc {
                            let _ = socket.send_encoded(&enc);
                        }
                        return;
                    }
                }
            }
            socket.dispatch_event(&event.name, &event.args, ack);
        }))
    }

    /// Runs the handler of a received event.
    pub(crate) fn dispatch_event(self: &Arc<Self>, name: &str, args: &Args, ack: Option<u64>) {
        let (handler, observers) = {
            let h = self.handlers();
            let handler = h
                .events
                .iter()
                .find(|(n, _)| **n == *name)
                .map(|(_, handler)| handler)
                .or(h.fallback.as_ref())
                .cloned();
            let observers = (!h.any_incoming.is_empty()).then(|| h.any_incoming.clone());
            (handler, observers)
        };
        if let Some(i) = self.ns.instrument().filter(|i| i.events()) {
            i.event_received(self, name, args);
        }
        if let Some(observers) = observers {
            let value = args
                .deserialize::<serde_json::Value>()
                .unwrap_or(serde_json::Value::Null);
            for o in observers {
                o(name, &value);
            }
        }
        let Some(handler) = handler else {
            tracing::debug!(sid = %self.id, event = name, "no handler for event");
            return;
        };
        let cx = Context::new(self, Kind::Event { name, args, ack });
        match handler(&cx) {
            Ok(Some(fut)) => {
                run_or_spawn(fut);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(sid = %self.id, event = name, error = %e, "event handler skipped");
                if let Some(id) = ack {
                    let body = serde_json::json!({ "error": e.to_string() });
                    if let Ok(enc) = self.parser().ack(self.ns(), id, &body, false) {
                        let _ = self.send_encoded(&enc);
                    }
                }
            }
        }
    }
}
