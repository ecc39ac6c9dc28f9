//! Shared setup for the benches: roles, messages, runtimes, and the raw
//! baseline every group is judged against (a tokio mpsc of `Vec<u8>` with
//! postcard encode and decode written by hand).

pub mod certs;
pub mod net;

use std::future::Future;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rumpsteak_aura_choreography::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
use serde::{Deserialize, Serialize};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The roles of every bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// Starts each exchange.
    A,
    /// Answers.
    B,
    /// The third role of the relay.
    C,
}

impl rumpsteak_aura::Role for Node {
    type Message = Ping;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// A small message: what most protocol steps carry.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Sequence number.
    pub seq: u64,
    /// Some other field.
    pub stamp: u32,
}

/// The handler used by every bench.
pub type Handler = RumpsteakHandler<Node, Ping>;

/// The two runtimes each bench runs on.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    /// One thread, both roles as futures of one task: measures our overhead.
    CurrentThread,
    /// Two worker threads, the answering role spawned: what users see.
    MultiThread,
}

impl Flavor {
    /// Both flavors, in report order.
    pub const ALL: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

    /// The name used in group ids.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
        }
    }

    /// Builds the runtime.
    pub fn runtime(self) -> Runtime {
        let built = match self {
            Flavor::CurrentThread => Builder::new_current_thread().enable_all().build(),
            Flavor::MultiThread => Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
        };
        built.unwrap_or_else(|e| panic!("bench setup: cannot build a tokio runtime: {e}"))
    }
}

/// Runs two roles to completion and returns the elapsed time. On the current
/// thread both run in one task; on the multi-thread runtime `second` is
/// spawned.
pub fn run_pair<P, Q>(rt: &Runtime, flavor: Flavor, first: P, second: Q) -> Duration
where
    P: Future<Output = ()> + Send + 'static,
    Q: Future<Output = ()> + Send + 'static,
{
    run_pair_on(Clock::Wall, rt, flavor, first, second)
}

/// What a sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Elapsed time: what criterion reports.
    Wall,
    /// CPU time of the whole process (every thread, user and system): the
    /// work done, without the time spent waiting for a core that another
    /// process holds, which on a loaded machine is most of the scatter.
    Cpu,
}

impl Clock {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Wall => "wall",
            Clock::Cpu => "cpu",
        }
    }
}

/// An instant of a [`Clock`].
enum Stamp {
    Wall(Instant),
    Cpu(cpu_time::ProcessTime),
}

impl Stamp {
    fn now(clock: Clock) -> Stamp {
        match clock {
            Clock::Wall => Stamp::Wall(Instant::now()),
            Clock::Cpu => Stamp::Cpu(cpu_time::ProcessTime::now()),
        }
    }

    fn elapsed(&self) -> Duration {
        match self {
            Stamp::Wall(t) => t.elapsed(),
            Stamp::Cpu(t) => t.elapsed(),
        }
    }
}

/// [`run_pair`], measured by `clock`.
pub fn run_pair_on<P, Q>(
    clock: Clock,
    rt: &Runtime,
    flavor: Flavor,
    first: P,
    second: Q,
) -> Duration
where
    P: Future<Output = ()> + Send + 'static,
    Q: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        let start = Stamp::now(clock);
        match flavor {
            Flavor::CurrentThread => {
                tokio::join!(first, second);
            }
            Flavor::MultiThread => {
                let handle = tokio::spawn(second);
                first.await;
                if let Err(e) = handle.await {
                    panic!("bench role failed: {e}");
                }
            }
        }
        start.elapsed()
    })
}

/// Two endpoints, A and B, connected in memory.
pub fn endpoints() -> (RumpsteakEndpoint<Node>, RumpsteakEndpoint<Node>) {
    let (ca, cb) = SimpleChannel::pair();
    let mut a = RumpsteakEndpoint::new(Node::A);
    let mut b = RumpsteakEndpoint::new(Node::B);
    a.register_channel(Node::B, ca);
    b.register_channel(Node::A, cb);
    (a, b)
}

/// Messages sent by hand: postcard encode and decode written out, over some
/// channel of byte frames. The raw baseline is [`RawEnd`]; [`ChannelEnd`]
/// does the same over this project's in-memory channel, to show how much of
/// a difference comes from the channel rather than the handler.
pub trait ByHand: Sized + Send + 'static {
    /// Two connected ends.
    fn pair() -> (Self, Self);

    /// Encodes with postcard and sends.
    fn send<T: Serialize>(&mut self, msg: &T);

    /// Receives and decodes with postcard.
    fn recv<T: serde::de::DeserializeOwned>(&mut self) -> impl Future<Output = T> + Send;
}

fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_allocvec(msg).unwrap_or_else(|e| panic!("encode: {e}"))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    postcard::from_bytes(bytes).unwrap_or_else(|e| panic!("decode: {e}"))
}

/// One end of the raw baseline: a pair of unbounded tokio channels of bytes.
#[derive(Debug)]
pub struct RawEnd {
    tx: UnboundedSender<Vec<u8>>,
    rx: UnboundedReceiver<Vec<u8>>,
}

impl ByHand for RawEnd {
    fn pair() -> (RawEnd, RawEnd) {
        let (tx_a, rx_b) = unbounded_channel();
        let (tx_b, rx_a) = unbounded_channel();
        (RawEnd { tx: tx_a, rx: rx_a }, RawEnd { tx: tx_b, rx: rx_b })
    }

    fn send<T: Serialize>(&mut self, msg: &T) {
        if self.tx.send(encode(msg)).is_err() {
            panic!("raw peer gone");
        }
    }

    async fn recv<T: serde::de::DeserializeOwned>(&mut self) -> T {
        match self.rx.recv().await {
            Some(bytes) => decode(&bytes),
            None => panic!("raw peer gone"),
        }
    }
}

/// One end of [`SimpleChannel`] used by hand, without the handler.
#[derive(Debug)]
pub struct ChannelEnd(SimpleChannel);

impl ByHand for ChannelEnd {
    fn pair() -> (ChannelEnd, ChannelEnd) {
        let (a, b) = SimpleChannel::pair();
        (ChannelEnd(a), ChannelEnd(b))
    }

    fn send<T: Serialize>(&mut self, msg: &T) {
        ok(self.0.try_send_frame(encode(msg)));
    }

    async fn recv<T: serde::de::DeserializeOwned>(&mut self) -> T {
        let bytes = ok(std::future::poll_fn(|cx| self.0.poll_recv_frame(cx)).await);
        decode(&bytes)
    }
}

/// Ping-pong by hand over `E`: `iters` round trips of a [`Ping`].
pub fn pingpong_by_hand<E: ByHand>(rt: &Runtime, flavor: Flavor, iters: u64) -> Duration {
    let (mut a, mut b) = E::pair();
    let first = async move {
        for seq in 0..iters {
            a.send(&Ping { seq, stamp: 7 });
            std::hint::black_box(a.recv::<Ping>().await);
        }
    };
    let second = async move {
        for _ in 0..iters {
            let p: Ping = b.recv().await;
            b.send(&p);
        }
    };
    run_pair(rt, flavor, first, second)
}

/// Raw ping-pong over [`RawEnd`]s, the baseline of every ping-pong group.
pub fn raw_pingpong(rt: &Runtime, flavor: Flavor, iters: u64) -> Duration {
    pingpong_by_hand::<RawEnd>(rt, flavor, iters)
}

/// Ping-pong through the handler: `iters` round trips of a [`Ping`] from the
/// endpoint of A to the endpoint of B and back, whatever their sessions.
pub fn handler_pingpong(
    rt: &Runtime,
    flavor: Flavor,
    mut a: RumpsteakEndpoint<Node>,
    mut b: RumpsteakEndpoint<Node>,
    iters: u64,
) -> Duration {
    use rumpsteak_aura::ChoreoHandler;

    let first = async move {
        let mut h = Handler::new();
        for seq in 0..iters {
            ok(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 }).await);
            std::hint::black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
        }
    };
    let second = async move {
        let mut h = Handler::new();
        for _ in 0..iters {
            let p: Ping = ok(h.recv(&mut b, Node::A).await);
            ok(h.send(&mut b, Node::A, &p).await);
        }
    };
    run_pair(rt, flavor, first, second)
}

/// Panics with the error: a failing operation is a broken bench.
pub fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("bench operation failed: {e}"))
}

/// Criterion settings shared by every bench: short enough that `cargo bench`
/// finishes in minutes on two cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

/// A role numbered at run time, for protocols of many roles and endpoints
/// with many peers (the scale benches). Its `Debug` form is `Member(7)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member(pub u32);

