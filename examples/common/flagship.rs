//! The flagship purchase, shared by `flagship`, `flagship_tcp`,
//! `protocol_flagship` and `protocol_bug`.
//!
//! The three looping role functions are written once against an endpoint
//! and a [`Narrator`]: `flagship` runs them in tokio tasks over in-memory
//! channels, `flagship_tcp` runs each in its own process over TCP or
//! WebSocket sessions. Only the setup and the wording of the log differ.

use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_choreography::protocol::Protocol;

use super::{BoxError, Endpoint, Handler, Offer, Receipt, Refusal, Role, purchase_endpoints};

pub(crate) const OFFER: Label = Label("offer");
pub(crate) const DONE: Label = Label("done");
pub(crate) const ACCEPT: Label = Label("accept");
pub(crate) const REJECT: Label = Label("reject");

/// The lowest price the seller accepts.
pub(crate) const MIN_PRICE: u32 = 30;

/// One round of the flagship as a global type. The seller decides; the
/// coordinator, who learns the decision, relays it to the buyer with a
/// choice of its own.
pub(crate) const GLOBAL_TYPE: &str = "
roles Buyer, Coordinator, Seller;
Buyer -> Coordinator: Offer(Offer);
Coordinator -> Seller: Offer(Offer);
choice at Seller {
    accept: {
        Seller -> Coordinator: Receipt(Receipt);
        choice at Coordinator {
            accept: { Coordinator -> Buyer: Receipt(Receipt); }
        }
    }
    reject: {
        Seller -> Coordinator: Refusal(Refusal);
        choice at Coordinator {
            reject: { Coordinator -> Buyer: Refusal(Refusal); }
        }
    }
}
";

/// [`GLOBAL_TYPE`], parsed and validated.
pub(crate) fn protocol() -> Result<Protocol, BoxError> {
    let protocol = Protocol::parse(GLOBAL_TYPE)?;
    protocol.validate()?;
    Ok(protocol)
}

/// Buyer, coordinator and seller endpoints, connected as in
/// [`purchase_endpoints`], each with the monitor projected for it attached.
/// Roles map to protocol roles by their `Debug` form: `Role::Buyer` is the
/// protocol's `Buyer`.
pub(crate) fn monitored_endpoints(protocol: &Protocol) -> Result<[Endpoint; 3], BoxError> {
    let monitored = |ep: Endpoint| -> Result<Endpoint, BoxError> {
        let monitor = protocol.monitor_for(&format!("{:?}", ep.local_role()))?;
        Ok(ep.with_protocol(monitor))
    };
    let [buyer, coordinator, seller] = purchase_endpoints();
    Ok([
        monitored(buyer)?,
        monitored(coordinator)?,
        monitored(seller)?,
    ])
}

/// The buyer's offers in the looping examples.
pub(crate) fn offers() -> Vec<Offer> {
    vec![
        Offer {
            item: "lamp".into(),
            price: 40,
        },
        Offer {
            item: "chair".into(),
            price: 15,
        },
        Offer {
            item: "chair".into(),
            price: 35,
        },
    ]
}

/// The seller's decision on an offer: a receipt numbered `number` if the
/// price is at least [`MIN_PRICE`], otherwise a refusal.
pub(crate) fn decide(offer: &Offer, number: u32) -> Result<Receipt, Refusal> {
    if offer.price >= MIN_PRICE {
        Ok(Receipt {
            number,
            item: offer.item.clone(),
            price: offer.price,
        })
    } else {
        Err(Refusal {
            reason: format!("{} is below the minimum of {MIN_PRICE}", offer.price),
        })
    }
}

/// What the looping roles report, and where: each method is called by the
/// role that takes the step, just before the send that lets the next role
/// continue (or, for the buyer's results, right after the receive).
pub(crate) trait Narrator {
    /// The buyer is about to offer `offer` in round `round` (from 1).
    fn buyer_offers(&self, round: usize, offer: &Offer);
    /// The buyer received a receipt.
    fn buyer_bought(&self, receipt: &Receipt);
    /// The buyer received a refusal for `offer`.
    fn buyer_refused(&self, offer: &Offer, refusal: &Refusal);
    /// The buyer is about to choose `done`.
    fn buyer_done(&self);
    /// The coordinator is about to relay `offer` to the seller.
    fn coordinator_relays_offer(&self, offer: &Offer);
    /// The coordinator is about to relay the seller's decision to the buyer.
    fn coordinator_relays_decision(&self, decision: Label);
    /// The coordinator is about to relay a receipt to the buyer.
    fn coordinator_relays_receipt(&self, receipt: &Receipt);
    /// The coordinator is about to relay a refusal to the buyer.
    fn coordinator_relays_refusal(&self, refusal: &Refusal);
    /// The coordinator is about to relay `done` to the seller.
    fn coordinator_relays_done(&self);
    /// The seller is about to accept and send `receipt`.
    fn seller_accepts(&self, receipt: &Receipt);
    /// The seller is about to reject `offer` and send `refusal`.
    fn seller_rejects(&self, offer: &Offer, refusal: &Refusal);
    /// The seller received `done`.
    fn seller_closes(&self);
}

