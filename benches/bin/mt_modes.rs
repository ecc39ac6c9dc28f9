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
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin mt_modes -- sessions
//! cargo run --release -p rumpsteak-aura-benches --bin mt_modes -- sessions multi_thread 1024
//! ```
//!
//! `sessions` is the `sessions/<runtime>/*/<n>` rows of the `scale` bench
//! in alternating samples instead: `n` ping-pong sessions at once, each
//! role its own task, by hand over tokio's mpsc with postcard and through
//! the handler, each handler sample right after a raw one, 41 of each
//! (with 64,000 round trips in a sample, rounded up to a whole number per
//! session: 1,000 each for 64 sessions, 63 for 1,024), and the best and
//! median aggregate time per round trip of each compared. With no runtime
//! (`current_thread` or `multi_thread`) and number of sessions it runs the
//! four rows (64 and 1,024 on either runtime) in turn.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{
    ByHand, ChannelEnd, Flavor, Handler, Node, Ping, RawEnd, alternate_rounds, endpoints, ok,
    pingpong_by_hand,
};
use tokio::runtime::Runtime;

const ROUND_TRIPS: u64 = 100_000;

/// The numbers of sessions of the `sessions` rows, and about how many
/// round trips of all sessions together make one sample.
const SESSIONS: [u64; 2] = [64, 1024];
const SAMPLE_ROUND_TRIPS: u64 = 64_000;

/// A role's work, boxed so that both roles share one list.
type Role = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Spawns every role as its own task, the first of each pair gated on a
/// start signal, and returns the time from the signal until all are done
/// (the `scale` bench's way).
fn run_tasks(rt: &Runtime, roles: Vec<(Role, Role)>) -> Duration {
    rt.block_on(async move {
        let (go, gate) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::with_capacity(2 * roles.len());
        for (gated, free) in roles {
            let mut gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                if gate.wait_for(|go| *go).await.is_err() {
                    panic!("mt_modes: start signal dropped");
                }
                gated.await
            }));
            tasks.push(tokio::spawn(free));
        }
        tokio::task::yield_now().await;
        let start = Instant::now();
        go.send_replace(true);
        for task in tasks {
            if let Err(e) = task.await {
                panic!("mt_modes: a role failed: {e}");
            }
        }
        start.elapsed()
    })
}

/// `n` sessions by hand over tokio's mpsc, `rounds` round trips each.
fn sessions_raw(rt: &Runtime, n: u64, rounds: u64) -> Duration {
    let roles = (0..n).map(|_| {
        let (mut a, mut b) = RawEnd::pair();
        let gated = Box::pin(async move {
            for seq in 0..rounds {
                a.send(&Ping { seq, stamp: 7 });
                black_box(a.recv::<Ping>().await);
            }
        }) as Role;
        let free = Box::pin(async move {
            for _ in 0..rounds {
                let p: Ping = b.recv().await;
                b.send(&p);
            }
        }) as Role;
        (gated, free)
    });
    run_tasks(rt, roles.collect())
}

/// `n` sessions through the handler, `rounds` round trips each.
fn sessions_handler(rt: &Runtime, n: u64, rounds: u64) -> Duration {
    let roles = (0..n).map(|_| {
        let (mut a, mut b) = endpoints();
        let gated = Box::pin(async move {
            let mut h = Handler::new();
            for seq in 0..rounds {
                ok(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 }).await);
                black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
            }
        }) as Role;
        let free = Box::pin(async move {
            let mut h = Handler::new();
            for _ in 0..rounds {
                let p: Ping = ok(h.recv(&mut b, Node::A).await);
                ok(h.send(&mut b, Node::A, &p).await);
            }
        }) as Role;
        (gated, free)
    });
    run_tasks(rt, roles.collect())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    if mode == "sessions" {
        let rows: Vec<(Flavor, u64)> = match &args[1..] {
            [] => Flavor::ALL
                .into_iter()
                .flat_map(|f| SESSIONS.map(|n| (f, n)))
                .collect(),
            [flavor, n] => {
                let flavor = Flavor::ALL.into_iter().find(|f| f.name() == flavor);
                match (flavor, n.parse::<u64>()) {
                    (Some(f), Ok(n)) if n > 0 => vec![(f, n)],
                    _ => usage(&args),
                }
            }
            _ => usage(&args),
        };
        for (flavor, n) in rows {
            let rt = flavor.runtime();
            let rounds = SAMPLE_ROUND_TRIPS.div_ceil(n);
            alternate_rounds(
                &format!("{n} sessions, {}", flavor.name()),
                ("raw", "handler"),
                n * rounds,
                || sessions_raw(&rt, n, rounds),
                || sessions_handler(&rt, n, rounds),
            );
        }
        return;
    }
    let run: fn(&tokio::runtime::Runtime) -> std::time::Duration = match mode.as_str() {
        "raw" => |rt| pingpong_by_hand::<RawEnd>(rt, Flavor::MultiThread, ROUND_TRIPS),
        "channel" => |rt| pingpong_by_hand::<ChannelEnd>(rt, Flavor::MultiThread, ROUND_TRIPS),
        _ => usage(&args),
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

fn usage(args: &[String]) -> ! {
    eprintln!(
        "usage: mt_modes raw|channel|sessions [current_thread|multi_thread SESSIONS] (got {args:?})"
    );
    std::process::exit(2);
}
