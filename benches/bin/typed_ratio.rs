//! Times the typed rows against the untyped handler in alternating samples,
//! on the current-thread runtime, and prints the best and the median time
//! per round trip of each and their ratios:
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin typed_ratio
//! ```
//!
//! Criterion's groups (`pingpong`, `choice`) measure one row after the
//! other; on a shared machine the noise between two rows measured a minute
//! apart can exceed the difference being measured. Here each sample of one
//! row is taken right after a sample of the other, 41 times, so both see the
//! same conditions, and the best sample of each (the one least disturbed)
//! is compared as well as the medians. The work per round trip is exactly
//! that of the criterion rows: the same helpers are called.

use std::time::Duration;

use rumpsteak_aura_benches::{
    Flavor, endpoints, handler_choice_reply, handler_pingpong, typed_choice_reply, typed_pingpong,
};

/// Round trips per sample: long enough (tens of milliseconds) that the
/// timer's resolution does not matter, short enough for many samples.
const ROUNDS: u64 = 20_000;
const SAMPLES: usize = 41;

fn per_round(d: Duration) -> f64 {
    d.as_nanos() as f64 / ROUNDS as f64
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn compare(name: &str, untyped: impl Fn() -> Duration, typed: impl Fn() -> Duration) {
    // One warm-up of each.
    untyped();
    typed();
    let (mut u, mut t) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        u.push(per_round(untyped()));
        t.push(per_round(typed()));
    }
    let ((ub, um), (tb, tm)) = (summary(u), summary(t));
    println!(
        "{name}: untyped best {ub:.1} ns, median {um:.1} ns; typed best {tb:.1} ns, median {tm:.1} ns; \
         typed/untyped best {:.3}, median {:.3}",
        tb / ub,
        tm / um
    );
}

fn main() {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    compare(
        "ping-pong",
        || {
            let (a, b) = endpoints();
            handler_pingpong(&rt, flavor, a, b, ROUNDS)
        },
        || typed_pingpong(&rt, flavor, ROUNDS),
    );
    compare(
        "choice with reply",
        || {
            let (a, b) = endpoints();
            handler_choice_reply(&rt, flavor, a, b, ROUNDS)
        },
        || typed_choice_reply(&rt, flavor, ROUNDS),
    );
}
