//! Evidence that rumpsteak-aura holds up under faults and hostile input.
//!
//! This crate is not published. Its tests are the evidence listed in
//! `docs/reliability.md`: fault injection through the handler, model-based
//! tests of the endpoint's bookkeeping, shutdown of every transport with an
//! operation in flight, a deterministic network simulation (turmoil, in
//! `tests/simulation.rs`), and stress tests (`#[ignore]`, named
//! `stress_*`).
//!
//! The library holds the fuzz entry functions, one per target. Each takes
//! arbitrary bytes, drives one part of the stack with them, and panics only
//! when an invariant that must hold for every input is broken: that panic
//! is the finding. The cargo-fuzz targets in `fuzz/` call them, and the
//! property test `tests/fuzz_entry_points.rs` runs each on a few thousand
//! generated inputs in the default test run.
//!
//! | entry function | what it drives |
//! |----------------|----------------|
//! | [`fuzz_frame`] | the wire format's frame decoding, and an endpoint's `recv` and `offer` on that frame |
//! | [`fuzz_message`] | the depth-limited message decoder, for recursive and nested types |
//! | [`fuzz_protocol`] | the protocol parser, validation, projection and monitor compilation |
//! | [`fuzz_monitor`] | a monitor driven by arbitrary steps and transitions |
//! | [`fuzz_handshake`] | the network role handshake, over loopback TCP and WebSocket, as acceptor and as dialer |
//! | [`fuzz_tls_handshake`] | the TLS handshake of the TCP transport, as listener and as dialer, over in-memory pipes |
//! | [`fuzz_quic_handshake`] | the QUIC handshake: datagrams to a listener's endpoint, and the role hello over a QUIC stream, as listener and as dialer |
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod secure_targets;
mod targets;

pub use secure_targets::{fuzz_quic_handshake, fuzz_tls_handshake};
pub use targets::{fuzz_frame, fuzz_handshake, fuzz_message, fuzz_monitor, fuzz_protocol};
