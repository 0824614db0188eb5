//! gzip/deflate of long-polling responses (feature `compression`), checked on the wire:
//! marked `Content-Encoding`, smaller, and decoding to the exact payload; never for
//! responses under the threshold or for clients that do not accept it.
#![cfg(feature = "compression")]

mod common;

use std::io::Read;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_socketio::{SocketIo, SocketRef};

/// One raw HTTP/1.1 GET: (headers, body).
async fn get(addr: std::net::SocketAddr, path: &str, accept: Option<&str>) -> (String, Vec<u8>) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let accept = accept
        .map(|a| format!("Accept-Encoding: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    common::step("response", tcp.read_to_end(&mut raw))
        .await
        .expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    (head, raw[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// A polling session joined to `/` whose next GET carries a 4 000-character event.
async fn session(server: &common::TestServer) -> String {
    let (_, body) = get(server.addr, "/socket.io/?EIO=4&transport=polling", None).await;
    let open: serde_json::Value = serde_json::from_slice(&body[1..]).expect("open packet");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    let client = reqwest::Client::new();
    let url = server.http_url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    client.post(&url).body("40").send().await.expect("connect");
    let (_, connected) = get(
        server.addr,
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        None,
    )
    .await;
    assert!(
        connected.starts_with(b"40"),
        "{}",
        String::from_utf8_lossy(&connected)
    );
    sid
}

#[tokio::test]
async fn polling_responses_are_compressed_over_the_threshold() {
    let (layer, io) = SocketIo::builder().http_compression(1024).build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("big", |s: SocketRef| {
            s.emit("big", &"abc".repeat(2000)).ok();
        });
        socket.on("small", |s: SocketRef| {
            s.emit("small", &"x").ok();
        });
    });
    let server = common::serve_layer(layer).await;
    for (accept, encoding) in [("gzip, deflate", "gzip"), ("deflate", "deflate")] {
        let sid = session(&server).await;
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let client = reqwest::Client::new();
        client
            .post(server.http_url(&path))
            .body("42[\"big\"]")
            .send()
            .await
            .expect("emit");
        let (head, body) = get(server.addr, &path, Some(accept)).await;
        assert_eq!(header(&head, "content-encoding"), Some(encoding), "{head}");
        let mut plain = String::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut plain),
            _ => flate2::read::DeflateDecoder::new(&body[..]).read_to_string(&mut plain),
        }
        .expect("decompress");
        assert_eq!(plain, format!("42[\"big\",\"{}\"]", "abc".repeat(2000)));
        assert!(
            body.len() < plain.len() / 10,
            "{} vs {}",
            body.len(),
            plain.len()
        );

        // Under the threshold: sent as is.
        client
            .post(server.http_url(&path))
            .body("42[\"small\"]")
            .send()
            .await
            .expect("emit");
        let (head, body) = get(server.addr, &path, Some(accept)).await;
        assert_eq!(header(&head, "content-encoding"), None, "{head}");
        assert_eq!(body, b"42[\"small\",\"x\"]");
    }

    // A client that does not accept compression gets plain text.
    let sid = session(&server).await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    reqwest::Client::new()
        .post(server.http_url(&path))
        .body("42[\"big\"]")
        .send()
        .await
        .expect("emit");
    let (head, body) = get(server.addr, &path, Some("identity")).await;
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
    assert_eq!(body.len(), "42[\"big\",\"\"]".len() + 6000);
}

#[tokio::test]
async fn compression_is_off_by_default() {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("big", |s: SocketRef| {
            s.emit("big", &"abc".repeat(2000)).ok();
        });
    });
    let server = common::serve_layer(layer).await;
    let sid = session(&server).await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    reqwest::Client::new()
        .post(server.http_url(&path))
        .body("42[\"big\"]")
        .send()
        .await
        .expect("emit");
    let (head, _) = get(server.addr, &path, Some("gzip")).await;
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
}
