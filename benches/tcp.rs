//! Ping-pong over loopback TCP, on each runtime: A sends a small message, B
//! answers it. Time per round trip.
//!
//! - `raw_tcp_postcard`: the baseline, a tokio `TcpStream` (`TCP_NODELAY`)
//!   with a big-endian `u32` length prefix and postcard written by hand;
//! - `session_frames`: the same over a `RumpsteakSession` from
//!   `tcp::connect`, postcard by hand: the transport's own cost;
//! - `handler`: the handler's `send` and `recv` over that session.
//!
//! Connection setup (and the role handshake) is outside the timed part.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::{Flavor, Node, Ping, handler_pingpong, ok, run_pair};
use rumpsteak_aura_choreography::RumpsteakEndpoint;
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::tcp::{self, SessionListener, TcpOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// One end of the raw baseline.
struct RawTcp {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl RawTcp {
    async fn pair() -> (RawTcp, RawTcp) {
        let listener = ok(TcpListener::bind(loopback()).await);
        let addr = ok(listener.local_addr());
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (a, (b, _)) = (ok(a), ok(b));
        (RawTcp::new(a), RawTcp::new(b))
    }

    fn new(stream: TcpStream) -> RawTcp {
        ok(stream.set_nodelay(true));
        let (rd, wr) = stream.into_split();
        RawTcp {
            rd: BufReader::new(rd),
            wr,
        }
    }

    async fn send(&mut self, msg: &Ping) {
        let payload = ok(postcard::to_allocvec(msg));
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        ok(self.wr.write_all(&frame).await);
    }

    async fn recv(&mut self) -> Ping {
        let len = ok(self.rd.read_u32().await) as usize;
        let mut frame = vec![0; len];
        ok(self.rd.read_exact(&mut frame).await);
        ok(postcard::from_bytes(&frame))
    }
}

async fn sessions() -> (RumpsteakSession, RumpsteakSession) {
    let options = TcpOptions::new();
    let listener = ok(SessionListener::bind(loopback(), "B", &options).await);
    let addr = listener.local_addr();
    let (a, b) = tokio::join!(tcp::connect(addr, "A", "B", &options), listener.accept("A"));
    (ok(a), ok(b))
}

async fn endpoints() -> (RumpsteakEndpoint<Node>, RumpsteakEndpoint<Node>) {
    let (sa, sb) = sessions().await;
    let mut a = RumpsteakEndpoint::new(Node::A);
    let mut b = RumpsteakEndpoint::new(Node::B);
    a.register_session(Node::B, sa);
    b.register_session(Node::A, sb);
    (a, b)
}

fn tcp_pingpong(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("tcp_pingpong/{}", flavor.name()));

        group.bench_function("raw_tcp_postcard", |b| {
            b.iter_custom(|iters| {
                let (mut a, mut bb) = rt.block_on(RawTcp::pair());
                let first = async move {
                    for seq in 0..iters {
                        a.send(&Ping { seq, stamp: 7 }).await;
                        black_box(a.recv().await);
                    }
                };
                let second = async move {
                    for _ in 0..iters {
                        let p = bb.recv().await;
                        bb.send(&p).await;
                    }
                };
                run_pair(&rt, flavor, first, second)
            })
        });

        group.bench_function("session_frames", |b| {
            b.iter_custom(|iters| {
                let (mut a, mut bb) = rt.block_on(sessions());
                let first = async move {
                    for seq in 0..iters {
                        let frame = ok(postcard::to_allocvec(&Ping { seq, stamp: 7 }));
                        ok(a.send_frame(frame).await);
                        let frame = ok(a.recv_frame().await);
                        black_box(ok(postcard::from_bytes::<Ping>(&frame)));
                    }
                };
                let second = async move {
                    for _ in 0..iters {
                        let frame = ok(bb.recv_frame().await);
                        let p: Ping = ok(postcard::from_bytes(&frame));
                        ok(bb.send_frame(ok(postcard::to_allocvec(&p))).await);
                    }
                };
                run_pair(&rt, flavor, first, second)
            })
        });

        group.bench_function("handler", |b| {
            b.iter_custom(|iters| {
                let (a, bb) = rt.block_on(endpoints());
                handler_pingpong(&rt, flavor, a, bb, iters)
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = tcp_pingpong
}
criterion_main!(benches);
