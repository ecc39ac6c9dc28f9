//! The front writes frames on the link itself when the driver is not at
//! it. These links push back (a send or flush that is not ready yet, woken
//! later from another task) and die under a write (a frame accepted and
//! then the flush fails, or the send itself fails), while both sides send
//! with cancellation: every frame whose send returned arrives, none twice,
//! all in order, and nothing hangs.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{HANG, Rng, config, msg, num};
use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{Redial, ResumableSession, ResumeConfig};
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::sync::mpsc;
use tokio::time::timeout;

fn cut() -> TransportError {
    TransportError::io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "cut by the test",
    ))
}

/// One end of a link that says "not yet" to a seeded share of its sends
/// and flushes (waking the task from another one a little later), and
/// dies after a seeded number of frames: at a send, or after accepting a
/// frame at the flush that should have written it.
#[derive(Debug)]
struct Choke {
    channel: SimpleChannel,
    rng: Rng,
    /// Frames this end still writes before it dies.
    left: u64,
    /// A frame was accepted that the next flush reports lost.
    die_at_flush: bool,
    dead: Arc<Mutex<bool>>,
    wakers: Arc<Mutex<Vec<Waker>>>,
}

impl Choke {
    fn not_yet(&mut self, cx: &mut Context<'_>) -> bool {
        if self.rng.range(0, 3) != 0 {
            return false;
        }
        let waker = cx.waker().clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            waker.wake();
        });
        true
    }

    fn is_dead(&self) -> bool {
        *self.dead.lock().unwrap()
    }

    fn die(&self) {
        *self.dead.lock().unwrap() = true;
        for w in self.wakers.lock().unwrap().drain(..) {
            w.wake();
        }
    }
}

impl SessionTransport for Choke {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.is_dead() {
            return Poll::Ready(Err(cut()));
        }
        if self.not_yet(cx) {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if self.is_dead() {
            return Err(cut());
        }
        if self.left == 0 {
            // Half the deaths fail the send itself, half accept the frame
            // and fail its flush (the frame lost with the link).
            if self.rng.range(0, 1) == 0 {
                self.die();
                return Err(cut());
            }
            self.die_at_flush = true;
            return Ok(());
        }
        self.left -= 1;
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.die_at_flush {
            self.die();
        }
        if self.is_dead() {
            return Poll::Ready(Err(cut()));
        }
        if self.not_yet(cx) {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let mut wakers = self.wakers.lock().unwrap();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        drop(wakers);
        if self.is_dead() {
            return Poll::Ready(Err(cut()));
        }
        self.channel.poll_recv_frame(cx)
    }

    fn close(&mut self) {
        self.channel.close();
    }
}

/// Links between a dialer and an acceptor, each a pair of [`Choke`] ends
/// with budgets drawn from the seed.
#[derive(Clone)]
struct ChokeNet {
    rng: Arc<Mutex<Rng>>,
    to_acceptor: mpsc::UnboundedSender<RumpsteakSession>,
    incoming: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<RumpsteakSession>>>,
    links: Arc<AtomicU64>,
    /// The first links live this long (in frames per end); the rest
    /// forever, so the test ends.
    budgets: Arc<Mutex<VecDeque<(u64, u64)>>>,
}

impl ChokeNet {
    fn new(seed: u64, cuts: usize) -> Self {
        let mut rng = Rng::new(seed);
        let budgets = (0..cuts)
            .map(|_| (rng.range(0, 60), rng.range(0, 60)))
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        ChokeNet {
            rng: Arc::new(Mutex::new(rng)),
            to_acceptor: tx,
            incoming: Arc::new(tokio::sync::Mutex::new(rx)),
            links: Arc::default(),
            budgets: Arc::new(Mutex::new(budgets)),
        }
    }

    fn dial(&self) -> Result<RumpsteakSession, TransportError> {
        let (da, db) = self
            .budgets
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((u64::MAX, u64::MAX));
        let (sa, sb) = {
            let mut r = self.rng.lock().unwrap();
            (r.next(), r.next())
        };
        let dead = Arc::new(Mutex::new(false));
        let wakers = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = SimpleChannel::pair();
        let end = |channel, seed, left| Choke {
            channel,
            rng: Rng::new(seed),
            left,
            die_at_flush: false,
            dead: dead.clone(),
            wakers: wakers.clone(),
        };
        let (ea, eb) = (end(a, sa, da), end(b, sb, db));
        self.links.fetch_add(1, Ordering::SeqCst);
        self.to_acceptor
            .send(RumpsteakSession::from_transport(eb))
            .map_err(|_| TransportError::closed())?;
        Ok(RumpsteakSession::from_transport(ea))
    }

    fn dialer(&self) -> impl Redial + use<> {
        let net = self.clone();
        move || {
            let r = net.dial();
            async move { r }
        }
    }

