//! Hardening, Engine.IO level (issue #6): hostile handshakes, sids on the wrong transport,
//! invalid UTF-8 in a polling body, and hand-made WebSocket frames (thousands of 1-byte
//! fragments, invalid UTF-8 text, reserved opcodes, unmasked frames). Each case checks the
//! answer (HTTP status and error JSON, or the close) and that another connection keeps
//! working. The cases `engine_wire.rs` already covers (`__proto__`/unknown transport, POST
//! and PUT handshakes, unknown sid, oversized bodies and messages) are not repeated.

mod common;
mod hardening_util;

use serde_json::{Value, json};

use common::{STEP, step};
use hardening_util::{
    BINARY, CONTINUATION, Ending, Polling, Raw, RawWs, Seen, TEXT, eventually, frame, frame_raw,
    http_client, quiet, sio_server,
};

fn assert_error(status: u16, body: &str, want_status: u16, code: u8, message: &str) {
    assert_eq!(status, want_status, "status (body {body:?})");
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body:?}"));
    assert_eq!(json, json!({ "code": code, "message": message }));
}

/// Handshakes whose transport is garbage (a 30 KB name, prototype keys, a repeated
/// parameter, percent-encoded bytes): 400 `Transport unknown`, no session, no effect on a
/// connected client.
#[tokio::test]
async fn handshake_with_garbage_transport_is_refused() {
    let s = sio_server(quiet()).await;
    let (mut bystander, _) = Raw::joined(&s.server).await;
    let http = http_client();
    let long = "x".repeat(30_000);
    let queries = [
        format!("EIO=4&transport={long}"),
        "EIO=4&transport=constructor".to_owned(),
        "EIO=4&transport=hasOwnProperty".to_owned(),
        "EIO=4&transport=polling%00".to_owned(),
        "EIO=4&transport=%70olling".to_owned(),
        "EIO=4&transport=POLLING".to_owned(),
        "EIO=4&transport=polling&transport=__proto__".to_owned(),
        "EIO=4&transport[]=polling".to_owned(),
    ];
    for (i, q) in queries.iter().enumerate() {
        let res = step(
            "garbage handshake",
            http.get(s.server.http_url(&format!("/socket.io/?{q}")))
                .send(),
        )
        .await
        .expect("request");
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        let shown = &q[..q.len().min(60)];
        assert_eq!(status, 400, "{shown}: {body}");
        assert_error(status, &body, 400, 0, "Transport unknown");
        assert_eq!(s.io.connection_count(), 1, "{shown}: no session opened");
        bystander.assert_alive(i as u32).await;
    }
}

/// Handshakes with methods other than GET (PUT, DELETE, PATCH, OPTIONS with a body): 400
/// `Bad handshake method`, no session; the connected client is unaffected.
#[tokio::test]
async fn handshake_with_other_methods_is_refused() {
    let s = sio_server(quiet()).await;
    let (mut bystander, _) = Raw::joined(&s.server).await;
    let http = http_client();
    let url = s.server.http_url("/socket.io/?EIO=4&transport=polling");
    for (i, method) in ["PUT", "DELETE", "PATCH", "PROPFIND"].iter().enumerate() {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = step(
            "handshake",
            http.request(method.clone(), &url).body("40").send(),
        )
        .await
        .expect("request");
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        assert_error(status, &body, 400, 2, "Bad handshake method");
        assert_eq!(s.io.connection_count(), 1, "{method}: no session opened");
        bystander.assert_alive(i as u32).await;
    }
}

/// A polling session's sid on a WebSocket request without the Upgrade headers, and a
/// WebSocket session's sid on polling GET and POST: 400 `Bad request` (as the reference
/// server), and both sessions carry on.
#[tokio::test]
async fn sid_on_the_wrong_transport_is_refused() {
    let mut s = sio_server(quiet()).await;
    let http = http_client();

    let polling = Polling::open(&s.server).await;
    polling.join().await;
    let url = s.server.http_url(&format!(
        "/socket.io/?EIO=4&transport=websocket&sid={}",
        polling.sid
    ));
    let res = step("plain GET on websocket", http.get(&url).send())
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_error(status, &res.text().await.unwrap(), 400, 3, "Bad request");
    let res = step(
        "POST on websocket",
        http.post(&url).body("42[\"x\"]").send(),
    )
    .await
    .unwrap();
    let status = res.status().as_u16();
    assert_error(status, &res.text().await.unwrap(), 400, 3, "Bad request");

    // A session opened directly over WebSocket, its sid presented on polling.
    let mut ws = Raw::open(&s.server).await;
    ws.join().await;
    let ws_sid =
        s.io.sockets()
            .into_iter()
            .map(|so| so.engine_id().to_string())
            .find(|e| *e != polling.sid)
            .expect("the websocket session");
    let url = s
        .server
        .http_url(&format!("/socket.io/?EIO=4&transport=polling&sid={ws_sid}"));
    let res = step("GET with a websocket sid", http.get(&url).send())
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_error(status, &res.text().await.unwrap(), 400, 3, "Bad request");
    let res = step(
        "POST with a websocket sid",
        http.post(&url)
            .header("content-type", "text/plain;charset=UTF-8")
            .body("42[\"try\",1]")
            .send(),
    )
    .await
    .unwrap();
    let status = res.status().as_u16();
    assert_error(status, &res.text().await.unwrap(), 400, 3, "Bad request");

    // Both sessions carry on, and the POST's event never ran.
    polling.assert_alive(1).await;
    ws.assert_alive(2).await;
    assert_eq!(s.io.connection_count(), 2);
    while let Ok(seen) = s.seen.try_recv() {
        assert!(
            matches!(seen, Seen::Connect { .. }),
            "nothing but the two connects: {seen:?}"
        );
    }
}

