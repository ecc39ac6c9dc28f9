//! Every kind of step outside the protocol is refused with
//! `Violation::OutOfProtocol`, saying what was expected and what was
//! attempted, and checking never changes the monitor.

use rumpsteak_aura::{ProtocolMonitor, Step, Violation};
use rumpsteak_aura_protocol::{Monitor, Protocol};

const DEAL: &str = "
roles Buyer, Seller;
Buyer -> Seller: Offer(Price);
Seller -> Buyer: Answer;
choice at Buyer {
    accept: { Buyer -> Seller: Pay(Money); }
    reject: {}
}";

fn monitor(role: &str) -> Monitor {
    Protocol::parse(DEAL).unwrap().monitor_for(role).unwrap()
}

/// Checks then advances each step, which must all be allowed.
fn run(m: &mut Monitor, steps: &[Step<'_>]) {
    for s in steps {
        m.step(s).unwrap();
    }
}

/// The `(expected, attempted)` of the violation `step` causes.
fn refused(m: &Monitor, step: Step<'_>) -> (String, String) {
    match m.check(&step) {
        Err(Violation::OutOfProtocol {
            expected,
            attempted,
        }) => (expected, attempted),
        other => panic!("{step} was not refused as out of protocol: {other:?}"),
    }
}

fn pair(expected: &str, attempted: &str) -> (String, String) {
    (expected.to_owned(), attempted.to_owned())
}

const OFFER: Step<'static> = Step::Send {
    to: "Seller",
    message: "Price",
};
const ANSWER: Step<'static> = Step::Recv {
    from: "Seller",
    message: "Answer",
};

#[test]
fn wrong_peer() {
    let m = monitor("Buyer");
    assert_eq!(
        refused(
            &m,
            Step::Send {
                to: "Carol",
                message: "Price"
            }
        ),
        pair("send Offer(Price) to Seller", "send Price to Carol")
    );
    let m = monitor("Seller");
    assert_eq!(
        refused(
            &m,
            Step::Recv {
                from: "Carol",
                message: "Price"
            }
        ),
        pair("recv Offer(Price) from Buyer", "recv Price from Carol")
    );
}

#[test]
fn wrong_direction() {
    let m = monitor("Buyer");
    assert_eq!(
        refused(
            &m,
            Step::Recv {
                from: "Seller",
                message: "Price"
            }
        ),
        pair("send Offer(Price) to Seller", "recv Price from Seller")
    );
    let m = monitor("Seller");
    assert_eq!(
        refused(
            &m,
            Step::Send {
                to: "Buyer",
                message: "Price"
            }
        ),
        pair("recv Offer(Price) from Buyer", "send Price to Buyer")
    );
    // A choice where a message is due, and the reverse.
    assert_eq!(
        refused(
            &m,
            Step::Offer {
                from: "Buyer",
                label: None
            }
        ),
        pair("recv Offer(Price) from Buyer", "offer from Buyer")
    );
    let mut b = monitor("Buyer");
    run(&mut b, &[OFFER, ANSWER]);
    assert_eq!(
        refused(
            &b,
            Step::Send {
                to: "Seller",
                message: "Money"
            }
        ),
        pair("choose accept|reject for Seller", "send Money to Seller")
    );
}

#[test]
fn wrong_label() {
    let mut b = monitor("Buyer");
    run(&mut b, &[OFFER, ANSWER]);
    assert_eq!(
        refused(
            &b,
            Step::Choose {
                to: "Seller",
                label: "maybe"
            }
        ),
        pair("choose accept|reject for Seller", "choose maybe for Seller")
    );
    assert_eq!(
        refused(
            &b,
            Step::Choose {
                to: "Carol",
                label: "accept"
            }
        ),
        pair("choose accept|reject for Seller", "choose accept for Carol")
    );

    let mut s = monitor("Seller");
    run(
        &mut s,
        &[
            Step::Recv {
                from: "Buyer",
                message: "Price",
            },
            Step::Send {
                to: "Buyer",
                message: "Answer",
            },
        ],
    );
    // The offer itself is allowed, then the label is checked.
    assert!(
        s.check(&Step::Offer {
            from: "Buyer",
            label: None
        })
        .is_ok()
    );
    assert_eq!(
        refused(
            &s,
            Step::Offer {
                from: "Buyer",
                label: Some("maybe")
            }
        ),
        pair("offer accept|reject from Buyer", "offer maybe from Buyer")
    );
    assert_eq!(
        refused(
            &s,
            Step::Offer {
                from: "Seller",
                label: None
            }
        ),
        pair("offer accept|reject from Buyer", "offer from Seller")
    );
}

