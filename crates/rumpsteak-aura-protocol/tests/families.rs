//! Role families: `roles Coordinator, Worker[n];` and `foreach Worker[i]`.
//! A family is projected once (the member's local type), the other roles
//! get `foreach` rounds, and both are instantiated for any size and member
//! at run time, for monitors and for the model checker.

mod common;

use common::checker::check;
use rumpsteak_aura::{ProtocolMonitor, Step};
use rumpsteak_aura_protocol::{LocalType, ParseErrorKind, ProjectionError, Protocol, member_name};

/// The coordinator scatters work, gathers the results and, each round,
/// tells every worker whether another round comes.
const SCATTER_GATHER: &str = "
roles Coordinator, Worker[n];
rec Round {
    choice at Coordinator {
        work: {
            foreach Worker[i] { Coordinator -> Worker[i]: Task(u64); }
            foreach Worker[i] { Worker[i] -> Coordinator: Result(u64); }
            continue Round;
        }
        stop: {
            foreach Worker[i] { Coordinator -> Worker[i]: Stop; }
        }
    }
}";

fn instances(p: &Protocol, n: usize) -> Vec<(String, LocalType)> {
    let sizes = [("Worker", n)];
    p.instance_roles(&sizes)
        .unwrap()
        .into_iter()
        .map(|r| {
            let l = p.instantiate(&r, &sizes).unwrap();
            (r, l)
        })
        .collect()
}

#[test]
fn a_family_projects_once_with_its_index() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    p.validate().unwrap();
    assert_eq!(p.roles(), ["Coordinator", "Worker"]);
    assert_eq!(p.families(), [("Worker".to_owned(), "n".to_owned())]);
    assert_eq!(
        p.project("Worker").unwrap().to_string(),
        "rec Round { branch from Coordinator { work: { recv Task(u64) from Coordinator; send Result(u64) to Coordinator; continue Round } stop: { recv Stop from Coordinator; end } } }"
    );
    assert_eq!(
        p.project("Coordinator").unwrap().to_string(),
        "rec Round { select to Worker[*] { work: { foreach Worker[i] { send Task(u64) to Worker[i]; end }; foreach Worker[i] { recv Result(u64) from Worker[i]; end }; continue Round } stop: { foreach Worker[i] { send Stop to Worker[i]; end }; end } } }"
    );
    // The text prints back.
    assert_eq!(Protocol::parse(&p.to_string()).unwrap(), p);
    assert!(p.to_string().starts_with("roles Coordinator, Worker[n];\n"));
}

#[test]
fn instances_unroll_rounds_and_tell_every_member() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    let sizes = [("Worker", 2)];
    assert_eq!(
        p.instantiate("Coordinator", &sizes).unwrap().to_string(),
        "rec Round { select to Worker[0] { work: { select to Worker[1] { work: { send Task(u64) to Worker[0]; send Task(u64) to Worker[1]; recv Result(u64) from Worker[0]; recv Result(u64) from Worker[1]; continue Round } } } stop: { select to Worker[1] { stop: { send Stop to Worker[0]; send Stop to Worker[1]; end } } } } }"
    );
    assert_eq!(
        p.instantiate("Worker[1]", &sizes).unwrap(),
        p.project("Worker").unwrap()
    );
    assert_eq!(
        p.instance_roles(&sizes).unwrap(),
        ["Coordinator", "Worker[0]", "Worker[1]"]
    );
    assert_eq!(member_name("Worker", 1), "Worker[1]");
}

#[test]
fn every_instance_passes_the_model_checker() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    for n in 1..=3 {
        let explored =
            check(&instances(&p, n), 2, 200_000).unwrap_or_else(|f| panic!("n = {n}: {f}"));
        assert!(explored.can_finish, "n = {n}");
    }
}

#[test]
fn monitors_of_a_member_and_of_the_coordinator_follow_a_run() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    let n = 3;
    let sizes = [("Worker", n)];
    let mut coord = p.monitor_instance("Coordinator", &sizes).unwrap();
    let mut worker = p.monitor_instance("Worker[2]", &sizes).unwrap();
    assert_eq!(worker.role(), "Worker[2]");
    // One round of work, then stop.
    for k in 0..n {
        let to = member_name("Worker", k);
        coord
            .step(&Step::Choose {
                to: &to,
                label: "work",
            })
            .unwrap();
    }
    for k in 0..n {
        let to = member_name("Worker", k);
        coord
            .step(&Step::Send {
                to: &to,
                message: "u64",
            })
            .unwrap();
    }
    // Results come back in index order; another order is refused.
    let last = member_name("Worker", n - 1);
    assert!(
        coord
            .check(&Step::Recv {
                from: &last,
                message: "u64"
            })
            .is_err()
    );
    for k in 0..n {
        let from = member_name("Worker", k);
        coord
            .step(&Step::Recv {
                from: &from,
                message: "u64",
            })
            .unwrap();
    }
    for k in 0..n {
        let to = member_name("Worker", k);
        coord
            .step(&Step::Choose {
                to: &to,
                label: "stop",
            })
            .unwrap();
    }
    for k in 0..n {
        let to = member_name("Worker", k);
        coord
            .step(&Step::Send {
                to: &to,
                message: "Stop",
            })
            .unwrap();
    }
    assert!(coord.is_complete());
    for step in [
        Step::Offer {
            from: "Coordinator",
            label: Some("work"),
        },
        Step::Recv {
            from: "Coordinator",
            message: "u64",
        },
        Step::Send {
            to: "Coordinator",
            message: "u64",
        },
        Step::Offer {
            from: "Coordinator",
            label: Some("stop"),
        },
        Step::Recv {
            from: "Coordinator",
            message: "Stop",
        },
    ] {
        worker.step(&step).unwrap_or_else(|v| panic!("{step}: {v}"));
    }
    assert!(worker.is_complete());
}

