//! A TCP proxy that cuts the n-th connection it forwards after the n-th
//! budget of bytes (both directions counted), and forwards every
//! connection after the budgets run out whole.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a running proxy counts.
#[derive(Debug, Clone)]
pub struct ProxyCounts {
    /// Connections cut on their budget.
    pub cuts: Arc<AtomicUsize>,
    /// Connections accepted and forwarded.
    pub connections: Arc<AtomicUsize>,
    /// Where the proxy forwards to.
    pub upstream: SocketAddr,
}

impl ProxyCounts {
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Forwards connections to `upstream`, cutting the n-th after the n-th
/// budget of bytes.
pub async fn proxy(upstream: SocketAddr, budgets: Vec<usize>) -> (SocketAddr, ProxyCounts) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = ProxyCounts {
        cuts: Arc::default(),
        connections: Arc::default(),
        upstream,
    };
    let budgets = Arc::new(Mutex::new(VecDeque::from(budgets)));
    let counted = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            // As the sessions' own sockets: no Nagle delay on small frames.
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            counted.connections.fetch_add(1, Ordering::SeqCst);
            let budget = budgets.lock().unwrap().pop_front();
            tokio::spawn(pump(client, server, budget, false, counted.cuts.clone()));
        }
    });
    (addr, counts)
}

/// Forwards between `a` and `b` until either closes, or until `budget`
/// bytes (both directions counted) have gone through: then what fits the
/// budget goes through, the rest of the chunk is lost, `cuts` counts one,
/// and both connections close, with a reset (no lingering) if `reset`.
pub async fn pump(
    mut a: TcpStream,
    mut b: TcpStream,
    mut budget: Option<usize>,
    reset: bool,
    cuts: Arc<AtomicUsize>,
) {
    let (mut from_a, mut from_b) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let (a_to_b, n) = tokio::select! {
            r = a.read(&mut from_a) => match r { Ok(0) | Err(_) => return, Ok(n) => (true, n) },
            r = b.read(&mut from_b) => match r { Ok(0) | Err(_) => return, Ok(n) => (false, n) },
        };
        let (to, chunk) = if a_to_b {
            (&mut b, &from_a[..n])
        } else {
            (&mut a, &from_b[..n])
        };
        if let Some(left) = budget {
            if n >= left {
                let _ = to.write_all(&chunk[..left]).await;
                cuts.fetch_add(1, Ordering::SeqCst);
                if reset {
                    for s in [&a, &b] {
                        let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                    }
                }
                return;
            }
            budget = Some(left - n);
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
