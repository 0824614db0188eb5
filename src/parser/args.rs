//! The arguments of a received event or ack, kept as the JSON text they arrived in.

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::binary::with_attachments;
use crate::engine::Str;

/// The arguments of a received event or ack: raw JSON slices of the packet, plus its binary
/// attachments. Nothing is parsed until a handler asks for a type.
#[derive(Clone)]
pub struct Args {
    text: Str,
    ranges: Vec<(u32, u32)>,
    pub(crate) attachments: Vec<Bytes>,
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
            text,
            ranges,
            attachments: Vec::new(),
        }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The JSON text of argument `i`.
    pub fn raw(&self, i: usize) -> Option<&str> {
        let &(a, b) = self.ranges.get(i)?;
        self.text.as_str().get(a as usize..b as usize)
    }

    /// The binary attachments, in order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Deserializes the arguments: the only argument when there is one, all of them as a
    /// sequence (a tuple or a `Vec`) when there are several, and `null` when there are none.
    /// [`Binary`](super::Binary) values take their attachments.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        let text = self.text.as_str();
        with_attachments(&self.attachments, || match self.ranges.as_slice() {
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
        let raw = self.raw(i).unwrap_or("null");
        with_attachments(&self.attachments, || serde_json::from_str(raw))
    }
}
