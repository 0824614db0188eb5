//! Hardening, Socket.IO level (issue #6): hostile packets over a real WebSocket. Each case
//! checks the answer (an ack, a CONNECT_ERROR, or a close with `parse error`) and that
//! another connection keeps working. Cases `sio_wire.rs` already covers (`4abc`, `2[]`,
//! `2[true,"x"]`, a payload that is an object as in `42{}`, reserved names, a 30-digit ack
//! id, a placeholder past the attachments, binary data with nothing pending, text while an
//! attachment is due) are not repeated.

mod common;
mod hardening_util;

use std::time::Duration;

use serde_json::{Value, json};

use hardening_util::{LogBuf, Raw, Seen, SioServer, quiet, sio_server};

/// A server and a bystander connection joined to `/` (its connect record consumed).
async fn setup(builder: tower_socketio::SocketIoBuilder) -> (SioServer, Raw) {
    let mut s = sio_server(builder).await;
    let (bystander, _) = Raw::joined(&s.server).await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));
    (s, bystander)
}

/// A new connection joined to `/`, with its socket id (connect record consumed).
async fn victim(s: &mut SioServer) -> (Raw, String) {
    let (raw, sid) = Raw::joined(&s.server).await;
    match s.next().await {
        Seen::Connect { sid: seen, .. } => assert_eq!(seen, sid),
        other => panic!("connect expected, got {other:?}"),
    }
    (raw, sid)
}

/// Sends `packet` on a fresh connection and checks it is closed with `parse error`, having
/// answered nothing, while `bystander` keeps working.
async fn assert_closes(s: &mut SioServer, bystander: &mut Raw, packet: &str, n: u32) {
    let (mut raw, sid) = victim(s).await;
    raw.send(packet).await;
    let got = raw.closed().await;
    let shown = &packet[..packet.len().min(80)];
    assert!(
        got.iter().all(|m| !m.starts_with("43")),
        "{shown}: nothing answered: {got:?}"
    );
    assert_eq!(
        s.disconnect().await,
        (sid, "forced close".to_owned()),
        "{shown}"
    );
    bystander.assert_alive(n).await;
}

