//! Login to the admin namespace: none, or a username and a bcrypt-hashed password, with
//! the session ids the dashboard keeps to log in again without the password.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::AdminError;
use crate::extract::TryData;
use crate::handler::ConnectRejection;
use crate::socket::SocketRef;

/// How the dashboard logs in.
#[derive(Clone, Default)]
pub enum AdminAuth {
    /// Anyone who reaches the namespace is in (the reference's `auth: false`).
    #[default]
    None,
    /// A username and a bcrypt hash of the password (the reference's `type: "basic"`).
    Basic {
        /// The username.
        username: String,
        /// The bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`) of the password.
        password_hash: String,
    },
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

impl AdminAuth {
    /// Basic authentication; fails when `password_hash` is not a bcrypt hash (make one with
    /// `bcrypt::hash("<password>", 10)` or Node's `require("bcryptjs").hashSync`).
    pub fn basic(
        username: impl Into<String>,
        password_hash: impl Into<String>,
    ) -> Result<Self, AdminError> {
        let password_hash = password_hash.into();
        bcrypt::HashParts::from_str(&password_hash).map_err(|_| AdminError::InvalidHash)?;
        Ok(Self::Basic {
            username: username.into(),
            password_hash,
        })
    }
}

/// Session ids handed out on login, oldest forgotten first beyond [`MAX_SESSIONS`].
#[derive(Default)]
struct Sessions {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

const MAX_SESSIONS: usize = 1024;

impl Sessions {
    fn add(&mut self, id: String) {
        if self.order.len() >= MAX_SESSIONS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(id.clone());
        self.order.push_back(id);
    }
}

fn field<'a>(auth: &'a Value, key: &str) -> Option<&'a str> {
    auth.get(key).and_then(Value::as_str)
}

/// The connect middleware of the admin namespace: a known `sessionId`, or the right
/// `username` and `password`, else `invalid credentials`. A fresh login gets a `session`
/// event with its new session id, ahead of the CONNECT reply as with the reference.
/// The verdict of the admin namespace's connect middleware.
type Verdict =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ConnectRejection>> + Send>>;

pub(super) fn middleware(
    auth: AdminAuth,
) -> impl Fn(SocketRef, TryData<Value>) -> Verdict + Clone + Send + Sync + 'static {
    let sessions = Arc::new(Mutex::new(Sessions::default()));
    let auth = Arc::new(auth);
    move |socket: SocketRef, TryData(given): TryData<Value>| {
        let sessions = sessions.clone();
        let auth = auth.clone();
        Box::pin(async move {
            let refused = || ConnectRejection::new("invalid credentials");
            let AdminAuth::Basic {
                username,
                password_hash,
            } = &*auth
            else {
                return Ok(());
            };
            let given = given.unwrap_or(Value::Null);
            if let Some(id) = field(&given, "sessionId") {
                if sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .ids
                    .contains(id)
                {
                    return Ok(());
                }
            }
            if field(&given, "username") != Some(username.as_str()) {
                return Err(refused());
            }
            let Some(password) = field(&given, "password").map(str::to_owned) else {
                return Err(refused());
            };
            let hash = password_hash.clone();
            // bcrypt takes tens of milliseconds by design: off the async workers.
            let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(false);
            if !ok {
                return Err(refused());
            }
            let id = format!("{:016x}", rand::random::<u64>());
            sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(id.clone());
            // The socket is not connected yet: queue the event on the connection itself.
            if let Ok(enc) = socket
                .parser()
                .event(socket.ns(), "session", &id, None, false)
            {
                let _ = socket.session.send_all(enc.frames(), enc.len());
            }
            Ok(())
        })
    }
}
