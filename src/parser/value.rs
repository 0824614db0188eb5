//! [`Value`]: any event argument, binary data included at any depth, object keys in order.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::binary::{attachment, serialize_bytes};

/// Any argument of an event or ack, as a client sent it: what `serde_json::Value` is for
/// JSON, plus binary data at any depth, with the keys of objects in the order they came.
///
/// Received with [`Data<Value>`](crate::Data) or [`DataArgs<Vec<Value>>`](crate::DataArgs),
/// a binary attachment (a `Buffer`/`ArrayBuffer`/`bytes` on the client) becomes
/// [`Value::Binary`] wherever it sits; emitted or sent as an ack, a [`Value::Binary`] goes
/// out as an attachment again, so a value received can be forwarded unchanged. It is a plain
/// serde type: with another serializer (a log, `serde_json::to_string`), binary data
/// serializes as bytes. Deserializing it reads the arguments straight from the packet, with
/// no intermediate value.
///
/// ```
/// # use tower_socketio::{DataArgs, SocketRef, Value};
/// // Any event goes back to its sender, with the arguments it had, binary data included.
/// fn forward(socket: SocketRef, event: tower_socketio::Event, DataArgs(args): DataArgs<Vec<Value>>) {
///     let _ = socket.emit_args(&event.0, &args);
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    /// `null` (also what `undefined` becomes on the wire).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// Binary data: an attachment on the wire (a msgpack `bin` with the msgpack parser).
    Binary(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object, its keys in the order they were received or inserted.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The number as `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }
    /// The number as `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    /// The number as `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The bytes, if this is binary data.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }
    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The entries in order, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
    /// The value of `key`, if this is an object that has it (the first one, should a client
    /// have sent the key twice).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
macro_rules! from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                Value::Number(n.into())
            }
        }
    )*};
}
from_number!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
impl From<f64> for Value {
    /// A number, or `null` for NaN and the infinities (as JSON has no such numbers).
    fn from(f: f64) -> Self {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Binary(b)
    }
}
impl From<super::Binary> for Value {
    fn from(b: super::Binary) -> Self {
        Value::Binary(b.0)
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}
impl From<serde_json::Value> for Value {
    /// The same value; JSON holds no binary data, so none comes out.
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Binary(b) => serialize_bytes(b, s),
            Value::Array(a) => s.collect_seq(a),
            Value::Object(o) => {
                let mut m = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Binary(Bytes::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // A hostile length prefix must not allocate: cap the hint.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // In a binary packet, `{"_placeholder":true,"num":N}` stands for attachment N (the
        // decoder has checked every placeholder's number against the attachments). Those two
        // keys are held aside without allocating, so a placeholder costs no object; any other
        // object gets them back in their places.
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        let mut held: [Option<(usize, Value)>; 2] = [None, None];
        let mut count = 0;
        while let Some(k) = map.next_key_seed(Key)? {
            let v: Value = map.next_value()?;
            let slot = match &*k {
                "_placeholder" => Some(0),
                "num" => Some(1),
                _ => None,
            };
            match slot {
                Some(i) if held[i].is_none() => held[i] = Some((count, v)),
                _ => out.push((k.into_owned(), v)),
            }
            count += 1;
        }
        if let [Some((_, Value::Bool(true))), Some((_, Value::Number(n)))] = &held {
            if let Some(bytes) = n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(attachment)
            {
                return Ok(Value::Binary(bytes));
            }
        }
        let [a, b] = held;
        let mut back: Vec<(usize, &str, Value)> = Vec::new();
        if let Some((i, v)) = a {
            back.push((i, "_placeholder", v));
        }
        if let Some((i, v)) = b {
            back.push((i, "num", v));
        }
        back.sort_by_key(|(i, _, _)| *i);
        for (i, k, v) in back {
            out.insert(i.min(out.len()), (k.to_owned(), v));
        }
        Ok(Value::Object(out))
    }
}

/// An object key: a string, or (with msgpack, whose maps may have other keys) a number or
/// boolean written as text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        std::str::from_utf8(v)
            .map(|s| Cow::Owned(s.to_owned()))
            .map_err(|_| E::custom("object key is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::binary::{collect_attachments, with_attachments};

    #[test]
    fn keeps_binary_and_key_order() {
        let v = Value::Object(vec![
            ("z".into(), Value::from(1)),
            (
                "a".into(),
                Value::Array(vec![
                    Value::Binary(Bytes::from_static(b"\x00\x1e")),
                    Value::Null,
                ]),
            ),
        ]);
        let (json, atts) = collect_attachments(|| serde_json::to_string(&v).unwrap());
        assert_eq!(json, r#"{"z":1,"a":[{"_placeholder":true,"num":0},null]}"#);
        let back: Value = with_attachments(&atts, || serde_json::from_str(&json).unwrap());
        assert_eq!(back, v);
        // Outside a packet, a placeholder is just an object, and bytes are bytes.
        let plain: Value = serde_json::from_str(&json).unwrap();
        assert!(
            plain.get("a").unwrap().as_array().unwrap()[0]
                .get("num")
                .is_some()
        );
        assert_eq!(
            serde_json::to_string(&Value::from(Bytes::from_static(b"\x01"))).unwrap(),
            "[1]"
        );
    }

    #[test]
    fn placeholder_keys_keep_their_place_in_other_objects() {
        let atts = [Bytes::from_static(b"x")];
        let json = r#"{"a":1,"num":2,"b":3,"_placeholder":false,"c":4}"#;
        let v: Value = with_attachments(&atts, || serde_json::from_str(json).unwrap());
        let (text, _) = collect_attachments(|| serde_json::to_string(&v).unwrap());
        assert_eq!(text, json);
        let v: Value = with_attachments(&atts, || {
            serde_json::from_str(r#"[{"num":0,"_placeholder":true},{"_placeholder":true,"num":1}]"#)
                .unwrap()
        });
        assert_eq!(v.as_array().unwrap()[0], Value::Binary(atts[0].clone()));
        // A placeholder naming no attachment stays an object.
        assert!(v.as_array().unwrap()[1].get("num").is_some());
    }

    #[test]
    fn numbers_and_conversions() {
        let v: Value =
            serde_json::from_str(r#"[-1, 18446744073709551615, 1.5, "s", true]"#).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a[0].as_i64(), Some(-1));
        assert_eq!(a[1].as_u64(), Some(u64::MAX));
        assert_eq!(a[2].as_f64(), Some(1.5));
        assert_eq!(a[3].as_str(), Some("s"));
        assert_eq!(a[4].as_bool(), Some(true));
        assert_eq!(Value::from(f64::NAN), Value::Null);
        let j = serde_json::json!({"b": 1, "a": [null]});
        assert_eq!(serde_json::to_value(Value::from(j.clone())).unwrap(), j);
    }
}
