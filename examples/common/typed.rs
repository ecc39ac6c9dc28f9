//! The looping flagship purchase with typed roles, shared by
//! `typed_flagship` (in memory) and `typed_flagship_tcp` (one process per
//! role).
//!
//! The protocol is written once as a global type, [`purchase::PROTOCOL`];
//! `protocol!` checks and projects it at compile time and generates one
//! module per role, whose states have exactly the steps the role's local
//! type allows. The three role functions below are the typed counterparts of
//! those in `common/flagship.rs`, with the same [`Narrator`] calls at the
//! same points: a step outside the protocol does not compile.
//!
//! The wire differs from the untyped loop in two frames, both required by
//! the projection rule for choices: when the coordinator relays `offer` to
//! the seller it tells the buyer too (the buyer's next step is with the
//! coordinator, so the buyer is one of the roles told), and `done` reaches
//! the seller with a `Close` message after the relayed choice (a choice
//! with an empty branch tells nobody).

use rumpsteak_aura_choreography::effects::ChoreographyError;
use rumpsteak_aura_choreography::protocol;

use super::flagship::{ACCEPT, Narrator, REJECT, decide};
use super::{Endpoint, Handler, Offer, Receipt, Refusal};

protocol! {
    /// The flagship purchase, looping over the buyer's offers: the buyer
    /// chooses `offer` or `done`, the coordinator relays the offer and the
    /// seller's decision, the seller accepts or rejects by the price.
    #[protocol(roles = "crate::common::Role")]
    pub mod purchase = "
        roles Buyer, Coordinator, Seller;
        rec Round {
            choice at Buyer {
                offer: {
                    Buyer -> Coordinator: Offer(Offer);
                    choice at Coordinator {
                        offer: {
                            Coordinator -> Seller: Offer(Offer);
                            choice at Seller {
                                accept: {
                                    Seller -> Coordinator: Receipt(Receipt);
                                    choice at Coordinator {
                                        accept: {
                                            Coordinator -> Buyer: Receipt(Receipt);
                                            continue Round;
                                        }
                                    }
                                }
                                reject: {
                                    Seller -> Coordinator: Refusal(Refusal);
                                    choice at Coordinator {
                                        reject: {
                                            Coordinator -> Buyer: Refusal(Refusal);
                                            continue Round;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                done: {
                    choice at Coordinator {
                        done: { Coordinator -> Seller: Close; }
                    }
                }
            }
        }
    ";
}

/// The buyer: makes each offer in turn, then chooses `done`.
pub(crate) async fn buyer(
    ep: &mut Endpoint,
    offers: Vec<Offer>,
    narrator: &impl Narrator,
) -> Result<(), ChoreographyError> {
    use purchase::buyer::{Branch2, Branch3, start};

    let mut h = Handler::new();
    let mut round = start(&mut h, ep)?;
    for (n, offer) in offers.into_iter().enumerate() {
        narrator.buyer_offers(n + 1, &offer);
        let sent = round
            .choose_offer()
            .await?
            .send_to_coordinator(&offer)
            .await?;
        // The coordinator's relay of `offer` to the seller.
        let Branch2::Offer(relayed) = sent.branch().await?;
        round = match relayed.branch().await? {
            Branch3::Accept(s) => {
                let (receipt, s) = s.recv_from_coordinator().await?;
                narrator.buyer_bought(&receipt);
                s
            }
            Branch3::Reject(s) => {
                let (refusal, s) = s.recv_from_coordinator().await?;
                narrator.buyer_refused(&offer, &refusal);
                s
            }
        };
    }
    narrator.buyer_done();
    round.choose_done().await?.finish();
    Ok(())
}

/// The coordinator: relays each offer to the seller and the seller's
/// decision and answer back to the buyer, until the buyer is done.
pub(crate) async fn coordinator(
    ep: &mut Endpoint,
    narrator: &impl Narrator,
) -> Result<(), ChoreographyError> {
    use purchase::coordinator::{Branch0, Branch4, start};

    let mut h = Handler::new();
    let mut round = start(&mut h, ep)?;
    loop {
        let s = match round.branch().await? {
            Branch0::Offer(s) => s,
            Branch0::Done(s) => {
                narrator.coordinator_relays_done();
                s.choose_done().await?.send_to_seller().await?.finish();
                return Ok(());
            }
        };
        let (offer, s) = s.recv_from_buyer().await?;
        narrator.coordinator_relays_offer(&offer);
        let s = s.choose_offer().await?.send_to_seller(&offer).await?;
        round = match s.branch().await? {
            Branch4::Accept(s) => {
                let (receipt, s) = s.recv_from_seller().await?;
                narrator.coordinator_relays_decision(ACCEPT);
                let s = s.choose_accept().await?;
                narrator.coordinator_relays_receipt(&receipt);
                s.send_to_buyer(&receipt).await?
            }
            Branch4::Reject(s) => {
                let (refusal, s) = s.recv_from_seller().await?;
                narrator.coordinator_relays_decision(REJECT);
                let s = s.choose_reject().await?;
                narrator.coordinator_relays_refusal(&refusal);
                s.send_to_buyer(&refusal).await?
            }
        };
    }
}

/// The seller: accepts or rejects each offer by its price, numbering its
/// receipts from 1, until the coordinator relays `done`.
pub(crate) async fn seller(
    ep: &mut Endpoint,
    narrator: &impl Narrator,
) -> Result<(), ChoreographyError> {
    use purchase::seller::{Branch0, start};

    let mut h = Handler::new();
    let mut round = start(&mut h, ep)?;
    let mut receipts = 0;
    loop {
        let s = match round.branch().await? {
            Branch0::Offer(s) => s,
            Branch0::Done(s) => {
                let ((), end) = s.recv_from_coordinator().await?;
                narrator.seller_closes();
                end.finish();
                return Ok(());
            }
        };
        let (offer, s) = s.recv_from_coordinator().await?;
        round = match decide(&offer, receipts + 1) {
            Ok(receipt) => {
                receipts += 1;
                narrator.seller_accepts(&receipt);
                s.choose_accept()
                    .await?
                    .send_to_coordinator(&receipt)
                    .await?
            }
            Err(refusal) => {
                narrator.seller_rejects(&offer, &refusal);
                s.choose_reject()
                    .await?
                    .send_to_coordinator(&refusal)
                    .await?
            }
        };
    }
}
