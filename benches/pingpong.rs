//! Ping-pong: A sends a small message, B answers it. Time per round trip.

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::{
    ChannelEnd, Flavor, endpoints, handler_pingpong, pingpong_by_hand, raw_pingpong,
};

fn pingpong(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("pingpong/{}", flavor.name()));
        group.bench_function("raw_mpsc_postcard", |b| {
            b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
        });
        group.bench_function("simple_channel_postcard", |b| {
            b.iter_custom(|iters| pingpong_by_hand::<ChannelEnd>(&rt, flavor, iters))
        });
        group.bench_function("handler", |b| {
            b.iter_custom(|iters| {
                let (a, bb) = endpoints();
                handler_pingpong(&rt, flavor, a, bb, iters)
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
