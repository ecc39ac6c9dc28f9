//! Every fuzz entry function on a few thousand generated inputs, so that
//! the default test run guards the invariants the fuzz targets check.
//!
//! The inputs are bytes shaped like what each target reads (a frame header,
//! protocol tokens, step triples, handshake frames), so that most of them
//! get past the first check, plus the seed corpus of `fuzz/seeds`.

use std::path::Path;

use proptest::prelude::*;
use rumpsteak_aura_reliability::{
    fuzz_frame, fuzz_handshake, fuzz_message, fuzz_monitor, fuzz_protocol, fuzz_quic_handshake,
    fuzz_tls_handshake,
};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are kept as regression tests in `fuzz_regressions.rs`,
        // not in a file beside this one.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A frame: mostly the right version, either kind, then anything.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![8 => Just(1u8), 1 => any::<u8>()],
        prop_oneof![4 => Just(0u8), 4 => Just(1u8), 1 => any::<u8>()],
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(version, kind, rest)| {
            let mut f = vec![version, kind];
            f.extend(rest);
            f
        })
}

/// Protocol text from the syntax's own tokens, so that many inputs parse.
fn protocol_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("A"),
        Just("B"),
        Just("C"),
        Just("->"),
        Just(":"),
        Just(";"),
        Just("Msg"),
        Just("(u32)"),
        Just("choice at"),
        Just("{"),
        Just("}"),
        Just("yes:"),
        Just("no:"),
        Just("rec X"),
        Just("continue X;"),
        Just("end;"),
        Just("roles A, B, C;"),
        Just("A -> B: Ping;"),
        Just("B -> C: Pong(u8);"),
        Just("//"),
        Just("\n"),
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.join(" "))
}

/// A monitor input: a built-in protocol or none, a role, step triples.
fn monitor_input() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        any::<u8>(),
        prop::collection::vec((0u8..6, any::<u8>(), any::<u8>()), 0..40),
    )
        .prop_map(|(select, role, steps)| {
            let mut v = vec![select, role];
            for (op, a, b) in steps {
                v.extend([op, a, b]);
            }
            v
        })
}

fn name(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

/// A handshake frame of the framed modes: the magic mostly right, the
/// version mostly the current one (2), a kind, role names from a few, a
/// session identifier and the wire byte of a hello, then maybe garbage.
fn handshake_frame() -> impl Strategy<Value = Vec<u8>> {
    let names = || {
        prop::sample::select(vec![
            &b"Client"[..],
            b"Server",
            b"",
            b"Mallory",
            b"\xff\xfe",
        ])
    };
    (
        prop_oneof![6 => Just(b"RSKA".to_vec()), 1 => prop::collection::vec(any::<u8>(), 4)],
        prop_oneof![4 => Just(2u8), 1 => Just(1u8), 1 => any::<u8>()],
        1u8..4,
        (names(), names(), names()),
        prop_oneof![3 => Just(1u8), 1 => any::<u8>()],
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(magic, version, kind, (a, b, c), byte, junk)| {
            let mut f = magic;
            f.extend([version, kind]);
            f.extend(name(a));
            if kind != 2 {
                f.extend(name(b));
                f.extend(name(c));
                f.push(byte);
            }
            f.extend(junk);
            f
        })
}

fn handshake_input() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop::collection::vec(handshake_frame(), 0..3),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(mode, frames, raw)| {
            let mut v = vec![mode];
            if mode % 4 == 1 || mode % 4 == 2 {
                for f in frames {
                    v.push(f.len() as u8);
                    v.extend(f);
                }
            }
            v.extend(raw);
            v
        })
}

/// Runs `target` on every file of `fuzz/seeds/<name>`.
fn seeds(name: &str, target: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(name);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        target(&std::fs::read(entry.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count >= 3, "{} holds {count} seeds", dir.display());
}

#[test]
fn the_seed_corpus_passes_every_target() {
    seeds("frame", fuzz_frame);
    seeds("message", fuzz_message);
    seeds("protocol", fuzz_protocol);
    seeds("monitor", fuzz_monitor);
    seeds("handshake", fuzz_handshake);
    seeds("tls_handshake", fuzz_tls_handshake);
    seeds("quic_handshake", fuzz_quic_handshake);
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
        .join(name);
    std::fs::read(path).unwrap()
}

/// A seed with a few bytes changed: most of it still parses, so the
/// change lands deep in the handshake.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4).prop_map(
        move |edits| {
            let mut v = base.clone();
            for (at, byte) in edits {
                // The first byte picks the mode: keep it.
                let i = 1 + at.index(v.len() - 1);
                v[i] = byte;
            }
            v
        },
    )
}

/// A TLS handshake input: a captured client or server hello with a few
/// bytes changed, or a mode byte and anything.
fn tls_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => mutated(seed("tls_handshake", "listener-client-hello")),
        2 => mutated(seed("tls_handshake", "listener-client-hello-record")),
        2 => mutated(seed("tls_handshake", "dialer-server-hello")),
        1 => mutated(seed("tls_handshake", "dialer-plain-refusal")),
        2 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// A QUIC handshake input: a hello or a reply (as for the TCP handshake)
/// sent over a QUIC stream, or datagrams (the seed Initial changed, or
/// anything).
fn quic_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => mutated(seed("quic_handshake", "datagram-initial")),
        1 => (prop::collection::vec(any::<u8>(), 0..400)).prop_map(|mut v| {
            v.insert(0, 0);
            v
        }),
        2 => (1u8..3, prop::collection::vec(handshake_frame(), 0..3)).prop_map(|(mode, frames)| {
            let mut v = vec![mode];
            for f in frames {
                v.push(f.len() as u8);
                v.extend(f);
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn frames(data in frame()) {
        fuzz_frame(&data);
    }

    #[test]
    fn messages(data in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_message(&data);
    }
}

proptest! {
    // A few token soups expand to the parser's limit of 100 000 nodes (a
    // run of choices copies what follows into every branch), which takes
    // a debug build a good part of a second each: fewer of them.
    #![proptest_config(config(1000))]

    #[test]
    fn protocols(text in protocol_text()) {
        fuzz_protocol(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn monitors(data in monitor_input()) {
        fuzz_monitor(&data);
    }
}

proptest! {
    // Each input opens a loopback connection: fewer of them.
    #![proptest_config(config(1000))]

    #[test]
    fn handshakes(data in handshake_input()) {
        fuzz_handshake(&data);
    }
}

proptest! {
    // In-memory pipes, but a TLS handshake each (and a whole good one for
    // one input in 64).
    #![proptest_config(config(2000))]

    #[test]
    fn tls_handshakes(data in tls_input()) {
        fuzz_tls_handshake(&data);
    }
}

proptest! {
    // Loopback UDP and a QUIC handshake for most inputs: the slowest
    // target.
    #![proptest_config(config(1000))]

    #[test]
    fn quic_handshakes(data in quic_input()) {
        fuzz_quic_handshake(&data);
    }
}
