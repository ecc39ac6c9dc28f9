//! A transcript is data a user or a peer may have edited: replaying it
//! never touches the handler's process-wide label table, and a label
//! longer than the wire allows is a divergence. Alone in its binary,
//! because that table is process-wide.

mod common;

use common::*;
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_handler::{MAX_INTERNED_LABELS, SimpleChannel, intern_label};
use rumpsteak_aura_layers::{Recording, Replay, Transcript};

/// A's side of one `offer` from B, who chose `start`.
fn one_offer() -> Transcript {
    let rec = Recording::new(Handler::new());
    let (x, y) = SimpleChannel::pair();
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, rec.tap(&Role::B, x));
    let mut b = Endpoint::new(Role::B);
    b.register_channel(Role::A, y);
    let mut h = rec.clone();
    runtime().block_on(async {
        Handler::new()
            .choose(&mut b, Role::A, Label("start"))
            .await
            .expect("choose");
        assert_eq!(
            h.offer(&mut a, Role::B).await.expect("offer"),
            Label("start")
        );
    });
    rec.transcript()
}

#[test]
fn many_distinct_replayed_labels_leave_the_process_table_alone() {
    let mut t = one_offer();
    let template = t.entries[0].clone();
    let n = MAX_INTERNED_LABELS + 100;
    t.entries = (0..n)
        .map(|i| {
            let mut e = template.clone();
            e.label = Some(format!("edited-label-{i}"));
            e
        })
        .collect();
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    runtime().block_on(async {
        for i in 0..n {
            let l = h.offer(&mut ep, Role::B).await.expect("replayed offer");
            assert_eq!(l.0, format!("edited-label-{i}"));
        }
    });
    h.finish().expect("every step");
    // A real offer may still learn a label from a peer.
    let learned = intern_label("a-label-a-real-peer-sends-later");
    assert!(learned.is_ok(), "{learned:?}");
}

#[test]
fn a_label_longer_than_the_wire_allows_is_a_divergence() {
    let mut t = one_offer();
    t.entries[0].label = Some("x".repeat(100_000));
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    let e = runtime()
        .block_on(h.offer(&mut ep, Role::B))
        .expect_err("too long");
    let ChoreographyError::ProtocolViolation { .. } = &e else {
        panic!("not a divergence: {e}");
    };
    let text = e.to_string();
    assert!(
        text.contains("recorded label longer than 255 bytes"),
        "{text}"
    );
    assert!(text.len() < 1_000, "the label is not printed whole");
    assert_eq!(h.divergence().map(|d| d.what), Some("label too long"));
}

#[test]
fn known_labels_are_returned_as_given() {
    const START: Label = Label("start");
    let t = one_offer();
    let mut h = Replay::new(t.clone()).with_labels(&[START]);
    let mut ep = Endpoint::new(Role::A);
    let l = runtime()
        .block_on(h.offer(&mut ep, Role::B))
        .expect("offer");
    assert!(std::ptr::eq(l.0, START.0));
    // Without, a copy that compares equal.
    let mut h = Replay::new(t);
    let l = runtime()
        .block_on(h.offer(&mut ep, Role::B))
        .expect("offer");
    assert_eq!(l, START);
}
