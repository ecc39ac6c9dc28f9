//! The limits on roles, branches, depth and size: oversize input is refused
//! early, with the position of the first thing too many, and hostile input
//! is dealt with quickly and in little memory.

use std::time::{Duration, Instant};

use rumpsteak_aura::ProtocolMonitor;

use rumpsteak_aura_protocol::{
    GlobalType, MAX_BRANCHES, MAX_ROLES, ParseErrorKind, ProjectionError, Protocol,
};

/// A generous bound, for a debug build on a loaded 2-core machine running
/// the whole suite at once: each case takes under a second there (and
/// milliseconds in release), while the blow-ups these tests guard against
/// (quadratic or worse in roles times branches) take minutes; so the bound
/// cannot pass for them, and ordinary load cannot make it fail.
const QUICK: Duration = Duration::from_secs(10);

fn role_list(n: usize) -> String {
    (0..n)
        .map(|i| format!("R{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `f`, prints how long it took and checks it was quick.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    println!("{what}: {took:?}");
    assert!(took < QUICK, "{what} took {took:?}");
    out
}

#[test]
fn too_many_roles_in_the_header() {
    let ok = format!("roles {};\nR0 -> R1: m;", role_list(MAX_ROLES));
    assert_eq!(Protocol::parse(&ok).unwrap().roles().len(), MAX_ROLES);

    let src = format!("roles {};\nR0 -> R1: m;", role_list(MAX_ROLES + 1));
    let e = Protocol::parse(&src).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooManyRoles { limit: MAX_ROLES });
    let column = src.find(&format!(" R{MAX_ROLES};")).unwrap() + 2;
    assert_eq!((e.line(), e.column()), (1, column));
    assert_eq!(
        e.to_string(),
        format!("line 1, column {column}: protocol has more than 256 roles")
    );
}

#[test]
fn too_many_roles_in_the_statements() {
    // Without a header, the roles are those used; one message a line, each
    // with two new roles.
    let msgs = |n: usize| -> String {
        (0..n)
            .map(|i| format!("A{i} -> B{i}: m;\n"))
            .collect::<String>()
    };
    let p = Protocol::parse(&msgs(MAX_ROLES / 2)).unwrap();
    assert_eq!(p.roles().len(), MAX_ROLES);
    p.validate().unwrap();

    // Message `MAX_ROLES / 2 + 1` names role `MAX_ROLES + 1` first.
    let e = Protocol::parse(&msgs(MAX_ROLES / 2 + 1)).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooManyRoles { limit: MAX_ROLES });
    assert_eq!((e.line(), e.column()), (MAX_ROLES / 2 + 1, 1));

    // Reusing roles does not count them again.
    let reuse = "A -> B: m;\nB -> A: n;\n".repeat(400);
    assert!(Protocol::parse(&reuse).is_ok());
}

#[test]
fn too_many_branches() {
    let choice = |n: usize| -> String {
        let mut s = String::from("choice at A {\n");
        for i in 0..n {
            s.push_str(&format!("    l{i}: {{ A -> B: M{i}; }}\n"));
        }
        s.push('}');
        s
    };
    let p = Protocol::parse(&choice(MAX_BRANCHES)).unwrap();
    p.validate().unwrap();
    assert!(p.monitor_for("B").is_ok());

    let e = Protocol::parse(&choice(MAX_BRANCHES + 1)).unwrap_err();
    assert_eq!(
        e.kind(),
        &ParseErrorKind::TooManyBranches {
            limit: MAX_BRANCHES
        }
    );
    // The label of branch `MAX_BRANCHES + 1`, on its own line after the
    // `choice` line.
    assert_eq!((e.line(), e.column()), (MAX_BRANCHES + 2, 5));
    assert_eq!(
        e.to_string(),
        format!(
            "line {}, column 5: choice has more than 256 branches",
            MAX_BRANCHES + 2
        )
    );
}

#[test]
fn many_messages_between_distinct_roles_are_refused_quickly() {
    // 40 000 messages, each between two new roles: 818 KB.
    let src: String = (0..40_000).map(|i| format!("R{i} -> S{i}: m;\n")).collect();
    let e = timed("40k messages, distinct roles", || {
        Protocol::parse(&src).unwrap_err()
    });
    assert_eq!(e.kind(), &ParseErrorKind::TooManyRoles { limit: MAX_ROLES });
    assert_eq!((e.line(), e.column()), (MAX_ROLES / 2 + 1, 1));

    // The same between few roles is refused by the depth limit as soon as
    // the parser reaches it, not after reading the rest.
    let src: String = (0..40_000)
        .map(|i| format!("R{} -> S{}: m;\n", i % 100, i % 100))
        .collect();
    let e = timed("40k messages, 200 roles", || {
        Protocol::parse(&src).unwrap_err()
    });
    assert_eq!(e.kind(), &ParseErrorKind::TooDeep { limit: 1000 });
    // The end is one step below the last message.
    assert_eq!((e.line(), e.column()), (1000, 1));

    // A header with 40 000 roles.
    let src = format!("roles {};", role_list(40_000));
    let e = timed("40k roles header", || Protocol::parse(&src).unwrap_err());
    assert_eq!(e.kind(), &ParseErrorKind::TooManyRoles { limit: MAX_ROLES });
}

