//! The chat example in a real browser: headless Chromium driven by playwright-core, two
//! users (one on long-polling, one upgraded to WebSocket), a refused nickname, acked
//! messages, the typing indicator, a binary file and rooms. A screenshot of both pages is
//! saved as `target/chat-screenshot.png`.

mod common;

#[path = "../examples/chat/app.rs"]
#[allow(dead_code)]
mod app;

use std::path::PathBuf;
use std::time::Duration;

fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("TSIO_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|p| p.is_file());
    found.or_else(|| common::missing_service(test, "chromium (TSIO_CHROMIUM or /usr/bin/chromium)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_two_browsers() {
    let test = "chat_in_two_browsers";
    let Some(node) = common::node(test, "playwright-core") else {
        return;
    };
    let Some(chromium) = chromium(test) else {
        return;
    };
    let (router, io) = app::router();
    let server = common::serve_router(router).await;
    let shot = common::repo_root()
        .join("target")
        .join("chat-screenshot.png");
    let out = common::run_script(
        &node.bin,
        &[
            common::clients_dir()
                .join("browser/chat.mjs")
                .to_str()
                .expect("utf-8 path"),
            &server.base_url(),
            shot.to_str().expect("utf-8 path"),
        ],
        &common::clients_dir(),
        &[
            ("TSIO_CHROMIUM", chromium.to_str().expect("utf-8 path")),
            ("NODE_PATH", node.modules.to_str().expect("utf-8 path")),
        ],
        Duration::from_secs(90),
    )
    .await;
    let stdout = out.expect_success("the browser chat script");
    assert!(
        stdout.lines().any(|l| l == "OK"),
        "script did not finish:\n{stdout}"
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    io.close(Duration::from_secs(2)).await;
}
