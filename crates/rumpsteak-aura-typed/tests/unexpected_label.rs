//! A peer that chooses a label outside the branch's gets
//! `UnexpectedLabel` from the typed `branch`, with and without a deadline.

mod common;

use std::time::Duration;

use common::{Handler, mesh, within};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_typed::Deadline;

rumpsteak_aura_macros::protocol! {
    /// `A` turns `B` on or off.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod toggle = "
        roles A, B;
        choice at A {
            on: { A -> B: On; }
            off: { A -> B: Off; }
        }";
}

use toggle::Role;

/// The error's received and expected labels.
fn labels(e: &ChoreographyError) -> (&str, Vec<&str>) {
    match e {
        ChoreographyError::UnexpectedLabel {
            received, expected, ..
        } => (received, expected.iter().map(|l| l.as_str()).collect()),
        other => panic!("expected UnexpectedLabel, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_outside_the_branch_is_unexpected_label() {
    let mut eps = mesh(&Role::ALL).into_iter();
    let (mut ea, mut eb) = (eps.next().unwrap(), eps.next().unwrap());
    // The untyped A chooses a label the protocol does not have.
    let mut h = Handler::new();
    h.choose(&mut ea, Role::B, Label("maybe")).await.unwrap();
    let b = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = toggle::b::start(&mut h, &mut eb).unwrap();
        let e = within(10, s.branch()).await.unwrap_err();
        (eb, e)
    });
    let (eb, e) = within(10, b).await.unwrap();
    assert_eq!(labels(&e), ("maybe", vec!["on", "off"]));
    assert_eq!(
        e.to_string(),
        "offer from A: peer chose `maybe`, expected one of [`on`, `off`]"
    );
    // The failed step dropped B's state, which abandoned A.
    assert!(eb.get_metadata(&Role::A).unwrap().is_abandoned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_outside_the_branch_under_a_deadline_is_a_failure() {
    let mut eps = mesh(&Role::ALL).into_iter();
    let (mut ea, mut eb) = (eps.next().unwrap(), eps.next().unwrap());
    let mut h = Handler::new();
    h.choose(&mut ea, Role::B, Label("maybe")).await.unwrap();
    let s = toggle::b::start(&mut h, &mut eb).unwrap();
    match s.branch_timeout(Duration::from_secs(10)).await {
        Err(Deadline::Failed(e)) => assert_eq!(labels(&e), ("maybe", vec!["on", "off"])),
        other => panic!("expected a failure, got {other:?}"),
    }
}
