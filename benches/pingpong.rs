//! Ping-pong: A sends a small message, B answers it. Time per round trip.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{Flavor, Handler, Node, Ping, RawEnd, endpoints, ok, run_pair};

fn pingpong(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("pingpong/{}", flavor.name()));

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

        group.bench_function("handler", |b| {
            b.iter_custom(|iters| {
                let (mut a, mut bb) = endpoints();
                let first = async move {
                    let mut h = Handler::new();
                    for seq in 0..iters {
                        ok(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 }).await);
                        black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
                    }
                };
                let second = async move {
                    let mut h = Handler::new();
                    for _ in 0..iters {
                        let p: Ping = ok(h.recv(&mut bb, Node::A).await);
                        ok(h.send(&mut bb, Node::A, &p).await);
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
    targets = pingpong
}
criterion_main!(benches);
