//! An in-memory network whose links a test cuts: at a chosen moment, after
//! a chosen number of frames, or after a seeded random number of frames.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;
pub mod recording;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{Redial, ResumableSession, ResumeConfig};
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::sync::mpsc;

/// A small deterministic generator (xorshift64*), so a seed reruns a test.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One link's cut switch, shared by both ends.
#[derive(Debug, Default)]
struct Wire {
    cut: AtomicBool,
    /// Frames both ends may still send before the wire cuts itself.
    budget: Mutex<Option<u64>>,
    wakers: Mutex<Vec<Waker>>,
}

impl Wire {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for w in self.wakers.lock().unwrap().drain(..) {
            w.wake();
        }
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    fn error() -> TransportError {
        TransportError::io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut by the test",
        ))
    }
}

/// One end of a cuttable in-memory link.
#[derive(Debug)]
struct End {
    channel: SimpleChannel,
    wire: Arc<Wire>,
    identity: Option<String>,
}

impl SessionTransport for End {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.wire.is_cut() {
            return Poll::Ready(Err(Wire::error()));
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if self.wire.is_cut() {
            return Err(Wire::error());
        }
        let mut budget = self.wire.budget.lock().unwrap();
        if let Some(left) = budget.as_mut() {
            if *left == 0 {
                drop(budget);
                self.wire.cut();
                // The frame is lost with the link, as bytes in flight are.
                return Ok(());
            }
            *left -= 1;
        }
        drop(budget);
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.wire.is_cut() {
            return Poll::Ready(Err(Wire::error()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        if self.wire.is_cut() {
            // What was in flight is lost with the link.
            return Poll::Ready(Err(Wire::error()));
        }
        self.wire.wakers.lock().unwrap().push(cx.waker().clone());
        if self.wire.is_cut() {
            return Poll::Ready(Err(Wire::error()));
        }
        self.channel.poll_recv_frame(cx)
    }

    fn close(&mut self) {
        self.channel.close();
    }

    fn peer_identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }
}

#[derive(Debug, Default)]
struct NetState {
    current: Option<Arc<Wire>>,
    down: bool,
    /// Frame budgets for the next links, in order; `None` after them.
    budgets: std::collections::VecDeque<u64>,
    /// What each side sees as the other's identity on new links.
    dialer_sees: Option<String>,
    acceptor_sees: Option<String>,
}

/// The network between one dialer and one acceptor.
#[derive(Debug, Clone)]
pub struct MemNet {
    state: Arc<Mutex<NetState>>,
    to_acceptor: mpsc::UnboundedSender<RumpsteakSession>,
    incoming: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<RumpsteakSession>>>,
    pub links: Arc<AtomicU64>,
}

impl Default for MemNet {
    fn default() -> Self {
        Self::new()
    }
}

impl MemNet {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        MemNet {
            state: Arc::default(),
            to_acceptor: tx,
            incoming: Arc::new(tokio::sync::Mutex::new(rx)),
            links: Arc::default(),
        }
    }

    /// The dialing side's source: a new link each call, refused while the
    /// network is down.
    pub fn dialer(&self) -> impl Redial + use<> {
        let net = self.clone();
        move || {
            let result = net.dial();
            async move { result }
        }
    }

    fn dial(&self) -> Result<RumpsteakSession, TransportError> {
        let mut s = self.state.lock().unwrap();
        if s.down {
            return Err(TransportError::io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "network down (test)",
            )));
        }
        let wire = Arc::new(Wire {
            budget: Mutex::new(s.budgets.pop_front()),
            ..Wire::default()
        });
        if let Some(old) = s.current.replace(wire.clone()) {
            old.cut();
        }
        let (a, b) = SimpleChannel::pair();
        let dialer_end = End {
            channel: a,
            wire: wire.clone(),
            identity: s.dialer_sees.clone(),
        };
        let acceptor_end = End {
            channel: b,
            wire,
            identity: s.acceptor_sees.clone(),
        };
        drop(s);
        self.links.fetch_add(1, Ordering::SeqCst);
        self.to_acceptor
            .send(RumpsteakSession::from_transport(acceptor_end))
            .map_err(|_| TransportError::closed())?;
        Ok(RumpsteakSession::from_transport(dialer_end))
    }

    /// The accepting side's source: the next link the dialer made.
    pub fn acceptor(&self) -> impl Redial + use<> {
        let incoming = self.incoming.clone();
        move || {
            let incoming = incoming.clone();
            async move {
                incoming
                    .lock()
                    .await
                    .recv()
                    .await
                    .ok_or_else(TransportError::closed)
            }
        }
    }

    /// Cuts the current link now.
    pub fn cut(&self) {
        if let Some(w) = &self.state.lock().unwrap().current {
            w.cut();
        }
    }

    /// While down, dials are refused (the peer is unreachable).
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// The next links cut themselves after these many frames each.
    pub fn push_budgets(&self, budgets: impl IntoIterator<Item = u64>) {
        self.state.lock().unwrap().budgets.extend(budgets);
    }

    /// Cuts the current link after `frames` more frames.
    pub fn cut_after(&self, frames: u64) {
        if let Some(w) = &self.state.lock().unwrap().current {
            *w.budget.lock().unwrap() = Some(frames);
        }
    }

    pub fn set_identities(&self, dialer_sees: Option<&str>, acceptor_sees: Option<&str>) {
        let mut s = self.state.lock().unwrap();
        s.dialer_sees = dialer_sees.map(str::to_string);
        s.acceptor_sees = acceptor_sees.map(str::to_string);
    }
}

