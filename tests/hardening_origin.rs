//! Restricting origins (issue #6), as `SECURITY.md` recommends: an `allow_request` hook that
//! checks the `Origin` header. It runs on the polling handshake, the direct WebSocket
//! handshake and the upgrade of a polling session alike (CORS headers protect none of the
//! WebSocket ones). A foreign origin gets 403 `{"code":4,...}` on polling, and on a WebSocket
//! handshake 400 with the message as text (as the reference); an allowed one passes.

mod common;
mod hardening_util;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{TestServer, step};
use hardening_util::{Polling, Raw, http_client, sio_server};
use tower_socketio::SocketIo;

const ALLOWED: &[&str] = &["https://app.example.com", "http://localhost:3000"];

/// The recipe of SECURITY.md.
fn builder() -> tower_socketio::SocketIoBuilder {
    SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .allow_request(|parts| match parts.headers.get(http::header::ORIGIN) {
            // Browsers send `Origin` on every WebSocket handshake and on cross-origin
            // requests; a request without one is not from a foreign page.
            None => Ok(()),
            Some(origin) if ALLOWED.iter().any(|a| origin.as_bytes() == a.as_bytes()) => Ok(()),
            Some(_) => Err("origin not allowed".into()),
        })
}

/// Sends a raw HTTP request and reads the status line and the body (Content-Length).
async fn raw_request(server: &TestServer, request: String) -> (u16, String) {
    let mut tcp = step("tcp connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    step("write", tcp.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = step("read body", tcp.read(&mut chunk)).await.unwrap();
                assert!(n > 0, "closed inside the body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return (status, body);
        }
        let n = step("read head", tcp.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn ws_request(server: &TestServer, query: &str, origin: &str) -> String {
    format!(
        "GET /socket.io/?{query} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n",
        server.addr
    )
}

/// A refused WebSocket handshake or upgrade, as the reference words it.
fn assert_forbidden_ws(status: u16, body: &str) {
    assert_eq!((status, body), (400, "origin not allowed"));
}

fn assert_forbidden(status: u16, body: &str) {
    assert_eq!(status, 403, "{body}");
    let json: Value = serde_json::from_str(body).expect("error JSON");
    assert_eq!(json, json!({"code": 4, "message": "origin not allowed"}));
}

#[tokio::test]
async fn polling_handshake_checks_origin() {
    let s = sio_server(builder()).await;
    let http = http_client();
    let url = s.server.http_url("/socket.io/?EIO=4&transport=polling");
    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.example",
    ] {
        let res = step("handshake", http.get(&url).header("origin", origin).send())
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert_forbidden(status, &res.text().await.unwrap());
    }
    assert_eq!(s.io.connection_count(), 0);
    for origin in ALLOWED {
        let res = step("handshake", http.get(&url).header("origin", *origin).send())
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.text().await.unwrap().starts_with("0{\"sid\""));
    }
    // No Origin (a non-browser client) passes too, per the recipe.
    Polling::open(&s.server).await.join().await;
    assert_eq!(s.io.connection_count(), 3);
}

#[tokio::test]
async fn websocket_handshake_checks_origin() {
    let s = sio_server(builder()).await;
    let (status, body) = raw_request(
        &s.server,
        ws_request(
            &s.server,
            "EIO=4&transport=websocket",
            "https://evil.example",
        ),
    )
    .await;
    assert_forbidden_ws(status, &body);
    assert_eq!(s.io.connection_count(), 0);

    let (status, _) = raw_request(
        &s.server,
        ws_request(&s.server, "EIO=4&transport=websocket", ALLOWED[0]),
    )
    .await;
    assert_eq!(status, 101, "an allowed origin gets its WebSocket");
    // tokio-tungstenite sends no Origin: allowed as a non-browser client.
    let (mut raw, _) = Raw::joined(&s.server).await;
    raw.assert_alive(1).await;
}

#[tokio::test]
async fn upgrade_checks_origin() {
    let s = sio_server(builder()).await;
    let polling = Polling::open(&s.server).await;
    polling.join().await;
    let query = format!("EIO=4&transport=websocket&sid={}", polling.sid);

    let (status, body) = raw_request(
        &s.server,
        ws_request(&s.server, &query, "https://evil.example"),
    )
    .await;
    assert_forbidden_ws(status, &body);
    // The session stays on polling, untouched.
    polling.assert_alive(1).await;

    let (status, _) = raw_request(&s.server, ws_request(&s.server, &query, ALLOWED[1])).await;
    assert_eq!(status, 101, "an allowed origin may upgrade");
}