#[test]
fn fifty_members_instantiate() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    let sizes = [("Worker", 50)];
    let m = p.monitor_instance("Coordinator", &sizes).unwrap();
    assert!(m.involves("Worker[49]") && !m.involves("Worker[50]"));
    assert_eq!(p.instance_roles(&sizes).unwrap().len(), 51);
}

#[test]
fn the_largest_family_instantiates_and_runs_in_a_test_thread() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    let sizes = [("Worker", rumpsteak_aura_protocol::MAX_MEMBERS)];
    let m = p.monitor_instance("Coordinator", &sizes).unwrap();
    assert!(m.involves("Worker[255]"));
    assert_eq!(
        p.instantiate(
            "Coordinator",
            &[("Worker", rumpsteak_aura_protocol::MAX_MEMBERS + 1)]
        ),
        Err(ProjectionError::FamilySize {
            family: "Worker".into()
        })
    );
}

#[test]
fn sizes_and_members_are_checked() {
    let p = Protocol::parse(SCATTER_GATHER).unwrap();
    assert_eq!(
        p.instantiate("Coordinator", &[]),
        Err(ProjectionError::FamilySize {
            family: "Worker".into()
        })
    );
    assert_eq!(
        p.instantiate("Coordinator", &[("Worker", 0)]),
        Err(ProjectionError::FamilySize {
            family: "Worker".into()
        })
    );
    assert_eq!(
        p.instantiate("Worker[3]", &[("Worker", 3)]),
        Err(ProjectionError::NoSuchMember {
            family: "Worker".into(),
            index: 3,
            size: 3
        })
    );
    // A symbolic local type is not a monitor.
    let e = p.monitor_for("Coordinator").unwrap_err();
    assert_eq!(
        e,
        ProjectionError::NotInstantiated {
            family: "Worker".into()
        }
    );
    assert!(e.to_string().contains("instantiate it"), "{e}");
}

#[test]
fn members_talk_to_roles_in_their_own_rounds_only() {
    // A logger hears of every task; workers report to it directly.
    let p = Protocol::parse(
        "roles Boss, Logger, Worker[n];
         foreach Worker[i] { Boss -> Worker[i]: Task(u32); Worker[i] -> Logger: Started; }
         Boss -> Logger: AllSent;",
    )
    .unwrap();
    p.validate().unwrap();
    assert_eq!(
        p.project("Logger").unwrap().to_string(),
        "foreach Worker[i] { recv Started from Worker[i]; end }; recv AllSent from Boss; end"
    );
    assert_eq!(
        p.project("Worker").unwrap().to_string(),
        "recv Task(u32) from Boss; send Started to Logger; end"
    );
    for n in 1..=3 {
        check(&instances(&p, n), 2, 100_000).unwrap_or_else(|f| panic!("n = {n}: {f}"));
    }
}

#[test]
fn family_syntax_errors_name_the_problem() {
    type Case = (&'static str, fn(&ParseErrorKind) -> bool, &'static str);
    let cases: [Case; 5] = [
        (
            "roles A, W[n]; A -> W: Hi;",
            |k| matches!(k, ParseErrorKind::FamilyWithoutIndex { .. }),
            "role `W` is a family: name one member, as `W[i]` inside `foreach W[i] { ... }`",
        ),
        (
            "roles A, W[n]; A -> W[i]: Hi;",
            |k| matches!(k, ParseErrorKind::IndexNotBound { .. }),
            "`W[i]` is not bound here: members of `W` are used inside `foreach W[i] { ... }`",
        ),
        (
            "roles A, B; foreach B[i] { A -> B[i]: Hi; }",
            |k| matches!(k, ParseErrorKind::NotAFamily { .. }),
            "role `B` is not a family: declare it as `B[n]` in the `roles` header",
        ),
        (
            "roles A, W[n]; foreach W[i] { rec X { A -> W[i]: Hi; continue X; } }",
            |k| matches!(k, ParseErrorKind::InForeach { .. }),
            "`rec` cannot be used inside a `foreach` body",
        ),
        (
            "roles A, W[n]; foreach W[i] { A -> W[j]: Hi; }",
            |k| matches!(k, ParseErrorKind::IndexNotBound { .. }),
            "`W[j]` is not bound here: members of `W` are used inside `foreach W[j] { ... }`",
        ),
    ];
    for (src, kind, text) in cases {
        let e = Protocol::parse(src).unwrap_err();
        assert!(kind(e.kind()), "{src}: {e}");
        assert_eq!(e.kind().to_string(), text, "{src}");
    }
}
