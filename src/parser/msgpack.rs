//! The msgpack wire format of npm's `socket.io-msgpack-parser`: each packet is one msgpack
//! map `{type, data, nsp, id?}` in one binary frame; binary data travels inline as msgpack
//! `bin`, so there are no attachments.

use bytes::Bytes;
use rmpv::Value;
use serde::Serialize;

use super::{Args, Body, DecodeLimits, EncodeError, Encoded, Packet, ParseError, RESERVED_EVENTS};
use crate::engine::{Frame, Str};

/// Deepest nesting accepted in a received packet: the decoder and everything that walks
/// the value afterwards recurse, and a hostile packet must not overflow the stack.
const MAX_DEPTH: usize = 128;

fn payload_err(e: impl std::fmt::Display) -> ParseError {
    ParseError::Payload(e.to_string())
}

fn encode_err(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(<serde_json::Error as serde::ser::Error>::custom(e))
}

/// Decodes one binary frame into a packet.
pub(super) fn decode(data: &[u8], limits: &DecodeLimits) -> Result<Packet, ParseError> {
    let _ = limits;
    let mut rd = data;
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH).map_err(payload_err)?;
    let Value::Map(entries) = value else {
        return Err(ParseError::Payload("packet is not a map".into()));
    };
    let (mut kind, mut nsp, mut id, mut body) = (None, None, None, None);
    for (k, v) in entries {
        // notepack.io, the encoder of the npm parser, writes JavaScript's `undefined` as
        // the extension type 0: it means "absent".
        let v = match v {
            Value::Ext(0, _) => Value::Nil,
            v => v,
        };
        match k.as_str() {
            Some("type") => kind = Some(v.as_u64().ok_or(ParseError::UnknownType)?),
            Some("nsp") => nsp = Some(v.as_str().ok_or(ParseError::Header)?.to_owned()),
            Some("id") if !v.is_nil() => id = Some(v.as_u64().ok_or(ParseError::Header)?),
            Some("data") => body = Some(v),
            _ => {}
        }
    }
    let nsp = nsp.ok_or(ParseError::Header)?;
    let body = match (kind.ok_or(ParseError::UnknownType)?, body) {
        (0, None | Some(Value::Nil)) => Body::Connect(None),
        (0, Some(auth @ Value::Map(_))) => {
            let json = serde_json::to_string(&auth).map_err(payload_err)?;
            Body::Connect(Some(Str::from(json)))
        }
        (0, Some(_)) => return Err(ParseError::Payload("auth must be an object".into())),
        (1, None | Some(Value::Nil)) => Body::Disconnect,
        (1, Some(_)) => return Err(ParseError::Payload("unexpected data".into())),
        (2 | 5, Some(Value::Array(mut items))) => {
            if items.is_empty() {
                return Err(ParseError::Payload("empty event".into()));
            }
            let name = match items.remove(0) {
                Value::String(s) => s
                    .into_str()
                    .ok_or_else(|| ParseError::Payload("event name is not UTF-8".into()))?,
                _ => return Err(ParseError::Payload("event name must be a string".into())),
            };
            if RESERVED_EVENTS.contains(&name.as_str()) {
                return Err(ParseError::ReservedEvent);
            }
            Body::Event {
                name,
                args: Args::msgpack(items),
            }
        }
        (3 | 6, Some(Value::Array(items))) if id.is_some() => Body::Ack(Args::msgpack(items)),
        (2 | 3 | 5 | 6, _) => return Err(ParseError::Payload("data must be an array".into())),
        (4, _) => return Err(ParseError::NotFromClient),
        _ => return Err(ParseError::UnknownType),
    };
    Ok(Packet {
        ns: Str::from(nsp),
        id,
        body,
    })
}

/// Serializes the arguments once: their msgpack encodings back to back, and their count.
pub(super) fn serialize_args<T: Serialize + ?Sized>(
    data: &T,
    spread: bool,
) -> Result<(Vec<u8>, u32), EncodeError> {
    let bytes = rmp_serde::to_vec_named(data).map_err(encode_err)?;
    if !spread {
        return Ok((bytes, 1));
    }
    if bytes == [0xc0] {
        return Ok((Vec::new(), 0));
    }
    let mut rd = bytes.as_slice();
    let count = rmp::decode::read_array_len(&mut rd)
        .map_err(|_| encode_err("spread arguments must serialize to an array"))?;
    let header = bytes.len() - rd.len();
    Ok((bytes[header..].to_vec(), count))
}

