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

use common::flagship;
use common::narrate::{Steps, name};
use common::{BoxError, finish, print_metadata, purchase_endpoints};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Set up every channel before the protocol starts: the coordinator sits
    // between the buyer and the seller, who never talk directly.
    let [mut buyer_ep, mut coordinator_ep, mut seller_ep] = purchase_endpoints();

    // Each task owns its endpoint and hands it back when its role is done.
    let buyer = tokio::spawn(async move {
        flagship::buyer(&mut buyer_ep, flagship::offers(), &Steps { done: "done" }).await?;
        Ok(buyer_ep)
    });
    let coordinator = tokio::spawn(async move {
        flagship::coordinator(&mut coordinator_ep, &Steps { done: "done" }).await?;
        Ok(coordinator_ep)
    });
    let seller = tokio::spawn(async move {
        flagship::seller(&mut seller_ep, &Steps { done: "done" }).await?;
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
