//! Scale: many sessions at once, protocols of many roles, endpoints with
//! many peers. Payload sizes are the `throughput` bench.
//!
//! - `sessions/<flavor>/<n>`: `n` concurrent two-party ping-pong sessions,
//!   each role its own task; the time is the aggregate per round trip
//!   (elapsed time divided by the round trips of all sessions).
//! - `ring/<flavor>/<k>`: one token passed around a ring of `k` roles, each
//!   role its own task; the time is per hop.
//! - `peers/current_thread/<n>`: ping-pong between A and the last of the
//!   `n` peers registered on A's endpoint; the time is per round trip.
//!
//! Every group carries its raw baseline (tokio mpsc pairs with postcard by
//! hand, the same number of tasks).

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{
    ByHand, ChannelEnd, Flavor, Handler, Member, MemberHandler, Node, Ping, RawEnd, endpoints,
    handler_pingpong, ok, raw_pingpong,
};
use rumpsteak_aura_choreography::{RumpsteakEndpoint, SimpleChannel};
use tokio::runtime::Runtime;

const SESSIONS: [u64; 2] = [64, 1024];
const RING: [u32; 4] = [2, 8, 32, 128];
const PEERS: [u32; 3] = [1, 100, 10_000];

/// A role's work, boxed so that roles of different code share one list.
type Role = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Spawns every role as its own task and returns the time from the start
/// signal until all are done. The `gated` roles, the ones that start an
/// exchange, wait for the signal; the others wait for their first frame.
fn run_tasks(rt: &Runtime, gated: Vec<Role>, free: Vec<Role>) -> Duration {
    rt.block_on(async move {
        let (go, gate) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::with_capacity(gated.len() + free.len());
        for role in gated {
            let mut gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                if gate.wait_for(|go| *go).await.is_err() {
                    panic!("bench setup: start signal dropped");
                }
                role.await
            }));
        }
        tasks.extend(free.into_iter().map(tokio::spawn));
        // Let the tasks reach the gate before the clock starts.
        tokio::task::yield_now().await;
        let start = Instant::now();
        go.send_replace(true);
        for task in tasks {
            if let Err(e) = task.await {
                panic!("bench role failed: {e}");
            }
        }
        start.elapsed()
    })
}

/// Criterion asks for `iters` units (round trips, hops) and one round of
/// every role does `per_round` of them: the rounds each role runs.
fn rounds(iters: u64, per_round: u64) -> u64 {
    iters.div_ceil(per_round)
}

/// The time of `done` units, scaled to the `iters` criterion asked for.
fn scaled(elapsed: Duration, iters: u64, done: u64) -> Duration {
    elapsed.mul_f64(iters as f64 / done as f64)
}

/// `n` ping-pong sessions by hand over `E`, `rounds` round trips each.
fn sessions_by_hand<E: ByHand>(rt: &Runtime, n: u64, iters: u64) -> Duration {
    let rounds = rounds(iters, n);
    let (mut gated, mut free) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (mut a, mut b) = E::pair();
        gated.push(Box::pin(async move {
            for seq in 0..rounds {
                a.send(&Ping { seq, stamp: 7 });
                black_box(a.recv::<Ping>().await);
            }
        }) as Role);
        free.push(Box::pin(async move {
            for _ in 0..rounds {
                let p: Ping = b.recv().await;
                b.send(&p);
            }
        }) as Role);
    }
    scaled(run_tasks(rt, gated, free), iters, rounds * n)
}

/// `n` ping-pong sessions through the handler, `rounds` round trips each.
fn sessions_handler(rt: &Runtime, n: u64, iters: u64) -> Duration {
    let rounds = rounds(iters, n);
    let (mut gated, mut free) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (mut a, mut b) = endpoints();
        gated.push(Box::pin(async move {
            let mut h = Handler::new();
            for seq in 0..rounds {
                ok(h.send(&mut a, Node::B, &Ping { seq, stamp: 7 }).await);
                black_box(ok(h.recv::<Ping>(&mut a, Node::B).await));
            }
        }) as Role);
        free.push(Box::pin(async move {
            let mut h = Handler::new();
            for _ in 0..rounds {
                let p: Ping = ok(h.recv(&mut b, Node::A).await);
                ok(h.send(&mut b, Node::A, &p).await);
            }
        }) as Role);
    }
    scaled(run_tasks(rt, gated, free), iters, rounds * n)
}

fn sessions(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("sessions/{}", flavor.name()));
        for n in SESSIONS {
            group.bench_function(BenchmarkId::new("raw_mpsc_postcard", n), |b| {
                b.iter_custom(|iters| sessions_by_hand::<RawEnd>(&rt, n, iters))
            });
            group.bench_function(BenchmarkId::new("simple_channel_postcard", n), |b| {
                b.iter_custom(|iters| sessions_by_hand::<ChannelEnd>(&rt, n, iters))
            });
            group.bench_function(BenchmarkId::new("handler", n), |b| {
                b.iter_custom(|iters| sessions_handler(&rt, n, iters))
            });
        }
        group.finish();
    }
}

