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
//! Each role runs in its own tokio task. Every step is printed by the role
//! that takes it, just before the send that lets the next role continue, so
//! the output is in protocol order on every run. At the end each role's
//! session metadata is printed, and the channels are closed.
//!
//! Run it with `cargo run --example flagship`.

mod common;

use common::{
    BoxError, Endpoint, Handler, Offer, Receipt, Refusal, Role, connect, finish, print_metadata,
};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError, Label};

const OFFER: Label = Label("offer");
const DONE: Label = Label("done");
const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

/// The lowest price the seller accepts.
const MIN_PRICE: u32 = 30;

/// The role names padded to one width, so the log lines up.
fn name(role: Role) -> String {
    format!("{:<11}", format!("{role:?}"))
}

fn step(from: Role, to: Role, what: impl std::fmt::Display) {
    println!("  {} -> {} {what}", name(from), name(to));
}

async fn buyer(mut ep: Endpoint, offers: Vec<Offer>) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    for (round, offer) in offers.into_iter().enumerate() {
        println!("Round {}", round + 1);
        step(
            Role::Buyer,
            Role::Coordinator,
            format_args!("offer: {} for {}", offer.item, offer.price),
        );
        h.choose(&mut ep, Role::Coordinator, OFFER).await?;
        h.send(&mut ep, Role::Coordinator, &offer).await?;

        let decision = h
            .offer_among(&mut ep, Role::Coordinator, &[ACCEPT, REJECT])
            .await?;
        if decision == ACCEPT {
            let receipt: Receipt = h.recv(&mut ep, Role::Coordinator).await?;
            println!(
                "  {}                bought {} for {} (receipt #{})",
                name(Role::Buyer),
                receipt.item,
                receipt.price,
                receipt.number
            );
        } else {
            let refusal: Refusal = h.recv(&mut ep, Role::Coordinator).await?;
            println!(
                "  {}                gave up on {}: {}",
                name(Role::Buyer),
                offer.item,
                refusal.reason
            );
        }
    }
    println!("End");
    step(Role::Buyer, Role::Coordinator, "done");
    h.choose(&mut ep, Role::Coordinator, DONE).await?;
    Ok(ep)
}

async fn coordinator(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    loop {
        let next = h.offer_among(&mut ep, Role::Buyer, &[OFFER, DONE]).await?;
        if next == DONE {
            step(Role::Coordinator, Role::Seller, "done");
            h.choose(&mut ep, Role::Seller, DONE).await?;
            return Ok(ep);
        }

        let offer: Offer = h.recv(&mut ep, Role::Buyer).await?;
        step(
            Role::Coordinator,
            Role::Seller,
            format_args!("offer: {} for {} (relayed)", offer.item, offer.price),
        );
        h.choose(&mut ep, Role::Seller, OFFER).await?;
        h.send(&mut ep, Role::Seller, &offer).await?;

        let decision = h
            .offer_among(&mut ep, Role::Seller, &[ACCEPT, REJECT])
            .await?;
        step(Role::Coordinator, Role::Buyer, decision);
        h.choose(&mut ep, Role::Buyer, decision).await?;
        if decision == ACCEPT {
            let receipt: Receipt = h.recv(&mut ep, Role::Seller).await?;
            step(
                Role::Coordinator,
                Role::Buyer,
                format_args!("receipt #{} (relayed)", receipt.number),
            );
            h.send(&mut ep, Role::Buyer, &receipt).await?;
        } else {
            let refusal: Refusal = h.recv(&mut ep, Role::Seller).await?;
            step(Role::Coordinator, Role::Buyer, "refusal (relayed)");
            h.send(&mut ep, Role::Buyer, &refusal).await?;
        }
    }
}

async fn seller(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    let mut receipts = 0;
    loop {
        let next = h
            .offer_among(&mut ep, Role::Coordinator, &[OFFER, DONE])
            .await?;
        if next == DONE {
            println!("  {}                closes the shop", name(Role::Seller));
            return Ok(ep);
        }

        let offer: Offer = h.recv(&mut ep, Role::Coordinator).await?;
        if offer.price >= MIN_PRICE {
            receipts += 1;
            let receipt = Receipt {
                number: receipts,
                item: offer.item,
                price: offer.price,
            };
            // One print for both steps: once `accept` is sent, the
            // coordinator prints concurrently.
            step(
                Role::Seller,
                Role::Coordinator,
                format_args!(
                    "accept ({} >= {MIN_PRICE}), then receipt #{}",
                    offer.price, receipt.number
                ),
            );
            h.choose(&mut ep, Role::Coordinator, ACCEPT).await?;
            h.send(&mut ep, Role::Coordinator, &receipt).await?;
        } else {
            let refusal = Refusal {
                reason: format!("{} is below the minimum of {MIN_PRICE}", offer.price),
            };
            step(
                Role::Seller,
                Role::Coordinator,
                format_args!("reject ({} < {MIN_PRICE}), then refusal", offer.price),
            );
            h.choose(&mut ep, Role::Coordinator, REJECT).await?;
            h.send(&mut ep, Role::Coordinator, &refusal).await?;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Set up every channel before the protocol starts: the coordinator sits
    // between the buyer and the seller, who never talk directly.
    let mut buyer_ep = Endpoint::new(Role::Buyer);
    let mut coordinator_ep = Endpoint::new(Role::Coordinator);
    let mut seller_ep = Endpoint::new(Role::Seller);
    connect(&mut buyer_ep, &mut coordinator_ep);
    connect(&mut coordinator_ep, &mut seller_ep);

    let offers = vec![
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
    ];

    let buyer = tokio::spawn(buyer(buyer_ep, offers));
    let coordinator = tokio::spawn(coordinator(coordinator_ep));
    let seller = tokio::spawn(seller(seller_ep));

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
