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
            detail: "after `recv Decision from Coordinator` in both, `send Receipt(Receipt) to Buyer` against `end`".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "role `Seller` behaves differently in branches `accept` and `reject` of the choice at `Buyer` but is never told which was taken (after `recv Decision from Coordinator` in both, `send Receipt(Receipt) to Buyer` against `end`)"
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
             c: { A -> B: Z; B -> C: Same; C -> B: Extra; }
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
        (
            "A -> B: Go;\n choice at A { x: { A -> B: X; } x: { A -> B: Y; } }",
            (2, 2),
        ),
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

/// Where `locate` puts the error `validate` finds in `src`.
fn located(src: &str) -> Option<(usize, usize)> {
    let p = Protocol::parse(src).unwrap();
    let err = p.validate().unwrap_err();
    p.locate(&err)
}

#[test]
fn locate_tells_apart_two_choices_with_the_same_chooser_and_labels() {
    // Only the second choice leaves `C` untold.
    let src = "roles A, B, C;
choice at A { x: { A -> B: X; } y: { A -> B: Y; } }
  choice at A { x: { A -> B: X; C -> B: Hi; } y: { A -> B: Y; } }";
    assert_eq!(located(src), Some((3, 3)));
}

#[test]
fn locate_points_at_the_outer_choice_not_an_inner_one_alike() {
    // The outer choice leaves `C` untold; the inner one, at the same role
    // with the same labels, is fine.
    let src = "roles A, B, C;
choice at A {
    x: { A -> B: X; choice at A { x: { A -> B: X; } y: { A -> B: Y; } } C -> B: Hi; }
    y: { A -> B: Y; }
}";
    assert_eq!(located(src), Some((2, 1)));
}

#[test]
fn locate_tells_a_self_message_from_a_message_with_the_same_sender_and_label() {
    assert_eq!(
        located("roles A, B;\nA -> B: X;\n  A -> A: X;"),
        Some((3, 3))
    );
}

#[test]
fn locate_points_at_the_unguarded_loop_not_a_valid_one_of_the_same_name() {
    let src = "roles A, B;
choice at A {
  x: { rec L { A -> B: Tick; continue L; } }
  y: { rec L { continue L; } }
}";
    assert_eq!(located(src), Some((4, 8)));
}

#[test]
fn locate_finds_a_copied_statement_where_it_was_written() {
    // Statements after a choice are copied into each branch; an error in
    // any copy is at the one place the statement was written.
    let cases: [(&str, (usize, usize)); 3] = [
        (
            "choice at A { x: { A -> B: X; } y: { A -> B: Y; } }\n B -> B: Oops;",
            (2, 2),
        ),
        (
            "choice at A { x: { A -> B: X; } y: { A -> B: Y; } }\n rec L { continue L; }",
            (2, 2),
        ),
        (
            "roles A, B, C;
rec L {
    choice at A { more: { A -> B: M; continue L; } stop: { A -> B: S; } }
}
  choice at B { x: { B -> A: X; C -> A: Hi; } y: { B -> A: Y; } }",
            (5, 3),
        ),
    ];
    for (src, at) in cases {
        assert_eq!(located(src), Some(at), "{src}");
    }
}

#[test]
fn locate_points_at_the_error_of_the_role_projected() {
    let p = Protocol::parse(NEGOTIATION_UNTOLD).unwrap();
    let err = p.project("Seller").unwrap_err();
    assert_eq!(p.locate(&err), Some((7, 1)));
    // An error this protocol does not have is nowhere in it.
    let other = ProjectionError::SelfMessage {
        role: "Seller".into(),
        label: "Quote".into(),
    };
    assert_eq!(p.locate(&other), None);
    assert_eq!(
        p.locate(&ProjectionError::UnknownRole {
            role: "Carol".into()
        }),
        None
    );
}

#[test]
fn locate_works_as_deep_as_the_parser_allows() {
    // In a test thread's small stack: the longest run of messages, with
    // the self message last.
    let long = format!("{}B -> B: Oops;", "A -> B: Ping;\n".repeat(998));
    assert_eq!(located(&long), Some((999, 1)));
    // As many blocks deep as allowed, all alike, the innermost faulty.
    let mut nested = "roles A, B, C;\n".to_owned();
    nested.push_str(&"choice at A { x: { A -> B: X;\n".repeat(127));
    nested.push_str("  choice at A { x: { A -> B: X; } y: { A -> B: Y; C -> B: Hi; } }\n");
    nested.push_str(&"} }\n".repeat(127));
    assert_eq!(located(&nested), Some((129, 3)));
}
