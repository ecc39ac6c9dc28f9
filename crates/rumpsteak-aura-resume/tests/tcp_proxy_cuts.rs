//! Real TCP on loopback through an in-test proxy that cuts every
//! connection after a seeded random number of bytes (so mid-frame, between
//! frames, inside the role handshake and inside the resume exchange), half
//! of the time with a reset. The dialer redials with `TcpRedial`; the
//! `ResumeListener` routes each reconnection to its session. Every message
//! arrives exactly once and in order.
//!
//! The proxy follows the one of the reliability crate's
//! `tcp_proxy_faults.rs`, reduced to cuts and accepting any number of
//! connections.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::pump;
use common::{Rng, msg, num, protocol};
use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
use rumpsteak_aura_resume::{
    ResumableSession, ResumeConfig, ResumeError, ResumeListener, TcpRedial,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A generous bound that only a hang reaches (the run takes seconds).
const HANG: Duration = Duration::from_secs(120);

/// Forwards every connection to `upstream`; the n-th connection is cut
/// after the n-th budget of bytes (both directions counted), later ones
/// are not cut.
struct Proxy {
    addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(upstream: SocketAddr, budgets: Vec<usize>, seed: u64) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cuts = Arc::new(AtomicUsize::new(0));
    let budgets = Arc::new(Mutex::new(VecDeque::from(budgets)));
    let counted = cuts.clone();
    let task = tokio::spawn(async move {
        let mut rng = Rng::new(seed);
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let budget = budgets.lock().unwrap().pop_front();
            let reset = rng.range(0, 1) == 1;
            tokio::spawn(pump(client, server, budget, reset, counted.clone()));
        }
    });
    Proxy { addr, cuts, task }
}

fn options(session: &str) -> TcpOptions {
    TcpOptions::new()
        .with_session_id(session)
        .with_linger(Duration::from_millis(50))
        .with_handshake_timeout(Duration::from_secs(5))
}

fn settings(config: ResumeConfig) -> ResumeConfig {
    config
        .with_backoff(Duration::from_millis(1), Duration::from_millis(50))
        .with_heartbeat(Duration::from_millis(100), Duration::from_secs(5))
        .with_exchange_timeout(Duration::from_secs(5))
        .with_reconnect_deadline(Duration::from_secs(30))
}

/// `cuts` budgets: a quarter small (inside the handshakes: the role
/// handshake is about a hundred bytes, the resume greetings as many),
/// the rest anywhere up to `max` bytes.
fn budgets(seed: u64, cuts: usize, max: usize) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    (0..cuts)
        .map(|_| {
            if rng.range(0, 3) == 0 {
                rng.range(0, 300) as usize
            } else {
                rng.range(300, max as u64) as usize
            }
        })
        .collect()
}

/// Alice and Bob over TCP through a cutting proxy.
async fn connect(
    session: &str,
    budgets: Vec<usize>,
    seed: u64,
) -> (ResumableSession, ResumableSession, Proxy, ResumeListener) {
    let options = options(session);
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Bob",
        &rumpsteak_aura_resume::link_options(options.clone()),
    )
    .await
    .unwrap();
    let proxy = proxy(bound.local_addr(), budgets, seed).await;
    let listener = ResumeListener::new(
        bound,
        settings(ResumeConfig::new(session, "Bob", "")),
        &["Alice"],
    );
    let redial = TcpRedial::new(proxy.addr, "Alice", "Bob", options);
    let config = settings(redial.config());
    let (a, b) = tokio::join!(
        ResumableSession::open(redial, config),
        listener.accept("Alice")
    );
    (a.unwrap(), b.unwrap(), proxy, listener)
}

