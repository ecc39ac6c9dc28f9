//! The process-wide label table is capped: a peer that sends endless new
//! labels gets errors, not our memory. In its own test binary because it
//! fills the table for the whole process.

mod common;

use common::{Handler, Party};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Violation};
use rumpsteak_aura_handler::{MAX_INTERNED_LABELS, SimpleChannel, intern_label};
use rumpsteak_aura_transport::wire;

#[tokio::test]
async fn endless_new_labels_hit_a_cap_not_the_heap() {
    // A hostile peer sends more distinct labels than the table keeps.
    let (mut raw, ch) = SimpleChannel::pair();
    let mut b = rumpsteak_aura_handler::RumpsteakEndpoint::new(Party::Bob);
    b.register_channel(Party::Alice, ch);
    let mut h = Handler::new();
    let mut refused = 0;
    for i in 0..(MAX_INTERNED_LABELS + 50) {
        raw.send(wire::encode_label(&format!("label-{i}")).unwrap())
            .await
            .unwrap();
        match h.offer(&mut b, Party::Alice).await {
            Ok(l) => assert_eq!(l.0, format!("label-{i}")),
            Err(ChoreographyError::ProtocolViolation {
                violation: Violation::TooManyLabels { limit, .. },
                ..
            }) => {
                assert_eq!(limit, MAX_INTERNED_LABELS);
                refused += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(refused >= 50, "refused {refused}");
    // Labels already known keep working once the table is full.
    assert!(intern_label("label-0").is_ok());
    assert!(intern_label("never-seen-before").is_err());
    // And a strict offer needs no table space at all.
    raw.send(wire::encode_label("fresh").unwrap())
        .await
        .unwrap();
    assert_eq!(
        h.offer_among(&mut b, Party::Alice, &[Label("fresh")])
            .await
            .unwrap(),
        Label("fresh")
    );
}
