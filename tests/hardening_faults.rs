//! Hardening, faults (issue #6): ping timeout under load (silent clients leave with `ping
//! timeout` while the busy ones lose nothing and keep going), and graceful shutdown with a
//! long-poll GET pending (the GET is answered, `close` returns within its grace).
//! Connection churn is in `hardening_churn.rs` (its own process, for a clean RSS reading).

mod common;
mod hardening_util;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{STEP, step, within};
use hardening_util::{Ending, Polling, Raw, RawWs, Seen, sio_server};
use tower_socketio::SocketIo;

/// Twelve clients flood the server with acked events while it broadcasts numbered ticks to
/// them; four joined clients stop reading and answering. The four leave with `ping timeout`
/// (one ping interval plus the timeout after their last pong); none of the twelve is
/// disconnected, every one receives every tick in order (no silent gap), and every one
/// keeps completing round trips after the four are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_under_load_closes_only_the_silent() {
    let mut s = sio_server(
        SocketIo::builder()
            .ping_interval(Duration::from_millis(200))
            .ping_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut busy = Vec::new();
    for _ in 0..12 {
        let (mut raw, _) = Raw::joined(&s.server).await;
        raw.send("20[\"join\",\"busy\"]").await;
        assert_eq!(raw.next_text().await, "30[\"joined\"]");
        busy.push(raw);
    }
    let mut silent = Vec::new();
    let mut silent_sids = HashSet::new();
    for _ in 0..4 {
        let (raw, sid) = Raw::joined(&s.server).await;
        silent_sids.insert(sid);
        silent.push(raw);
    }

    // The server broadcasts numbered ticks to the busy room.
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let io = s.io.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                io.to("busy")
                    .expect("namespace /")
                    .emit("tick", &n)
                    .await
                    .expect("broadcast");
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    };
    // Each busy client: acked events one after the other, ticks checked for gaps.
    let after_silence = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, mut raw) in busy.into_iter().enumerate() {
        let stop = stop.clone();
        let after = after_silence.clone();
        tasks.push(tokio::spawn(async move {
            let mut next_tick = None::<u64>;
            let (mut acks, mut acks_after) = (0u64, 0u64);
            let mut id = 100u64;
            while !stop.load(Ordering::Acquire) {
                id += 1;
                raw.send(&format!("2{id}[\"echo\",{i}]")).await;
                loop {
                    let m = raw.next_text().await;
                    if let Some(t) = m.strip_prefix("2[\"tick\",") {
                        let t: u64 = t.trim_end_matches(']').parse().expect("tick number");
                        if let Some(want) = next_tick {
                            assert_eq!(t, want, "client {i}: ticks in order, none lost");
                        }
                        next_tick = Some(t + 1);
                    } else {
                        assert_eq!(m, format!("3{id}[{i}]"), "client {i}: its ack");
                        break;
                    }
                }
                acks += 1;
                if after.load(Ordering::Acquire) {
                    acks_after += 1;
                }
            }
            (acks, acks_after, next_tick, raw)
        }));
    }

    // The silent four go, with `ping timeout`, and only they.
    let mut gone = HashSet::new();
    within(
        Duration::from_secs(10),
        "the silent clients time out",
        async {
            while gone.len() < silent_sids.len() {
                let (sid, reason) = s.disconnect().await;
                assert!(
                    silent_sids.contains(&sid),
                    "a busy client left: {sid} ({reason})"
                );
                assert_eq!(reason, "ping timeout", "{sid}");
                gone.insert(sid);
            }
        },
    )
    .await;
    after_silence.store(true, Ordering::Release);
    // The busy ones carry on through several more heartbeat rounds.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, Ordering::Release);
    let ticks = step("ticker", ticker).await.expect("ticker");
    assert!(ticks > 50, "the ticker ran ({ticks} ticks)");
    let mut keep = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (acks, acks_after, next_tick, raw) =
            within(Duration::from_secs(10), "a busy client", t)
                .await
                .expect("busy client task");
        assert!(next_tick.is_some(), "client {i} received ticks");
        assert!(
            acks_after > 0,
            "client {i} kept going after the silent ones left ({acks} acks in all)"
        );
        keep.push(raw);
    }
    s.assert_quiet();
    assert_eq!(
        s.io.connection_count(),
        12,
        "the busy clients are all there"
    );
    drop((silent, keep));
}

