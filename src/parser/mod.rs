//! Socket.IO v5 packets and the parser that turns them into Engine.IO frames and back.
//!
//! The parser knows nothing of sockets: it decodes what a client sent into a [`Packet`]
//! (reassembling binary attachments in a [`Decoder`]) and encodes outgoing packets into
//! [`Encoded`] frames, once, so a broadcast can queue the same frames to every receiver.
//! [`Parser`] is the one entry point; the JSON parser (the Socket.IO default) is behind it, and
//! other wire formats plug in as further variants without the rest of the crate noticing.

mod args;
mod binary;
mod json;
#[cfg(feature = "msgpack")]
mod msgpack;
mod protocol;
mod value;
#[cfg(any(feature = "msgpack", feature = "redis", feature = "postgres"))]
mod values;

use bytes::Bytes;
use serde::Serialize;

use crate::engine::{Frame, Str};

pub use args::Args;
pub(crate) use args::deserialize_values;
pub use binary::Binary;
pub use protocol::SocketIoProtocol;
pub(crate) use protocol::query_to_auth;
pub use value::Value;

/// The packet types of Socket.IO v5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// 0: join a namespace / the server's acceptance.
    Connect,
    /// 1: leave a namespace.
    Disconnect,
    /// 2: an event.
    Event,
    /// 3: an acknowledgement.
    Ack,
    /// 4: the server refused a namespace.
    ConnectError,
    /// 5: an event with binary attachments.
    BinaryEvent,
    /// 6: an acknowledgement with binary attachments.
    BinaryAck,
}

impl PacketKind {
    fn from_digit(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }
}

/// A packet received from a client, attachments included.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The namespace, `/` by default.
    pub ns: Str,
    /// The ack id, if the packet carries one.
    pub id: Option<u64>,
    /// What the packet says.
    pub body: Body,
}

/// The content of a received [`Packet`].
#[derive(Debug, Clone)]
pub enum Body {
    /// CONNECT, with the client's auth payload (a JSON object) if it sent one.
    Connect(Option<Str>),
    /// DISCONNECT.
    Disconnect,
    /// EVENT or BINARY_EVENT.
    Event {
        /// The event name.
        name: String,
        /// The arguments after the name.
        args: Args,
    },
    /// ACK or BINARY_ACK.
    Ack(Args),
}

/// Why a received packet was refused. Each one closes the client's connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Empty packet or unknown type.
    #[error("unknown packet type")]
    UnknownType,
    /// Malformed attachment count, namespace or ack id.
    #[error("malformed packet header")]
    Header,
    /// The JSON did not parse or does not fit the packet type.
    #[error("invalid payload: {0}")]
    Payload(String),
    /// An event named with a reserved name (`connect`, `disconnect`, `error`, ...).
    #[error("reserved event name")]
    ReservedEvent,
    /// More attachments or bytes than the limits allow.
    #[error("attachment limit exceeded")]
    TooManyAttachments,
    /// A text packet arrived while attachments were expected.
    #[error("text packet while attachments were pending")]
    UnexpectedText,
    /// A binary frame arrived while none was expected.
    #[error("binary frame without a pending packet")]
    UnexpectedBinary,
    /// A packet type only a server sends.
    #[error("packet type not accepted from a client")]
    NotFromClient,
}

/// Event names a client may not use: they name moments of the socket's life.
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "error",
    "newListener",
    "removeListener",
];

/// Limits on binary attachments, enforced while decoding, before any handler runs.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Attachments one packet may announce.
    pub max_attachments: usize,
    /// Bytes all attachments of one packet may take together.
    pub max_attachment_bytes: usize,
}

/// Reassembles packets from one client's frames.
#[derive(Debug)]
pub struct Decoder {
    parser: Parser,
    protocol: SocketIoProtocol,
    limits: DecodeLimits,
    /// Boxed: a decoder lives as long as its session, a partial packet only while its
    /// attachments arrive.
    partial: Option<Box<Partial>>,
}

#[derive(Debug)]
struct Partial {
    packet: Packet,
    expected: usize,
    bytes: usize,
}

impl Decoder {
    /// A decoder of the JSON parser with these limits.
    pub fn new(limits: DecodeLimits) -> Self {
        Parser::Json.decoder(limits)
    }

