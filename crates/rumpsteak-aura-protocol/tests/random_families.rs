//! Random protocols with a role family: scatter and gather rounds, choices
//! inside a round, choices told to every member, and messages between the
//! roles that are not families. Every one is accepted, and every instance
//! for 1 to 3 members passes the model checker.

mod common;

use common::Rng;
use common::checker::check;
use proptest::prelude::*;
use rumpsteak_aura_protocol::{LocalType, Protocol};

/// The roles that are not families.
const SINGLES: [&str; 2] = ["Boss", "Aide"];

/// Text of a random family protocol, driven by `rng`.
fn family_protocol(rng: &mut Rng) -> String {
    let mut fresh = 0;
    let mut label = |prefix: &str| {
        fresh += 1;
        format!("{prefix}{fresh}")
    };
    let mut text = String::from("roles Boss, Aide, Worker[n];\n");
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            // A round: messages between a single role and the member, in
            // either direction.
            0 | 1 => {
                text.push_str("foreach Worker[i] {\n");
                for _ in 0..1 + rng.below(3) {
                    let single = SINGLES[rng.below(2)];
                    let l = label("M");
                    if rng.below(2) == 0 {
                        text.push_str(&format!("  {single} -> Worker[i]: {l}(u32);\n"));
                    } else {
                        text.push_str(&format!("  Worker[i] -> {single}: {l};\n"));
                    }
                }
                // A choice made inside the round, told to the member.
                if rng.below(3) == 0 {
                    let (a, b) = (label("yes"), label("no"));
                    text.push_str(&format!(
                        "  choice at Boss {{ {a}: {{ Boss -> Worker[i]: {}; }} {b}: {{ Boss -> Worker[i]: {}; Worker[i] -> Boss: {}; }} }}\n",
                        label("Y"),
                        label("N"),
                        label("Why")
                    ));
                }
                text.push_str("}\n");
            }
            // A choice told to every member, which also tells the aide.
            2 => {
                let (a, b) = (label("go"), label("halt"));
                text.push_str(&format!(
                    "choice at Boss {{\n  {a}: {{ Boss -> Aide: {}; foreach Worker[i] {{ Boss -> Worker[i]: {}; }} }}\n  {b}: {{ Boss -> Aide: {}; foreach Worker[i] {{ Boss -> Worker[i]: {}; Worker[i] -> Aide: {}; }} }}\n}}\n",
                    label("G"),
                    label("Go"),
                    label("H"),
                    label("Halt"),
                    label("Bye")
                ));
            }
            // Between the roles that are not families.
            _ => {
                let (from, to) = if rng.below(2) == 0 {
                    ("Boss", "Aide")
                } else {
                    ("Aide", "Boss")
                };
                text.push_str(&format!("{from} -> {to}: {}(Text);\n", label("P")));
            }
        }
    }
    text
}

fn instances(p: &Protocol, n: usize) -> Vec<(String, LocalType)> {
    let sizes = [("Worker", n)];
    p.instance_roles(&sizes)
        .expect("sizes are in range")
        .into_iter()
        .map(|r| {
            let l = p.instantiate(&r, &sizes).expect("validated");
            (r, l)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn every_instance_of_a_random_family_protocol_passes_the_checker(seed in any::<u64>()) {
        let text = family_protocol(&mut Rng::new(seed));
        let p = Protocol::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(p.validate(), Ok(()), "{}", text);
        let printed = Protocol::parse(&p.to_string());
        prop_assert_eq!(printed.as_ref(), Ok(&p));
        for n in 1..=3 {
            let explored = check(&instances(&p, n), 2, 10_000)
                .map_err(|f| TestCaseError::fail(format!("n = {n}: {f}\n{text}")))?;
            // A bounded search may stop before any run ends; a complete one
            // must find an end.
            prop_assert!(
                explored.can_finish || !explored.exhaustive,
                "n = {}: no run ends\n{}",
                n,
                text
            );
        }
    }
}

#[test]
fn the_generator_reaches_every_kind_of_block() {
    let (mut rounds, mut inner, mut told_all, mut singles) = (0, 0, 0, 0);
    for seed in 0..200 {
        let text = family_protocol(&mut Rng::new(seed));
        rounds += usize::from(text.contains("foreach Worker[i] {\n"));
        inner += usize::from(text.contains("  choice at Boss"));
        told_all += usize::from(text.contains("choice at Boss {\n"));
        singles += usize::from(text.contains("(Text)"));
        let p = Protocol::parse(&text).unwrap();
        p.validate().unwrap_or_else(|e| panic!("{e}\n{text}"));
        check(&instances(&p, 2), 2, 20_000).unwrap_or_else(|f| panic!("{f}\n{text}"));
    }
    assert!(rounds >= 100, "{rounds}");
    assert!(inner >= 30, "{inner}");
    assert!(told_all >= 50, "{told_all}");
    assert!(singles >= 50, "{singles}");
}
