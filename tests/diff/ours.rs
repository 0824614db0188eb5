//! Our side of the differential harness: the behaviour of `tests/clients/diff/server.mjs`
//! written with tower-socketio.
//!
//! Engine.IO: every message is echoed, except `observe` (answered `observing`; the session
//! then gets `closed:<reason>` for every other session's close) and `close` (the server closes the
//! session). Socket.IO: namespaces `/` and `/second` greet with `welcome`, echo `echo` (and
//! ack it), ack `ack`, send fixed binary for `bin`, leave on `bye`; their disconnects are
//! reported to `/observer` as `gone(nsp, reason)`; `/forbidden` refuses every connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use tower_socketio::engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, EngineLayer, Frame, Gate, Message, Session,
};
use tower_socketio::{
    AckSender, Binary, ConnectRejection, DataArgs, DisconnectReason, Event, SocketIo, SocketRef,
};

use super::Config;
use crate::common::{self, TestServer};

/// Serves our side for `config`.
pub async fn serve(config: &Config) -> TestServer {
    let ms = Duration::from_millis;
    if !config.sio {
        let engine_config = EngineConfig::builder()
            .ping_interval(ms(config.ping_interval))
            .ping_timeout(ms(config.ping_timeout))
            .upgrade_timeout(ms(config.upgrade_timeout))
            .max_payload(config.max_payload)
            .allow_eio3(config.allow_eio3)
            .build();
        let engine = Engine::new(Observed::default(), engine_config);
        return common::serve_layer(EngineLayer::new(engine)).await;
    }
    let mut builder = SocketIo::builder()
        .ping_interval(ms(config.ping_interval))
        .ping_timeout(ms(config.ping_timeout))
        .upgrade_timeout(ms(config.upgrade_timeout))
        .max_payload(config.max_payload)
        .allow_eio3(config.allow_eio3);
    if config.msgpack {
        #[cfg(feature = "msgpack")]
        {
            builder = builder.parser(tower_socketio::parser::Parser::MsgPack);
        }
        #[cfg(not(feature = "msgpack"))]
        panic!("the msgpack cases need the msgpack feature");
    }
    let (layer, io) = builder.build_layer();
    for nsp in ["/", "/second"] {
        let io2 = io.clone();
        io.ns(nsp, move |socket: SocketRef| main(socket, io2.clone()));
    }
    io.ns("/observer", |_: SocketRef| {});
    io.ns("/forbidden", |_: SocketRef| {}).with(|| {
        Err::<(), _>(
            ConnectRejection::new("not allowed").with_data(serde_json::json!({"code": 42})),
        )
    });
    common::serve_layer(layer).await
}

fn main(socket: SocketRef, io: SocketIo) {
    let _ = socket.emit("welcome", socket.ns());
    socket.on_fallback(
        |s: SocketRef,
         io: SocketIo,
         Event(event): Event,
         DataArgs(args): DataArgs<Vec<Val>>,
         ack: AckSender| {
            match event.as_str() {
                "echo" => {
                    let _ = s.emit_args("echo", &args);
                    let _ = ack.send_args(&args);
                }
                "ack" => {
                    let _ = ack.send_args(&args);
                }
                "bin" => {
                    let nested = Val::Obj(vec![(
                        "a".into(),
                        Val::Arr(vec![
                            Val::Json(0.into()),
                            Val::Obj(vec![("b".into(), Val::Bin(Binary::from(vec![4, 5])))]),
                        ]),
                    )]);
                    let _ = s.emit_args(
                        "bin",
                        &(
                            Binary::from(vec![1, 2, 3]),
                            nested,
                            [Binary::from(Vec::new())],
                        ),
                    );
                }
                "bye" => s.disconnect(),
                "shutdown" => {
                    tokio::spawn(async move { io.close(std::time::Duration::from_secs(2)).await });
                }
                _ => {}
            }
        },
    );
    socket.on_disconnect(move |s: SocketRef, r: DisconnectReason| {
        let io = io.clone();
        async move {
            if let Some(o) = io.of("/observer") {
                let _ = o.emit_args("gone", &(s.ns(), r.as_str())).await;
            }
        }
    });
}

/// Any argument value, binary at any depth included (as a `Binary` placeholder in JSON, as
/// bytes in msgpack).
#[derive(Debug, Clone)]
pub enum Val {
    Json(serde_json::Value),
    Arr(Vec<Val>),
    Obj(Vec<(String, Val)>),
    Bin(Binary),
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Json(v) => v.serialize(s),
            Val::Bin(b) => b.serialize(s),
            Val::Arr(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Val::Obj(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Json(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
        Ok(Val::Json(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
        Ok(Val::Json(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
        Ok(Val::Json(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val, E> {
        Ok(Val::Json(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Val, E> {
        Ok(Val::Json(v.into()))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Val, E> {
        Ok(Val::Bin(Binary::from(v.to_vec())))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Val, E> {
        Ok(Val::Bin(Binary::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Json(serde_json::Value::Null))
    }
    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Json(serde_json::Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        Val::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = a.next_element::<Val>()? {
            out.push(v);
        }
        Ok(Val::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = a.next_entry::<String, Val>()? {
            out.push((k, v));
        }
        // A placeholder: let `Binary` take its attachment.
        let is_placeholder = out.len() == 2
            && out.iter().any(|(k, v)| {
                k == "_placeholder" && matches!(v, Val::Json(serde_json::Value::Bool(true)))
            })
            && out
                .iter()
                .any(|(k, v)| k == "num" && matches!(v, Val::Json(n) if n.is_u64()));
        if is_placeholder {
            let num = out
                .iter()
                .find_map(|(k, v)| match (k.as_str(), v) {
                    ("num", Val::Json(n)) => n.as_u64(),
                    _ => None,
                })
                .unwrap_or(0);
            let b = Binary::deserialize(serde_json::json!({"_placeholder": true, "num": num}))
                .map_err(de::Error::custom)?;
            return Ok(Val::Bin(b));
        }
        Ok(Val::Obj(out))
    }
}

/// The Engine.IO handler: echo, `observe`, `close`.
#[derive(Default)]
struct Observed {
    observers: Mutex<Vec<Arc<Session<()>>>>,
}

impl EngineHandler for Observed {
    type Data = ();

    fn on_open(&self, _session: &Arc<Session<()>>) {}

    fn on_message(&self, session: &Arc<Session<()>>, msg: Message) -> Option<Gate> {
        match &msg {
            Message::Text(t) if t.as_str() == "observe" => {
                self.observers.lock().unwrap().push(session.clone());
                // Acknowledged, so a case knows it is registered before it closes others.
                let _ = session.send(Frame::message("observing"));
            }
            Message::Text(t) if t.as_str() == "close" => session.close(CloseReason::ServerClose),
            Message::Text(t) => {
                let _ = session.send(Frame::message(t));
            }
            Message::Binary(b) => {
                let _ = session.send(Frame::binary(b.clone()));
            }
        }
        None
    }

    fn on_close(&self, session: &Arc<Session<()>>, reason: CloseReason) {
        let mut obs = self.observers.lock().unwrap();
        if let Some(i) = obs.iter().position(|o| o.id() == session.id()) {
            obs.remove(i);
            return;
        }
        for o in obs.iter() {
            let _ = o.send(Frame::message(&format!("closed:{}", reason.as_str())));
        }
    }
}
