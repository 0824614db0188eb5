//! The chat app: its Socket.IO handlers and its routes. `main.rs` serves it; the browser
//! test serves it too.
//!
//! Everything per user lives in the socket's own store (`Socket::extensions`); rooms and
//! broadcasts do the fan-out.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tower_socketio::adapter::RecoveryConfig;
use tower_socketio::{
    AckSender, Binary, ConnectRejection, Data, Extension, SocketIo, SocketIoBuilder, SocketRef,
    State,
};

/// Nicknames in use, each with the token of the page that holds it, so a page that
/// reconnects gets its own nickname back.
#[derive(Clone, Default)]
struct Users(Arc<Mutex<HashMap<String, String>>>);

impl Users {
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

#[derive(Debug, Deserialize)]
struct Auth {
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    token: String,
}

/// The user behind a socket, stored in the socket's extensions.
#[derive(Debug, Clone)]
struct Nick(String);

/// The room a socket chats in.
#[derive(Debug, Clone)]
struct CurrentRoom(String);

#[derive(Debug, Deserialize)]
struct Outgoing {
    text: String,
}

#[derive(Debug, Serialize)]
struct ChatMessage<'a> {
    from: &'a str,
    room: &'a str,
    text: &'a str,
    ts: u64,
}

#[derive(Debug, Deserialize, Serialize)]
struct FileMsg {
    name: String,
    mime: String,
    data: Binary,
}

#[derive(Debug, Serialize)]
struct FileOut<'a> {
    from: &'a str,
    room: &'a str,
    name: &'a str,
    mime: &'a str,
    data: &'a Binary,
}

const DEFAULT_ROOM: &str = "general";
const MAX_FILE: usize = 512 * 1024;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn valid_nickname(n: &str) -> Result<(), ConnectRejection> {
    let n = n.trim();
    if n.is_empty() {
        return Err(ConnectRejection::new("Pick a nickname"));
    }
    if n.chars().count() > 24 || n.chars().any(char::is_control) {
        return Err(ConnectRejection::new(
            "Nicknames are 1 to 24 printable characters",
        ));
    }
    Ok(())
}

/// Connect middleware: refuses an empty, invalid or taken nickname with a visible reason.
fn check_nickname(
    Data(auth): Data<Auth>,
    State(users): State<Users>,
) -> Result<(), ConnectRejection> {
    valid_nickname(&auth.nickname)?;
    let users = users
        .0
        .lock()
        .map_err(|_| ConnectRejection::new("server error"))?;
    match users.get(auth.nickname.trim()) {
        Some(token) if *token != auth.token || auth.token.is_empty() => Err(ConnectRejection::new(
            format!("The nickname {:?} is taken", auth.nickname.trim()),
        )
        .with_data(serde_json::json!({ "reason": "taken" }))),
        _ => Ok(()),
    }
}

fn join_room(socket: &SocketRef, room: &str) {
    if let Some(CurrentRoom(old)) = socket.extensions().get::<CurrentRoom>() {
        socket.leave(old);
    }
    socket.join(room);
    socket.extensions().insert(CurrentRoom(room.to_owned()));
}

