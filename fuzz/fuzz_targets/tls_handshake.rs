//! Fuzz target: `rumpsteak_aura_reliability::fuzz_tls_handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rumpsteak_aura_reliability::fuzz_tls_handshake(data));
