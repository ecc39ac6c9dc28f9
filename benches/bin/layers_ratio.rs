//! Times `Traced` (no subscriber) and `Metered` (no recorder) against the
//! bare handler on ping-pong, in alternating samples on the current-thread
//! runtime, as `typed_ratio` does for the typed rows:
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin layers_ratio
//! ```
//!
//! Each sample of a layer is taken right after a sample of the bare
//! handler through the same generic loop (`layered_pingpong`, the `layers`
//! bench group's loop), 41 times, and the best and median of each are
//! compared.

use std::time::Duration;

use rumpsteak_aura_benches::{Handler, layered_pingpong};
use rumpsteak_aura_choreography::layers::{Metered, Traced};

const ROUNDS: u64 = 20_000;
const SAMPLES: usize = 41;

fn per_round(d: Duration) -> f64 {
    d.as_nanos() as f64 / ROUNDS as f64
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn compare(name: &str, bare: impl Fn() -> Duration, layered: impl Fn() -> Duration) {
    bare();
    layered();
    let (mut b, mut l) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        b.push(per_round(bare()));
        l.push(per_round(layered()));
    }
    let ((bb, bm), (lb, lm)) = (summary(b), summary(l));
    println!(
        "{name}: bare best {bb:.1} ns, median {bm:.1} ns; layered best {lb:.1} ns, median {lm:.1} ns; \
         layered/bare best {:.3}, median {:.3}",
        lb / bb,
        lm / bm
    );
}

fn main() {
    let rt = rumpsteak_aura_benches::Flavor::CurrentThread.runtime();
    let bare = || layered_pingpong(Handler::new, ROUNDS, &rt);
    compare("Traced, no subscriber", bare, || {
        layered_pingpong(|| Traced::new(Handler::new()), ROUNDS, &rt)
    });
    compare("Metered, no recorder", bare, || {
        layered_pingpong(|| Metered::new(Handler::new()), ROUNDS, &rt)
    });
}
