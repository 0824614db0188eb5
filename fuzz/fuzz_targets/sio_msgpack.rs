//! The msgpack parser (feature `msgpack`) on one binary frame, then
//! `Args::deserialize::<Value>()` on what decodes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_socketio::parser::{Body, DecodeLimits, Parser};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_attachments: 8,
        max_attachment_bytes: 1 << 16,
    };
    let mut decoder = Parser::MsgPack.decoder(limits);
    if let Ok(Some(packet)) = decoder.decode_binary(Bytes::copy_from_slice(data))
        && let Body::Event { args, .. } | Body::Ack(args) = &packet.body
    {
        let _ = args.deserialize::<serde_json::Value>();
        for i in 0..args.len().min(8) {
            let _ = args.deserialize_nth::<serde_json::Value>(i);
        }
    }
});
