//! What our cluster adapters and emitters share with each other and with Node's cluster
//! packages (`@socket.io/*-adapter` and `*-emitter`): the msgpack shapes of
//! `socket.io-adapter`'s packets and broadcast options, what goes on which channel in which
//! encoding (byte for byte as the Node packages write it), and the bookkeeping of requests
//! waiting for the other servers' answers.
//!
//! Nothing here knows of sockets or connections. An adapter and an emitter of the same kind
//! both depend on this module and never on each other.

pub(crate) mod requests;
pub(crate) mod values;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;
