//! Resumable sessions against the plain TCP session they run on:
//! ping-pong round trips with no faults, and the time from a cut to the
//! next message delivered.
//!
//! `cargo bench -p rumpsteak-aura-resume --bench resume`
//!
//! The two ping-pong rows run seconds apart, long enough on a shared
//! machine for the load to change between them; for the ratio of the two,
//! `cargo run --release -p rumpsteak-aura-benches --bin resume_ratio`
//! takes alternating samples (wall clock and CPU time, both runtimes) and
//! times 100 cuts one by one, from the cut to the next frame delivered.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_resume::{ResumableSession, ResumeConfig, ResumeListener, TcpRedial};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A peer that echoes every frame back.
fn echo(mut s: RumpsteakSession) {
    tokio::spawn(async move {
        while let Ok(f) = s.recv_frame().await {
            if s.send_frame(f).await.is_err() {
                return;
            }
        }
    });
}

async fn plain_pair() -> RumpsteakSession {
    let options = TcpOptions::new();
    let listener = SessionListener::bind("127.0.0.1:0".parse().unwrap(), "Server", &options)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let (client, server) = tokio::join!(
        tcp::connect(addr, "Client", "Server", &options),
        listener.accept("Client")
    );
    echo(server.unwrap());
    client.unwrap()
}

async fn resumable_pair(upstream: Option<SocketAddrFn>) -> (RumpsteakSession, ResumeListener) {
    let options = TcpOptions::new().with_session_id("bench");
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Server",
        &rumpsteak_aura_resume::link_options(options.clone()),
    )
    .await
    .unwrap();
    let mut addr = bound.local_addr();
    if let Some(via) = upstream {
        addr = via(addr).await;
    }
    let listener = ResumeListener::new(
        bound,
        ResumeConfig::new("bench", "Server", "")
            .with_backoff(Duration::from_millis(1), Duration::from_millis(10)),
        &["Client"],
    );
    let redial = TcpRedial::new(addr, "Client", "Server", options);
    let config = redial
        .config()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(10));
    let (client, server) = tokio::join!(
        ResumableSession::open(redial, config),
        listener.accept("Client")
    );
    echo(server.unwrap().into_session());
    (client.unwrap().into_session(), listener)
}

type SocketAddrFn = Box<
    dyn FnOnce(
            std::net::SocketAddr,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = std::net::SocketAddr> + Send>>
        + Send,
>;

async fn round_trips(s: &mut RumpsteakSession, n: u64) {
    for i in 0..n {
        s.send_frame(i.to_le_bytes().to_vec()).await.unwrap();
        let _ = s.recv_frame().await.unwrap();
    }
}

fn pingpong(c: &mut Criterion) {
    let rt = runtime();
    let mut plain = rt.block_on(plain_pair());
    let (mut resumable, _listener) = rt.block_on(resumable_pair(None));
    let mut g = c.benchmark_group("pingpong_tcp");
    g.bench_function("plain", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                round_trips(&mut plain, iters).await;
                t.elapsed()
            })
        })
    });
    g.bench_function("resumable", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                round_trips(&mut resumable, iters).await;
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// A proxy whose current connection the bench cuts on demand.
fn cutting_proxy(cut: watch::Receiver<u64>) -> SocketAddrFn {
    Box::new(move |upstream| {
        Box::pin(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((mut a, _)) = listener.accept().await {
                    let Ok(mut b) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    let _ = a.set_nodelay(true);
                    let _ = b.set_nodelay(true);
                    let mut cut = cut.clone();
                    cut.borrow_and_update();
                    tokio::spawn(async move {
                        let (mut x, mut y) = (vec![0u8; 16384], vec![0u8; 16384]);
                        loop {
                            tokio::select! {
                                r = a.read(&mut x) => match r { Ok(0) | Err(_) => return, Ok(n) => if b.write_all(&x[..n]).await.is_err() { return } },
                                r = b.read(&mut y) => match r { Ok(0) | Err(_) => return, Ok(n) => if a.write_all(&y[..n]).await.is_err() { return } },
                                _ = cut.changed() => return,
                            }
                        }
                    });
                }
            });
            addr
        })
    })
}

fn resume_after_cut(c: &mut Criterion) {
    let rt = runtime();
    let (cut, cuts) = watch::channel(0u64);
    let (mut s, _listener) = rt.block_on(resumable_pair(Some(cutting_proxy(cuts))));
    let mut g = c.benchmark_group("resume_tcp");
    g.sample_size(20);
    g.bench_function("cut_to_next_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round_trips(&mut s, 1).await;
                    let t = Instant::now();
                    cut.send_modify(|n| *n += 1);
                    round_trips(&mut s, 1).await;
                    total += t.elapsed();
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group!(benches, pingpong, resume_after_cut);
criterion_main!(benches);