impl rumpsteak_aura::Role for Member {
    type Message = Ping;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// The handler of the scale benches, over numbered roles.
pub type MemberHandler = RumpsteakHandler<Member, Ping>;

/// The first label of the choice benches.
pub const ACCEPT: rumpsteak_aura::Label = rumpsteak_aura::Label("accept");
/// The second label of the choice benches.
pub const REJECT: rumpsteak_aura::Label = rumpsteak_aura::Label("reject");

/// The protocol of [`handler_pingpong`], for monitors: ping-pong forever
/// (a run stops after its rounds).
pub const PINGPONG_PROTOCOL: &str =
    "rec Loop { A -> B: Ping(Ping); B -> A: Ping(Ping); continue Loop; }";

/// The protocol of [`handler_choice_reply`], for monitors: A chooses
/// `accept` or `reject`, B answers either with a `Ping`, forever.
pub const CHOICE_PROTOCOL: &str = "rec Loop { choice at A { \
    accept: { B -> A: Ping(Ping); continue Loop; } \
    reject: { B -> A: Ping(Ping); continue Loop; } \
} }";

/// A choice and its reply through the handler, between the endpoints of A
/// and B whatever their sessions or monitors: `iters` rounds of A choosing
/// `accept` or `reject` in turn, B offering (with `offer`) and answering
/// with a [`Ping`], A receiving it. Two frames per round, as a ping-pong.
pub fn handler_choice_reply(
    rt: &Runtime,
    flavor: Flavor,
    mut a: RumpsteakEndpoint<Node>,
    mut b: RumpsteakEndpoint<Node>,
    iters: u64,
) -> Duration {
    use rumpsteak_aura::ChoreoHandler;

    let first = async move {
        let mut h = Handler::new();
        for seq in 0..iters {
            let label = if seq % 2 == 0 { ACCEPT } else { REJECT };
            ok(h.choose(&mut a, Node::B, label).await);
            std::hint::black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
        }
    };
    let second = async move {
        let mut h = Handler::new();
        for seq in 0..iters {
            let label = ok(h.offer(&mut b, Node::A).await);
            let stamp = u32::from(label == ACCEPT);
            ok(h.send(&mut b, Node::A, &Ping { seq, stamp }).await);
        }
    };
    run_pair(rt, flavor, first, second)
}

// --------------------------------------------------------------------------
// Typed rows: the ping-pong and the choice with the reply, as protocols given
// to `protocol!`, each doing exactly the wire work of its untyped row.

rumpsteak_aura_choreography::protocol! {
    /// Ping-pong as a typed protocol: the frames of [`handler_pingpong`].
    #[protocol(roles = "crate::Node")]
    pub mod typed_pingpong_protocol = "
        roles A, B;
        rec Round { A -> B: Ping(Ping); B -> A: Ping(Ping); continue Round; }
    ";
}

rumpsteak_aura_choreography::protocol! {
    /// The choice and its reply as a typed protocol: the frames of
    /// [`handler_choice_reply`] (B offers with `offer`).
    #[protocol(roles = "crate::Node")]
    pub mod typed_choice_protocol = "
        roles A, B;
        rec Round {
            choice at A {
                accept: { B -> A: Ping(Ping); continue Round; }
                reject: { B -> A: Ping(Ping); continue Round; }
            }
        }
    ";
}

/// [`handler_pingpong`] with both roles typed ([`typed_pingpong_protocol`])
/// over in-memory endpoints: `iters` round trips of a [`Ping`]. Each role
/// drops its loop state at the end, once, outside the per-round cost.
pub fn typed_pingpong(rt: &Runtime, flavor: Flavor, iters: u64) -> Duration {
    use typed_pingpong_protocol::{a, b};

    let (mut ea, mut eb) = endpoints();
    let first = async move {
        let mut h = Handler::new();
        let mut s = ok(a::start(&mut h, &mut ea));
        for seq in 0..iters {
            let sent = ok(s.send_to_b(&Ping { seq, stamp: 7 }).await);
            let (p, next) = ok(sent.recv_from_b().await);
            std::hint::black_box(p);
            s = next;
        }
    };
    let second = async move {
        let mut h = Handler::new();
        let mut s = ok(b::start(&mut h, &mut eb));
        for _ in 0..iters {
            let (p, got) = ok(s.recv_from_a().await);
            s = ok(got.send_to_a(&p).await);
        }
    };
    run_pair(rt, flavor, first, second)
}

/// The choice with its reply with both roles typed
/// ([`typed_choice_protocol`]): `iters` rounds of A choosing `accept` or
/// `reject` in turn, B branching and answering with a [`Ping`] whose stamp
/// says which, A receiving it, as the untyped `offer` row does.
pub fn typed_choice_reply(rt: &Runtime, flavor: Flavor, iters: u64) -> Duration {
    use typed_choice_protocol::{a, b};

    let (mut ea, mut eb) = endpoints();
    let first = async move {
        let mut h = Handler::new();
        let mut s = ok(a::start(&mut h, &mut ea));
        for seq in 0..iters {
            let (p, next) = if seq % 2 == 0 {
                ok(ok(s.choose_accept().await).recv_from_b().await)
            } else {
                ok(ok(s.choose_reject().await).recv_from_b().await)
            };
            std::hint::black_box(p);
            s = next;
        }
    };
    let second = async move {
        let mut h = Handler::new();
        let mut s = ok(b::start(&mut h, &mut eb));
        for seq in 0..iters {
            s = match ok(s.branch().await) {
                b::Branch0::Accept(reply) => ok(reply.send_to_a(&Ping { seq, stamp: 1 }).await),
                b::Branch0::Reject(reply) => ok(reply.send_to_a(&Ping { seq, stamp: 0 }).await),
            };
        }
    };
    run_pair(rt, flavor, first, second)
}

/// Ping-pong with A's and B's handlers made by `make`, on the current-thread
/// runtime: the loop of [`handler_pingpong`] written generic over the
/// handler, for the layers' rows.
pub fn layered_pingpong<H>(make: impl Fn() -> H, iters: u64, rt: &Runtime) -> Duration
where
    H: rumpsteak_aura::ChoreoHandler<Role = Node, Endpoint = RumpsteakEndpoint<Node>>
        + Send
        + 'static,
{
    let (mut a, mut b) = endpoints();
    let (mut ha, mut hb) = (make(), make());
    let first = async move {
        for seq in 0..iters {
            ok(ha.send(&mut a, Node::B, &Ping { seq, stamp: 7 }).await);
            std::hint::black_box(ok(ha.recv::<Ping>(&mut a, Node::B).await));
        }
    };
    let second = async move {
        for _ in 0..iters {
            let p: Ping = ok(hb.recv(&mut b, Node::A).await);
            ok(hb.send(&mut b, Node::A, &p).await);
        }
    };
    run_pair(rt, Flavor::CurrentThread, first, second)
}

/// Round trips per sample of [`alternate`]: tens of milliseconds, so the
/// timer's resolution does not matter, and short enough for many samples.
pub const ALTERNATE_ROUNDS: u64 = 20_000;

/// Samples of each side taken by [`alternate`].
pub const ALTERNATE_SAMPLES: usize = 41;

/// Times `base` and `other` in alternating samples of
/// [`ALTERNATE_ROUNDS`] round trips each (after one warm-up of each), so
/// that both see the same conditions on a shared machine, and prints the
/// best and median time per round trip of each and their ratios. `names`
/// says what the two sides are.
pub fn alternate(
    name: &str,
    names: (&str, &str),
    base: impl Fn() -> Duration,
    other: impl Fn() -> Duration,
) {
    alternate_rounds(name, names, ALTERNATE_ROUNDS, base, other)
}

/// [`alternate`] for samples of `rounds` round trips each, for work whose
/// round trip is too slow for [`ALTERNATE_ROUNDS`] of them per sample.
pub fn alternate_rounds(
    name: &str,
    names: (&str, &str),
    rounds: u64,
    base: impl Fn() -> Duration,
    other: impl Fn() -> Duration,
) {
    let per_round = |d: Duration| d.as_nanos() as f64 / rounds as f64;
    let summary = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    base();
    other();
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..ALTERNATE_SAMPLES {
        b.push(per_round(base()));
        o.push(per_round(other()));
    }
    let ((bb, bm), (ob, om)) = (summary(b), summary(o));
    let (bn, on) = names;
    println!(
        "{name}: {bn} best {bb:.1} ns, median {bm:.1} ns; {on} best {ob:.1} ns, median {om:.1} ns; \
         {on}/{bn} best {:.3}, median {:.3}",
        ob / bb,
        om / bm
    );
}

/// Times `iters` connection setups made by `setup`, each result dropped
/// after its time is taken (so closing is not counted).
pub fn time_setups<T, F>(rt: &Runtime, iters: u64, mut setup: impl FnMut() -> F) -> Duration
where
    F: Future<Output = T>,
{
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let made = setup().await;
            total += start.elapsed();
            drop(std::hint::black_box(made));
        }
        total
    })
}
