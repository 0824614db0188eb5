//! Engine.IO on the wire, ours against the reference server, through the differential
//! harness (`tests/diff/`): handshakes and their errors, polling and WebSocket messages,
//! heartbeats at their boundaries, close from either side in every state, the upgrade with
//! packets in flight, Engine.IO v3.

mod common;
mod diff;

use diff::{Config, Wire};

const E: Config = Config::ENGINE;
const E3: Config = Config::ENGINE.eio3();

// ---- handshakes and error codes ------------------------------------------------------------

diff_case!(handshake_polling, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}&t=x").await.ok();
});

diff_case!(handshake_websocket, E, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
});

diff_case!(handshake_errors_polling, E, |mut w: Wire| async move {
    for q in [
        "transport=polling",
        "EIO=abc&transport=polling",
        "EIO=5&transport=polling",
        "EIO=3&transport=polling",
        "EIO=4",
        "EIO=4&transport=abc",
        "EIO=4&transport=__proto__",
        "EIO=4&transport=polling&sid=unknown",
        "EIO=4&transport=websocket",
    ] {
        w.get(q).await.ok();
    }
    w.http("POST", "EIO=4&transport=polling", None, b"")
        .await
        .ok();
    w.http("PUT", "EIO=4&transport=polling", None, b"")
        .await
        .ok();
    w.http("OPTIONS", "EIO=4&transport=polling", None, b"")
        .await
        .ok();
    w.post("EIO=4&transport=polling&sid=unknown", "4x")
        .await
        .ok();
});

diff_case!(handshake_errors_websocket, E, |mut w: Wire| async move {
    for q in [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=3&transport=websocket",
        "EIO=4",
        "EIO=4&transport=abc",
        "EIO=4&transport=websocket&sid=unknown",
    ] {
        w.ws_open("x", q).await;
    }
});

diff_case!(
    handshake_sid_on_wrong_transport,
    E,
    |mut w: Wire| async move {
        w.ws_handshake("a", 4, "").await;
        // A WebSocket session's sid used for polling.
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.post("EIO=4&transport=polling&sid={sid}", "4x").await.ok();
        w.ws_send("a", "4still").await;
        w.ws_recv("a").await;
    }
);

// ---- messages ------------------------------------------------------------------------------

diff_case!(polling_messages, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "4hello")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.post(
        "EIO=4&transport=polling&sid={sid}",
        "4a\u{1e}4b\u{1e}bAQIDBA==\u{1e}4\u{e9}t\u{e9}",
    )
    .await
    .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(polling_bad_post_closes, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "abc")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.ws_recv("obs").await;
});

diff_case!(polling_binary_body_refused, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.http(
        "POST",
        "EIO=4&transport=polling&sid={sid}",
        Some("application/octet-stream"),
        b"\x04\x01\x02",
    )
    .await
    .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(polling_duplicate_get, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
    w.settle().await;
    w.get("EIO=4&transport=polling&sid={sid}&t=burst")
        .await
        .ok();
    w.join("g1").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(polling_post_too_large, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    let big = format!("4{}", "x".repeat(1_000));
    w.post("EIO=4&transport=polling&sid={sid}", &big).await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(polling_post_at_limit, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    let exact = format!("4{}", "x".repeat(999));
    w.post("EIO=4&transport=polling&sid={sid}", &exact)
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(websocket_messages, E, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
    w.ws_send_bin("a", &[1, 2, 3, 4]).await;
    w.ws_recv("a").await;
    w.ws_send("a", "4").await;
    w.ws_recv("a").await;
    w.ws_send("a", "6").await;
    w.ws_send("a", "4after-noop").await;
    w.ws_recv("a").await;
});

diff_case!(websocket_bad_packet, E, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "abc").await;
    w.ws_until_end("a").await;
});

// ---- heartbeat -----------------------------------------------------------------------------

const HB: Config = Config::ENGINE.heartbeat(300, 200);

diff_case!(heartbeat_polling, HB, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    for _ in 0..3 {
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.post("EIO=4&transport=polling&sid={sid}", "3").await.ok();
    }
});

