//! A reconnection that a listener routes late (its link given up by the
//! peer, its greeting older than acknowledgements the session holds since)
//! must not end the session: the live link stays.

mod common;

use std::time::Duration;

use common::recording::{AliceListener, Recorded, recording_dialer};
use common::{HANG, config, msg, num};
use rumpsteak_aura_resume::{ResumableSession, ResumeListener};
use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
use tokio::time::timeout;

#[tokio::test]
async fn a_late_routed_old_greeting_leaves_the_session_alone() {
    let (to_listener, incoming) = AliceListener::new();
    let listener = ResumeListener::new(incoming, config("Bob", ""), &["Alice"]);
    let greetings = Recorded::default();
    let dial = recording_dialer(to_listener.clone(), greetings.clone());
    let (a, b) = tokio::join!(
        ResumableSession::open(dial, config("Alice", "Bob")),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    // Bob sends, Alice receives and acknowledges: Bob's acknowledged count
    // passes the `received` of Alice's first greeting (0).
    for i in 0..5 {
        b.send_frame(msg(i)).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(
            num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    timeout(HANG, async {
        while hb.stats().unacked_frames > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    // Alice's first greeting arrives again on a link of its own, late.
    let old = greetings.first_sent.lock().unwrap()[0].clone();
    let (ours, theirs) = SimpleChannel::pair();
    to_listener.send(theirs.into()).unwrap();
    let mut ours = RumpsteakSession::from(ours);
    ours.send_frame(old).await.unwrap();
    // The session goes on, both ways.
    for i in 5..10 {
        b.send_frame(msg(i)).await.unwrap();
        a.send_frame(msg(100 + i)).await.unwrap();
    }
    for i in 5..10 {
        assert_eq!(
            num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
            i
        );
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            100 + i
        );
    }
    assert_eq!(hb.error().map(|e| e.to_string()), None);
    assert_eq!(ha.error().map(|e| e.to_string()), None);
    drop(ours);
}
