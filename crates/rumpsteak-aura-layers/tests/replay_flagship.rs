//! A three-party run of the flagship is recorded, then each role is replayed
//! alone, with its peers absent and no transport, to the same result; a
//! role whose code changed diverges at a named step.

mod common;

use common::*;
use rumpsteak_aura::{ChoreographyError, Violation};
use rumpsteak_aura_layers::{OpKind, Recording, Replay, Transcript};

fn record() -> [Transcript; 3] {
    let recordings = [
        Recording::new(Handler::new()),
        Recording::new(Handler::new()),
        Recording::new(Handler::new()),
    ];
    let endpoints = purchase_endpoints(Some(&recordings));
    let keep = recordings.clone();
    let (results, _) = runtime().block_on(run_flagship(recordings, endpoints));
    assert_eq!(results, expected_results());
    keep.map(|r| r.transcript())
}

/// Through JSON and back, as a transcript kept in a file would be.
fn through_json(t: &Transcript) -> Transcript {
    let json = serde_json::to_string(t).expect("transcript serializes");
    serde_json::from_str(&json).expect("transcript deserializes")
}

#[test]
fn each_role_replayed_alone_gives_the_recorded_result() {
    let [tb, tc, ts] = record();
    assert_eq!(tb.role.as_deref(), Some("Buyer"));
    assert!(!tb.truncated && !tc.truncated && !ts.truncated);
    let rt = runtime();

    let mut h = Replay::new(through_json(&tb));
    let mut ep = Endpoint::new(Role::Buyer);
    let outcome = rt
        .block_on(buyer(&mut h, &mut ep, offers()))
        .expect("buyer replays");
    assert_eq!(outcome, expected_results().0);
    h.finish().expect("every buyer step replayed");

    let mut h = Replay::new(through_json(&tc));
    let mut ep = Endpoint::new(Role::Coordinator);
    let relayed = rt
        .block_on(coordinator(&mut h, &mut ep))
        .expect("coordinator replays");
    assert_eq!(relayed, 3);
    h.finish().expect("every coordinator step replayed");

    let mut h = Replay::new(through_json(&ts));
    let mut ep = Endpoint::new(Role::Seller);
    let receipts = rt
        .block_on(seller(&mut h, &mut ep, MIN_PRICE))
        .expect("seller replays");
    assert_eq!(receipts, 2);
    h.finish().expect("every seller step replayed");
    // No endpoint ever had a session.
    assert_eq!(ep.active_channel_count(), 0);
}

#[test]
fn a_changed_role_reports_the_step_where_it_diverged() {
    let [_, _, ts] = record();
    // The seller's minimum price went up to 38. Its refusal of the chair at
    // 15 now says so: the payload of the second round's refusal differs.
    let mut h = Replay::new(ts.clone());
    let mut ep = Endpoint::new(Role::Seller);
    let err = runtime()
        .block_on(seller(&mut h, &mut ep, 38))
        .expect_err("the changed seller diverges");

    // Steps of the seller per round: offer, recv, choose, send. The second
    // round's send is step 8.
    let d = h.divergence().expect("the divergence is kept").clone();
    assert_eq!(d.step, 8);
    assert_eq!(d.what, "payload");
    let recorded = d.recorded.as_ref().expect("a recorded step");
    assert_eq!(recorded.op, OpKind::Send);
    assert_eq!(recorded.msg.as_deref(), Some("Refusal"));
    let attempted = d.attempted.as_ref().expect("an attempted step");
    assert_eq!(attempted.msg.as_deref(), Some("Refusal"));
    assert_ne!(attempted.payload, recorded.payload);
    assert_eq!(h.position(), 7);

    match &err {
        ChoreographyError::ProtocolViolation {
            peer,
            violation:
                Violation::OutOfProtocol {
                    expected,
                    attempted,
                },
            ..
        } => {
            assert_eq!(peer, "Coordinator");
            assert_eq!(
                expected,
                "step 8: send Refusal to Coordinator (30 payload bytes) (payload differs)"
            );
            assert_eq!(attempted, "send Refusal to Coordinator (30 payload bytes)");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("send to Coordinator: protocol violation: expected step 8")
    );
    // The replay stays diverged.
    assert_eq!(
        h.finish().expect_err("still diverged").to_string(),
        err.to_string()
    );
}

#[test]
fn a_changed_payload_is_a_divergence_too() {
    let [tb, _, _] = record();
    let mut changed = offers();
    changed[1].price = 16;
    let mut h = Replay::new(tb);
    let mut ep = Endpoint::new(Role::Buyer);
    let err = runtime()
        .block_on(buyer(&mut h, &mut ep, changed))
        .expect_err("the changed buyer diverges");
    let d = h.divergence().expect("diverged");
    // Buyer steps per round: choose, send, offer, recv; round 2's send.
    assert_eq!(d.step, 6);
    assert_eq!(d.what, "payload");
    assert!(
        err.to_string()
            .contains("step 6: send Offer to Coordinator"),
        "{err}"
    );
}