#[test]
fn wrong_payload_type_name() {
    let m = monitor("Buyer");
    assert_eq!(
        refused(
            &m,
            Step::Send {
                to: "Seller",
                message: "Money"
            }
        ),
        pair("send Offer(Price) to Seller", "send Money to Seller")
    );
    // With a payload type, the label is not the message's name.
    assert_eq!(
        refused(
            &m,
            Step::Send {
                to: "Seller",
                message: "Offer"
            }
        ),
        pair("send Offer(Price) to Seller", "send Offer to Seller")
    );
    // Without one, the label is.
    let mut b = monitor("Buyer");
    run(&mut b, &[OFFER]);
    assert_eq!(
        refused(
            &b,
            Step::Recv {
                from: "Seller",
                message: "String"
            }
        ),
        pair("recv Answer from Seller", "recv String from Seller")
    );
    assert!(b.check(&ANSWER).is_ok());
}

#[test]
fn any_step_after_the_end() {
    let mut b = monitor("Buyer");
    run(
        &mut b,
        &[
            OFFER,
            ANSWER,
            Step::Choose {
                to: "Seller",
                label: "reject",
            },
        ],
    );
    assert!(b.is_complete());
    for step in [
        OFFER,
        ANSWER,
        Step::Choose {
            to: "Seller",
            label: "accept",
        },
        Step::Offer {
            from: "Seller",
            label: None,
        },
    ] {
        let (expected, attempted) = refused(&b, step);
        assert_eq!(expected, "end of protocol");
        assert_eq!(attempted, step.to_string());
    }
    let v = b.check(&OFFER).unwrap_err();
    assert_eq!(
        v.to_string(),
        "expected end of protocol, attempted send Price to Seller"
    );
}

#[test]
fn check_does_not_change_state() {
    let mut b = monitor("Buyer");
    let at = |m: &Monitor| {
        let mut s = String::new();
        m.describe(&mut s);
        s
    };
    let start = at(&b);
    for _ in 0..3 {
        assert!(b.check(&OFFER).is_ok());
        assert!(b.check(&ANSWER).is_err());
    }
    assert_eq!(at(&b), start);
    assert!(!b.is_complete());

    // A refused step yields no transition, so nothing can advance past it;
    // a transition that names no node of the monitor is ignored.
    assert!(b.step(&ANSWER).is_err());
    assert_eq!(at(&b), start);
    b.advance(rumpsteak_aura::Transition::new(usize::MAX));
    assert_eq!(at(&b), start);
    run(&mut b, &[OFFER, ANSWER]);
    let before_choice = at(&b);
    assert!(
        b.step(&Step::Choose {
            to: "Seller",
            label: "maybe",
        })
        .is_err()
    );
    assert_eq!(at(&b), before_choice);

    // An offer before its label is known does not move either.
    let mut s = monitor("Seller");
    run(
        &mut s,
        &[
            Step::Recv {
                from: "Buyer",
                message: "Price",
            },
            Step::Send {
                to: "Buyer",
                message: "Answer",
            },
        ],
    );
    let before_offer = at(&s);
    s.step(&Step::Offer {
        from: "Buyer",
        label: None,
    })
    .unwrap();
    assert_eq!(at(&s), before_offer);
    run(
        &mut s,
        &[Step::Offer {
            from: "Buyer",
            label: Some("accept"),
        }],
    );
    assert_eq!(at(&s), "next: recv Pay(Money) from Buyer; end");
}
