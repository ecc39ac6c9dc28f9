//! Runs send+recv pairs without a runtime, for counting instructions with
//! callgrind (deterministic, unlike times):
//!
//! ```sh
//! cargo build --release -p rumpsteak-aura-benches --bin op_cost
//! valgrind --tool=callgrind target/release/op_cost raw
//! valgrind --tool=callgrind target/release/op_cost channel
//! valgrind --tool=callgrind target/release/op_cost handler
//! valgrind --tool=callgrind target/release/op_cost monitor
//! valgrind --tool=callgrind target/release/op_cost offer
//! valgrind --tool=callgrind target/release/op_cost offer_among
//! valgrind --tool=callgrind target/release/op_cost pingpong
//! valgrind --tool=callgrind target/release/op_cost typed_pingpong
//! valgrind --tool=callgrind target/release/op_cost choice_reply
//! valgrind --tool=callgrind target/release/op_cost typed_choice_reply
//! valgrind --tool=callgrind target/release/op_cost monitor_pingpong
//! valgrind --tool=callgrind target/release/op_cost monitor_choice_reply
//! valgrind --tool=callgrind target/release/op_cost layered_bare
//! valgrind --tool=callgrind target/release/op_cost layered_traced
//! valgrind --tool=callgrind target/release/op_cost layered_metered
//! valgrind --tool=callgrind target/release/op_cost runtime_bare
//! valgrind --tool=callgrind target/release/op_cost runtime_traced
//! valgrind --tool=callgrind target/release/op_cost runtime_metered
//! valgrind --tool=callgrind target/release/op_cost runtime_pingpong
//! valgrind --tool=callgrind target/release/op_cost runtime_monitor_pingpong
//! valgrind --tool=callgrind target/release/op_cost runtime_choice_reply
//! valgrind --tool=callgrind target/release/op_cost runtime_monitor_choice_reply
//! target/release/op_cost future_sizes
//! valgrind --tool=callgrind --cache-sim=yes target/release/op_cost raw_sessions
//! valgrind --tool=callgrind --cache-sim=yes target/release/op_cost channel_sessions
//! valgrind --tool=callgrind --cache-sim=yes target/release/op_cost handler_sessions
//! valgrind --tool=callgrind --cache-sim=yes target/release/op_cost handler_sessions_64
//! ```
//!
//! Each mode sends 100,000 `Ping`s from A to B and receives each at once:
//! `raw` over a tokio mpsc with postcard by hand, `channel` the same over
//! this project's `SimpleChannel`, `handler` through the
//! handler, `monitor` through the handler with a protocol monitor on both
//! endpoints. `offer` and `offer_among` choose a label (alternating between
//! two) and offer it, with `offer` or `offer_among`. Divide the instruction
//! totals by 100,000 for a per-pair cost.
//!
//! `pingpong` is a round trip through the handler (A sends, B receives and
//! sends it back, A receives); `choice_reply` is A choosing `accept` or
//! `reject` (alternating), B offering and replying with a `Ping`, A
//! receiving it. Their `typed_` forms do the same frames with both roles
//! typed by `protocol!` (the bench groups' `typed` rows), so the pair of
//! totals is the typed API's own cost. Their `monitor_` forms run them
//! with a monitor of the protocol on both endpoints (the `monitor` bench
//! group's rows), so the pair of totals is the monitors' cost.
//!
//! The `layered_` modes are the `pingpong` round trip through a handler
//! written generic over the handler, as the `layers` bench group's loop
//! is: the bare handler, `Traced` with no subscriber and `Metered` with no
//! recorder (the `metrics` feature on), so the pair of totals is the
//! layer's own cost.
//!
//! The `runtime_` modes run the same generic round trip on tokio's
//! current-thread runtime, the loop `layers_ratio` times: each receive
//! waits once and is polled again when its frame arrives, and the runtime's
//! own work is counted too. `runtime_pingpong`, `runtime_choice_reply`
//! and their `runtime_monitor_` forms are the `monitor` group's loops on
//! that runtime, without and with monitors.
//!
//! The `_sessions` modes make 1,024 sessions (by hand over tokio's mpsc,
//! by hand over `SimpleChannel`, through the handler) and send and receive
//! one `Ping` on each in turn, 100 times over: the same 102,400 pairs,
//! spread over the memory of 1,024 sessions, as the `sessions` bench does.
//! Their `_64` forms do the same 102,400 pairs over 64 sessions, 1,600
//! times over.
//! With `--cache-sim=yes` callgrind also counts the cache misses.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_benches::layered_pingpong as layered_pingpong_on;
use rumpsteak_aura_benches::{
    ByHand, CHOICE_PROTOCOL, ChannelEnd, Handler, Node, PINGPONG_PROTOCOL, Ping, RawEnd, endpoints,
    ok, typed_choice_protocol, typed_pingpong_protocol,
};
use rumpsteak_aura_choreography::RumpsteakEndpoint;
use rumpsteak_aura_choreography::layers::{Metered, Traced};
use rumpsteak_aura_choreography::protocol::Protocol;

