//! Sockets as the dashboard reads them: `{id, clientId, transport, nsp, data, handshake,
//! rooms}`, with the handshake's `auth` left out as the reference does.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::time::js_string;
use crate::adapter::SocketInfo;
use crate::engine::TransportKind;
use crate::io::IoInner;
use crate::operators::BroadcastOperators;
use crate::socket::{Socket, SocketData};

/// The client id the dashboard groups sockets by: the first 12 characters of the
/// Engine.IO id.
pub(super) fn client_id(engine_id: &str) -> String {
    engine_id.chars().take(12).collect()
}

pub(super) fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Polling => "polling",
        _ => "websocket",
    }
}

/// The socket's data without the reference's private `_admin` entry; `{}` when it has none
/// (the dashboard cannot show `null`).
fn clean_data(data: Value) -> (Value, Option<Value>) {
    match data {
        Value::Object(mut m) => {
            let admin = m.remove("_admin");
            (Value::Object(m), admin)
        }
        Value::Null => (Value::Object(Map::new()), None),
        other => (other, None),
    }
}

/// The address the reference shows: `cf-connecting-ip`, else `x-forwarded-for`, else the
/// peer address.
fn address(headers: &Map<String, Value>, peer: Value) -> Value {
    headers
        .get("cf-connecting-ip")
        .or_else(|| headers.get("x-forwarded-for"))
        .cloned()
        .unwrap_or(peer)
}

/// A socket of this server.
pub(super) fn local_socket(socket: &Socket) -> Value {
    let h = socket.handshake();
    let headers: Map<String, Value> = h
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.into())))
        .collect();
    let query: Map<String, Value> = h
        .query
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let peer = h.address.map_or(Value::Null, |a| a.ip().to_string().into());
    let issued = h
        .issued
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (data, _) = clean_data(
        socket
            .extensions()
            .get::<SocketData>()
            .map_or(Value::Null, |d| d.0),
    );
    let rooms: Vec<String> = socket.rooms().into_iter().map(|r| r.into_owned()).collect();
    json!({
        "id": socket.id().as_str(),
        "clientId": client_id(socket.engine_id().as_str()),
        "transport": transport_name(socket.transport()),
        "nsp": socket.ns(),
        "data": data,
        "handshake": {
            "address": address(&headers, peer),
            "xdomain": headers.contains_key("origin"),
            "headers": headers,
            "query": query,
            "issued": issued,
            "secure": false,
            "time": js_string(h.issued),
            "url": h.url.to_string(),
        },
        "rooms": rooms,
    })
}

/// A socket of another server of the cluster, as its server described it.
pub(super) fn remote_socket(info: SocketInfo) -> Value {
    let (data, admin) = clean_data(info.data);
    let field = |k: &str| admin.as_ref().and_then(|a| a.get(k)).cloned();
    let mut handshake = match info.handshake {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    handshake.remove("auth");
    let headers = match handshake.get("headers") {
        Some(Value::Object(h)) => h.clone(),
        _ => Map::new(),
    };
    let peer = handshake.get("address").cloned().unwrap_or(Value::Null);
    handshake.insert("address".into(), address(&headers, peer));
    json!({
        "id": info.id,
        "clientId": field("clientId"),
        "transport": field("transport"),
        "nsp": info.ns,
        "data": data,
        "handshake": handshake,
        "rooms": info.rooms,
    })
}

/// Every socket of every namespace, cluster-wide; a namespace whose cluster query fails
/// contributes its local sockets.
pub(super) async fn all_sockets(io: &Arc<IoInner>) -> Value {
    let mut out = Vec::new();
    for ns in io.namespaces() {
        let local = ns.all_sockets();
        match BroadcastOperators::new(ns.clone()).fetch_sockets().await {
            Ok(infos) => {
                for info in infos {
                    match local.iter().find(|s| s.id().as_str() == info.id) {
                        Some(s) => out.push(local_socket(s)),
                        None => out.push(remote_socket(info)),
                    }
                }
            }
            Err(e) => {
                tracing::debug!(ns = ns.path(), error = %e, "admin UI: cluster socket list failed");
                out.extend(local.iter().map(|s| local_socket(s)));
            }
        }
    }
    Value::Array(out)
}
