//! A choice followed by a reply: A chooses a branch, B offers, then answers
//! with a message. Judged against raw ping-pong (one message each way), the
//! same number of frames.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_benches::{Flavor, Handler, Node, Ping, endpoints, ok, raw_pingpong, run_pair};

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

fn choice(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("choice_reply/{}", flavor.name()));

        group.bench_function("raw_mpsc_postcard_pingpong", |b| {
            b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
        });

        group.bench_function("handler_choose_offer_reply", |b| {
            b.iter_custom(|iters| {
                let (mut a, mut bb) = endpoints();
                let first = async move {
                    let mut h = Handler::new();
                    for seq in 0..iters {
                        let label = if seq % 2 == 0 { ACCEPT } else { REJECT };
                        ok(h.choose(&mut a, Node::B, label).await);
                        black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
                    }
                };
                let second = async move {
                    let mut h = Handler::new();
                    for seq in 0..iters {
                        let label = ok(h.offer_among(&mut bb, Node::A, &[ACCEPT, REJECT]).await);
                        let stamp = if label == ACCEPT { 1 } else { 0 };
                        ok(h.send(&mut bb, Node::A, &Ping { seq, stamp }).await);
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
    targets = choice
}
criterion_main!(benches);
