//! What an [`Emitter`](super::Emitter) hands to its backend: one [`Operation`], already
//! validated and with its arguments in a backend-neutral form, and the [`Backend`] trait that
//! encodes and publishes it.
//!
//! # Adding a backend
//!
//! A backend is the wire format of one kind of Node adapter, and nothing else:
//!
//! 1. The encoding goes into `crate::cluster::<kind>`, beside what the adapter of
//!    that kind uses there (the adapter and the backend share it; neither depends on the
//!    other).
//! 2. A type implementing [`Backend`] turns each [`Operation`] into that encoding and publishes
//!    it, with the same bytes the Node package of that kind writes for the same call. It holds
//!    its own connection, reconnects by itself if it can, and bounds every publish with a
//!    timeout so that an unreachable service is an [`EmitterError`], never a hang.
//! 3. A constructor `Emitter::<kind>(…, <Kind>EmitterConfig) -> Result<Emitter, EmitterError>`
//!    behind the adapter's cargo feature connects (with a connect timeout) and wraps the backend
//!    with [`Emitter::with_backend`](super::Emitter::with_backend).
//! 4. The emitter is compiled when any backend's feature is on: widen the `cfg` of
//!    `pub mod emitter` (`src/lib.rs`) and of `parser::json_args` to include the new feature
//!    (it must also enable `rmpv`, the form [`args`] hands over).
//!
//! What a backend receives, for each kind of Node message:
//!
//! | [`Action`] | Node emitter call | classic Redis adapter request | `ClusterAdapter` message (Streams, Postgres) |
//! |---|---|---|---|
//! | `Emit` | `emit(ev, ...args)` | broadcast channel (no type) | `BROADCAST` (3), no `requestId` |
//! | `Join` | `socketsJoin(rooms)` | `REMOTE_JOIN` (2) | `SOCKETS_JOIN` (4) |
//! | `Leave` | `socketsLeave(rooms)` | `REMOTE_LEAVE` (3) | `SOCKETS_LEAVE` (5) |
//! | `Disconnect` | `disconnectSockets(close)` | `REMOTE_DISCONNECT` (4) | `DISCONNECT_SOCKETS` (6) |
//! | `ServerSideEmit` | `serverSideEmit(ev, ...args)` (no ack) | `SERVER_SIDE_EMIT` (6) | `SERVER_SIDE_EMIT` (9), no `requestId` |
//!
//! A message from an emitter is applied by every server, and no server may take it for one of
//! its own (adapters that drop their own echoes compare a `uid`: use Node's emitter's).

use bytes::Bytes;
use rmpv::Value;
use serde::Serialize;

use super::EmitterError;
use crate::adapter::{BoxFuture, Room};
use crate::parser::EncodeError;

/// Encodes and publishes operations for one kind of cluster.
///
/// Called once per operation, in the order the emitter's caller awaits them; a backend
/// publishes them in that order on one connection, so a server sees one emitter's messages in
/// the order they were sent (a join followed by an emit to the joined room arrives in that
/// order everywhere).
pub(crate) trait Backend: Send + Sync + 'static {
    /// Encodes `op` and publishes it; resolves once the service has taken it (not once servers
    /// acted on it: emitters get no answer). Fails within the backend's timeout when the
    /// service cannot be reached.
    fn publish<'a>(&'a self, op: Operation<'a>) -> BoxFuture<'a, Result<(), EmitterError>>;

    /// The service, for `Debug` and error messages (e.g. `redis://127.0.0.1:6379`, key prefix).
    fn describe(&self) -> String;
}

/// One thing an emitter asks the cluster to do, and which sockets it is for.
#[derive(Debug)]
pub(crate) struct Operation<'a> {
    /// The namespace, always starting with `/`.
    pub nsp: &'a str,
    /// Sockets in any of these rooms (no duplicates, in the order given); empty means all.
    pub rooms: &'a [Room],
    /// Minus sockets in any of these rooms (no duplicates).
    pub except: &'a [Room],
    /// What to do with them.
    pub action: Action,
}

