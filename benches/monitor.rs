//! What a protocol monitor costs: ping-pong on the current-thread runtime,
//! the raw baseline, the handler without a monitor, and the handler with a
//! monitor of the recursive ping-pong protocol attached to both roles.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{Flavor, Handler, Node, Ping, RawEnd, endpoints, ok, run_pair};
use rumpsteak_aura_choreography::protocol::Protocol;

/// Ping-pong forever; the bench stops after `iters` rounds.
const PING_PONG: &str = "rec Loop { A -> B: Ping(Ping); B -> A: Ping(Ping); continue Loop; }";

fn monitor(c: &mut Criterion) {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let protocol = ok(Protocol::parse(PING_PONG));
    let mut group = c.benchmark_group("monitor/pingpong");

    group.bench_function("raw_mpsc_postcard", |b| {
        b.iter_custom(|iters| {
            let (mut a, mut bb) = RawEnd::pair();
            let first = async move {
                for seq in 0..iters {
                    a.send(&Ping { seq, stamp: 7 });
                    black_box(a.recv::<Ping>().await);
                }
            };
            let second = async move {
                for _ in 0..iters {
                    let p: Ping = bb.recv().await;
                    bb.send(&p);
                }
            };
            run_pair(&rt, flavor, first, second)
        })
    });

    group.bench_function("handler_no_monitor", |b| {
        b.iter_custom(|iters| {
            let (a, bb) = endpoints();
            run_pair(&rt, flavor, ping(a, iters), pong(bb, iters))
        })
    });

    group.bench_function("handler_monitor", |b| {
        b.iter_custom(|iters| {
            let (a, bb) = endpoints();
            let a = a.with_protocol(ok(protocol.monitor_for("A")));
            let bb = bb.with_protocol(ok(protocol.monitor_for("B")));
            run_pair(&rt, flavor, ping(a, iters), pong(bb, iters))
        })
    });
    group.finish();
}

async fn ping(mut a: rumpsteak_aura_choreography::RumpsteakEndpoint<Node>, iters: u64) {
    let mut h = Handler::new();
    for seq in 0..iters {
        ok(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 }).await);
        black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
    }
}

async fn pong(mut b: rumpsteak_aura_choreography::RumpsteakEndpoint<Node>, iters: u64) {
    let mut h = Handler::new();
    for _ in 0..iters {
        let p: Ping = ok(h.recv(&mut b, Node::A).await);
        ok(h.send(&mut b, Node::A, &p).await);
    }
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = monitor
}
criterion_main!(benches);