diff_case!(heartbeat_polling_timeout, HB, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.wait(300 + 200 + 150).await;
    w.post("EIO=4&transport=polling&sid={sid}", "3").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(heartbeat_websocket, HB, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    for _ in 0..3 {
        w.ws_recv("a").await;
        w.ws_send("a", "3").await;
    }
});

diff_case!(heartbeat_websocket_timeout, HB, |mut w: Wire| async move {
    w.ws_handshake("a", 4, "").await;
    w.ws_recv("a").await;
    w.ws_until_end("a").await;
});

diff_case!(
    heartbeat_ping_from_v4_client,
    HB,
    |mut w: Wire| async move {
        w.ws_handshake("a", 4, "").await;
        w.ws_send("a", "2").await;
        w.ws_recv("a").await;
    }
);

// ---- close ---------------------------------------------------------------------------------

diff_case!(close_polling_idle, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "1").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(close_polling_get_pending, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
    w.settle().await;
    w.post("EIO=4&transport=polling&sid={sid}", "1").await.ok();
    w.join("g1").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(close_polling_with_messages, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "4a\u{1e}1\u{1e}4b")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(close_polling_post_in_flight, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post_partial("p1", "EIO=4&transport=polling&sid={sid}", 6, "4he")
        .await;
    w.settle().await;
    w.post("EIO=4&transport=polling&sid={sid}", "1").await.ok();
    w.post_finish("p1", "llo").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(close_polling_post_aborted, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.handshake(4, "").await.ok();
    w.post_partial("p1", "EIO=4&transport=polling&sid={sid}", 6, "4he")
        .await;
    w.settle().await;
    w.post_abort("p1");
    w.ws_recv("obs").await;
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(close_polling_get_aborted, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.handshake(4, "").await.ok();
    w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
    w.settle().await;
    w.abort("g1");
    w.ws_recv("obs").await;
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(close_server_polling_idle, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "4close")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(
    close_server_polling_get_pending,
    E,
    |mut w: Wire| async move {
        w.handshake(4, "").await.ok();
        w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
        w.settle().await;
        w.post("EIO=4&transport=polling&sid={sid}", "4close")
            .await
            .ok();
        w.join("g1").await.ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    }
);

diff_case!(
    close_server_polling_after_message,
    E,
    |mut w: Wire| async move {
        w.handshake(4, "").await.ok();
        w.post("EIO=4&transport=polling&sid={sid}", "4one\u{1e}4close")
            .await
            .ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    }
);

diff_case!(close_websocket_client_packet, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "1").await;
    w.ws_until_end("a").await;
    w.ws_recv("obs").await;
});

diff_case!(close_websocket_client_frame, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.ws_handshake("a", 4, "").await;
    w.ws_close("a").await;
    w.ws_until_end("a").await;
    w.ws_recv("obs").await;
});

diff_case!(close_websocket_dropped, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.ws_handshake("a", 4, "").await;
    w.ws_drop("a");
    w.ws_recv("obs").await;
});

diff_case!(close_websocket_server, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.ws_handshake("a", 4, "").await;
    w.ws_send("a", "4one").await;
    w.ws_send("a", "4close").await;
    w.ws_until_end("a").await;
    w.ws_recv("obs").await;
});

diff_case!(close_reason_polling_client, E, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.handshake(4, "").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "1").await.ok();
    w.ws_recv("obs").await;
});

diff_case!(close_reason_ping_timeout, HB, |mut w: Wire| async move {
    w.ws_handshake("obs", 4, "").await;
    w.ws_send("obs", "4observe").await;
    w.ws_recv("obs").await;
    w.handshake(4, "").await.ok();
    // The observer must keep its own session alive meanwhile.
    w.ws_recv("obs").await;
    w.ws_send("obs", "3").await;
    w.ws_recv("obs").await;
});

// ---- upgrade -------------------------------------------------------------------------------

