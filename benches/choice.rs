//! A choice followed by a reply: A chooses a branch, B offers, then answers
//! with a message. Judged against raw ping-pong (one message each way), the
//! same number of frames.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_benches::{
    Flavor, Handler, Node, Ping, endpoints, ok, raw_pingpong, run_pair, typed_choice_reply,
};
use tokio::runtime::Runtime;

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

/// `iters` rounds of: A chooses, B offers (with `offer`, or with
/// `offer_among` if `among`) and answers with a message, A receives it.
fn choose_offer_reply(rt: &Runtime, flavor: Flavor, among: bool, iters: u64) -> Duration {
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
            let label = if among {
                ok(h.offer_among(&mut bb, Node::A, &[ACCEPT, REJECT]).await)
            } else {
                ok(h.offer(&mut bb, Node::A).await)
            };
            let stamp = if label == ACCEPT { 1 } else { 0 };
            ok(h.send(&mut bb, Node::A, &Ping { seq, stamp }).await);
        }
    };
    run_pair(rt, flavor, first, second)
}

fn choice(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("choice_reply/{}", flavor.name()));

        group.bench_function("raw_mpsc_postcard_pingpong", |b| {
            b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
        });

        for (name, among) in [
            ("handler_choose_offer_reply", false),
            ("handler_choose_offer_among_reply", true),
        ] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| choose_offer_reply(&rt, flavor, among, iters))
            });
        }
        // The frames of `handler_choose_offer_reply`, with both roles typed.
        group.bench_function("typed", |b| {
            b.iter_custom(|iters| typed_choice_reply(&rt, flavor, iters))
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
