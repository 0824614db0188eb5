//! Helpers shared by the integration tests: a real axum server on a loopback port, the
//! external client runtimes (Node.js, Python) and running a client script with a time limit.
//!
//! Nothing here knows about Engine.IO or Socket.IO, so every test crate can use it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::Route;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::{Layer, Service};

/// Default limit for one network step of a test (a request, a message, an event).
pub const STEP: Duration = Duration::from_secs(5);

/// Default limit for a whole client script.
pub const SCRIPT: Duration = Duration::from_secs(30);

/// Awaits `fut` for at most `limit`, panicking with `what` when it takes longer: a test must
/// fail, not hang.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// [`within`] with the default [`STEP`] limit.
pub async fn step<F: Future>(what: &str, fut: F) -> F::Output {
    within(STEP, what, fut).await
}

/// Checks `cond` every 20 ms until it holds, panicking with `what` after `limit`: the way a
/// test waits for something to have happened (never a fixed sleep).
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An axum server on `127.0.0.1:<ephemeral>`, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    parked: Arc<AtomicUsize>,
}

impl TestServer {
    /// `http://127.0.0.1:<port>` followed by `path_and_query` (which starts with `/`).
    pub fn http_url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }
    /// `ws://127.0.0.1:<port>` followed by `path_and_query`.
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }
    /// `http://127.0.0.1:<port>`, the base URL handed to client scripts.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until at least `n` requests are parked in the server: their handling started
    /// and now waits (a long-poll GET for data, a POST for the rest of its body). How a
    /// test knows a request "reached the server and waits there", instead of sleeping.
    pub async fn parked(&self, n: usize, what: &str) {
        wait_until(STEP, what, || async {
            self.parked.load(Ordering::Acquire) >= n
        })
        .await;
    }

    /// The count behind [`parked`](Self::parked), for a harness that polls it itself.
    pub fn parked_counter(&self) -> Arc<AtomicUsize> {
        self.parked.clone()
    }
}

/// Counts the requests whose future returned `Pending` and has not finished yet.
#[derive(Clone)]
struct ParkedLayer(Arc<AtomicUsize>);

impl<S> Layer<S> for ParkedLayer {
    type Service = ParkedService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ParkedService {
            inner,
            parked: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct ParkedService<S> {
    inner: S,
    parked: Arc<AtomicUsize>,
}

impl<S, R> Service<R> for ParkedService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ParkedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        ParkedFuture {
            inner: Box::pin(self.inner.call(req)),
            parked: self.parked.clone(),
            counted: false,
        }
    }
}

struct ParkedFuture<F> {
    inner: Pin<Box<F>>,
    parked: Arc<AtomicUsize>,
    counted: bool,
}

impl<F: Future> Future for ParkedFuture<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = self.inner.as_mut().poll(cx);
        match (&out, self.counted) {
            (Poll::Pending, false) => {
                self.counted = true;
                self.parked.fetch_add(1, Ordering::AcqRel);
            }
            (Poll::Ready(_), true) => {
                self.counted = false;
                self.parked.fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
        }
        out
    }
}

