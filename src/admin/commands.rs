//! The dashboard's commands, registered on each admin socket unless read-only. Each one acts
//! on the sockets a filter selects, cluster-wide: a room name (a socket id is a room), or
//! the whole namespace when the filter is empty or absent. Malformed arguments are refused
//! without effect.

use std::sync::{Arc, Weak};

use serde_json::Value;

use crate::extract::{Context, ExtractError, FromContext, Kind};
use crate::io::IoInner;
use crate::operators::BroadcastOperators;
use crate::socket::SocketRef;

/// Every argument of the event, as JSON values.
struct AllArgs(Vec<Value>);

impl FromContext for AllArgs {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match &cx.kind {
            Kind::Event { args, .. } => Ok(AllArgs(
                (0..args.len())
                    .map(|i| args.deserialize_nth::<Value>(i))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(ExtractError::NotAvailable("AllArgs")),
        }
    }
}

/// A refused command: why, for the log.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("argument {0} must be a string")]
    NotAString(usize),
    #[error("argument {0} must be a boolean")]
    NotABool(usize),
    #[error("argument {0} must be a string or empty")]
    BadFilter(usize),
    #[error("no namespace {0:?}")]
    UnknownNamespace(String),
    #[error("the server is gone")]
    Gone,
}

fn string(args: &[Value], i: usize) -> Result<&str, Refused> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or(Refused::NotAString(i))
}

/// The sockets a filter selects in `nsp`.
fn target(
    io: &Weak<IoInner>,
    args: &[Value],
    nsp: usize,
    filter: usize,
) -> Result<BroadcastOperators, Refused> {
    let path = string(args, nsp)?;
    let filter = match args.get(filter) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Refused::BadFilter(filter)),
    };
    let io = io.upgrade().ok_or(Refused::Gone)?;
    let ns = io
        .namespace(path)
        .ok_or_else(|| Refused::UnknownNamespace(path.chars().take(64).collect()))?;
    let op = BroadcastOperators::new(ns);
    Ok(match filter {
        Some(room) => op.to(room),
        None => op,
    })
}

async fn run(io: Weak<IoInner>, command: &'static str, args: Vec<Value>) -> Result<(), Refused> {
    let result = match command {
        "join" | "leave" => {
            let room = string(&args, 1)?.to_owned();
            let op = target(&io, &args, 0, 2)?;
            if command == "join" {
                op.join(room).await
            } else {
                op.leave(room).await
            }
        }
        "_disconnect" => {
            let close = args
                .get(1)
                .and_then(Value::as_bool)
                .ok_or(Refused::NotABool(1))?;
            let op = target(&io, &args, 0, 2)?;
            if close {
                op.disconnect_and_close().await
            } else {
                op.disconnect().await
            }
        }
        _ => {
            let event = string(&args, 2)?.to_owned();
            let op = target(&io, &args, 0, 1)?;
            let rest = args[3..].to_vec();
            return match op.emit_args(&event, &rest).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, "admin UI: emit failed");
                    Ok(())
                }
            };
        }
    };
    if let Err(e) = result {
        tracing::debug!(command, error = %e, "admin UI: command failed in the cluster");
    }
    Ok(())
}

/// Registers the commands on an admin socket.
pub(super) fn register(socket: &SocketRef, io: Weak<IoInner>) {
    let io = Arc::new(io);
    for command in ["join", "leave", "_disconnect", "emit"] {
        let io = io.clone();
        socket.on(command, move |socket: SocketRef, AllArgs(args): AllArgs| {
            let io = (*io).clone();
            async move {
                if let Err(e) = run(io, command, args).await {
                    tracing::debug!(sid = %socket.id(), command, error = %e, "admin UI: command refused");
                }
            }
        });
    }
}
