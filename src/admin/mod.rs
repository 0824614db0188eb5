//! The official Socket.IO Admin UI (npm `@socket.io/admin-ui` 0.5) for this server
//! (feature `admin`).
//!
//! [`SocketIo::instrument`] adds the namespace the dashboard connects to (default `/admin`)
//! and speaks there what the package's own `instrument()` speaks on a Node server: the
//! `config` on connect, `server_stats` every 2 s, the socket list and its changes, the events
//! in development mode, and the `join` / `leave` / `_disconnect` / `emit` commands. Open the
//! dashboard (the package's `ui/dist`, or its hosted copy) and point it at the server's URL.
//!
//! ```no_run
//! use tower_socketio::SocketIo;
//! use tower_socketio::admin::{AdminAuth, AdminOptions};
//!
//! # async fn run() -> Result<(), tower_socketio::admin::AdminError> {
//! let (layer, io) = SocketIo::builder().build_layer();
//! io.instrument(
//!     AdminOptions::new()
//!         // "changeit", hashed with bcrypt
//!         .auth(AdminAuth::basic(
//!             "admin",
//!             "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS",
//!         )?)
//!         .read_only(true),
//! )?;
//! # Ok(()) }
//! ```
//!
//! The dashboard runs on another origin: serve the app with CORS that reflects the origin and
//! allows credentials (`tower_http::cors::CorsLayer::very_permissive()`), or it cannot use
//! long-polling.
//!
//! In a cluster (a cluster adapter), every server is instrumented with its own server id;
//! the dashboard, connected to any of them, sees the stats of each, every socket, and its
//! commands reach sockets on every server.

mod auth;
mod commands;
mod observer;
mod serialize;
mod stats;
mod time;

use std::sync::Arc;
use std::time::Duration;

use crate::io::SocketIo;
use crate::socket::SocketRef;

pub use auth::AdminAuth;

/// Whether the dashboard gets the details of every socket and event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminMode {
    /// Sockets, rooms and every event are reported (the reference's default).
    #[default]
    Development,
    /// Only the periodic server stats: no per-socket or per-event work.
    Production,
}

/// The options of [`SocketIo::instrument`], with the reference's defaults.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    namespace: String,
    auth: AdminAuth,
    read_only: bool,
    server_id: Option<String>,
    mode: AdminMode,
}

impl Default for AdminOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl AdminOptions {
    /// Namespace `/admin`, no authentication, commands allowed, server id
    /// `<hostname>#<pid>`, development mode.
    pub fn new() -> Self {
        Self {
            namespace: "/admin".into(),
            auth: AdminAuth::None,
            read_only: false,
            server_id: None,
            mode: AdminMode::Development,
        }
    }

    /// The namespace the dashboard connects to. Default `/admin`.
    pub fn namespace(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        self.namespace = path;
        self
    }

    /// How the dashboard logs in. Default [`AdminAuth::None`].
    pub fn auth(mut self, auth: AdminAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Refuses every command (join, leave, disconnect, emit); the dashboard shows its
    /// read-only view. Default false.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The name this server has in the dashboard. Default `<hostname>#<pid>` (the form the
    /// reference uses for cluster workers; alone, Node uses the bare hostname), so that
    /// several servers on one host stay apart.
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// Development (default) or production mode.
    pub fn mode(mut self, mode: AdminMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Why [`SocketIo::instrument`] or [`AdminAuth::basic`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The password of [`AdminAuth::basic`] is not a bcrypt hash.
    #[error("the password must be a valid bcrypt hash")]
    InvalidHash,
    /// The server is already instrumented.
    #[error("the server is already instrumented")]
    AlreadyInstrumented,
    /// `instrument` was called outside a tokio runtime (it starts the stats timer).
    #[error("instrument must be called inside a tokio runtime")]
    NoRuntime,
}

/// Time between two `server_stats`, as the reference.
const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// The admin events queued for the dashboards before some are dropped (with a warning):
/// a burst of events never grows memory without bound.
const QUEUE: usize = 8192;

/// The features the dashboard enables, as the reference names them.
fn features(options: &AdminOptions) -> Vec<&'static str> {
    let mut f = if options.read_only {
        Vec::new()
    } else {
        vec![
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
        ]
    };
    f.push("AGGREGATED_EVENTS");
    if options.mode == AdminMode::Development {
        f.push("ALL_EVENTS");
    }
    f
}

fn default_server_id() -> String {
    format!("{}#{}", hostname(), std::process::id())
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl SocketIo {
    /// Makes this server visible to the Socket.IO Admin UI (feature `admin`), as the
    /// reference's `instrument(io, options)`: registers the admin namespace and starts the
    /// stats timer. Call it once, inside a tokio runtime.
    pub fn instrument(&self, options: AdminOptions) -> Result<(), AdminError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| AdminError::NoRuntime)?;
        let shared = self.inner().shared.clone();
        if shared.instrument.get().is_some() {
            return Err(AdminError::AlreadyInstrumented);
        }
        let dev = options.mode == AdminMode::Development;
        let features = serde_json::json!({ "supportedFeatures": features(&options) });
        let read_only = options.read_only;
        let io = Arc::downgrade(self.inner());
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let observer = Arc::new(observer::Observer::new(options.namespace.clone(), dev, tx));
        let on_connect = {
            let io = io.clone();
            let observer = observer.clone();
            move |socket: SocketRef| {
                if !read_only {
                    commands::register(&socket, io.clone());
                }
                // Through the observer's queue, so that it follows this socket's own
                // `socket_connected`, as with the reference.
                observer.send_to(socket.id(), "config", vec![features.clone()]);
                if dev {
                    let io = io.clone();
                    let observer = observer.clone();
                    tokio::spawn(async move {
                        if let Some(io) = io.upgrade() {
                            let all = serialize::all_sockets(&io).await;
                            observer.send_to(socket.id(), "all_sockets", vec![all]);
                        }
                    });
                }
            }
        };
        let handle = self.ns(options.namespace.clone(), on_connect);
        let ns = handle.namespace().clone();
        if let AdminAuth::Basic { .. } = &options.auth {
            handle.with(auth::middleware(options.auth.clone()));
        }
        shared
            .instrument
            .set(observer.clone())
            .map_err(|_| AdminError::AlreadyInstrumented)?;
        rt.spawn(observer::forward(
            rx,
            Arc::downgrade(&ns),
            observer.queued_bytes(),
        ));
        let base = stats::Base {
            server_id: options.server_id.unwrap_or_else(default_server_id),
            hostname: hostname(),
            pid: std::process::id(),
            started: std::time::Instant::now(),
        };
        rt.spawn(stats::run(base, io, observer));
        Ok(())
    }
}
