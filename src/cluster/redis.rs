//! The Redis pub/sub wire format of npm's `@socket.io/redis-adapter` (v8, classic) and
//! `@socket.io/redis-emitter` (v5), as observed on the wire (see `docs/redis-protocol.md`),
//! shared by our Redis adapter and the Redis backend of the emitter.
//!
//! Broadcasts are msgpack `[uid, packet, opts]`; requests and responses are JSON maps except
//! the broadcast-with-ack request (type 7) and its ack responses (type 9), which are msgpack.
//! Whatever comes in is decoded defensively with bounded depth: a malformed message is
//! dropped, never a crash.

use rmpv::Value;

use super::values::{decode_msgpack, encode, packet_value, rooms_value};
use crate::adapter::{BroadcastOptions, Room};

pub(crate) const SOCKETS: u64 = 0;
pub(crate) const ALL_ROOMS: u64 = 1;
pub(crate) const REMOTE_JOIN: u64 = 2;
pub(crate) const REMOTE_LEAVE: u64 = 3;
pub(crate) const REMOTE_DISCONNECT: u64 = 4;
pub(crate) const REMOTE_FETCH: u64 = 5;
pub(crate) const SERVER_SIDE_EMIT: u64 = 6;
pub(crate) const BROADCAST: u64 = 7;
pub(crate) const BROADCAST_CLIENT_COUNT: u64 = 8;
pub(crate) const BROADCAST_ACK: u64 = 9;

/// The channels of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    /// `<key>#<nsp>#`: broadcasts, followed by `<room>#` when aimed at exactly one room.
    pub broadcast: String,
    /// `<key>-request#<nsp>#`
    pub request: String,
    /// `<key>-response#<nsp>#`
    pub response: String,
    /// `<key>-response#<nsp>#<uid>#`
    pub own_response: String,
}

impl Channels {
    pub(crate) fn new(key: &str, nsp: &str, uid: &str) -> Self {
        Self {
            broadcast: namespace_channel(key, nsp),
            request: request_channel(key, nsp),
            response: format!("{key}-response#{nsp}#"),
            own_response: format!("{key}-response#{nsp}#{uid}#"),
        }
    }

    /// Where a broadcast with these options goes.
    pub(crate) fn broadcast_for(&self, opts: &BroadcastOptions) -> String {
        broadcast_channel(&self.broadcast, &opts.rooms)
    }
}

/// `<key>#<nsp>#`, the broadcast channel of a namespace.
pub(crate) fn namespace_channel(key: &str, nsp: &str) -> String {
    format!("{key}#{nsp}#")
}

/// `<key>-request#<nsp>#`, the request channel of a namespace.
pub(crate) fn request_channel(key: &str, nsp: &str) -> String {
    format!("{key}-request#{nsp}#")
}

/// Where a broadcast to `rooms` goes: the namespace channel, followed by `<room>#` when aimed
/// at exactly one room (Node's servers subscribe by pattern, so both reach every server).
pub(crate) fn broadcast_channel(namespace_channel: &str, rooms: &[Room]) -> String {
    match rooms {
        [room] => format!("{namespace_channel}{room}#"),
        _ => namespace_channel.to_owned(),
    }
}

/// Decodes a message: JSON when it starts with `{`, msgpack otherwise.
pub(crate) fn decode(payload: &[u8]) -> Option<Value> {
    if payload.first() == Some(&b'{') {
        let json: serde_json::Value = serde_json::from_slice(payload).ok()?;
        rmpv::ext::to_value(json).ok()
    } else {
        decode_msgpack(payload)
    }
}

/// The `uid` of every emitter message: no server takes it for its own.
pub(crate) const EMITTER_UID: &str = "emitter";

fn s(v: &str) -> Value {
    Value::from(v)
}

/// A broadcast as `@socket.io/redis-emitter` publishes it: msgpack
/// `["emitter", packet, {rooms, flags: {}, except}]` (its options' key order differs from the
/// adapter's, and it sets no flag).
pub(crate) fn emitter_broadcast(
    nsp: &str,
    event: &str,
    args: Vec<Value>,
    rooms: &[Room],
    except: &[Room],
) -> Vec<u8> {
    encode(&Value::Array(vec![
        s(EMITTER_UID),
        packet_value(nsp, event, args),
        Value::Map(vec![
            (s("rooms"), rooms_value(rooms)),
            (s("flags"), Value::Map(Vec::new())),
            (s("except"), rooms_value(except)),
        ]),
    ]))
}

