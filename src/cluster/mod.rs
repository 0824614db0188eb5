//! What our cluster adapters and emitters share with each other and with Node's cluster
//! packages (`@socket.io/*-adapter` and `*-emitter`): the msgpack shapes of
//! `socket.io-adapter`'s packets and broadcast options, what goes on which channel in which
//! encoding (byte for byte as the Node packages write it), and the bookkeeping of requests
//! waiting for the other servers' answers.
//!
//! Nothing here knows of sockets, and nothing but `postgres_conn` of connections
//! (tokio-postgres has no connection manager, so the Postgres adapter and emitter share
//! theirs there). An adapter and an emitter of the same kind both depend on this module and
//! never on each other.

pub(crate) mod requests;
pub(crate) mod values;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_conn;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis-streams")]
pub(crate) mod redis_streams;
