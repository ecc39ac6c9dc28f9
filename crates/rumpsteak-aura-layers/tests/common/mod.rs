//! Roles, messages and the flagship purchase, written once against any
//! handler of a stack, for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
use rumpsteak_aura_layers::{HandlerExt, Metered, Recording, Traced};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    A,
    B,
    Buyer,
    Coordinator,
    Seller,
}

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

pub type Handler = RumpsteakHandler<Role, ()>;
pub type Endpoint = RumpsteakEndpoint<Role>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub item: String,
    pub price: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub number: u32,
    pub item: String,
    pub price: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: String,
}

pub const OFFER: Label = Label("offer");
pub const DONE: Label = Label("done");
pub const ACCEPT: Label = Label("accept");
pub const REJECT: Label = Label("reject");
pub const MIN_PRICE: u32 = 30;

/// A bound on every wait of a test, so that a bug fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
}

/// Two endpoints connected in memory.
pub fn pair(a: Role, b: Role) -> (Endpoint, Endpoint) {
    let (x, y) = SimpleChannel::pair();
    let mut ea = Endpoint::new(a);
    let mut eb = Endpoint::new(b);
    ea.register_channel(b, x);
    eb.register_channel(a, y);
    (ea, eb)
}

pub fn offers() -> Vec<Offer> {
    vec![
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
    ]
}

/// What the buyer ends up with: each offer's receipt or refusal.
pub type Outcome = Vec<Result<Receipt, Refusal>>;

pub async fn buyer<H>(
    h: &mut H,
    ep: &mut Endpoint,
    offers: Vec<Offer>,
) -> Result<Outcome, ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let mut outcome = Vec::new();
    for offer in offers {
        h.choose(ep, Role::Coordinator, OFFER).await?;
        h.send(ep, Role::Coordinator, &offer).await?;
        let decision = h
            .offer_among(ep, Role::Coordinator, &[ACCEPT, REJECT])
            .await?;
        if decision == ACCEPT {
            outcome.push(Ok(h.recv(ep, Role::Coordinator).await?));
        } else {
            outcome.push(Err(h.recv(ep, Role::Coordinator).await?));
        }
    }
    h.choose(ep, Role::Coordinator, DONE).await?;
    Ok(outcome)
}

/// Returns how many offers it relayed.
pub async fn coordinator<H>(h: &mut H, ep: &mut Endpoint) -> Result<u32, ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let mut relayed = 0;
    loop {
        if h.offer_among(ep, Role::Buyer, &[OFFER, DONE]).await? == DONE {
            h.choose(ep, Role::Seller, DONE).await?;
            return Ok(relayed);
        }
        let offer: Offer = h.recv(ep, Role::Buyer).await?;
        h.choose(ep, Role::Seller, OFFER).await?;
        h.send(ep, Role::Seller, &offer).await?;
        relayed += 1;
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

/// Returns how many receipts it issued. `min_price` is the lowest price
/// accepted.
pub async fn seller<H>(
    h: &mut H,
    ep: &mut Endpoint,
    min_price: u32,
) -> Result<u32, ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let mut receipts = 0;
    loop {
        if h.offer(ep, Role::Coordinator).await? == DONE {
            return Ok(receipts);
        }
        let offer: Offer = h.recv(ep, Role::Coordinator).await?;
        if offer.price >= min_price {
            receipts += 1;
            h.choose(ep, Role::Coordinator, ACCEPT).await?;
            let receipt = Receipt {
                number: receipts,
                item: offer.item,
                price: offer.price,
            };
            h.send(ep, Role::Coordinator, &receipt).await?;
        } else {
            h.choose(ep, Role::Coordinator, REJECT).await?;
            let refusal = Refusal {
                reason: format!("{} is below the minimum of {min_price}", offer.price),
            };
            h.send(ep, Role::Coordinator, &refusal).await?;
        }
    }
}

/// Buyer, coordinator and seller endpoints; the coordinator sits between
/// the other two. With `taps`, every session is registered through the
/// given recordings' taps (buyer's, coordinator's, seller's).
pub fn purchase_endpoints(taps: Option<&[Recording<Handler>; 3]>) -> [Endpoint; 3] {
    let mut buyer = Endpoint::new(Role::Buyer);
    let mut coordinator = Endpoint::new(Role::Coordinator);
    let mut seller = Endpoint::new(Role::Seller);
    let (b, cb) = SimpleChannel::pair();
    let (cs, s) = SimpleChannel::pair();
    match taps {
        Some([rb, rc, rs]) => {
            buyer.register_session(Role::Coordinator, rb.tap(&Role::Coordinator, b));
            coordinator.register_session(Role::Buyer, rc.tap(&Role::Buyer, cb));
            coordinator.register_session(Role::Seller, rc.tap(&Role::Seller, cs));
            seller.register_session(Role::Coordinator, rs.tap(&Role::Coordinator, s));
        }
        None => {
            buyer.register_channel(Role::Coordinator, b);
            coordinator.register_channel(Role::Buyer, cb);
            coordinator.register_channel(Role::Seller, cs);
            seller.register_channel(Role::Coordinator, s);
        }
    }
    [buyer, coordinator, seller]
}