impl<F> Drop for ParkedFuture<F> {
    fn drop(&mut self) {
        if self.counted {
            self.parked.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` (with `ConnectInfo<SocketAddr>` available to handlers) on a fresh loopback
/// port.
pub async fn serve_router(router: Router) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let parked = Arc::new(AtomicUsize::new(0));
    let app = router
        .layer(ParkedLayer(parked.clone()))
        .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("test server stopped: {e}");
        }
    });
    TestServer { addr, task, parked }
}

/// Serves a router that has no routes of its own, only `layer` in front of axum's 404
/// fallback: every request reaches the layer first.
pub async fn serve_layer<L>(layer: L) -> TestServer
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    serve_router(
        Router::new()
            .route("/", axum::routing::get(|| async { "tower-socketio test" }))
            .layer(layer),
    )
    .await
}

/// The crate root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/clients`, where the client scripts and their `node_modules` live.
pub fn clients_dir() -> PathBuf {
    repo_root().join("tests").join("clients")
}

/// A file named by an environment variable; unset, empty or not a file is `None`.
fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether `TSIO_REQUIRE_SERVICES` asks for missing services to fail the tests.
pub fn services_required() -> bool {
    matches!(
        std::env::var("TSIO_REQUIRE_SERVICES").as_deref(),
        Ok("1" | "true" | "TRUE" | "True" | "yes" | "YES" | "on")
    )
}

/// A missing external service: panics under `TSIO_REQUIRE_SERVICES=1`, otherwise prints a
/// loud skip notice. Returns `None` so callers can `let Some(x) = ... else { return };`.
pub fn missing_service<T>(test: &str, what: &str) -> Option<T> {
    if services_required() {
        panic!(
            "{test}: {what} is not available and TSIO_REQUIRE_SERVICES=1 \
             (run scripts/test.sh to install it)"
        );
    }
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! SKIPPED {test}: {what} is not available.\n\
         !!! Run `bash scripts/test.sh` (or set TSIO_REQUIRE_SERVICES=1 to fail).\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

/// Node.js with the reference packages of `tests/clients/package.json` installed.
#[derive(Debug, Clone)]
pub struct Node {
    /// The `node` binary.
    pub bin: PathBuf,
    /// The `node_modules` directory holding `engine.io-client`, `socket.io-client`, ...
    pub modules: PathBuf,
}

/// Finds Node.js (`TSIO_NODE`, else `node` on `PATH`) and the test packages (`TSIO_NODE_MODULES`,
/// else `tests/clients/node_modules`), requiring `package` to be installed there.
pub fn node(test: &str, package: &str) -> Option<Node> {
    let Some(bin) = env_path("TSIO_NODE").or_else(|| on_path("node")) else {
        return missing_service(test, "node (TSIO_NODE / PATH)");
    };
    let modules = std::env::var_os("TSIO_NODE_MODULES")
        .filter(|v| !v.is_empty())
        .map_or_else(|| clients_dir().join("node_modules"), PathBuf::from);
    if !modules.join(package).join("package.json").is_file() {
        return missing_service(
            test,
            &format!("the npm package {package} in {}", modules.display()),
        );
    }
    Some(Node { bin, modules })
}

/// Finds a Python interpreter that can import `module`: `TSIO_PYTHON`, else the venv that
/// `scripts/test.sh` builds in `target/pyenv`.
pub fn python(test: &str, module: &str) -> Option<PathBuf> {
    let candidate = env_path("TSIO_PYTHON").or_else(|| {
        let venv = repo_root()
            .join("target")
            .join("pyenv")
            .join("bin")
            .join("python");
        venv.is_file().then_some(venv)
    });
    let Some(bin) = candidate else {
        return missing_service(test, "python with a venv (TSIO_PYTHON / target/pyenv)");
    };
    let importable = std::process::Command::new(&bin)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        return missing_service(
            test,
            &format!("the python module {module} (in {})", bin.display()),
        );
    }
    Some(bin)
}

/// What a client script printed and how it ended.
#[derive(Debug)]
pub struct ScriptOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptOutput {
    /// The stdout of a script that exited 0; panics with everything it printed otherwise.
    pub fn expect_success(self, what: &str) -> String {
        assert!(
            self.success,
            "{what} failed (exit code {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self.stdout
    }
}

/// Runs `program args...` in `cwd` with extra `envs`, killing it after `limit`.
///
/// Panics if it cannot start or runs out of time (with what it printed so far).
pub async fn run_script(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    envs: &[(&str, &str)],
    limit: Duration,
) -> ScriptOutput {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_task = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s).await;
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_task = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s).await;
        String::from_utf8_lossy(&s).into_owned()
    });
    let status = tokio::time::timeout(limit, child.wait()).await;
    let status = match status {
        Ok(s) => s.expect("wait for client script"),
        Err(_) => {
            let _ = child.kill().await;
            let stdout = out_task.await.unwrap_or_default();
            let stderr = err_task.await.unwrap_or_default();
            panic!(
                "{} {args:?} timed out after {limit:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                program.display()
            );
        }
    };
    ScriptOutput {
        success: status.success(),
        code: status.code(),
        stdout: out_task.await.unwrap_or_default(),
        stderr: err_task.await.unwrap_or_default(),
    }
}

/// Runs a Node.js script (path relative to `tests/clients`) with `tests/clients` as working
/// directory, so that bare imports resolve to the installed reference packages.
/// `TSIO_NODE_MODULES` is passed on for scripts that import by path.
pub async fn run_node(node: &Node, script: &str, args: &[&str], limit: Duration) -> ScriptOutput {
    let script_path = clients_dir().join(script);
    let mut all: Vec<&str> = vec![script_path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let modules = node.modules.to_str().expect("utf-8 path");
    run_script(
        &node.bin,
        &all,
        &clients_dir(),
        &[("TSIO_NODE_MODULES", modules), ("NODE_PATH", modules)],
        limit,
    )
    .await
}

/// Runs a Python script (path relative to `tests/clients`) unbuffered.
pub async fn run_python(
    python: &Path,
    script: &str,
    args: &[&str],
    limit: Duration,
) -> ScriptOutput {
    let script_path = clients_dir().join(script);
    let mut all: Vec<&str> = vec!["-u", script_path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_script(
        python,
        &all,
        &clients_dir(),
        &[("PYTHONUNBUFFERED", "1")],
        limit,
    )
    .await
}

/// How a client reaches the server: long-polling only, WebSocket only, or polling then
/// upgrade.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Polling,
    WebSocket,
    Upgrade,
}

impl Mode {
    /// The name client scripts take.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::WebSocket => "websocket",
            Mode::Upgrade => "upgrade",
        }
    }
    /// The engine transport the client ends up on.
    pub fn final_transport(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::WebSocket | Mode::Upgrade => "websocket",
        }
    }
}

/// One test per transport mode: `mod $name { polling, websocket, upgrade }`, each calling
/// `$name(Mode)` of the file (which must import `common::Mode`).
#[allow(unused_macros)]
macro_rules! per_transport {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn polling() {
                super::$name(super::Mode::Polling).await
            }
            #[tokio::test]
            async fn websocket() {
                super::$name(super::Mode::WebSocket).await
            }
            #[tokio::test]
            async fn upgrade() {
                super::$name(super::Mode::Upgrade).await
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use per_transport;
