//! The flagship purchase (see `flagship.rs`) with typed roles: the protocol
//! is a global type given to `protocol!`, and each role is written against
//! the states generated for it, so a step the protocol does not allow at
//! that point (a wrong message, a wrong peer, a missing branch) is a
//! compile error rather than a run-time one.
//!
//! The global type and the three typed roles live in `common/typed.rs`,
//! shared with `typed_flagship_tcp`; this example supplies the log and runs
//! each role in its own tokio task over in-memory channels. Each endpoint
//! also carries the run-time monitor projected from the same protocol
//! (`purchase::monitor`), so its metadata shows the protocol position: the
//! typed roles and the monitor agree step by step.
//!
//! The outcome is the untyped flagship's: the lamp is bought, the first
//! chair offer is refused, the second bought. Every step is printed by the
//! role that takes it, just before the send that lets the next role
//! continue, so the output is in protocol order on every run.
//!
//! Run it with `cargo run --example typed_flagship`.

mod common;

use common::flagship::offers;
use common::narrate::{Steps, name};
use common::typed;
/// The generated protocol module, re-exported so that `cargo doc` shows
/// the typed API the roles are written against.
pub use common::typed::purchase;
use common::{BoxError, Endpoint, finish, print_metadata, purchase_endpoints};

/// `ep` with the monitor projected for its role attached.
fn monitored(ep: Endpoint) -> Result<Endpoint, BoxError> {
    let monitor = purchase::monitor(*ep.local_role())?;
    Ok(ep.with_protocol(monitor))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Set up every channel before the protocol starts: the coordinator sits
    // between the buyer and the seller, who never talk directly.
    let [buyer_ep, coordinator_ep, seller_ep] = purchase_endpoints();
    let mut buyer_ep = monitored(buyer_ep)?;
    let mut coordinator_ep = monitored(coordinator_ep)?;
    let mut seller_ep = monitored(seller_ep)?;

    // Each task owns its endpoint and hands it back when its role is done.
    let buyer = tokio::spawn(async move {
        typed::buyer(
            &mut buyer_ep,
            offers(),
            &Steps {
                done: "done, then close",
            },
        )
        .await?;
        Ok(buyer_ep)
    });
    let coordinator = tokio::spawn(async move {
        typed::coordinator(
            &mut coordinator_ep,
            &Steps {
                done: "done, then close",
            },
        )
        .await?;
        Ok(coordinator_ep)
    });
    let seller = tokio::spawn(async move {
        typed::seller(
            &mut seller_ep,
            &Steps {
                done: "done, then close",
            },
        )
        .await?;
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
