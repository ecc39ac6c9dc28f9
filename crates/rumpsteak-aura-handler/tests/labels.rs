//! Labels: strict offers, and bounded memory however many labels arrive.

mod common;

use common::{Handler, Party, alice_bob};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

#[tokio::test]
async fn offer_among_accepts_known_labels() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.choose(&mut a, Party::Bob, REJECT).await.unwrap();
    let got = h
        .offer_among(&mut b, Party::Alice, &[ACCEPT, REJECT])
        .await
        .unwrap();
    assert_eq!(got, REJECT);
    // The returned label is the caller's own static, not a copy.
    assert!(std::ptr::eq(got.0, REJECT.0));
}

#[tokio::test]
async fn offer_among_names_both_sides_of_a_mismatch() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.choose(&mut a, Party::Bob, Label("maybe")).await.unwrap();
    let e = h
        .offer_among(&mut b, Party::Alice, &[ACCEPT, REJECT])
        .await
        .unwrap_err();
    match &e {
        ChoreographyError::UnexpectedLabel {
            peer,
            expected,
            received,
            ..
        } => {
            assert_eq!(peer, "Alice");
            assert_eq!(expected, &vec![ACCEPT, REJECT]);
            assert_eq!(received, "maybe");
        }
        other => panic!("expected UnexpectedLabel, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "offer from Alice: peer chose `maybe`, expected one of [`accept`, `reject`]"
    );
    // The session goes on.
    h.choose(&mut a, Party::Bob, ACCEPT).await.unwrap();
    assert_eq!(
        h.offer_among(&mut b, Party::Alice, &[ACCEPT, REJECT])
            .await
            .unwrap(),
        ACCEPT
    );
}

#[tokio::test]
async fn a_repeated_label_is_interned_once() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    let mut first = None;
    for _ in 0..10_000 {
        h.choose(&mut a, Party::Bob, Label("again")).await.unwrap();
        let got = h.offer(&mut b, Party::Alice).await.unwrap();
        assert_eq!(got, Label("again"));
        // Every offer returns the very same interned string: no new memory.
        let ptr = *first.get_or_insert(got.0.as_ptr());
        assert_eq!(got.0.as_ptr(), ptr);
    }
}
