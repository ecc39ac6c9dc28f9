//! Every error kind of Replay: another operation, peer, message type,
//! payload or label than recorded, a step past the end, steps left at the
//! end, a recv recorded without its payload, and recorded errors played
//! back.

mod common;

use std::time::Duration;

use common::*;
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Violation};
use rumpsteak_aura_handler::SimpleChannel;
use rumpsteak_aura_layers::{ErrorClass, HandlerExt, OpKind, Recording, Replay, Transcript};

/// Records A's side of: send 7u32 to B, recv a u32 from B, choose `left`
/// for B, offer from B (B chooses `right`).
fn transcript() -> Transcript {
    let rt = runtime();
    let rec = Recording::new(Handler::new());
    let (x, y) = SimpleChannel::pair();
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, rec.tap(&Role::B, x));
    let mut b = Endpoint::new(Role::B);
    b.register_channel(Role::A, y);
    let mut ha = rec.clone();
    rt.block_on(async {
        let peer = async {
            let mut h = Handler::new();
            let n: u32 = h.recv(&mut b, Role::A).await?;
            h.send(&mut b, Role::A, &(n * 6)).await?;
            let _ = h.offer(&mut b, Role::A).await?;
            h.choose(&mut b, Role::A, Label("right")).await
        };
        let me = async {
            ha.send(&mut a, Role::B, &7u32).await?;
            let n: u32 = ha.recv(&mut a, Role::B).await?;
            assert_eq!(n, 42);
            ha.choose(&mut a, Role::B, Label("left")).await?;
            ha.offer(&mut a, Role::B).await
        };
        let (p, m) = tokio::join!(peer, me);
        p.expect("peer");
        assert_eq!(m.expect("recorded role"), Label("right"));
    });
    rec.transcript()
}

fn replay() -> (Replay<Role>, Endpoint) {
    (Replay::new(transcript()), Endpoint::new(Role::A))
}

fn out_of_protocol(e: &ChoreographyError) -> (&str, &str) {
    match e {
        ChoreographyError::ProtocolViolation {
            violation:
                Violation::OutOfProtocol {
                    expected,
                    attempted,
                },
            ..
        } => (expected, attempted),
        other => panic!("not a divergence: {other}"),
    }
}

#[test]
fn the_recorded_run_replays() {
    let (mut h, mut ep) = replay();
    runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await.expect("send");
        let n: u32 = h.recv(&mut ep, Role::B).await.expect("recv");
        assert_eq!(n, 42);
        h.choose(&mut ep, Role::B, Label("left"))
            .await
            .expect("choose");
        let l = h
            .offer_among(&mut ep, Role::B, &[Label("left"), Label("right")])
            .await;
        assert_eq!(l.expect("offer"), Label("right"));
    });
    assert_eq!(h.remaining(), 0);
    h.finish().expect("complete");
}

#[test]
fn another_operation() {
    let (mut h, mut ep) = replay();
    let e = runtime()
        .block_on(h.recv::<u32>(&mut ep, Role::B))
        .expect_err("diverges");
    let (expected, attempted) = out_of_protocol(&e);
    assert_eq!(
        expected,
        "step 1: send u32 to B (1 payload bytes) (operation differs)"
    );
    assert_eq!(attempted, "recv u32 from B");
    let d = h.divergence().expect("kept");
    assert_eq!((d.step, d.what), (1, "operation"));
    assert_eq!(d.attempted.as_ref().map(|a| a.op), Some(OpKind::Recv));
}

#[test]
fn another_peer() {
    let (mut h, mut ep) = replay();
    let e = runtime()
        .block_on(h.send(&mut ep, Role::Seller, &7u32))
        .expect_err("diverges");
    let (expected, attempted) = out_of_protocol(&e);
    assert!(expected.starts_with("step 1: send u32 to B"), "{expected}");
    assert!(expected.ends_with("(peer differs)"), "{expected}");
    assert!(attempted.starts_with("send u32 to Seller"), "{attempted}");
}

#[test]
fn another_message_type() {
    let (mut h, mut ep) = replay();
    let e = runtime()
        .block_on(h.send(&mut ep, Role::B, &7u64))
        .expect_err("diverges");
    let (expected, attempted) = out_of_protocol(&e);
    assert!(expected.ends_with("(message type differs)"), "{expected}");
    assert!(attempted.starts_with("send u64 to B"), "{attempted}");
}

