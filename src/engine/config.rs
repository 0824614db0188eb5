//! Engine.IO configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

/// Which transports the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Self {
            polling: true,
            websocket: true,
        }
    }
}

/// A hook that sees the request parts of every handshake and upgrade and may refuse it.
///
/// `Err(message)` answers HTTP 403 with `{"code":4,"message":message}` (a WebSocket handshake
/// or upgrade: 400 with the message as text, as the reference).
pub type AllowRequest = Arc<dyn Fn(&Parts) -> Result<(), String> + Send + Sync>;

/// Engine.IO settings. Build one with [`EngineConfig::builder`]; the defaults are those of the
/// reference Node.js server.
#[derive(Clone)]
pub struct EngineConfig {
    /// Path the engine answers, without trailing slash. Default `/engine.io`.
    pub path: String,
    /// Time between two server pings. Default 25 s.
    pub ping_interval: Duration,
    /// Time the client has to answer a ping. Default 20 s.
    pub ping_timeout: Duration,
    /// Time a started upgrade may take before it is cancelled. Default 10 s.
    pub upgrade_timeout: Duration,
    /// Largest message or polling body accepted, in bytes; also the largest polling response.
    /// Default 1 000 000.
    pub max_payload: usize,
    /// Accepted transports. Default both.
    pub transports: Transports,
    /// Whether polling sessions may upgrade to WebSocket. Default true.
    pub allow_upgrades: bool,
    /// Packets that may wait in one session's outgoing queue. A send to a full queue fails with
    /// [`SendError::Full`](super::SendError::Full). Default 256.
    pub max_buffered_packets: usize,
    /// Read buffer size of each WebSocket connection, in bytes. Small keeps idle connections
    /// cheap; it grows for larger messages up to `max_payload`. Default 4 096.
    pub ws_read_buffer_size: usize,
    /// Optional hook that can refuse a handshake or upgrade (check `Origin` here: CORS headers
    /// do not protect WebSocket upgrades). Default none.
    pub allow_request: Option<AllowRequest>,
    /// Whether clients speaking Engine.IO v3 (`EIO=3`, as `socket.io-client` 2.x does) are
    /// accepted, as the reference server's `allowEIO3`. Off by default: such a handshake is
    /// refused with code 5. See [`EngineProtocol`](super::EngineProtocol) for what changes.
    pub allow_eio3: bool,
    /// Compress long-polling responses of at least this many bytes with gzip or deflate,
    /// when the client accepts it (feature `compression`; the reference server's
    /// `httpCompression.threshold`). Default `None`: off.
    pub http_compression: Option<usize>,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("transports", &self.transports)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("max_buffered_packets", &self.max_buffered_packets)
            .field("ws_read_buffer_size", &self.ws_read_buffer_size)
            .field("allow_request", &self.allow_request.is_some())
            .field("allow_eio3", &self.allow_eio3)
            .finish()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            path: "/engine.io".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            transports: Transports::default(),
            allow_upgrades: true,
            max_buffered_packets: 256,
            ws_read_buffer_size: 4096,
            allow_request: None,
            allow_eio3: false,
            http_compression: None,
        }
    }
}

impl EngineConfig {
    /// Starts a builder from the defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder(Self::default())
    }
}

/// Builder for [`EngineConfig`]; every setting starts at its documented default.
#[derive(Debug, Clone, Default)]
pub struct EngineConfigBuilder(EngineConfig);

impl EngineConfigBuilder {
    /// Path to answer (a trailing slash is ignored). Default `/engine.io`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.0.path = normalize_path(path.into());
        self
    }
    /// Time between pings. Default 25 s.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.0.ping_interval = d;
        self
    }
    /// Time to answer a ping. Default 20 s.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.0.ping_timeout = d;
        self
    }
    /// Time an upgrade may take. Default 10 s.
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.0.upgrade_timeout = d;
        self
    }
    /// Largest message or polling body, in bytes. Default 1 000 000.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.0.max_payload = bytes.max(16);
        self
    }
    /// Accepted transports. Default both.
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.0.transports = Transports { polling, websocket };
        self
    }
    /// Whether polling sessions may upgrade to WebSocket. Default true.
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.0.allow_upgrades = allow;
        self
    }
    /// Bound of each session's outgoing queue, in packets. Default 256.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.0.max_buffered_packets = n.max(1);
        self
    }
    /// Read buffer of each WebSocket, in bytes. Default 4 096.
    pub fn ws_read_buffer_size(mut self, n: usize) -> Self {
        self.0.ws_read_buffer_size = n.max(256);
        self
    }
    /// A hook over the request parts of handshakes and upgrades; `Err(msg)` refuses (403 on
    /// polling, 400 on WebSocket, as the reference).
    pub fn allow_request<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Result<(), String> + Send + Sync + 'static,
    {
        self.0.allow_request = Some(Arc::new(f));
        self
    }
    /// Accepts Engine.IO v3 clients (`socket.io-client` 2.x) besides v4 ones, as the reference
    /// server's `allowEIO3`. Default false.
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.0.allow_eio3 = allow;
        self
    }
    /// Compresses polling responses of at least `threshold` bytes (feature `compression`).
    pub fn http_compression(mut self, threshold: usize) -> Self {
        self.0.http_compression = Some(threshold);
        self
    }
    /// Finishes the configuration.
    pub fn build(self) -> EngineConfig {
        self.0
    }
}

/// `/`-prefixed, without trailing slash.
pub(crate) fn normalize_path(mut p: String) -> String {
    while p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    p
}
