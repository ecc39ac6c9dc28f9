//! Times the `monitor` group's rows, the handler with a monitor of the
//! protocol on both endpoints against the handler without, in alternating
//! samples on the current-thread runtime, as `typed_ratio` does for the
//! typed rows:
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin monitor_ratio
//! ```
//!
//! Each sample of the monitored row is taken right after a sample of the
//! unmonitored one, 41 times, and the best and median of each are
//! compared. The work per round trip is that of the criterion rows: the
//! same helpers and protocols.

use rumpsteak_aura_benches::{
    ALTERNATE_ROUNDS, CHOICE_PROTOCOL, Flavor, Node, PINGPONG_PROTOCOL, alternate, endpoints,
    handler_choice_reply, handler_pingpong, ok,
};
use rumpsteak_aura_choreography::RumpsteakEndpoint;
use rumpsteak_aura_choreography::protocol::Protocol;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A workload between the endpoints of A and B.
type Run = fn(&Runtime, Flavor, RumpsteakEndpoint<Node>, RumpsteakEndpoint<Node>, u64) -> Duration;

fn main() {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let workloads: [(&str, &str, Run); 2] = [
        ("ping-pong", PINGPONG_PROTOCOL, handler_pingpong),
        ("choice with reply", CHOICE_PROTOCOL, handler_choice_reply),
    ];
    for (name, source, run) in workloads {
        let protocol = ok(Protocol::parse(source));
        alternate(
            name,
            ("no monitor", "monitor"),
            || {
                let (a, b) = endpoints();
                run(&rt, flavor, a, b, ALTERNATE_ROUNDS)
            },
            || {
                let (a, b) = endpoints();
                let a = a.with_protocol(ok(protocol.monitor_for("A")));
                let b = b.with_protocol(ok(protocol.monitor_for("B")));
                run(&rt, flavor, a, b, ALTERNATE_ROUNDS)
            },
        );
    }
}
