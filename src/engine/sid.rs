//! Session ids.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Number of random bytes in a [`Sid`]: 128 bits, above the 96 the protocol guides ask for.
const RANDOM_BYTES: usize = 16;
/// Length of the URL-safe base64 text of [`RANDOM_BYTES`] bytes, without padding.
const LEN: usize = 22;
/// Length of the ids the Node.js server draws (15 random bytes in base64): a socket id saved
/// by a Node server of a cluster (connection state recovery) must keep its exact text here.
const NODE_LEN: usize = 20;

/// A session or socket id: 128 bits from the operating system's secure random source,
/// written as 22 URL-safe base64 characters. Parsing also accepts the 20-character ids of
/// the Node.js server, so a socket id another server of a cluster gave out can be kept.
///
/// It is `Copy` and compares as bytes, so it is cheap to use as a map key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    bytes: [u8; LEN],
    len: u8,
}

impl Sid {
    /// Draws a fresh random id from the thread's cryptographically secure generator
    /// (ChaCha, seeded and periodically reseeded from the operating system): no system call
    /// per id.
    pub fn new() -> Self {
        let mut raw = [0u8; RANDOM_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
        let mut out = [0u8; LEN];
        // ok: 16 bytes always encode to exactly 22 characters without padding.
        let n = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("22 bytes hold 16 encoded bytes"); // ok: fixed sizes
        debug_assert_eq!(n, LEN);
        Sid {
            bytes: out,
            len: LEN as u8,
        }
    }

    /// Parses an id received from a client or another server. Anything that is not 22 (ours)
    /// or 20 (Node's) URL-safe base64 characters is refused, so malformed ids never need a
    /// map lookup.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if (b.len() != LEN && b.len() != NODE_LEN)
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            return None;
        }
        let mut out = [0u8; LEN];
        out[..b.len()].copy_from_slice(b);
        Some(Sid {
            bytes: out,
            len: b.len() as u8,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only base64 alphabet bytes are ever stored, and `len` is 20 or 22.
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("sid is ASCII") // ok: ASCII only
    }
}

/// Hashes [`Sid`]s for the maps and sets keyed by them: a multiply-and-rotate fold of the
/// id's bytes. Ids are random and only the server makes them, so SipHash's defence against
/// chosen colliding keys buys nothing here, and a room's members are looked up once per
/// broadcast delivery.
#[derive(Clone, Copy, Default)]
pub(crate) struct SidHasher(u64);

impl SidHasher {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for SidHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by [`Sid`], with [`SidHasher`].
pub(crate) type SidMap<V> =
    std::collections::HashMap<Sid, V, std::hash::BuildHasherDefault<SidHasher>>;
/// A set of [`Sid`]s, with [`SidHasher`].
pub(crate) type SidSet = std::collections::HashSet<Sid, std::hash::BuildHasherDefault<SidHasher>>;

impl Default for Sid {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for Sid {
    type Err = InvalidSid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sid::parse(s).ok_or(InvalidSid)
    }
}

/// The text was not a well-formed [`Sid`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("invalid session id")]
pub struct InvalidSid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_unique() {
        let a = Sid::new();
        let b = Sid::new();
        assert_ne!(a, b);
        assert_eq!(Sid::parse(a.as_str()), Some(a));
        assert_eq!(a.as_str().len(), 22);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(Sid::parse("").is_none());
        assert!(Sid::parse("abc").is_none());
        assert!(Sid::parse("aaaaaaaaaaaaaaaaaaaaa/").is_none());
        assert!(Sid::parse("aaaaaaaaaaaaaaaaaaaaaaa").is_none());
        assert!(Sid::parse("aaaaaaaaaaaaaaaaaaaaa").is_none());
    }

    #[test]
    fn keeps_node_ids() {
        let node = Sid::parse("UyXb7GPbYYoXfF-eAAAA").expect("a Node socket id");
        assert_eq!(node.as_str(), "UyXb7GPbYYoXfF-eAAAA");
        assert_ne!(Sid::parse("UyXb7GPbYYoXfF-eAAAAAA"), Some(node));
    }
}
