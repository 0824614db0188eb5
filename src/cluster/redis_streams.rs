//! The wire format of npm's `@socket.io/redis-streams-adapter` 0.3 (see
//! `docs/redis-streams-protocol.md`), for the Streams adapter and anything else that writes
//! to or reads from the stream.
//!
//! Every message is `{type, data, uid, nsp}`, `type` as in socket.io-adapter's
//! `ClusterAdapter`. Broadcasts without ack and join/leave/disconnect are stream entries with
//! the fields `uid`, `nsp`, `type` (decimal text) and `data` (JSON text, or base64 msgpack
//! when it holds binary); everything else is msgpack over pub/sub. What comes in is decoded
//! with bounded depth; a malformed message is dropped, never a crash.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmpv::Value;

use crate::adapter::BroadcastOptions;
use crate::cluster::values::{self, get};
use crate::parser::{EncodeError, EventPacket};

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

fn s(v: &str) -> Value {
    Value::from(v)
}

/// A pub/sub message or response: `{type, data, uid, nsp}`, msgpack, in Node's key order.
pub(crate) fn message(kind: u64, data: Value, uid: &str, nsp: &str) -> Vec<u8> {
    values::encode(&Value::Map(vec![
        (s("type"), Value::from(kind)),
        (s("data"), data),
        (s("uid"), s(uid)),
        (s("nsp"), s(nsp)),
    ]))
}

/// A map of string keys.
pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

/// The packet of a broadcast as the Node adapter carries it: `{type: 2, data: [event,
/// ...args]}` (no `nsp`: the message has it), binary inline.
pub(crate) fn packet(event: &str, args: Vec<Value>) -> Value {
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(s(event));
    data.extend(args);
    map(vec![("type", Value::from(2)), ("data", Value::Array(data))])
}

/// `{packet, opts}` of a broadcast (with `requestId` between them when it asks for acks).
pub(crate) fn broadcast_data(
    packet: &EventPacket,
    opts: &BroadcastOptions,
    ack: Option<(&str, u64)>,
) -> Result<Value, EncodeError> {
    let mut entries = vec![("packet", self::packet(&packet.event, packet.args_values()?))];
    if let Some((request_id, _)) = ack {
        entries.push(("requestId", s(request_id)));
    }
    entries.push(("opts", values::opts_value(opts, ack.map(|(_, t)| t))));
    Ok(map(entries))
}

/// The `uid` of an emitter's messages (no server takes it for its own).
pub(crate) const EMITTER_UID: &str = "emitter";

/// The `XADD` of one entry, trimmed to about `max_len` (`MAXLEN ~`), fields in Node's order;
/// it answers the new entry's id.
pub(crate) fn xadd(
    stream: &str,
    max_len: usize,
    uid: &str,
    nsp: &str,
    kind: u64,
    data: &str,
) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*")
        .arg("uid")
        .arg(uid)
        .arg("nsp")
        .arg(nsp)
        .arg("type")
        .arg(kind.to_string())
        .arg("data")
        .arg(data);
    cmd
}

fn has_binary(v: &Value, depth: usize) -> bool {
    match v {
        Value::Binary(_) => true,
        _ if depth > 128 => false,
        Value::Array(a) => a.iter().any(|v| has_binary(v, depth + 1)),
        Value::Map(m) => m.iter().any(|(_, v)| has_binary(v, depth + 1)),
        _ => false,
    }
}

/// The `data` field of a stream entry: JSON text, or base64 msgpack when it holds binary.
pub(crate) fn entry_data(data: &Value) -> String {
    if has_binary(data, 0) {
        return BASE64.encode(values::encode(data));
    }
    let mut out = String::new();
    write_json(&mut out, data, 0);
    out
}

/// JSON text of a value as `JSON.stringify` writes it, map keys in their order (Node writes
/// `packet` before `opts`). Deeper than the decoder's limit is written as `null`.
fn write_json(out: &mut String, v: &Value, depth: usize) {
    use std::fmt::Write as _;
    let string = |out: &mut String, t: &str| {
        // Serializing a str cannot fail.
        out.push_str(&serde_json::to_string(t).unwrap_or_default());
    };
    match v {
        _ if depth > 128 => out.push_str("null"),
        Value::Nil | Value::Ext(..) | Value::Binary(_) => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::F32(f) => out.push_str(&json_number(f64::from(*f))),
        Value::F64(f) => out.push_str(&json_number(*f)),
        Value::String(t) => string(out, t.as_str().unwrap_or("")),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Value::String(t) => string(out, t.as_str().unwrap_or("")),
                    other => {
                        let mut key = String::new();
                        write_json(&mut key, other, depth + 1);
                        string(out, &key);
                    }
                }
                out.push(':');
                write_json(out, item, depth + 1);
            }
            out.push('}');
        }
    }
}

