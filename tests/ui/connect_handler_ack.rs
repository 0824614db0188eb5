// A connect handler's extractors are checked when a client connects, not at compile time:
// a failing one (here `Data<Auth>` for a client without auth) refuses the connection with a
// CONNECT_ERROR (see tests/handlers_wire.rs). What the compiler does catch is a connect
// handler that is not a handler at all: one returning a value.
use serde::Deserialize;
use tower_socketio::{Data, SocketIo, SocketRef};

#[derive(Deserialize)]
struct Auth {
    name: String,
}

fn main() {
    let (_layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef, Data(auth): Data<Auth>| -> Result<(), String> {
        let _ = (socket, auth.name);
        Ok(())
    });
}
