//! Runs send+recv pairs without a runtime, for counting instructions with
//! callgrind (deterministic, unlike times):
//!
//! ```sh
//! cargo build --release -p rumpsteak-aura-benches --bin op_cost
//! valgrind --tool=callgrind target/release/op_cost raw
//! valgrind --tool=callgrind target/release/op_cost handler
//! valgrind --tool=callgrind target/release/op_cost monitor
//! ```
//!
//! Each mode sends 100,000 `Ping`s from A to B and receives each at once:
//! `raw` over a tokio mpsc with postcard by hand, `handler` through the
//! handler, `monitor` through the handler with a protocol monitor on both
//! endpoints. Divide the instruction totals by 100,000 for a per-pair cost.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{Handler, Node, Ping, RawEnd, endpoints, ok};
use rumpsteak_aura_choreography::protocol::Protocol;

const PAIRS: u64 = 100_000;

/// Polls a future that must complete at once: the channel is unbounded and
/// every receive finds its frame waiting.
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("op_cost: an operation did not complete at once"),
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "raw" => {
            let (a, mut b) = RawEnd::pair();
            for seq in 0..PAIRS {
                a.send(&Ping { seq, stamp: 7 });
                black_box(now(b.recv::<Ping>()));
            }
        }
        "handler" | "monitor" => {
            let (mut a, mut b) = endpoints();
            if mode == "monitor" {
                let p = ok(Protocol::parse("rec L { A -> B: Ping(Ping); continue L; }"));
                a = a.with_protocol(ok(p.monitor_for("A")));
                b = b.with_protocol(ok(p.monitor_for("B")));
            }
            let mut h = Handler::new();
            for seq in 0..PAIRS {
                ok(now(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 })));
                black_box(ok(now(h.recv::<Ping>(&mut b, Node::A))));
            }
        }
        other => {
            eprintln!("usage: op_cost raw|handler|monitor (got {other:?})");
            std::process::exit(2);
        }
    }
}