fn json_number(f: f64) -> String {
    serde_json::Number::from_f64(f).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// Decodes the `data` field of a stream entry.
pub(crate) fn decode_entry_data(data: &[u8]) -> Option<Value> {
    if data.first() == Some(&b'{') {
        // serde_json bounds its own recursion.
        let json: serde_json::Value = serde_json::from_slice(data).ok()?;
        return rmpv::ext::to_value(json).ok();
    }
    values::decode_msgpack(&BASE64.decode(data).ok()?)
}

/// A decoded cluster message (pub/sub, or a stream entry with its fields).
#[derive(Debug)]
pub(crate) struct Message {
    pub uid: Option<String>,
    pub nsp: String,
    pub kind: u64,
    pub data: Value,
}

impl Message {
    /// A pub/sub message.
    pub(crate) fn from_pubsub(payload: &[u8]) -> Option<Self> {
        let v = values::decode_msgpack(payload)?;
        Some(Self {
            uid: values::get_str(&v, "uid").map(str::to_owned),
            nsp: values::get_str(&v, "nsp")?.to_owned(),
            kind: get(&v, "type").and_then(Value::as_u64)?,
            data: get(&v, "data").cloned().unwrap_or(Value::Nil),
        })
    }

    /// A stream entry, from its field/value pairs.
    pub(crate) fn from_entry(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<Self> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        let text = |name: &str| field(name).and_then(|v| std::str::from_utf8(v).ok());
        Some(Self {
            uid: text("uid").map(str::to_owned),
            nsp: text("nsp")?.to_owned(),
            kind: text("type")?.parse().ok()?,
            data: match field("data") {
                Some(d) if !d.is_empty() => decode_entry_data(d)?,
                _ => Value::Nil,
            },
        })
    }

    /// A field of `data`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        get(&self.data, key)
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        self.get("requestId").and_then(Value::as_str)
    }
}

/// Whether a stream entry id is `<ms>-<seq>`, the only offsets Node accepts.
pub(crate) fn is_entry_id(offset: &str) -> bool {
    offset.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The id right after `id` (exclusive ranges need Redis 6.2; this works everywhere).
pub(crate) fn next_entry_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let seq: u64 = seq.parse().ok()?;
    Some(match seq.checked_add(1) {
        Some(next) => format!("{ms}-{next}"),
        None => format!("{}-0", ms.parse::<u64>().ok()?.checked_add(1)?),
    })
}

/// The fields of a stream entry, as name/value pairs.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;
/// A stream entry: its id and fields.
pub(crate) type Entry = (String, Fields);

/// Bytes of a bulk or simple string reply.
fn bytes(v: &redis::Value) -> Option<Vec<u8>> {
    match v {
        redis::Value::BulkString(b) => Some(b.clone()),
        redis::Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

/// The entries of an `XREAD` reply (one stream): RESP2 arrays or a RESP3 map.
pub(crate) fn stream_entries(v: &redis::Value) -> Vec<Entry> {
    match v {
        redis::Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                redis::Value::Array(pair) => pair.get(1),
                _ => None,
            })
            .flat_map(entries)
            .collect(),
        redis::Value::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an `XRANGE` reply: `[[id, [field, value, ...]], ...]`.
pub(crate) fn entries(v: &redis::Value) -> Vec<Entry> {
    let redis::Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let redis::Value::Array(pair) = item else {
                return None;
            };
            let id = String::from_utf8(bytes(pair.first()?)?).ok()?;
            let fields = match pair.get(1)? {
                redis::Value::Array(kv) => kv
                    .chunks_exact(2)
                    .filter_map(|c| Some((bytes(&c[0])?, bytes(&c[1])?)))
                    .collect(),
                redis::Value::Map(kv) => kv
                    .iter()
                    .filter_map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
                    .collect(),
                _ => Vec::new(),
            };
            Some((id, fields))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::Room;

    #[test]
    fn broadcast_entry_matches_node() {
        // As `io.to('room1').except('zz').emit('ev', 'r1', {a: 1})` wrote it (MONITOR).
        let opts = BroadcastOptions {
            rooms: vec![Room::from("room1")],
            except: vec![Room::from("zz")],
            ..Default::default()
        };
        let args = vec![s("r1"), map(vec![("a", Value::from(1))])];
        let data = map(vec![
            ("packet", packet("ev", args)),
            ("opts", values::opts_value(&opts, None)),
        ]);
        assert_eq!(
            entry_data(&data),
            r#"{"packet":{"type":2,"data":["ev","r1",{"a":1}]},"opts":{"rooms":["room1"],"except":["zz"],"flags":{}}}"#
        );
        // `io.emit('bin', Buffer.from([1, 2, 3]))`.
        let bin = map(vec![
            ("packet", packet("bin", vec![Value::Binary(vec![1, 2, 3])])),
            (
                "opts",
                values::opts_value(&BroadcastOptions::default(), None),
            ),
        ]);
        let text = entry_data(&bin);
        assert_eq!(
            text,
            "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA=="
        );
        assert_eq!(decode_entry_data(text.as_bytes()), Some(bin));
    }

    #[test]
    fn offsets() {
        assert!(is_entry_id("1796162652965-0"));
        assert!(!is_entry_id("1796162652965"));
        assert!(!is_entry_id("abc-1"));
        assert!(!is_entry_id("-1"));
        assert_eq!(next_entry_id("5-1").as_deref(), Some("5-2"));
        assert_eq!(
            next_entry_id(&format!("5-{}", u64::MAX)).as_deref(),
            Some("6-0")
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        let f = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        assert!(Message::from_entry(&[f("nsp", "/"), f("type", "x")]).is_none());
        assert!(
            Message::from_entry(&[f("nsp", "/"), f("type", "3"), f("data", "{oops")]).is_none()
        );
        assert!(Message::from_entry(&[f("nsp", "/"), f("type", "3"), f("data", "!!!")]).is_none());
        let ok = Message::from_entry(&[f("uid", "u"), f("nsp", "/"), f("type", "4")]);
        assert_eq!(ok.map(|m| m.kind), Some(4));
    }
}
