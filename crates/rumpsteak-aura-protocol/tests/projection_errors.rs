//! Every way a protocol fails to project, each naming the roles, branches
//! and loops involved.

mod common;

use common::protocols::NEGOTIATION_UNTOLD;
use rumpsteak_aura_protocol::{GlobalType, LocalType, Monitor, ProjectionError, Protocol};

fn validate(src: &str) -> ProjectionError {
    Protocol::parse(src).unwrap().validate().unwrap_err()
}

#[test]
fn untold_role_that_must_behave_differently() {
    let e = validate(NEGOTIATION_UNTOLD);
    assert_eq!(
        e,
        ProjectionError::NotTold {
            role: "Seller".into(),
            chooser: "Buyer".into(),
            left: "accept".into(),
            right: "reject".into(),
            detail: "`recv Confirm from Coordinator` against `recv Cancel from Coordinator`".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "role `Seller` behaves differently in branches `accept` and `reject` of the choice at `Buyer` but is never told which was taken (`recv Confirm from Coordinator` against `recv Cancel from Coordinator`)"
    );
    // The roles that are told still project.
    let p = Protocol::parse(NEGOTIATION_UNTOLD).unwrap();
    assert!(p.project("Coordinator").is_ok());
    assert_eq!(p.project("Seller").unwrap_err(), e);
    assert_eq!(p.monitor_for("Seller").unwrap_err(), e);
}

#[test]
fn untold_role_names_the_two_clashing_branches() {
    // C cannot tell `b` from `c` (nor `a` from `c`); `a` and `b` agree.
    let e = validate(
        "choice at A {
             a: { A -> B: X; B -> C: Same; }
             b: { A -> B: Y; B -> C: Same; }
             c: { A -> B: Z; B -> C: Other; }
         }",
    );
    match e {
        ProjectionError::NotTold {
            role,
            chooser,
            left,
            right,
            ..
        } => assert_eq!(
            (
                role.as_str(),
                chooser.as_str(),
                left.as_str(),
                right.as_str()
            ),
            ("C", "A", "a", "c")
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn untold_role_in_a_loop_cannot_know_whether_to_go_on() {
    let e = validate(
        "rec L { choice at A { more: { A -> B: M; B -> C: M; continue L; } done: { A -> B: D; } } }",
    );
    assert_eq!(
        e,
        ProjectionError::NotTold {
            role: "C".into(),
            chooser: "A".into(),
            left: "more".into(),
            right: "done".into(),
            detail: "`recv M from B` against `end`".into(),
        }
    );
}

#[test]
fn self_message() {
    let e = validate("A -> B: Hi; B -> B: Note(Text);");
    assert_eq!(
        e,
        ProjectionError::SelfMessage {
            role: "B".into(),
            label: "Note".into()
        }
    );
    assert_eq!(e.to_string(), "role `B` sends `Note` to itself");
}

#[test]
fn duplicate_branch_label() {
    let e = validate("choice at A { x: { A -> B: M; } x: { A -> B: N; } }");
    assert_eq!(
        e,
        ProjectionError::DuplicateLabel {
            chooser: "A".into(),
            label: "x".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "the choice at `A` has two branches labelled `x`"
    );
}

#[test]
fn choice_without_branches() {
    let e = validate("roles A, B; A -> B: Hi; choice at B { }");
    assert_eq!(
        e,
        ProjectionError::EmptyChoice {
            chooser: "B".into()
        }
    );
    assert_eq!(e.to_string(), "the choice at `B` has no branches");
}

#[test]
fn choice_that_tells_nobody() {
    let e = validate("choice at A { x: { B -> C: M; } y: { B -> C: M; } }");
    assert_eq!(
        e,
        ProjectionError::ChoiceTellsNobody {
            chooser: "A".into(),
            labels: vec!["x".into(), "y".into()]
        }
    );
    assert!(e.to_string().contains("`x`, `y` tells nobody"));
}

#[test]
fn unknown_and_duplicate_roles() {
    let p = Protocol::parse("A -> B: Hi;").unwrap();
    assert_eq!(
        p.project("Carol").unwrap_err(),
        ProjectionError::UnknownRole {
            role: "Carol".into()
        }
    );
    let g = GlobalType::message("A", "B", "Hi", None, GlobalType::End);
    assert_eq!(
        Protocol::with_roles(["A"], g.clone())
            .unwrap_err()
            .to_string(),
        "role `B` is not a role of this protocol"
    );
    assert_eq!(
        Protocol::with_roles(["A", "B", "A"], g).unwrap_err(),
        ProjectionError::DuplicateRole { role: "A".into() }
    );
}

#[test]
fn unbound_loop() {
    let g = GlobalType::message("A", "B", "Hi", None, GlobalType::continue_loop("Again"));
    let e = Protocol::new(g).validate().unwrap_err();
    assert_eq!(
        e,
        ProjectionError::UnboundLoop {
            name: "Again".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "`continue Again` is outside every loop named `Again`"
    );
}

#[test]
fn unguarded_loops() {
    assert_eq!(
        validate("A -> B: Hi; rec X { continue X; }"),
        ProjectionError::UnguardedLoop { name: "X".into() }
    );
    assert_eq!(
        validate("A -> B: Hi; rec X { rec Y { continue X; } }"),
        ProjectionError::UnguardedLoop { name: "X".into() }
    );
    // A choice guards the loop: the chooser and the told roles act.
    assert!(
        Protocol::parse("rec X { choice at A { again: { continue X; } stop: { A -> B: S; } } }")
            .unwrap()
            .validate()
            .is_ok()
    );
}

#[test]
fn shadowed_loop() {
    let inner = GlobalType::rec(
        "X",
        GlobalType::message("B", "A", "In", None, GlobalType::continue_loop("X")),
    );
    let g = GlobalType::rec("X", GlobalType::message("A", "B", "Out", None, inner));
    let e = Protocol::new(g).validate().unwrap_err();
    assert_eq!(e, ProjectionError::ShadowedLoop { name: "X".into() });
}

#[test]
fn monitors_refuse_malformed_local_types() {
    let unbound = LocalType::Send {
        to: "B".into(),
        label: "Hi".into(),
        payload: None,
        then: Box::new(LocalType::Continue { name: "L".into() }),
    };
    assert_eq!(
        Monitor::new("A", &unbound).unwrap_err(),
        ProjectionError::UnboundLoop { name: "L".into() }
    );
    let spin = LocalType::Rec {
        name: "L".into(),
        body: Box::new(LocalType::Continue { name: "L".into() }),
    };
    assert_eq!(
        Monitor::new("A", &spin).unwrap_err(),
        ProjectionError::UnguardedLoop { name: "L".into() }
    );
}

#[test]
fn locate_points_at_the_statement_each_error_names() {
    let cases: [(&str, (usize, usize)); 5] = [
        ("A -> B: Ping;\n  B -> B: Echo;", (2, 3)),
        ("A -> B: Go;\nchoice at A {\n}", (2, 1)),
        ("A -> B: Go;\n choice at A { x: { A -> B: X; } x: { A -> B: Y; } }", (2, 2)),
        ("roles A, B;\n\nrec Loop { continue Loop; }", (3, 1)),
        (
            "roles A, B, C;\nA -> C: Go;\n   choice at A { x: { A -> B: X; C -> B: Hi; } y: { A -> B: Y; } }",
            (3, 4),
        ),
    ];
    for (src, at) in cases {
        let p = Protocol::parse(src).unwrap();
        let err = p.validate().unwrap_err();
        assert_eq!(p.locate(&err), Some(at), "{src}: {err}");
    }
    // A protocol built by hand has no text to point into.
    let p = Protocol::parse("A -> A: Ping;").unwrap();
    let err = p.validate().unwrap_err();
    let by_hand = Protocol::new(p.global().clone());
    assert_eq!(by_hand.validate().unwrap_err(), err);
    assert_eq!(by_hand.locate(&err), None);
}
