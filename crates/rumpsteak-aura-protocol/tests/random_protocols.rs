//! Random well-formed protocols: every role projects, and all roles run
//! together under their monitors to completion, with no violation, no
//! deadlock and no message left over.

mod common;

use proptest::prelude::*;
use rumpsteak_aura_protocol::{LocalType, Protocol};

fn projections(p: &Protocol) -> Vec<(String, LocalType)> {
    p.roles()
        .iter()
        .map(|r| (r.clone(), p.project(r).expect("validated")))
        .collect()
}

proptest! {
    #[test]
    fn every_role_of_a_well_formed_protocol_runs_to_completion(
        tape in prop::collection::vec(any::<u32>(), 0..256),
        seed in any::<u64>(),
    ) {
        let protocol = Protocol::new(common::well_formed_rich(&tape));
        prop_assert_eq!(protocol.validate(), Ok(()), "protocol:\n{}", protocol);
        if let Err(e) = common::simulate(&protocol, seed, 60, 100_000) {
            return Err(TestCaseError::fail(format!("{e}\nprotocol:\n{protocol}")));
        }
        if let Err(fault) = common::checker::check(&projections(&protocol), 2, 5_000) {
            return Err(TestCaseError::fail(format!("{fault}\nprotocol:\n{protocol}")));
        }
    }
}

#[test]
fn generator_reaches_loops_relays_and_five_roles() {
    // The property above is only as good as its inputs: on a fixed set of
    // tapes, the generator must produce loops that really go round, choices
    // relayed to a role that must merge its branches, and five roles.
    let (mut looping, mut relayed, mut five) = (0, 0, 0);
    let (mut by_message, mut bystanders, mut tuples, mut checked) = (0, 0, 0, 0);
    let mut rng = common::Rng::new(7);
    for seed in 0..300 {
        let tape: Vec<u32> = (0..200).map(|_| rng.below(1 << 16) as u32).collect();
        let g = common::well_formed_rich(&tape);
        let text = g.to_string();
        // Relay choices are the only ones whose labels start with `r`.
        relayed += usize::from(text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with('r') && l[1..].starts_with(|c: char| c.is_ascii_digit())
        }));
        five += usize::from(g.roles().len() == 5);
        // Message relays are the only messages labelled `m` and a number,
        // bystanders of loops hear an `Over` message.
        let numbered = |prefix: &str| {
            text.match_indices(&format!(": {prefix}"))
                .any(|(i, m)| text[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
        };
        by_message += usize::from(numbered("m"));
        bystanders += usize::from(numbered("Over"));
        tuples += usize::from(text.contains("(u32, Text)"));
        let p = Protocol::new(g);
        let explored = common::checker::check(&projections(&p), 2, 5_000)
            .unwrap_or_else(|f| panic!("{f}\n{p}"));
        checked += usize::from(explored.can_finish && explored.states > 2);
        let run = common::simulate(&p, seed, 60, 100_000).unwrap_or_else(|e| panic!("{e}\n{p}"));
        let mores = run
            .trace
            .iter()
            .filter(|s| s.contains(": choose more"))
            .count();
        looping += usize::from(mores >= 2);
    }
    assert!(looping >= 30, "only {looping} of 300 runs looped");
    assert!(
        relayed >= 30,
        "only {relayed} of 300 protocols relay a choice"
    );
    assert!(five >= 30, "only {five} of 300 protocols have five roles");
    assert!(
        by_message >= 30,
        "only {by_message} of 300 protocols relay by a message"
    );
    assert!(
        bystanders >= 20,
        "only {bystanders} of 300 protocols have a loop bystander"
    );
    assert!(tuples >= 30, "only {tuples} of 300 protocols carry a tuple");
    assert!(
        checked >= 250,
        "only {checked} of 300 checks reached an end"
    );
}