/// The flagship's results: the buyer's outcome, the offers relayed, the
/// receipts issued.
pub type Results = (Outcome, u32, u32);

/// Runs the flagship with the three given handlers, each in its own task.
pub async fn run_flagship<H>(handlers: [H; 3], endpoints: [Endpoint; 3]) -> (Results, [H; 3])
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint> + Send + 'static,
{
    let [mut hb, mut hc, mut hs] = handlers;
    let [mut eb, mut ec, mut es] = endpoints;
    let b = tokio::spawn(async move {
        let r = buyer(&mut hb, &mut eb, offers()).await;
        (r, hb)
    });
    let c = tokio::spawn(async move {
        let r = coordinator(&mut hc, &mut ec).await;
        (r, hc)
    });
    let s = tokio::spawn(async move {
        let r = seller(&mut hs, &mut es, MIN_PRICE).await;
        (r, hs)
    });
    let all = async { (b.await, c.await, s.await) };
    let (b, c, s) = tokio::time::timeout(DEADLINE, all)
        .await
        .expect("flagship finished in time");
    let (rb, hb) = b.expect("buyer task");
    let (rc, hc) = c.expect("coordinator task");
    let (rs, hs) = s.expect("seller task");
    (
        (
            rb.expect("buyer"),
            rc.expect("coordinator"),
            rs.expect("seller"),
        ),
        [hb, hc, hs],
    )
}

/// What the flagship gives with the default offers.
pub fn expected_results() -> Results {
    (
        vec![
            Ok(Receipt {
                number: 1,
                item: "lamp".into(),
                price: 40,
            }),
            Err(Refusal {
                reason: "15 is below the minimum of 30".into(),
            }),
            Ok(Receipt {
                number: 2,
                item: "chair".into(),
                price: 35,
            }),
        ],
        3,
        2,
    )
}

/// Receives 20 numbers through `Traced<Metered<Recording>>` with a 1 ms
/// timeout around each receive; returns how many receives were cancelled.
pub fn cancelled_receives() -> u64 {
    let rt = runtime();
    let rec = Recording::new(Handler::new());
    let (mut a, mut b) = pair(Role::A, Role::B);
    let b_session_for_tap = {
        // Re-register B's session through the recording's tap.
        let (x, y) = rumpsteak_aura_handler::SimpleChannel::pair();
        a.register_channel(Role::B, x);
        y
    };
    b.register_session(Role::A, rec.tap(&Role::A, b_session_for_tap));
    let mut h = Traced::new(Metered::new(rec.clone()));

    let got = rt.block_on(async {
        let sender = async {
            let mut s = Handler::new();
            for i in 0..20u32 {
                // Let the receiver time out now and then.
                if i % 4 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                s.send(&mut a, Role::B, &i).await.expect("send");
            }
        };
        let receiver = async {
            let mut got = Vec::new();
            let mut cancelled = 0;
            while got.len() < 20 {
                // An outer timeout drops the layered recv future mid-wait.
                match tokio::time::timeout(Duration::from_millis(1), h.recv::<u32>(&mut b, Role::A))
                    .await
                {
                    Ok(r) => got.push(r.expect("recv")),
                    Err(_) => cancelled += 1,
                }
            }
            (got, cancelled)
        };
        let ((), got) = tokio::join!(sender, receiver);
        got
    });
    let (got, cancelled) = got;
    assert_eq!(
        got,
        (0..20).collect::<Vec<_>>(),
        "every message, once, in order"
    );
    assert!(cancelled > 0, "the test cancelled at least one receive");

    let snapshot = h.inner().snapshot();
    let peer = snapshot.peer("A").expect("peer A");
    assert_eq!(peer.operations.recv, 20, "only completed receives count");
    assert_eq!(peer.cancelled, cancelled);
    assert_eq!(peer.errors.total(), 0);
    let t = rec.transcript();
    assert_eq!(
        t.entries.len() as u64,
        20 + cancelled,
        "a cancelled receive leaves an entry marked cancelled"
    );
    let (done, dropped): (Vec<_>, Vec<_>) = t.entries.iter().partition(|e| e.cancelled.is_none());
    for e in &dropped {
        // Never counted as delivered: no payload, no bytes.
        assert_eq!((e.payload.as_deref(), e.bytes), (None, 0), "{e}");
        assert_eq!(e.cancelled.and_then(|c| c.deadline), None);
    }
    for (i, e) in done.iter().enumerate() {
        let n: u32 =
            postcard::from_bytes(e.payload.as_deref().expect("tapped payload")).expect("u32");
        assert_eq!(n, i as u32);
    }
    assert_eq!(
        b.get_metadata(&Role::A).map(|m| m.operation_count),
        Some(20)
    );
    cancelled
}