/// An emitter's join (`REMOTE_JOIN`) or leave (`REMOTE_LEAVE`) request, JSON
/// `{type, opts: {rooms, except}, rooms}` without a `uid`, as `@socket.io/redis-emitter`
/// writes it.
pub(crate) fn emitter_rooms_request(
    kind: u64,
    rooms: &[Room],
    except: &[Room],
    targets: &[Room],
) -> Vec<u8> {
    json(&Value::Map(vec![
        (s("type"), Value::from(kind)),
        (s("opts"), emitter_opts(rooms, except)),
        (s("rooms"), rooms_value(targets)),
    ]))
}

/// An emitter's disconnect request, JSON `{type: 4, opts: {rooms, except}, close}`.
pub(crate) fn emitter_disconnect_request(rooms: &[Room], except: &[Room], close: bool) -> Vec<u8> {
    json(&Value::Map(vec![
        (s("type"), Value::from(REMOTE_DISCONNECT)),
        (s("opts"), emitter_opts(rooms, except)),
        (s("close"), Value::Boolean(close)),
    ]))
}

/// An emitter's server-side event, JSON `{uid: "emitter", type: 6, data: [event, ...args]}`.
/// Binary turns into `{"type":"Buffer","data":[...]}`, as `JSON.stringify` writes a Node
/// `Buffer`.
pub(crate) fn emitter_server_side_emit(data: Vec<Value>) -> Vec<u8> {
    json(&Value::Map(vec![
        (s("uid"), s(EMITTER_UID)),
        (s("type"), Value::from(SERVER_SIDE_EMIT)),
        (
            s("data"),
            Value::Array(data.into_iter().map(buffers_as_json).collect()),
        ),
    ]))
}

fn emitter_opts(rooms: &[Room], except: &[Room]) -> Value {
    Value::Map(vec![
        (s("rooms"), rooms_value(rooms)),
        (s("except"), rooms_value(except)),
    ])
}

/// Binary values as Node's `Buffer.prototype.toJSON` shows them. Depth is bounded by whoever
/// built the value (the emitter parses it with serde_json's recursion limit).
fn buffers_as_json(v: Value) -> Value {
    match v {
        Value::Binary(b) => Value::Map(vec![
            (s("type"), s("Buffer")),
            (
                s("data"),
                Value::Array(b.into_iter().map(Value::from).collect()),
            ),
        ]),
        Value::Array(items) => Value::Array(items.into_iter().map(buffers_as_json).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k, buffers_as_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// JSON text of a value, keys in the order given (as `JSON.stringify` keeps them).
fn json(v: &Value) -> Vec<u8> {
    // Keys here are strings and values come from JSON: serializing cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::Room;
    use crate::cluster::values::{encode, event_of, opts_from, opts_value, packet_value};

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    /// `io.to('r1').emit('ev','to r1')` as the Node adapter publishes it, byte for byte
    /// (from the capture in docs/redis-protocol.md), but for the uid.
    #[test]
    fn broadcast_bytes_match_node() {
        let opts = BroadcastOptions {
            rooms: vec![Room::from("r1")],
            ..Default::default()
        };
        let msg = Value::Array(vec![
            s("zFSbNO"),
            packet_value("/", "ev", vec![s("to r1")]),
            opts_value(&opts, None),
        ]);
        let hex: String = encode(&msg).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "93a67a4653624e4f83a47479706502a46461746192a26576a5746f207231a36e7370a12f83a5726f6f6d7391a27231a665786365707490a5666c61677380"
        );
        assert_eq!(
            Channels::new("socket.io", "/", "u").broadcast_for(&opts),
            "socket.io#/#r1#"
        );
    }

    #[test]
    fn decodes_both_encodings_defensively() {
        assert!(decode(br#"{"uid":"a","type":1,"requestId":"x"}"#).is_some());
        assert!(decode(b"{not json").is_none());
        assert!(decode(&[0x93, 0xa1]).is_none());
        let mut deep = vec![0x91u8; 10_000];
        deep.push(0xc0);
        assert!(decode(&deep).is_none());
        let emitter = hex(
            "93a7656d697474657283a47479706502a46461746192a26576aa656d6974746572207231a36e7370a12f83a5726f6f6d7391a27231a5666c61677380a665786365707490",
        );
        let v = decode(&emitter).expect("emitter message");
        let items = v.as_array().expect("array");
        assert_eq!(items[0].as_str(), Some("emitter"));
        let (nsp, event, args) = event_of(&items[1]).expect("event");
        assert_eq!((nsp.as_str(), event.as_str(), args.len()), ("/", "ev", 1));
        let opts = opts_from(Some(&items[2]));
        assert_eq!(opts.rooms, vec![Room::from("r1")]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
