//! The flagship example: a three-party purchase with a choice.
//!
//! ```text
//! loop:
//!   Buyer chooses `offer` or `done` for Coordinator; Coordinator relays it to Seller
//!   on `offer`:
//!     Buyer       -> Coordinator : Offer { item, price }
//!     Coordinator -> Seller      : Offer
//!     Seller chooses `accept` or `reject` (by the price) for Coordinator
//!     Coordinator chooses the same for Buyer
//!     on `accept`: Seller -> Coordinator -> Buyer : Receipt
//!     on `reject`: Seller -> Coordinator -> Buyer : Refusal
//! ```
//!
//! The role functions live in `common/flagship.rs`, shared with
//! `flagship_tcp`; this example supplies the log. Each role runs in its own
//! tokio task. Every step is printed by the role
//! that takes it, just before the send that lets the next role continue, so
//! the output is in protocol order on every run. At the end each role's
//! session metadata is printed, and the channels are closed.
//!
//! Run it with `cargo run --example flagship`.

mod common;

use common::flagship::{self, MIN_PRICE, Narrator};
use common::{BoxError, Offer, Receipt, Refusal, Role, finish, print_metadata, purchase_endpoints};
use rumpsteak_aura_choreography::effects::Label;

/// The role names padded to one width, so the log lines up.
fn name(role: Role) -> String {
    format!("{:<11}", format!("{role:?}"))
}

fn step(from: Role, to: Role, what: impl std::fmt::Display) {
    println!("  {} -> {} {what}", name(from), name(to));
}

/// Logs every step as `from -> to what`, one round at a time.
struct Steps;

impl Narrator for Steps {
    fn buyer_offers(&self, round: usize, offer: &Offer) {
        println!("Round {round}");
        step(
            Role::Buyer,
            Role::Coordinator,
            format_args!("offer: {} for {}", offer.item, offer.price),
        );
    }

    fn buyer_bought(&self, receipt: &Receipt) {
        println!(
            "  {}                bought {} for {} (receipt #{})",
            name(Role::Buyer),
            receipt.item,
            receipt.price,
            receipt.number
        );
    }

    fn buyer_refused(&self, offer: &Offer, refusal: &Refusal) {
        println!(
            "  {}                gave up on {}: {}",
            name(Role::Buyer),
            offer.item,
            refusal.reason
        );
    }

    fn buyer_done(&self) {
        println!("End");
        step(Role::Buyer, Role::Coordinator, "done");
    }

    fn coordinator_relays_offer(&self, offer: &Offer) {
        step(
            Role::Coordinator,
            Role::Seller,
            format_args!("offer: {} for {} (relayed)", offer.item, offer.price),
        );
    }

    fn coordinator_relays_decision(&self, decision: Label) {
        step(Role::Coordinator, Role::Buyer, decision);
    }

    fn coordinator_relays_receipt(&self, receipt: &Receipt) {
        step(
            Role::Coordinator,
            Role::Buyer,
            format_args!("receipt #{} (relayed)", receipt.number),
        );
    }

    fn coordinator_relays_refusal(&self, _refusal: &Refusal) {
        step(Role::Coordinator, Role::Buyer, "refusal (relayed)");
    }

    fn coordinator_relays_done(&self) {
        step(Role::Coordinator, Role::Seller, "done");
    }

    fn seller_accepts(&self, receipt: &Receipt) {
        // One print for both steps: once `accept` is sent, the coordinator
        // prints concurrently.
        step(
            Role::Seller,
            Role::Coordinator,
            format_args!(
                "accept ({} >= {MIN_PRICE}), then receipt #{}",
                receipt.price, receipt.number
            ),
        );
    }

    fn seller_rejects(&self, offer: &Offer, _refusal: &Refusal) {
        step(
            Role::Seller,
            Role::Coordinator,
            format_args!("reject ({} < {MIN_PRICE}), then refusal", offer.price),
        );
    }

    fn seller_closes(&self) {
        println!("  {}                closes the shop", name(Role::Seller));
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Set up every channel before the protocol starts: the coordinator sits
    // between the buyer and the seller, who never talk directly.
    let [mut buyer_ep, mut coordinator_ep, mut seller_ep] = purchase_endpoints();

    // Each task owns its endpoint and hands it back when its role is done.
    let buyer = tokio::spawn(async move {
        flagship::buyer(&mut buyer_ep, flagship::offers(), &Steps).await?;
        Ok(buyer_ep)
    });
    let coordinator = tokio::spawn(async move {
        flagship::coordinator(&mut coordinator_ep, &Steps).await?;
        Ok(coordinator_ep)
    });
    let seller = tokio::spawn(async move {
        flagship::seller(&mut seller_ep, &Steps).await?;
        Ok(seller_ep)
    });

    let mut endpoints = [
        finish(buyer).await?,
        finish(coordinator).await?,
        finish(seller).await?,
    ];

    println!();
    println!("Final metadata (protocol finished, channels still open)");
    for ep in &endpoints {
        print_metadata(ep);
    }

    println!();
    println!("Closing");
    for ep in &mut endpoints {
        let closed = ep.close_all_channels();
        let complete = ep.all_metadata().iter().all(|(_, m)| m.is_complete);
        println!(
            "  {} closed {closed} channel(s); all closed: {}; sessions complete: {complete}",
            name(*ep.local_role()),
            ep.is_all_closed(),
        );
    }
    Ok(())
}