/// An object whose keys are `Object.prototype` names is plain data: the handler gets it
/// as sent. The same object as the event *name* is refused, as the reference parser
/// refuses a non-string name (it closes the connection).
#[tokio::test]
async fn prototype_keys_are_data_but_not_an_event_name() {
    let (mut s, mut bystander) = setup(quiet()).await;
    let (mut raw, _) = victim(&mut s).await;
    let arg = r#"{"toString":"x","__proto__":{"polluted":1},"constructor":{"prototype":1},"hasOwnProperty":2}"#;
    raw.send(&format!("21[\"try\",{arg}]")).await;
    let want: Value = serde_json::from_str(arg).unwrap();
    assert_eq!(s.next().await, Seen::Try(Ok(want.clone())));
    let ack = raw.next_text().await;
    let ack: Value = serde_json::from_str(ack.strip_prefix("31").expect("ack 1")).unwrap();
    assert_eq!(ack, json!([{ "ok": want }]));
    // `{}` and `[]` as arguments too (`Data<Value>` takes both as one array).
    raw.send("22[\"echo\",{},[]]").await;
    assert_eq!(raw.next_text().await, "32[[{},[]]]");
    raw.assert_alive(3).await;

    assert_closes(&mut s, &mut bystander, r#"2[{"toString":"x"}]"#, 1).await;
    assert_closes(&mut s, &mut bystander, r#"2[{"__proto__":"x"}]"#, 2).await;
    raw.assert_alive(4).await;
}

/// Placeholders whose `num` is not an integer in range close the connection before any
/// handler runs: a string (`"splice"`, `"0"`), a fraction, a negative, an exponent form,
/// `null`, a boolean, an object, a number past u64, one past the attachments, a missing
/// `num`.
#[tokio::test]
async fn placeholder_num_not_an_integer_in_range_closes() {
    let (mut s, mut bystander) = setup(quiet()).await;
    let nums = [
        r#""splice""#,
        r#""0""#,
        "0.5",
        "-1",
        "1e0",
        "null",
        "true",
        r#"{"valueOf":0}"#,
        "18446744073709551616",
        "1",
    ];
    let mut n = 0;
    for num in nums {
        n += 1;
        let packet = format!(r#"51-["bin",{{"_placeholder":true,"num":{num}}}]"#);
        assert_closes(&mut s, &mut bystander, &packet, n).await;
    }
    n += 1;
    let missing = r#"51-["bin",{"_placeholder":true}]"#;
    assert_closes(&mut s, &mut bystander, missing, n).await;
    s.assert_quiet();
}

/// A binary packet announcing 999 999 999 attachments (or a count with more digits) is
/// refused from its header, before anything is allocated for it; `max_attachments` is the
/// boundary.
#[tokio::test]
async fn attachment_count_over_the_limit_closes() {
    let (mut s, mut bystander) = setup(quiet().max_attachments(2)).await;
    let mut n = 0;
    for packet in [
        r#"5999999999-["bin",{"_placeholder":true,"num":0}]"#,
        r#"59999999999-["bin",{"_placeholder":true,"num":0}]"#,
        r#"5999999999999999999999-["bin",{"_placeholder":true,"num":0}]"#,
        r#"53-["bin",{"_placeholder":true,"num":0}]"#,
        r#"60-[1]"#,
    ] {
        n += 1;
        assert_closes(&mut s, &mut bystander, packet, n).await;
    }
    // Exactly max_attachments is fine.
    let (mut raw, _) = victim(&mut s).await;
    raw.send(r#"52-1["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    raw.send_binary(vec![1, 2, 3]).await;
    raw.send_binary(vec![4]).await;
    assert_eq!(raw.next_text().await, "31[[3,1]]");
}

/// Attachments that add up to more than `max_payload` close the connection, even when each
/// one fits.
#[tokio::test]
async fn attachments_over_max_payload_together_close() {
    let (mut s, mut bystander) = setup(quiet().max_payload(1_000)).await;
    let (mut raw, sid) = victim(&mut s).await;
    raw.send(r#"52-1["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    raw.send_binary(vec![0; 600]).await;
    raw.send_binary(vec![0; 600]).await;
    let got = raw.closed().await;
    assert!(got.iter().all(|m| !m.starts_with("43")), "{got:?}");
    assert_eq!(s.disconnect().await, (sid, "forced close".to_owned()));
    bystander.assert_alive(1).await;
}

/// A binary packet whose attachments never all arrive closes the connection after
/// `attachment_timeout`; one that completes in time is delivered.
#[tokio::test]
async fn binary_packet_never_completed_closes_after_attachment_timeout() {
    let (mut s, mut bystander) =
        setup(quiet().attachment_timeout(Duration::from_millis(300))).await;

    // Completes in time (within the timeout).
    let (mut good, _) = victim(&mut s).await;
    good.send(r#"52-1["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    good.send_binary(vec![1]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    good.send_binary(vec![2, 2]).await;
    assert_eq!(good.next_text().await, "31[[1,2]]");

    // One attachment of two, then silence.
    let (mut raw, sid) = victim(&mut s).await;
    let started = tokio::time::Instant::now();
    raw.send(r#"52-1["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    raw.send_binary(vec![1]).await;
    let got = raw.closed().await;
    assert!(got.iter().all(|m| !m.starts_with("43")), "{got:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed by the timer, not at once ({:?})",
        started.elapsed()
    );
    assert_eq!(s.disconnect().await, (sid, "parse error".to_owned()));
    bystander.assert_alive(1).await;
    good.assert_alive(2).await;
}

/// A namespace name of 100 KB: the client gets a CONNECT_ERROR for it (the reference's
/// answer), its connection stays usable, and what the server logs about it stays small.
#[tokio::test]
async fn namespace_name_of_100_kb_is_refused_with_bounded_logging() {
    let logs = LogBuf::default();
    // The test runtime is single-threaded: the server's tasks log on this thread.
    let _guard = tracing::subscriber::set_default(logs.subscriber(tracing::Level::DEBUG));
    let (mut s, mut bystander) = setup(quiet()).await;
    let (mut raw, _) = victim(&mut s).await;
    let name = format!("/{}", "n".repeat(100_000));
    raw.send(&format!("0{name},")).await;
    let reply = raw.next_text().await;
    let rest = reply
        .strip_prefix(&format!("4{name},"))
        .unwrap_or_else(|| panic!("CONNECT_ERROR expected: {}", &reply[..80]));
    assert_eq!(
        serde_json::from_str::<Value>(rest).unwrap(),
        json!({"message": "Invalid namespace"})
    );
    raw.assert_alive(1).await;
    bystander.assert_alive(2).await;
    s.assert_quiet();
    let logged = logs.text();
    assert!(
        logged.contains("connect to unknown namespace"),
        "the refusal is logged:\n{logged}"
    );
    assert!(
        logged.len() < 20_000,
        "logs stay small ({} bytes) for a 100 KB name",
        logged.len()
    );
}

/// JSON nested 100 000 levels deep, in an event argument and in a CONNECT's auth: nothing
/// overflows a stack. The packet decodes (nesting is only skimmed), and deserializing it
/// fails at serde_json's depth limit: `TryData` gets the error, `Data` answers the ack with
/// `{"error":...}`. 126 levels are still fine.
#[tokio::test]
async fn deeply_nested_json_is_refused_without_crashing() {
    let (mut s, mut bystander) = setup(quiet()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    let (mut raw, _) = victim(&mut s).await;
    raw.send(&format!("21[\"try\",{deep}]")).await;
    match s.next().await {
        Seen::Try(Err(e)) => assert!(e.contains("recursion limit"), "{e}"),
        other => panic!("TryData error expected, got {other:?}"),
    }
    let ack = raw.next_text().await;
    assert!(
        ack.starts_with("31[{\"err\":"),
        "{}",
        &ack[..ack.len().min(80)]
    );
    raw.send(&format!("22[\"echo\",{deep}]")).await;
    let ack = raw.next_text().await;
    assert!(
        ack.starts_with("32[{\"error\":"),
        "{}",
        &ack[..ack.len().min(80)]
    );
    // A document within the limit goes through and comes back as sent.
    let ok = format!("{}1{}", "[".repeat(126), "]".repeat(126));
    raw.send(&format!("23[\"echo\",{ok}]")).await;
    assert_eq!(raw.next_text().await, format!("33[{ok}]"));

    // In the auth of a CONNECT: the connect handler runs, its TryData gets the error.
    let mut raw2 = Raw::open(&s.server).await;
    raw2.send(&format!("0{{\"a\":{deep}}}")).await;
    let reply = raw2.next_text().await;
    assert!(reply.starts_with("0{\"sid\""), "{reply}");
    match s.next().await {
        Seen::Connect { auth: Err(e), .. } => assert!(e.contains("recursion limit"), "{e}"),
        other => panic!("connect with an auth error expected, got {other:?}"),
    }
    raw2.assert_alive(4).await;
    raw.assert_alive(5).await;
    bystander.assert_alive(6).await;
}

/// Numbers past f64 (`1e400`) fail deserialization into `Value` (an error, not infinity);
/// integers past u64 become the nearest f64. No crash, and the connection stays.
#[tokio::test]
async fn huge_numbers_are_an_error_or_a_float() {
    let (mut s, mut bystander) = setup(quiet()).await;
    let (mut raw, _) = victim(&mut s).await;
    for (i, num) in ["1e400", "-1e400", "1.8e308"].iter().enumerate() {
        let id = i + 1;
        raw.send(&format!("2{id}[\"try\",{num}]")).await;
        match s.next().await {
            Seen::Try(Err(e)) => assert!(e.contains("out of range"), "{num}: {e}"),
            other => panic!("{num}: TryData error expected, got {other:?}"),
        }
        let ack = raw.next_text().await;
        assert!(
            ack.starts_with(&format!("3{id}[{{\"err\":")),
            "{num}: {ack}"
        );
    }
    raw.send("24[\"try\",123456789012345678901234567890]").await;
    assert_eq!(s.next().await, Seen::Try(Ok(json!(1.2345678901234568e29))));
    let ack = raw.next_text().await;
    let ack: Value = serde_json::from_str(ack.strip_prefix("34").expect("ack 4")).unwrap();
    assert_eq!(ack, json!([{ "ok": 1.2345678901234568e29 }]));
    raw.send(&format!("25[\"try\",{}]", "9".repeat(10_000)))
        .await;
    assert!(matches!(s.next().await, Seen::Try(Err(_))));
    assert!(raw.next_text().await.starts_with("35[{\"err\":"));
    raw.assert_alive(6).await;
    bystander.assert_alive(7).await;
}
