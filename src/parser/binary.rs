//! Binary attachments: the [`Binary`] type, which turns into a placeholder plus an attachment
//! when our encoder serializes it, and back into bytes when a handler deserializes a packet.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeStruct, Serializer};

thread_local! {
    /// Attachments collected by the encoder while it serializes one packet.
    static OUTGOING: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    /// Attachments of the packet a handler is deserializing.
    static INCOMING: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

/// Binary data inside an event's arguments.
///
/// Serialized by this crate's encoder, it becomes a Socket.IO attachment (a `_placeholder`
/// in the JSON and a binary frame beside it), so a client receives an `ArrayBuffer`/`Buffer`/
/// `bytes`. Deserialized from a received packet, it takes the attachment its placeholder
/// names. Outside the encoder it serializes as plain bytes.
///
/// ```
/// # use tower_socketio::Binary;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Upload { name: String, data: Binary }
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Binary(pub Bytes);

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Binary({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Binary {
    fn from(b: Bytes) -> Self {
        Binary(b)
    }
}
impl From<Vec<u8>> for Binary {
    fn from(b: Vec<u8>) -> Self {
        Binary(Bytes::from(b))
    }
}
impl From<&'static [u8]> for Binary {
    fn from(b: &'static [u8]) -> Self {
        Binary(Bytes::from_static(b))
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(&self.0, s)
    }
}

/// Serializes binary data: a placeholder (with the bytes handed to the encoder as an
/// attachment) while this crate's encoder collects attachments, plain bytes otherwise.
pub(crate) fn serialize_bytes<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    let num = OUTGOING.with(|o| {
        o.borrow_mut().as_mut().map(|atts| {
            atts.push(bytes.clone());
            atts.len() - 1
        })
    });
    match num {
        Some(num) => {
            let mut st = s.serialize_struct("Placeholder", 2)?;
            st.serialize_field("_placeholder", &true)?;
            st.serialize_field("num", &num)?;
            st.end()
        }
        None => s.serialize_bytes(bytes),
    }
}

/// Attachment `num` of the packet being deserialized, if there is one.
pub(crate) fn attachment(num: usize) -> Option<Bytes> {
    INCOMING.with(|i| i.borrow().get(num).cloned())
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BinaryVisitor)
    }
}

struct BinaryVisitor;

impl<'de> Visitor<'de> for BinaryVisitor {
    type Value = Binary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("binary data or an attachment placeholder")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(Binary(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary(Bytes::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Binary(Bytes::from(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Binary, A::Error> {
        let mut placeholder = false;
        let mut num: Option<u64> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "_placeholder" => placeholder = map.next_value()?,
                "num" => num = Some(map.next_value()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let (true, Some(num)) = (placeholder, num) else {
            return Err(de::Error::custom("not an attachment placeholder"));
        };
        usize::try_from(num)
            .ok()
            .and_then(attachment)
            .map(Binary)
            .ok_or_else(|| de::Error::custom("placeholder names no attachment"))
    }
}

/// Runs `f` (a serialization) and returns the attachments that [`Binary`] values handed in.
pub(crate) fn collect_attachments<R>(f: impl FnOnce() -> R) -> (R, Vec<Bytes>) {
    let previous = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let r = f();
    let atts = OUTGOING.with(|o| std::mem::replace(&mut *o.borrow_mut(), previous));
    (r, atts.unwrap_or_default())
}

/// Runs `f` (a deserialization) with `attachments` visible to [`Binary`] placeholders.
pub(crate) fn with_attachments<R>(attachments: &[Bytes], f: impl FnOnce() -> R) -> R {
    if attachments.is_empty() {
        return f();
    }
    let previous = INCOMING.with(|i| std::mem::replace(&mut *i.borrow_mut(), attachments.to_vec()));
    let r = f();
    INCOMING.with(|i| *i.borrow_mut() = previous);
    r
}

/// Checks that every placeholder in `json` is `{"_placeholder":true,"num":N}` with `N` an
/// integer below `count`. Nesting is bounded by serde_json's recursion limit, so a hostile
/// document cannot overflow the stack.
pub(crate) fn check_placeholders(json: &str, count: usize) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(json);
    de::DeserializeSeed::deserialize(Scan { count }, &mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

#[derive(Clone, Copy)]
struct Scan {
    count: usize,
}

enum Scanned {
    True,
    Num(Option<u64>),
    Other,
}

impl<'de> de::DeserializeSeed<'de> for Scan {
    type Value = Scanned;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scanned, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan {
    type Value = Scanned;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scanned, E> {
        Ok(if v { Scanned::True } else { Scanned::Other })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scanned, E> {
        Ok(Scanned::Num(Some(v)))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Scanned, E> {
        Ok(Scanned::Num(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scanned, E> {
        Ok(Scanned::Num(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Scanned, E> {
        Ok(Scanned::Other)
    }
    fn visit_unit<E>(self) -> Result<Scanned, E> {
        Ok(Scanned::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scanned, A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(Scanned::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        let mut placeholder = false;
        let mut num = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let v = map.next_value_seed(self)?;
            match (&*key, v) {
                ("_placeholder", Scanned::True) => placeholder = true,
                ("num", Scanned::Num(n)) => num = Some(n),
                ("num", _) => num = Some(None),
                _ => {}
            }
        }
        if placeholder {
            match num {
                Some(Some(n)) if (n as u128) < self.count as u128 => {}
                _ => return Err(de::Error::custom("invalid attachment placeholder")),
            }
        }
        Ok(Scanned::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_checked() {
        let ok = r#"["ev",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]"#;
        assert!(check_placeholders(ok, 2).is_ok());
        assert!(check_placeholders(ok, 1).is_err());
        assert!(check_placeholders(r#"[{"_placeholder":true,"num":"splice"}]"#, 1).is_err());
        assert!(check_placeholders(r#"[{"_placeholder":true,"num":0.5}]"#, 1).is_err());
        assert!(check_placeholders(r#"[{"_placeholder":true}]"#, 1).is_err());
        assert!(check_placeholders(r#"[{"_placeholder":true,"num":-1}]"#, 1).is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check_placeholders(&deep, 1).is_err());
    }

    #[test]
    fn binary_roundtrip_through_placeholders() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct M {
            a: Binary,
            b: u8,
        }
        let m = M {
            a: Binary::from(vec![1, 2]),
            b: 3,
        };
        let (json, atts) = collect_attachments(|| serde_json::to_string(&m).unwrap());
        assert_eq!(json, r#"{"a":{"_placeholder":true,"num":0},"b":3}"#);
        assert_eq!(atts, vec![Bytes::from_static(&[1, 2])]);
        let back: M = with_attachments(&atts, || serde_json::from_str(&json).unwrap());
        assert_eq!(back, m);
    }
}
