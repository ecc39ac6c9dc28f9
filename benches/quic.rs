//! QUIC over loopback UDP: what a session over QUIC costs against quinn
//! used by hand, with the same certificates (one throwaway CA, an ECDSA
//! P-256 certificate per role; see `common/certs.rs`), the same `ring`
//! provider, mutual authentication, the same ALPN, one bidirectional stream
//! per connection and the same framing (a big-endian `u32` length prefix).
//!
//! `quic_pingpong/<runtime>`: A sends a frame, B echoes it; time per round
//! trip, for 16 bytes and 16 KiB:
//!
//! - `raw_quinn_<size>`: the baseline, quinn's streams behind a
//!   `BufReader`, the prefix and the frame written and flushed by hand;
//! - `session_<size>`: `send_frame` and `recv_frame` of a `RumpsteakSession`
//!   from `quic::connect`.
//!
//! `quic_handshake`: one connection set up on the current-thread runtime:
//! `raw_quinn` connects, accepts and opens the stream (each side checks the
//! other's chain against the CA); `session` runs `quic::connect` and
//! `QuicListener::accept`: the QUIC handshake with the listener checked in
//! it, the address-validation retry, the dialer's chain and role checks,
//! and the role handshake.

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::certs::Certs;
use rumpsteak_aura_benches::net::{QuicSessions, RawQuic};
use rumpsteak_aura_benches::{Clock, Flavor, time_setups};

const SIZES: [(&str, usize); 2] = [("16B", 16), ("16KiB", 16 * 1024)];

fn quic_pingpong(c: &mut Criterion) {
    let certs = Certs::new();
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let raw = {
            let _guard = rt.enter();
            RawQuic::new(&certs)
        };
        let sessions = QuicSessions::new(&rt, &certs);
        let mut group = c.benchmark_group(format!("quic_pingpong/{}", flavor.name()));
        for (name, size) in SIZES {
            group.bench_function(format!("raw_quinn_{name}"), |b| {
                b.iter_custom(|iters| raw.pingpong(Clock::Wall, &rt, flavor, size, iters))
            });
            group.bench_function(format!("session_{name}"), |b| {
                b.iter_custom(|iters| sessions.pingpong(Clock::Wall, &rt, flavor, size, iters))
            });
        }
        group.finish();
    }
}

fn quic_handshake(c: &mut Criterion) {
    let certs = Certs::new();
    let rt = Flavor::CurrentThread.runtime();
    let raw = {
        let _guard = rt.enter();
        RawQuic::new(&certs)
    };
    let sessions = QuicSessions::new(&rt, &certs);
    let mut group = c.benchmark_group("quic_handshake");
    group.bench_function("raw_quinn", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || raw.pair()))
    });
    group.bench_function("session", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || sessions.pair()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = quic_pingpong, quic_handshake
}
criterion_main!(benches);
