//! Real TCP through a proxy that reads slowly, so the sender's socket
//! buffer fills and its writes of large frames stop part way (the front's
//! writes on the link as well as the driver's), and that cuts connections
//! at seeded byte counts, mid-frame. Every frame arrives whole, once and
//! in order.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Rng;
use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
use rumpsteak_aura_resume::{ResumableSession, ResumeConfig, ResumeListener, TcpRedial};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A bound only a hang reaches (the run takes a few seconds).
const HANG: Duration = Duration::from_secs(120);

/// Frames of this size fill the loopback socket buffers quickly.
const FRAME: usize = 64 * 1024;

/// The frame of message `n`: its number, then bytes that depend on it, so
/// a frame spliced from two is noticed.
fn frame(n: u64) -> Vec<u8> {
    let mut f = n.to_le_bytes().to_vec();
    f.extend((0..FRAME - 8).map(|i| (i as u64).wrapping_mul(31).wrapping_add(n) as u8));
    f
}

/// Forwards every connection to `upstream`, reading at most 4 KiB at a
/// time with a pause after each read toward the upstream side; the n-th
/// connection is cut after the n-th budget of bytes.
async fn slow_proxy(upstream: SocketAddr, budgets: Vec<usize>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cuts = Arc::new(AtomicUsize::new(0));
    let budgets = Arc::new(Mutex::new(VecDeque::from(budgets)));
    let counted = cuts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let budget = budgets.lock().unwrap().pop_front();
            tokio::spawn(pump(client, server, budget, counted.clone()));
        }
    });
    (addr, cuts)
}

async fn pump(client: TcpStream, server: TcpStream, budget: Option<usize>, cuts: Arc<AtomicUsize>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let left = Arc::new(Mutex::new(budget));
    // Whether this chunk of `n` bytes fits the budget; when not, only
    // what fits goes through and the connection is cut.
    let take = |left: &Mutex<Option<usize>>, n: usize| -> (usize, bool) {
        let mut l = left.lock().unwrap();
        match l.as_mut() {
            Some(b) if n >= *b => {
                let fits = *b;
                *b = 0;
                (fits, true)
            }
            Some(b) => {
                *b -= n;
                (n, false)
            }
            None => (n, false),
        }
    };
    let up = {
        let left = left.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let (fits, cut) = take(&left, n);
                if sw.write_all(&buf[..fits]).await.is_err() || cut {
                    return;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let (fits, cut) = take(&left, n);
            if cw.write_all(&buf[..fits]).await.is_err() || cut {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
    if budget.is_some() {
        cuts.fetch_add(1, Ordering::SeqCst);
    }
}

fn settings(config: ResumeConfig) -> ResumeConfig {
    config
        .with_backoff(Duration::from_millis(1), Duration::from_millis(50))
        .with_heartbeat(Duration::from_millis(100), Duration::from_secs(5))
        .with_exchange_timeout(Duration::from_secs(5))
        .with_reconnect_deadline(Duration::from_secs(30))
        .with_replay_limits(64, 8 << 20)
}

async fn run(seed: u64, frames: u64, cuts: usize) {
    let session = "tcp-backpressure";
    let options = TcpOptions::new()
        .with_session_id(session)
        .with_handshake_timeout(Duration::from_secs(5));
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Bob",
        &rumpsteak_aura_resume::link_options(options.clone()),
    )
    .await
    .unwrap();
    let total = frames as usize * (FRAME + 32);
    let mut rng = Rng::new(seed);
    // Cut budgets spread over the first half of the traffic.
    let budgets = (0..cuts)
        .map(|_| rng.range(1_000, (total / cuts / 2) as u64) as usize)
        .collect();
    let (addr, cut_count) = slow_proxy(bound.local_addr(), budgets).await;
    let listener = ResumeListener::new(
        bound,
        settings(ResumeConfig::new(session, "Bob", "")),
        &["Alice"],
    );
    let redial = TcpRedial::new(addr, "Alice", "Bob", options);
    let config = settings(redial.config());
    let (a, b) = tokio::join!(
        ResumableSession::open(redial, config),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let reader = tokio::spawn(async move {
        for n in 0..frames {
            let f = b.recv_frame().await.unwrap();
            assert!(
                f == frame(n),
                "frame {n} arrived wrong (spliced, lost or reordered)"
            );
        }
        b
    });
    timeout(HANG, async {
        for n in 0..frames {
            a.send_frame(frame(n)).await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("seed {seed}: the sender hung"));
    let b = timeout(HANG, reader)
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the receiver hung"))
        .unwrap();
    assert_eq!(
        cut_count.load(Ordering::SeqCst),
        cuts,
        "seed {seed}: not every cut happened"
    );
    assert!(
        ha.stats().reconnects >= (cuts / 2) as u64,
        "{:?}",
        ha.stats()
    );
    assert!(ha.error().is_none() && hb.error().is_none());
    drop((a, b, listener));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_under_backpressure_and_mid_frame_cuts_arrive_whole() {
    run(7, 200, 8).await;
}

#[tokio::test(flavor = "current_thread")]
async fn large_frames_under_backpressure_on_one_thread_arrive_whole() {
    run(8, 200, 8).await;
}
