//! Bystanders skip loops: a role that takes no part in a loop's body waits
//! for what follows the loop; and a role that first hears from the chooser
//! after a `continue` is told of the choice.

mod common;

use common::checker::check_protocol;
use common::protocols::BYSTANDER;
use rumpsteak_aura::{ProtocolMonitor, Step};
use rumpsteak_aura_protocol::{LocalType, ProjectionError, Protocol};

fn projection(src: &str, role: &str) -> String {
    let p = Protocol::parse(src).unwrap();
    p.validate().unwrap_or_else(|e| panic!("{e}"));
    check_protocol(&p).unwrap_or_else(|f| panic!("{f}"));
    p.project(role).unwrap().to_string()
}

#[test]
fn the_issue_protocol_projects_and_runs() {
    let p = Protocol::parse(BYSTANDER).unwrap();
    p.validate().unwrap();
    assert_eq!(p.project("C").unwrap().to_string(), "recv Done from B; end");
    assert_eq!(
        p.project("B").unwrap().to_string(),
        "rec X { branch from A { more: { recv More from A; continue X } stop: { recv Stop from A; send Done to C; end } } }"
    );
    // A monitored run: B goes round twice, then tells C.
    let mut b = p.monitor_for("B").unwrap();
    let mut c = p.monitor_for("C").unwrap();
    for _ in 0..2 {
        b.step(&Step::Offer {
            from: "A",
            label: Some("more"),
        })
        .unwrap();
        b.step(&Step::Recv {
            from: "A",
            message: "More",
        })
        .unwrap();
        // C is still waiting for B, and nothing else.
        assert!(c.involves("B") && !c.involves("A"));
    }
    b.step(&Step::Offer {
        from: "A",
        label: Some("stop"),
    })
    .unwrap();
    b.step(&Step::Recv {
        from: "A",
        message: "Stop",
    })
    .unwrap();
    b.step(&Step::Send {
        to: "C",
        message: "Done",
    })
    .unwrap();
    c.step(&Step::Recv {
        from: "B",
        message: "Done",
    })
    .unwrap();
    assert!(b.is_complete() && c.is_complete());
    check_protocol(&p).unwrap();
}

#[test]
fn a_bystander_that_gets_messages_in_some_rounds_branches_on_them() {
    let got = projection(
        "roles A, B, C;
         rec X {
             choice at A {
                 more: { A -> B: More; B -> C: Ping(u32); continue X; }
                 quiet: { A -> B: Quiet; continue X; }
                 stop: { A -> B: Stop; B -> C: Done; }
             }
         }",
        "C",
    );
    assert_eq!(
        got,
        "rec X { branch from B { Ping: { recv Ping(u32) from B; continue X } Done: { recv Done from B; end } } }"
    );
}

#[test]
fn a_role_absent_from_every_round_does_nothing() {
    let p = Protocol::parse(
        "roles A, B, C; rec X { choice at A { more: { A -> B: More; continue X; } stop: { A -> B: Stop; } } }",
    )
    .unwrap();
    assert_eq!(p.project("C").unwrap(), LocalType::End);
}

#[test]
fn nested_loops_are_skipped_too() {
    let got = projection(
        "roles A, B, C;
         rec Outer {
             rec Inner {
                 choice at A {
                     again: { A -> B: Again; continue Inner; }
                     next: { A -> B: Next; continue Outer; }
                     done: { A -> B: Done; }
                 }
             }
         }
         B -> C: Over;",
        "C",
    );
    assert_eq!(got, "recv Over from B; end");
}

#[test]
fn a_continue_counts_what_the_next_round_begins_with() {
    let src = "roles A, B, C;
        rec X { A -> C: Tick; choice at A { more: { A -> B: More; continue X; } stop: { A -> B: Stop; } } }";
    assert_eq!(
        projection(src, "C"),
        "rec X { recv Tick from A; branch from A { more: { continue X } stop: { end } } }"
    );
    assert_eq!(
        projection(src, "A"),
        "rec X { send Tick to C; select to B { more: { select to C { more: { send More to B; continue X } } } stop: { select to C { stop: { send Stop to B; end } } } } }"
    );
}

#[test]
fn a_bystander_that_must_learn_the_choice_and_cannot_is_refused() {
    // C acts in every round, so it must know whether another comes; it
    // hears only from B, the same message either way.
    let e = Protocol::parse(
        "roles A, B, C;
         rec X { choice at A { more: { A -> B: More; B -> C: Note; continue X; } stop: { A -> B: Stop; B -> C: Note; } } }",
    )
    .unwrap()
    .validate()
    .unwrap_err();
    assert_eq!(
        e,
        ProjectionError::NotTold {
            role: "C".into(),
            chooser: "A".into(),
            left: "more".into(),
            right: "stop".into(),
            detail: "after `recv Note from B` in both, `continue X` against `end`".into(),
        }
    );
    // Sending in the loop is no better: sends must be the same.
    let e = Protocol::parse(
        "roles A, B, C;
         rec X { choice at A { more: { A -> B: More; C -> B: Tick; continue X; } stop: { A -> B: Stop; } } }",
    )
    .unwrap()
    .validate()
    .unwrap_err();
    assert!(
        matches!(&e, ProjectionError::NotTold { role, detail, .. } if role == "C" && detail == "`send Tick to B` against `end`"),
        "{e:?}"
    );
}