diff_case!(upgrade_plain, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.ws_send("a", "5").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_get_pending, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
    w.settle().await;
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.join("g1").await.ok();
    w.ws_send("a", "5").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_get_waiting_at_switch, E, |mut w: Wire| async move {
    // A GET waits while the client sends `2probe` and `5` back to back, without waiting for
    // `3probe` (as the official Socket.IO suite does).
    w.handshake(4, "").await.ok();
    w.spawn_get("g1", "EIO=4&transport=polling&sid={sid}");
    w.settle().await;
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_send("a", "5").await;
    w.join("g1").await.ok();
    w.ws_recv("a").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_no_noop_on_websocket, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.ws_send("a", "5").await;
    // Whatever comes first on the WebSocket after the switch: the echo, not a noop.
    w.ws_send("a", "4first").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_poll_after_switch, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.ws_send("a", "5").await;
    w.ws_send("a", "4sync").await;
    w.ws_recv("a").await;
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    w.post("EIO=4&transport=polling&sid={sid}", "4x").await.ok();
    w.ws_send("a", "4still").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_messages_in_flight, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    // Messages posted during the probe are echoed over polling...
    w.post("EIO=4&transport=polling&sid={sid}", "4p1\u{1e}4p2")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    // ...and those queued after the last poll go out on the WebSocket once switched.
    w.post("EIO=4&transport=polling&sid={sid}", "4p3")
        .await
        .ok();
    w.ws_send("a", "5").await;
    w.ws_recv("a").await;
    w.ws_send("a", "4w1").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_second_websocket, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.ws_send("a", "5").await;
    w.ws_send("a", "4sync").await;
    w.ws_recv("a").await;
    if w.ws_open("b", "EIO=4&transport=websocket&sid={sid}").await {
        w.ws_until_end("b").await;
    }
    w.ws_send("a", "4still").await;
    w.ws_recv("a").await;
});

