//! The library's work for one echoed message with a dynamic argument type, for instruction
//! counts under callgrind (deterministic on a loaded machine, unlike timings): decode a
//! received packet, deserialize its argument, encode it back as an event.
//!
//! ```sh
//! cargo bench --bench value_echo --no-run   # prints the binary's path
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null <binary> <mode> 100000
//! ```
//! Modes: `decode` (the packet decode alone, the baseline to subtract), `json`
//! (`Data<serde_json::Value>`), `value` (`Data<Value>`), `value_args` (`DataArgs<Vec<Value>>`
//! and `emit_args`), `value_bin` (`Data<Value>` of an object holding two binary attachments,
//! `decode_bin` its baseline). Per message: the difference between runs of 20 000 and
//! 10 000 messages, divided by 10 000, minus the baseline's.

use std::hint::black_box;

use bytes::Bytes;
use tower_socketio::Value;
use tower_socketio::engine::Str;
use tower_socketio::parser::{Body, DecodeLimits, Parser};

const LIMITS: DecodeLimits = DecodeLimits {
    max_attachments: 10,
    max_attachment_bytes: 1_000_000,
};

/// The load generator's ~100-byte echo payload.
const PACKET: &str = r#"2["echo",{"t":"00000000001234567890","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]"#;
const BINARY_PACKET: &str = r#"52-["echo",{"t":"00000000001234567890","a":{"_placeholder":true,"num":0},"b":[{"_placeholder":true,"num":1}]}]"#;

fn main() {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().unwrap_or_else(|| "value".into());
    let n: usize = argv.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let p = Parser::Json;
    let mut dec = p.decoder(LIMITS);
    let att = Bytes::from_static(&[7u8; 64]);
    for _ in 0..n {
        let packet = if mode.ends_with("_bin") {
            assert!(
                dec.decode_text(Str::from_static(BINARY_PACKET))
                    .unwrap()
                    .is_none()
            );
            assert!(dec.decode_binary(att.clone()).unwrap().is_none());
            dec.decode_binary(att.clone()).unwrap().unwrap()
        } else {
            dec.decode_text(Str::from_static(PACKET)).unwrap().unwrap()
        };
        let Body::Event { name, args } = packet.body else {
            panic!("not an event")
        };
        let out = match mode.as_str() {
            "decode" | "decode_bin" => {
                black_box(&args);
                continue;
            }
            "json" => {
                let v: serde_json::Value = args.deserialize().unwrap();
                p.event("/", &name, &v, None, false)
            }
            "value" | "value_bin" => {
                let v: Value = args.deserialize().unwrap();
                p.event("/", &name, &v, None, false)
            }
            "value_args" => {
                let v: Vec<Value> = args.deserialize_list().unwrap();
                p.event("/", &name, &v, None, true)
            }
            other => panic!("unknown mode {other}"),
        };
        black_box(out.unwrap());
    }
}