const PAIRS: u64 = 100_000;

/// Polls a future that must complete at once: the channel is unbounded and
/// every receive finds its frame waiting.
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("op_cost: an operation did not complete at once"),
    }
}

fn by_hand<E: ByHand>() {
    let (mut a, mut b) = E::pair();
    for seq in 0..PAIRS {
        a.send(&Ping { seq, stamp: 7 });
        black_box(now(b.recv::<Ping>()));
    }
}

/// The pairs of the `_sessions` modes, spread over 1,024 sessions (or 64).
const SESSION_PAIRS: u64 = 102_400;

fn by_hand_sessions<E: ByHand>(n: u64) {
    let mut sessions: Vec<(E, E)> = (0..n).map(|_| E::pair()).collect();
    for seq in 0..SESSION_PAIRS / n {
        for (a, b) in &mut sessions {
            a.send(&Ping { seq, stamp: 7 });
            black_box(now(b.recv::<Ping>()));
        }
    }
}

fn handler_sessions(n: u64) {
    let mut sessions: Vec<_> = (0..n).map(|_| endpoints()).collect();
    let mut h = Handler::new();
    for seq in 0..SESSION_PAIRS / n {
        for (a, b) in &mut sessions {
            ok(now(h.send(a, Node::B, &Ping { seq, stamp: 7 })));
            black_box(ok(now(h.recv::<Ping>(b, Node::A))));
        }
    }
}

/// The endpoints of A and B.
type Endpoints = (RumpsteakEndpoint<Node>, RumpsteakEndpoint<Node>);

/// The endpoints of A and B, each with a monitor of `protocol`, as the
/// `monitor` bench group attaches them.
fn monitored(protocol: &str) -> Endpoints {
    let p = ok(Protocol::parse(protocol));
    let (a, b) = endpoints();
    (
        a.with_protocol(ok(p.monitor_for("A"))),
        b.with_protocol(ok(p.monitor_for("B"))),
    )
}

/// The untyped round trip of the `pingpong` mode.
fn pingpong((mut a, mut b): Endpoints) {
    let (mut ha, mut hb) = (Handler::new(), Handler::new());
    for seq in 0..PAIRS {
        ok(now(ha.send(&mut a, Node::B, &Ping { seq, stamp: 7 })));
        let p: Ping = ok(now(hb.recv(&mut b, Node::A)));
        ok(now(hb.send(&mut b, Node::A, &p)));
        black_box(ok(now(ha.recv::<Ping>(&mut a, Node::B))));
    }
}

/// The round trips of `pingpong` through handlers made by `make`.
fn layered_pingpong<H>(make: impl Fn() -> H)
where
    H: ChoreoHandler<Role = Node, Endpoint = RumpsteakEndpoint<Node>>,
{
    let (mut a, mut b) = endpoints();
    let (mut ha, mut hb) = (make(), make());
    for seq in 0..PAIRS {
        ok(now(ha.send(&mut a, Node::B, &Ping { seq, stamp: 7 })));
        let p: Ping = ok(now(hb.recv(&mut b, Node::A)));
        ok(now(hb.send(&mut b, Node::A, &p)));
        black_box(ok(now(ha.recv::<Ping>(&mut a, Node::B))));
    }
}

/// Prints the size of the `send` and `recv` futures of the bare handler
/// and of each layer around it: what an operation moves when it is
/// awaited.
fn future_sizes() {
    use std::mem::size_of_val;
    fn show<H>(name: &str, mut h: H)
    where
        H: ChoreoHandler<Role = Node, Endpoint = RumpsteakEndpoint<Node>>,
    {
        let (mut a, _b) = endpoints();
        let p = Ping { seq: 1, stamp: 2 };
        let send = size_of_val(&h.send(&mut a, Node::B, &p));
        let recv = size_of_val(&h.recv::<Ping>(&mut a, Node::B));
        println!("{name}: send future {send} bytes, recv future {recv} bytes");
    }
    show("bare", Handler::new());
    show("Traced", Traced::new(Handler::new()));
    show("Metered", Metered::new(Handler::new()));
}