/// A polling body that is not UTF-8: answered, the session closes (`parse error`) and no
/// packet of the body runs, not even the valid one before the bad bytes. Another polling
/// session is unaffected.
#[tokio::test]
async fn polling_body_with_invalid_utf8_closes_the_session() {
    let mut s = sio_server(quiet()).await;
    let bystander = Polling::open(&s.server).await;
    bystander.join().await;

    for (i, body) in [
        b"42[\"try\",1]\x1e42[\"try\",\"\xff\xfe\"]".to_vec(),
        b"4\xc3".to_vec(),                        // a sequence cut short
        b"42[\"try\",\"\xed\xa0\x80\"]".to_vec(), // an encoded surrogate
        b"\xff".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let victim = Polling::open(&s.server).await;
        let sid = victim.join().await;
        assert!(matches!(s.next().await, Seen::Connect { .. }));
        // Answered as read, the session closed for a parse error, as the reference does
        // with a payload it cannot decode.
        let (status, _) = victim.post(body).await;
        assert_eq!(status, 200, "case {i}");
        assert_eq!(
            s.disconnect().await,
            (sid, "parse error".to_owned()),
            "case {i}"
        );
        let (status, body) = victim.get().await;
        assert_error(status, &body, 400, 1, "Session ID unknown");
        s.assert_quiet();
        bystander.assert_alive(i as u32).await;
    }
}

/// A message split into 1-byte fragments is reassembled (a UTF-8 character split between
/// two fragments included); thousands of 1-byte fragments adding up to more than
/// `max_payload` close the connection (`transport error`) instead of growing a buffer.
#[tokio::test]
async fn websocket_tiny_fragments_are_bounded_by_max_payload() {
    let mut s = sio_server(quiet().max_payload(1_000)).await;
    let (mut bystander, _) = Raw::joined(&s.server).await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));

    // Within the limit: 1-byte fragments, one of them half of `é`.
    let mut ws = RawWs::open_engine(&s.server).await;
    ws.send_text("40").await;
    assert!(ws.read_text().await.starts_with("40{\"sid\""));
    assert!(matches!(s.next().await, Seen::Connect { .. }));
    let msg = format!("421[\"echo\",\"é{}\"]", "y".repeat(400));
    let bytes = msg.as_bytes();
    let mut wire = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        let op = if i == 0 { TEXT } else { CONTINUATION };
        wire.extend(frame(i == bytes.len() - 1, op, &[*b]));
    }
    ws.write(&wire).await.expect("write fragments");
    assert_eq!(
        ws.read_text().await,
        format!("431[\"é{}\"]", "y".repeat(400)),
        "fragments reassembled"
    );

    // Over the limit: 5 000 fragments, never finished. The server must stop reading at
    // max_payload; writing may fail once it has closed.
    let mut ws = RawWs::open_engine(&s.server).await;
    ws.send_text("40").await;
    assert!(ws.read_text().await.starts_with("40{\"sid\""));
    let sid = match s.next().await {
        Seen::Connect { sid, .. } => sid,
        other => panic!("connect expected, got {other:?}"),
    };
    let mut wire = frame(false, TEXT, b"4");
    for _ in 0..5_000 {
        wire.extend(frame(false, CONTINUATION, b"x"));
    }
    let _ = ws.write(&wire).await;
    let (ending, texts) = step("the server closes", ws.ending()).await;
    assert!(
        matches!(ending, Ending::Close(_) | Ending::Eof),
        "{ending:?}"
    );
    assert!(texts.is_empty(), "nothing answered: {texts:?}");
    assert_eq!(s.disconnect().await, (sid, "transport error".to_owned()));
    bystander.assert_alive(1).await;
    assert_eq!(s.io.connection_count(), 2, "the bystander and the good one");
}

