//! Engine.IO v3 framing, for `socket.io-client` 2.x (the `allow_eio3` option).
//!
//! What differs from v4:
//! - polling payloads are `<length>:<packet>` repeated, the length counted in UTF-16 code
//!   units as JavaScript counts string length; binary messages in such a text payload are
//!   `b4<base64>`;
//! - a client that did not ask for base64 (`b64=1` at the handshake) gets polling responses
//!   holding binary in the binary payload format: per packet a `0` (text) or `1` (binary)
//!   byte, the length as one byte per decimal digit (values 0 to 9), `0xFF`, then the data
//!   (UTF-8 text, or the packet type byte `4` and the bytes), and may POST the same with
//!   `Content-Type: application/octet-stream`;
//! - WebSocket binary frames carry the packet type first (`0x04` and the bytes), both ways;
//!   a client that asked for base64 sends and receives `b4<base64>` text frames instead.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::packet::{DecodeError, Frame, Incoming, Message, Str, decode_text};

/// Digits of a length, at most: nothing longer fits in `max_payload` anyway.
const MAX_LEN_DIGITS: usize = 10;

/// The packet type byte of a binary message.
const MESSAGE: u8 = 4;

/// Bytes a frame may take in a v3 polling response, at most (length prefix included).
pub(crate) fn polling_len(frame: &Frame) -> usize {
    // `b4` + base64 is one byte longer than v4's `b` + base64; the text length in UTF-16
    // units never exceeds the byte length, so its digits are bounded by those of the bytes.
    let body = frame.polling_len() + 1;
    body + decimal_digits(body) + 1
}

fn decimal_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// String length as JavaScript counts it: UTF-16 code units.
pub(crate) fn js_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `b4` followed by the base64 of `data`: a binary message as v3 text.
pub(crate) fn base64_message(data: &[u8]) -> String {
    let mut s = String::with_capacity(2 + data.len().div_ceil(3) * 4);
    s.push_str("b4");
    STANDARD.encode_string(data, &mut s);
    s
}

/// A binary message as a v3 binary frame: the type byte `4`, then the data.
pub(crate) fn binary_message(data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(MESSAGE);
    b.put_slice(data);
    b.freeze()
}

/// Whether the frames need the binary payload format (when the client accepts it).
pub(crate) fn has_binary(frames: &[Frame]) -> bool {
    frames.iter().any(|f| matches!(f, Frame::Binary(_)))
}

/// Writes frames as a v3 text payload: `<length>:<packet>` each, binary as `b4<base64>`.
pub(crate) fn write_text_payload(frames: &[Frame], out: &mut BytesMut) {
    if frames.is_empty() {
        // What the reference parser writes for no packets; the client reads it as nothing.
        out.put_slice(b"0:");
        return;
    }
    for f in frames {
        match f {
            Frame::Text(s) => {
                out.put_slice(js_len(s).to_string().as_bytes());
                out.put_u8(b':');
                out.put_slice(s.as_bytes());
            }
            Frame::Binary(b) => {
                let text = base64_message(b);
                out.put_slice(text.len().to_string().as_bytes());
                out.put_u8(b':');
                out.put_slice(text.as_bytes());
            }
        }
    }
}

/// Writes frames as a v3 binary payload.
pub(crate) fn write_binary_payload(frames: &[Frame], out: &mut BytesMut) {
    for f in frames {
        let (kind, len) = match f {
            Frame::Text(s) => (0u8, s.len()),
            Frame::Binary(b) => (1u8, b.len() + 1),
        };
        out.put_u8(kind);
        for d in len.to_string().bytes() {
            out.put_u8(d - b'0');
        }
        out.put_u8(0xff);
        match f {
            Frame::Text(s) => out.put_slice(s.as_bytes()),
            Frame::Binary(b) => {
                out.put_u8(MESSAGE);
                out.put_slice(b);
            }
        }
    }
}

/// Decodes one v3 text packet: a `b<type><base64>` binary message, or a packet as in v4.
pub(crate) fn decode_text_packet(text: Str) -> Result<Incoming, DecodeError> {
    let s = text.as_str();
    if let Some(rest) = s.strip_prefix('b') {
        let Some(data) = rest.strip_prefix('4') else {
            return Err(DecodeError::UnknownType);
        };
        let bin = STANDARD.decode(data).map_err(|_| DecodeError::Base64)?;
        return Ok(Incoming::Message(Message::Binary(Bytes::from(bin))));
    }
    decode_text(text)
}

/// Decodes one v3 binary packet: the type byte `4`, then the message.
pub(crate) fn decode_binary_packet(data: Bytes) -> Result<Incoming, DecodeError> {
    match data.first() {
        Some(&MESSAGE) => Ok(Incoming::Message(Message::Binary(data.slice(1..)))),
        Some(_) => Err(DecodeError::UnknownType),
        None => Err(DecodeError::Empty),
    }
}

/// Decodes a v3 text payload (`<length>:<packet>` repeated, lengths in UTF-16 code units).
pub(crate) fn decode_text_payload(body: Bytes) -> Result<Vec<Incoming>, DecodeError> {
    let text = Str::try_from(body).map_err(|_| DecodeError::Utf8)?;
    let s = text.as_str();
    if s.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < s.len() {
        let colon = s[pos..]
            .bytes()
            .take(MAX_LEN_DIGITS + 1)
            .position(|c| c == b':')
            .ok_or(DecodeError::Framing)?;
        let digits = &s[pos..pos + colon];
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(DecodeError::Framing);
        }
        let units: usize = digits.parse().map_err(|_| DecodeError::Framing)?;
        let start = pos + colon + 1;
        // Walk `units` UTF-16 code units; a length that ends inside a character or past the
        // end of the body is malformed.
        let mut counted = 0;
        let mut end = start;
        let mut chars = s[start..].chars();
        while counted < units {
            let c = chars.next().ok_or(DecodeError::Framing)?;
            counted += c.len_utf16();
            end += c.len_utf8();
        }
        if counted != units {
            return Err(DecodeError::Framing);
        }
        if end > start {
            let part = Bytes::from(text.clone()).slice(start..end);
            let part = Str::try_from(part).map_err(|_| DecodeError::Utf8)?;
            out.push(decode_text_packet(part)?);
        }
        pos = end;
    }
    Ok(out)
}