#[test]
fn another_payload() {
    let (mut h, mut ep) = replay();
    let e = runtime()
        .block_on(h.send(&mut ep, Role::B, &8u32))
        .expect_err("diverges");
    assert!(out_of_protocol(&e).0.ends_with("(payload differs)"));
    assert_eq!(h.divergence().map(|d| d.step), Some(1));
}

#[test]
fn another_label() {
    let (mut h, mut ep) = replay();
    let e = runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await?;
        let _: u32 = h.recv(&mut ep, Role::B).await?;
        h.choose(&mut ep, Role::B, Label("right")).await
    });
    let e = e.expect_err("diverges");
    let (expected, attempted) = out_of_protocol(&e);
    assert_eq!(expected, "step 3: choose left for B (label differs)");
    assert_eq!(attempted, "choose right for B");
}

#[test]
fn an_offered_label_outside_the_expected_set() {
    let (mut h, mut ep) = replay();
    let e = runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await?;
        let _: u32 = h.recv(&mut ep, Role::B).await?;
        h.choose(&mut ep, Role::B, Label("left")).await?;
        h.offer_among(&mut ep, Role::B, &[Label("up"), Label("down")])
            .await
    });
    let e = e.expect_err("diverges");
    let (expected, attempted) = out_of_protocol(&e);
    assert_eq!(expected, "step 4: offer from B: right (label differs)");
    assert_eq!(attempted, "offer from B among [up, down]");
}

#[test]
fn a_step_past_the_end() {
    let (mut h, mut ep) = replay();
    let e = runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await?;
        let _: u32 = h.recv(&mut ep, Role::B).await?;
        h.choose(&mut ep, Role::B, Label("left")).await?;
        h.offer(&mut ep, Role::B).await?;
        h.send(&mut ep, Role::B, &1u8).await
    });
    let e = e.expect_err("past the end");
    let (expected, attempted) = out_of_protocol(&e);
    assert_eq!(expected, "step 5: the end of the transcript");
    assert!(attempted.starts_with("send u8 to B"), "{attempted}");
    let d = h.divergence().expect("kept");
    assert!(d.recorded.is_none());
    // Every later step fails the same way.
    let again = runtime()
        .block_on(h.choose(&mut ep, Role::B, Label("x")))
        .expect_err("stays");
    assert_eq!(again.to_string(), e.to_string());
}

#[test]
fn steps_left_at_the_end() {
    let (mut h, mut ep) = replay();
    runtime()
        .block_on(h.send(&mut ep, Role::B, &7u32))
        .expect("step 1");
    let e = h.finish().expect_err("three steps left");
    let (expected, attempted) = out_of_protocol(&e);
    assert_eq!(
        expected,
        "step 2: recv u32 from B (1 payload bytes) (not taken)"
    );
    assert_eq!(attempted, "the end of the role");
}

#[test]
fn a_recv_recorded_without_its_payload() {
    let mut t = transcript();
    t.entries[1].payload = None;
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    let e = runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await?;
        h.recv::<u32>(&mut ep, Role::B).await
    });
    let e = e.expect_err("no payload");
    let (expected, attempted) = out_of_protocol(&e);
    assert!(
        expected.starts_with("step 2: recv u32 from B ("),
        "{expected}"
    );
    assert!(expected.contains("Recording::tap"), "{expected}");
    assert_eq!(attempted, "recv u32 from B");
    let d = h.divergence().expect("a divergence, kept");
    assert_eq!((d.step, d.what), (2, "missing payload"));
    // Sticky: the next step fails the same way.
    let again = runtime()
        .block_on(h.choose(&mut ep, Role::B, Label("left")))
        .expect_err("stays diverged");
    assert_eq!(again.to_string(), e.to_string());
}

