//! Socket.IO protocol revisions: v5 (current clients) and v4 (`socket.io-client` 2.x, over
//! Engine.IO v3).
//!
//! What v4 changes, as the reference server with `allowEIO3` speaks it:
//! - the client is in the main namespace `/` as soon as the Engine.IO session opens: the
//!   server runs that namespace's connect flow at once, without a CONNECT from the client;
//! - a CONNECT to another namespace carries its auth as a query in the namespace name
//!   (`0/admin?token=abc,`), not as a JSON payload;
//! - the server's CONNECT reply has no payload (`0/admin,`);
//! - a refusal is an ERROR packet (same type number as CONNECT_ERROR) whose payload is the
//!   refusal's data, or its message when it has no data (`4/admin,"not authorized"`).
//!
//! Events, acks and binary attachments are the same in both.

use crate::engine::EngineProtocol;

/// The Socket.IO protocol revision a client speaks, which follows from its Engine.IO one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SocketIoProtocol {
    /// Revision 4, over Engine.IO v3 (`socket.io-client` 2.x).
    V4,
    /// Revision 5, over Engine.IO v4.
    #[default]
    V5,
}

impl From<EngineProtocol> for SocketIoProtocol {
    fn from(p: EngineProtocol) -> Self {
        match p {
            EngineProtocol::V3 => Self::V4,
            EngineProtocol::V4 => Self::V5,
        }
    }
}

/// Longest query turned into auth, in bytes; what is longer is cut (at a `&`) and logged.
const MAX_QUERY: usize = 8 * 1024;

/// Query parameters (`a=1&b=x%20y`) as a JSON object of strings, as the reference server
/// builds a v4 client's auth from them: percent-decoded, `+` read as a space, the last of
/// repeated keys kept. Keys in `skip` are left out.
pub(crate) fn query_to_auth(query: &str, skip: &[&str]) -> String {
    let query = if query.len() > MAX_QUERY {
        tracing::debug!(len = query.len(), "query too long for auth, cut");
        let mut end = MAX_QUERY;
        while !query.is_char_boundary(end) {
            end -= 1;
        }
        let cut = &query[..end];
        cut.rfind('&').map_or(cut, |i| &cut[..i])
    } else {
        query
    };
    let mut map = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k);
        if skip.contains(&k.as_str()) {
            continue;
        }
        map.insert(k, serde_json::Value::String(percent_decode(v)));
    }
    serde_json::Value::Object(map).to_string()
}

/// `application/x-www-form-urlencoded` decoding; malformed escapes stay as they are and
/// invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: Option<&u8>) -> Option<u8> {
    let c = *c?;
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_auth() {
        assert_eq!(query_to_auth("", &[]), "{}");
        assert_eq!(
            query_to_auth("token=a%20b+c&x=1&x=2&EIO=3&flag", &["EIO"]),
            r#"{"flag":"","token":"a b c","x":"2"}"#
        );
        assert_eq!(query_to_auth("k=%E2%82%AC%zz%4", &[]), r#"{"k":"€%zz%4"}"#);
        assert_eq!(query_to_auth("k=%ff", &[]), "{\"k\":\"\u{fffd}\"}");
        let long = format!("a=1&b={}", "x".repeat(MAX_QUERY));
        assert_eq!(query_to_auth(&long, &[]), r#"{"a":"1"}"#);
    }
}