/// Decodes a v3 binary payload (the body of an `application/octet-stream` POST).
pub(crate) fn decode_binary_payload(body: Bytes) -> Result<Vec<Incoming>, DecodeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let is_text = match body[pos] {
            0 => true,
            1 => false,
            _ => return Err(DecodeError::Framing),
        };
        pos += 1;
        let mut len = 0usize;
        let mut digits = 0;
        loop {
            let Some(&d) = body.get(pos) else {
                return Err(DecodeError::Framing);
            };
            pos += 1;
            if d == 0xff {
                break;
            }
            if d > 9 || digits == MAX_LEN_DIGITS {
                return Err(DecodeError::Framing);
            }
            digits += 1;
            len = len * 10 + usize::from(d);
        }
        if digits == 0 {
            return Err(DecodeError::Framing);
        }
        let end = pos.checked_add(len).ok_or(DecodeError::Framing)?;
        if end > body.len() {
            return Err(DecodeError::Framing);
        }
        let part = body.slice(pos..end);
        pos = end;
        out.push(if is_text {
            decode_text_packet(Str::try_from(part).map_err(|_| DecodeError::Utf8)?)?
        } else {
            decode_binary_packet(part)?
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Incoming {
        Incoming::Message(Message::Text(Str::from(s)))
    }

    fn bin(b: &'static [u8]) -> Incoming {
        Incoming::Message(Message::Binary(Bytes::from_static(b)))
    }

    #[test]
    fn js_lengths() {
        assert_eq!(js_len("abc"), 3);
        assert_eq!(js_len("é"), 1);
        assert_eq!(js_len("€"), 1);
        assert_eq!(js_len("😀"), 2);
    }

    #[test]
    fn text_payload_round_trip() {
        let frames = [
            Frame::message("hello"),
            Frame::control("2"),
            Frame::message("é😀"),
            Frame::binary(vec![1u8, 2, 3]),
        ];
        let mut out = BytesMut::new();
        write_text_payload(&frames, &mut out);
        assert_eq!(&out[..], "6:4hello1:24:4é😀6:b4AQID".as_bytes());
        assert!(out.len() <= frames.iter().map(polling_len).sum::<usize>());
        let back = decode_text_payload(out.freeze()).unwrap();
        assert_eq!(
            back,
            vec![
                msg("hello"),
                Incoming::Ping { probe: false },
                msg("é😀"),
                bin(&[1, 2, 3])
            ]
        );
        let mut out = BytesMut::new();
        write_text_payload(&[], &mut out);
        assert_eq!(&out[..], b"0:");
    }

    #[test]
    fn text_payload_errors() {
        for bad in [
            &b""[..],
            b"5:4hello",
            b"4hello",
            b":4",
            b"x:4",
            b"3:4h",
            b"99999999999:4",
            b"1:b4!!",
            b"3:b3AQ",
            b"2:\xff\xfe",
            // a length that ends inside a surrogate pair
            "2:4😀".as_bytes(),
        ] {
            assert!(
                decode_text_payload(Bytes::copy_from_slice(bad)).is_err(),
                "accepted {bad:?}"
            );
        }
        // zero-length packets are skipped, as the reference parser does
        assert_eq!(
            decode_text_payload(Bytes::from_static(b"0:2:4a")).unwrap(),
            vec![msg("a")]
        );
    }

    #[test]
    fn binary_payload_round_trip() {
        let frames = [Frame::message("hé"), Frame::binary(vec![9u8; 12])];
        let mut out = BytesMut::new();
        write_binary_payload(&frames, &mut out);
        let mut want = vec![0u8, 4, 0xff];
        want.extend_from_slice("4hé".as_bytes());
        want.extend_from_slice(&[1, 1, 3, 0xff, 4]);
        want.extend_from_slice(&[9; 12]);
        assert_eq!(&out[..], &want[..]);
        let back = decode_binary_payload(out.freeze()).unwrap();
        assert_eq!(back, vec![msg("hé"), bin(&[9; 12])]);
    }

    #[test]
    fn binary_payload_errors() {
        for bad in [
            &[2u8, 1, 0xff, b'4'][..],
            &[0, 0xff],
            &[0, 1],
            &[0, 5, 0xff, b'4'],
            &[0, 10, 0xff, b'4'],
            &[1, 1, 0xff, 3],
            &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0xff],
            &[0, 2, 0xff, b'4', 0xff],
        ] {
            assert!(
                decode_binary_payload(Bytes::copy_from_slice(bad)).is_err(),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn websocket_packets() {
        assert_eq!(
            decode_binary_packet(binary_message(&[7, 8])).unwrap(),
            bin(&[7, 8])
        );
        assert!(decode_binary_packet(Bytes::from_static(&[3, 1])).is_err());
        assert!(decode_binary_packet(Bytes::new()).is_err());
        assert_eq!(base64_message(&[1, 2, 3]), "b4AQID");
        assert_eq!(
            decode_text_packet(Str::from("b4AQID")).unwrap(),
            bin(&[1, 2, 3])
        );
        assert_eq!(decode_text_packet(Str::from("4x")).unwrap(), msg("x"));
    }
}
