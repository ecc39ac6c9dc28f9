//! Printing a global type and parsing the text gives the same value back.

mod common;

use common::protocols::{NEGOTIATION, PING_PONG, RING, TWO_BUYER};
use proptest::prelude::*;
use rumpsteak_aura_protocol::{GlobalType, Protocol};

/// Any global type the syntax can express, well-formed or not (self
/// messages, empty choices and repeated labels included): only `continue`
/// is kept inside a loop of its name, and loop names are fresh.
fn syntactic(tape: &[u32]) -> GlobalType {
    struct B<'a> {
        tape: &'a [u32],
        at: usize,
        fresh: usize,
    }
    impl B<'_> {
        fn pick(&mut self, n: usize) -> usize {
            let v = self.tape.get(self.at).copied().unwrap_or(0) as usize;
            self.at += 1;
            v % n.max(1)
        }
        fn name(&mut self, pool: &[&str]) -> String {
            pool[self.pick(pool.len())].to_owned()
        }
        fn g(&mut self, loops: &mut Vec<String>, depth: u32) -> GlobalType {
            let kind = if depth == 0 {
                self.pick(2)
            } else {
                self.pick(5)
            };
            match kind {
                0 => GlobalType::End,
                1 => match self.pick(loops.len() + 1) {
                    0 => GlobalType::End,
                    k => GlobalType::continue_loop(&loops[k - 1]),
                },
                2 => {
                    let (from, to) = (self.name(&["A", "B", "C"]), self.name(&["A", "B", "C"]));
                    let label = self.name(&["Go", "x", "_under_score", "L2"]);
                    let payload = [None, Some("u8"), Some("Vec_u8")][self.pick(3)];
                    GlobalType::message(from, to, label, payload, self.g(loops, depth - 1))
                }
                3 => {
                    let at = self.name(&["A", "B", "C"]);
                    let n = self.pick(3);
                    let branches: Vec<(String, GlobalType)> = (0..n)
                        .map(|_| (self.name(&["yes", "no", "maybe"]), self.g(loops, depth - 1)))
                        .collect();
                    GlobalType::choice(at, branches)
                }
                _ => {
                    self.fresh += 1;
                    let name = format!("Loop{}", self.fresh);
                    loops.push(name.clone());
                    let body = self.g(loops, depth - 1);
                    loops.pop();
                    GlobalType::rec(name, body)
                }
            }
        }
    }
    B {
        tape,
        at: 0,
        fresh: 0,
    }
    .g(&mut Vec::new(), 5)
}

proptest! {
    #[test]
    fn well_formed_global_types_print_and_parse_back(
        tape in prop::collection::vec(any::<u32>(), 0..256),
    ) {
        let g = common::well_formed(&tape);
        let text = g.to_string();
        prop_assert_eq!(text.parse::<GlobalType>(), Ok(g.clone()), "text:\n{}", text);

        // With the roles in another order, the header carries the order.
        let mut roles = g.roles();
        roles.reverse();
        let p = Protocol::with_roles(roles, g).unwrap();
        prop_assert_eq!(Protocol::parse(&p.to_string()), Ok(p));
    }

    #[test]
    fn any_expressible_global_type_prints_and_parses_back(
        tape in prop::collection::vec(any::<u32>(), 0..128),
    ) {
        let g = syntactic(&tape);
        let text = g.to_string();
        prop_assert_eq!(text.parse::<GlobalType>(), Ok(g), "text:\n{}", text);
    }
}

#[test]
fn classic_protocols_print_and_parse_back() {
    for src in [PING_PONG, TWO_BUYER, NEGOTIATION, RING] {
        let p = Protocol::parse(src).unwrap();
        let again = Protocol::parse(&p.to_string()).unwrap();
        assert_eq!(again, p);
        assert_eq!(again.to_string(), p.to_string());
    }
}

#[test]
fn printed_form_is_the_text_syntax() {
    let p = Protocol::parse(
        "roles A, B;
         A -> B: Ping(u32); // comments are not kept
         choice at B { yes: { B -> A: Pong; } no: { end; } }",
    )
    .unwrap();
    assert_eq!(
        p.to_string(),
        "roles A, B;
A -> B: Ping(u32);
choice at B {
    yes: {
        B -> A: Pong;
    }
    no: {}
}"
    );
    assert_eq!(Protocol::parse("").unwrap().to_string(), "end;");
}
