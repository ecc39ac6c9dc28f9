//! Times the `tls_pingpong` and `quic_pingpong` rows, each session against
//! its raw baseline (tokio-rustls or quinn used by hand, with the same
//! certificates and framing), in alternating samples, as `typed_ratio`
//! does for the typed rows:
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin net_ratio
//! ```
//!
//! Criterion's rows for these run a minute apart, long enough on a shared
//! machine for the load to change under them; here each session sample is
//! taken right after a raw sample of the same size on the same runtime,
//! 41 times, and the best and median of each are compared. Both runtimes
//! are sampled; the work is that of the criterion rows (`common/net.rs`).
//!
//! Each row is sampled twice: by the wall clock, as criterion measures,
//! and by the process's CPU time (every thread, user and system), which
//! leaves out the time spent waiting for a core held by another process:
//! on a loaded machine the steadier of the two. Connection setup is
//! outside both.
//!
//! An argument keeps only the rows whose name contains it:
//! `net_ratio "TLS 16 B, current_thread"` times that row alone.

use rumpsteak_aura_benches::certs::Certs;
use rumpsteak_aura_benches::net::{QuicSessions, RawQuic, TlsEnds};
use rumpsteak_aura_benches::{Clock, Flavor, alternate_rounds};

/// Round trips per sample: a loopback round trip over TLS or QUIC takes
/// tens of microseconds, so a sample is a few tenths of a second.
const ROUNDS: u64 = 4_000;

/// The frame sizes of the ping-pong rows.
const SIZES: [(&str, usize); 2] = [("16 B", 16), ("16 KiB", 16 * 1024)];

fn main() {
    let only = std::env::args().nth(1).unwrap_or_default();
    let certs = Certs::new();
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let tls = TlsEnds::new(&rt, &certs);
        let raw_quic = {
            let _guard = rt.enter();
            RawQuic::new(&certs)
        };
        let quic = QuicSessions::new(&rt, &certs);
        for (name, size) in SIZES {
            for clock in [Clock::Wall, Clock::Cpu] {
                let row = format!("TLS {name}, {}, {}", flavor.name(), clock.name());
                if row.contains(&only) {
                    alternate_rounds(
                        &row,
                        ("raw tokio-rustls", "session"),
                        ROUNDS,
                        || tls.raw_pingpong(clock, &rt, flavor, size, ROUNDS),
                        || tls.session_pingpong(clock, &rt, flavor, size, ROUNDS),
                    );
                }
                let row = format!("QUIC {name}, {}, {}", flavor.name(), clock.name());
                if row.contains(&only) {
                    alternate_rounds(
                        &row,
                        ("raw quinn", "session"),
                        ROUNDS,
                        || raw_quic.pingpong(clock, &rt, flavor, size, ROUNDS),
                        || quic.pingpong(clock, &rt, flavor, size, ROUNDS),
                    );
                }
            }
        }
    }
}
