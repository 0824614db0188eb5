//! The wire format of npm's `@socket.io/postgres-adapter` (0.5) and
//! `@socket.io/postgres-emitter` (0.1), as observed on the wire (see
//! `docs/postgres-protocol.md`).
//!
//! Every message of a namespace is a NOTIFY on one channel, `<prefix>#<nsp>`: the JSON
//! text of `{type, data, uid, nsp}`. A message that carries binary (of the kinds Node checks)
//! or whose JSON is too long for a NOTIFY is stored msgpack-encoded in the attachments table
//! instead, and the NOTIFY carries only `{"uid","type","attachmentId"}`, the id a string.

use rmpv::Value;

use super::values::get;

pub(crate) const INITIAL_HEARTBEAT: u64 = 1;
pub(crate) const HEARTBEAT: u64 = 2;
pub(crate) const BROADCAST: u64 = 3;
pub(crate) const SOCKETS_JOIN: u64 = 4;
pub(crate) const SOCKETS_LEAVE: u64 = 5;
pub(crate) const DISCONNECT_SOCKETS: u64 = 6;
pub(crate) const FETCH_SOCKETS: u64 = 7;
pub(crate) const FETCH_SOCKETS_RESPONSE: u64 = 8;
pub(crate) const SERVER_SIDE_EMIT: u64 = 9;
pub(crate) const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
pub(crate) const BROADCAST_CLIENT_COUNT: u64 = 11;
pub(crate) const BROADCAST_ACK: u64 = 12;
pub(crate) const ADAPTER_CLOSE: u64 = 13;

/// The `uid` of `@socket.io/postgres-emitter`: not a node of the cluster.
pub(crate) const EMITTER_UID: &str = "emitter";

/// The longest channel name PostgreSQL keeps (`NAMEDATALEN - 1`).
pub(crate) const MAX_CHANNEL_LEN: usize = 63;

/// The NOTIFY channel of a namespace.
pub(crate) fn channel(prefix: &str, nsp: &str) -> String {
    format!("{prefix}#{nsp}")
}

/// `LISTEN "<channel>"`, the channel quoted as an identifier.
pub(crate) fn listen_sql(channel: &str) -> String {
    format!("LISTEN \"{}\"", channel.replace('"', "\"\""))
}

/// A message `{type, data, uid, nsp}` (Node's key order), `data` left out when `None`.
pub(crate) fn message(kind: u64, data: Option<Value>, uid: &str, nsp: &str) -> Value {
    let mut m = Vec::with_capacity(4);
    m.push((Value::from("type"), Value::from(kind)));
    if let Some(d) = data {
        m.push((Value::from("data"), d));
    }
    m.push((Value::from("uid"), Value::from(uid)));
    m.push((Value::from("nsp"), Value::from(nsp)));
    Value::Map(m)
}

/// A message as it goes out.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// The JSON text, NOTIFY'd as it is.
    Notify(String),
    /// msgpack bytes for the attachments table, and the start of the NOTIFY that names the
    /// row: the row id and `"}` complete it.
    Attachment {
        payload: Vec<u8>,
        header_start: String,
    },
}

/// Whether a value holds binary anywhere (bounded by the depth the value was built with).
fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) => true,
        Value::Array(a) => a.iter().any(has_binary),
        Value::Map(m) => m.iter().any(|(k, v)| has_binary(k) || has_binary(v)),
        _ => false,
    }
}

/// Chooses how `msg` travels, as Node does: the message kinds that may carry binary go to
/// the table when they do; any message whose JSON has `threshold` bytes or more goes there
/// too. (Node compares "more than", but PostgreSQL refuses a payload of 8000 bytes, the
/// default threshold, so a message of exactly that size would be lost.)
pub(crate) fn encode(msg: &Value, threshold: usize) -> Outgoing {
    let kind = get(msg, "type").and_then(Value::as_u64).unwrap_or(0);
    let binary_kind = matches!(
        kind,
        BROADCAST | BROADCAST_ACK | SERVER_SIDE_EMIT | SERVER_SIDE_EMIT_RESPONSE
    );
    if !(binary_kind && has_binary(msg)) {
        // A map with keys that are not strings has no JSON form: it goes to the table.
        if let Ok(json) = serde_json::to_string(msg) {
            if json.len() < threshold {
                return Outgoing::Notify(json);
            }
        }
    }
    let uid = get(msg, "uid").and_then(Value::as_str).unwrap_or("");
    let header_start = format!(
        "{{\"uid\":{},\"type\":{kind},\"attachmentId\":\"",
        serde_json::Value::from(uid)
    );
    Outgoing::Attachment {
        payload: super::values::encode(msg),
        header_start,
    }
}