fn head(buf: &mut Vec<u8>, kind: u64, ns: &str, id: Option<u64>, data: bool) {
    let fields = 2 + u32::from(data) + u32::from(id.is_some());
    // Writes into a Vec cannot fail.
    let _ = rmp::encode::write_map_len(buf, fields);
    let _ = rmp::encode::write_str(buf, "type");
    let _ = rmp::encode::write_uint(buf, kind);
    let _ = rmp::encode::write_str(buf, "nsp");
    let _ = rmp::encode::write_str(buf, ns);
    if let Some(id) = id {
        let _ = rmp::encode::write_str(buf, "id");
        let _ = rmp::encode::write_uint(buf, id);
    }
    if data {
        let _ = rmp::encode::write_str(buf, "data");
    }
}

fn finish(buf: Vec<u8>) -> Encoded {
    Encoded {
        head: Frame::Binary(Bytes::from(buf)),
        attachments: Vec::new(),
    }
}

/// Frames an event (with `event`) or ack (without), appending `extra` as a string argument.
pub(super) fn frame(
    ns: &str,
    event: Option<&str>,
    args: &[u8],
    count: u32,
    id: Option<u64>,
    extra: Option<&str>,
) -> Encoded {
    let mut buf = Vec::with_capacity(args.len() + ns.len() + 32);
    head(&mut buf, if event.is_some() { 2 } else { 3 }, ns, id, true);
    let len = count + u32::from(event.is_some()) + u32::from(extra.is_some());
    let _ = rmp::encode::write_array_len(&mut buf, len);
    if let Some(event) = event {
        let _ = rmp::encode::write_str(&mut buf, event);
    }
    buf.extend_from_slice(args);
    if let Some(extra) = extra {
        let _ = rmp::encode::write_str(&mut buf, extra);
    }
    finish(buf)
}

pub(super) fn encode_connect(ns: &str, sid: &str, pid: Option<&str>) -> Encoded {
    let mut buf = Vec::with_capacity(64);
    head(&mut buf, 0, ns, None, true);
    let _ = rmp::encode::write_map_len(&mut buf, 1 + u32::from(pid.is_some()));
    let _ = rmp::encode::write_str(&mut buf, "sid");
    let _ = rmp::encode::write_str(&mut buf, sid);
    if let Some(pid) = pid {
        let _ = rmp::encode::write_str(&mut buf, "pid");
        let _ = rmp::encode::write_str(&mut buf, pid);
    }
    finish(buf)
}

pub(super) fn encode_connect_error(
    ns: &str,
    message: &str,
    data: Option<&serde_json::Value>,
) -> Encoded {
    #[derive(Serialize)]
    struct Err<'a> {
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a serde_json::Value>,
    }
    let mut buf = Vec::with_capacity(64 + message.len());
    head(&mut buf, 4, ns, None, true);
    if rmp_serde::encode::write_named(&mut buf, &Err { message, data }).is_err() {
        let _ = rmp::encode::write_nil(&mut buf);
    }
    finish(buf)
}

pub(super) fn encode_disconnect(ns: &str) -> Encoded {
    let mut buf = Vec::with_capacity(16 + ns.len());
    head(&mut buf, 1, ns, None, false);
    finish(buf)
}

