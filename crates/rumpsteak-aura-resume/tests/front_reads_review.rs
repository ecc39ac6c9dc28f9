//! A review of the application's own reads of the link (the front reads
//! while it waits in a receive, the driver the rest of the time): what
//! reaches the link after the front took a frame, and a write of the
//! front's that fails right after its read.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{HANG, MemNet, config, msg, num, pair};
use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{Redial, ResumableSession, ResumeConfig};
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Timers far beyond [`HANG`]: a test that passes does not wait for them,
/// so whatever it waits for was woken by something else.
fn no_timers(local: &str, peer: &str) -> ResumeConfig {
    config(local, peer).with_heartbeat(Duration::from_secs(90), Duration::from_secs(300))
}

/// Bob's receive, waiting on the link, takes Alice's first frame off it
/// itself; then Bob does nothing with his session for a while (works on
/// the frame, say). Acknowledgements go out for every frame, so none is
/// left to a timer. What Alice sends next must still be read by Bob's
/// driver into his received queue (it has room for 1024) and acknowledged:
/// Alice's replay buffer holds four frames, so her fifth send waits for
/// that. Left in the link until Bob's heartbeat, it would wait for longer
/// than the bound.
#[tokio::test]
async fn a_receiver_that_took_a_frame_off_the_link_and_went_quiet_still_acknowledges() {
    let net = MemNet::new();
    let cfg = |local, peer| {
        no_timers(local, peer)
            .with_ack_policy(1, Duration::from_millis(5))
            .with_replay_limits(4, 1 << 20)
    };
    let (a, b) = pair(&net, cfg("Alice", "Bob"), cfg("Bob", "Alice")).await;
    let hb = b.handle();
    let (mut alice, mut bob) = (a.into_session(), b.into_session());
    let first = tokio::spawn(async move {
        let f = bob.recv_frame().await;
        (bob, f)
    });
    // Bob's receive gets to wait on the link before Alice sends.
    tokio::time::sleep(Duration::from_millis(20)).await;
    alice.send_frame(msg(0)).await.unwrap();
    let (mut bob, f) = first.await.unwrap();
    assert_eq!(num(&f.unwrap()), 0);
    // Bounded so that frames nobody reads fail the test instead of hanging
    // it; the assertion is that every send completes, not how soon.
    timeout(HANG, async {
        for n in 1..=20 {
            alice.send_frame(msg(n)).await.unwrap();
        }
    })
    .await
    .expect("Alice's sends waited for acknowledgements Bob's side never sent");
    for n in 1..=20 {
        assert_eq!(num(&bob.recv_frame().await.unwrap()), n);
    }
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats().last_cause);
}

/// One end of an in-memory link whose writes break at the test's word
/// while its reads go on (a connection the peer shut for reading): once
/// armed, the next frame handed to it fails, and so does everything sent
/// after.
#[derive(Debug)]
struct HalfEnd {
    channel: SimpleChannel,
    switch: Arc<Switch>,
}

/// A link's switch: `armed` breaks the next write, `broken` every one.
#[derive(Debug, Default)]
struct Switch {
    armed: AtomicBool,
    broken: AtomicBool,
}

fn broken_pipe() -> TransportError {
    TransportError::io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "writes fail (test)",
    ))
}

impl HalfEnd {
    fn check(&self) -> Result<(), TransportError> {
        if self.switch.broken.load(Ordering::SeqCst) {
            return Err(broken_pipe());
        }
        Ok(())
    }
}

impl SessionTransport for HalfEnd {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(self.check())
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.check()?;
        if self.switch.armed.load(Ordering::SeqCst) {
            self.switch.broken.store(true, Ordering::SeqCst);
            return Err(broken_pipe());
        }
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(self.check())
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        self.channel.poll_recv_frame(cx)
    }

    fn close(&mut self) {
        self.channel.close();
    }
}

/// Links between a dialer and an acceptor whose acceptor ends break their
/// writes at the switch of their link; each link has its own.
struct HalfNet {
    to_acceptor: mpsc::UnboundedSender<RumpsteakSession>,
    incoming: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<RumpsteakSession>>>,
    switches: mpsc::UnboundedSender<Arc<Switch>>,
}

impl HalfNet {
    fn new() -> (Self, mpsc::UnboundedReceiver<Arc<Switch>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (switches, made) = mpsc::unbounded_channel();
        let net = HalfNet {
            to_acceptor: tx,
            incoming: Arc::new(tokio::sync::Mutex::new(rx)),
            switches,
        };
        (net, made)
    }

