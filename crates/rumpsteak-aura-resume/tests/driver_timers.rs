//! The driver's one timer keeps every deadline: heartbeats leave at their
//! interval whatever the other deadlines are, so a peer with a short idle
//! timeout keeps its link, and a link the front does all the sending on
//! still carries the acknowledgements and heartbeats the peer needs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{HANG, MemNet, config, msg, num, pair};
use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{ResumableSession, ResumeConfig};
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::time::timeout;

/// How long the tests watch an idle link: many heartbeats and several of
/// Bob's idle timeouts. The assertions are about reconnections, not about
/// times, so a slow machine only makes the test take longer.
const WATCH: Duration = Duration::from_millis(2_000);

/// Alice heartbeats every 50 ms and would wait a minute before giving a
/// link up; Bob gives a link up after 500 ms without a frame. An idle
/// session must keep its first link: Alice's heartbeats are due every
/// 50 ms, not only when her own (long) idle deadline comes.
#[tokio::test]
async fn heartbeats_keep_their_interval_when_the_own_idle_timeout_is_long() {
    let net = MemNet::new();
    let alice_cfg =
        config("Alice", "Bob").with_heartbeat(Duration::from_millis(50), Duration::from_secs(60));
    let bob_cfg = config("Bob", "Alice")
        .with_heartbeat(Duration::from_millis(50), Duration::from_millis(500));
    let (a, b) = pair(&net, alice_cfg, bob_cfg).await;
    let (ha, hb) = (a.handle(), b.handle());
    tokio::time::sleep(WATCH).await;
    assert_eq!(
        hb.stats().reconnects,
        0,
        "Bob gave up an idle link: {:?}",
        hb.stats().last_cause
    );
    assert_eq!(ha.stats().reconnects, 0, "{:?}", ha.stats().last_cause);
    assert_eq!(net.links.load(Ordering::SeqCst), 1);
    drop((a, b));
}

/// The same with the roles swapped: the accepting side heartbeats for a
/// dialer with a short idle timeout.
#[tokio::test]
async fn the_acceptor_heartbeats_for_a_dialer_with_a_short_idle_timeout() {
    let net = MemNet::new();
    let alice_cfg = config("Alice", "Bob")
        .with_heartbeat(Duration::from_millis(50), Duration::from_millis(500));
    let bob_cfg =
        config("Bob", "Alice").with_heartbeat(Duration::from_millis(50), Duration::from_secs(60));
    let (a, b) = pair(&net, alice_cfg, bob_cfg).await;
    let (ha, hb) = (a.handle(), b.handle());
    tokio::time::sleep(WATCH).await;
    assert_eq!(ha.stats().reconnects, 0, "{:?}", ha.stats().last_cause);
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats().last_cause);
    drop((a, b));
}

/// Alice sends a frame every 20 ms (written on the link by the front, the
/// driver mostly asleep) and Bob only receives: Bob's acknowledgements
/// must still leave (Alice's replay buffer empties), and neither side's
/// short idle timeout fires.
#[tokio::test]
async fn a_link_the_front_does_all_sending_on_keeps_acks_and_heartbeats() {
    let net = MemNet::new();
    let short =
        |c: ResumeConfig| c.with_heartbeat(Duration::from_millis(50), Duration::from_millis(500));
    let (a, b) = pair(
        &net,
        short(config("Alice", "Bob")),
        short(config("Bob", "Alice")),
    )
    .await;
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let n = 100u64;
    let reader = tokio::spawn(async move {
        for i in 0..n {
            let f = timeout(HANG, b.recv_frame()).await.unwrap().unwrap();
            assert_eq!(num(&f), i);
        }
        b
    });
    for i in 0..n {
        a.send_frame(msg(i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = timeout(HANG, reader).await.unwrap().unwrap();
    // Bob acknowledges within his acknowledgement delay; bounded only to
    // prove it cannot hang.
    timeout(HANG, async {
        while ha.stats().unacked_frames > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    // Idle after the flow: heartbeats alone must keep the link.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(ha.stats().reconnects, 0, "{:?}", ha.stats().last_cause);
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats().last_cause);
    drop((a, b));
}

/// One end of an in-memory link that can go silent without an error, as
/// a connection does when the path between the peers drops everything:
/// sends are accepted and lost, nothing arrives. Only the idle timeout
/// finds such a link dead.
#[derive(Debug)]
struct Silent {
    channel: SimpleChannel,
    silent: Arc<AtomicBool>,
}

impl SessionTransport for Silent {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if self.silent.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        if self.silent.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        self.channel.poll_recv_frame(cx)
    }

    fn close(&mut self) {
        self.channel.close();
    }
}

/// A link goes silent while Alice keeps sending (her front writes every
/// frame on it and the writes succeed): both sides must give it up after
/// their idle timeout, though Alice's own sends keep moving her heartbeat
/// deadline, and resume on a new link with every frame in order.
#[tokio::test]
async fn the_idle_timeout_fires_on_a_silent_link_the_front_keeps_writing_on() {
    let current: Arc<Mutex<Arc<AtomicBool>>> = Arc::default();
    let (to_bob, incoming) = tokio::sync::mpsc::unbounded_channel::<RumpsteakSession>();
    let incoming = Arc::new(tokio::sync::Mutex::new(incoming));
    let dial = {
        let current = current.clone();
        move || {
            let silent = Arc::new(AtomicBool::new(false));
            *current.lock().unwrap() = silent.clone();
            let (a, b) = SimpleChannel::pair();
            let end = |channel| {
                RumpsteakSession::from_transport(Silent {
                    channel,
                    silent: silent.clone(),
                })
            };
            let sent = to_bob.send(end(b));
            let a = end(a);
            async move {
                sent.map_err(|_| TransportError::closed())?;
                Ok(a)
            }
        }
    };
    let accept = move || {
        let incoming = incoming.clone();
        async move {
            incoming
                .lock()
                .await
                .recv()
                .await
                .ok_or_else(TransportError::closed)
        }
    };
    let short =
        |c: ResumeConfig| c.with_heartbeat(Duration::from_millis(50), Duration::from_millis(300));
    let (a, b) = tokio::join!(
        ResumableSession::open(dial, short(config("Alice", "Bob"))),
        ResumableSession::open(accept, short(config("Bob", "Alice"))),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    a.send_frame(msg(0)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
        0
    );

    current.lock().unwrap().store(true, Ordering::SeqCst);
    // Alice writes into the silence until she has given the link up
    // (bounded only to prove it cannot hang).
    let mut next = 1u64;
    timeout(HANG, async {
        while ha.stats().reconnects == 0 {
            a.send_frame(msg(next)).await.unwrap();
            next += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("Alice never gave up the silent link");
    for i in 1..next {
        let f = timeout(HANG, b.recv_frame()).await.unwrap().unwrap();
        assert_eq!(num(&f), i);
    }
    assert!(
        next > 5,
        "Alice's front wrote only {next} frames into the silence"
    );
    let cause = ha.stats().last_cause.unwrap_or_default();
    assert!(cause.contains("nothing received"), "{cause}");
    assert!(hb.stats().reconnects >= 1);
    drop((a, b));
}
