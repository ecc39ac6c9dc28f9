//! Layers on ping-pong, current-thread runtime: the raw baseline, the bare
//! handler, and the handler under `Traced` (no subscriber), `Metered` (no
//! recorder; default latency sampling, and every operation timed) and
//! `Recording`. Time per round trip.
//!
//! The layered rows run `layered_pingpong`, the same loop as
//! `handler_pingpong` in `benches/common` written generic over the handler;
//! `benches/common`; its `generic_handler` row is the bare handler through that loop, so the
//! layers are compared with a loop of the same shape.

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::{
    Flavor, Handler, endpoints, handler_pingpong, layered_pingpong, raw_pingpong,
};
use rumpsteak_aura_choreography::layers::{Metered, Recording, Traced};

fn layers(c: &mut Criterion) {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let mut group = c.benchmark_group(format!("layers_pingpong/{}", flavor.name()));
    group.bench_function("raw_mpsc_postcard", |b| {
        b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
    });
    group.bench_function("handler", |b| {
        b.iter_custom(|iters| {
            let (a, bb) = endpoints();
            handler_pingpong(&rt, flavor, a, bb, iters)
        })
    });
    group.bench_function("generic_handler", |b| {
        b.iter_custom(|iters| layered_pingpong(Handler::new, iters, &rt))
    });
    group.bench_function("traced_no_subscriber", |b| {
        b.iter_custom(|iters| layered_pingpong(|| Traced::new(Handler::new()), iters, &rt))
    });
    group.bench_function("metered_no_recorder", |b| {
        b.iter_custom(|iters| layered_pingpong(|| Metered::new(Handler::new()), iters, &rt))
    });
    group.bench_function("metered_every_op_timed", |b| {
        b.iter_custom(|iters| {
            layered_pingpong(
                || Metered::new(Handler::new()).with_latency_sampling(1),
                iters,
                &rt,
            )
        })
    });
    group.bench_function("traced_metered", |b| {
        b.iter_custom(|iters| {
            layered_pingpong(|| Traced::new(Metered::new(Handler::new())), iters, &rt)
        })
    });
    group.bench_function("recording", |b| {
        // A transcript large enough for every iteration criterion asks for.
        b.iter_custom(|iters| {
            let limits = rumpsteak_aura_choreography::layers::Limits::new(usize::MAX, usize::MAX);
            layered_pingpong(
                || Recording::with_limits(Handler::new(), limits),
                iters,
                &rt,
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = layers
}
criterion_main!(benches);
