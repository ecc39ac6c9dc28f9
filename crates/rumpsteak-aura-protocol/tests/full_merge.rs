//! Full merge: a role that is not told of a choice may receive messages
//! with distinct labels from one sender in different branches. Its local
//! type branches on the message received (the sender sends the message's
//! label first), its monitor accepts each of them and nothing else, and
//! what stays refused says why.

mod common;

use common::checker::check_protocol;
use common::protocols::MERGED_RECEIVE;
use rumpsteak_aura::{ProtocolMonitor, Step, Violation};
use rumpsteak_aura_protocol::{ProjectionError, Protocol};

fn projections(src: &str) -> Vec<String> {
    let p = Protocol::parse(src).unwrap();
    p.validate().unwrap_or_else(|e| panic!("{e}"));
    p.roles()
        .iter()
        .map(|r| p.project(r).unwrap().to_string())
        .collect()
}

fn refused(src: &str) -> ProjectionError {
    Protocol::parse(src).unwrap().validate().unwrap_err()
}

#[test]
fn the_issue_protocol_projects_to_a_branch_on_the_message_received() {
    let got = projections(MERGED_RECEIVE);
    assert_eq!(
        got[0],
        "select to B { Foo: { send Foo to B; end } Bar: { send Bar to B; end } }"
    );
    assert_eq!(
        got[1],
        "branch from A { Foo: { recv Foo from A; select to C { Foo: { send Foo to C; end } } } Bar: { recv Bar from A; select to C { Bar: { send Bar to C; end } } } }"
    );
    assert_eq!(
        got[2],
        "branch from B { Foo: { recv Foo from B; end } Bar: { recv Bar from B; end } }"
    );
    check_protocol(&Protocol::parse(MERGED_RECEIVE).unwrap()).unwrap();
}

#[test]
fn the_monitor_accepts_each_message_and_nothing_else() {
    let p = Protocol::parse(MERGED_RECEIVE).unwrap();
    for label in ["Foo", "Bar"] {
        let mut c = p.monitor_for("C").unwrap();
        c.step(&Step::Offer {
            from: "B",
            label: None,
        })
        .unwrap();
        c.step(&Step::Offer {
            from: "B",
            label: Some(label),
        })
        .unwrap();
        // The message of the other branch is refused once the label is in.
        let other = if label == "Foo" { "Bar" } else { "Foo" };
        assert!(matches!(
            c.check(&Step::Recv {
                from: "B",
                message: other
            }),
            Err(Violation::OutOfProtocol { .. })
        ));
        c.step(&Step::Recv {
            from: "B",
            message: label,
        })
        .unwrap();
        assert!(c.is_complete());
    }
    let mut c = p.monitor_for("C").unwrap();
    assert_eq!(
        c.check(&Step::Offer {
            from: "B",
            label: Some("Baz")
        }),
        Err(Violation::OutOfProtocol {
            expected: "offer Foo|Bar from B".into(),
            attempted: "offer Baz from B".into(),
        })
    );
    // Nothing but the branch: not a receive straight away, not from A.
    assert!(
        c.check(&Step::Recv {
            from: "B",
            message: "Foo"
        })
        .is_err()
    );
    assert!(
        c.step(&Step::Offer {
            from: "A",
            label: None
        })
        .is_err()
    );
    // The sender's side: the label, then the message.
    let mut b = p.monitor_for("B").unwrap();
    for step in [
        Step::Offer {
            from: "A",
            label: Some("Bar"),
        },
        Step::Recv {
            from: "A",
            message: "Bar",
        },
        Step::Choose {
            to: "C",
            label: "Bar",
        },
        Step::Send {
            to: "C",
            message: "Bar",
        },
    ] {
        b.step(&step).unwrap_or_else(|v| panic!("{step}: {v}"));
    }
    assert!(b.is_complete());
}

#[test]
fn the_branches_continue_differently_after_the_message() {
    let got = projections(
        "roles A, B, C;
         choice at A {
             buy: { A -> B: Buy(u32); B -> C: Order(u32); C -> B: Receipt(Text); }
             wait: { A -> B: Wait; B -> C: Hold(); }
         }",
    );
    assert_eq!(
        got[2],
        "branch from B { Order: { recv Order(u32) from B; send Receipt(Text) to B; end } Hold: { recv Hold from B; end } }"
    );
}

