//! Connection state recovery across servers: sessions saved in Redis as Node saves them
//! (base64 msgpack `{sid, pid, rooms, data}` under `<session_key_prefix><pid>`, expiring
//! after the recovery window), taken back once (`GET` + `DEL` in one `MULTI`), and the
//! packets a client missed read back from the stream.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmpv::Value;

use super::link::LinkInner;
use crate::SocketData;
use crate::adapter::{LocalNamespace, PersistedSession, RestoredSession, Room};
use crate::cluster::redis_streams::{self as wire, Message, entries};
use crate::cluster::values;
use crate::engine::Sid;
use crate::extensions::Extensions;
use crate::parser::EventPacket;

/// Entries read per `XRANGE` while replaying.
const RANGE_COUNT: usize = 1000;

/// Saves a session for `ttl`. A failure is logged: the client then reconnects as a new
/// socket.
pub(super) async fn persist(link: &LinkInner, session: PersistedSession, ttl: Duration) {
    let key = format!("{}{}", link.config.session_key_prefix, session.pid.as_str());
    let mut conn = link.conn.clone();
    let result: redis::RedisResult<()> = redis::cmd("SET")
        .arg(&key)
        .arg(encode_session(&session))
        .arg("PX")
        .arg(ttl.as_millis().max(1) as u64)
        .query_async(&mut conn)
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "session not saved in redis; the client will not be recovered");
    }
}

/// A session as Node saves it: base64 msgpack `{sid, pid, rooms, data}`, `rooms` with the
/// socket's own id first.
fn encode_session(session: &PersistedSession) -> String {
    let sid = session.sid.as_str();
    let mut rooms = vec![Value::from(sid)];
    rooms.extend(session.rooms.iter().map(|r| Value::from(r.as_ref())));
    let data = session
        .data
        .get::<SocketData>()
        .and_then(|d| rmpv::ext::to_value(d.0).ok())
        .unwrap_or_else(|| Value::Map(Vec::new()));
    let encoded = values::encode(&wire::map(vec![
        ("sid", Value::from(sid)),
        ("pid", Value::from(session.pid.as_str())),
        ("rooms", Value::Array(rooms)),
        ("data", data),
    ]));
    BASE64.encode(encoded)
}

/// Takes back the session of `pid` and every broadcast to its rooms after `offset`, if the
/// session is still there and the entry at `offset` still is in the stream.
pub(super) async fn restore(
    link: &LinkInner,
    local: &dyn LocalNamespace,
    pid: &str,
    offset: &str,
) -> Option<RestoredSession> {
    if !wire::is_entry_id(offset) || Sid::parse(pid).is_none() {
        return None;
    }
    let key = format!("{}{pid}", link.config.session_key_prefix);
    let mut conn = link.conn.clone();
    let taken: redis::RedisResult<(Option<String>, i64)> = redis::pipe()
        .atomic()
        .get(&key)
        .del(&key)
        .query_async(&mut conn)
        .await;
    let raw = match taken {
        Ok((raw, _)) => raw?,
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            return None;
        }
    };
    let at: redis::Value = redis::cmd("XRANGE")
        .arg(&link.config.stream_name)
        .arg(offset)
        .arg(offset)
        .query_async(&mut conn)
        .await
        .ok()?;
    if entries(&at).is_empty() {
        tracing::debug!(offset, "offset no longer in the stream: not recovered");
        return None;
    }
    let session = decode_session(&raw)?;
    let mut rooms: Vec<&str> = session.rooms.iter().map(|r| r.as_ref()).collect();
    rooms.push(session.sid.as_str());
    let mut missed = Vec::new();
    let mut from = offset.to_owned();
    // The stream holds about `max_len` entries: this ends.
    for _ in 0..=(link.config.max_len / RANGE_COUNT + 2) {
        let start = wire::next_entry_id(&from)?;
        let page: redis::Value = redis::cmd("XRANGE")
            .arg(&link.config.stream_name)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(RANGE_COUNT)
            .query_async(&mut conn)
            .await
            .ok()?;
        let page = entries(&page);
        let full = page.len() == RANGE_COUNT;
        for (id, fields) in page {
            if let Some(msg) = Message::from_entry(&fields)
                .filter(|m| m.nsp == local.path() && m.kind == wire::BROADCAST)
            {
                if let Some(enc) = replay(local, &msg, &rooms, &id) {
                    missed.push(enc);
                }
            }
            from = id;
        }
        if !full {
            break;
        }
    }
    Some(RestoredSession { session, missed })
}

/// The packet of a missed broadcast, framed with its entry id, if it was for these rooms.
fn replay(
    local: &dyn LocalNamespace,
    msg: &Message,
    rooms: &[&str],
    id: &str,
) -> Option<crate::parser::Encoded> {
    let opts = values::opts_from(msg.get("opts"));
    let has = |list: &[Room]| list.iter().any(|r| rooms.contains(&r.as_ref()));
    if !(opts.rooms.is_empty() || has(&opts.rooms)) || has(&opts.except) {
        return None;
    }
    let (_, event, args) = values::event_of(msg.get("packet")?)?;
    let parser = local.parser();
    let p = EventPacket::from_values(parser, local.path(), &event, &args).ok()?;
    Some(parser.encode_event(&p, None, Some(id)))
}

fn decode_session(raw: &str) -> Option<PersistedSession> {
    let bytes = BASE64.decode(raw).ok()?;
    let v = values::decode_msgpack(&bytes)?;
    let text = |k: &str| values::get_str(&v, k);
    let sid = Sid::parse(text("sid")?)?;
    let pid = Sid::parse(text("pid")?)?;
    let rooms = match values::get(&v, "rooms") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(Value::as_str)
            .filter(|r| *r != sid.as_str())
            .map(|r| Room::Owned(r.to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let data = Extensions::new();
    if let Some(d) = values::get(&v, "data")
        .and_then(|d| rmpv::ext::from_value::<serde_json::Value>(d.clone()).ok())
    {
        data.insert(SocketData(d));
    }
    Some(PersistedSession {
        sid,
        pid,
        rooms,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session a Node server saved (MONITOR): `{sid, pid, rooms: [sid, "room1"], data: {}}`.
    const NODE_SESSION: &str = "hKNzaWS0VXlYYjdHUGJZWW9YZkYtZUFBQUGjcGlktENuaS1hR3A0VEtmRnpiQ0ZBQUFCpXJvb21zkrRVeVhiN0dQYllZb1hmRi1lQUFBQaVyb29tMaRkYXRhgA==";

    #[test]
    fn node_sessions_round_trip_byte_for_byte() {
        let session = decode_session(NODE_SESSION).expect("node session");
        assert_eq!(session.sid.as_str(), "UyXb7GPbYYoXfF-eAAAA");
        assert_eq!(session.pid.as_str(), "Cni-aGp4TKfFzbCFAAAB");
        assert_eq!(session.rooms, vec![Room::from("room1")]);
        assert_eq!(
            session.data.get::<SocketData>().map(|d| d.0),
            Some(serde_json::json!({}))
        );
        assert_eq!(encode_session(&session), NODE_SESSION);
    }

    #[test]
    fn bad_sessions_are_refused() {
        assert!(decode_session("!!").is_none());
        assert!(decode_session(&BASE64.encode([0x81, 0xa3, b's', b'i', b'd', 0x01])).is_none());
    }
}
