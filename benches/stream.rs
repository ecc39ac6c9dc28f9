//! One-way stream: A sends many small messages, B receives them. Time per
//! message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura::ChoreoHandler;
use std::time::Duration;

use rumpsteak_aura_benches::{
    ByHand, ChannelEnd, Flavor, Handler, Node, Ping, RawEnd, endpoints, ok, run_pair,
};
use tokio::runtime::Runtime;

/// `iters` messages from one end to the other, encoded and decoded by hand.
fn stream_by_hand<E: ByHand>(rt: &Runtime, flavor: Flavor, iters: u64) -> Duration {
    let (mut a, mut bb) = E::pair();
    let first = async move {
        for seq in 0..iters {
            a.send(&Ping { seq, stamp: 1 });
        }
    };
    let second = async move {
        for _ in 0..iters {
            black_box(bb.recv::<Ping>().await);
        }
    };
    run_pair(rt, flavor, first, second)
}

fn stream(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("stream/{}", flavor.name()));

        group.bench_function("raw_mpsc_postcard", |b| {
            b.iter_custom(|iters| stream_by_hand::<RawEnd>(&rt, flavor, iters))
        });

        group.bench_function("simple_channel_postcard", |b| {
            b.iter_custom(|iters| stream_by_hand::<ChannelEnd>(&rt, flavor, iters))
        });

        group.bench_function("handler", |b| {
            b.iter_custom(|iters| {
                let (mut a, mut bb) = endpoints();
                let first = async move {
                    let mut h = Handler::new();
                    for seq in 0..iters {
                        ok(h.send(&mut a, Node::B, &Ping { seq, stamp: 1 }).await);
                    }
                };
                let second = async move {
                    let mut h = Handler::new();
                    for _ in 0..iters {
                        black_box(ok(h.recv::<Ping>(&mut bb, Node::A).await));
                    }
                };
                run_pair(&rt, flavor, first, second)
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = stream
}
criterion_main!(benches);