    fn dialer(&self) -> impl Redial + use<> {
        let to_acceptor = self.to_acceptor.clone();
        let switches = self.switches.clone();
        move || {
            let (a, b) = SimpleChannel::pair();
            let switch = Arc::new(Switch::default());
            let _ = switches.send(switch.clone());
            let accepted = RumpsteakSession::from_transport(HalfEnd { channel: b, switch });
            let sent = to_acceptor.send(accepted);
            async move {
                sent.map_err(|_| TransportError::closed())?;
                Ok(RumpsteakSession::from(a))
            }
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

/// Bob's receive takes frames off the link itself and writes their
/// acknowledgement at once (one per frame). After the first, his link's
/// next write breaks: the acknowledgement of the second frame, which the
/// front writes right after reading it, finds the link broken. Nothing else is due on Bob's side for longer than the
/// bound (no heartbeat, and the acknowledgement timer the first frame armed
/// is as long), so only a driver woken by the front learns of the loss;
/// Bob must get a new link and resume on it.
#[tokio::test]
async fn a_link_broken_by_the_front_acknowledging_what_it_read_is_replaced() {
    let (net, mut switches) = HalfNet::new();
    let cfg = |local, peer| no_timers(local, peer).with_ack_policy(1, Duration::from_secs(120));
    let (a, b) = tokio::join!(
        ResumableSession::open(net.dialer(), cfg("Alice", "Bob")),
        ResumableSession::open(net.acceptor(), cfg("Bob", "Alice"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let first_link = switches.recv().await.unwrap();
    let hb = b.handle();
    let (mut alice, mut bob) = (a.into_session(), b.into_session());
    let receiving = tokio::spawn(async move {
        let f = bob.recv_frame().await;
        (bob, f)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    alice.send_frame(msg(0)).await.unwrap();
    let (mut bob, f) = receiving.await.unwrap();
    assert_eq!(num(&f.unwrap()), 0);
    first_link.armed.store(true, Ordering::SeqCst);
    let receiving = tokio::spawn(async move {
        let f = bob.recv_frame().await;
        (bob, f)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    alice.send_frame(msg(1)).await.unwrap();
    let (mut bob, f) = receiving.await.unwrap();
    assert_eq!(num(&f.unwrap()), 1);
    // Bounded so that a loss nobody notices fails the test instead of
    // hanging it; the assertion is that the link is replaced.
    timeout(HANG, async {
        while hb.stats().reconnects == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("Bob never learned that the front's write broke his link");
    // The session goes on, on the new link, both ways.
    alice.send_frame(msg(2)).await.unwrap();
    assert_eq!(num(&bob.recv_frame().await.unwrap()), 2);
    bob.send_frame(msg(3)).await.unwrap();
    assert_eq!(num(&alice.recv_frame().await.unwrap()), 3);
}

/// Bob gives up a receive that waited on the link (a timeout around it),
/// then lets his session go. His driver writes the close marker, and can
/// say farewell and finish only once Alice's acknowledgement of it is
/// read; Bob's application, the one the link's next readiness was left
/// with, is gone for good. Nothing else is due on Bob's side for longer
/// than the bound (no heartbeat, nothing received to acknowledge).
#[tokio::test]
async fn a_session_dropped_after_a_receive_given_up_on_the_link_still_finishes() {
    let net = MemNet::new();
    let (a, b) = pair(&net, no_timers("Alice", "Bob"), no_timers("Bob", "Alice")).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (mut alice, mut bob) = (a.into_session(), b.into_session());
    let given_up = timeout(Duration::from_millis(20), bob.recv_frame()).await;
    assert!(given_up.is_err(), "nothing was sent, yet: {given_up:?}");
    drop(bob);
    // Bounded so that an acknowledgement nobody reads fails the test
    // instead of hanging it; the assertion is that Bob's side finishes.
    timeout(HANG, async {
        while !hb.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("Bob's driver never read the acknowledgement of his close");
    assert!(
        hb.error().is_none(),
        "Bob's session ended with {:?}",
        hb.error()
    );
    assert!(alice.recv_frame().await.unwrap_err().is_closed());
    assert_eq!(ha.stats().reconnects, 0, "{:?}", ha.stats().last_cause);
}