#[test]
fn limits_are_checked_while_parsing() {
    // Oversize text is refused where it goes past a limit, before the
    // syntax error at its end is read.
    let deep = format!("{}A -> B: m; oops", "A -> B: m;\n".repeat(1000));
    let e = Protocol::parse(&deep).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooDeep { limit: 1000 });
    assert_eq!(e.line(), 1000);

    let chained = format!("{}oops", "choice at A { x: { A -> B: m; } }\n".repeat(200));
    let e = Protocol::parse(&chained).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooNested { limit: 128 });
    assert_eq!((e.line(), e.column()), (129, 1));

    // 256 branches of 400 messages: more than 100 000 nodes, each branch
    // on its own line.
    let mut large = String::from("choice at A {\n");
    for i in 0..MAX_BRANCHES {
        large.push_str(&format!("l{i}: {{ {}}}\n", "A -> B: m; ".repeat(400)));
    }
    large.push_str("} oops");
    let e = timed("102 400 messages", || Protocol::parse(&large).unwrap_err());
    assert_eq!(e.kind(), &ParseErrorKind::TooLarge { limit: 100_000 });
    // The choice is node 1, branch `l{k}` holds nodes 2 + 400 k to
    // 401 + 400 k: node 100 001 is the last message of `l249`, on line 251
    // after `l249: { ` and 399 messages of 11 characters.
    assert_eq!((e.line(), e.column()), (251, 9 + 399 * 11));

    // What follows a choice without branches is lowered apart and then
    // dropped: its steps do not add to those before the choice, so this
    // parses (and fails validation) as it always did...
    let line = "A -> B: m;\n".repeat(600);
    let dropped = format!("{line}choice at A {{}}\n{line}");
    let p = Protocol::parse(&dropped).unwrap();
    assert_eq!(
        p.validate(),
        Err(ProjectionError::EmptyChoice {
            chooser: "A".into()
        })
    );
    // ...while a dropped tail too deep on its own is refused by lowering,
    // at the same place as before.
    let deep_tail = format!("choice at A {{}}\n{}", "A -> B: m;\n".repeat(2000));
    let e = Protocol::parse(&deep_tail).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooDeep { limit: 1000 });
    assert_eq!((e.line(), e.column()), (1002, 1));
}

#[test]
fn many_roles_times_many_branches_are_refused_or_cheap() {
    // 10 000 roles and a choice of 2 000 branches (106 KB): refused at the
    // header, before the choice is read.
    let mut src = format!("roles {};\nchoice at R0 {{\n", role_list(10_000));
    for b in 0..2000 {
        src.push_str(&format!("    b{b}: {{ R0 -> R1: m; }}\n"));
    }
    src.push('}');
    let e = timed("10k roles x 2k branches, text", || {
        Protocol::parse(&src).unwrap_err()
    });
    assert_eq!(e.kind(), &ParseErrorKind::TooManyRoles { limit: MAX_ROLES });

    // The same built by hand: checking and projecting hold one branch's
    // summary at a time, sparse in the roles, so this stays small.
    let g = GlobalType::choice(
        "R0",
        (0..2000).map(|b| {
            (
                format!("b{b}"),
                GlobalType::message("R0", "R1", "m", None, GlobalType::End),
            )
        }),
    );
    let p = Protocol::with_roles((0..10_000).map(|i| format!("R{i}")), g).unwrap();
    timed("10k roles x 2k branches, by hand, monitors", || {
        assert!(p.monitor_for("R0").is_ok());
        assert!(p.monitor_for("R1").is_ok());
        assert!(p.monitor_for("R9999").unwrap().is_complete());
    });

    // At the limits: every role in every branch, a role not told merging
    // all of them.
    let mut full = format!("roles {};\nchoice at R0 {{\n", role_list(MAX_ROLES));
    for b in 0..MAX_BRANCHES {
        full.push_str(&format!("    b{b}: {{ R0 -> R1: M{b}; "));
        for r in 1..MAX_ROLES - 1 {
            full.push_str(&format!("R{r} -> R{}: n; ", r + 1));
        }
        full.push_str("}\n");
    }
    full.push('}');
    let p = timed("256 roles x 256 branches, parse", || {
        Protocol::parse(&full).unwrap()
    });
    timed("256 roles x 256 branches, monitors", || {
        for r in ["R0", "R1", "R2", "R255"] {
            assert!(p.monitor_for(r).is_ok(), "{r}");
        }
    });
}
