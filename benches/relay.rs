//! A three-role relay: A sends to B, B forwards to C, C answers A directly.
//! Time per full cycle.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{ByHand, Flavor, Handler, Node, Ping, RawEnd, ok};
use rumpsteak_aura_choreography::{RumpsteakEndpoint, SimpleChannel};
use std::time::Instant;

fn connect(x: &mut RumpsteakEndpoint<Node>, xr: Node, y: &mut RumpsteakEndpoint<Node>, yr: Node) {
    let (cx, cy) = SimpleChannel::pair();
    x.register_channel(yr, cx);
    y.register_channel(xr, cy);
}

fn relay(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("relay3/{}", flavor.name()));

        group.bench_function("raw_mpsc_postcard", |b| {
            b.iter_custom(|iters| {
                let (mut ab_a, mut ab_b) = RawEnd::pair();
                let (mut bc_b, mut bc_c) = RawEnd::pair();
                let (mut ca_a, mut ca_c) = RawEnd::pair();
                let a = async move {
                    for seq in 0..iters {
                        ab_a.send(&Ping { seq, stamp: 0 });
                        black_box(ca_a.recv::<Ping>().await);
                    }
                };
                let b = async move {
                    for _ in 0..iters {
                        let p: Ping = ab_b.recv().await;
                        bc_b.send(&p);
                    }
                };
                let c = async move {
                    for _ in 0..iters {
                        let p: Ping = bc_c.recv().await;
                        ca_c.send(&p);
                    }
                };
                run3(&rt, flavor, a, b, c)
            })
        });

        group.bench_function("handler", |b| {
            b.iter_custom(|iters| {
                let mut ea = RumpsteakEndpoint::new(Node::A);
                let mut eb = RumpsteakEndpoint::new(Node::B);
                let mut ec = RumpsteakEndpoint::new(Node::C);
                connect(&mut ea, Node::A, &mut eb, Node::B);
                connect(&mut eb, Node::B, &mut ec, Node::C);
                connect(&mut ec, Node::C, &mut ea, Node::A);
                let a = async move {
                    let mut h = Handler::new();
                    for seq in 0..iters {
                        ok(h.send(&mut ea, Node::B, &Ping { seq, stamp: 0 }).await);
                        black_box(ok(h.recv::<Ping>(&mut ea, Node::C).await));
                    }
                };
                let b = async move {
                    let mut h = Handler::new();
                    for _ in 0..iters {
                        let p: Ping = ok(h.recv(&mut eb, Node::A).await);
                        ok(h.send(&mut eb, Node::C, &p).await);
                    }
                };
                let c = async move {
                    let mut h = Handler::new();
                    for _ in 0..iters {
                        let p: Ping = ok(h.recv(&mut ec, Node::B).await);
                        ok(h.send(&mut ec, Node::A, &p).await);
                    }
                };
                run3(&rt, flavor, a, b, c)
            })
        });
        group.finish();
    }
}

fn run3<A, B, C>(
    rt: &tokio::runtime::Runtime,
    flavor: Flavor,
    a: A,
    b: B,
    c: C,
) -> std::time::Duration
where
    A: Future<Output = ()> + Send + 'static,
    B: Future<Output = ()> + Send + 'static,
    C: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        let start = Instant::now();
        match flavor {
            Flavor::CurrentThread => {
                tokio::join!(a, b, c);
            }
            Flavor::MultiThread => {
                let hb = tokio::spawn(b);
                let hc = tokio::spawn(c);
                a.await;
                for h in [hb, hc] {
                    if let Err(e) = h.await {
                        panic!("bench role failed: {e}");
                    }
                }
            }
        }
        start.elapsed()
    })
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = relay
}
criterion_main!(benches);
