//! A review of the application's own reads of the link (the front reads
//! while it waits in a receive, the driver the rest of the time): what
//! reaches the link after the front took a frame.

mod common;

use std::time::Duration;

use common::{HANG, MemNet, config, msg, num, pair};
use rumpsteak_aura_resume::ResumeConfig;
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
