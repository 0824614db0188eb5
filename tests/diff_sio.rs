//! Socket.IO on the wire, ours against the reference server, through the differential
//! harness (`tests/diff/`): namespaces and CONNECT errors, events and acks with any number
//! of arguments and binary at any depth, disconnect reasons, polling and upgrade, the
//! msgpack parser, Engine.IO v3 clients.

mod common;
mod diff;

use diff::{Config, Wire};

const S: Config = Config::SIO;
const S3: Config = Config::SIO.eio3();
const HB: Config = Config::SIO.heartbeat(300, 200);

/// A WebSocket session `name` with an observer on `/observer` (reasons of every disconnect
/// of `/` and `/second` arrive there as `gone`).
async fn observed(w: &mut Wire) {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "40/observer,").await;
    w.ws_recv("obs").await;
}

/// Opens a WebSocket session and joins `/` (reply and welcome).
async fn joined(w: &mut Wire, name: &str) {
    w.ws_handshake(name, 4, "").await;
    w.ws_send(name, "40").await;
    w.ws_recv(name).await;
    w.ws_recv(name).await;
}

// ---- CONNECT -------------------------------------------------------------------------------

diff_case!(connect_main, S, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "40").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
});

diff_case!(connect_with_auth, S, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", r#"40{"token":"abc"}"#).await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
});

diff_case!(connect_second_namespace, S, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "40/second,").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
    w.ws_send("a", "40").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
    w.ws_send("a", r#"42/second,["echo","in second"]"#).await;
    w.ws_recv("a").await;
    w.ws_send("a", "41/second,").await;
    w.ws_send("a", r#"42["echo","still in main"]"#).await;
    w.ws_recv("a").await;
});

diff_case!(connect_unknown_namespace, S, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "40/nope,").await;
    w.ws_recv("a").await;
    w.ws_send("a", "40").await;
    w.ws_recv("a").await;
});

diff_case!(connect_refused_by_middleware, S, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "40/forbidden,").await;
    w.ws_recv("a").await;
    w.ws_send("a", r#"42/forbidden,["echo"]"#).await;
    w.ws_send("a", "40").await;
    w.ws_recv("a").await;
});

diff_case!(connect_twice, S, |mut w: Wire| async move {
    joined(&mut w, "a").await;
    w.ws_send("a", "40").await;
    w.ws_recv_within("a", std::time::Duration::from_millis(500))
        .await;
    w.ws_send("a", r#"42["echo",1]"#).await;
    w.ws_recv("a").await;
});

diff_case!(event_before_connect, S, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", r#"42["echo","too early"]"#).await;
    w.ws_send("a", "40").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
});

diff_case!(connect_over_polling, S, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "40").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.post(
        "EIO=4&transport=polling&sid={sid}",
        "40/second,\u{1e}42[\"echo\",1,2]",
    )
    .await
    .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

// ---- events and acks -----------------------------------------------------------------------

diff_case!(events_any_arity, S, |mut w: Wire| async move {
    joined(&mut w, "a").await;
    for ev in [
        r#"42["echo"]"#,
        r#"42["echo",1]"#,
        r#"42["echo",[1,2]]"#,
        r#"42["echo",1,"two",{"three":[3]},null,true,-1.5]"#,
        r#"42["echo",{}]"#,
    ] {
        w.ws_send("a", ev).await;
        w.ws_recv("a").await;
    }
});

