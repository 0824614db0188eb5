//! A Node.js reference server (a script of `tests/clients` that prints `{"url": ...}` once
//! listening), killed when dropped.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::common::{self, Node};

pub struct NodeServer {
    pub url: String,
    _child: Child,
}

impl NodeServer {
    /// Starts `script` (relative to `tests/clients`) and waits for its URL.
    pub async fn start(node: &Node, script: &str) -> NodeServer {
        let modules = node.modules.to_str().expect("utf-8 path");
        let mut child = tokio::process::Command::new(&node.bin)
            .arg(common::clients_dir().join(script))
            .current_dir(common::clients_dir())
            .env("NODE_PATH", modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = common::step(&format!("{script} listening"), lines.next_line())
            .await
            .expect("read node output")
            .unwrap_or_else(|| panic!("{script} exited before listening"));
        let v: serde_json::Value = serde_json::from_str(&line).expect("url line");
        let url = v["url"].as_str().expect("url").to_owned();
        NodeServer { url, _child: child }
    }
}