#[test]
fn an_equal_first_message_merges_and_the_next_one_branches() {
    let got = projections(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; B -> C: Hello; B -> C: Left; }
             y: { A -> B: Y; B -> C: Hello; B -> C: Right; }
         }",
    );
    assert_eq!(
        got[2],
        "recv Hello from B; branch from B { Left: { recv Left from B; end } Right: { recv Right from B; end } }"
    );
    // B sends `Hello` plainly and the label before `Left` or `Right`.
    assert!(
        got[1].contains("send Hello to C; select to C { Left: { send Left to C; end } }"),
        "{}",
        got[1]
    );
}

#[test]
fn a_received_message_merges_with_a_choice_of_the_same_sender() {
    let got = projections(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; choice at B { l: { B -> C: L; } r: { B -> C: R; } } }
             y: { A -> B: Y; B -> C: Other; }
         }",
    );
    assert_eq!(
        got[2],
        "branch from B { l: { recv L from B; end } r: { recv R from B; end } Other: { recv Other from B; end } }"
    );
}

#[test]
fn the_same_label_in_two_branches_must_go_on_alike() {
    let e = refused(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; B -> C: Same; C -> B: Thanks; }
             y: { A -> B: Y; B -> C: Same; }
         }",
    );
    assert_eq!(
        e,
        ProjectionError::NotTold {
            role: "C".into(),
            chooser: "A".into(),
            left: "x".into(),
            right: "y".into(),
            detail: "after `recv Same from B` in both, `send Thanks to B` against `end`".into(),
        }
    );
}

#[test]
fn the_same_label_with_two_payloads_is_refused() {
    let e = refused(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; B -> C: Val(u32); }
             y: { A -> B: Y; B -> C: Val(Text); }
         }",
    );
    let ProjectionError::NotTold { detail, .. } = &e else {
        panic!("unexpected {e:?}");
    };
    assert_eq!(
        detail,
        "`recv Val(u32) from B` against `recv Val(Text) from B`: one label, two payloads"
    );
}

#[test]
fn sends_must_be_identical() {
    let e = refused(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; C -> B: Yes; }
             y: { A -> B: Y; C -> B: No; }
         }",
    );
    assert_eq!(
        e,
        ProjectionError::NotTold {
            role: "C".into(),
            chooser: "A".into(),
            left: "x".into(),
            right: "y".into(),
            detail: "`send Yes to B` against `send No to B`".into(),
        }
    );
}

#[test]
fn selects_with_different_labels_name_the_labels() {
    let e = refused(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; choice at C { p: { C -> B: P; } q: { C -> B: Q; } } }
             y: { A -> B: Y; choice at C { p: { C -> B: P; } r: { C -> B: R; } } }
         }",
    );
    let ProjectionError::NotTold { role, detail, .. } = &e else {
        panic!("unexpected {e:?}");
    };
    assert_eq!(role, "C");
    assert_eq!(
        detail,
        "`select to B { p, q }` against `select to B { p, r }`: a role that is not told must offer the same labels"
    );
}

#[test]
fn messages_from_two_senders_do_not_merge() {
    let e = refused(
        "roles A, B, C, D;
         choice at A {
             x: { A -> B: X; B -> C: Go; A -> D: X; }
             y: { A -> B: Y; A -> D: Y; D -> C: Go; }
         }",
    );
    let ProjectionError::NotTold { role, detail, .. } = &e else {
        panic!("unexpected {e:?}");
    };
    assert_eq!(role, "C");
    assert_eq!(detail, "`recv Go from B` against `recv Go from D`");
}

#[test]
fn a_message_label_that_a_choice_of_the_sender_also_uses_must_mean_the_same() {
    // In `x` the label `Foo` comes before the message `Foo`; in `y` it is
    // B's choice, followed by `Bar`: C could not tell what follows it.
    let e = refused(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; B -> C: Foo; }
             y: { A -> B: Y; choice at B { Foo: { B -> C: Bar; } Baz: { B -> C: Qux; } } }
         }",
    );
    let ProjectionError::NotTold { role, detail, .. } = &e else {
        panic!("unexpected {e:?}");
    };
    assert_eq!(role, "C");
    assert_eq!(
        detail,
        "label `Foo` from B is a message in one branch, `recv Bar from B` against `recv Foo from B`"
    );
    // With the same message after the label, both readings agree.
    let ok = Protocol::parse(
        "roles A, B, C;
         choice at A {
             x: { A -> B: X; B -> C: Foo; }
             y: { A -> B: Y; choice at B { Foo: { B -> C: Foo; } Baz: { B -> C: Qux; } } }
         }",
    )
    .unwrap();
    ok.validate().unwrap();
    assert_eq!(
        ok.project("C").unwrap().to_string(),
        "branch from B { Foo: { recv Foo from B; end } Baz: { recv Qux from B; end } }"
    );
    check_protocol(&ok).unwrap();
}
