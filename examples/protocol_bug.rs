//! A buggy role stopped by its monitor.
//!
//! The flagship protocol says that once the seller accepts, the coordinator
//! tells the buyer `accept` and then relays the receipt. This coordinator
//! forgets the `accept` and sends the receipt straight away. Its monitor
//! refuses the send before anything reaches the wire, so the buyer never
//! sees a message it does not expect: it sees the coordinator go away. The
//! example prints the readable violation and exits successfully once it
//! has shown it.
//!
//! Run it with `cargo run --example protocol_bug`.

mod common;

use common::flagship::{self, ACCEPT};
use common::{BoxError, Endpoint, Handler, Offer, Receipt, Role, finish};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError, Violation};

async fn buyer(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    let offer = Offer {
        item: "lamp".into(),
        price: 40,
    };
    h.send(&mut ep, Role::Coordinator, &offer).await?;
    // Waits for the decision, which the buggy coordinator never sends.
    let _decision = h.offer(&mut ep, Role::Coordinator).await?;
    let _receipt: Receipt = h.recv(&mut ep, Role::Coordinator).await?;
    Ok(ep)
}

/// The bug: after the seller accepts, the receipt goes to the buyer without
/// the `accept` choice first.
async fn buggy_coordinator(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    let offer: Offer = h.recv(&mut ep, Role::Buyer).await?;
    h.send(&mut ep, Role::Seller, &offer).await?;
    let _decision = h.offer(&mut ep, Role::Seller).await?;
    let receipt: Receipt = h.recv(&mut ep, Role::Seller).await?;
    // Missing: h.choose(&mut ep, Role::Buyer, ACCEPT).await?;
    h.send(&mut ep, Role::Buyer, &receipt).await?;
    Ok(ep)
}

async fn seller(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut h = Handler::new();
    let offer: Offer = h.recv(&mut ep, Role::Coordinator).await?;
    h.choose(&mut ep, Role::Coordinator, ACCEPT).await?;
    let receipt = Receipt {
        number: 1,
        item: offer.item,
        price: offer.price,
    };
    h.send(&mut ep, Role::Coordinator, &receipt).await?;
    Ok(ep)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let protocol = flagship::protocol()?;
    println!("Coordinator's local type:");
    println!("  {}", protocol.project("Coordinator")?);

    let [buyer_ep, coordinator_ep, seller_ep] = flagship::monitored_endpoints(&protocol)?;

    let buyer = tokio::spawn(buyer(buyer_ep));
    let coordinator = tokio::spawn(buggy_coordinator(coordinator_ep));
    let seller = tokio::spawn(seller(seller_ep));

    // The seller follows the protocol and finishes.
    finish(seller).await?;

    // The coordinator is stopped by its monitor. Its task returns the error
    // and drops its endpoint, which closes its channels.
    println!();
    match finish(coordinator).await {
        Err(e) => match e.downcast_ref::<ChoreographyError>() {
            Some(ChoreographyError::ProtocolViolation {
                violation:
                    Violation::OutOfProtocol {
                        expected,
                        attempted,
                    },
                ..
            }) => {
                println!("The monitor stopped the Coordinator:");
                println!("  {e}");
                println!("  expected:  {expected}");
                println!("  attempted: {attempted}");
            }
            _ => return Err(format!("unexpected error from the Coordinator: {e}").into()),
        },
        Ok(_) => return Err("the monitor let the buggy Coordinator through".into()),
    }

    // Nothing out of protocol reached the buyer: it sees the coordinator's
    // channel close while it waits for the decision.
    match finish(buyer).await {
        Err(e) => println!("The Buyer, waiting for the decision, got: {e}"),
        Ok(_) => return Err("the Buyer finished although the Coordinator failed".into()),
    }
    Ok(())
}
