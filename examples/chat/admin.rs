//! The Socket.IO Admin UI for the chat: read-only, no login, off unless asked for
//! (`CHAT_ADMIN=1`, feature `admin`).
//!
//! The dashboard itself (npm `@socket.io/admin-ui`'s `ui/dist`) is served under `/admin-ui/`
//! when `tests/clients/node_modules` has it (`scripts/test.sh` installs it), or from
//! `ADMIN_UI_DIR`; the hosted dashboard works too, thanks to the CORS layer added here.

use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::cors::CorsLayer;
use tower_socketio::SocketIo;
use tower_socketio::admin::AdminOptions;

/// Where the built dashboard is, if installed.
pub fn dashboard_dir() -> Option<PathBuf> {
    std::env::var_os("ADMIN_UI_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            Some(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/clients/node_modules/@socket.io/admin-ui/ui/dist"),
            )
        })
        .filter(|d| d.join("index.html").is_file())
}

/// Whether the environment asks for the admin UI (`CHAT_ADMIN` set to anything but `0`).
pub fn wanted() -> bool {
    std::env::var("CHAT_ADMIN").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Instruments `io` (read-only, no login) and adds the dashboard's routes and CORS to `app`.
pub fn enable(app: Router, io: &SocketIo) -> Router {
    if let Err(e) = io.instrument(AdminOptions::new().read_only(true)) {
        tracing::warn!(error = %e, "admin UI not enabled");
        return app;
    }
    app.route(
        "/admin-ui",
        get(|| async { Redirect::permanent("/admin-ui/") }),
    )
    .route("/admin-ui/", get(|| file(String::from("index.html"))))
    .route(
        "/admin-ui/{*path}",
        get(|UrlPath(path): UrlPath<String>| file(path)),
    )
    // The hosted dashboard is another origin: it needs the origin reflected, with
    // credentials, to use long-polling.
    .layer(CorsLayer::very_permissive())
}

/// One file of the dashboard; paths that climb out of its folder are not found.
async fn file(path: String) -> Response {
    let Some(dir) = dashboard_dir() else {
        return (
            StatusCode::NOT_FOUND,
            "the dashboard is not installed here: run `npm install` in tests/clients, \
             or open the hosted Admin UI and connect it to this server",
        )
            .into_response();
    };
    let rel = Path::new(&path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let kind = match rel.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("map") => "application/json",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(dir.join(rel)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
