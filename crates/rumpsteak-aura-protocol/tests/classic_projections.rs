//! Projections of classic protocols, compared with their expected local
//! types in printed form.

mod common;

use common::protocols::{NEGOTIATION, PING_PONG, RING, TWO_BUYER};
use rumpsteak_aura_protocol::{LocalType, Protocol};

fn projections(src: &str) -> Vec<(String, String)> {
    let p = Protocol::parse(src).unwrap();
    p.validate().unwrap();
    p.roles()
        .iter()
        .map(|r| (r.clone(), p.project(r).unwrap().to_string()))
        .collect()
}

fn expect(src: &str, want: &[(&str, &str)]) {
    let got = projections(src);
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(r, l)| (r.to_string(), l.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn ping_pong() {
    expect(
        PING_PONG,
        &[
            (
                "A",
                "rec Loop { select to B { ping: { send Ping to B; recv Pong from B; continue Loop } stop: { send Stop to B; end } } }",
            ),
            (
                "B",
                "rec Loop { branch from A { ping: { recv Ping from A; send Pong to A; continue Loop } stop: { recv Stop from A; end } } }",
            ),
        ],
    );
}

#[test]
fn ping_pong_structure() {
    let p = Protocol::parse(PING_PONG).unwrap();
    let LocalType::Rec { name, body } = p.project("B").unwrap() else {
        panic!("B's projection is not a loop");
    };
    assert_eq!(name, "Loop");
    let LocalType::Branch { from, branches } = *body else {
        panic!("B's loop does not start with a branch");
    };
    assert_eq!(from, "A");
    let labels: Vec<&str> = branches.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["ping", "stop"]);
}

#[test]
fn two_buyer() {
    expect(
        TWO_BUYER,
        &[
            (
                "Buyer1",
                "send Title(String) to Seller; recv Quote(u32) from Seller; send Share(u32) to Buyer2; end",
            ),
            (
                "Buyer2",
                "recv Quote(u32) from Seller; recv Share(u32) from Buyer1; select to Seller { accept: { send Address(String) to Seller; recv Date(String) from Seller; end } reject: { send Quit to Seller; end } }",
            ),
            (
                "Seller",
                "recv Title(String) from Buyer1; send Quote(u32) to Buyer1; send Quote(u32) to Buyer2; branch from Buyer2 { accept: { recv Address(String) from Buyer2; send Date(String) to Buyer2; end } reject: { recv Quit from Buyer2; end } }",
            ),
        ],
    );
}

#[test]
fn three_party_negotiation_merges_the_relayed_choice() {
    expect(
        NEGOTIATION,
        &[
            (
                "Buyer",
                "send Request(Item) to Coordinator; recv Offer(Price) from Coordinator; select to Coordinator { accept: { send Accept to Coordinator; recv Receipt(Receipt) from Seller; end } reject: { send Reject to Coordinator; end } }",
            ),
            (
                "Coordinator",
                "recv Request(Item) from Buyer; send Query(Item) to Seller; recv Quote(Price) from Seller; send Offer(Price) to Buyer; branch from Buyer { accept: { recv Accept from Buyer; select to Seller { confirm: { send Confirm to Seller; end } } } reject: { recv Reject from Buyer; select to Seller { cancel: { send Cancel to Seller; end } } } }",
            ),
            (
                "Seller",
                "recv Query(Item) from Coordinator; send Quote(Price) to Coordinator; branch from Coordinator { confirm: { recv Confirm from Coordinator; send Receipt(Receipt) to Buyer; end } cancel: { recv Cancel from Coordinator; end } }",
            ),
        ],
    );
}

#[test]
fn ring_of_five_passes_the_token_and_the_decision() {
    // B, C and D each learn the decision from the previous role and relay
    // it to the next.
    let relay = |prev: &str, next: &str| {
        format!(
            "rec Round {{ branch from {prev} {{ pass: {{ recv Token(u64) from {prev}; select to {next} {{ pass: {{ send Token(u64) to {next}; continue Round }} }} }} stop: {{ recv Stop from {prev}; select to {next} {{ stop: {{ send Stop to {next}; end }} }} }} }} }}"
        )
    };
    let (b, c, d) = (relay("A", "C"), relay("B", "D"), relay("C", "E"));
    expect(
        RING,
        &[
            (
                "A",
                "rec Round { select to B { pass: { send Token(u64) to B; recv Token(u64) from E; continue Round } stop: { send Stop to B; end } } }",
            ),
            ("B", &b),
            ("C", &c),
            ("D", &d),
            (
                "E",
                "rec Round { branch from D { pass: { recv Token(u64) from D; send Token(u64) to A; continue Round } stop: { recv Stop from D; end } } }",
            ),
        ],
    );
}

#[test]
fn chooser_tells_every_told_role_in_role_order() {
    // C and B both hear first from A, so A selects to both, in the
    // header's order (C before B), the second select offering only the
    // label already taken.
    let p = Protocol::parse(
        "roles A, C, B;
         choice at A { x: { A -> B: X; A -> C: X; } y: { A -> C: Y; B -> C: Y; } }",
    )
    .unwrap();
    assert_eq!(
        p.project("A").unwrap().to_string(),
        "select to C { x: { select to B { x: { send X to B; send X to C; end } } } y: { select to B { y: { send Y to C; end } } } }"
    );
    assert_eq!(
        p.project("B").unwrap().to_string(),
        "branch from A { x: { recv X from A; end } y: { send Y to C; end } }"
    );
}

#[test]
fn uninvolved_roles_drop_loops_and_unused_roles_end() {
    let p = Protocol::parse(
        "roles A, B, C, D;
         C -> A: Hello;
         rec L { choice at A { more: { A -> B: M; continue L; } done: { A -> B: D; } } }",
    )
    .unwrap();
    assert_eq!(p.project("C").unwrap().to_string(), "send Hello to A; end");
    assert_eq!(p.project("D").unwrap(), LocalType::End);
}
