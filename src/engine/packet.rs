//! Engine.IO packets: what goes over the wire, decoded from and encoded to frames.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Text known to be UTF-8, backed by reference-counted [`Bytes`]: cloning it is cheap.
pub type Str = Utf8Bytes;

/// A message as the engine hands it to its handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A text message (the packet data after the `4` type).
    Text(Str),
    /// A binary message.
    Binary(Bytes),
}

/// A packet decoded from the client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    Close,
    /// `2`, or `2probe` when `probe` is set.
    Ping {
        probe: bool,
    },
    /// `3`, or `3probe`.
    Pong {
        probe: bool,
    },
    Message(Message),
    Upgrade,
    Noop,
}

/// A packet that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Empty packet.
    #[error("empty packet")]
    Empty,
    /// Unknown packet type or unexpected packet data.
    #[error("unknown packet type or data")]
    UnknownType,
    /// A `b` packet whose base64 did not decode.
    #[error("invalid base64 in binary packet")]
    Base64,
    /// Text that is not UTF-8.
    #[error("invalid UTF-8")]
    Utf8,
    /// A polling payload whose packet lengths do not add up (Engine.IO v3 framing).
    #[error("malformed payload framing")]
    Framing,
}

/// Decodes one text packet (`4hello`, `2probe`, `3`, ...).
pub(crate) fn decode_text(text: Str) -> Result<Incoming, DecodeError> {
    let s = text.as_str();
    let Some(&first) = s.as_bytes().first() else {
        return Err(DecodeError::Empty);
    };
    // Not `&s[1..]`: a first character of several bytes is no boundary (found by fuzzing).
    let rest = s.get(1..).unwrap_or_default();
    Ok(match first {
        b'4' => {
            let bytes = Bytes::from(text).slice(1..);
            // ok-free path: the byte at 0 is ASCII so the remainder is still UTF-8, and the
            // conversion re-checks it anyway.
            let msg = Str::try_from(bytes).map_err(|_| DecodeError::Utf8)?;
            Incoming::Message(Message::Text(msg))
        }
        b'1' if rest.is_empty() => Incoming::Close,
        b'2' if rest.is_empty() => Incoming::Ping { probe: false },
        b'2' if rest == "probe" => Incoming::Ping { probe: true },
        b'3' if rest.is_empty() => Incoming::Pong { probe: false },
        b'3' if rest == "probe" => Incoming::Pong { probe: true },
        b'5' if rest.is_empty() => Incoming::Upgrade,
        b'6' if rest.is_empty() => Incoming::Noop,
        _ => return Err(DecodeError::UnknownType),
    })
}

/// Splits a polling request body (packets joined by the record separator `\x1e`) and decodes
/// each packet. A `b` prefix marks base64 binary.
pub(crate) fn decode_payload(body: Bytes) -> Result<Vec<Incoming>, DecodeError> {
    let mut out = Vec::new();
    let mut start = 0;
    let n = body.len();
    while start <= n {
        let end = memchr_rs(&body[start..]).map_or(n, |i| start + i);
        let part = body.slice(start..end);
        out.push(decode_polling_packet(part)?);
        start = end + 1;
    }
    Ok(out)
}

fn memchr_rs(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == SEPARATOR)
}

fn decode_polling_packet(part: Bytes) -> Result<Incoming, DecodeError> {
    if part.first() == Some(&b'b') {
        let bin = STANDARD
            .decode(&part[1..])
            .map_err(|_| DecodeError::Base64)?;
        return Ok(Incoming::Message(Message::Binary(Bytes::from(bin))));
    }
    let text = Str::try_from(part).map_err(|_| DecodeError::Utf8)?;
    decode_text(text)
}

/// The record separator between packets of a polling payload.
pub(crate) const SEPARATOR: u8 = 0x1e;

/// An outgoing packet, encoded once; cloning it shares the buffer, so one frame can be
/// queued to many sessions.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A whole text packet, type character included (`4hello`, `2`, `6`).
    Text(Str),
    /// A binary message: raw bytes over WebSocket, `b` + base64 over polling.
    Binary(Bytes),
}

