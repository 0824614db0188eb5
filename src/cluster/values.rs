//! The msgpack shapes of `socket.io-adapter`'s cluster messages, which every Node.js
//! adapter (Redis, PostgreSQL, ...) shares: an EVENT packet `{type: 2, data, nsp}` and
//! broadcast options `{rooms, except, flags}`. Whatever comes in is read defensively with
//! bounded depth: a malformed message is dropped, never a crash.

use rmpv::Value;

use crate::adapter::{BroadcastOptions, Room};
use crate::errors::AckError;
use crate::parser::{Args, EventPacket, Parser};

/// Deepest nesting decoded from another server.
pub(crate) const MAX_DEPTH: usize = 128;

fn s(v: &str) -> Value {
    Value::from(v)
}

/// A room list as Node reads it: an array of strings.
pub(crate) fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| s(r)).collect())
}

fn except_of(opts: &BroadcastOptions) -> Vec<Room> {
    let mut except = opts.except.clone();
    if let Some(sid) = opts.except_sid {
        except.push(Room::Owned(sid.as_str().to_owned()));
    }
    except
}

/// `{rooms, except, flags}` as Node reads it: arrays, never strings.
pub(crate) fn opts_value(opts: &BroadcastOptions, timeout_ms: Option<u64>) -> Value {
    let mut flags = Vec::new();
    if opts.volatile {
        flags.push((s("volatile"), Value::Boolean(true)));
    }
    if let Some(t) = timeout_ms {
        flags.push((s("timeout"), Value::from(t)));
    }
    Value::Map(vec![
        (s("rooms"), rooms_value(&opts.rooms)),
        (s("except"), rooms_value(&except_of(opts))),
        (s("flags"), Value::Map(flags)),
    ])
}

/// The JSON form of options, for requests.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn opts_json(opts: &BroadcastOptions) -> serde_json::Value {
    serde_json::json!({
        "rooms": opts.rooms.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
        "except": except_of(opts).iter().map(|r| r.to_string()).collect::<Vec<_>>(),
    })
}

/// An EVENT packet `{type: 2, data: [event, ...args], nsp}`: always type 2, binary inline
/// (Node's clients would take a type 5 here for a malformed packet).
pub(crate) fn packet_value(nsp: &str, event: &str, args: Vec<Value>) -> Value {
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(s(event));
    data.extend(args);
    Value::Map(vec![
        (s("type"), Value::from(2)),
        (s("data"), Value::Array(data)),
        (s("nsp"), s(nsp)),
    ])
}

/// A value as msgpack bytes.
pub(crate) fn encode(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut buf, v);
    buf
}

/// One msgpack value filling all of `payload`, nested at most [`MAX_DEPTH`] deep.
pub(crate) fn decode_msgpack(payload: &[u8]) -> Option<Value> {
    let mut rd = payload;
    let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH).ok()?;
    rd.is_empty().then_some(v)
}

/// The value at `key` of a map.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The string at `key` of a map.
pub(crate) fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// A room list: an array of strings (numbers are accepted, as Node matches them).
pub(crate) fn rooms_of(v: Option<&Value>) -> Vec<Room> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|r| match r {
                Value::String(s) => s.as_str().map(|s| Room::Owned(s.to_owned())),
                Value::Integer(i) => Some(Room::Owned(i.to_string())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Options received from another server.
pub(crate) fn opts_from(v: Option<&Value>) -> BroadcastOptions {
    let flags = v.and_then(|o| get(o, "flags"));
    BroadcastOptions {
        rooms: rooms_of(v.and_then(|o| get(o, "rooms"))),
        except: rooms_of(v.and_then(|o| get(o, "except"))),
        except_sid: None,
        local: true,
        volatile: flags
            .and_then(|f| get(f, "volatile"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// A received EVENT packet: its namespace (default `/`), event name and arguments.
pub(crate) fn event_of(packet: &Value) -> Option<(String, String, Vec<Value>)> {
    let nsp = get_str(packet, "nsp").unwrap_or("/").to_owned();
    let kind = get(packet, "type").and_then(Value::as_u64)?;
    if kind != 2 && kind != 5 {
        return None;
    }
    let mut data = match get(packet, "data") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        _ => return None,
    };
    let event = match data.remove(0) {
        Value::String(s) => s.into_str()?,
        _ => return None,
    };
    Some((nsp, event, data))
}

/// An ack from another server: its first argument (Node carries only that one).
pub(crate) fn ack_args(parser: Parser, packet: Option<&Value>) -> Result<Args, AckError> {
    let value = packet.cloned().unwrap_or(Value::Nil);
    let p = EventPacket::from_values(parser, "/", "ack", std::slice::from_ref(&value))
        .map_err(|e| AckError::Decode(e.0))?;
    Ok(Args::from_event(&p))
}

/// The first argument of a local ack, as another server takes it: msgpack, with its
/// binary attachment back inline when the argument is one.
pub(crate) fn ack_value(args: &Args) -> Value {
    let first = args
        .deserialize_nth::<serde_json::Value>(0)
        .ok()
        .and_then(|v| rmpv::ext::to_value(v).ok())
        .unwrap_or(Value::Nil);
    with_binary(args, first)
}

/// An ack's first argument with its binary attachments back inline.
fn with_binary(args: &Args, value: Value) -> Value {
    match args.attachments() {
        [] => value,
        atts => match &value {
            Value::Map(m)
                if m.iter().any(|(k, v)| {
                    k.as_str() == Some("_placeholder") && v.as_bool() == Some(true)
                }) =>
            {
                let n = m
                    .iter()
                    .find(|(k, _)| k.as_str() == Some("num"))
                    .and_then(|(_, v)| v.as_u64())
                    .unwrap_or(0) as usize;
                atts.get(n)
                    .map_or(value.clone(), |b| Value::Binary(b.to_vec()))
            }
            _ => value,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_defensively() {
        assert!(decode_msgpack(&[0x93, 0xa1]).is_none());
        let mut deep = vec![0x91u8; 10_000];
        deep.push(0xc0);
        assert!(decode_msgpack(&deep).is_none());
        assert!(
            decode_msgpack(&[0x91, 0xc0, 0xc0]).is_none(),
            "trailing bytes"
        );
    }
}
