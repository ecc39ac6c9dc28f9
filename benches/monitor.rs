//! What a protocol monitor costs: ping-pong on the current-thread runtime,
//! the raw baseline, the handler without a monitor, and the handler with a
//! monitor of the recursive ping-pong protocol attached to both roles.

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::{Flavor, endpoints, handler_pingpong, ok, raw_pingpong};
use rumpsteak_aura_choreography::protocol::Protocol;

/// Ping-pong forever; the bench stops after `iters` rounds.
const PING_PONG: &str = "rec Loop { A -> B: Ping(Ping); B -> A: Ping(Ping); continue Loop; }";

fn monitor(c: &mut Criterion) {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let protocol = ok(Protocol::parse(PING_PONG));
    let mut group = c.benchmark_group("monitor/pingpong");

    group.bench_function("raw_mpsc_postcard", |b| {
        b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
    });

    group.bench_function("handler_no_monitor", |b| {
        b.iter_custom(|iters| {
            let (a, bb) = endpoints();
            handler_pingpong(&rt, flavor, a, bb, iters)
        })
    });

    group.bench_function("handler_monitor", |b| {
        b.iter_custom(|iters| {
            let (a, bb) = endpoints();
            let a = a.with_protocol(ok(protocol.monitor_for("A")));
            let bb = bb.with_protocol(ok(protocol.monitor_for("B")));
            handler_pingpong(&rt, flavor, a, bb, iters)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = monitor
}
criterion_main!(benches);
