//! Parse errors: the exact line and column, what was expected and what was
//! found.

use rumpsteak_aura_protocol::{GlobalType, ParseError, ParseErrorKind, Protocol};

fn error(src: &str) -> ParseError {
    Protocol::parse(src).unwrap_err()
}

fn at(src: &str) -> String {
    error(src).to_string()
}

#[test]
fn colon_where_an_arrow_is_due() {
    let src = "A -> B: Ping;\n// B answers\n    Responder: Pong;";
    let e = error(src);
    assert_eq!((e.line(), e.column()), (3, 14));
    assert_eq!(
        e.kind(),
        &ParseErrorKind::Unexpected {
            expected: "`->`".into(),
            found: "`:`".into()
        }
    );
    assert_eq!(e.to_string(), "line 3, column 14: expected `->`, found `:`");
    assert_eq!(
        at("roles Buyer, Seller;\nBuyer -> Seller: Offer(Price);\nSeller  Buyer: Answer;"),
        "line 3, column 9: expected `->`, found `Buyer`"
    );
    assert_eq!(
        at("A -> B: Ping;\n  choice at B: {"),
        "line 2, column 14: expected `{`, found `:`"
    );
}

#[test]
fn missing_pieces_of_a_message() {
    assert_eq!(
        at("A -> B Ping;"),
        "line 1, column 8: expected `:`, found `Ping`"
    );
    assert_eq!(
        at("A -> B: Ping(u32;"),
        "line 1, column 17: expected `,` or `)`, found `;`"
    );
    assert_eq!(
        at("A -> B: Ping"),
        "line 1, column 13: expected `(` or `;`, found end of input"
    );
    assert_eq!(
        at("A -> B: ();"),
        "line 1, column 9: expected a message label, found `(`"
    );
}

#[test]
fn keywords_are_not_names() {
    assert_eq!(
        at("rec -> B: Ping;"),
        "line 1, column 5: expected a loop name, found `->`"
    );
    assert_eq!(
        at("A -> choice: Ping;"),
        "line 1, column 6: `choice` is a keyword and cannot be a role name: rename it"
    );
    assert_eq!(
        at("choice at A { end: {} }"),
        "line 1, column 15: `end` is a keyword and cannot be a branch label: rename it"
    );
}

#[test]
fn stray_characters_and_unclosed_blocks() {
    assert_eq!(
        at("A -> B: Ping; # note"),
        "line 1, column 15: expected a statement or end of input, found `#`"
    );
    assert_eq!(
        at("A - B: Ping;"),
        "line 1, column 3: expected `->`, found `-`"
    );
    assert_eq!(
        at("rec L {\n  A -> B: Ping;\n"),
        "line 3, column 1: expected a statement or `}`, found end of input"
    );
    assert_eq!(
        at("A -> B: Ping; }"),
        "line 1, column 15: expected a statement or end of input, found `}`"
    );
}

#[test]
fn header_mistakes() {
    assert_eq!(
        at("roles A, B;\nA -> C: Ping;"),
        "line 2, column 6: role `C` is not declared in the `roles` header"
    );
    assert_eq!(
        at("roles A, B, A;"),
        "line 1, column 13: role `A` is declared twice"
    );
    assert_eq!(
        at("roles A B;"),
        "line 1, column 9: expected `,` or `;`, found `B`"
    );
    assert_eq!(
        at("A -> B: Ping;\nroles A, B;"),
        "line 2, column 1: expected a statement or end of input, found `roles`"
    );
    assert_eq!(
        at("roles A;\nchoice at Z { }"),
        "line 2, column 11: role `Z` is not declared in the `roles` header"
    );
}

#[test]
fn loop_scoping() {
    assert_eq!(
        at("rec L { A -> B: Ping; }\ncontinue L;"),
        "line 2, column 10: `continue L` is not inside a `rec L` block"
    );
    let e = error("rec L { A -> B: Ping; }\nrec L { B -> A: Pong; continue L; }");
    assert_eq!((e.line(), e.column()), (2, 5));
    assert_eq!(e.kind(), &ParseErrorKind::ShadowedLoop { name: "L".into() });
    // In sibling branches the same name is fine.
    assert!(
        Protocol::parse(
            "choice at A { x: { rec L { A -> B: X; continue L; } } y: { rec L { A -> B: Y; continue L; } } }"
        )
        .is_ok()
    );
}

#[test]
fn unreachable_statements() {
    assert_eq!(
        at("rec L {\n    A -> B: Ping;\n    continue L;\n    B -> A: Pong;\n}"),
        "line 4, column 5: statement can never run: every path before it ends with `continue` or `end`"
    );
    assert_eq!(error("A -> B: Ping; end; B -> A: Pong;").column(), 20);
    let e = error(
        "rec L { choice at A { x: { A -> B: X; continue L; } y: { A -> B: Y; end; } } }\nB -> A: Late;",
    );
    assert_eq!(
        (e.line(), e.column(), e.kind()),
        (2, 1, &ParseErrorKind::Unreachable)
    );
}

#[test]
fn global_type_from_str_reports_the_same_errors() {
    let e = "A -> B Ping;".parse::<GlobalType>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 8: expected `:`, found `Ping`"
    );
}