/// The buyer: makes each offer in turn, then chooses `done`.
pub(crate) async fn buyer(
    ep: &mut Endpoint,
    offers: Vec<Offer>,
    narrator: &impl Narrator,
) -> Result<(), ChoreographyError> {
    let mut h = Handler::new();
    for (round, offer) in offers.into_iter().enumerate() {
        narrator.buyer_offers(round + 1, &offer);
        h.choose(ep, Role::Coordinator, OFFER).await?;
        h.send(ep, Role::Coordinator, &offer).await?;

        let decision = h
            .offer_among(ep, Role::Coordinator, &[ACCEPT, REJECT])
            .await?;
        if decision == ACCEPT {
            let receipt: Receipt = h.recv(ep, Role::Coordinator).await?;
            narrator.buyer_bought(&receipt);
        } else {
            let refusal: Refusal = h.recv(ep, Role::Coordinator).await?;
            narrator.buyer_refused(&offer, &refusal);
        }
    }
    narrator.buyer_done();
    h.choose(ep, Role::Coordinator, DONE).await
}

/// The coordinator: relays each offer to the seller and the seller's
/// decision and answer back to the buyer, until the buyer is done.
pub(crate) async fn coordinator(
    ep: &mut Endpoint,
    narrator: &impl Narrator,
) -> Result<(), ChoreographyError> {
    let mut h = Handler::new();
    loop {
        if h.offer_among(ep, Role::Buyer, &[OFFER, DONE]).await? == DONE {
            narrator.coordinator_relays_done();
            return h.choose(ep, Role::Seller, DONE).await;
        }

        let offer: Offer = h.recv(ep, Role::Buyer).await?;
        narrator.coordinator_relays_offer(&offer);
        h.choose(ep, Role::Seller, OFFER).await?;
        h.send(ep, Role::Seller, &offer).await?;

        let decision = h.offer_among(ep, Role::Seller, &[ACCEPT, REJECT]).await?;
        narrator.coordinator_relays_decision(decision);
        h.choose(ep, Role::Buyer, decision).await?;
        if decision == ACCEPT {
            let receipt: Receipt = h.recv(ep, Role::Seller).await?;
            narrator.coordinator_relays_receipt(&receipt);
            h.send(ep, Role::Buyer, &receipt).await?;
        } else {
            let refusal: Refusal = h.recv(ep, Role::Seller).await?;
            narrator.coordinator_relays_refusal(&refusal);
            h.send(ep, Role::Buyer, &refusal).await?;
        }
    }
}

/// The seller: accepts or rejects each offer by its price, numbering its
/// receipts from 1, until the coordinator relays `done`.
pub(crate) async fn seller(
    ep: &mut Endpoint,
    narrator: &impl Narrator,
) -> Result<(), ChoreographyError> {
    let mut h = Handler::new();
    let mut receipts = 0;
    loop {
        if h.offer_among(ep, Role::Coordinator, &[OFFER, DONE]).await? == DONE {
            narrator.seller_closes();
            return Ok(());
        }

        let offer: Offer = h.recv(ep, Role::Coordinator).await?;
        match decide(&offer, receipts + 1) {
            Ok(receipt) => {
                receipts += 1;
                narrator.seller_accepts(&receipt);
                h.choose(ep, Role::Coordinator, ACCEPT).await?;
                h.send(ep, Role::Coordinator, &receipt).await?;
            }
            Err(refusal) => {
                narrator.seller_rejects(&offer, &refusal);
                h.choose(ep, Role::Coordinator, REJECT).await?;
                h.send(ep, Role::Coordinator, &refusal).await?;
            }
        }
    }
}
