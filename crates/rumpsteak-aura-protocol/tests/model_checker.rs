//! The bounded model checker used as the test oracle: it finds each kind of
//! fault in a small hand-built set of local types, and every protocol the
//! tests accept passes it.

mod common;

use common::checker::{Fault, Item, check, check_protocol};
use common::protocols::{ACCEPTED, NEGOTIATION, PING_PONG, RING, TWO_BUYER};
use rumpsteak_aura_protocol::{LocalType, Protocol};

fn send(to: &str, label: &str, then: LocalType) -> LocalType {
    LocalType::Send {
        to: to.into(),
        label: label.into(),
        payload: None,
        then: Box::new(then),
    }
}

fn recv(from: &str, label: &str, then: LocalType) -> LocalType {
    LocalType::Recv {
        from: from.into(),
        label: label.into(),
        payload: None,
        then: Box::new(then),
    }
}

fn set(roles: &[(&str, LocalType)]) -> Vec<(String, LocalType)> {
    roles
        .iter()
        .map(|(r, l)| ((*r).to_owned(), l.clone()))
        .collect()
}

#[test]
fn finds_a_deadlock_with_its_trace() {
    // A and B each wait for the other; C's message to A gets through first.
    let roles = set(&[
        ("A", recv("C", "Hi", recv("B", "X", LocalType::End))),
        ("B", recv("A", "Y", send("A", "X", LocalType::End))),
        ("C", send("A", "Hi", LocalType::End)),
    ]);
    match check(&roles, 3, 1000) {
        Err(Fault::Deadlock { waiting, trace }) => {
            assert_eq!(
                waiting,
                [
                    "A waits for message X from B",
                    "B waits for message Y from A"
                ]
            );
            assert_eq!(trace, ["C: send Hi to A", "A: recv Hi from C"]);
        }
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

#[test]
fn finds_an_orphan_message_with_its_trace() {
    // B ends after one message; A sends two.
    let roles = set(&[
        ("A", send("B", "One", send("B", "Two", LocalType::End))),
        ("B", recv("A", "One", LocalType::End)),
    ]);
    let fault = check(&roles, 3, 1000).unwrap_err();
    match &fault {
        Fault::Orphan {
            role,
            from,
            left,
            trace,
        } => {
            assert_eq!((role.as_str(), from.as_str()), ("B", "A"));
            assert_eq!(*left, Item::Msg("Two".into(), None));
            assert_eq!(trace.len(), 3, "{trace:?}");
            for step in ["A: send One to B", "A: send Two to B", "B: recv One from A"] {
                assert!(trace.contains(&step.to_owned()), "{trace:?}");
            }
        }
        other => panic!("expected an orphan, got {other:?}"),
    }
    assert!(
        fault
            .to_string()
            .starts_with("orphan: B ended with message Two from A left")
    );
}

#[test]
fn finds_an_unexpected_message_and_an_unexpected_label() {
    let roles = set(&[
        ("A", send("B", "Yes", LocalType::End)),
        ("B", recv("A", "No", LocalType::End)),
    ]);
    match check(&roles, 3, 1000) {
        Err(Fault::Unexpected {
            role,
            expected,
            got,
            trace,
            ..
        }) => {
            assert_eq!(role, "B");
            assert_eq!(expected, "message No");
            assert_eq!(got, Item::Msg("Yes".into(), None));
            assert_eq!(trace, ["A: send Yes to B"]);
        }
        other => panic!("expected an unexpected message, got {other:?}"),
    }
    // A label where a message is due.
    let roles = set(&[
        (
            "A",
            LocalType::Select {
                to: "B".into(),
                branches: vec![("go".into(), LocalType::End)],
            },
        ),
        ("B", recv("A", "Go", LocalType::End)),
    ]);
    assert!(matches!(
        check(&roles, 3, 1000),
        Err(Fault::Unexpected { got: Item::Label(l), .. }) if l == "go"
    ));
}

#[test]
fn a_correct_set_passes_exhaustively() {
    let roles = set(&[
        ("A", send("B", "Ping", recv("B", "Pong", LocalType::End))),
        ("B", recv("A", "Ping", send("A", "Pong", LocalType::End))),
    ]);
    let explored = check(&roles, 3, 1000).unwrap();
    assert!(explored.exhaustive && explored.can_finish);
    assert_eq!(explored.states, 5);
}

#[test]
fn every_protocol_the_tests_accept_passes() {
    for src in [PING_PONG, TWO_BUYER, NEGOTIATION, RING]
        .into_iter()
        .chain(ACCEPTED.iter().copied())
    {
        let p = Protocol::parse(src).unwrap();
        p.validate().unwrap_or_else(|e| panic!("{e}\n{src}"));
        let explored = check_protocol(&p).unwrap_or_else(|f| panic!("{f}\nprotocol:\n{p}"));
        assert!(explored.can_finish, "no run ends:\n{p}");
        assert!(explored.states > 1, "nothing explored:\n{p}");
    }
}
