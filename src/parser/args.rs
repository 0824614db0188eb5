//! The arguments of a received event or ack, kept as the JSON text they arrived in.

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::binary::with_attachments;
use crate::engine::Str;

/// The arguments of a received event or ack: raw JSON slices of the packet, plus its binary
/// attachments (or, with the msgpack parser, the decoded msgpack values). Nothing is
/// deserialized until a handler asks for a type.
#[derive(Clone)]
pub struct Args {
    repr: Repr,
    attachments: Vec<Bytes>,
}

#[derive(Clone)]
enum Repr {
    Json {
        text: Str,
        ranges: Vec<(u32, u32)>,
    },
    #[cfg(feature = "msgpack")]
    MsgPack(Vec<rmpv::Value>),
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).filter_map(|i| self.raw(i)))
            .finish()?;
        if !self.attachments.is_empty() {
            write!(f, " + {} attachments", self.attachments.len())?;
        }
        Ok(())
    }
}

impl Args {
    pub(crate) fn new(text: Str, ranges: Vec<(u32, u32)>) -> Self {
        Self {
            repr: Repr::Json { text, ranges },
            attachments: Vec::new(),
        }
    }

    #[cfg(feature = "msgpack")]
    pub(crate) fn msgpack(values: Vec<rmpv::Value>) -> Self {
        Self {
            repr: Repr::MsgPack(values),
            attachments: Vec::new(),
        }
    }

    /// The arguments of a serialized event, as a handler would receive them.
    pub(crate) fn from_event(p: &super::EventPacket) -> Self {
        match &p.payload {
            super::Payload::Json { args, attachments } => {
                let text = format!("[{args}]");
                let ranges = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(&text)
                    .map(|items| {
                        let base = text.as_ptr() as usize;
                        items
                            .iter()
                            .map(|r| {
                                let start = r.get().as_ptr() as usize - base;
                                (start as u32, (start + r.get().len()) as u32)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Self {
                    repr: Repr::Json {
                        text: Str::from(text),
                        ranges,
                    },
                    attachments: attachments.clone(),
                }
            }
            #[cfg(feature = "msgpack")]
            super::Payload::MsgPack { .. } => Self::msgpack(p.args_values().unwrap_or_default()),
        }
    }

    pub(crate) fn push_attachment(&mut self, data: Bytes) {
        self.attachments.push(data);
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Json { ranges, .. } => ranges.len(),
            #[cfg(feature = "msgpack")]
            Repr::MsgPack(v) => v.len(),
        }
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The JSON text of argument `i` (`None` with the msgpack parser).
    pub fn raw(&self, i: usize) -> Option<&str> {
        match &self.repr {
            Repr::Json { text, ranges } => {
                let &(a, b) = ranges.get(i)?;
                text.as_str().get(a as usize..b as usize)
            }
            #[cfg(feature = "msgpack")]
            Repr::MsgPack(_) => None,
        }
    }

    /// The binary attachments, in order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Deserializes the arguments: the only argument when there is one, all of them as a
    /// sequence (a tuple or a `Vec`) when there are several, and `null` when there are none.
    /// [`Binary`](super::Binary) values take their attachments.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        let (text, ranges) = match &self.repr {
            Repr::Json { text, ranges } => (text.as_str(), ranges),
            #[cfg(feature = "msgpack")]
            Repr::MsgPack(values) => {
                let value = match values.as_slice() {
                    [] => rmpv::Value::Nil,
                    [one] => one.clone(),
                    many => rmpv::Value::Array(many.to_vec()),
                };
                return rmpv::ext::from_value(value)
                    .map_err(<serde_json::Error as serde::de::Error>::custom);
            }
        };
        with_attachments(&self.attachments, || match ranges.as_slice() {
            [] => serde_json::from_str("null"),
            [(a, b)] => serde_json::from_str(&text[*a as usize..*b as usize]),
            [(a, _), .., (_, b)] => {
                let mut s = String::with_capacity((b - a) as usize + 2);
                s.push('[');
                s.push_str(&text[*a as usize..*b as usize]);
                s.push(']');
                serde_json::from_str(&s)
            }
        })
    }

    /// Deserializes argument `i` alone.
    pub fn deserialize_nth<T: DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        #[cfg(feature = "msgpack")]
        if let Repr::MsgPack(values) = &self.repr {
            let value = values.get(i).cloned().unwrap_or(rmpv::Value::Nil);
            return rmpv::ext::from_value(value)
                .map_err(<serde_json::Error as serde::de::Error>::custom);
        }
        let raw = self.raw(i).unwrap_or("null");
        with_attachments(&self.attachments, || serde_json::from_str(raw))
    }
}