impl Frame {
    /// A text message: `4` followed by `text`.
    pub fn message(text: &str) -> Frame {
        let mut s = String::with_capacity(text.len() + 1);
        s.push('4');
        s.push_str(text);
        Frame::Text(Str::from(s))
    }
    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Frame {
        Frame::Binary(data.into())
    }
    pub(crate) const fn control(s: &'static str) -> Frame {
        Frame::Text(Str::from_static(s))
    }
    /// Bytes this frame takes in a polling response.
    pub(crate) fn polling_len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) => 1 + b.len().div_ceil(3) * 4,
        }
    }
    /// Appends this frame to a polling response body.
    pub(crate) fn write_polling(&self, out: &mut BytesMut) {
        match self {
            Frame::Text(s) => out.put_slice(s.as_bytes()),
            Frame::Binary(b) => {
                out.put_u8(b'b');
                let start = out.len();
                out.resize(start + b.len().div_ceil(3) * 4, 0);
                // ok: the buffer was sized for exactly this encoding.
                let n = STANDARD
                    .encode_slice(b, &mut out[start..])
                    .expect("buffer sized for base64"); // ok: sized above
                out.truncate(start + n);
            }
        }
    }
}

pub(crate) const PING: Frame = Frame::control("2");
pub(crate) const PONG: Frame = Frame::control("3");
pub(crate) const PONG_PROBE: Frame = Frame::control("3probe");
pub(crate) const NOOP: Frame = Frame::control("6");
pub(crate) const CLOSE: Frame = Frame::control("1");

/// A buffer that builds one text message in place, so an encoder can write straight behind
/// the engine's `4` type byte without another copy.
#[derive(Debug)]
pub struct MessageBuf(Vec<u8>);

impl MessageBuf {
    /// An empty message with room for `capacity` bytes of data.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut v = Vec::with_capacity(capacity + 1);
        v.push(b'4');
        MessageBuf(v)
    }
    /// Appends text.
    pub fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }
    /// The data written so far, type byte excluded.
    pub fn data(&self) -> &[u8] {
        &self.0[1..]
    }
    /// Finishes the frame; fails only if non-UTF-8 bytes were written.
    pub fn finish(self) -> Result<Frame, DecodeError> {
        Str::try_from(self.0)
            .map(Frame::Text)
            .map_err(|_| DecodeError::Utf8)
    }
}

// Encoders write a packet in many small pieces (a quote, a key, a colon): these must inline
// to a plain append, as `Vec<u8>`'s do.
impl io::Write for MessageBuf {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Fuzzing entry point, not an API: decodes `body` as a polling POST body of Engine.IO v4,
/// and of v3 as text and as binary, returning the packet counts (or the errors).
#[doc(hidden)]
pub fn fuzz_decode_payload(body: &[u8]) -> [Result<usize, DecodeError>; 3] {
    let body = Bytes::copy_from_slice(body);
    [
        decode_payload(body.clone()).map(|p| p.len()),
        super::v3::decode_text_payload(body.clone()).map(|p| p.len()),
        super::v3::decode_binary_payload(body).map(|p| p.len()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Incoming, DecodeError> {
        decode_text(Str::from(s))
    }

    #[test]
    fn decodes_control_packets() {
        assert_eq!(text("2probe"), Ok(Incoming::Ping { probe: true }));
        assert_eq!(text("3"), Ok(Incoming::Pong { probe: false }));
        assert_eq!(text("5"), Ok(Incoming::Upgrade));
        assert_eq!(text("1"), Ok(Incoming::Close));
        assert_eq!(text(""), Err(DecodeError::Empty));
        assert_eq!(text("9"), Err(DecodeError::UnknownType));
        assert_eq!(text("3x"), Err(DecodeError::UnknownType));
        assert_eq!(text("é"), Err(DecodeError::UnknownType));
    }

    #[test]
    fn decodes_payload() {
        let p = decode_payload(Bytes::from_static(b"4hello\x1ebAQID\x1e4\xc3\xa9")).unwrap();
        assert_eq!(
            p,
            vec![
                Incoming::Message(Message::Text(Str::from("hello"))),
                Incoming::Message(Message::Binary(Bytes::from_static(&[1, 2, 3]))),
                Incoming::Message(Message::Text(Str::from("é"))),
            ]
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"abc")),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"b!!")),
            Err(DecodeError::Base64)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"4\xff")),
            Err(DecodeError::Utf8)
        );
    }

    #[test]
    fn encodes_polling_binary() {
        let mut out = BytesMut::new();
        Frame::binary(vec![1u8, 2, 3, 4]).write_polling(&mut out);
        assert_eq!(&out[..], b"bAQIDBA==");
        assert_eq!(Frame::binary(vec![1u8, 2, 3, 4]).polling_len(), out.len());
    }
}