/// A notification as it comes in.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A whole message.
    Message(Value),
    /// A message stored in the attachments table, with the sender's uid.
    Attachment { id: i64, uid: Option<String> },
}

/// Reads a NOTIFY payload; `None` when it is not a message of this protocol.
pub(crate) fn decode_notification(payload: &str) -> Option<Incoming> {
    // serde_json stops at 128 levels of nesting.
    let json: serde_json::Value = serde_json::from_str(payload).ok()?;
    if !json.is_object() {
        return None;
    }
    if let Some(id) = json.get("attachmentId") {
        let id = match id {
            serde_json::Value::String(s) => s.parse().ok()?,
            serde_json::Value::Number(n) => n.as_i64()?,
            _ => return None,
        };
        let uid = json.get("uid").and_then(|u| u.as_str()).map(str::to_owned);
        return Some(Incoming::Attachment { id, uid });
    }
    rmpv::ext::to_value(json).ok().map(Incoming::Message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::BroadcastOptions;
    use crate::cluster::values::{decode_msgpack, opts_value, packet_value};

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    fn broadcast(args: Vec<Value>) -> Value {
        let data = Value::Map(vec![
            (s("packet"), packet_value("/", "ev", args)),
            (s("opts"), opts_value(&BroadcastOptions::default(), None)),
        ]);
        message(BROADCAST, Some(data), "u1", "/")
    }

    #[test]
    fn small_messages_are_json_in_node_key_order() {
        let Outgoing::Notify(json) = encode(&broadcast(vec![Value::from(1)]), 8000) else {
            panic!("not inline")
        };
        assert_eq!(
            json,
            r#"{"type":3,"data":{"packet":{"type":2,"data":["ev",1],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"u1","nsp":"/"}"#
        );
        let Some(Incoming::Message(back)) = decode_notification(&json) else {
            panic!("not decoded")
        };
        assert_eq!(get(&back, "type").and_then(Value::as_u64), Some(3));
    }

    #[test]
    fn binary_and_long_messages_go_to_the_table() {
        let msg = broadcast(vec![Value::Binary(vec![1, 2])]);
        let Outgoing::Attachment {
            payload,
            header_start,
        } = encode(&msg, 8000)
        else {
            panic!("inline binary")
        };
        assert_eq!(decode_msgpack(&payload), Some(msg));
        assert_eq!(header_start, r#"{"uid":"u1","type":3,"attachmentId":""#);
        let long = broadcast(vec![Value::from("x".repeat(8000))]);
        assert!(matches!(encode(&long, 8000), Outgoing::Attachment { .. }));
        // Only the kinds Node checks go to the table for binary.
        let fetch = message(
            FETCH_SOCKETS_RESPONSE,
            Some(Value::Binary(vec![1])),
            "u",
            "/",
        );
        assert!(matches!(encode(&fetch, 8000), Outgoing::Notify(_)));
    }

    #[test]
    fn reads_attachment_headers_and_skips_garbage() {
        let Some(Incoming::Attachment { id, uid }) =
            decode_notification(r#"{"uid":"emitter","type":3,"attachmentId":"42"}"#)
        else {
            panic!("no header")
        };
        assert_eq!((id, uid.as_deref()), (42, Some("emitter")));
        assert!(decode_notification("not json").is_none());
        assert!(decode_notification("[1]").is_none());
        assert!(decode_notification(r#"{"attachmentId":"x"}"#).is_none());
        assert!(
            decode_notification(&format!("{}{}", "[".repeat(5000), "]".repeat(5000))).is_none()
        );
    }

    #[test]
    fn channel_names_are_quoted() {
        assert_eq!(
            listen_sql(&channel("socket.io", "/")),
            r#"LISTEN "socket.io#/""#
        );
        assert_eq!(listen_sql("a\"b"), r#"LISTEN "a""b""#);
    }
}