/// Settings for tests: quick heartbeats and backoff, and a reconnect
/// deadline long enough never to be hit by a slow machine unless a test
/// wants it hit.
pub fn config(local: &str, peer: &str) -> ResumeConfig {
    ResumeConfig::new("test-session", local, peer)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .with_heartbeat(Duration::from_millis(50), Duration::from_secs(5))
        .with_reconnect_deadline(Duration::from_secs(20))
}

/// Opens Alice (dialing) and Bob (accepting) over `net`.
pub async fn pair(
    net: &MemNet,
    alice: ResumeConfig,
    bob: ResumeConfig,
) -> (ResumableSession, ResumableSession) {
    let (a, b) = tokio::join!(
        ResumableSession::open(net.dialer(), alice),
        ResumableSession::open(net.acceptor(), bob)
    );
    (a.unwrap(), b.unwrap())
}

/// The frame of message `n`.
pub fn msg(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// The number in a frame of `msg`.
pub fn num(frame: &[u8]) -> u64 {
    u64::from_le_bytes(frame.try_into().expect("an 8-byte message"))
}

/// Alice sends `batch` numbered messages per round, Bob checks them and
/// answers with the round's sum (xor the round number); Alice checks the
/// answer: `rounds * (batch + 1)` messages in all. Returns the sessions.
pub async fn protocol(
    mut alice: RumpsteakSession,
    mut bob: RumpsteakSession,
    rounds: u64,
    batch: u64,
) -> (RumpsteakSession, RumpsteakSession) {
    let bob_task = tokio::spawn(async move {
        let mut expected = 0u64;
        for round in 0..rounds {
            let mut sum = 0u64;
            for _ in 0..batch {
                let n = num(&bob.recv_frame().await.unwrap());
                assert_eq!(n, expected, "Bob: message out of order or duplicated");
                expected += 1;
                sum = sum.wrapping_add(n);
            }
            bob.send_frame(msg(sum ^ round)).await.unwrap();
        }
        bob
    });
    let mut next = 0u64;
    for round in 0..rounds {
        let mut sum = 0u64;
        for _ in 0..batch {
            alice.send_frame(msg(next)).await.unwrap();
            sum = sum.wrapping_add(next);
            next += 1;
        }
        let answer = num(&alice.recv_frame().await.unwrap());
        assert_eq!(answer, sum ^ round, "Alice: wrong answer in round {round}");
    }
    let bob = bob_task.await.unwrap();
    (alice, bob)
}

/// One role's part in a ring of three for `rounds` rounds: the first
/// role (`first`) sends a token per round to the next and checks that it
/// comes back; the others pass it on, checking its order. Every 10 rounds
/// each role also reports against the ring's direction (so every session
/// carries traffic both ways) and checks the report it gets.
pub async fn token_ring(
    name: &str,
    first: bool,
    rounds: u64,
    to_next: &mut RumpsteakSession,
    from_prev: &mut RumpsteakSession,
) {
    for round in 0..rounds {
        if first {
            to_next.send_frame(msg(round)).await.unwrap();
            let back = num(&from_prev.recv_frame().await.unwrap());
            assert_eq!(back, round, "{name}: the token came back wrong");
        } else {
            let token = num(&from_prev.recv_frame().await.unwrap());
            assert_eq!(token, round, "{name}: token out of order");
            to_next.send_frame(msg(token)).await.unwrap();
        }
        if round % 10 == 9 {
            from_prev.send_frame(msg(round + 1_000_000)).await.unwrap();
            let report = num(&to_next.recv_frame().await.unwrap());
            assert_eq!(report, round + 1_000_000, "{name}: report");
        }
    }
}

/// A bound that only a hang reaches: the machine is a noisy 2-core VM, so
/// it is far above what the tests take (seconds).
pub const HANG: Duration = Duration::from_secs(60);
