//! Micro-benchmarks of the Socket.IO packet encoder and decoder (the JSON parser), through
//! the public `tower_socketio::parser` API.
//!
//! `cargo bench --bench parser` (or `-- --quick` for a short run).

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use serde::Serialize;
use serde_json::value::RawValue;
use tower_socketio::Binary;
use tower_socketio::engine::Str;
use tower_socketio::parser::{DecodeLimits, Parser};

#[derive(Serialize)]
struct Payload<'a> {
    t: &'a str,
    pad: &'a str,
}

const LIMITS: DecodeLimits = DecodeLimits {
    max_attachments: 10,
    max_attachment_bytes: 1_000_000,
};

/// The ~100-byte payload of the load generator's echo scenario.
const ECHO_JSON: &str = r#"{"t":"00000000001234567890","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let p = Parser::Json;
    let payload = Payload {
        t: "00000000001234567890",
        pad: &"x".repeat(63),
    };
    let raw: Box<RawValue> = serde_json::from_str(ECHO_JSON).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("event_struct_100B", |b| {
        b.iter(|| {
            p.event("/", "echo", black_box(&payload), None, false)
                .unwrap()
        })
    });
    g.bench_function("event_raw_value_100B", |b| {
        b.iter(|| p.event("/", "echo", black_box(&raw), None, false).unwrap())
    });
    g.bench_function("event_with_ack_and_ns", |b| {
        b.iter(|| {
            p.event("/chat", "echo", black_box(&payload), Some(42), false)
                .unwrap()
        })
    });
    let bin = Binary(Bytes::from(vec![7u8; 1024]));
    g.bench_function("binary_event_1KiB", |b| {
        b.iter(|| p.event("/", "file", black_box(&bin), None, false).unwrap())
    });
    for n in [10usize, 1000] {
        let big: Vec<u32> = (0..n as u32).collect();
        g.bench_with_input(BenchmarkId::new("event_vec_u32", n), &big, |b, big| {
            b.iter(|| p.event("/", "nums", black_box(big), None, false).unwrap())
        });
    }
    // A broadcast serializes once, then frames for each receiver.
    let packet = p.event_packet("/", "bcast", &payload, false).unwrap();
    g.bench_function("broadcast_frame_per_receiver", |b| {
        b.iter(|| p.encode_event(black_box(&packet), None, None))
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let p = Parser::Json;
    let cases: &[(&str, String)] = &[
        ("event_100B", format!(r#"2["echo",{ECHO_JSON}]"#)),
        ("event_ns_ack", format!(r#"2/chat,42["echo",{ECHO_JSON}]"#)),
        (
            "event_3_args",
            r#"2["ev",1,"two",{"three":[3,3,3]}]"#.to_owned(),
        ),
        (
            "connect_auth",
            r#"0{"token":"abcdefghijklmnop"}"#.to_owned(),
        ),
        (
            "event_nested_10KB",
            format!(
                r#"2["big",{}]"#,
                serde_json::to_string(&vec![vec![vec!["abcdefgh"; 10]; 10]; 10]).unwrap()
            ),
        ),
    ];
    for (name, text) in cases {
        let text = Str::from(text.as_str());
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(*name, |b| {
            let mut dec = p.decoder(LIMITS);
            b.iter(|| dec.decode_text(black_box(text.clone())).unwrap().unwrap())
        });
    }
    let header = Str::from(r#"51-["file",{"_placeholder":true,"num":0}]"#);
    let att = Bytes::from(vec![7u8; 1024]);
    g.throughput(Throughput::Elements(1));
    g.bench_function("binary_event_1KiB", |b| {
        let mut dec = p.decoder(LIMITS);
        b.iter(|| {
            assert!(
                dec.decode_text(black_box(header.clone()))
                    .unwrap()
                    .is_none()
            );
            dec.decode_binary(black_box(att.clone())).unwrap().unwrap()
        })
    });
    // Decoding plus what a handler does with `Data<T>`.
    let text = Str::from(format!(r#"2["echo",{ECHO_JSON}]"#).as_str());
    g.bench_function("event_100B_then_deserialize_value", |b| {
        let mut dec = p.decoder(LIMITS);
        b.iter(|| {
            let pkt = dec.decode_text(black_box(text.clone())).unwrap().unwrap();
            match pkt.body {
                tower_socketio::parser::Body::Event { args, .. } => {
                    args.deserialize::<serde_json::Value>().unwrap()
                }
                _ => unreachable!(),
            }
        })
    });
    g.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