async fn on_connect(socket: SocketRef, Data(auth): Data<Auth>, State(users): State<Users>) {
    let nick = auth.nickname.trim().to_owned();
    if let Ok(mut u) = users.0.lock() {
        u.insert(nick.clone(), auth.token.clone());
    }
    socket.extensions().insert(Nick(nick.clone()));
    // A recovered socket (back after a short network loss) keeps its room and has already
    // been sent every message it missed.
    let room = match socket.extensions().get::<CurrentRoom>() {
        Some(CurrentRoom(room)) if socket.recovered() => room,
        _ => {
            join_room(&socket, DEFAULT_ROOM);
            DEFAULT_ROOM.to_owned()
        }
    };
    tracing::info!(%nick, sid = %socket.id(), recovered = socket.recovered(), transport = socket.transport().as_str(), "joined");

    socket.on(
        "join",
        |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
            let room = room.trim().to_owned();
            if room.is_empty() || room.len() > 32 {
                ack.send(&serde_json::json!({ "error": "Room names are 1 to 32 characters" }))
                    .ok();
                return;
            }
            join_room(&socket, &room);
            ack.send(&serde_json::json!({ "room": room })).ok();
        },
    );

    socket.on(
        "message",
        |socket: SocketRef,
         Data(msg): Data<Outgoing>,
         Extension(Nick(from)): Extension<Nick>,
         Extension(CurrentRoom(room)): Extension<CurrentRoom>,
         ack: AckSender| async move {
            let text = msg.text.trim();
            if text.is_empty() || text.len() > 2000 {
                ack.send(&serde_json::json!({ "error": "Messages are 1 to 2000 bytes" }))
                    .ok();
                return;
            }
            let out = ChatMessage {
                from: &from,
                room: &room,
                text,
                ts: now_ms(),
            };
            let delivered = socket
                .to(room.clone())
                .emit("message", &out)
                .await
                .unwrap_or(0);
            ack.send(&serde_json::json!({ "ok": true, "ts": out.ts, "delivered": delivered }))
                .ok();
        },
    );

    socket.on(
        "typing",
        |socket: SocketRef,
         Data(typing): Data<bool>,
         Extension(Nick(from)): Extension<Nick>,
         Extension(CurrentRoom(room)): Extension<CurrentRoom>| async move {
            // Volatile: a typing hint that cannot be sent now is worthless later.
            socket
                .to(room)
                .volatile()
                .emit(
                    "typing",
                    &serde_json::json!({ "from": from, "typing": typing }),
                )
                .await
                .ok();
        },
    );

    socket.on(
        "file",
        |socket: SocketRef,
         Data(file): Data<FileMsg>,
         Extension(Nick(from)): Extension<Nick>,
         Extension(CurrentRoom(room)): Extension<CurrentRoom>,
         ack: AckSender| async move {
            if file.data.0.len() > MAX_FILE {
                ack.send(&serde_json::json!({ "error": "Files are at most 512 KiB" }))
                    .ok();
                return;
            }
            let out = FileOut {
                from: &from,
                room: &room,
                name: &file.name,
                mime: &file.mime,
                data: &file.data,
            };
            let delivered = socket
                .to(room.clone())
                .emit("file", &out)
                .await
                .unwrap_or(0);
            ack.send(&serde_json::json!({ "ok": true, "delivered": delivered }))
                .ok();
        },
    );

    socket.on_disconnect(
        |socket: SocketRef, State(users): State<Users>, Extension(Nick(nick)): Extension<Nick>| async move {
            if let Ok(mut u) = users.0.lock() {
                u.remove(&nick);
            }
            tracing::info!(%nick, "left");
            socket.broadcast().emit("users", &users.names()).await.ok();
        },
    );

    socket
        .emit(
            "welcome",
            &serde_json::json!({ "nickname": nick, "room": room, "recovered": socket.recovered() }),
        )
        .ok();
    socket.nsp().emit("users", &users.names()).await.ok();
}

/// The browser bundle of socket.io-client, from npm's install when there is one.
fn client_bundle() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/node_modules/socket.io-client/dist/socket.io.min.js");
    p.is_file().then_some(p)
}

const CDN_BUNDLE: &str = "https://cdn.socket.io/4.8.1/socket.io.min.js";

async fn bundle() -> Response {
    match client_bundle().map(std::fs::read) {
        Some(Ok(js)) => ([(header::CONTENT_TYPE, "text/javascript")], js).into_response(),
        _ => Redirect::temporary(CDN_BUNDLE).into_response(),
    }
}

/// The chat app: the page, the client bundle, and the Socket.IO layer.
pub fn router() -> (Router, SocketIo) {
    router_with(|b| b)
}

/// The chat app, with the builder adjusted by `tune` (an adapter, other settings).
pub fn router_with(tune: impl FnOnce(SocketIoBuilder) -> SocketIoBuilder) -> (Router, SocketIo) {
    let builder = SocketIo::builder()
        .with_state(Users::default())
        // Users who lose the network for a moment get back every message they missed.
        .connection_state_recovery(RecoveryConfig::default());
    let (layer, io) = tune(builder).build_layer();
    io.ns("/", on_connect).with(check_nickname);
    let app = Router::new()
        .route("/", get(|| async { Html(include_str!("index.html")) }))
        .route("/vendor/socket.io.min.js", get(bundle))
        .layer(layer);
    (app, io)
}

/// Where the page's socket.io-client bundle comes from.
pub fn bundle_source() -> &'static str {
    if client_bundle().is_some() {
        "npm install"
    } else {
        "CDN"
    }
}
