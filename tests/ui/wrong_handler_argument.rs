// A handler argument that is not an extractor: the error names the argument and lists the
// extractors.
use tower_socketio::{SocketIo, SocketRef};

fn main() {
    let (_layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("chat", |socket: SocketRef, text: String| {
            let _ = (socket, text);
        });
    });
}
