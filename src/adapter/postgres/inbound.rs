//! What other servers (and emitters) send: applied to this server's side of the namespace,
//! answered on the same channel.

use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use tokio::sync::mpsc;

use super::link::LinkInner;
use super::{NsState, json_value, map};
use crate::adapter::{BroadcastOptions, LocalNamespace};
use crate::cluster::postgres as wire;
use crate::cluster::values::{ack_value, event_of, get, get_str, opts_from, rooms_of};
use crate::parser::EventPacket;

/// Handles one message that came on the channel of `ns`.
pub(super) fn on_message(link: &Arc<LinkInner>, ns: &Arc<NsState>, msg: &Value) {
    let uid = get_str(msg, "uid");
    if uid == Some(ns.uid.as_str()) {
        return;
    }
    // postgres-emitter 0.1 sends no `nsp`: its messages belong to the channel's namespace.
    if get_str(msg, "nsp").is_some_and(|nsp| nsp != ns.nsp) {
        return;
    }
    if let Some(uid) = uid.filter(|u| *u != wire::EMITTER_UID) {
        ns.nodes.touch(uid);
    }
    let Some(kind) = get(msg, "type").and_then(Value::as_u64) else {
        tracing::warn!(channel = %ns.channel, "cluster message without a type skipped");
        return;
    };
    let data = get(msg, "data");
    let request_id = data.and_then(|d| get_str(d, "requestId"));
    match kind {
        wire::INITIAL_HEARTBEAT => link.send(ns, ns.message(wire::HEARTBEAT, None)),
        wire::HEARTBEAT => {}
        wire::ADAPTER_CLOSE => {
            if let Some(uid) = uid {
                ns.nodes.remove(uid);
            }
        }
        wire::FETCH_SOCKETS_RESPONSE
        | wire::SERVER_SIDE_EMIT_RESPONSE
        | wire::BROADCAST_CLIENT_COUNT
        | wire::BROADCAST_ACK => {
            if let Some(id) = request_id {
                ns.pending.dispatch(id, msg.clone());
            }
        }
        _ => {
            let Some(local) = ns.local() else { return };
            let Some(data) = data else {
                tracing::warn!(channel = %ns.channel, kind, "cluster message without data skipped");
                return;
            };
            on_request(link, ns, &local, kind, data);
        }
    }
}

fn on_request(
    link: &Arc<LinkInner>,
    ns: &Arc<NsState>,
    local: &Arc<dyn LocalNamespace>,
    kind: u64,
    data: &Value,
) {
    let request_id = get_str(data, "requestId");
    let opts = || opts_from(get(data, "opts"));
    match kind {
        wire::BROADCAST => match request_id {
            Some(id) => on_broadcast_with_ack(link, ns, local, id, data),
            None => {
                let Some((event, args)) = get(data, "packet")
                    .and_then(event_of)
                    .map(|(_, e, a)| (e, a))
                else {
                    tracing::warn!(channel = %ns.channel, "broadcast without an event skipped");
                    return;
                };
                match EventPacket::from_values(local.parser(), &ns.nsp, &event, &args) {
                    Ok(p) => {
                        local.deliver(&local.parser().encode_event(&p, None, None), &opts());
                    }
                    Err(e) => tracing::warn!(error = %e, "remote broadcast skipped"),
                }
            }
        },
        wire::SOCKETS_JOIN | wire::SOCKETS_LEAVE => {
            let rooms = match get(data, "rooms") {
                Some(Value::String(s)) => s
                    .as_str()
                    .map(|s| vec![crate::adapter::Room::Owned(s.to_owned())])
                    .unwrap_or_default(),
                other => rooms_of(other),
            };
            local.rooms_op(&opts(), &rooms, kind == wire::SOCKETS_JOIN);
        }
        wire::DISCONNECT_SOCKETS => {
            let close = get(data, "close").and_then(Value::as_bool).unwrap_or(false);
            local.disconnect(&opts(), close);
        }
        wire::FETCH_SOCKETS => {
            let Some(id) = request_id else { return };
            let sockets = serde_json::to_value(local.socket_infos(&opts())).unwrap_or_default();
            let answer = map(vec![
                ("requestId", Value::from(id)),
                ("sockets", json_value(sockets)),
            ]);
            link.send(ns, ns.message(wire::FETCH_SOCKETS_RESPONSE, Some(answer)));
        }
        wire::SERVER_SIDE_EMIT => {
            let Some(Value::Array(packet)) = get(data, "packet") else {
                return;
            };
            let Some(event) = packet.first().and_then(Value::as_str) else {
                return;
            };
            let args: Vec<serde_json::Value> = packet[1..]
                .iter()
                .map(|v| rmpv::ext::from_value(v.clone()).unwrap_or_default())
                .collect();
            let Some(id) = request_id else {
                local.server_event(event, &args, None);
                return;
            };
            // The handler may answer later (async). No handler, or no answer: none is sent,
            // as with the reference server (the asking server stops waiting at its timeout).
            let answer = local.server_event_with_ack(event, &args);
            let (link, ns, id) = (link.clone(), ns.clone(), id.to_owned());
            tokio::spawn(async move {
                if let Some(answer) = answer.await {
                    let data = map(vec![
                        ("requestId", Value::from(id.as_str())),
                        ("packet", json_value(answer)),
                    ]);
                    link.send(&ns, ns.message(wire::SERVER_SIDE_EMIT_RESPONSE, Some(data)));
                }
            });
        }
        _ => tracing::debug!(channel = %ns.channel, kind, "unknown cluster message skipped"),
    }
}

/// Another server's broadcast with acks: emitted to our sockets, then our count (always,
/// even zero) and each ack as it comes.
fn on_broadcast_with_ack(
    link: &Arc<LinkInner>,
    ns: &Arc<NsState>,
    local: &Arc<dyn LocalNamespace>,
    id: &str,
    data: &Value,
) {
    let Some((_, event, args)) = get(data, "packet").and_then(event_of) else {
        return;
    };
    let opts_v = get(data, "opts");
    let opts: BroadcastOptions = opts_from(opts_v);
    let timeout = opts_v
        .and_then(|o| get(o, "flags"))
        .and_then(|f| get(f, "timeout"))
        .and_then(Value::as_u64)
        .map_or(link.config.requests_timeout, Duration::from_millis);
    let Ok(p) = EventPacket::from_values(local.parser(), &ns.nsp, &event, &args) else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = local.deliver_with_ack(&p, &opts, timeout, tx);
    let answer = map(vec![
        ("requestId", Value::from(id)),
        ("clientCount", Value::from(count as u64)),
    ]);
    link.send(ns, ns.message(wire::BROADCAST_CLIENT_COUNT, Some(answer)));
    let link = link.clone();
    let ns = ns.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        while let Some((_, result)) = rx.recv().await {
            let Ok(args) = result else { continue };
            let answer = map(vec![
                ("requestId", Value::from(id.as_str())),
                ("packet", ack_value(&args)),
            ]);
            link.send(&ns, ns.message(wire::BROADCAST_ACK, Some(answer)));
        }
    });
}
