//! A three-role protocol over resumable TCP sessions, every pair of roles
//! through its own proxy that cuts the connection at seeded random byte
//! offsets. The pairs are wired by hand from `TcpRedial` and
//! `ResumeListener` (one listener per role serves all its peers), the
//! parts `ResumeMesh` is made of; `mesh_cuts.rs` runs the same protocol
//! wired by `ResumeMesh`. Every message arrives exactly once and in
//! order, and every role completes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::proxy;
use common::{Rng, token_ring};
use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
use rumpsteak_aura_resume::{
    ResumableSession, ResumeConfig, ResumeHandle, ResumeListener, TcpRedial,
};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::time::timeout;

/// A generous bound that only a hang reaches (the run takes about a second).
const HANG: Duration = Duration::from_secs(120);

const ROLES: [&str; 3] = ["Buyer", "Seller", "Coordinator"];

fn settings(config: ResumeConfig) -> ResumeConfig {
    config
        .with_backoff(Duration::from_millis(1), Duration::from_millis(50))
        .with_heartbeat(Duration::from_millis(100), Duration::from_secs(5))
        .with_reconnect_deadline(Duration::from_secs(30))
}

/// One role's sessions, by peer name.
struct Wired {
    sessions: Vec<(String, RumpsteakSession)>,
    handles: Vec<ResumeHandle>,
    _listener: Option<ResumeListener>,
}

impl Wired {
    fn take(&mut self, peer: &str) -> RumpsteakSession {
        let i = self.sessions.iter().position(|(p, _)| p == peer).unwrap();
        self.sessions.remove(i).1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_role_ring_survives_cuts_on_every_pair() {
    if std::env::var("RESUME_TRACE").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
    }
    let options = TcpOptions::new()
        .with_session_id("ring")
        .with_linger(Duration::from_millis(50));
    // Listeners for the roles that are dialed (every role but the first).
    let mut bound = Vec::new();
    for role in &ROLES[1..] {
        bound.push(
            SessionListener::bind(
                "127.0.0.1:0".parse().unwrap(),
                role,
                &rumpsteak_aura_resume::link_options(options.clone()),
            )
            .await
            .unwrap(),
        );
    }
    let upstream: Vec<SocketAddr> = bound.iter().map(|l| l.local_addr()).collect();
    let mut listeners: Vec<Option<ResumeListener>> = vec![None];
    for (i, l) in bound.into_iter().enumerate() {
        let role = ROLES[i + 1];
        let dialers: Vec<&str> = ROLES[..=i].to_vec();
        listeners.push(Some(ResumeListener::new(
            l,
            settings(ResumeConfig::new("ring", role, "")),
            &dialers,
        )));
    }
    // One cutting proxy per pair: 15 cuts each.
    let mut rng = Rng::new(3);
    let mut proxies = Vec::new();
    let mut wired: Vec<Wired> = listeners
        .into_iter()
        .map(|l| Wired {
            sessions: Vec::new(),
            handles: Vec::new(),
            _listener: l,
        })
        .collect();
    for d in 0..ROLES.len() {
        for l in d + 1..ROLES.len() {
            let budgets = (0..15)
                .map(|_| rng.range(0, 4000) as usize)
                .collect::<Vec<_>>();
            let (addr, cuts) = proxy(upstream[l - 1], budgets).await;
            proxies.push(cuts);
            let redial = TcpRedial::new(addr, ROLES[d], ROLES[l], options.clone());
            let config = settings(redial.config());
            let accepting = wired[l]._listener.as_ref().unwrap();
            let (dialed, accepted) = tokio::join!(
                ResumableSession::open(redial, config),
                accepting.accept(ROLES[d])
            );
            let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
            wired[d].handles.push(dialed.handle());
            wired[l].handles.push(accepted.handle());
            wired[d]
                .sessions
                .push((ROLES[l].to_string(), dialed.into_session()));
            wired[l]
                .sessions
                .push((ROLES[d].to_string(), accepted.into_session()));
        }
    }
    // The ring: Buyer -> Seller -> Coordinator -> Buyer, a token per round,
    // and each role also reports to the role after the next one every 10
    // rounds (so every session carries traffic both ways).
    const ROUNDS: u64 = 3000;
    let mut tasks = Vec::new();
    for (i, mut w) in wired.into_iter().enumerate() {
        let next = ROLES[(i + 1) % 3];
        let prev = ROLES[(i + 2) % 3];
        let mut to_next = w.take(next);
        let mut from_prev = w.take(prev);
        let handles = w.handles;
        // The listener routes this role's reconnections: it lives as long
        // as the role runs.
        let listener = w._listener.take();
        tasks.push(tokio::spawn(async move {
            let _listener = listener;
            token_ring(ROLES[i], i == 0, ROUNDS, &mut to_next, &mut from_prev).await;
            (handles, to_next, from_prev)
        }));
    }
    for t in tasks {
        let (handles, _a, _b) = timeout(HANG, t).await.unwrap().unwrap();
        for h in handles {
            assert!(h.error().is_none());
        }
    }
    for cuts in &proxies {
        assert_eq!(cuts.cuts(), 15, "every cut happened");
    }
}
