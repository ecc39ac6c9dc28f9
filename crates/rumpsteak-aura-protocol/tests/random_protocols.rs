//! Random well-formed protocols: every role projects, and all roles run
//! together under their monitors to completion, with no violation, no
//! deadlock and no message left over.

mod common;

use proptest::prelude::*;
use rumpsteak_aura_protocol::Protocol;

proptest! {
    #[test]
    fn every_role_of_a_well_formed_protocol_runs_to_completion(
        tape in prop::collection::vec(any::<u32>(), 0..256),
        seed in any::<u64>(),
    ) {
        let protocol = Protocol::new(common::well_formed(&tape));
        prop_assert_eq!(protocol.validate(), Ok(()), "protocol:\n{}", protocol);
        if let Err(e) = common::simulate(&protocol, seed, 60, 100_000) {
            return Err(TestCaseError::fail(format!("{e}\nprotocol:\n{protocol}")));
        }
    }
}

#[test]
fn generator_reaches_loops_relays_and_five_roles() {
    // The property above is only as good as its inputs: on a fixed set of
    // tapes, the generator must produce loops that really go round, choices
    // relayed to a role that must merge its branches, and five roles.
    let (mut looping, mut relayed, mut five) = (0, 0, 0);
    let mut rng = common::Rng::new(7);
    for seed in 0..300 {
        let tape: Vec<u32> = (0..200).map(|_| rng.below(1 << 16) as u32).collect();
        let g = common::well_formed(&tape);
        let text = g.to_string();
        // Relay choices are the only ones whose labels start with `r`.
        relayed += usize::from(text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with('r') && l[1..].starts_with(|c: char| c.is_ascii_digit())
        }));
        five += usize::from(g.roles().len() == 5);
        let p = Protocol::new(g);
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
}
