//! Pattern 4 of the guide: multi-party coordination.
//!
//! The Coordinator relays a Buyer's offer to the Seller and the Seller's
//! response back, so it alone decides the order of events. Each role runs
//! in its own task. The flagship example extends this with a choice.
//!
//! Run it with `cargo run --example pattern4_multi_party`.

mod common;

use common::{
    BoxError, Endpoint, Handler, Offer, Response, Role, finish, print_metadata, purchase_endpoints,
};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError};

async fn buyer(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut handler = Handler::new();
    let offer = Offer {
        item: "bicycle".into(),
        price: 120,
    };
    handler.send(&mut ep, Role::Coordinator, &offer).await?;
    let response: Response = handler.recv(&mut ep, Role::Coordinator).await?;
    println!("Buyer:       {}", response.answer);
    Ok(ep)
}

async fn coordinator(mut endpoint: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut handler = Handler::new();
    let offer: Offer = handler.recv(&mut endpoint, Role::Buyer).await?;
    println!(
        "Coordinator: relaying {} for {} to Seller",
        offer.item, offer.price
    );
    handler.send(&mut endpoint, Role::Seller, &offer).await?;

    let response: Response = handler.recv(&mut endpoint, Role::Seller).await?;
    println!("Coordinator: relaying the response to Buyer");
    handler.send(&mut endpoint, Role::Buyer, &response).await?;
    Ok(endpoint)
}

async fn seller(mut ep: Endpoint) -> Result<Endpoint, ChoreographyError> {
    let mut handler = Handler::new();
    let offer: Offer = handler.recv(&mut ep, Role::Coordinator).await?;
    let response = Response {
        answer: format!("the {} is yours for {}", offer.item, offer.price),
    };
    println!("Seller:      answering the offer");
    handler.send(&mut ep, Role::Coordinator, &response).await?;
    Ok(ep)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let [buyer_ep, coordinator_ep, seller_ep] = purchase_endpoints();

    let buyer = tokio::spawn(buyer(buyer_ep));
    let coordinator = tokio::spawn(coordinator(coordinator_ep));
    let seller = tokio::spawn(seller(seller_ep));

    let endpoints = [
        finish(buyer).await?,
        finish(coordinator).await?,
        finish(seller).await?,
    ];

    println!();
    for ep in &endpoints {
        print_metadata(ep);
    }
    Ok(())
}
