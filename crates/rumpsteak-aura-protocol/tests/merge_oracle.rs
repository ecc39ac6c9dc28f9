//! The model checker as the oracle of the full merge where it is most
//! delicate: a bystander `C` hears from `B`, which is told of `A`'s choice,
//! by messages, by choices of `B`'s own, or both, with labels drawn from a
//! pool so small that choice labels and message labels collide. Whatever
//! projection accepts must run without fault; what it refuses is refused
//! with a `NotTold` error naming `C`.

mod common;

use common::Rng;
use common::checker::check_protocol;
use proptest::prelude::*;
use rumpsteak_aura_protocol::{ProjectionError, Protocol};

const POOL: [&str; 3] = ["Foo", "Bar", "Baz"];

/// What `B` does towards `C` after learning `A`'s branch, to `depth`.
fn relay(rng: &mut Rng, depth: usize) -> String {
    let label = POOL[rng.below(POOL.len())];
    match rng.below(if depth == 0 { 2 } else { 4 }) {
        0 => format!("B -> C: {label};"),
        1 => format!("B -> C: {label}; C -> B: Ack;"),
        _ => {
            let mut arms = String::new();
            let mut used = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let l = POOL[rng.below(POOL.len())];
                if used.contains(&l) {
                    continue;
                }
                used.push(l);
                arms.push_str(&format!("{l}: {{ {} }} ", relay(rng, depth - 1)));
            }
            format!("choice at B {{ {arms}}}")
        }
    }
}

fn protocol(rng: &mut Rng) -> String {
    let mut branches = String::new();
    for b in 0..2 + rng.below(2) {
        branches.push_str(&format!("x{b}: {{ A -> B: X{b}; {} }}\n", relay(rng, 2)));
    }
    format!("roles A, B, C;\nchoice at A {{\n{branches}}}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn what_the_merge_accepts_runs_and_what_it_refuses_names_the_bystander(seed in any::<u64>()) {
        let text = protocol(&mut Rng::new(seed));
        let p = Protocol::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        match p.validate() {
            Ok(()) => {
                check_protocol(&p).map_err(|f| TestCaseError::fail(format!("{f}\n{text}")))?;
            }
            Err(ProjectionError::NotTold { role, .. }) => prop_assert_eq!(role, "C", "{}", text),
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        }
    }
}

#[test]
fn the_pool_gives_both_outcomes() {
    let (mut accepted, mut refused) = (0, 0);
    for seed in 0..400 {
        let text = protocol(&mut Rng::new(seed));
        let p = Protocol::parse(&text).unwrap();
        match p.validate() {
            Ok(()) => {
                check_protocol(&p).unwrap_or_else(|f| panic!("{f}\n{text}"));
                accepted += 1;
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted >= 40 && refused >= 40,
        "{accepted} accepted, {refused} refused"
    );
}
