//! A restarted dialer (a new incarnation, none of the old state) whose
//! reconnection a `ResumeListener` routes to the live session of its old
//! incarnation is refused before it is told anything of that session: the
//! first frame it gets is the reject (reason `PeerRestarted`), not the
//! session's greeting with the old incarnations and the received count,
//! and the reject's text does not name the old incarnation either.

mod common;

use common::recording::{AliceListener, Recorded, recording_dialer};
use common::{HANG, config, msg, num};
use rumpsteak_aura_resume::{RejectReason, ResumableSession, ResumeError, ResumeListener};
use tokio::time::timeout;

#[tokio::test]
async fn a_restarted_dialer_is_refused_before_it_learns_the_session() {
    let (to_listener, incoming) = AliceListener::new();
    let listener = ResumeListener::new(incoming, config("Bob", ""), &["Alice"]);
    let old_heard = Recorded::default();
    let (a, b) = tokio::join!(
        ResumableSession::open(
            recording_dialer(to_listener.clone(), old_heard.clone()),
            config("Alice", "Bob")
        ),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let hb = b.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    a.send_frame(msg(7)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
        7
    );
    // The old Alice got Bob's greeting (wire version 2, frame type 0x10:
    // docs/wire-format.md) on her first link: the recorder sees greetings.
    assert_eq!(old_heard.received.lock().unwrap()[0][..2], [2, 0x10]);

    // A new Alice, without the old state, dials while Bob's session lives.
    let heard = Recorded::default();
    let reborn = timeout(
        HANG,
        ResumableSession::open(
            recording_dialer(to_listener, heard.clone()),
            config("Alice", "Bob"),
        ),
    )
    .await
    .unwrap()
    .unwrap_err();
    // Bob refuses the new incarnation ...
    let bob_end = timeout(HANG, b.recv_frame()).await.unwrap().unwrap_err();
    let old_incarnation = match ResumeError::of(&bob_end) {
        Some(ResumeError::PeerRestarted { expected, .. }) => *expected,
        other => panic!("expected a restarted peer, got {other:?}"),
    };
    assert!(hb.is_finished());
    // ... before greeting it: the first frame the new Alice got is the
    // reject (type 0x11) of reason 3, peer restarted, and she ends with
    // that refusal.
    let first = heard.received.lock().unwrap().first().cloned();
    let first = first.expect("the new Alice heard nothing");
    assert_eq!(first[..3], [2, 0x11, 3], "first frame {first:?}");
    match &reborn {
        ResumeError::RefusedByPeer { reason, detail } => {
            assert_eq!(*reason, RejectReason::PeerRestarted);
            // The reject's text names the reason, not the incarnation Bob
            // expected (the old Alice's).
            let hex = format!("{old_incarnation:016x}");
            assert!(!detail.contains(&hex), "{detail}");
            let raw = old_incarnation.to_be_bytes();
            assert!(!first.windows(8).any(|w| w == raw), "first frame {first:?}");
        }
        other => panic!("expected a refusal as restarted, got {other}"),
    }
}