/// The same round trips with both roles typed.
fn typed_pingpong() {
    use typed_pingpong_protocol::{a, b};
    let (mut ea, mut eb) = endpoints();
    let (mut ha, mut hb) = (Handler::new(), Handler::new());
    let mut a = ok(a::start(&mut ha, &mut ea));
    let mut b = ok(b::start(&mut hb, &mut eb));
    for seq in 0..PAIRS {
        let a1 = ok(now(a.send_to_b(&Ping { seq, stamp: 7 })));
        let (p, b1) = ok(now(b.recv_from_a()));
        b = ok(now(b1.send_to_a(&p)));
        let (p, a2) = ok(now(a1.recv_from_b()));
        black_box(p);
        a = a2;
    }
}

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

/// The untyped choice with its reply of the `choice_reply` mode.
fn choice_reply((mut a, mut b): Endpoints) {
    let (mut ha, mut hb) = (Handler::new(), Handler::new());
    for seq in 0..PAIRS {
        let label = if seq % 2 == 0 { ACCEPT } else { REJECT };
        ok(now(ha.choose(&mut a, Node::B, label)));
        let offered = ok(now(hb.offer(&mut b, Node::A)));
        let stamp = u32::from(offered == ACCEPT);
        ok(now(hb.send(&mut b, Node::A, &Ping { seq, stamp })));
        black_box(ok(now(ha.recv::<Ping>(&mut a, Node::B))));
    }
}

