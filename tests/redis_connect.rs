//! `RedisLink::connect` fails fast and says why: a refused connection at once, a server that
//! does not answer after the configured connect timeout. No Redis is needed: the peers are
//! a closed port and a TCP listener that never speaks.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisConnectError, RedisLink};

#[tokio::test]
async fn a_refused_connection_is_reported_at_once() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let started = Instant::now();
    let err = RedisLink::connect(
        &format!("redis://127.0.0.1:{port}"),
        RedisAdapterConfig::default(),
    )
    .await
    .expect_err("nothing listens there");
    let took = started.elapsed();
    assert!(
        matches!(&err, RedisConnectError::Connect { addr, .. } if *addr == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // The connection manager alone retried for ~9.5 s before failing.
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_silent_server_times_out_after_the_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts every connection and never says a word.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = RedisLink::connect(
        &format!("redis://{addr}"),
        RedisAdapterConfig {
            connect_timeout: timeout,
            ..RedisAdapterConfig::default()
        },
    )
    .await
    .expect_err("a silent server is no Redis");
    let took = started.elapsed();
    assert!(
        matches!(err, RedisConnectError::Timeout { timeout: t, .. } if t == timeout),
        "{err:?}"
    );
    assert!(took >= timeout, "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    silent.abort();
}

#[test]
fn connect_timeout_default() {
    assert_eq!(
        RedisAdapterConfig::default().connect_timeout,
        Duration::from_secs(5)
    );
}