/// The arguments as JSON values (binary as arrays of bytes).
pub(super) fn args_json(args: &[u8], count: u32) -> Result<Vec<serde_json::Value>, EncodeError> {
    let mut rd = args;
    (0..count)
        .map(|_| {
            let v =
                rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH).map_err(encode_err)?;
            serde_json::to_value(&v).map_err(EncodeError)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{Binary, Parser};

    const LIMITS: DecodeLimits = DecodeLimits {
        max_attachments: 10,
        max_attachment_bytes: 1000,
    };

    fn bytes(e: &Encoded) -> Vec<u8> {
        match &e.head {
            Frame::Binary(b) => b.to_vec(),
            Frame::Text(_) => panic!("text frame from the msgpack parser"),
        }
    }

    fn value(e: &Encoded) -> Value {
        rmpv::decode::read_value(&mut bytes(e).as_slice()).expect("valid msgpack")
    }

    fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        v.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    #[test]
    fn encodes_events_with_inline_binary() {
        #[derive(Serialize)]
        struct M {
            name: &'static str,
            data: Binary,
        }
        let p = Parser::MsgPack;
        let e = p
            .event(
                "/chat",
                "file",
                &M {
                    name: "x",
                    data: Binary::from(vec![1u8, 2]),
                },
                Some(4),
                false,
            )
            .expect("encode");
        assert!(e.attachments.is_empty());
        let v = value(&e);
        assert_eq!(get(&v, "type").and_then(Value::as_u64), Some(2));
        assert_eq!(get(&v, "nsp").and_then(Value::as_str), Some("/chat"));
        assert_eq!(get(&v, "id").and_then(Value::as_u64), Some(4));
        let data = get(&v, "data").and_then(Value::as_array).expect("data");
        assert_eq!(data[0].as_str(), Some("file"));
        assert_eq!(get(&data[1], "data"), Some(&Value::Binary(vec![1, 2])));
        let e = p.event("/", "ev", &(1, "a"), None, true).expect("encode");
        let v = value(&e);
        assert_eq!(
            get(&v, "data").and_then(Value::as_array).map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn decodes_what_the_client_sends() {
        let mut buf = Vec::new();
        let packet = Value::Map(vec![
            (Value::from("type"), Value::from(2)),
            (
                Value::from("data"),
                Value::Array(vec![
                    Value::from("up"),
                    Value::Binary(vec![7, 8]),
                    Value::from(3),
                ]),
            ),
            (Value::from("nsp"), Value::from("/")),
            (Value::from("id"), Value::from(9)),
        ]);
        rmpv::encode::write_value(&mut buf, &packet).expect("encode");
        let p = decode(&buf, &LIMITS).expect("decode");
        assert_eq!(p.id, Some(9));
        let Body::Event { name, args } = p.body else {
            panic!("not an event")
        };
        assert_eq!(name, "up");
        let (b, n): (Binary, u8) = args.deserialize().expect("args");
        assert_eq!((&b.0[..], n), (&[7u8, 8][..], 3));
    }

    #[test]
    fn refuses_bad_packets() {
        let enc = |v: Value| {
            let mut b = Vec::new();
            rmpv::encode::write_value(&mut b, &v).expect("encode");
            b
        };
        let map = |items: Vec<(&str, Value)>| {
            Value::Map(
                items
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            )
        };
        for bad in [
            enc(Value::from(1)),
            enc(map(vec![
                ("type", Value::from(2)),
                ("data", Value::Array(vec![])),
            ])),
            enc(map(vec![
                ("type", Value::from(2)),
                ("nsp", Value::from("/")),
                ("data", Value::Array(vec![])),
            ])),
            enc(map(vec![
                ("type", Value::from(2)),
                ("nsp", Value::from("/")),
                ("data", Value::Array(vec![Value::from(1)])),
            ])),
            enc(map(vec![
                ("type", Value::from(2)),
                ("nsp", Value::from("/")),
                ("data", Value::Array(vec![Value::from("disconnect")])),
            ])),
            enc(map(vec![
                ("type", Value::from(9)),
                ("nsp", Value::from("/")),
            ])),
            enc(map(vec![
                ("type", Value::from(3)),
                ("nsp", Value::from("/")),
                ("data", Value::Array(vec![])),
            ])),
            enc(map(vec![
                ("type", Value::from(0)),
                ("nsp", Value::from("/")),
                ("data", Value::from("x")),
            ])),
            vec![0xde, 0xff],
        ] {
            assert!(decode(&bad, &LIMITS).is_err(), "accepted {bad:?}");
        }
        let mut deep = vec![0x91u8; 100_000];
        deep.push(0xc0);
        assert!(decode(&deep, &LIMITS).is_err());
    }
}
