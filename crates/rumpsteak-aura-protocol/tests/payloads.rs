//! Payloads: `Label()` has none, `Label(A, B)` carries a tuple, and a
//! keyword where a name is due is named as such.

use rumpsteak_aura::{ProtocolMonitor, Step};
use rumpsteak_aura_protocol::{GlobalType, ParseErrorKind, Protocol};

#[test]
fn empty_parentheses_are_no_payload() {
    let a = Protocol::parse("A -> B: Ping();").unwrap();
    let b = Protocol::parse("A -> B: Ping;").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.project("B").unwrap().to_string(), "recv Ping from A; end");
}

#[test]
fn tuples_project_print_and_monitor() {
    let p = Protocol::parse("A -> B: Pair(u32, Text); B -> A: Triple(u8, u16, u32);").unwrap();
    assert_eq!(
        p.global(),
        &GlobalType::message(
            "A",
            "B",
            "Pair",
            Some("(u32, Text)"),
            GlobalType::message("B", "A", "Triple", Some("(u8, u16, u32)"), GlobalType::End)
        )
    );
    assert_eq!(
        p.project("B").unwrap().to_string(),
        "recv Pair(u32, Text) from A; send Triple(u8, u16, u32) to A; end"
    );
    assert_eq!(
        p.to_string(),
        "roles A, B;\nA -> B: Pair(u32, Text);\nB -> A: Triple(u8, u16, u32);"
    );
    assert_eq!(Protocol::parse(&p.to_string()).unwrap(), p);
    // A handler names a tuple in full; the monitor shortens its paths.
    let mut b = p.monitor_for("B").unwrap();
    b.step(&Step::Recv {
        from: "A",
        message: "(u32, app::Text)",
    })
    .unwrap();
    assert!(
        b.check(&Step::Send {
            to: "A",
            message: "(u8, u16)"
        })
        .is_err()
    );
}

#[test]
fn a_keyword_where_a_name_is_due_is_named() {
    for (src, at, what) in [
        (
            "A -> B: end;",
            (1, 9),
            "`end` is a keyword and cannot be a message label: rename it",
        ),
        (
            "A -> B: Go(rec);",
            (1, 12),
            "`rec` is a keyword and cannot be a payload type name: rename it",
        ),
        (
            "choice at A { continue: { A -> B: X; } }",
            (1, 15),
            "`continue` is a keyword and cannot be a branch label: rename it",
        ),
        (
            "roles A, at;",
            (1, 10),
            "`at` is a keyword and cannot be a role name: rename it",
        ),
    ] {
        let e = Protocol::parse(src).unwrap_err();
        assert!(
            matches!(e.kind(), ParseErrorKind::Keyword { .. }),
            "{src}: {e}"
        );
        assert_eq!((e.line(), e.column()), at, "{src}");
        assert_eq!(e.kind().to_string(), what, "{src}");
    }
    // A word that only begins with a keyword is a name.
    assert!(Protocol::parse("A -> B: endgame; B -> A: record(roles_t);").is_ok());
}

#[test]
fn a_malformed_tuple_says_what_was_expected() {
    let e = Protocol::parse("A -> B: Pair(u32 Text);").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 18: expected `,` or `)`, found `Text`"
    );
    let e = Protocol::parse("A -> B: Pair(u32,);").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 18: expected a payload type name, found `)`"
    );
}
