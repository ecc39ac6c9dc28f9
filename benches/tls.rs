//! TLS 1.3 over loopback TCP: what a session over TLS costs against
//! tokio-rustls used by hand, with the same certificates (one throwaway CA,
//! an ECDSA P-256 certificate per role), the same `ring` provider, TLS 1.3
//! only, mutual authentication, one TLS stream per connection and the same
//! framing (a big-endian `u32` length prefix).
//!
//! `tls_pingpong/<runtime>`: A sends a frame, B echoes it; time per round
//! trip, for a small frame (16 bytes) and a large one (16 KiB):
//!
//! - `raw_tls_<size>`: the baseline, a `tokio_rustls` stream (`TCP_NODELAY`)
//!   behind a `BufReader`, the prefix and the frame written and flushed by
//!   hand;
//! - `session_<size>`: `send_frame` and `recv_frame` of a `RumpsteakSession`
//!   from `tcp::connect` with `TcpOptions::with_tls`.
//!
//! Connection setup is outside the timed part.
//!
//! `tls_handshake`: one connection set up, from the dialer's first byte to
//! both sides holding a usable stream, on the current-thread runtime (the
//! two sides' CPU work adds up, whatever the machine's load):
//!
//! - `raw_tls`: TCP connect and accept, then `TlsConnector::connect` and
//!   `TlsAcceptor::accept` (each side checks the other's chain against the
//!   CA, as the session does; the name check has nothing to check, as
//!   roles are named by URI);
//! - `session_tls`: `tcp::connect` and `SessionListener::accept` over TLS:
//!   the TLS handshake, the chain and role checks, the role handshake;
//! - `session_plain`: the same without TLS, to show what TLS adds.
//!
//! The sessions are dropped outside the timed part.

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::certs::Certs;
use rumpsteak_aura_benches::net::{TlsEnds, loopback, session_pair};
use rumpsteak_aura_benches::{Clock, Flavor, ok, time_setups};
use rumpsteak_aura_choreography::transport::tcp::{SessionListener, TcpOptions};

/// The frame sizes of the ping-pong rows.
const SIZES: [(&str, usize); 2] = [("16B", 16), ("16KiB", 16 * 1024)];

fn tls_pingpong(c: &mut Criterion) {
    let certs = Certs::new();
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let ends = TlsEnds::new(&rt, &certs);
        let mut group = c.benchmark_group(format!("tls_pingpong/{}", flavor.name()));
        for (name, size) in SIZES {
            group.bench_function(format!("raw_tls_{name}"), |b| {
                b.iter_custom(|iters| ends.raw_pingpong(Clock::Wall, &rt, flavor, size, iters))
            });
            group.bench_function(format!("session_{name}"), |b| {
                b.iter_custom(|iters| ends.session_pingpong(Clock::Wall, &rt, flavor, size, iters))
            });
        }
        group.finish();
    }
}

fn tls_handshake(c: &mut Criterion) {
    let certs = Certs::new();
    let rt = Flavor::CurrentThread.runtime();
    let ends = TlsEnds::new(&rt, &certs);
    let plain = TcpOptions::new();
    let plain_listener =
        rt.block_on(async { ok(SessionListener::bind(loopback(), "B", &plain).await) });

    let mut group = c.benchmark_group("tls_handshake");
    group.bench_function("raw_tls", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || ends.raw_pair()))
    });
    group.bench_function("session_tls", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || ends.session_pair()))
    });
    group.bench_function("session_plain", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || session_pair(&plain_listener, &plain)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = tls_pingpong, tls_handshake
}
criterion_main!(benches);
