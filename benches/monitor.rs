//! What a protocol monitor costs, on the current-thread runtime: a
//! ping-pong and a choice with its reply, each with the raw baseline, the
//! handler without a monitor, and the handler with a monitor of the
//! protocol attached to both roles.

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

use rumpsteak_aura_benches::{
    CHOICE_PROTOCOL, Flavor, Node, PINGPONG_PROTOCOL, endpoints, handler_choice_reply,
    handler_pingpong, ok, raw_pingpong,
};
use rumpsteak_aura_choreography::RumpsteakEndpoint;
use rumpsteak_aura_choreography::protocol::Protocol;
use tokio::runtime::Runtime;

/// A workload between the endpoints of A and B.
type Run = fn(&Runtime, Flavor, RumpsteakEndpoint<Node>, RumpsteakEndpoint<Node>, u64) -> Duration;

fn monitor(c: &mut Criterion) {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let workloads: [(&str, &str, Run); 2] = [
        ("pingpong", PINGPONG_PROTOCOL, handler_pingpong),
        ("choice_reply", CHOICE_PROTOCOL, handler_choice_reply),
    ];
    for (name, source, run) in workloads {
        let protocol = ok(Protocol::parse(source));
        let mut group = c.benchmark_group(format!("monitor/{name}"));

        // Raw ping-pong: one message each way, as many frames as either
        // workload.
        group.bench_function("raw_mpsc_postcard", |b| {
            b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
        });

        group.bench_function("handler_no_monitor", |b| {
            b.iter_custom(|iters| {
                let (a, bb) = endpoints();
                run(&rt, flavor, a, bb, iters)
            })
        });

        group.bench_function("handler_monitor", |b| {
            b.iter_custom(|iters| {
                let (a, bb) = endpoints();
                let a = a.with_protocol(ok(protocol.monitor_for("A")));
                let bb = bb.with_protocol(ok(protocol.monitor_for("B")));
                run(&rt, flavor, a, bb, iters)
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = monitor
}
criterion_main!(benches);