/// A text frame that is not UTF-8 (whole, or split between fragments) closes its connection
/// (`transport error`); another connection is unaffected.
#[tokio::test]
async fn websocket_text_with_invalid_utf8_closes_the_connection() {
    let mut s = sio_server(quiet()).await;
    let (mut bystander, _) = Raw::joined(&s.server).await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));
    let cases: [Vec<u8>; 3] = [
        frame(true, TEXT, b"42[\"try\",\"\xff\xfe\"]"),
        [
            frame(false, TEXT, b"42[\"try\",\"\xc3"),
            frame(true, CONTINUATION, b"(\"]"),
        ]
        .concat(),
        frame(true, TEXT, b"42[\"try\",\"\xed\xa0\x80\"]"),
    ];
    for (i, wire) in cases.iter().enumerate() {
        let mut ws = RawWs::open_engine(&s.server).await;
        ws.send_text("40").await;
        assert!(ws.read_text().await.starts_with("40{\"sid\""));
        let sid = match s.next().await {
            Seen::Connect { sid, .. } => sid,
            other => panic!("connect expected, got {other:?}"),
        };
        let _ = ws.write(wire).await;
        let (ending, texts) = step("the server closes", ws.ending()).await;
        assert!(texts.is_empty(), "case {i}: nothing answered: {texts:?}");
        if let Ending::Close(Some(code)) = ending {
            assert_eq!(code, 1007, "case {i}: close code for invalid data");
        }
        assert_eq!(
            s.disconnect().await,
            (sid, "transport error".to_owned()),
            "case {i}"
        );
        s.assert_quiet();
        bystander.assert_alive(i as u32).await;
    }
}

/// Frames no WebSocket client may send: a reserved opcode, RSV bits without an extension,
/// an unmasked frame, a continuation with nothing to continue, a fragmented control frame,
/// a new data frame inside a fragmented message, a length with the top bit set, and bytes
/// that are no frame at all. Each closes its connection (`transport error`) and only it.
#[tokio::test]
async fn websocket_garbage_frames_close_the_connection() {
    let mut s = sio_server(quiet()).await;
    let (mut bystander, _) = Raw::joined(&s.server).await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));
    let unmasked = {
        let mut f = vec![0x81u8, 4];
        f.extend_from_slice(b"40ab");
        f
    };
    let huge_len = {
        let mut f = vec![0x82u8, 0x80 | 127];
        f.extend_from_slice(&u64::MAX.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved opcode 3", frame_raw(0x83, b"42[\"x\"]")),
        ("reserved opcode 0xB", frame_raw(0x8b, b"")),
        ("RSV1 without extension", frame_raw(0xc1, b"42[\"x\"]")),
        ("unmasked frame", unmasked),
        (
            "continuation first",
            frame(true, CONTINUATION, b"42[\"x\"]"),
        ),
        ("fragmented ping", frame_raw(0x09, b"x")),
        (
            "data frame inside a fragmented message",
            [frame(false, TEXT, b"42"), frame(true, BINARY, b"\x01")].concat(),
        ),
        ("64-bit length with the top bit set", huge_len),
        ("not a frame at all", vec![0xff; 64]),
    ];
    for (i, (what, wire)) in cases.iter().enumerate() {
        let mut ws = RawWs::open_engine(&s.server).await;
        ws.send_text("40").await;
        assert!(ws.read_text().await.starts_with("40{\"sid\""));
        let sid = match s.next().await {
            Seen::Connect { sid, .. } => sid,
            other => panic!("connect expected, got {other:?}"),
        };
        let _ = ws.write(wire).await;
        let (_, texts) = step(what, ws.ending()).await;
        assert!(texts.is_empty(), "{what}: nothing answered: {texts:?}");
        assert_eq!(
            s.disconnect().await,
            (sid, "transport error".to_owned()),
            "{what}"
        );
        bystander.assert_alive(i as u32).await;
    }
    assert_eq!(s.io.connection_count(), 1, "only the bystander is left");
}

/// A packet whose first character is not ASCII (`é`, `ǝ`: found by the `engine_payload`
/// fuzz target, where it panicked slicing the packet type off) is an unknown packet type:
/// over WebSocket and over polling the session closes with `parse error`, and is gone.
#[tokio::test]
async fn packet_starting_with_a_multibyte_character_closes_cleanly() {
    let mut s = sio_server(quiet()).await;
    let (mut bystander, _) = Raw::joined(&s.server).await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));

    for (i, text) in ["é", "ǝ4", "\u{1F600}probe"].iter().enumerate() {
        let mut ws = RawWs::open_engine(&s.server).await;
        ws.send_text("40").await;
        assert!(ws.read_text().await.starts_with("40{\"sid\""));
        let sid = match s.next().await {
            Seen::Connect { sid, .. } => sid,
            other => panic!("connect expected, got {other:?}"),
        };
        ws.send_text(text).await;
        let (_, texts) = step("the server closes", ws.ending()).await;
        assert!(texts.is_empty(), "{text}: {texts:?}");
        assert_eq!(
            s.disconnect().await,
            (sid, "parse error".to_owned()),
            "{text} over WebSocket"
        );

        let polling = Polling::open(&s.server).await;
        let sid = polling.join().await;
        assert!(matches!(s.next().await, Seen::Connect { .. }));
        let (status, _) = polling.post(format!("42[\"try\",1]\x1e{text}")).await;
        assert_eq!(status, 200, "{text} over polling");
        assert_eq!(
            s.disconnect().await,
            (sid, "parse error".to_owned()),
            "{text} over polling"
        );
        s.assert_quiet();
        bystander.assert_alive(i as u32).await;
    }
    eventually(STEP, "only the bystander's session is left", || {
        s.io.connection_count() == 1
    })
    .await;
}