async fn run(seed: u64, cuts: usize, rounds: u64, batch: u64, max_budget: usize) {
    let (a, b, proxy, _listener) = connect("tcp-cuts", budgets(seed, cuts, max_budget), seed).await;
    let (ha, hb) = (a.handle(), b.handle());
    let started = std::time::Instant::now();
    timeout(
        HANG,
        protocol(a.into_session(), b.into_session(), rounds, batch),
    )
    .await
    .unwrap_or_else(|_| panic!("seed {seed}: hung"));
    let elapsed = started.elapsed();
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        cuts,
        "seed {seed}: not every cut happened"
    );
    let (sa, sb) = (ha.stats(), hb.stats());
    assert_eq!(sa.frames_sent, rounds * batch);
    assert_eq!(sb.frames_received, rounds * batch);
    assert_eq!(sb.frames_sent, rounds);
    assert_eq!(sa.frames_received, rounds);
    // A cut inside a handshake fails an attempt, not a session: it may not
    // count as a resumption, but most cuts do.
    assert!(sa.reconnects >= (cuts / 2) as u64, "{sa:?}");
    assert!(ha.error().is_none() && hb.error().is_none());
    println!(
        "seed {seed}: {} messages, {cuts} cuts, {} resumptions, {elapsed:?}",
        rounds * (batch + 1),
        sa.reconnects
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_message_protocol_survives_100_cuts() {
    let seed = std::env::var("RUMPSTEAK_RESUME_SEED")
        .map(|s| s.parse().unwrap())
        .unwrap_or(13);
    // 1000 rounds of 99 messages and an answer: 100,000 messages, about
    // 2 MB on the wire, so the 100 cuts (about 1 MB of budgets) all fall
    // inside the run.
    run(seed, 100, 1000, 99, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stress: a million messages, 1000 cuts; run with --ignored"]
async fn stress_a_million_messages_survive_1000_cuts() {
    for seed in 1..=3 {
        run(seed, 1000, 10_000, 99, 20_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_routes_each_reconnection_to_its_session() {
    let options = options("hub");
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Hub",
        &rumpsteak_aura_resume::link_options(options.clone()),
    )
    .await
    .unwrap();
    let upstream = bound.local_addr();
    let listener = ResumeListener::new(
        bound,
        settings(ResumeConfig::new("hub", "Hub", "")),
        &["Alice", "Carol"],
    );
    let mut runs = Vec::new();
    let mut proxies = Vec::new();
    let mut hubs = Vec::new();
    for (i, role) in ["Alice", "Carol"].into_iter().enumerate() {
        let proxy = proxy(upstream, budgets(i as u64 + 100, 10, 3000), i as u64).await;
        let redial = TcpRedial::new(proxy.addr, role, "Hub", options.clone());
        let config = settings(redial.config());
        let (client, hub) = tokio::join!(
            ResumableSession::open(redial, config),
            listener.accept(role)
        );
        let (client, hub) = (client.unwrap(), hub.unwrap());
        hubs.push(hub.handle());
        runs.push(tokio::spawn(protocol(
            client.into_session(),
            hub.into_session(),
            100,
            9,
        )));
        proxies.push(proxy);
    }
    assert_eq!(listener.live_sessions(), 2);
    for r in runs {
        timeout(HANG, r).await.unwrap().unwrap();
    }
    for (p, h) in proxies.iter().zip(&hubs) {
        assert_eq!(p.cuts.load(Ordering::SeqCst), 10);
        assert!(h.stats().reconnects >= 1);
        assert!(h.error().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_listener_refuses_the_old_session() {
    let options = options("restart");
    // Bob lives in a runtime of his own, on his own thread, so that the
    // test can kill him as a crash does: every task gone at once, no
    // farewell sent, the sockets closed.
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let bob_options = options.clone();
    let bob = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let kept = rt.block_on(async move {
            let bound = SessionListener::bind(
                "127.0.0.1:0".parse().unwrap(),
                "Bob",
                &rumpsteak_aura_resume::link_options(bob_options.clone()),
            )
            .await
            .unwrap();
            addr_tx.send(bound.local_addr()).unwrap();
            let listener = ResumeListener::new(
                bound,
                settings(ResumeConfig::new("restart", "Bob", "")),
                &["Alice"],
            );
            let mut b = listener.accept("Alice").await.unwrap().into_session();
            assert_eq!(num(&b.recv_frame().await.unwrap()), 1);
            (listener, b)
        });
        kill_rx.recv().unwrap();
        drop(rt);
        drop(kept);
    });
    let addr = addr_rx.await.unwrap();
    let redial = TcpRedial::new(addr, "Alice", "Bob", options.clone());
    let config = settings(redial.config());
    let a = ResumableSession::open(redial, config).await.unwrap();
    let ha = a.handle();
    let mut a = a.into_session();
    a.send_frame(msg(1)).await.unwrap();
    // Wait until Bob has it, acknowledged.
    timeout(HANG, async {
        while ha.stats().unacked_frames > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    kill_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || bob.join().unwrap())
        .await
        .unwrap();
    // A new Bob process on the same address, without the old state.
    let bound = timeout(HANG, async {
        loop {
            match SessionListener::bind(
                addr,
                "Bob",
                &rumpsteak_aura_resume::link_options(options.clone()),
            )
            .await
            {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .unwrap();
    let reborn = ResumeListener::new(
        bound,
        settings(ResumeConfig::new("restart", "Bob", "")),
        &["Alice"],
    );
    let e = timeout(HANG, a.recv_frame()).await.unwrap().unwrap_err();
    match ResumeError::of(&e) {
        Some(ResumeError::RefusedByPeer { reason, .. }) => {
            assert_eq!(*reason, rumpsteak_aura_resume::RejectReason::UnknownSession)
        }
        _ => panic!("expected a refusal for an unknown session, got {e}"),
    }
    assert!(ha.is_finished());
    assert_eq!(reborn.live_sessions(), 0);
}