    /// This decoder for a client of the given protocol revision (v5 unless set).
    pub fn with_protocol(mut self, protocol: SocketIoProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_pending(&self) -> bool {
        self.partial.is_some()
    }

    /// Decodes a text frame. `Ok(None)` means the packet waits for binary attachments.
    pub fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, ParseError> {
        if self.partial.is_some() || self.parser != Parser::Json {
            return Err(ParseError::UnexpectedText);
        }
        let (packet, expected) = json::decode(text, &self.limits, self.protocol)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        self.partial = Some(Box::new(Partial {
            packet,
            expected,
            bytes: 0,
        }));
        Ok(None)
    }

    /// Decodes a binary frame: the next attachment of the pending packet.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, ParseError> {
        #[cfg(feature = "msgpack")]
        if self.parser == Parser::MsgPack {
            return msgpack::decode(&data, &self.limits).map(Some);
        }
        let Some(p) = self.partial.as_mut() else {
            return Err(ParseError::UnexpectedBinary);
        };
        p.bytes += data.len();
        if p.bytes > self.limits.max_attachment_bytes {
            self.partial = None;
            return Err(ParseError::TooManyAttachments);
        }
        let args = match &mut p.packet.body {
            Body::Event { args, .. } | Body::Ack(args) => args,
            _ => return Err(ParseError::UnexpectedBinary),
        };
        args.push_attachment(data);
        if args.attachments().len() < p.expected {
            return Ok(None);
        }
        Ok(self.partial.take().map(|p| p.packet))
    }
}

/// Frames of one encoded packet: its head frame (text for JSON, binary for msgpack), then
/// any binary attachments (JSON only).
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The packet's first frame.
    pub head: Frame,
    /// Its binary attachments, in order.
    pub attachments: Vec<Frame>,
}

impl Encoded {
    /// Number of frames.
    pub fn len(&self) -> usize {
        1 + self.attachments.len()
    }
    /// Always false: an encoded packet has at least its head frame.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The frames in order, cloned (each clone shares its buffer).
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        std::iter::once(self.head.clone()).chain(self.attachments.iter().cloned())
    }
}

/// Data could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("could not encode packet data: {0}")]
pub struct EncodeError(#[from] pub serde_json::Error);

/// An event serialized once, ready to be framed for any number of receivers (with or
/// without an ack id, with or without an extra trailing argument such as a recovery offset).
#[derive(Debug, Clone)]
pub struct EventPacket {
    /// The namespace.
    pub ns: Str,
    /// The event name.
    pub event: String,
    pub(crate) payload: Payload,
}

/// Serialized arguments, in the wire format of the parser that made them.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// JSON text of the arguments, comma-separated, without the surrounding brackets, and
    /// the attachments its placeholders stand for.
    Json {
        args: String,
        attachments: Vec<Bytes>,
    },
    /// msgpack encodings of the arguments, one after the other.
    #[cfg(feature = "msgpack")]
    MsgPack { args: Vec<u8>, count: u32 },
}

impl EventPacket {
    /// The arguments as JSON, binary data as arrays of bytes: what a cluster link or a log
    /// may need to look into.
    pub fn args_json(&self) -> Result<Vec<serde_json::Value>, EncodeError> {
        match &self.payload {
            Payload::Json { args, .. } => Ok(serde_json::from_str(&format!("[{args}]"))?),
            #[cfg(feature = "msgpack")]
            Payload::MsgPack { args, count } => msgpack::args_json(args, *count),
        }
    }
}

/// Arguments as JSON text (comma-separated, without the surrounding brackets) and the
/// attachments its placeholders name, as the JSON parser serializes them (`spread` as in
/// [`Parser::event`]): the starting point of formats that carry binary inline.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn json_args<T: Serialize + ?Sized>(
    data: &T,
    spread: bool,
) -> Result<(String, Vec<Bytes>), EncodeError> {
    json::serialize_args(data, spread)
}

/// The wire format of Socket.IO packets. The default is the JSON parser of the reference
/// implementation; client and server must use the same one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parser {
    /// The default parser: JSON text frames with binary attachments.
    #[default]
    Json,
    /// One msgpack binary frame per packet, binary data inline: npm's
    /// `socket.io-msgpack-parser` (feature `msgpack`).
    #[cfg(feature = "msgpack")]
    MsgPack,
}

impl Parser {
    /// A decoder for one client.
    pub fn decoder(&self, limits: DecodeLimits) -> Decoder {
        Decoder {
            parser: *self,
            protocol: SocketIoProtocol::V5,
            limits,
            partial: None,
        }
    }

