//! Labels of an attached protocol are registered: a hostile peer that fills
//! the table of learned labels cannot stop a monitored endpoint from
//! offering them. In its own test binary because it fills the table for the
//! whole process.

use rumpsteak_aura_choreography::effects::handlers::rumpsteak::{
    MAX_INTERNED_LABELS, MAX_LABELS_PER_SESSION, RumpsteakEndpoint, RumpsteakHandler, SimpleChannel,
};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, Label};
use rumpsteak_aura_choreography::protocol::Protocol;
use rumpsteak_aura_choreography::transport::wire;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Buyer,
    Seller,
    Mallory,
}

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

type Handler = RumpsteakHandler<Role, ()>;

const DEAL: &str = "
    roles Buyer, Seller;
    choice at Seller {
        deal_accepted: { Seller -> Buyer: Receipt; }
        deal_rejected: { Seller -> Buyer: Refusal; }
    }";

#[tokio::test]
async fn protocol_labels_survive_a_full_table() {
    let protocol = Protocol::parse(DEAL).unwrap();
    let mut buyer =
        RumpsteakEndpoint::new(Role::Buyer).with_protocol(protocol.monitor_for("Buyer").unwrap());
    let mut seller = RumpsteakEndpoint::new(Role::Seller);
    let (b, s) = SimpleChannel::pair();
    buyer.register_channel(Role::Seller, b);
    seller.register_channel(Role::Buyer, s);
    let mut h = Handler::new();

    // Mallory reconnects again and again, teaching new labels each time,
    // until the process-wide table of learned labels is full.
    let rounds = MAX_INTERNED_LABELS / MAX_LABELS_PER_SESSION as usize + 1;
    let mut refused = 0;
    for r in 0..rounds {
        let mut victim = RumpsteakEndpoint::new(Role::Buyer);
        let (mut raw, ch) = SimpleChannel::pair();
        victim.register_channel(Role::Mallory, ch);
        for n in 0..MAX_LABELS_PER_SESSION {
            raw.send(wire::encode_label(&format!("junk-{r}-{n}")).unwrap())
                .await
                .unwrap();
            if h.offer(&mut victim, Role::Mallory).await.is_err() {
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the process-wide cap was reached");

    // The protocol's own label still goes through a plain offer.
    h.choose(&mut seller, Role::Buyer, Label("deal_accepted"))
        .await
        .unwrap();
    assert_eq!(
        h.offer(&mut buyer, Role::Seller).await.unwrap(),
        Label("deal_accepted")
    );
    let meta = buyer.get_metadata(&Role::Seller).unwrap();
    assert_eq!(
        meta.state_description,
        "Seller chose deal_accepted | next: recv Receipt from Seller; end"
    );
}

#[tokio::test]
async fn a_monitored_session_closed_early_is_complete() {
    let protocol = Protocol::parse(DEAL).unwrap();
    let mut buyer =
        RumpsteakEndpoint::new(Role::Buyer).with_protocol(protocol.monitor_for("Buyer").unwrap());
    let (b, s) = SimpleChannel::pair();
    buyer.register_channel(Role::Seller, b);
    assert!(!buyer.get_metadata(&Role::Seller).unwrap().is_complete);
    drop(s);
    let e = Handler::new()
        .offer(&mut buyer, Role::Seller)
        .await
        .unwrap_err();
    assert!(e.is_closed());
    let meta = buyer.get_metadata(&Role::Seller).unwrap();
    assert!(meta.is_complete, "{meta:?}");
    assert!(
        meta.state_description
            .starts_with("closed by Seller | next: offer")
    );
}