/// A ring of `k` roles by hand over tokio mpsc: role 0 sends the token to
/// role 1 and waits for it from role `k - 1`; every other role receives it
/// from the one before and sends it to the one after.
fn ring_raw(rt: &Runtime, k: u32, iters: u64) -> Duration {
    let rounds = rounds(iters, u64::from(k));
    // Link i carries the token from role i to role i + 1.
    let (mut to_next, mut from_prev): (Vec<_>, Vec<_>) = (0..k).map(|_| RawEnd::pair()).unzip();
    from_prev.rotate_right(1);
    let mut roles = to_next.drain(..).zip(from_prev);
    let (mut next, mut prev) = roles.next().unwrap_or_else(|| unreachable!("k >= 2"));
    let gated = vec![Box::pin(async move {
        for seq in 0..rounds {
            next.send(&Ping { seq, stamp: 0 });
            black_box(prev.recv::<Ping>().await);
        }
    }) as Role];
    let free = roles
        .map(|(mut next, mut prev)| {
            Box::pin(async move {
                for _ in 0..rounds {
                    let p: Ping = prev.recv().await;
                    next.send(&p);
                }
            }) as Role
        })
        .collect();
    scaled(run_tasks(rt, gated, free), iters, rounds * u64::from(k))
}

/// The same ring through the handler: the endpoint of role i has sessions
/// with roles i - 1 and i + 1 (one session when `k` is 2).
fn ring_handler(rt: &Runtime, k: u32, iters: u64) -> Duration {
    let rounds = rounds(iters, u64::from(k));
    let mut eps: Vec<_> = (0..k).map(|i| RumpsteakEndpoint::new(Member(i))).collect();
    let links = if k == 2 { 1 } else { k };
    for i in 0..links {
        let j = (i + 1) % k;
        let (ci, cj) = SimpleChannel::pair();
        eps[i as usize].register_channel(Member(j), ci);
        eps[j as usize].register_channel(Member(i), cj);
    }
    let mut eps = eps.into_iter();
    let mut first = eps.next().unwrap_or_else(|| unreachable!("k >= 2"));
    let (next, prev) = (Member(1), Member(k - 1));
    let gated = vec![Box::pin(async move {
        let mut h = MemberHandler::new();
        for seq in 0..rounds {
            ok(h.send(&mut first, next, &Ping { seq, stamp: 0 }).await);
            black_box(ok(h.recv::<Ping>(&mut first, prev).await));
        }
    }) as Role];
    let free = eps
        .enumerate()
        .map(|(i, mut ep)| {
            let i = i as u32 + 1;
            let (next, prev) = (Member((i + 1) % k), Member(i - 1));
            Box::pin(async move {
                let mut h = MemberHandler::new();
                for _ in 0..rounds {
                    let p: Ping = ok(h.recv(&mut ep, prev).await);
                    ok(h.send(&mut ep, next, &p).await);
                }
            }) as Role
        })
        .collect();
    scaled(run_tasks(rt, gated, free), iters, rounds * u64::from(k))
}

fn ring(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("ring/{}", flavor.name()));
        for k in RING {
            group.bench_function(BenchmarkId::new("raw_mpsc_postcard", k), |b| {
                b.iter_custom(|iters| ring_raw(&rt, k, iters))
            });
            group.bench_function(BenchmarkId::new("handler", k), |b| {
                b.iter_custom(|iters| ring_handler(&rt, k, iters))
            });
        }
        group.finish();
    }
}

/// The endpoint of A (`Member(0)`) with `n` peers, `Member(1)` to
/// `Member(n)`, and the endpoint of the last one; the far ends of the
/// others are kept open in the returned list.
fn many_peers(
    n: u32,
) -> (
    RumpsteakEndpoint<Member>,
    RumpsteakEndpoint<Member>,
    Vec<SimpleChannel>,
) {
    let mut a = RumpsteakEndpoint::new(Member(0));
    let mut others = Vec::with_capacity(n as usize);
    for i in 1..n {
        let (ca, far) = SimpleChannel::pair();
        a.register_channel(Member(i), ca);
        others.push(far);
    }
    let mut last = RumpsteakEndpoint::new(Member(n));
    let (ca, cl) = SimpleChannel::pair();
    a.register_channel(Member(n), ca);
    last.register_channel(Member(0), cl);
    (a, last, others)
}

/// Ping-pong between A and the last of its `n` peers: the peer found last.
fn peers_pingpong(rt: &Runtime, n: u32, iters: u64) -> Duration {
    let (mut a, mut last, others) = many_peers(n);
    let (to, back) = (Member(n), Member(0));
    let elapsed = rt.block_on(async move {
        let start = Instant::now();
        let first = async {
            let mut h = MemberHandler::new();
            for seq in 0..iters {
                ok(h.send(&mut a, to, &Ping { seq, stamp: 7 }).await);
                black_box(ok(h.recv::<Ping>(&mut a, to).await));
            }
        };
        let second = async {
            let mut h = MemberHandler::new();
            for _ in 0..iters {
                let p: Ping = ok(h.recv(&mut last, back).await);
                ok(h.send(&mut last, back, &p).await);
            }
        };
        tokio::join!(first, second);
        start.elapsed()
    });
    drop(others);
    elapsed
}

fn peers(c: &mut Criterion) {
    let flavor = Flavor::CurrentThread;
    let rt = flavor.runtime();
    let mut group = c.benchmark_group(format!("peers/{}", flavor.name()));
    group.bench_function("raw_mpsc_postcard", |b| {
        b.iter_custom(|iters| raw_pingpong(&rt, flavor, iters))
    });
    // The two-role endpoint of every other bench, for reference.
    group.bench_function("handler_two_roles", |b| {
        b.iter_custom(|iters| {
            let (a, bb) = endpoints();
            handler_pingpong(&rt, flavor, a, bb, iters)
        })
    });
    for n in PEERS {
        group.bench_function(BenchmarkId::new("handler", n), |b| {
            b.iter_custom(|iters| peers_pingpong(&rt, n, iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = sessions, ring, peers
}
criterion_main!(benches);