    /// CONNECT reply: `{"sid": sid}`, plus `pid` when connection state recovery is on.
    pub fn connect(&self, ns: &str, sid: &str, pid: Option<&str>) -> Encoded {
        match self {
            Parser::Json => json::encode_connect(ns, sid, pid),
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => msgpack::encode_connect(ns, sid, pid),
        }
    }

    /// CONNECT reply for a client of the given protocol revision: v4 has no payload.
    pub fn connect_for(
        &self,
        protocol: SocketIoProtocol,
        ns: &str,
        sid: &str,
        pid: Option<&str>,
    ) -> Encoded {
        match (protocol, self) {
            (SocketIoProtocol::V4, Parser::Json) => json::encode_connect_v4(ns),
            _ => self.connect(ns, sid, pid),
        }
    }

    /// Connection refusal for a client of the given protocol revision: v4's ERROR packet
    /// carries `data`, or `message` when there is no data.
    pub fn connect_error_for(
        &self,
        protocol: SocketIoProtocol,
        ns: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Encoded {
        match (protocol, self) {
            (SocketIoProtocol::V4, Parser::Json) => json::encode_error_v4(ns, message, data),
            _ => self.connect_error(ns, message, data),
        }
    }

    /// CONNECT_ERROR with a message and optional data.
    pub fn connect_error(
        &self,
        ns: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Encoded {
        match self {
            Parser::Json => json::encode_connect_error(ns, message, data),
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => msgpack::encode_connect_error(ns, message, data),
        }
    }

    /// DISCONNECT.
    pub fn disconnect(&self, ns: &str) -> Encoded {
        match self {
            Parser::Json => json::encode_disconnect(ns),
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => msgpack::encode_disconnect(ns),
        }
    }

    /// EVENT (or BINARY_EVENT when `data` holds [`Binary`] values). With `spread`, `data`
    /// must serialize to an array whose elements become the event's arguments; otherwise
    /// `data` is the single argument.
    pub fn event<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
        id: Option<u64>,
        spread: bool,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => json::encode_data(ns, Some(event), data, id, spread),
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => {
                let p = self.event_packet(ns, event, data, spread)?;
                Ok(self.encode_event(&p, id, None))
            }
        }
    }

    /// Serializes an event once, for broadcasting.
    pub fn event_packet<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
        spread: bool,
    ) -> Result<EventPacket, EncodeError> {
        let payload = self.serialize_args(data, spread)?;
        Ok(EventPacket {
            ns: Str::from(ns),
            event: event.to_owned(),
            payload,
        })
    }

    fn serialize_args<T: Serialize + ?Sized>(
        &self,
        data: &T,
        spread: bool,
    ) -> Result<Payload, EncodeError> {
        match self {
            Parser::Json => {
                let (args, attachments) = json::serialize_args(data, spread)?;
                Ok(Payload::Json { args, attachments })
            }
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => {
                let (args, count) = msgpack::serialize_args(data, spread)?;
                Ok(Payload::MsgPack { args, count })
            }
        }
    }

    /// Frames a serialized event, with an ack id and an extra trailing string argument (a
    /// recovery offset).
    pub fn encode_event(&self, p: &EventPacket, id: Option<u64>, extra: Option<&str>) -> Encoded {
        frame(&p.ns, Some(&p.event), &p.payload, id, extra)
    }

    /// ACK (or BINARY_ACK) answering `id`.
    pub fn ack<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        id: u64,
        data: &T,
        spread: bool,
    ) -> Result<Encoded, EncodeError> {
        match self {
            Parser::Json => json::encode_data(ns, None, data, Some(id), spread),
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => {
                let payload = self.serialize_args(data, spread)?;
                Ok(frame(ns, None, &payload, Some(id), None))
            }
        }
    }
}

fn frame(
    ns: &str,
    event: Option<&str>,
    payload: &Payload,
    id: Option<u64>,
    extra: Option<&str>,
) -> Encoded {
    match payload {
        Payload::Json { args, attachments } => {
            let extra = extra.map(|e| serde_json::Value::from(e).to_string());
            json::frame(ns, event, args, attachments, id, extra.as_deref())
        }
        #[cfg(feature = "msgpack")]
        Payload::MsgPack { args, count } => msgpack::frame(ns, event, args, *count, id, extra),
    }
}
