//! The application reads the link itself while it waits in a receive (the
//! driver reads it the rest of the time). What the driver did for every
//! frame must still happen when the front reads it: the link's idle timer
//! learns of the frame, the acknowledgement timer is armed, and a receive
//! given up while waiting on the link leaves the link to the driver.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{HANG, MemNet, config, msg, num, pair};
use tokio::time::timeout;

/// Bob waits in a receive for several of his idle timeouts while Alice
/// sends nothing but heartbeats. The heartbeats Bob's receive reads off
/// the link are frames received: his link stays up.
#[tokio::test]
async fn a_receive_waiting_on_the_link_takes_heartbeats_and_keeps_the_link() {
    let net = MemNet::new();
    let quick = |local, peer| {
        config(local, peer).with_heartbeat(Duration::from_millis(40), Duration::from_millis(300))
    };
    let (a, b) = pair(&net, quick("Alice", "Bob"), quick("Bob", "Alice")).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (_alice, mut bob) = (a.into_session(), b.into_session());
    let waited = timeout(Duration::from_millis(1_500), bob.recv_frame()).await;
    assert!(waited.is_err(), "nothing was sent, yet: {waited:?}");
    assert_eq!(
        hb.stats().reconnects,
        0,
        "Bob gave up a link that carried heartbeats: {:?}",
        hb.stats().last_cause
    );
    assert_eq!(ha.stats().reconnects, 0, "{:?}", ha.stats().last_cause);
    assert_eq!(net.links.load(Ordering::SeqCst), 1);
}

/// Bob gives up a receive that waited on the link, then does nothing with
/// his session. What Alice sends meanwhile is read (and acknowledged) by
/// Bob's driver, at the latest when its timer comes by: Alice's replay
/// buffer empties before Bob receives anything, and Bob then gets every
/// frame in order.
#[tokio::test]
async fn a_receive_given_up_on_the_link_leaves_the_link_to_the_driver() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (mut alice, mut bob) = (a.into_session(), b.into_session());
    let given_up = timeout(Duration::from_millis(20), bob.recv_frame()).await;
    assert!(given_up.is_err(), "nothing was sent, yet: {given_up:?}");
    for n in 0..5 {
        alice.send_frame(msg(n)).await.unwrap();
    }
    // Bounded so that a link nobody reads fails the test instead of
    // hanging it; the assertion is that it empties, not how soon.
    timeout(HANG, async {
        while ha.stats().unacked_frames > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("Bob's side never acknowledged what arrived after his receive was given up");
    assert_eq!(hb.stats().frames_received, 5);
    for n in 0..5 {
        assert_eq!(num(&bob.recv_frame().await.unwrap()), n);
    }
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats().last_cause);
}

/// A one-way stream into a receive that keeps waiting on the link, with a
/// replay buffer of eight frames, a long heartbeat and a short
/// acknowledgement delay: every acknowledgement Alice's sends wait for is
/// a standalone one, sent when the timer the front armed fires. Were the
/// timer not armed for frames the front read, each eight frames would wait
/// for a heartbeat (two seconds), and 400 frames for longer than the
/// test's bound.
#[tokio::test]
async fn frames_the_front_reads_are_acknowledged_within_the_acknowledgement_delay() {
    let net = MemNet::new();
    let cfg = |local, peer| {
        config(local, peer)
            .with_heartbeat(Duration::from_secs(2), Duration::from_secs(10))
            .with_ack_policy(1_000, Duration::from_millis(5))
            .with_replay_limits(8, 1 << 20)
    };
    let (a, b) = pair(&net, cfg("Alice", "Bob"), cfg("Bob", "Alice")).await;
    let hb = b.handle();
    let (mut alice, mut bob) = (a.into_session(), b.into_session());
    const FRAMES: u64 = 400;
    let sender = tokio::spawn(async move {
        for n in 0..FRAMES {
            alice.send_frame(msg(n)).await.unwrap();
        }
        alice
    });
    timeout(HANG, async {
        for n in 0..FRAMES {
            assert_eq!(num(&bob.recv_frame().await.unwrap()), n);
        }
    })
    .await
    .expect("the stream stalled: acknowledgements of frames the front read did not leave");
    let _alice = sender.await.unwrap();
    assert_eq!(hb.stats().frames_received, FRAMES);
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats().last_cause);
}

/// Bob gives up a receive that waited on the link, and a frame from Alice
/// then arrives: its readiness goes to Bob's task, which no longer reads.
/// Bob's next send hands the link to his driver, which reads the frame:
/// no timer is needed for it (the heartbeat and the acknowledgement delay
/// are both longer than the test's bound).
#[tokio::test]
async fn a_send_after_a_receive_given_up_hands_the_unread_link_to_the_driver() {
    let net = MemNet::new();
    let slow = |local, peer| {
        config(local, peer)
            .with_heartbeat(Duration::from_secs(120), Duration::from_secs(300))
            .with_ack_policy(1_000, Duration::from_secs(120))
    };
    let (a, b) = pair(&net, slow("Alice", "Bob"), slow("Bob", "Alice")).await;
    let hb = b.handle();
    let (mut alice, mut bob) = (a.into_session(), b.into_session());
    let given_up = timeout(Duration::from_millis(20), bob.recv_frame()).await;
    assert!(given_up.is_err(), "nothing was sent, yet: {given_up:?}");
    alice.send_frame(msg(7)).await.unwrap();
    bob.send_frame(msg(8)).await.unwrap();
    // Bounded so that a link nobody reads fails the test instead of
    // hanging it; the assertion is that the frame is read, not how soon.
    timeout(HANG, async {
        while hb.stats().frames_received == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("nobody read the frame that arrived after Bob's receive was given up");
    assert_eq!(num(&bob.recv_frame().await.unwrap()), 7);
    assert_eq!(num(&alice.recv_frame().await.unwrap()), 8);
}