diff_case!(acks_any_arity, S, |mut w: Wire| async move {
    joined(&mut w, "a").await;
    for ev in [
        r#"421["ack"]"#,
        r#"422["ack",1]"#,
        r#"423["ack",[1,2]]"#,
        r#"424["ack",1,"two",{"three":3}]"#,
    ] {
        w.ws_send("a", ev).await;
        w.ws_recv("a").await;
    }
    w.ws_send("a", r#"425["echo","both"]"#).await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
});

diff_case!(binary_from_client, S, |mut w: Wire| async move {
    joined(&mut w, "a").await;
    w.ws_send("a", r#"451-["echo",{"_placeholder":true,"num":0}]"#)
        .await;
    w.ws_send_bin("a", &[1, 2, 3]).await;
    for _ in 0..2 {
        w.ws_recv("a").await;
    }
    w.ws_send(
        "a",
        r#"452-7["echo",{"a":[1,{"b":{"_placeholder":true,"num":1}}]},"x",[{"_placeholder":true,"num":0}]]"#,
    )
    .await;
    w.ws_send_bin("a", &[10]).await;
    w.ws_send_bin("a", &[]).await;
    for _ in 0..6 {
        w.ws_recv("a").await;
    }
});

diff_case!(binary_from_server, S, |mut w: Wire| async move {
    joined(&mut w, "a").await;
    w.ws_send("a", r#"42["bin"]"#).await;
    for _ in 0..4 {
        w.ws_recv("a").await;
    }
});

diff_case!(binary_over_polling, S, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "40").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.post(
        "EIO=4&transport=polling&sid={sid}",
        "451-3[\"echo\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID",
    )
    .await
    .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "42[\"bin\"]")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

// ---- bad packets ---------------------------------------------------------------------------

diff_case!(parse_errors, S, |mut w: Wire| async move {
    observed(&mut w).await;
    for bad in [r#"42["echo""#, "4x", r#"40"not an object""#, r#"42{"a":1}"#] {
        joined(&mut w, "a").await;
        w.ws_send("a", bad).await;
        w.ws_until_end("a").await;
        w.ws_recv("obs").await;
    }
});

// ---- disconnects ---------------------------------------------------------------------------

diff_case!(disconnect_client_namespace, S, |mut w: Wire| async move {
    observed(&mut w).await;
    joined(&mut w, "a").await;
    w.ws_send("a", "41").await;
    w.ws_recv("obs").await;
    w.ws_send("a", r#"42["echo","after leaving"]"#).await;
    w.ws_recv_within("a", std::time::Duration::from_millis(500))
        .await;
});

diff_case!(disconnect_server_namespace, S, |mut w: Wire| async move {
    observed(&mut w).await;
    joined(&mut w, "a").await;
    w.ws_send("a", r#"42["bye"]"#).await;
    w.ws_recv("a").await;
    w.ws_recv("obs").await;
});

diff_case!(disconnect_transport_close, S, |mut w: Wire| async move {
    observed(&mut w).await;
    joined(&mut w, "a").await;
    w.ws_drop("a");
    w.ws_recv("obs").await;
});

diff_case!(disconnect_close_frame, S, |mut w: Wire| async move {
    observed(&mut w).await;
    joined(&mut w, "a").await;
    w.ws_close("a").await;
    w.ws_until_end("a").await;
    w.ws_recv("obs").await;
});

diff_case!(
    disconnect_polling_close_packet,
    S,
    |mut w: Wire| async move {
        observed(&mut w).await;
        w.handshake(4, "").await.ok();
        w.post("EIO=4&transport=polling&sid={sid}", "40").await.ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.post("EIO=4&transport=polling&sid={sid}", "1").await.ok();
        w.ws_recv("obs").await;
    }
);

// `io.close()`: no DISCONNECT; the WebSocket gets its closing handshake, a pending poll the
// close packet, so clients reconnect (and may recover elsewhere).
diff_case!(shutdown_websocket, S, |mut w: Wire| async move {
    joined(&mut w, "a").await;
    w.ws_send("a", "40/second,").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
    w.ws_send("a", r#"42["shutdown"]"#).await;
    w.ws_until_end("a").await;
});

diff_case!(shutdown_polling, S, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "40").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
    w.settle().await;
    w.post("EIO=4&transport=polling&sid={sid}", r#"42["shutdown"]"#)
        .await
        .ok();
    w.join("g1").await.ok();
});

diff_case!(disconnect_two_namespaces, S, |mut w: Wire| async move {
    observed(&mut w).await;
    joined(&mut w, "a").await;
    w.ws_send("a", "40/second,").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
    w.ws_drop("a");
    w.ws_recv("obs").await;
    w.ws_recv("obs").await;
});

diff_case!(disconnect_ping_timeout, HB, |mut w: Wire| async move {
    observed(&mut w).await;
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "40").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    // The observer answers its ping; the polling client never does.
    w.ws_recv("obs").await;
    w.ws_send("obs", "3").await;
    w.ws_recv("obs").await;
});

// ---- upgrade -------------------------------------------------------------------------------

diff_case!(upgrade_with_events_in_flight, S, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "40").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.post(
        "EIO=4&transport=polling&sid={sid}",
        "42[\"echo\",\"during\"]",
    )
    .await
    .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.post(
        "EIO=4&transport=polling&sid={sid}",
        "42[\"echo\",\"queued\"]",
    )
    .await
    .ok();
    w.ws_send("a", "5").await;
    w.ws_recv("a").await;
    w.ws_send("a", r#"42["echo","after"]"#).await;
    w.ws_recv("a").await;
});

// ---- Engine.IO v3 clients (Socket.IO v4 protocol, as socket.io-client 2.x) ----------------

diff_case!(v3_connect_polling, S3, |mut w: Wire| async move {
    w.handshake(3, "").await.ok();
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
    w.post(
        "EIO=3&transport=polling&sid={sid}",
        "18:42[\"echo\",1,\"a\"]",
    )
    .await
    .ok();
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
});

diff_case!(v3_connect_websocket, S3, |mut w: Wire| async move {
    w.ws_handshake("a", 3, "").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
    w.ws_send("a", "40/second").await;
    w.ws_recv("a").await;
    w.ws_recv("a").await;
    w.ws_send("a", r#"421["ack",1,2]"#).await;
    w.ws_recv("a").await;
});

// ---- msgpack -------------------------------------------------------------------------------

#[cfg(feature = "msgpack")]
mod msgpack {
    use super::*;
    use serde_json::json;

    const M: Config = Config::SIO.msgpack();

    async fn send(w: &mut Wire, name: &str, v: serde_json::Value) {
        w.ws_send_bin(name, &diff::msgpack(&v)).await;
    }

    diff_case!(msgpack_connect, M, |mut w: Wire| async move {
        w.ws_handshake("a", 4, "").await;
        send(&mut w, "a", json!({"type": 0, "nsp": "/"})).await;
        w.ws_recv("a").await;
        w.ws_recv("a").await;
        send(&mut w, "a", json!({"type": 0, "nsp": "/nope"})).await;
        w.ws_recv("a").await;
        send(&mut w, "a", json!({"type": 0, "nsp": "/forbidden"})).await;
        w.ws_recv("a").await;
    });

    diff_case!(msgpack_events_and_acks, M, |mut w: Wire| async move {
        w.ws_handshake("a", 4, "").await;
        send(&mut w, "a", json!({"type": 0, "nsp": "/"})).await;
        w.ws_recv("a").await;
        w.ws_recv("a").await;
        for data in [
            json!(["echo"]),
            json!(["echo", 1]),
            json!(["echo", 1, "two", {"b": "<bin 01 02>"}, ["<bin>"]]),
        ] {
            send(&mut w, "a", json!({"type": 2, "nsp": "/", "data": data})).await;
            w.ws_recv("a").await;
        }
        send(
            &mut w,
            "a",
            json!({"type": 2, "nsp": "/", "data": ["ack", 1, "<bin ff>"], "id": 5}),
        )
        .await;
        w.ws_recv("a").await;
        send(&mut w, "a", json!({"type": 2, "nsp": "/", "data": ["bin"]})).await;
        w.ws_recv("a").await;
        send(&mut w, "a", json!({"type": 1, "nsp": "/"})).await;
        send(
            &mut w,
            "a",
            json!({"type": 2, "nsp": "/", "data": ["echo", "gone"]}),
        )
        .await;
        w.ws_recv_within("a", std::time::Duration::from_millis(500))
            .await;
    });

    diff_case!(msgpack_parse_error, M, |mut w: Wire| async move {
        w.ws_handshake("a", 4, "").await;
        send(&mut w, "a", json!({"type": 0, "nsp": "/"})).await;
        w.ws_recv("a").await;
        w.ws_recv("a").await;
        send(&mut w, "a", json!({"type": 9, "nsp": "/"})).await;
        w.ws_until_end("a").await;
    });
}
