//! The label table is capped per session and per process: a peer that sends
//! endless new labels gets errors, not our memory, and cannot lock other
//! sessions out of the labels the application registered. In its own test
//! binary because it fills the table for the whole process.

mod common;

use common::{Handler, Party};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Violation};
use rumpsteak_aura_handler::{
    MAX_INTERNED_LABELS, MAX_LABELS_PER_SESSION, RumpsteakEndpoint, SimpleChannel, intern_label,
    register_labels,
};
use rumpsteak_aura_transport::wire;

fn hostile() -> (SimpleChannel, RumpsteakEndpoint<Party>) {
    let (raw, ch) = SimpleChannel::pair();
    let mut b = RumpsteakEndpoint::new(Party::Bob);
    b.register_channel(Party::Alice, ch);
    (raw, b)
}

/// Sends `count` fresh labels from a raw peer; returns how many were refused
/// and with which limit.
async fn flood(prefix: &str, count: usize) -> (usize, Option<usize>) {
    let (mut raw, mut b) = hostile();
    let mut h = Handler::new();
    let mut refused = 0;
    let mut limit_seen = None;
    for i in 0..count {
        let label = format!("{prefix}-{i}");
        raw.send(wire::encode_label(&label).unwrap()).await.unwrap();
        match h.offer(&mut b, Party::Alice).await {
            Ok(l) => assert_eq!(l.0, label),
            Err(ChoreographyError::ProtocolViolation {
                violation: Violation::TooManyLabels { limit, .. },
                ..
            }) => {
                refused += 1;
                limit_seen = Some(limit);
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    (refused, limit_seen)
}

#[tokio::test]
async fn endless_new_labels_hit_caps_not_the_heap() {
    const ACCEPT: Label = Label("accept");
    register_labels(&[ACCEPT]);

    // One session may teach at most its quota.
    let per_session = MAX_LABELS_PER_SESSION as usize;
    let (refused, limit) = flood("one", per_session + 10).await;
    assert_eq!(refused, 10);
    assert_eq!(limit, Some(per_session));

    // Many hostile sessions together hit the process-wide cap.
    let sessions = MAX_INTERNED_LABELS / per_session + 2;
    let mut total_refused = 0;
    let mut global_limit_seen = false;
    for s in 0..sessions {
        let (refused, limit) = flood(&format!("s{s}"), per_session).await;
        total_refused += refused;
        global_limit_seen |= limit == Some(MAX_INTERNED_LABELS);
    }
    assert!(global_limit_seen);
    assert!(total_refused >= per_session, "refused {total_refused}");

    // Labels learned before keep working, new ones are refused...
    assert!(intern_label("one-0").is_ok());
    assert!(intern_label("never-seen-before").is_err());

    // ...but a well-behaved session still gets the registered label, and a
    // strict offer needs no table space at all.
    let (mut a, mut b) = common::alice_bob();
    let mut h = Handler::new();
    h.choose(&mut a, Party::Bob, ACCEPT).await.unwrap();
    assert_eq!(h.offer(&mut b, Party::Alice).await.unwrap(), ACCEPT);
    h.choose(&mut a, Party::Bob, Label("fresh")).await.unwrap();
    assert_eq!(
        h.offer_among(&mut b, Party::Alice, &[Label("fresh")])
            .await
            .unwrap(),
        Label("fresh")
    );
}