/// `io.close(grace)` with polling clients, as the reference's `io.close()`: no DISCONNECT
/// packet; a pending GET carries the close packet; a session with no GET waiting is
/// forgotten at once (its next request gets `Session ID unknown`), so `close` returns as
/// soon as both are gone, well within its grace. The sockets leave with `server shutting
/// down`, and new handshakes are refused with 503.
#[tokio::test]
async fn shutdown_closes_polling_sessions_as_the_reference() {
    let mut s = sio_server(hardening_util::quiet()).await;
    let waiting = Polling::open(&s.server).await;
    let wsid = waiting.join().await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));
    let idle = Polling::open(&s.server).await;
    let isid = idle.join().await;
    assert!(matches!(s.next().await, Seen::Connect { .. }));

    let pending = {
        let (http, url) = (waiting.http.clone(), waiting.url());
        tokio::spawn(async move {
            let res = http.get(url).send().await.expect("pending GET");
            (res.status().as_u16(), res.text().await.expect("GET body"))
        })
    };
    s.server.parked(1, "the GET waits in the server").await;

    let grace = Duration::from_secs(4);
    let started = tokio::time::Instant::now();
    let io = s.io.clone();
    let closing = tokio::spawn(async move { io.close(grace).await });

    let (status, body) = step("the pending GET", pending).await.expect("GET task");
    assert_eq!(
        (status, body.as_str()),
        (200, "1"),
        "the close packet on the pending GET, no DISCONNECT"
    );
    for (what, p) in [
        ("the released client", &waiting),
        ("the idle client", &idle),
    ] {
        let (status, body) = p.get().await;
        assert_eq!(
            (status, body.as_str()),
            (400, r#"{"code":1,"message":"Session ID unknown"}"#),
            "{what}: the session is gone"
        );
    }
    within(grace + Duration::from_secs(1), "io.close", closing)
        .await
        .expect("close task");
    let took = started.elapsed();
    assert!(
        took < grace,
        "close returned once the sessions were gone, not at the end of the grace ({took:?})"
    );
    assert_eq!(s.io.connection_count(), 0);
    let mut left = vec![s.disconnect().await, s.disconnect().await];
    left.sort();
    let mut want = vec![
        (wsid, "server shutting down".to_owned()),
        (isid, "server shutting down".to_owned()),
    ];
    want.sort();
    assert_eq!(left, want);

    let res = step(
        "a handshake after close",
        hardening_util::http_client()
            .get(s.server.http_url("/socket.io/?EIO=4&transport=polling"))
            .send(),
    )
    .await
    .expect("handshake");
    assert_eq!(res.status().as_u16(), 503, "handshakes are refused");
}

/// A WebSocket peer that never answers the closing handshake cannot hold `close` up past
/// its grace; the connection is dropped at the end of the closing handshake's own bound.
#[tokio::test]
async fn shutdown_is_bounded_by_its_grace() {
    let s = sio_server(hardening_util::quiet()).await;
    let mut silent = RawWs::open_engine(&s.server).await;
    let grace = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    within(
        grace + Duration::from_secs(2),
        "io.close",
        s.io.close(grace),
    )
    .await;
    let took = started.elapsed();
    assert!(took >= grace, "the session was still open ({took:?})");
    let (ending, _) = silent.ending().await;
    assert_eq!(ending, Ending::Close(None), "our Close frame, then the end");
    hardening_util::eventually(STEP, "the session is gone", || s.io.connection_count() == 0).await;
}

/// A server-side close right behind a DISCONNECT (`disconnect_and_close`, as `io.close`
/// does for every socket) must deliver the DISCONNECT before the WebSocket closes: the
/// client then knows it was dropped on purpose and does not reconnect.
#[tokio::test]
async fn server_close_delivers_the_queued_disconnect_first() {
    let s = sio_server(hardening_util::quiet()).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(Raw::joined(&s.server).await.0);
    }
    s.io.of("/")
        .expect("namespace /")
        .disconnect_and_close()
        .await
        .expect("disconnect_and_close");
    let mut lost = 0;
    for raw in &mut clients {
        let got = raw.closed().await;
        if got != ["41"] {
            lost += 1;
        }
    }
    assert_eq!(
        lost, 0,
        "{lost} of 20 clients saw the close without the DISCONNECT"
    );
}
