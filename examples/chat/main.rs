//! The chat demo: nicknames, rooms, acknowledged messages, "is typing", binary files.
//!
//! `cargo run --example chat`, then open <http://127.0.0.1:3000> in two browser windows.
//! Set `ADDR` to listen elsewhere.
//!
//! The Socket.IO Admin UI, read-only and without login:
//! `CHAT_ADMIN=1 cargo run --example chat --features admin`, then open
//! <http://127.0.0.1:3000/admin-ui/> and connect to `http://127.0.0.1:3000`.
//!
//! The page loads the official `socket.io-client` browser bundle from
//! `tests/clients/node_modules` when `npm` installed it there (`scripts/test.sh` does), else
//! from a CDN.

use std::net::SocketAddr;

#[cfg(feature = "admin")]
mod admin;
mod app;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_socketio=info".into()),
        )
        .init();

    let (app, io) = app::router();
    #[cfg(feature = "admin")]
    let app = if admin::wanted() {
        println!("admin UI on /admin-ui/ (read-only, no login)");
        admin::enable(app, &io)
    } else {
        app
    };
    #[cfg(not(feature = "admin"))]
    if std::env::var_os("CHAT_ADMIN").is_some() {
        eprintln!("CHAT_ADMIN needs the admin feature: cargo run --example chat --features admin");
    }
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "chat on http://{} (socket.io-client bundle from {})",
        listener.local_addr()?,
        app::bundle_source()
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        io.close(std::time::Duration::from_secs(2)).await;
    })
    .await
}
