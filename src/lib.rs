//! tower-socketio: a Socket.IO server for tower and axum.
#![warn(missing_docs)]

pub mod engine;
pub mod parser;
