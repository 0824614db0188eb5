//! The Socket.IO JSON decoder on one text frame, then `Args::deserialize::<Value>()` on what
//! decodes; also the frame followed by an attachment, to reach the binary path.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_socketio::engine::Str;
use tower_socketio::parser::{Body, DecodeLimits, Packet, Parser};

fn walk(packet: &Packet) {
    match &packet.body {
        Body::Event { args, .. } | Body::Ack(args) => {
            let _ = args.deserialize::<serde_json::Value>();
            for i in 0..args.len() {
                let _ = args.deserialize_nth::<serde_json::Value>(i);
            }
        }
        Body::Connect(Some(auth)) => {
            let _ = serde_json::from_str::<serde_json::Value>(auth.as_str());
        }
        Body::Connect(None) | Body::Disconnect => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = DecodeLimits {
        max_attachments: 4,
        max_attachment_bytes: 1 << 16,
    };
    let mut decoder = Parser::Json.decoder(limits);
    match decoder.decode_text(Str::from(text)) {
        Ok(Some(packet)) => walk(&packet),
        Ok(None) => {
            assert!(decoder.is_pending());
            for i in 0..4u8 {
                match decoder.decode_binary(Bytes::from(vec![i; i as usize])) {
                    Ok(Some(packet)) => {
                        walk(&packet);
                        break;
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
        Err(_) => {}
    }
});
