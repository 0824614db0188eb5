//! The ceiling for `scripts/bench.sh`: a plain tokio-tungstenite server, written as a user
//! who wants it fast would, with no Socket.IO at all.
//!
//! Protocol: every frame is echoed to its sender, except a frame whose first byte is
//! - `B`: sent to every connection (the sender included);
//! - `J<room>`: the connection joins the room, answered by a frame `A`;
//! - `L<room>`: the connection leaves the room;
//! - `R<room> <payload>`: the whole frame is sent to every connection in the room (the
//!   sender included if it is in it).
//!
//! A room is a set of connections (a map from the name to the members' senders), removed
//! when its last member leaves. One task per connection; a broadcast reaches the other
//! tasks through per-connection unbounded mpsc channels holding the shared frame (no copy
//! per receiver). Writes are batched: frames are fed while more input or queued frames are
//! ready, then flushed once.
//!
//! Same runtime flavour (current-thread; `BENCH_RUNTIME=multi_thread` for the one
//! `#[tokio::main]` builds, the `raw-mt` row of `scripts/bench.sh`), listen backlog (4096),
//! WebSocket read buffer (4096 bytes) and message limits as `bench_server`. The write
//! buffer keeps tungstenite's default (frames gather until `flush`); `--write-buffer 0`
//! writes every frame at once, as tower-socketio's WebSocket config does.
//!
//! `cargo run --release --example raw_ws_server -- 127.0.0.1:3300`

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Tx = mpsc::UnboundedSender<Message>;

#[derive(Default)]
struct State {
    peers: HashMap<u64, Tx>,
    rooms: HashMap<Box<[u8]>, HashMap<u64, Tx>>,
}

type Peers = Arc<Mutex<State>>;

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
    let mut rt = match std::env::var("BENCH_RUNTIME").as_deref() {
        Ok("multi_thread") => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let rt = rt.enable_all().build()?;
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
    peers.lock().unwrap().peers.insert(id, tx.clone());
    // The rooms this connection is in, to leave them when it closes.
    let mut joined: HashSet<Box<[u8]>> = HashSet::new();
    let mut handle = |msg: Message, peers: &Peers| -> Option<Option<Message>> {
        let data: &[u8] = match msg {
            Message::Text(ref t) => t.as_bytes(),
            Message::Binary(ref b) => b,
            Message::Close(_) => return None,
            _ => return Some(None),
        };
        match data.first() {
            Some(b'B') => broadcast(peers, msg),
            Some(b'J') => {
                let room = &data[1..];
                let mut st = peers.lock().unwrap();
                let members = match st.rooms.get_mut(room) {
                    Some(m) => m,
                    None => st.rooms.entry(room.into()).or_default(),
                };
                members.insert(id, tx.clone());
                if !joined.contains(room) {
                    joined.insert(room.into());
                }
                return Some(Some(Message::text("A")));
            }
            Some(b'L') => {
                let room = &data[1..];
                joined.remove(room);
                leave(&mut peers.lock().unwrap(), room, id);
            }
            Some(b'R') => {
                let end = data.iter().position(|&c| c == b' ').unwrap_or(data.len());
                let st = peers.lock().unwrap();
                if let Some(members) = st.rooms.get(&data[1..end]) {
                    for tx in members.values() {
                        let _ = tx.send(msg.clone());
                    }
                }
            }
            _ => return Some(Some(msg)),
        }
        Some(None)
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
    let mut st = peers.lock().unwrap();
    st.peers.remove(&id);
    for room in &joined {
        leave(&mut st, room, id);
    }
}

fn leave(st: &mut State, room: &[u8], id: u64) {
    if let Some(members) = st.rooms.get_mut(room) {
        members.remove(&id);
        if members.is_empty() {
            st.rooms.remove(room);
        }
    }
}

fn broadcast(peers: &Peers, msg: Message) {
    for tx in peers.lock().unwrap().peers.values() {
        let _ = tx.send(msg.clone());
    }
}