    fn acceptor(&self) -> impl Redial + use<> {
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
}

/// The end of a batch.
const END: u64 = u64::MAX;

/// Sends `n` messages numbered from `from`, each raced against a yield so
/// that a share of the sends is cancelled (a small replay buffer makes
/// sends wait); a cancelled number is skipped, not retried. Then the end
/// marker, not cancelled. Returns the numbers whose send completed.
async fn send_batch(s: &mut RumpsteakSession, from: u64, n: u64) -> Vec<u64> {
    let mut done = Vec::new();
    for i in from..from + n {
        tokio::select! {
            r = s.send_frame(msg(i)) => {
                r.unwrap();
                done.push(i);
            }
            () = tokio::task::yield_now() => {}
        }
    }
    s.send_frame(msg(END)).await.unwrap();
    done
}

/// Receives up to the end marker, the receive itself raced against a
/// yield (a cancelled receive must lose nothing); checks the numbers rise
/// strictly and that every completed send in `sent` is among them.
async fn recv_batch(s: &mut RumpsteakSession, sent: &[u64], last: &mut Option<u64>) {
    let mut got = Vec::new();
    loop {
        let f = tokio::select! {
            r = s.recv_frame() => r.unwrap(),
            () = tokio::task::yield_now() => continue,
        };
        let n = num(&f);
        if n == END {
            break;
        }
        if let Some(prev) = *last {
            assert!(n > prev, "{n} after {prev}: duplicated or reordered");
        }
        *last = Some(n);
        got.push(n);
    }
    for n in sent {
        assert!(got.binary_search(n).is_ok(), "message {n} was lost");
    }
}

fn cfg(local: &str, peer: &str) -> ResumeConfig {
    config(local, peer)
        .with_replay_limits(4, 1 << 20)
        .with_ack_policy(2, Duration::from_millis(5))
}

/// Alice and Bob take turns sending batches with cancellations over
/// links that push back and die under writes.
async fn turns(seed: u64, cuts: usize, rounds: u64) {
    let net = ChokeNet::new(seed, cuts);
    let (a, b) = tokio::join!(
        ResumableSession::open(net.dialer(), cfg("Alice", "Bob")),
        ResumableSession::open(net.acceptor(), cfg("Bob", "Alice")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let a_sent: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let b_sent: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let bob = {
        let (a_sent, b_sent) = (a_sent.clone(), b_sent.clone());
        tokio::spawn(async move {
            let mut last = None;
            for round in 0..rounds {
                loop {
                    // Wait until Alice published what she sent this round.
                    if a_sent.lock().unwrap().len() as u64 > round {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                let sent = a_sent.lock().unwrap()[round as usize].clone();
                recv_batch(&mut b, &sent, &mut last).await;
                let done = send_batch(&mut b, round * 1000, 40).await;
                b_sent.lock().unwrap().push(done);
            }
            b
        })
    };
    let mut last = None;
    for round in 0..rounds {
        let done = send_batch(&mut a, round * 1000, 40).await;
        a_sent.lock().unwrap().push(done);
        loop {
            if b_sent.lock().unwrap().len() as u64 > round {
                break;
            }
            // Bob's batch is sent before he publishes it; meanwhile its
            // frames wait in Alice's received queue.
            tokio::task::yield_now().await;
        }
        let sent = b_sent.lock().unwrap()[round as usize].clone();
        recv_batch(&mut a, &sent, &mut last).await;
    }
    let b = bob.await.unwrap();
    // Some sends completed and some were cancelled, on both sides.
    for sent in [&a_sent, &b_sent] {
        let done: usize = sent.lock().unwrap().iter().map(Vec::len).sum();
        assert!(
            done > 0 && done < (rounds * 40) as usize,
            "{done} sends completed"
        );
    }
    assert!(
        net.links.load(Ordering::SeqCst) as usize > cuts / 2,
        "the links were meant to die under the traffic"
    );
    assert!(ha.error().is_none(), "{:?}", ha.error());
    assert!(hb.error().is_none(), "{:?}", hb.error());
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_writes_over_links_that_push_back_and_die_lose_nothing() {
    for seed in 1..=4 {
        timeout(HANG, turns(seed, 20, 30))
            .await
            .unwrap_or_else(|_| panic!("seed {seed} hung"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn front_writes_on_one_thread_lose_nothing() {
    for seed in 11..=14 {
        timeout(HANG, turns(seed, 20, 30))
            .await
            .unwrap_or_else(|_| panic!("seed {seed} hung"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stress: many seeds and cuts"]
async fn stress_front_writes_over_choking_links() {
    for seed in 100..140 {
        timeout(HANG, turns(seed, 100, 100))
            .await
            .unwrap_or_else(|_| panic!("seed {seed} hung"));
    }
}