/// The same choices and replies with both roles typed.
fn typed_choice_reply() {
    use typed_choice_protocol::b::{Branch0, State0};
    fn reply(b: State0<'_, Handler>, seq: u64) -> State0<'_, Handler> {
        match ok(now(b.branch())) {
            Branch0::Accept(s) => ok(now(s.send_to_a(&Ping { seq, stamp: 1 }))),
            Branch0::Reject(s) => ok(now(s.send_to_a(&Ping { seq, stamp: 0 }))),
        }
    }
    let (mut ea, mut eb) = endpoints();
    let (mut ha, mut hb) = (Handler::new(), Handler::new());
    let mut a = ok(typed_choice_protocol::a::start(&mut ha, &mut ea));
    let mut b = ok(typed_choice_protocol::b::start(&mut hb, &mut eb));
    for seq in 0..PAIRS {
        // Each label leads to its own state, so each arm receives the reply.
        let (p, next) = if seq % 2 == 0 {
            let waits = ok(now(a.choose_accept()));
            b = reply(b, seq);
            ok(now(waits.recv_from_b()))
        } else {
            let waits = ok(now(a.choose_reject()));
            b = reply(b, seq);
            ok(now(waits.recv_from_b()))
        };
        black_box(p);
        a = next;
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "raw" => by_hand::<RawEnd>(),
        "channel" => by_hand::<ChannelEnd>(),
        "raw_sessions" => by_hand_sessions::<RawEnd>(1024),
        "channel_sessions" => by_hand_sessions::<ChannelEnd>(1024),
        "handler_sessions" => handler_sessions(1024),
        "raw_sessions_64" => by_hand_sessions::<RawEnd>(64),
        "channel_sessions_64" => by_hand_sessions::<ChannelEnd>(64),
        "handler_sessions_64" => handler_sessions(64),
        "pingpong" => pingpong(endpoints()),
        "monitor_pingpong" => pingpong(monitored(PINGPONG_PROTOCOL)),
        "typed_pingpong" => typed_pingpong(),
        "choice_reply" => choice_reply(endpoints()),
        "monitor_choice_reply" => choice_reply(monitored(CHOICE_PROTOCOL)),
        "layered_bare" => layered_pingpong(Handler::new),
        "future_sizes" => future_sizes(),
        "runtime_pingpong"
        | "runtime_monitor_pingpong"
        | "runtime_choice_reply"
        | "runtime_monitor_choice_reply" => {
            // The `monitor` group's and `monitor_ratio`'s loops themselves.
            let flavor = rumpsteak_aura_benches::Flavor::CurrentThread;
            let rt = flavor.runtime();
            let (a, b) = match mode.as_str() {
                "runtime_monitor_pingpong" => monitored(PINGPONG_PROTOCOL),
                "runtime_monitor_choice_reply" => monitored(CHOICE_PROTOCOL),
                _ => endpoints(),
            };
            black_box(if mode.ends_with("pingpong") {
                rumpsteak_aura_benches::handler_pingpong(&rt, flavor, a, b, PAIRS)
            } else {
                rumpsteak_aura_benches::handler_choice_reply(&rt, flavor, a, b, PAIRS)
            });
        }
        "runtime_bare" | "runtime_metered" | "runtime_traced" => {
            // The `layers_ratio` loop itself, on the current-thread runtime:
            // receives wait and are polled again, as in the timed rows.
            let rt = rumpsteak_aura_benches::Flavor::CurrentThread.runtime();
            black_box(match mode.as_str() {
                "runtime_bare" => layered_pingpong_on(Handler::new, PAIRS, &rt),
                "runtime_traced" => layered_pingpong_on(|| Traced::new(Handler::new()), PAIRS, &rt),
                _ => layered_pingpong_on(|| Metered::new(Handler::new()), PAIRS, &rt),
            });
        }
        "tls_raw" | "tls_session" | "quic_raw" | "quic_session" => {
            // The `tls_pingpong` and `quic_pingpong` rows' loops at 16 B on
            // the current-thread runtime, 10,000 round trips (each is tens
            // of microseconds under callgrind's emulation).
            use rumpsteak_aura_benches::net::{QuicSessions, RawQuic, TlsEnds};
            use rumpsteak_aura_benches::{Clock, Flavor, certs::Certs};
            const ROUNDS: u64 = 10_000;
            let flavor = Flavor::CurrentThread;
            let rt = flavor.runtime();
            let certs = Certs::new();
            black_box(match mode.as_str() {
                "tls_raw" => {
                    TlsEnds::new(&rt, &certs).raw_pingpong(Clock::Wall, &rt, flavor, 16, ROUNDS)
                }
                "tls_session" => {
                    TlsEnds::new(&rt, &certs).session_pingpong(Clock::Wall, &rt, flavor, 16, ROUNDS)
                }
                "quic_raw" => {
                    let raw = {
                        let _guard = rt.enter();
                        RawQuic::new(&certs)
                    };
                    raw.pingpong(Clock::Wall, &rt, flavor, 16, ROUNDS)
                }
                _ => QuicSessions::new(&rt, &certs).pingpong(Clock::Wall, &rt, flavor, 16, ROUNDS),
            });
        }
        "layered_traced" => layered_pingpong(|| Traced::new(Handler::new())),
        "layered_metered" => layered_pingpong(|| Metered::new(Handler::new())),
        "typed_choice_reply" => typed_choice_reply(),
        "handler" | "monitor" => {
            let (mut a, mut b) = endpoints();
            if mode == "monitor" {
                let p = ok(Protocol::parse("rec L { A -> B: Ping(Ping); continue L; }"));
                a = a.with_protocol(ok(p.monitor_for("A")));
                b = b.with_protocol(ok(p.monitor_for("B")));
            }
            let mut h = Handler::new();
            for seq in 0..PAIRS {
                ok(now(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 })));
                black_box(ok(now(h.recv::<Ping>(&mut b, Node::A))));
            }
        }
        "offer" | "offer_among" => {
            let (mut a, mut b) = endpoints();
            let mut h = Handler::new();
            for seq in 0..PAIRS {
                let label = if seq % 2 == 0 { ACCEPT } else { REJECT };
                ok(now(h.choose(&mut a, Node::B, label)));
                let offered = if mode == "offer" {
                    now(h.offer(&mut b, Node::A))
                } else {
                    now(h.offer_among(&mut b, Node::A, &[ACCEPT, REJECT]))
                };
                black_box(ok(offered));
            }
        }
        other => {
            eprintln!(
                "usage: op_cost raw|channel|handler|monitor|offer|offer_among|\
                 raw_sessions|channel_sessions|handler_sessions|raw_sessions_64|\
                 channel_sessions_64|handler_sessions_64|pingpong|typed_pingpong|\
                 choice_reply|typed_choice_reply|monitor_pingpong|monitor_choice_reply|layered_bare|layered_traced|layered_metered|\
                 future_sizes|runtime_bare|runtime_traced|runtime_metered|\
                 tls_raw|tls_session|quic_raw|quic_session|\
                 runtime_pingpong|runtime_monitor_pingpong|runtime_choice_reply|\
                 runtime_monitor_choice_reply (got {other:?})"
            );
            std::process::exit(2);
        }
    }
}
