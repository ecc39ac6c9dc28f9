//! Every bound that ends a resumable session, each with its typed error:
//! the reconnect deadline, replay-buffer overflow, another session, another
//! role, another identity, a restarted peer (dialing or accepting side),
//! and a peer of another wire version.

mod common;

use std::time::Duration;

use common::{HANG, MemNet, config, msg, num, pair};
use rumpsteak_aura::{FrameError, TransportError, TransportErrorKind};
use rumpsteak_aura_resume::{
    OnFull, RejectReason, ReplayLimit, ResumableSession, ResumeError, ResumeHandle,
};
use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel, wire};
use tokio::time::timeout;

fn resume_error(e: &TransportError) -> ResumeError {
    ResumeError::of(e)
        .unwrap_or_else(|| panic!("not a resume error: {e}"))
        .clone()
}

async fn finished(h: &ResumeHandle) -> ResumeError {
    timeout(HANG, async {
        loop {
            if let Some(e) = h.error() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the session ends within the bound")
}

#[tokio::test]
async fn the_reconnect_deadline_ends_both_sides() {
    let net = MemNet::new();
    let short = |l, p| config(l, p).with_reconnect_deadline(Duration::from_millis(300));
    let (a, b) = pair(&net, short("Alice", "Bob"), short("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    a.send_frame(msg(1)).await.unwrap();
    assert_eq!(num(&b.recv_frame().await.unwrap()), 1);
    net.set_down(true);
    net.cut();
    let started = std::time::Instant::now();
    // Pending operations on both sides get the typed error.
    let ea = timeout(HANG, a.recv_frame()).await.unwrap().unwrap_err();
    let eb = timeout(HANG, b.recv_frame()).await.unwrap().unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    for e in [&ea, &eb] {
        match resume_error(e) {
            ResumeError::ReconnectDeadline {
                deadline,
                attempts,
                last_cause,
            } => {
                assert_eq!(deadline, Duration::from_millis(300));
                assert!(attempts >= 1);
                assert!(!last_cause.is_empty());
            }
            other => panic!("expected the reconnect deadline, got {other}"),
        }
    }
    // The dialer tried again and again, each refused by the network.
    let ResumeError::ReconnectDeadline {
        attempts,
        last_cause,
        ..
    } = resume_error(&ea)
    else {
        unreachable!()
    };
    assert!(attempts > 1, "{attempts}");
    assert!(last_cause.contains("network down"), "{last_cause}");
    // Later operations get it too.
    assert!(matches!(
        resume_error(&a.send_frame(msg(2)).await.unwrap_err()),
        ResumeError::ReconnectDeadline { .. }
    ));
}

#[tokio::test]
async fn replay_overflow_in_frames_and_in_bytes() {
    for (frames, bytes, fits, limit) in [
        (4, 1 << 20, 4, ReplayLimit::Frames(4)),
        (100, 16, 2, ReplayLimit::Bytes(16)),
    ] {
        let net = MemNet::new();
        let cfg = |l, p| {
            config(l, p)
                .with_replay_limits(frames, bytes)
                .with_on_full(OnFull::Fail)
        };
        let (a, b) = pair(&net, cfg("Alice", "Bob"), cfg("Bob", "Alice")).await;
        let (mut a, _b) = (a.into_session(), b.into_session());
        net.set_down(true);
        net.cut();
        // The last send finds the buffer full: at once if Alice's driver
        // saw the cut already, else when it does.
        for i in 0..fits {
            a.send_frame(msg(i)).await.unwrap();
        }
        let e = timeout(HANG, a.send_frame(msg(99)))
            .await
            .unwrap()
            .unwrap_err();
        match resume_error(&e) {
            ResumeError::ReplayOverflow { limit: got } => assert_eq!(got, limit),
            other => panic!("expected an overflow, got {other}"),
        }
        assert!(e.to_string().contains("replay buffer overflowed"), "{e}");
        // The session is over.
        assert!(ResumeError::of(&a.recv_frame().await.unwrap_err()).is_some());
    }
}

#[tokio::test]
async fn a_frame_larger_than_the_buffer_is_refused_alone() {
    let net = MemNet::new();
    let cfg = |l, p| config(l, p).with_replay_limits(8, 64);
    let (a, b) = pair(&net, cfg("Alice", "Bob"), cfg("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let e = a.send_frame(vec![0; 65]).await.unwrap_err();
    assert!(matches!(
        e.kind(),
        TransportErrorKind::FrameTooLarge {
            size: 65,
            limit: 64
        }
    ));
    a.send_frame(msg(3)).await.unwrap();
    assert_eq!(num(&b.recv_frame().await.unwrap()), 3);
}

async fn refused_at_open(
    alice: rumpsteak_aura_resume::ResumeConfig,
    bob: rumpsteak_aura_resume::ResumeConfig,
) -> (ResumeError, ResumeError) {
    let net = MemNet::new();
    let (a, b) = timeout(HANG, async {
        tokio::join!(
            ResumableSession::open(net.dialer(), alice),
            ResumableSession::open(net.acceptor(), bob)
        )
    })
    .await
    .unwrap();
    (a.unwrap_err(), b.unwrap_err())
}

#[tokio::test]
async fn another_session_identifier_is_refused() {
    let alice = rumpsteak_aura_resume::ResumeConfig::new("auction-1", "Alice", "Bob");
    let bob = rumpsteak_aura_resume::ResumeConfig::new("auction-2", "Bob", "Alice");
    let (ea, eb) = refused_at_open(alice, bob).await;
    match (&ea, &eb) {
        (
            ResumeError::WrongSession {
                expected: ea_exp,
                presented: ea_pre,
            },
            ResumeError::WrongSession {
                expected: eb_exp,
                presented: eb_pre,
            },
        ) => {
            assert_eq!(
                (ea_exp.as_str(), ea_pre.as_str()),
                ("auction-1", "auction-2")
            );
            assert_eq!(
                (eb_exp.as_str(), eb_pre.as_str()),
                ("auction-2", "auction-1")
            );
        }
        other => panic!("expected wrong session on both sides, got {other:?}"),
    }
}

#[tokio::test]
async fn another_role_is_refused() {
    let (ea, eb) = refused_at_open(config("Alice", "Bob"), config("Bob", "Carol")).await;
    assert!(
        matches!(&eb, ResumeError::WrongRole { expected, presented }
            if expected == "Carol -> Bob" && presented == "Alice -> Bob"),
        "{eb}"
    );
    assert!(
        matches!(&ea, ResumeError::WrongRole { .. }),
        "Alice sees Bob expect Carol: {ea}"
    );
}

#[tokio::test]
async fn another_identity_on_a_new_link_is_refused() {
    let net = MemNet::new();
    net.set_identities(Some("key:bob"), Some("key:alice"));
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    assert_eq!(
        rumpsteak_aura_transport::SessionTransport::peer_identity(&a),
        Some("key:bob")
    );
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, _b) = (a.into_session(), b.into_session());
    a.send_frame(msg(1)).await.unwrap();
    // The next link leads Alice to someone else.
    net.set_identities(Some("key:mallory"), Some("key:alice"));
    net.cut();
    match finished(&ha).await {
        ResumeError::IdentityChanged {
            expected,
            presented,
        } => {
            assert_eq!(expected, "key:bob");
            assert_eq!(presented.as_deref(), Some("key:mallory"));
        }
        other => panic!("expected an identity change, got {other}"),
    }
    // The accepting side is told why, in the reject frame, and not whom
    // Alice expected.
    match finished(&hb).await {
        ResumeError::RefusedByPeer { reason, detail } => {
            assert_eq!(reason, RejectReason::IdentityChanged);
            assert!(!detail.contains("key:bob"), "{detail}");
        }
        other => panic!("expected a refusal by Alice, got {other}"),
    }
    assert!(matches!(
        resume_error(&a.recv_frame().await.unwrap_err()),
        ResumeError::IdentityChanged { .. }
    ));
}

#[tokio::test]
async fn a_restarted_dialer_is_refused_not_resumed() {
    let net = MemNet::new();
    let alice_cfg = config("Alice", "Bob").with_reconnect_deadline(Duration::from_millis(200));
    let (a, b) = pair(&net, alice_cfg, config("Bob", "Alice")).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    a.send_frame(msg(1)).await.unwrap();
    assert_eq!(num(&b.recv_frame().await.unwrap()), 1);
    // Alice's process dies (here: her session gives up while the network
    // is down) and a new Alice, without the old state, comes back.
    net.set_down(true);
    net.cut();
    assert!(matches!(
        finished(&ha).await,
        ResumeError::ReconnectDeadline { .. }
    ));
    drop(a);
    net.set_down(false);
    let reborn = timeout(
        HANG,
        ResumableSession::open(net.dialer(), config("Alice", "Bob")),
    )
    .await
    .unwrap()
    .unwrap_err();
    // Bob refuses the new incarnation ...
    match finished(&hb).await {
        ResumeError::PeerRestarted {
            expected,
            presented,
        } => assert_ne!(expected, presented),
        other => panic!("expected a restarted peer, got {other}"),
    }
    // ... and the new Alice learns that Bob resumes a session she lacks.
    assert!(
        matches!(reborn, ResumeError::UnknownSession { .. }),
        "{reborn}"
    );
    assert!(matches!(
        resume_error(&b.recv_frame().await.unwrap_err()),
        ResumeError::PeerRestarted { .. }
    ));
}

#[tokio::test]
async fn a_restarted_acceptor_is_refused_not_resumed() {
    let net = MemNet::new();
    let bob_cfg = config("Bob", "Alice").with_reconnect_deadline(Duration::from_millis(200));
    let (a, b) = pair(&net, config("Alice", "Bob"), bob_cfg).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, b) = (a.into_session(), b.into_session());
    a.send_frame(msg(1)).await.unwrap();
    net.set_down(true);
    net.cut();
    assert!(matches!(
        finished(&hb).await,
        ResumeError::ReconnectDeadline { .. }
    ));
    drop(b);
    // A new Bob waits for a first link; Alice's reconnection reaches it.
    let reborn = tokio::spawn(ResumableSession::open(
        net.acceptor(),
        config("Bob", "Alice"),
    ));
    net.set_down(false);
    match finished(&ha).await {
        ResumeError::PeerRestarted { .. } => {}
        other => panic!("expected a restarted peer, got {other}"),
    }
    let reborn = timeout(HANG, reborn).await.unwrap().unwrap().unwrap_err();
    assert!(
        matches!(reborn, ResumeError::UnknownSession { .. }),
        "{reborn}"
    );
    assert!(matches!(
        resume_error(&a.recv_frame().await.unwrap_err()),
        ResumeError::PeerRestarted { .. }
    ));
}

/// A link to a peer that speaks plain version-1 frames, and that peer.
fn old_peer() -> (impl rumpsteak_aura_resume::Redial, RumpsteakSession) {
    let (ours, theirs) = SimpleChannel::pair();
    let mut ours = Some(RumpsteakSession::from(ours));
    let redial = move || {
        let link = ours.take().ok_or_else(TransportError::closed);
        async move { link }
    };
    (redial, RumpsteakSession::from(theirs))
}

#[tokio::test]
async fn a_version_1_peer_is_refused_on_both_sides() {
    let (redial, mut old) = old_peer();
    // The old peer speaks first, as a role that sends does.
    old.send_frame(wire::encode_message(&5u32, 0).unwrap())
        .await
        .unwrap();
    let e = timeout(HANG, ResumableSession::open(redial, config("Alice", "Bob")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            e,
            ResumeError::Version {
                found: 1,
                supported: 2
            }
        ),
        "{e}"
    );
    // The old peer reads the resume greeting as a frame of an unsupported
    // version: its own typed refusal.
    let greeting = old.recv_frame().await.unwrap();
    assert_eq!(
        wire::decode(&greeting).unwrap_err(),
        FrameError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
}

#[tokio::test]
async fn a_later_version_peer_is_refused_and_told_why() {
    let (redial, mut newer) = old_peer();
    newer.send_frame(vec![0x03, 0x10, 0xff]).await.unwrap();
    let e = timeout(HANG, ResumableSession::open(redial, config("Alice", "Bob")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            e,
            ResumeError::Version {
                found: 3,
                supported: 2
            }
        ),
        "{e}"
    );
    let _greeting = newer.recv_frame().await.unwrap();
    // The refusal keeps its layout across versions: version, kind 0x11,
    // reason code 5 (version), then the text.
    let reject = newer.recv_frame().await.unwrap();
    assert_eq!(&reject[..3], &[0x02, 0x11, 5]);
}

#[tokio::test]
async fn a_peer_that_skips_a_frame_is_a_protocol_violation() {
    let (redial, mut rogue) = old_peer();
    let opening = tokio::spawn(ResumableSession::open(redial, config("Alice", "Bob")));
    // Play Bob by hand: read Alice's greeting, answer with one of ours.
    let greeting = rogue.recv_frame().await.unwrap();
    assert_eq!(&greeting[..2], &[0x02, 0x10]);
    // session "test-session", from Bob, to Alice, incarnation 7, knows
    // none of Alice, received 0.
    let mut hello = vec![0x02, 0x10];
    for s in ["test-session", "Bob", "Alice"] {
        hello.push(s.len() as u8);
        hello.extend_from_slice(s.as_bytes());
    }
    hello.extend_from_slice(&7u64.to_le_bytes());
    hello.extend_from_slice(&0u64.to_le_bytes());
    hello.push(0);
    rogue.send_frame(hello).await.unwrap();
    let alice = timeout(HANG, opening).await.unwrap().unwrap().unwrap();
    let ha = alice.handle();
    let mut alice = alice.into_session();
    // Frame 2 before frame 1.
    rogue
        .send_frame(vec![0x02, 0x12, 2, 0, 0xaa])
        .await
        .unwrap();
    let e = timeout(HANG, alice.recv_frame())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(resume_error(&e), ResumeError::Protocol(ref m) if m.contains("frame 2")),
        "{e}"
    );
    assert!(ha.is_finished());
}
