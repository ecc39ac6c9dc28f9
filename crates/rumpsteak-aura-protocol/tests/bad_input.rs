//! Arbitrary input never panics: it is refused with a position inside the
//! text, or accepted as a protocol that behaves.

use proptest::prelude::*;
use rumpsteak_aura_protocol::Protocol;

/// Single tokens, and statement fragments so that some sequences parse.
const TOKENS: &[&str] = &[
    "A",
    "B",
    "C",
    "L",
    "x",
    "->",
    ":",
    ";",
    ",",
    "{",
    "}",
    "(",
    ")",
    "roles",
    "choice",
    "at",
    "rec",
    "continue",
    "end",
    "//",
    "\n",
    "#",
    "-",
    "é",
    "A -> B: x;",
    "B -> A: y(u8);",
    "C -> A: x;",
    "choice at A {",
    "choice at B {",
    "x: {",
    "y: {",
    "}",
    "}",
    "rec L {",
    "rec M {",
    "continue L;",
    "continue M;",
    "end;",
    "roles A, B, C;",
];

proptest! {
    /// Any sequence of tokens is either refused with a position inside
    /// the text, or accepted as a protocol that validates or not without
    /// panicking, prints back to itself, and gives a monitor for every
    /// role that projects.
    #[test]
    fn any_token_sequence_parses_or_fails_cleanly(
        picks in prop::collection::vec(0..TOKENS.len(), 0..80),
    ) {
        let src: Vec<&str> = picks.iter().map(|i| TOKENS[*i]).collect();
        let src = src.join(" ");
        match Protocol::parse(&src) {
            Err(e) => {
                let lines = src.split('\n').count();
                prop_assert!(e.line() >= 1 && e.line() <= lines, "{e} in {src:?}");
                prop_assert!(e.column() >= 1);
            }
            Ok(p) => {
                let _ = p.validate();
                prop_assert_eq!(Protocol::parse(&p.to_string()), Ok(p.clone()));
                for r in p.roles() {
                    if p.project(r).is_ok() {
                        prop_assert!(p.monitor_for(r).is_ok());
                    }
                }
            }
        }
    }
}

#[test]
fn huge_inputs_are_refused_not_crashed_on() {
    use rumpsteak_aura_protocol::ParseErrorKind;

    let nested = "rec L { ".repeat(100_000);
    let e = Protocol::parse(&nested).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooNested { limit: 128 });

    let long = "A -> B: Ping;\n".repeat(50_000);
    let e = Protocol::parse(&long).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooDeep { limit: 1000 });

    // Each choice doubles what follows it: 40 in a row would be 2^40 steps.
    let doubling = "choice at A { x: { A -> B: X; } y: { A -> B: Y; } }\n".repeat(40);
    let e = Protocol::parse(&doubling).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::TooLarge { limit: 100_000 });
}

#[test]
fn the_largest_accepted_protocols_project_and_monitor() {
    use rumpsteak_aura::ProtocolMonitor;

    // As deep as the parser allows, in a test thread's small stack.
    let deep = "A -> B: Ping;\nB -> A: Pong;\n".repeat(499);
    let p = Protocol::parse(&deep).unwrap();
    p.validate().unwrap();
    let m = p.monitor_for("A").unwrap();
    assert!(m.involves("B") && !m.is_complete());
    assert_eq!(Protocol::parse(&p.to_string()).unwrap(), p);

    // As many blocks deep as it allows, each level with a few messages,
    // and a relay so that a role not told at each level merges branches.
    let mut nested = String::new();
    for i in 0..128 {
        nested.push_str(&format!(
            "A -> B: Ping; B -> C: Ping; choice at A {{ x{i}: {{ A -> B: X; B -> C: X; "
        ));
    }
    nested.push_str(&"} }\n".repeat(128));
    let p = Protocol::parse(&nested).unwrap();
    p.validate().unwrap();
    for r in ["A", "B", "C"] {
        let m = p.monitor_for(r).unwrap();
        assert!(!m.is_complete());
    }
    assert_eq!(Protocol::parse(&p.to_string()).unwrap(), p);

    // Many nodes: 13 choices in a row make 2^13 paths.
    let wide = "choice at A { x: { A -> B: X; } y: { A -> B: Y; } }\n".repeat(13);
    let p = Protocol::parse(&wide).unwrap();
    p.validate().unwrap();
    assert!(p.monitor_for("B").is_ok());
}
