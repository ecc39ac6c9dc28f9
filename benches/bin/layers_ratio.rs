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

use rumpsteak_aura_benches::{ALTERNATE_ROUNDS, Flavor, Handler, alternate, layered_pingpong};
use rumpsteak_aura_choreography::layers::{Metered, Traced};

fn main() {
    let rt = Flavor::CurrentThread.runtime();
    let bare = || layered_pingpong(Handler::new, ALTERNATE_ROUNDS, &rt);
    let names = ("bare", "layered");
    alternate("Traced, no subscriber", names, bare, || {
        layered_pingpong(|| Traced::new(Handler::new()), ALTERNATE_ROUNDS, &rt)
    });
    alternate("Metered, no recorder", names, bare, || {
        layered_pingpong(|| Metered::new(Handler::new()), ALTERNATE_ROUNDS, &rt)
    });
}
