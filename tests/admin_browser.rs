//! The official Admin UI dashboard in a real browser: the chat example with its admin UI on
//! (read-only, no login), the dashboard from `@socket.io/admin-ui`'s `ui/dist` served by the
//! example, opened in headless Chromium (playwright-core), must list the connected test
//! clients, their rooms and the server. A screenshot is saved as
//! `target/admin-ui-screenshot.png` (sockets), `-servers.png` and `-login.png` beside it. The
//! dashboard's login form is tried against a second server with basic auth.
#![cfg(feature = "admin")]

mod common;

#[path = "../examples/chat/app.rs"]
#[allow(dead_code)]
mod app;

#[path = "../examples/chat/admin.rs"]
#[allow(dead_code)]
mod admin;

use std::path::PathBuf;
use std::time::Duration;

use tower_socketio::SocketIo;
use tower_socketio::admin::{AdminAuth, AdminOptions};

fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("TSIO_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|p| p.is_file());
    found.or_else(|| common::missing_service(test, "chromium (TSIO_CHROMIUM or /usr/bin/chromium)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_dashboard_lists_clients_rooms_and_server() {
    let test = "admin_dashboard_lists_clients_rooms_and_server";
    let Some(node) = common::node(test, "@socket.io/admin-ui") else {
        return;
    };
    let Some(chromium) = chromium(test) else {
        return;
    };
    assert!(
        admin::dashboard_dir().is_some(),
        "the dashboard (ui/dist) is not installed"
    );
    let (router, io) = app::router();
    let router = admin::enable(router, &io);
    let server = common::serve_router(router).await;
    // The default server id: hostname and pid.
    let server_id = format!(
        "{}#{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    );
    // A second server with basic auth ("admin" / "changeit"), for the login form; the
    // dashboard comes from the first one, so this one needs CORS.
    let (auth_layer, auth_io) = SocketIo::builder().build_layer();
    auth_io.ns("/", |_: tower_socketio::SocketRef| {});
    auth_io
        .instrument(
            AdminOptions::new().server_id("auth-test").auth(
                AdminAuth::basic(
                    "admin",
                    "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS",
                )
                .expect("hash"),
            ),
        )
        .expect("instrument");
    let auth_server = common::serve_router(
        axum::Router::new()
            .layer(auth_layer)
            .layer(tower_http::cors::CorsLayer::very_permissive()),
    )
    .await;
    let shot = common::repo_root()
        .join("target")
        .join("admin-ui-screenshot.png");
    let out = common::run_script(
        &node.bin,
        &[
            common::clients_dir()
                .join("browser/admin.mjs")
                .to_str()
                .expect("utf-8 path"),
            &server.base_url(),
            shot.to_str().expect("utf-8 path"),
            &server_id,
            &auth_server.base_url(),
        ],
        &common::clients_dir(),
        &[
            ("TSIO_CHROMIUM", chromium.to_str().expect("utf-8 path")),
            ("NODE_PATH", node.modules.to_str().expect("utf-8 path")),
        ],
        Duration::from_secs(120),
    )
    .await;
    let stdout = out.expect_success("the admin UI browser script");
    assert!(
        stdout.lines().any(|l| l == "OK"),
        "script did not finish:\n{stdout}"
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    io.close(Duration::from_secs(2)).await;
    auth_io.close(Duration::from_secs(2)).await;
}