#[test]
fn an_offer_recorded_without_its_label() {
    let mut t = transcript();
    t.entries[3].label = None;
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    let e = runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await?;
        let _: u32 = h.recv(&mut ep, Role::B).await?;
        h.choose(&mut ep, Role::B, Label("left")).await?;
        h.offer(&mut ep, Role::B).await
    });
    let e = e.expect_err("no label");
    let (expected, attempted) = out_of_protocol(&e);
    assert_eq!(
        expected,
        "step 4: offer from B (recorded without its label)"
    );
    assert_eq!(attempted, "offer from B");
    assert_eq!(h.divergence().map(|d| d.what), Some("missing label"));
    assert!(h.finish().is_err(), "sticky");
}

#[test]
fn a_send_recorded_without_its_payload_matches_no_payload() {
    let mut t = transcript();
    t.entries[0].payload = None;
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    let e = runtime()
        .block_on(h.send(&mut ep, Role::B, &7u32))
        .expect_err("nothing to compare with");
    assert!(out_of_protocol(&e).0.starts_with("step 1: send u32 to B ("));
    assert_eq!(h.divergence().map(|d| d.what), Some("missing payload"));
}

#[test]
fn a_recorded_payload_of_another_shape_fails_to_decode() {
    let mut t = transcript();
    // Claims the recorded recv was of a String: the bytes of 42u32 are not one.
    t.entries[1].msg = Some("String".into());
    t.entries[1].payload = Some(vec![0xff]);
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    let e = runtime().block_on(async {
        h.send(&mut ep, Role::B, &7u32).await?;
        h.recv::<String>(&mut ep, Role::B).await
    });
    assert!(matches!(e, Err(ChoreographyError::Serialization { .. })));
}

#[test]
fn recorded_errors_are_played_back() {
    let rt = runtime();
    let rec = Recording::new(Handler::new());
    let (x, y) = SimpleChannel::pair();
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, rec.tap(&Role::B, x));
    let mut h = rec.clone();
    rt.block_on(async {
        let t = h
            .recv_timeout::<u32>(&mut a, Role::B, Duration::from_millis(5))
            .await;
        assert!(matches!(t, Err(ChoreographyError::Timeout(_))));
        let n = h.send(&mut a, Role::Seller, &1u8).await;
        assert!(matches!(n, Err(ChoreographyError::NoChannel { .. })));
        drop(y);
        let c = h.offer(&mut a, Role::B).await.expect_err("closed");
        assert!(c.is_closed());
    });
    let t = rec.transcript();
    let classes: Vec<_> = t
        .entries
        .iter()
        .map(|e| e.error.as_ref().map(|e| e.class))
        .collect();
    assert_eq!(
        classes,
        [
            Some(ErrorClass::Timeout),
            Some(ErrorClass::NoChannel),
            Some(ErrorClass::Closed)
        ]
    );

    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    rt.block_on(async {
        let e = h
            .recv_timeout::<u32>(&mut ep, Role::B, Duration::from_secs(60))
            .await;
        assert!(matches!(e, Err(ChoreographyError::Timeout(d)) if d == Duration::from_millis(5)));
        let e = h.send(&mut ep, Role::Seller, &1u8).await;
        assert!(
            matches!(e, Err(ChoreographyError::NoChannel { ref peer, .. }) if peer == "Seller")
        );
        let e = h.offer(&mut ep, Role::B).await.expect_err("closed again");
        assert!(e.is_closed(), "{e}");
    });
    h.finish().expect("the failed steps count as replayed");
}

#[test]
fn other_recorded_errors_keep_their_class_and_message() {
    let rt = runtime();
    let rec = Recording::new(Handler::new());
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = rec.clone();
    rt.block_on(async {
        Handler::new()
            .choose(&mut b, Role::A, Label("maybe"))
            .await
            .expect("choose");
        let e = h
            .offer_among(&mut a, Role::B, &[Label("yes")])
            .await
            .expect_err("unexpected");
        assert!(matches!(e, ChoreographyError::UnexpectedLabel { .. }));
    });
    let mut replay = Replay::new(rec.transcript());
    let mut ep = Endpoint::new(Role::A);
    let e = rt
        .block_on(replay.offer_among(&mut ep, Role::B, &[Label("yes")]))
        .expect_err("fails as recorded");
    assert_eq!(ErrorClass::of(&e), ErrorClass::UnexpectedLabel);
    assert!(e.to_string().contains("peer chose `maybe`"), "{e}");
}
