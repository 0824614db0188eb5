// Emitting a value that does not implement `Serialize`.
use tower_socketio::{SocketIo, SocketRef};

struct Position {
    x: f64,
    y: f64,
}

fn main() {
    let (_layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        let p = Position { x: 1.0, y: 2.0 };
        let _ = socket.emit("moved", &p);
        let _ = (p.x, p.y);
    });
}
