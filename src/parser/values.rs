//! Events as msgpack values: the form other servers of a cluster exchange them in (the
//! Node.js Redis adapter's packets carry `[event, ...args]` with binary inline).

use bytes::Bytes;
use rmpv::Value;

use super::{EncodeError, EventPacket, Parser, Payload};
use crate::engine::Str;

/// Deepest nesting accepted when walking values: every walk here recurses.
const MAX_DEPTH: usize = 128;

fn err(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(<serde_json::Error as serde::ser::Error>::custom(e))
}

impl EventPacket {
    /// The arguments as msgpack values, binary inline.
    pub fn args_values(&self) -> Result<Vec<Value>, EncodeError> {
        match &self.payload {
            Payload::Json { args, attachments } => {
                let json: Vec<serde_json::Value> = serde_json::from_str(&format!("[{args}]"))?;
                json.iter()
                    .map(|v| json_to_value(v, attachments, 0))
                    .collect()
            }
            #[cfg(feature = "msgpack")]
            Payload::MsgPack { args, count } => {
                let mut rd = args.as_slice();
                (0..*count)
                    .map(|_| {
                        rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH).map_err(err)
                    })
                    .collect()
            }
        }
    }

    /// An event from msgpack values, serialized for `parser`.
    pub fn from_values(
        parser: Parser,
        ns: &str,
        event: &str,
        args: &[Value],
    ) -> Result<EventPacket, EncodeError> {
        let payload = match parser {
            Parser::Json => {
                let mut attachments = Vec::new();
                let mut text = String::new();
                for (i, v) in args.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    let json = value_to_json(v, &mut attachments, 0)?;
                    text.push_str(&serde_json::to_string(&json)?);
                }
                Payload::Json {
                    args: text,
                    attachments,
                }
            }
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => {
                let mut buf = Vec::new();
                for v in args {
                    rmpv::encode::write_value(&mut buf, v).map_err(err)?;
                }
                Payload::MsgPack {
                    args: buf,
                    count: args.len() as u32,
                }
            }
        };
        Ok(EventPacket {
            ns: Str::from(ns),
            event: event.to_owned(),
            payload,
        })
    }
}

/// JSON to msgpack, placeholders replaced by the attachments they name.
fn json_to_value(
    v: &serde_json::Value,
    atts: &[Bytes],
    depth: usize,
) -> Result<Value, EncodeError> {
    if depth > MAX_DEPTH {
        return Err(err("value nested too deeply"));
    }
    Ok(match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| json_to_value(v, atts, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(o) => {
            let placeholder = o.get("_placeholder") == Some(&serde_json::Value::Bool(true));
            match o.get("num").and_then(serde_json::Value::as_u64) {
                Some(n) if placeholder => {
                    let b = atts
                        .get(n as usize)
                        .ok_or_else(|| err("placeholder names no attachment"))?;
                    Value::Binary(b.to_vec())
                }
                _ => Value::Map(
                    o.iter()
                        .map(|(k, v)| {
                            Ok((Value::from(k.as_str()), json_to_value(v, atts, depth + 1)?))
                        })
                        .collect::<Result<_, EncodeError>>()?,
                ),
            }
        }
    })
}

/// msgpack to JSON, binary turned into placeholders and attachments.
fn value_to_json(
    v: &Value,
    atts: &mut Vec<Bytes>,
    depth: usize,
) -> Result<serde_json::Value, EncodeError> {
    if depth > MAX_DEPTH {
        return Err(err("value nested too deeply"));
    }
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => serde_json::Value::from(u),
            (None, Some(s)) => serde_json::Value::from(s),
            _ => serde_json::Value::Null,
        },
        Value::F32(f) => serde_json::Value::from(f64::from(*f)),
        Value::F64(f) => serde_json::Value::from(*f),
        Value::String(s) => serde_json::Value::from(s.as_str().unwrap_or_default()),
        Value::Binary(b) => {
            atts.push(Bytes::copy_from_slice(b));
            serde_json::json!({ "_placeholder": true, "num": atts.len() - 1 })
        }
        Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .map(|v| value_to_json(v, atts, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let mut o = serde_json::Map::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
                    other => other.to_string(),
                };
                o.insert(key, value_to_json(v, atts, depth + 1)?);
            }
            serde_json::Value::Object(o)
        }
        Value::Ext(_, _) => serde_json::Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Binary;

    #[test]
    fn json_packets_roundtrip_through_values() {
        let p = Parser::Json
            .event_packet(
                "/",
                "ev",
                &(
                    1,
                    "a",
                    Binary::from(vec![1u8, 2]),
                    serde_json::json!({"b": [true]}),
                ),
                true,
            )
            .expect("packet");
        let values = p.args_values().expect("values");
        assert_eq!(values[2], Value::Binary(vec![1, 2]));
        let back = EventPacket::from_values(Parser::Json, "/", "ev", &values).expect("back");
        let enc = Parser::Json.encode_event(&back, None, None);
        let crate::engine::Frame::Text(t) = &enc.head else {
            panic!("binary head")
        };
        assert_eq!(
            t.as_str(),
            r#"451-["ev",1,"a",{"_placeholder":true,"num":0},{"b":[true]}]"#
        );
        assert_eq!(enc.attachments.len(), 1);
    }
}
