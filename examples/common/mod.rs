//! Roles, messages and setup shared by the examples.
//!
//! Each example is its own crate and uses only part of this module, so
//! unused items are expected here.
#![allow(dead_code)]

pub(crate) mod certs;
pub(crate) mod flagship;
pub(crate) mod launch;
pub(crate) mod narrate;
pub(crate) mod typed;

use std::time::Duration;

use rumpsteak_aura_choreography::effects::{
    ChoreographyError,
    handlers::rumpsteak::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel},
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// Every role the examples use. Two-party examples use `Alice` and `Bob`;
/// the flagship and pattern 4 use `Buyer`, `Coordinator` and `Seller`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Alice,
    Bob,
    Buyer,
    Coordinator,
    Seller,
}

impl rumpsteak_aura::Role for Role {
    type Message = Msg;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// The protocol's message type, which names every message the roles
/// exchange. The handler sends each payload type directly (any serde type
/// will do); this enum is the role's `Message` type parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Msg {
    Request(Request),
    Response(Response),
    Item(Item),
    Ack(Ack),
    Offer(Offer),
    Receipt(Receipt),
    Refusal(Refusal),
}

/// A query from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) query: String,
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) answer: String,
}

/// One item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) id: u32,
    pub(crate) name: String,
}

/// The acknowledgement of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ack {
    pub(crate) id: u32,
}

/// A buyer's offer for an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Offer {
    pub(crate) item: String,
    pub(crate) price: u32,
}

/// A seller's receipt for an accepted offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Receipt {
    pub(crate) number: u32,
    pub(crate) item: String,
    pub(crate) price: u32,
}

/// A seller's reason for rejecting an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Refusal {
    pub(crate) reason: String,
}

/// The handler every example uses. It is stateless and `Copy`: each role
/// makes its own.
pub(crate) type Handler = RumpsteakHandler<Role, Msg>;

/// One role's endpoint.
pub(crate) type Endpoint = RumpsteakEndpoint<Role>;

/// Connects two endpoints with an in-memory channel pair, each registered
/// under the other's role.
pub(crate) fn connect(a: &mut Endpoint, b: &mut Endpoint) {
    let (a_end, b_end) = SimpleChannel::pair();
    a.register_channel(*b.local_role(), a_end);
    b.register_channel(*a.local_role(), b_end);
}

/// Two new endpoints, connected to each other.
pub(crate) fn pair(a: Role, b: Role) -> (Endpoint, Endpoint) {
    let mut a = Endpoint::new(a);
    let mut b = Endpoint::new(b);
    connect(&mut a, &mut b);
    (a, b)
}

/// Buyer, coordinator and seller endpoints, in that order. The coordinator
/// sits between the other two, who are not connected to each other.
pub(crate) fn purchase_endpoints() -> [Endpoint; 3] {
    let mut buyer = Endpoint::new(Role::Buyer);
    let mut coordinator = Endpoint::new(Role::Coordinator);
    let mut seller = Endpoint::new(Role::Seller);
    connect(&mut buyer, &mut coordinator);
    connect(&mut coordinator, &mut seller);
    [buyer, coordinator, seller]
}

/// Prints every session's metadata of an endpoint, one line per peer, in
/// registration order.
pub(crate) fn print_metadata(ep: &Endpoint) {
    println!("  {:?}", ep.local_role());
    for (peer, meta) in ep.all_metadata() {
        println!(
            "    with {:<12} {:>2} operations  complete: {:<5}  state: {}",
            format!("{peer:?}:"),
            meta.operation_count,
            meta.is_complete,
            meta.state_description,
        );
    }
}

/// The error type of the examples' `main`.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a role may run before the example gives up. The examples finish
/// in milliseconds; the deadline only turns a bug into an error instead of a
/// hang.
pub(crate) const EXAMPLE_DEADLINE: Duration = Duration::from_secs(10);

/// Waits for a role's task, under [`EXAMPLE_DEADLINE`], and returns what it
/// returned (usually its endpoint).
pub(crate) async fn finish<T>(
    task: JoinHandle<Result<T, ChoreographyError>>,
) -> Result<T, BoxError> {
    match tokio::time::timeout(EXAMPLE_DEADLINE, task).await {
        Ok(joined) => Ok(joined??),
        Err(_) => Err(format!("a role did not finish within {EXAMPLE_DEADLINE:?}").into()),
    }
}
