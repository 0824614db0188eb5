//! The Socket.IO JSON decoder fed a sequence of frames: the input is split on `0xff` into
//! frames, each starting with a byte that says text (even) or binary (odd), so binary
//! packets, their attachments, and frames out of place are all reached.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_socketio::engine::Str;
use tower_socketio::parser::{Body, DecodeLimits, Parser};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_attachments: 8,
        max_attachment_bytes: 1 << 12,
    };
    let mut decoder = Parser::Json.decoder(limits);
    for chunk in data.split(|&b| b == 0xff).take(64) {
        let Some((&kind, rest)) = chunk.split_first() else {
            continue;
        };
        let decoded = if kind % 2 == 0 {
            let Ok(text) = std::str::from_utf8(rest) else {
                continue;
            };
            decoder.decode_text(Str::from(text))
        } else {
            decoder.decode_binary(Bytes::copy_from_slice(rest))
        };
        match decoded {
            Ok(Some(packet)) => {
                if let Body::Event { args, .. } | Body::Ack(args) = &packet.body {
                    assert!(args.attachments().len() <= limits.max_attachments);
                    let _ = args.deserialize::<serde_json::Value>();
                }
            }
            Ok(None) => {}
            // A decoder that refused a frame is dropped with its connection.
            Err(_) => return,
        }
    }
});
