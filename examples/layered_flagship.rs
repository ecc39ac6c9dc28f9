//! The flagship purchase with every role's handler wrapped in `Traced` and
//! `Metered`: the roles run as in `flagship`, and each role's metrics
//! snapshot is printed at the end. With a `tracing` subscriber installed
//! by the application (this example has none, so `Traced` costs one level
//! check per operation), every operation would show as a debug span.
//!
//! The roles of `common::flagship` make their own bare handler, so the
//! three role functions are written here once more, generic over any
//! handler of a stack (`HandlerExt` keeps `offer_among` reachable).
//!
//! Run with `cargo run -p rumpsteak-aura-examples --example layered_flagship`.

mod common;

use common::flagship::{ACCEPT, DONE, OFFER, REJECT, decide, offers};
use common::{BoxError, Endpoint, Handler, Offer, Receipt, Refusal, Role, purchase_endpoints};
use rumpsteak_aura_choreography::effects::ChoreographyError;
use rumpsteak_aura_choreography::layers::{HandlerExt, Metered, MetricsSnapshot, Traced};

/// Every role's handler: spans around metrics around the bare handler,
/// timing every operation (the run is short).
type Layered = Traced<Metered<Handler>>;

fn layered() -> Layered {
    Traced::new(Metered::new(Handler::new()).with_latency_sampling(1))
}

async fn buyer<H>(h: &mut H, ep: &mut Endpoint, offers: Vec<Offer>) -> Result<(), ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    for offer in offers {
        h.choose(ep, Role::Coordinator, OFFER).await?;
        h.send(ep, Role::Coordinator, &offer).await?;
        if h.offer_among(ep, Role::Coordinator, &[ACCEPT, REJECT])
            .await?
            == ACCEPT
        {
            let receipt: Receipt = h.recv(ep, Role::Coordinator).await?;
            println!(
                "buyer: bought {} for {} (receipt {})",
                receipt.item, receipt.price, receipt.number
            );
        } else {
            let refusal: Refusal = h.recv(ep, Role::Coordinator).await?;
            println!("buyer: {} refused: {}", offer.item, refusal.reason);
        }
    }
    h.choose(ep, Role::Coordinator, DONE).await
}

async fn coordinator<H>(h: &mut H, ep: &mut Endpoint) -> Result<(), ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    loop {
        if h.offer_among(ep, Role::Buyer, &[OFFER, DONE]).await? == DONE {
            return h.choose(ep, Role::Seller, DONE).await;
        }
        let offer: Offer = h.recv(ep, Role::Buyer).await?;
        h.choose(ep, Role::Seller, OFFER).await?;
        h.send(ep, Role::Seller, &offer).await?;
        let decision = h.offer_among(ep, Role::Seller, &[ACCEPT, REJECT]).await?;
        h.choose(ep, Role::Buyer, decision).await?;
        if decision == ACCEPT {
            let receipt: Receipt = h.recv(ep, Role::Seller).await?;
            h.send(ep, Role::Buyer, &receipt).await?;
        } else {
            let refusal: Refusal = h.recv(ep, Role::Seller).await?;
            h.send(ep, Role::Buyer, &refusal).await?;
        }
    }
}

async fn seller<H>(h: &mut H, ep: &mut Endpoint) -> Result<(), ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let mut receipts = 0;
    loop {
        if h.offer_among(ep, Role::Coordinator, &[OFFER, DONE]).await? == DONE {
            return Ok(());
        }
        let offer: Offer = h.recv(ep, Role::Coordinator).await?;
        match decide(&offer, receipts + 1) {
            Ok(receipt) => {
                receipts += 1;
                h.choose(ep, Role::Coordinator, ACCEPT).await?;
                h.send(ep, Role::Coordinator, &receipt).await?;
            }
            Err(refusal) => {
                h.choose(ep, Role::Coordinator, REJECT).await?;
                h.send(ep, Role::Coordinator, &refusal).await?;
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let [mut eb, mut ec, mut es] = purchase_endpoints();
    let (mut hb, mut hc, mut hs) = (layered(), layered(), layered());
    // One task, three roles.
    let run = async {
        let (b, c, s) = tokio::join!(
            buyer(&mut hb, &mut eb, offers()),
            coordinator(&mut hc, &mut ec),
            seller(&mut hs, &mut es),
        );
        b.and(c).and(s)
    };
    tokio::time::timeout(common::EXAMPLE_DEADLINE, run).await??;

    println!();
    println!("metrics snapshots:");
    for h in [&hb, &hc, &hs] {
        let snapshot: MetricsSnapshot = h.inner().snapshot();
        print!("{snapshot}");
    }
    Ok(())
}