diff_case!(upgrade_bad_probe, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2notprobe").await;
    w.ws_until_end("a").await;
    w.post("EIO=4&transport=polling&sid={sid}", "4still-polling")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(upgrade_close_during_probe, E, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.post("EIO=4&transport=polling&sid={sid}", "1").await.ok();
    w.ws_until_end("a").await;
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

diff_case!(
    upgrade_server_close_during_probe,
    E,
    |mut w: Wire| async move {
        w.handshake(4, "").await.ok();
        w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
        w.ws_send("a", "2probe").await;
        w.ws_recv("a").await;
        w.post("EIO=4&transport=polling&sid={sid}", "4close")
            .await
            .ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.ws_until_end("a").await;
    }
);

const UPGRADE_TIMEOUT: Config = Config::ENGINE.upgrade_timeout(300);

diff_case!(upgrade_timeout, UPGRADE_TIMEOUT, |mut w: Wire| async move {
    w.handshake(4, "").await.ok();
    w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.ws_until_end("a").await;
    w.post("EIO=4&transport=polling&sid={sid}", "4still")
        .await
        .ok();
    w.get("EIO=4&transport=polling&sid={sid}").await.ok();
});

// ---- Engine.IO v3 --------------------------------------------------------------------------

diff_case!(v3_handshake_polling, E3, |mut w: Wire| async move {
    w.handshake(3, "").await.ok();
    w.handshake(3, "&b64=1").await.ok();
});

diff_case!(v3_handshake_websocket, E3, |mut w: Wire| async move {
    w.ws_handshake("a", 3, "").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
    w.ws_send_bin("a", &[4, 1, 2, 3]).await;
    w.ws_recv("a").await;
});

diff_case!(v3_polling_messages, E3, |mut w: Wire| async move {
    w.handshake(3, "").await.ok();
    w.post("EIO=3&transport=polling&sid={sid}", "6:4hello")
        .await
        .ok();
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
    w.post(
        "EIO=3&transport=polling&sid={sid}",
        "6:4test16:4test210:b4AQIDBA==",
    )
    .await
    .ok();
    w.get("EIO=3&transport=polling&sid={sid}&b64=1").await.ok();
    w.post("EIO=3&transport=polling&sid={sid}", "abc")
        .await
        .ok();
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
});

diff_case!(
    v3_heartbeat,
    E3.heartbeat(300, 200),
    |mut w: Wire| async move {
        w.handshake(3, "").await.ok();
        for _ in 0..2 {
            w.post("EIO=3&transport=polling&sid={sid}", "1:2")
                .await
                .ok();
            w.get("EIO=3&transport=polling&sid={sid}").await.ok();
        }
        w.wait(300 + 200 + 150).await;
        w.post("EIO=3&transport=polling&sid={sid}", "1:2")
            .await
            .ok();
    }
);

diff_case!(v3_close_get_pending, E3, |mut w: Wire| async move {
    w.handshake(3, "").await.ok();
    w.spawn_get("g1", "EIO=3&transport=polling&sid={sid}");
    w.settle().await;
    w.post("EIO=3&transport=polling&sid={sid}", "1:1")
        .await
        .ok();
    w.join("g1").await.ok();
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
});

diff_case!(v3_upgrade, E3, |mut w: Wire| async move {
    w.handshake(3, "").await.ok();
    w.ws_open("a", "EIO=3&transport=websocket&sid={sid}").await;
    w.ws_send("a", "2probe").await;
    w.ws_recv("a").await;
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
    w.ws_send("a", "5").await;
    w.ws_send("a", "4hello").await;
    w.ws_recv("a").await;
    w.get("EIO=3&transport=polling&sid={sid}").await.ok();
});

diff_case!(
    upgrade_poll_racing_the_switch,
    E,
    |mut w: Wire| async move {
        // The client sends the probe and `5` back to back and polls at once (as the official
        // suite does): the poll must not be served once `5` is read, and a poll that got there
        // first is not answered before the reference's upgrade check would answer it.
        w.handshake(4, "").await.ok();
        w.ws_open("a", "EIO=4&transport=websocket&sid={sid}").await;
        w.ws_send("a", "2probe").await;
        w.ws_send("a", "5").await;
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.ws_recv("a").await;
        w.ws_send("a", "4hello").await;
        w.ws_recv("a").await;
    }
);

const HB_LONG_TIMEOUT: Config = Config::ENGINE.heartbeat(300, 400);

diff_case!(
    heartbeat_message_while_awaiting_pong,
    HB_LONG_TIMEOUT,
    |mut w: Wire| async move {
        // A packet that comes while the server waits for a pong gives the client a fresh ping
        // timeout, once (the reference refreshes its timer).
        w.ws_handshake("a", 4, "").await;
        w.ws_recv("a").await;
        w.wait(250).await;
        w.ws_send("a", "4while-waiting").await;
        w.ws_recv("a").await;
        w.wait(250).await;
        w.ws_send("a", "3").await;
        w.ws_send("a", "4alive").await;
        w.ws_recv("a").await;
    }
);

diff_case!(
    heartbeat_pong_just_in_time,
    HB_LONG_TIMEOUT,
    |mut w: Wire| async move {
        w.ws_handshake("a", 4, "").await;
        w.ws_recv("a").await;
        w.wait(250).await;
        w.ws_send("a", "3").await;
        w.ws_send("a", "4alive").await;
        w.ws_recv("a").await;
        w.ws_recv("a").await;
    }
);

diff_case!(
    heartbeat_message_while_awaiting_pong_polling,
    HB_LONG_TIMEOUT,
    |mut w: Wire| async move {
        w.handshake(4, "").await.ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
        w.wait(250).await;
        w.post("EIO=4&transport=polling&sid={sid}", "4while-waiting")
            .await
            .ok();
        w.wait(250).await;
        w.post("EIO=4&transport=polling&sid={sid}", "3").await.ok();
        w.get("EIO=4&transport=polling&sid={sid}").await.ok();
    }
);
