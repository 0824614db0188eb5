//! A background worker that is not a Socket.IO server: it pushes into the chat cluster of
//! `examples/cluster` through Redis with an [`Emitter`] (feature `redis`).
//!
//! ```text
//! cargo run --example cluster --features redis -- 2     # the chat on ports 3001, 3002
//! cargo run --example worker --features redis -- general # this worker, room "general"
//! ```
//!
//! Every 5 s a clock tick appears in the room on every server, and every 3rd tick a
//! "job done" message arrives with the job's report attached as a binary file. Environment:
//! `REDIS_URL` (default `redis://127.0.0.1:6379`), `TICK_SECS` (default 5). A Node.js
//! server with `@socket.io/redis-adapter` on the same Redis gets the same events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tower_socketio::Binary;
use tower_socketio::emitter::{Emitter, RedisEmitterConfig};

/// A chat line, as the chat servers send them (`examples/chat/app.rs`).
#[derive(Serialize)]
struct Message<'a> {
    from: &'a str,
    room: &'a str,
    text: String,
    ts: u64,
}

/// A file, as the chat servers relay them: the page shows it as a download.
#[derive(Serialize)]
struct File<'a> {
    from: &'a str,
    room: &'a str,
    name: String,
    mime: &'a str,
    data: Binary,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let room = std::env::args().nth(1).unwrap_or_else(|| "general".into());
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let every = std::env::var("TICK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_secs);

    // Fails at once (or within the timeout) when Redis is not there: no silent hang.
    let emitter = Emitter::redis(&redis, RedisEmitterConfig::default()).await?;
    let to_room = emitter.to(room.as_str());
    println!("worker: pushing to room {room:?} through {redis} every {every:?}");

    let mut clock = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    for tick in 1u64.. {
        tokio::select! {
            _ = clock.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let ts = now();
        let secs = ts.as_secs() % 86_400;
        let text = format!(
            "tick {:02}:{:02}:{:02} UTC",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        let line = Message {
            from: "clock",
            room: &room,
            text,
            ts: ts.as_millis() as u64,
        };
        // A publish that fails (Redis down) is reported; the worker keeps its schedule and
        // the emitter reconnects by itself.
        if let Err(e) = to_room.emit("message", &line).await {
            eprintln!("worker: tick not delivered: {e}");
            continue;
        }
        if tick % 3 == 0 {
            let job = tick / 3;
            let report = format!("job {job}: finished at {} ms since the epoch\n", line.ts);
            let done = Message {
                from: "worker",
                room: &room,
                text: format!("job {job} done"),
                ts: line.ts,
            };
            let file = File {
                from: "worker",
                room: &room,
                name: format!("job-{job}.txt"),
                mime: "text/plain",
                data: Binary::from(report.into_bytes()),
            };
            if let Err(e) = to_room.emit("message", &done).await {
                eprintln!("worker: job {job} not announced: {e}");
            } else if let Err(e) = to_room.emit("file", &file).await {
                eprintln!("worker: job {job} report not delivered: {e}");
            }
        }
    }
    println!("worker: stopped");
    Ok(())
}
