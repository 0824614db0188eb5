//! The arguments of a received event or ack, kept as the JSON text they arrived in.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, SeqAccess, Visitor};

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
        match &self.repr {
            Repr::Json { text, ranges } if ranges.len() < 2 => {
                let raw = ranges
                    .first()
                    .and_then(|&(a, b)| text.as_str().get(a as usize..b as usize))
                    .unwrap_or("null");
                with_attachments(&self.attachments, || serde_json::from_str(raw))
            }
            #[cfg(feature = "msgpack")]
            Repr::MsgPack(values) if values.len() < 2 => {
                from_msgpack(values.first().cloned().unwrap_or(rmpv::Value::Nil))
            }
            _ => self.deserialize_list(),
        }
    }

    /// Deserializes the whole argument list as one sequence, whatever its length: into a
    /// tuple of exactly that many elements (`()` for none, `(T,)` for one), or a `Vec`.
    /// So `f()`, `f(null)`, `f([1, 2])` and `f(1, 2)` stay apart. [`Binary`](super::Binary)
    /// and [`Value`](super::Value) values take their attachments.
    pub fn deserialize_list<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.repr {
            Repr::Json { text, ranges } => with_attachments(&self.attachments, || {
                T::deserialize(ListDe {
                    text: text.as_str(),
                    ranges,
                })
            }),
            #[cfg(feature = "msgpack")]
            Repr::MsgPack(values) => {
                if values.is_empty() {
                    // An empty list is also `()`, which msgpack's `[]` would not give.
                    return T::deserialize(ListDe {
                        text: "",
                        ranges: &[],
                    });
                }
                from_msgpack(rmpv::Value::Array(values.clone()))
            }
        }
    }

    /// Deserializes argument `i` alone (`null` when there is no such argument).
    pub fn deserialize_nth<T: DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        #[cfg(feature = "msgpack")]
        if let Repr::MsgPack(values) = &self.repr {
            return from_msgpack(values.get(i).cloned().unwrap_or(rmpv::Value::Nil));
        }
        let raw = self.raw(i).unwrap_or("null");
        with_attachments(&self.attachments, || serde_json::from_str(raw))
    }
}

/// Deserializes a list of JSON values as [`Args::deserialize_list`] does a packet's: as one
/// sequence of exactly that length (`()` for none).
pub(crate) fn deserialize_values<T: DeserializeOwned>(
    values: &[serde_json::Value],
) -> Result<T, serde_json::Error> {
    if values.is_empty() {
        return T::deserialize(ListDe {
            text: "",
            ranges: &[],
        });
    }
    // Its `deserialize_any` fails on elements left over, as `ListDe` does.
    T::deserialize(de::value::SeqDeserializer::<_, serde_json::Error>::new(
        values.iter().cloned(),
    ))
}

#[cfg(feature = "msgpack")]
fn from_msgpack<T: DeserializeOwned>(value: rmpv::Value) -> Result<T, serde_json::Error> {
    rmpv::ext::from_value(value).map_err(<serde_json::Error as de::Error>::custom)
}

/// The JSON arguments as one sequence, each element read straight from its slice of the
/// packet: no copy of the text, no intermediate value.
struct ListDe<'a> {
    text: &'a str,
    ranges: &'a [(u32, u32)],
}

impl ListDe<'_> {
    fn too_many(&self, read: usize) -> serde_json::Error {
        de::Error::invalid_length(self.ranges.len(), &ExpectedLen(read))
    }
}

struct ExpectedLen(usize);

impl de::Expected for ExpectedLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} argument(s)", self.0)
    }
}

impl<'de> de::Deserializer<'de> for ListDe<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let mut seq = ListSeq {
            text: self.text,
            ranges: self.ranges.iter(),
            read: 0,
        };
        let value = visitor.visit_seq(&mut seq)?;
        if seq.ranges.len() > 0 {
            return Err(self.too_many(seq.read));
        }
        Ok(value)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.ranges.is_empty() {
            visitor.visit_unit()
        } else {
            Err(self.too_many(0))
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct ListSeq<'a> {
    text: &'a str,
    ranges: std::slice::Iter<'a, (u32, u32)>,
    read: usize,
}

impl<'a> SeqAccess<'a> for ListSeq<'a> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some(&(a, b)) = self.ranges.next() else {
            return Ok(None);
        };
        let raw = self.text.get(a as usize..b as usize).unwrap_or("null");
        let mut de = serde_json::Deserializer::from_str(raw);
        let v = seed.deserialize(&mut de)?;
        de.end()?;
        self.read += 1;
        Ok(Some(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.ranges.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(payload: &str) -> Args {
        let text = format!("[{payload}]");
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text).unwrap();
        let base = text.as_ptr() as usize;
        let ranges = items
            .iter()
            .map(|r| {
                let start = r.get().as_ptr() as usize - base;
                (start as u32, (start + r.get().len()) as u32)
            })
            .collect();
        Args::new(Str::from(text), ranges)
    }

    #[test]
    fn lists_keep_their_shape() {
        type V = Vec<serde_json::Value>;
        assert_eq!(args("").deserialize_list::<V>().unwrap().len(), 0);
        args("").deserialize_list::<()>().unwrap();
        assert!(args("null").deserialize_list::<()>().is_err());
        assert_eq!(
            args("null").deserialize_list::<V>().unwrap(),
            vec![serde_json::Value::Null]
        );
        let one: (Vec<u8>,) = args("[1,2]").deserialize_list().unwrap();
        assert_eq!(one.0, vec![1, 2]);
        assert!(args("[1,2]").deserialize_list::<(u8, u8)>().is_err());
        assert_eq!(args("1,2").deserialize_list::<(u8, u8)>().unwrap(), (1, 2));
        assert!(args("1,2").deserialize_list::<(u8,)>().is_err());
        assert!(args("1").deserialize_list::<(u8, u8)>().is_err());
        // The same from JSON values (server-side events).
        let vals = [serde_json::json!(1), serde_json::json!(2)];
        assert_eq!(deserialize_values::<(u8, u8)>(&vals).unwrap(), (1, 2));
        assert!(deserialize_values::<(u8,)>(&vals).is_err());
        deserialize_values::<()>(&[]).unwrap();
        assert!(deserialize_values::<()>(&vals[..1]).is_err());
        // The merging form, for comparison.
        assert_eq!(args("1,2").deserialize::<Vec<u8>>().unwrap(), vec![1, 2]);
        assert_eq!(args("[1,2]").deserialize::<Vec<u8>>().unwrap(), vec![1, 2]);
    }
}
