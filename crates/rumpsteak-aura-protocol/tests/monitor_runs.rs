//! Correct runs reach the end, `involves` follows the remaining steps, and
//! `describe` shows the next few.

mod common;

use common::protocols::{NEGOTIATION, PING_PONG, RING, TWO_BUYER};
use rumpsteak_aura::{ProtocolMonitor, Step};
use rumpsteak_aura_protocol::{Monitor, NextStep, Protocol};

fn monitor(src: &str, role: &str) -> Monitor {
    Protocol::parse(src).unwrap().monitor_for(role).unwrap()
}

fn run(m: &mut Monitor, steps: &[Step<'_>]) {
    for s in steps {
        assert!(!m.is_complete(), "complete before {s}");
        m.step(s).unwrap_or_else(|v| panic!("{s}: {v}"));
    }
}

fn described(m: &Monitor) -> String {
    let mut s = String::new();
    m.describe(&mut s);
    s
}

#[test]
fn every_classic_protocol_runs_to_completion_under_many_schedules() {
    for src in [PING_PONG, TWO_BUYER, NEGOTIATION, RING] {
        let p = Protocol::parse(src).unwrap();
        for seed in 0..50 {
            let run = common::simulate(&p, seed, 40, 10_000)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{p}"));
            assert!(run.steps > 0);
        }
    }
}

#[test]
fn loops_go_round_until_stopped() {
    let p = Protocol::parse(RING).unwrap();
    let mut most = 0;
    for seed in 0..20 {
        let run = common::simulate(&p, seed, 200, 10_000).unwrap();
        // Each round but the last passes the token back to `A`; the last
        // carries `Stop` to `E`.
        let passes = run
            .trace
            .iter()
            .filter(|s| s.starts_with("E: send u64 to A"))
            .count();
        let rounds = run
            .trace
            .iter()
            .filter(|s| s.starts_with("A: choose"))
            .count();
        assert_eq!(passes, rounds - 1, "{:#?}", run.trace);
        assert_eq!(
            run.trace.last().map(String::as_str),
            Some("E: recv Stop from D")
        );
        most = most.max(rounds);
    }
    assert!(most > 2, "no schedule went round more than twice");
}

#[test]
fn two_buyer_by_hand() {
    let mut seller = monitor(TWO_BUYER, "Seller");
    run(
        &mut seller,
        &[
            Step::Recv {
                from: "Buyer1",
                message: "String",
            },
            Step::Send {
                to: "Buyer1",
                message: "u32",
            },
            Step::Send {
                to: "Buyer2",
                message: "u32",
            },
            Step::Offer {
                from: "Buyer2",
                label: None,
            },
            Step::Offer {
                from: "Buyer2",
                label: Some("accept"),
            },
            Step::Recv {
                from: "Buyer2",
                message: "String",
            },
            Step::Send {
                to: "Buyer2",
                message: "String",
            },
        ],
    );
    assert!(seller.is_complete());
    assert_eq!(described(&seller), "end");

    let mut buyer2 = monitor(TWO_BUYER, "Buyer2");
    run(
        &mut buyer2,
        &[
            Step::Recv {
                from: "Seller",
                message: "u32",
            },
            Step::Recv {
                from: "Buyer1",
                message: "u32",
            },
            Step::Choose {
                to: "Seller",
                label: "reject",
            },
            Step::Send {
                to: "Seller",
                message: "Quit",
            },
        ],
    );
    assert!(buyer2.is_complete());
}

#[test]
fn involves_looks_at_every_reachable_step() {
    let mut seller = monitor(NEGOTIATION, "Seller");
    assert!(seller.involves("Coordinator"));
    // Only the `confirm` branch sends the receipt to the buyer.
    assert!(seller.involves("Buyer"));
    assert!(!seller.involves("Seller"));
    assert!(!seller.involves("Nobody"));
    run(
        &mut seller,
        &[
            Step::Recv {
                from: "Coordinator",
                message: "Item",
            },
            Step::Send {
                to: "Coordinator",
                message: "Price",
            },
            Step::Offer {
                from: "Coordinator",
                label: Some("cancel"),
            },
        ],
    );
    assert!(!seller.involves("Buyer"));
    assert!(seller.involves("Coordinator"));
    run(
        &mut seller,
        &[Step::Recv {
            from: "Coordinator",
            message: "Cancel",
        }],
    );
    assert!(seller.is_complete());
    assert!(!seller.involves("Coordinator"));

    // In a loop, the peer stays involved for as long as the loop can go on.
    let mut e = monitor(RING, "E");
    for _ in 0..3 {
        assert!(e.involves("A") && e.involves("D"));
        run(
            &mut e,
            &[
                Step::Offer {
                    from: "D",
                    label: Some("pass"),
                },
                Step::Recv {
                    from: "D",
                    message: "u64",
                },
                Step::Send {
                    to: "A",
                    message: "u64",
                },
            ],
        );
    }
    run(
        &mut e,
        &[Step::Offer {
            from: "D",
            label: Some("stop"),
        }],
    );
    assert!(!e.involves("A"));
    assert!(e.involves("D"));
}

#[test]
fn describe_shows_the_next_steps() {
    let mut coordinator = monitor(NEGOTIATION, "Coordinator");
    assert_eq!(
        described(&coordinator),
        "next: recv Request(Item) from Buyer; send Query(Item) to Seller; recv Quote(Price) from Seller; …"
    );
    run(
        &mut coordinator,
        &[
            Step::Recv {
                from: "Buyer",
                message: "Item",
            },
            Step::Send {
                to: "Seller",
                message: "Item",
            },
            Step::Recv {
                from: "Seller",
                message: "Price",
            },
        ],
    );
    assert_eq!(
        described(&coordinator),
        "next: send Offer(Price) to Buyer; offer accept|reject from Buyer; …"
    );
    run(
        &mut coordinator,
        &[
            Step::Send {
                to: "Buyer",
                message: "Price",
            },
            Step::Offer {
                from: "Buyer",
                label: Some("accept"),
            },
        ],
    );
    assert_eq!(
        described(&coordinator),
        "next: recv Accept from Buyer; choose confirm for Seller; …"
    );
    run(
        &mut coordinator,
        &[
            Step::Recv {
                from: "Buyer",
                message: "Accept",
            },
            Step::Choose {
                to: "Seller",
                label: "confirm",
            },
        ],
    );
    assert_eq!(described(&coordinator), "next: send Confirm to Seller; end");
    run(
        &mut coordinator,
        &[Step::Send {
            to: "Seller",
            message: "Confirm",
        }],
    );
    assert_eq!(described(&coordinator), "end");

    // Through a loop, the description follows the jump back.
    let mut a = monitor(PING_PONG, "A");
    run(
        &mut a,
        &[Step::Choose {
            to: "B",
            label: "ping",
        }],
    );
    assert_eq!(
        described(&a),
        "next: send Ping to B; recv Pong from B; choose ping|stop for B; …"
    );
}

#[test]
fn next_step_names_peer_label_and_message() {
    let m = monitor(TWO_BUYER, "Buyer1");
    match m.next_step() {
        NextStep::Send { to, label, message } => {
            assert_eq!((to, label, message), ("Seller", "Title", "String"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let m = monitor(NEGOTIATION, "Seller");
    match m.next_step() {
        NextStep::Recv {
            from,
            label,
            message,
        } => {
            assert_eq!((from, label, message), ("Coordinator", "Query", "Item"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.role(), "Seller");
}