/// The action of an [`Operation`].
#[derive(Debug)]
pub(crate) enum Action {
    /// An event to the selected sockets. Its name is not reserved.
    Emit {
        /// The event name.
        event: String,
        /// The arguments: see [`args`].
        args: Vec<Value>,
    },
    /// The selected sockets join these rooms (as given, duplicates kept as Node keeps them).
    Join(Vec<Room>),
    /// The selected sockets leave these rooms.
    Leave(Vec<Room>),
    /// The selected sockets are disconnected; with `close`, their connections closed too.
    Disconnect {
        /// Close the underlying connection as well.
        close: bool,
    },
    /// An event to the servers themselves, never answered. `rooms`/`except` do not apply.
    ServerSideEmit {
        /// `[event, ...args]`, as in [`args`].
        data: Vec<Value>,
    },
}

/// Event arguments in the form every backend starts from: msgpack values with binary inline
/// (a [`Binary`](crate::Binary) becomes [`Value::Binary`]), map keys in the order the data
/// serialized them, and numbers as a JavaScript caller would have them: an integral float is
/// an integer (JS has one number type, and Node's msgpack encoder writes it as one).
///
/// The data is serialized exactly as the server serializes an emit (`spread` as in
/// [`Parser::event`](crate::parser::Parser::event)), so the emitter and a server node send
/// the same thing for the same call. Nesting is bounded by serde_json's recursion limit.
pub(crate) fn args<T: Serialize + ?Sized>(
    data: &T,
    spread: bool,
) -> Result<Vec<Value>, EncodeError> {
    let (text, attachments) = crate::parser::json_args(data, spread)?;
    let values: Vec<Value> = serde_json::from_str(&format!("[{text}]"))?;
    values
        .into_iter()
        .map(|v| inline(v, &attachments))
        .collect()
}

/// Replaces attachment placeholders by their bytes and integral floats by integers.
fn inline(v: Value, attachments: &[Bytes]) -> Result<Value, EncodeError> {
    Ok(match v {
        Value::Map(entries) => match placeholder(&entries) {
            Some(num) => {
                let bytes = attachments.get(num).ok_or_else(|| {
                    EncodeError(serde::ser::Error::custom("placeholder names no attachment"))
                })?;
                Value::Binary(bytes.to_vec())
            }
            None => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((k, inline(v, attachments)?)))
                    .collect::<Result<_, EncodeError>>()?,
            ),
        },
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| inline(v, attachments))
                .collect::<Result<_, _>>()?,
        ),
        Value::F64(f) => integral(f).unwrap_or(Value::F64(f)),
        other => other,
    })
}

/// `{"_placeholder": true, "num": n}`: the attachment number.
fn placeholder(entries: &[(Value, Value)]) -> Option<usize> {
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    (field("_placeholder")?.as_bool()? && entries.len() == 2)
        .then(|| field("num")?.as_u64())
        .flatten()
        .map(|n| n as usize)
}

/// An integral float as the integer notepack (Node's msgpack encoder) writes for it.
fn integral(f: f64) -> Option<Value> {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() != 0.0 || !f.is_finite() {
        return None;
    }
    if (0.0..TWO_64).contains(&f) {
        Some(Value::from(f as u64))
    } else if (-TWO_63..0.0).contains(&f) {
        Some(Value::from(f as i64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Binary;

    #[test]
    fn args_keep_key_order_binary_and_js_numbers() {
        #[derive(Serialize)]
        struct Upload {
            zeta: u8,
            alpha: Binary,
            ratio: f64,
        }
        let up = Upload {
            zeta: 1,
            alpha: Binary::from(vec![1u8, 2]),
            ratio: 2.0,
        };
        let v = args(&(&up, -0.0f64, 1.5f32, "s"), true).expect("args");
        assert_eq!(
            v,
            vec![
                Value::Map(vec![
                    (Value::from("zeta"), Value::from(1)),
                    (Value::from("alpha"), Value::Binary(vec![1, 2])),
                    (Value::from("ratio"), Value::from(2)),
                ]),
                Value::from(0),
                Value::F64(1.5),
                Value::from("s"),
            ]
        );
        assert_eq!(args(&"one", false).expect("one"), vec![Value::from("one")]);
        assert!(args(&(), true).expect("none").is_empty());
    }

    #[test]
    fn deep_data_is_an_error_not_a_crash() {
        let mut deep = serde_json::json!(0);
        for _ in 0..200 {
            deep = serde_json::json!([deep]);
        }
        // serde_json writes it; reading it back stops at its recursion limit.
        assert!(args(&deep, false).is_err());
    }
}
