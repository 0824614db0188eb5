//! What every cluster adapter that talks to Node.js nodes shares, whatever carries the
//! messages (Redis, PostgreSQL): requests waiting for the other servers' answers, and the
//! msgpack shapes of `socket.io-adapter`'s packets and broadcast options.

pub(crate) mod requests;
pub(crate) mod values;
