//! The Postgres emitter against the real thing: it drives a mixed cluster (a Rust server
//! with our Postgres adapter, a Node server with `@socket.io/postgres-adapter`,
//! `socket.io-client` sockets on both) exactly as a server node's own operations do, and an
//! unreachable PostgreSQL is an error, never a hang.
#![cfg(feature = "postgres")]

mod common;
mod emitter_support;

use std::time::Duration;

use tower_socketio::adapter::postgres::{PostgresAdapterConfig, PostgresLink};
use tower_socketio::emitter::{Emitter, EmitterError, PostgresEmitterConfig};

/// The PostgreSQL to use: `TSIO_POSTGRES_URL`, else the local default if it answers.
async fn pg_url(test: &str) -> Option<String> {
    let url = std::env::var("TSIO_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let config: tokio_postgres::Config = url.parse().expect("TSIO_POSTGRES_URL parses");
    match config.connect(tokio_postgres::NoTls).await {
        Ok(_) => Some(url),
        Err(e) => common::missing_service(test, &format!("PostgreSQL at {url} ({e})")),
    }
}

/// A lower-case identifier unique to this test run.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "tsio_em_{what}_{:x}_{:x}",
        std::process::id(),
        nanos & 0xffff_ffff
    )
}

/// Drops the test's attachments table at the end, pass or fail.
struct DropTable {
    url: String,
    table: String,
}

impl Drop for DropTable {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP TABLE IF EXISTS {}", self.table);
        // Drop runs inside the test's runtime: a thread of its own may block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let config: tokio_postgres::Config = url.parse().expect("url");
                if let Ok((client, conn)) = config.connect(tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_mixed_cluster_like_a_server_node() {
    let test = "postgres drives_a_mixed_cluster_like_a_server_node";
    let Some(url) = pg_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/postgres-adapter") else {
        return;
    };
    let (prefix, table) = (unique("ch"), unique("att"));
    let _drop = DropTable {
        url: url.clone(),
        table: table.clone(),
    };
    let link = PostgresLink::connect(
        &url,
        PostgresAdapterConfig {
            channel_prefix: prefix.clone(),
            table_name: table.clone(),
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .expect("connect to postgres");
    let waiting = link.clone();
    let rust = emitter_support::rust_node(
        link.factory(),
        || async move { waiting.wait_listening().await },
        Box::new(link),
    )
    .await;
    let emitter = Emitter::postgres(
        &url,
        PostgresEmitterConfig {
            channel_prefix: prefix.clone(),
            table_name: table.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("emitter connects");
    let adapter = ["postgres".to_owned(), url.clone(), prefix, table.clone()];
    emitter_support::mixed_cluster(&node, &adapter, rust, emitter).await;
}

#[tokio::test]
async fn fails_fast_without_postgres_or_with_a_bad_table() {
    // Nothing listens on port 1: refused at once.
    let started = std::time::Instant::now();
    let err = Emitter::postgres(
        "postgres://postgres:secret@127.0.0.1:1/test",
        PostgresEmitterConfig::default(),
    )
    .await
    .expect_err("nothing listens there");
    assert!(matches!(err, EmitterError::Unreachable { .. }), "{err:?}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = Emitter::postgres(
        "postgres://postgres@127.0.0.1:5432/test",
        PostgresEmitterConfig {
            table_name: "t; DROP TABLE x".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("a table name that is not an identifier");
    assert!(err.to_string().contains("table name"), "{err}");
}
