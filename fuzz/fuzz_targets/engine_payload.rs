//! The Engine.IO polling payload decoders (v4, v3 text, v3 binary) on arbitrary bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [v4, v3_text, v3_binary] = tower_socketio::engine::fuzz_decode_payload(data);
    // A v4 payload has one packet per record separator, plus one.
    if let Ok(n) = v4 {
        assert_eq!(n, data.iter().filter(|&&b| b == 0x1e).count() + 1);
    }
    // Every packet takes at least a byte in either v3 framing.
    for n in [v3_text, v3_binary].into_iter().flatten() {
        assert!(n <= data.len());
    }
});
