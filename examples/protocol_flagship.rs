//! The flagship purchase written as a global type and run with every role
//! monitored.
//!
//! The global protocol (`GLOBAL_TYPE` in `common/flagship.rs`, shared with
//! `protocol_bug`) is parsed, checked, printed with each role's local
//! type, and then each role runs in its own tokio task with the monitor
//! projected for it attached to its endpoint. Every send, receive, choice and
//! offer is checked against the local type before it reaches the wire. Two
//! sessions run: one offer the seller accepts and one it rejects. After each,
//! every role's session metadata shows the protocol position (`end`) and
//! `complete: true`.
//!
//! Run it with `cargo run --example protocol_flagship`.

mod common;

use common::flagship::{self, ACCEPT, MIN_PRICE, REJECT};
use common::{BoxError, Endpoint, Handler, Offer, Receipt, Refusal, Role, finish, print_metadata};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError};
use rumpsteak_aura_choreography::protocol::Protocol;

async fn buyer(mut ep: Endpoint, offer: Offer) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    println!("  Buyer       offers {} for {}", offer.item, offer.price);
    h.send(&mut ep, Role::Coordinator, &offer).await?;
    if h.offer(&mut ep, Role::Coordinator).await? == ACCEPT {
        let receipt: Receipt = h.recv(&mut ep, Role::Coordinator).await?;
        println!(
            "  Buyer       bought {} for {} (receipt #{})",
            receipt.item, receipt.price, receipt.number
        );
    } else {
        let refusal: Refusal = h.recv(&mut ep, Role::Coordinator).await?;
        println!("  Buyer       was refused: {}", refusal.reason);
    }
    Ok(ep)
}

async fn coordinator(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    let offer: Offer = h.recv(&mut ep, Role::Buyer).await?;
    h.send(&mut ep, Role::Seller, &offer).await?;
    let decision = h.offer(&mut ep, Role::Seller).await?;
    println!("  Coordinator relays {decision} to Buyer");
    if decision == ACCEPT {
        let receipt: Receipt = h.recv(&mut ep, Role::Seller).await?;
        h.choose(&mut ep, Role::Buyer, ACCEPT).await?;
        h.send(&mut ep, Role::Buyer, &receipt).await?;
    } else {
        let refusal: Refusal = h.recv(&mut ep, Role::Seller).await?;
        h.choose(&mut ep, Role::Buyer, REJECT).await?;
        h.send(&mut ep, Role::Buyer, &refusal).await?;
    }
    Ok(ep)
}

async fn seller(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    let offer: Offer = h.recv(&mut ep, Role::Coordinator).await?;
    match flagship::decide(&offer, 1) {
        Ok(receipt) => {
            println!("  Seller      accepts ({} >= {MIN_PRICE})", offer.price);
            h.choose(&mut ep, Role::Coordinator, ACCEPT).await?;
            h.send(&mut ep, Role::Coordinator, &receipt).await?;
        }
        Err(refusal) => {
            println!("  Seller      rejects ({} < {MIN_PRICE})", offer.price);
            h.choose(&mut ep, Role::Coordinator, REJECT).await?;
            h.send(&mut ep, Role::Coordinator, &refusal).await?;
        }
    }
    Ok(ep)
}

/// Runs one session of the protocol with every role monitored, and prints
/// each role's final metadata.
async fn session(protocol: &Protocol, offer: Offer) -> Result<(), BoxError> {
    let [buyer_ep, coordinator_ep, seller_ep] = flagship::monitored_endpoints(protocol)?;

    let buyer = tokio::spawn(buyer(buyer_ep, offer));
    let coordinator = tokio::spawn(coordinator(coordinator_ep));
    let seller = tokio::spawn(seller(seller_ep));
    let endpoints = [
        finish(buyer).await?,
        finish(coordinator).await?,
        finish(seller).await?,
    ];

    println!("Final metadata");
    for ep in &endpoints {
        print_metadata(ep);
    }
    let complete = endpoints
        .iter()
        .all(|ep| ep.all_metadata().iter().all(|(_, m)| m.is_complete));
    println!("Every role complete: {complete}");
    if !complete {
        return Err("a role did not reach the end of its protocol".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let protocol = flagship::protocol()?;
    println!("Global type");
    println!("{protocol}");
    println!("Local types");
    for role in protocol.roles() {
        println!("  {role}: {}", protocol.project(role)?);
    }

    println!();
    println!("Session 1");
    let lamp = Offer {
        item: "lamp".into(),
        price: 40,
    };
    session(&protocol, lamp).await?;

    println!();
    println!("Session 2");
    let chair = Offer {
        item: "chair".into(),
        price: 15,
    };
    session(&protocol, chair).await?;
    Ok(())
}
