//! The JSON wire format of Socket.IO (the reference implementation's default parser).
//!
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`
//!
//! Protocol v4 (`socket.io-client` 2.x) differs only around connecting; see
//! [`SocketIoProtocol`].

use std::cell::Cell;
use std::io::Write as _;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use super::binary::{check_placeholders, collect_attachments};
use super::{
    Args, Body, DecodeLimits, EncodeError, Encoded, Packet, PacketKind, ParseError,
    RESERVED_EVENTS, SocketIoProtocol, query_to_auth,
};
use crate::engine::{Frame, MessageBuf, Str};

/// Longest ack id accepted, in digits: ids are u64.
const MAX_ID_DIGITS: usize = 19;

fn slice(text: &Str, a: usize, b: usize) -> Result<Str, ParseError> {
    Str::try_from(Bytes::from(text.clone()).slice(a..b)).map_err(|_| ParseError::Header)
}

/// Decodes one text packet; returns it with the number of attachments it still awaits.
pub(super) fn decode(
    text: Str,
    limits: &DecodeLimits,
    protocol: SocketIoProtocol,
) -> Result<(Packet, usize), ParseError> {
    let s = text.as_str();
    let b = s.as_bytes();
    let kind = b
        .first()
        .and_then(|c| PacketKind::from_digit(*c))
        .ok_or(ParseError::UnknownType)?;
    let mut i = 1;
    let mut attachments = 0usize;
    if matches!(kind, PacketKind::BinaryEvent | PacketKind::BinaryAck) {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || b.get(i) != Some(&b'-') || i - start > 10 {
            return Err(ParseError::Header);
        }
        attachments = s[start..i].parse().map_err(|_| ParseError::Header)?;
        if attachments == 0 {
            return Err(ParseError::Header);
        }
        if attachments > limits.max_attachments {
            return Err(ParseError::TooManyAttachments);
        }
        i += 1;
    }
    // v4: a query after the namespace name (`/admin?token=x`) is the CONNECT's auth.
    let mut query = None;
    let ns = if b.get(i) == Some(&b'/') {
        let start = i;
        let end = s[i..].find(',').map_or(b.len(), |p| i + p);
        i = (end + 1).min(b.len());
        let name_end = match protocol {
            SocketIoProtocol::V4 => match s[start..end].find('?') {
                Some(q) => {
                    query = Some(&s[start + q + 1..end]);
                    start + q
                }
                None => end,
            },
            SocketIoProtocol::V5 => end,
        };
        slice(&text, start, name_end)?
    } else {
        Str::from_static("/")
    };
    let id_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let id = if i > id_start {
        if i - id_start > MAX_ID_DIGITS {
            return Err(ParseError::Header);
        }
        Some(
            s[id_start..i]
                .parse::<u64>()
                .map_err(|_| ParseError::Header)?,
        )
    } else {
        None
    };
    let payload = &s[i..];
    let body = match kind {
        PacketKind::Connect if protocol == SocketIoProtocol::V4 => {
            if !payload.is_empty() {
                tracing::debug!("payload of a v4 CONNECT ignored");
            }
            Body::Connect(Some(Str::from(query_to_auth(query.unwrap_or(""), &[]))))
        }
        PacketKind::Connect => {
            if payload.is_empty() {
                Body::Connect(None)
            } else {
                let raw: &RawValue = serde_json::from_str(payload).map_err(bad)?;
                if !raw.get().starts_with('{') {
                    return Err(ParseError::Payload("auth must be an object".into()));
                }
                Body::Connect(Some(slice(&text, i, b.len())?))
            }
        }
        PacketKind::Disconnect if payload.is_empty() => Body::Disconnect,
        PacketKind::Disconnect => return Err(ParseError::Payload("unexpected data".into())),
        PacketKind::Event | PacketKind::BinaryEvent => {
            let (name, ranges) = split_list(s, payload, true)?;
            let Some(name) = name else {
                return Err(ParseError::Payload("empty event".into()));
            };
            if RESERVED_EVENTS.contains(&name.as_str()) {
                return Err(ParseError::ReservedEvent);
            }
            Body::Event {
                name,
                args: Args::new(text.clone(), ranges),
            }
        }
        PacketKind::Ack | PacketKind::BinaryAck => {
            if id.is_none() {
                return Err(ParseError::Header);
            }
            let (_, ranges) = split_list(s, payload, false)?;
            Body::Ack(Args::new(text.clone(), ranges))
        }
        PacketKind::ConnectError => return Err(ParseError::NotFromClient),
    };
    if attachments > 0 {
        check_placeholders(payload, attachments).map_err(ParseError::Payload)?;
    }
    Ok((Packet { ns, id, body }, attachments))
}

fn bad(e: serde_json::Error) -> ParseError {
    ParseError::Payload(e.to_string())
}

/// An event's name (when asked for) and the byte ranges of its arguments.
type List = (Option<String>, Vec<(u32, u32)>);

/// Reads `payload` (a slice of `s`), a JSON array, in one pass: with `named`, its first
/// element as the event name, then the byte range within `s` of every other element, each
/// checked to be well-formed JSON but not decoded.
fn split_list(s: &str, payload: &str, named: bool) -> Result<List, ParseError> {
    let mut de = serde_json::Deserializer::from_str(payload);
    let list = serde::Deserializer::deserialize_seq(
        &mut de,
        ListVisitor {
            base: s.as_ptr() as usize,
            named,
        },
    )
    .and_then(|list| de.end().map(|()| list));
    list.map_err(bad)
}

struct ListVisitor {
    base: usize,
    named: bool,
}

impl<'de> serde::de::Visitor<'de> for ListVisitor {
    type Value = List;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name = match self.named {
            true => seq.next_element::<EventName>()?.map(|n| n.0),
            false => None,
        };
        let mut ranges = Vec::with_capacity(seq.size_hint().unwrap_or(1));
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let start = raw.get().as_ptr() as usize - self.base;
            let end = start + raw.get().len();
            match (u32::try_from(start), u32::try_from(end)) {
                (Ok(a), Ok(b)) => ranges.push((a, b)),
                _ => return Err(serde::de::Error::custom("packet too large")),
            }
        }
        Ok((name, ranges))
    }
}

/// An event name: a string, and nothing else.
struct EventName(String);

impl<'de> serde::Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)
            .map(EventName)
            .map_err(|_| serde::de::Error::custom("event name must be a string"))
    }
}

fn header(kind: u8, ns: &str, cap: usize) -> MessageBuf {
    let mut buf = MessageBuf::with_capacity(cap + ns.len() + 8);
    buf.push_str(std::str::from_utf8(&[kind]).unwrap_or("2"));
    if ns != "/" {
        buf.push_str(ns);
        buf.push_str(",");
    }
    buf
}

fn finish(buf: MessageBuf) -> Encoded {
    Encoded {
        // Everything written is UTF-8 (str slices and serde_json output).
        head: buf
            .finish()
            .unwrap_or_else(|_| Frame::message("2[\"error\"]")),
        attachments: Vec::new(),
    }
}

pub(super) fn encode_connect(ns: &str, sid: &str, pid: Option<&str>) -> Encoded {
    let mut buf = header(b'0', ns, 48);
    buf.push_str("{\"sid\":");
    push_json_str(&mut buf, sid);
    if let Some(pid) = pid {
        buf.push_str(",\"pid\":");
        push_json_str(&mut buf, pid);
    }
    buf.push_str("}");
    finish(buf)
}

fn push_json_str(buf: &mut MessageBuf, s: &str) {
    // ok-free: serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(buf, s);
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
    let mut buf = header(b'4', ns, 32 + message.len());
    let _ = serde_json::to_writer(&mut buf, &Err { message, data });
    finish(buf)
}

/// v4 CONNECT reply: no payload.
pub(super) fn encode_connect_v4(ns: &str) -> Encoded {
    finish(header(b'0', ns, 0))
}

/// v4 ERROR: the refusal's data, or its message.
pub(super) fn encode_error_v4(
    ns: &str,
    message: &str,
    data: Option<&serde_json::Value>,
) -> Encoded {
    let mut buf = header(b'4', ns, 8 + message.len());
    match data.filter(|d| !d.is_null()) {
        Some(d) => {
            let _ = serde_json::to_writer(&mut buf, d);
        }
        None => push_json_str(&mut buf, message),
    }
    finish(buf)
}

pub(super) fn encode_disconnect(ns: &str) -> Encoded {
    finish(header(b'1', ns, 0))
}

/// Serializes the arguments once: JSON text of the arguments, comma-separated and without
/// the surrounding brackets, and the attachments that [`Binary`](super::Binary) values handed
/// in. With `spread`, `data` must serialize to an array whose elements are the arguments.
pub(super) fn serialize_args<T: Serialize + ?Sized>(
    data: &T,
    spread: bool,
) -> Result<(String, Vec<Bytes>), EncodeError> {
    let (res, atts) = collect_attachments(|| serde_json::to_string(data));
    let mut text = res?;
    if spread {
        if text == "null" {
            text.clear();
        } else if text.starts_with('[') && text.ends_with(']') {
            text.pop();
            text.remove(0);
        } else {
            return Err(EncodeError(serde::ser::Error::custom(
                "spread arguments must serialize to an array",
            )));
        }
    }
    Ok((text, atts))
}

/// Frames an event (with `event`) or ack (without) from serialized arguments, appending
/// `extra` (raw JSON) as one more argument.
pub(super) fn frame(
    ns: &str,
    event: Option<&str>,
    args: &str,
    attachments: &[Bytes],
    id: Option<u64>,
    extra: Option<&str>,
) -> Encoded {
    let binary = !attachments.is_empty();
    let kind = match (event.is_some(), binary) {
        (true, false) => b'2',
        (false, false) => b'3',
        (true, true) => b'5',
        (false, true) => b'6',
    };
    let mut buf = MessageBuf::with_capacity(args.len() + ns.len() + event.map_or(0, str::len) + 24);
    buf.push_str(std::str::from_utf8(&[kind]).unwrap_or("2"));
    if binary {
        let _ = write!(buf, "{}-", attachments.len());
    }
    if ns != "/" {
        buf.push_str(ns);
        buf.push_str(",");
    }
    if let Some(id) = id {
        let _ = write!(buf, "{id}");
    }
    buf.push_str("[");
    let mut first = true;
    for part in [
        event.map(|e| (e, true)),
        Some((args, false)),
        extra.map(|e| (e, false)),
    ]
    .into_iter()
    .flatten()
    {
        let (text, quote) = part;
        if text.is_empty() {
            continue;
        }
        if !first {
            buf.push_str(",");
        }
        first = false;
        if quote {
            push_json_str(&mut buf, text);
        } else {
            buf.push_str(text);
        }
    }
    buf.push_str("]");
    let mut enc = finish(buf);
    enc.attachments = attachments.iter().cloned().map(Frame::Binary).collect();
    enc
}

thread_local! {
    /// The length of the last packet [`encode_data`] wrote on this thread: the next one
    /// starts with that much room. A server tends to send the same kinds of packets, so
    /// this saves the buffer's regrowth (and its copies) on most of them.
    static LAST_LEN: Cell<usize> = const { Cell::new(0) };
}

/// A packet larger than this does not make the next ones reserve more.
const MAX_LEN_HINT: usize = 16 * 1024;

/// EVENT when `event` is set, ACK otherwise; the binary variant when `data` holds
/// [`Binary`](super::Binary) values. The data is serialized straight behind the header:
/// one buffer, no intermediate copy (what a single emit needs; broadcasts go through
/// [`serialize_args`] and [`frame`] so they can be framed again per cluster or recovery).
pub(super) fn encode_data<T: Serialize + ?Sized>(
    ns: &str,
    event: Option<&str>,
    data: &T,
    id: Option<u64>,
    spread: bool,
) -> Result<Encoded, EncodeError> {
    if spread {
        let (args, atts) = serialize_args(data, spread)?;
        return Ok(frame(ns, event, &args, &atts, id, None));
    }
    let mut buf = MessageBuf::with_capacity(
        LAST_LEN.with(Cell::get).max(64) + ns.len() + event.map_or(0, str::len),
    );
    buf.push_str(if event.is_some() { "2" } else { "3" });
    if ns != "/" {
        buf.push_str(ns);
        buf.push_str(",");
    }
    if let Some(id) = id {
        let _ = write!(buf, "{id}");
    }
    buf.push_str("[");
    if let Some(event) = event {
        push_json_str(&mut buf, event);
        buf.push_str(",");
    }
    let (res, atts) = collect_attachments(|| serde_json::to_writer(&mut buf, data));
    res?;
    buf.push_str("]");
    LAST_LEN.with(|l| l.set(buf.data().len().min(MAX_LEN_HINT)));
    if atts.is_empty() {
        return Ok(finish(buf));
    }
    // Attachments found: BINARY_EVENT/BINARY_ACK with their count after the type.
    let rest = &buf.data()[1..];
    let mut bin = MessageBuf::with_capacity(rest.len() + 8);
    bin.push_str(if event.is_some() { "5" } else { "6" });
    let _ = write!(bin, "{}-", atts.len());
    let _ = bin.write_all(rest);
    let mut enc = finish(bin);
    enc.attachments = atts.into_iter().map(Frame::Binary).collect();
    Ok(enc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Binary;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_attachments: 10,
        max_attachment_bytes: 1000,
    };

    fn dec(s: &str) -> Result<(Packet, usize), ParseError> {
        decode(Str::from(s), &LIMITS, SocketIoProtocol::V5)
    }

    fn dec4(s: &str) -> Result<(Packet, usize), ParseError> {
        decode(Str::from(s), &LIMITS, SocketIoProtocol::V4)
    }

    fn text(e: &Encoded) -> &str {
        match &e.head {
            Frame::Text(t) => &t[1..],
            Frame::Binary(_) => panic!("binary"),
        }
    }

    #[test]
    fn decodes_events() {
        let (p, n) = dec(r#"2/chat,12["msg",1,"two",{"a":[3]}]"#).unwrap();
        assert_eq!(n, 0);
        assert_eq!(&*p.ns, "/chat");
        assert_eq!(p.id, Some(12));
        let Body::Event { name, args } = p.body else {
            panic!()
        };
        assert_eq!(name, "msg");
        assert_eq!(args.len(), 3);
        assert_eq!(args.raw(2), Some(r#"{"a":[3]}"#));
        let (a, b, c): (u8, String, serde_json::Value) = args.deserialize().unwrap();
        assert_eq!((a, b.as_str(), c["a"][0].as_u64()), (1, "two", Some(3)));
        let (p, _) = dec(r#"2["ev"]"#).unwrap();
        assert!(matches!(p.body, Body::Event { ref args, .. } if args.is_empty()));
    }

    #[test]
    fn decodes_other_kinds() {
        assert!(matches!(dec("0").unwrap().0.body, Body::Connect(None)));
        let (p, _) = dec(r#"0/admin,{"token":"x"}"#).unwrap();
        assert!(matches!(p.body, Body::Connect(Some(ref a)) if a.as_str() == r#"{"token":"x"}"#));
        assert_eq!(&*p.ns, "/admin");
        assert!(matches!(dec("1/admin,").unwrap().0.body, Body::Disconnect));
        let (p, _) = dec(r#"35["ok"]"#).unwrap();
        assert_eq!(p.id, Some(5));
        let (p, n) = dec(r#"51-["up",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(n, 1);
        assert!(matches!(p.body, Body::Event { .. }));
    }

    #[test]
    fn refuses_bad_packets() {
        for bad in [
            "",
            "9",
            "4abc",
            "42{}",
            "2{}",
            "2abc[1]",
            "2[]",
            r#"2[true,"x"]"#,
            r#"2[{"toString":"x"}]"#,
            r#"2["connect"]"#,
            r#"2["disconnect"]"#,
            r#"2["error",1]"#,
            "2123456789012345678901234567890[\"ev\"]",
            r#"3["no id"]"#,
            r#"0"str""#,
            r#"0[1]"#,
            "1x",
            r#"51-["ev",{"_placeholder":true,"num":1}]"#,
            r#"51-["ev",{"_placeholder":true,"num":"splice"}]"#,
            r#"5999999999-["ev"]"#,
            r#"50-["ev"]"#,
            r#"5-["ev"]"#,
            r#"4{"message":"x"}"#,
        ] {
            assert!(dec(bad).is_err(), "accepted {bad:?}");
        }
        let deep = format!("2[\"ev\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        let (p, _) = dec(&deep).unwrap();
        let Body::Event { args, .. } = p.body else {
            panic!()
        };
        assert!(args.deserialize::<serde_json::Value>().is_err());
    }

    #[test]
    fn encodes() {
        let e = encode_data("/", Some("ev"), &serde_json::json!({"a":1}), None, false).unwrap();
        assert_eq!(text(&e), r#"2["ev",{"a":1}]"#);
        let e = encode_data("/chat", Some("ev"), &(1, "x"), Some(7), true).unwrap();
        assert_eq!(text(&e), r#"2/chat,7["ev",1,"x"]"#);
        let e = encode_data("/", Some("ev"), &(), None, true).unwrap();
        assert_eq!(text(&e), r#"2["ev"]"#);
        let e = encode_data("/", None, &"ok", Some(3), false).unwrap();
        assert_eq!(text(&e), r#"33["ok"]"#);
        let e = encode_data("/", None, &(), Some(3), true).unwrap();
        assert_eq!(text(&e), r#"33[]"#);
        let e = encode_data("/", Some("f"), &Binary::from(vec![9u8]), None, false).unwrap();
        assert_eq!(text(&e), r#"51-["f",{"_placeholder":true,"num":0}]"#);
        assert_eq!(e.attachments, vec![Frame::binary(vec![9u8])]);
        assert_eq!(text(&encode_connect("/", "abc", None)), r#"0{"sid":"abc"}"#);
        assert_eq!(text(&encode_disconnect("/x")), "1/x,");
        assert_eq!(
            text(&encode_connect_error("/x", "Invalid namespace", None)),
            r#"4/x,{"message":"Invalid namespace"}"#
        );
    }

    #[test]
    fn protocol_v4() {
        let (p, _) = dec4("0/admin?token=a%20b&x=1,").unwrap();
        assert_eq!(&*p.ns, "/admin");
        assert!(
            matches!(p.body, Body::Connect(Some(ref a)) if a.as_str() == r#"{"token":"a b","x":"1"}"#)
        );
        let (p, _) = dec4("0/admin,").unwrap();
        assert_eq!(&*p.ns, "/admin");
        assert!(matches!(p.body, Body::Connect(Some(ref a)) if a.as_str() == "{}"));
        let (p, _) = dec4(r#"2/admin?x=1,3["ev",1]"#).unwrap();
        assert_eq!((&*p.ns, p.id), ("/admin", Some(3)));
        // v5 keeps the name as it is
        let (p, _) = dec("0/admin?x=1,").unwrap();
        assert_eq!(&*p.ns, "/admin?x=1");
        assert_eq!(text(&encode_connect_v4("/")), "0");
        assert_eq!(text(&encode_connect_v4("/admin")), "0/admin,");
        assert_eq!(
            text(&encode_error_v4("/", "not authorized", None)),
            r#"4"not authorized""#
        );
        let data = serde_json::json!({"code": 7});
        assert_eq!(
            text(&encode_error_v4("/x", "no", Some(&data))),
            r#"4/x,{"code":7}"#
        );
    }

    #[test]
    fn binary_packet_reassembly() {
        let mut d = super::super::Decoder::new(LIMITS);
        assert!(
            d.decode_text(Str::from(
                r#"52-["f",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#
            ))
            .unwrap()
            .is_none()
        );
        assert!(d.decode_text(Str::from("2[\"x\"]")).is_err());
        let mut d = super::super::Decoder::new(LIMITS);
        d.decode_text(Str::from(
            r#"52-["f",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#,
        ))
        .unwrap();
        assert!(d.decode_binary(Bytes::from_static(b"a")).unwrap().is_none());
        let p = d.decode_binary(Bytes::from_static(b"b")).unwrap().unwrap();
        let Body::Event { args, .. } = p.body else {
            panic!()
        };
        let (x, y): (Binary, Binary) = args.deserialize().unwrap();
        assert_eq!((&x.0[..], &y.0[..]), (&b"b"[..], &b"a"[..]));
        assert!(d.decode_binary(Bytes::from_static(b"c")).is_err());
    }
}
