//! Shows the two modes of cross-thread ping-pong: five repetitions of
//! 100,000 round trips in one process, on a two-worker multi-thread runtime,
//! each printed on its own line.
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin mt_modes -- raw
//! cargo run --release -p rumpsteak-aura-benches --bin mt_modes -- channel
//! ```
//!
//! `raw` is tokio's mpsc with postcard by hand, `channel` the same over
//! `SimpleChannel`. Per round trip, each repetition takes either about 10 µs
//! or about 26 µs on the project's two-core machine, for either channel: the
//! mode depends on how the OS schedules the three threads (the main thread
//! in `block_on` and two workers), not on the channel.

use std::time::Instant;

use rumpsteak_aura_benches::{ChannelEnd, Flavor, RawEnd, pingpong_by_hand};

const ROUND_TRIPS: u64 = 100_000;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let run: fn(&tokio::runtime::Runtime) -> std::time::Duration = match mode.as_str() {
        "raw" => |rt| pingpong_by_hand::<RawEnd>(rt, Flavor::MultiThread, ROUND_TRIPS),
        "channel" => |rt| pingpong_by_hand::<ChannelEnd>(rt, Flavor::MultiThread, ROUND_TRIPS),
        other => {
            eprintln!("usage: mt_modes raw|channel (got {other:?})");
            std::process::exit(2);
        }
    };
    let rt = Flavor::MultiThread.runtime();
    let started = Instant::now();
    for repetition in 1..=5 {
        let took = run(&rt);
        println!(
            "{mode} repetition {repetition}: {:.2} µs per round trip",
            took.as_secs_f64() * 1e6 / ROUND_TRIPS as f64
        );
    }
    eprintln!("{mode}: {:.1} s in all", started.elapsed().as_secs_f64());
}
