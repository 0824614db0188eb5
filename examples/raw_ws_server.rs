//! The ceiling for `scripts/bench.sh`: a plain tokio-tungstenite server, written as a user
//! who wants it fast would, with no Socket.IO at all.
//!
//! Protocol: every frame is echoed to its sender, except a frame whose first byte is `B`,
//! which is sent to every connection (the sender included). One task per connection; a
//! broadcast reaches the other tasks through per-connection unbounded mpsc channels holding
//! the shared frame (no copy per receiver). Writes are batched: frames are fed while more
//! input or queued frames are ready, then flushed once.
//!
//! Same runtime flavour (current-thread), listen backlog (4096) and WebSocket read buffer
//! (4096 bytes) and message limits as `bench_server`. The write buffer keeps tungstenite's
//! default (frames gather until `flush`); `--write-buffer 0` writes every frame at once, as
//! tower-socketio's WebSocket config does.
//!
//! `cargo run --release --example raw_ws_server -- 127.0.0.1:3300`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Peers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:3300".into())
        .parse()
        .expect("address");
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.max_message_size = Some(1_000_000);
    config.max_frame_size = Some(1_000_000);
    if args.next().as_deref() == Some("--write-buffer") {
        config.write_buffer_size = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        println!("ready raw-ws on {addr}");
        let peers: Peers = Arc::default();
        let mut next_id = 0u64;
        loop {
            let (stream, _) = listener.accept().await?;
            next_id += 1;
            tokio::spawn(connection(stream, next_id, peers.clone(), config));
        }
    })
}

async fn connection(stream: TcpStream, id: u64, peers: Peers, config: WebSocketConfig) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    peers.lock().unwrap().insert(id, tx);
    let handle = |msg: Message, peers: &Peers| -> Option<Option<Message>> {
        match msg {
            Message::Text(ref t) if t.as_bytes().first() == Some(&b'B') => {
                broadcast(peers, msg);
                Some(None)
            }
            Message::Binary(ref b) if b.first() == Some(&b'B') => {
                broadcast(peers, msg);
                Some(None)
            }
            Message::Text(_) | Message::Binary(_) => Some(Some(msg)),
            Message::Close(_) => None,
            _ => Some(None),
        }
    };
    'outer: loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else { break };
                let mut next = Some(msg);
                // Handle every frame already read, then flush once.
                while let Some(msg) = next {
                    match handle(msg, &peers) {
                        None => break 'outer,
                        Some(Some(reply)) => {
                            if ws.feed(reply).await.is_err() {
                                break 'outer;
                            }
                        }
                        Some(None) => {}
                    }
                    next = match ws.next().now_or_never() {
                        Some(Some(Ok(m))) => Some(m),
                        Some(_) => break 'outer,
                        None => None,
                    };
                }
            }
            Some(msg) = rx.recv() => {
                if ws.feed(msg).await.is_err() {
                    break;
                }
                while let Ok(msg) = rx.try_recv() {
                    if ws.feed(msg).await.is_err() {
                        break 'outer;
                    }
                }
            }
        }
        if ws.flush().await.is_err() {
            break;
        }
    }
    peers.lock().unwrap().remove(&id);
}

fn broadcast(peers: &Peers, msg: Message) {
    for tx in peers.lock().unwrap().values() {
        let _ = tx.send(msg.clone());
    }
}
