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

use rumpsteak_aura_benches::{
    ALTERNATE_ROUNDS, Flavor, alternate, endpoints, handler_choice_reply, handler_pingpong,
    typed_choice_reply, typed_pingpong,
};

fn main() {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let names = ("untyped", "typed");
    alternate(
        "ping-pong",
        names,
        || {
            let (a, b) = endpoints();
            handler_pingpong(&rt, flavor, a, b, ALTERNATE_ROUNDS)
        },
        || typed_pingpong(&rt, flavor, ALTERNATE_ROUNDS),
    );
    alternate(
        "choice with reply",
        names,
        || {
            let (a, b) = endpoints();
            handler_choice_reply(&rt, flavor, a, b, ALTERNATE_ROUNDS)
        },
        || typed_choice_reply(&rt, flavor, ALTERNATE_ROUNDS),
    );
}
