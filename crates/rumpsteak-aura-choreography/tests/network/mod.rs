//! The guide's patterns 1 to 5 written once against endpoints, for the
//! network transport tests (`tcp_patterns.rs`, `websocket_patterns.rs`) to
//! run over real sockets, with the setup they share. Each pattern runs every role concurrently and
//! asserts what each role saw.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rumpsteak_aura_choreography::effects::{
    ChoreoHandler, ChoreographyError, Label,
    handlers::rumpsteak::{RumpsteakEndpoint, RumpsteakHandler},
};
use rumpsteak_aura_choreography::transport::tcp::{self, SessionListener, TcpOptions};
#[cfg(feature = "websocket")]
use rumpsteak_aura_choreography::transport::websocket::{self, WebSocketListener};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Client,
    Server,
    Me,
    Other,
    Peer,
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

/// The protocol's message type, for the handler's type parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Msg {
    Request(Request),
    Response(Response),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) id: u32,
    pub(crate) payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ack {
    pub(crate) id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Offer {
    pub(crate) item: String,
    pub(crate) price: u32,
}

pub(crate) type Handler = RumpsteakHandler<Role, Msg>;
pub(crate) type Endpoint = RumpsteakEndpoint<Role>;
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

/// Port 0 on loopback: the kernel picks a free port.
pub(crate) fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The transport two endpoints are joined by.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Net {
    Tcp,
    #[cfg(feature = "websocket")]
    WebSocket,
}

/// Two endpoints joined by one connection over `net`: `b` listens, `a`
/// dials.
pub(crate) async fn endpoints(net: Net, a: Role, b: Role) -> Result<(Endpoint, Endpoint), Error> {
    let options = TcpOptions::new();
    let (a_name, b_name) = (format!("{a:?}"), format!("{b:?}"));
    let (dialed, accepted) = match net {
        Net::Tcp => {
            let listener = SessionListener::bind(any_port(), &b_name, &options).await?;
            let addr = listener.local_addr();
            tokio::join!(
                tcp::connect(addr, &a_name, &b_name, &options),
                listener.accept(&a_name)
            )
        }
        #[cfg(feature = "websocket")]
        Net::WebSocket => {
            let listener = WebSocketListener::bind(any_port(), &b_name, &options).await?;
            let addr = listener.local_addr();
            tokio::join!(
                websocket::connect(addr, &a_name, &b_name, &options),
                listener.accept(&a_name)
            )
        }
    };
    let mut a_ep = Endpoint::new(a);
    let mut b_ep = Endpoint::new(b);
    a_ep.register_session(b, dialed?);
    b_ep.register_session(a, accepted?);
    Ok((a_ep, b_ep))
}

/// Fails the test instead of hanging it.
pub(crate) async fn within<T>(f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), f).await {
        Ok(t) => t,
        Err(_) => panic!("a pattern did not finish within 20 s"),
    }
}

/// Pattern 1: request-response. `client` talks to `Server`, `server` to
/// `Client`.
pub(crate) async fn pattern_1(
    mut endpoint: Endpoint,
    mut server_ep: Endpoint,
) -> Result<(), Error> {
    let server = tokio::spawn(async move {
        let mut handler = Handler::new();
        let request: Request = handler.recv(&mut server_ep, Role::Client).await?;
        let response = Response {
            answer: format!("result for {}", request.query),
        };
        handler
            .send(&mut server_ep, Role::Client, &response)
            .await?;
        Ok::<_, ChoreographyError>(request)
    });

    let mut handler = Handler::new();
    let request = Request {
        query: "data".to_string(),
    };
    handler.send(&mut endpoint, Role::Server, &request).await?;
    let response: Response = handler.recv(&mut endpoint, Role::Server).await?;

    assert_eq!(response.answer, "result for data");
    assert_eq!(within(server).await??, request);
    let meta = endpoint.get_metadata(&Role::Server).ok_or("no metadata")?;
    assert_eq!(meta.operation_count, 2);
    Ok(())
}

/// Pattern 2: choice with branches, the receiver in the safe form; a label
/// outside the protocol is an error the receiver survives. `me` talks to
/// `Other`, `other` to `Me`.
pub(crate) async fn pattern_2(mut me: Endpoint, mut other: Endpoint) -> Result<(), Error> {
    let receiver = tokio::spawn(async move {
        let mut handler = Handler::new();
        let mut branches = Vec::new();
        for _ in 0..4 {
            let choice = handler.offer(&mut other, Role::Me).await?;
            branches.push(match choice.0 {
                "accept" => "accept branch",
                "reject" => "reject branch",
                unexpected => {
                    return Err(ChoreographyError::UnexpectedLabel {
                        peer: "Me".into(),
                        op: rumpsteak_aura_choreography::Operation::Offer,
                        expected: vec![ACCEPT, REJECT],
                        received: unexpected.into(),
                    });
                }
            });
        }
        // The same with the strict form: an unknown label is an error and
        // the session goes on.
        let err = handler
            .offer_among(&mut other, Role::Me, &[ACCEPT, REJECT])
            .await
            .expect_err("`maybe` is not in the protocol");
        assert!(matches!(
            err,
            ChoreographyError::UnexpectedLabel { ref received, .. } if received == "maybe"
        ));
        let last = handler
            .offer_among(&mut other, Role::Me, &[ACCEPT, REJECT])
            .await?;
        branches.push(if last == ACCEPT {
            "accept branch"
        } else {
            "reject branch"
        });
        Ok(branches)
    });

    let mut handler = Handler::new();
    for condition in [true, false, false, true] {
        let decision = if condition { ACCEPT } else { REJECT };
        handler.choose(&mut me, Role::Other, decision).await?;
    }
    handler.choose(&mut me, Role::Other, Label("maybe")).await?;
    handler.choose(&mut me, Role::Other, REJECT).await?;

    assert_eq!(
        within(receiver).await??,
        [
            "accept branch",
            "reject branch",
            "reject branch",
            "accept branch",
            "reject branch"
        ]
    );
    Ok(())
}

/// Pattern 3: sequential messages, each acknowledged. `endpoint` talks to
/// `Peer`, `peer_ep` to `Me`.
pub(crate) async fn pattern_3(mut endpoint: Endpoint, mut peer_ep: Endpoint) -> Result<(), Error> {
    const N: u32 = 200;
    let peer = tokio::spawn(async move {
        let mut handler = Handler::new();
        let mut bytes = 0;
        for expected in 1..=N {
            let item: Item = handler.recv(&mut peer_ep, Role::Me).await?;
            assert_eq!(item.id, expected);
            bytes += item.payload.len();
            handler
                .send(&mut peer_ep, Role::Me, &Ack { id: item.id })
                .await?;
        }
        Ok::<_, ChoreographyError>(bytes)
    });

    let mut handler = Handler::new();
    // Items of growing size, up to 64 KiB, so frames span many TCP segments.
    let items: Vec<Item> = (1..=N)
        .map(|id| Item {
            id,
            payload: vec![id as u8; (id as usize * 331) % 65_536],
        })
        .collect();
    let total: usize = items.iter().map(|i| i.payload.len()).sum();
    for item in items {
        handler.send(&mut endpoint, Role::Peer, &item).await?;
        let ack: Ack = handler.recv(&mut endpoint, Role::Peer).await?;
        assert_eq!(ack.id, item.id, "each ack answers its own item");
    }
    assert_eq!(within(peer).await??, total);
    let meta = endpoint.get_metadata(&Role::Peer).ok_or("no metadata")?;
    assert_eq!(meta.operation_count, 2 * N as usize);
    Ok(())
}

/// Pattern 4: the coordinator relays an offer to the seller and the answer
/// back to the buyer.
pub(crate) async fn pattern_4(
    mut buyer_ep: Endpoint,
    mut endpoint: Endpoint,
    mut seller_ep: Endpoint,
) -> Result<(), Error> {
    let buyer = tokio::spawn(async move {
        let mut handler = Handler::new();
        let offer = Offer {
            item: "lamp".into(),
            price: 40,
        };
        handler
            .send(&mut buyer_ep, Role::Coordinator, &offer)
            .await?;
        let response: Response = handler.recv(&mut buyer_ep, Role::Coordinator).await?;
        Ok::<_, ChoreographyError>(response)
    });
    let seller = tokio::spawn(async move {
        let mut handler = Handler::new();
        let offer: Offer = handler.recv(&mut seller_ep, Role::Coordinator).await?;
        let answer = format!("{} sold for {}", offer.item, offer.price);
        handler
            .send(&mut seller_ep, Role::Coordinator, &Response { answer })
            .await?;
        Ok::<_, ChoreographyError>(offer)
    });
    let coordinator = tokio::spawn(async move {
        let mut handler = Handler::new();
        // Coordinator
        let offer: Offer = handler.recv(&mut endpoint, Role::Buyer).await?;
        handler.send(&mut endpoint, Role::Seller, &offer).await?;

        let response: Response = handler.recv(&mut endpoint, Role::Seller).await?;
        handler.send(&mut endpoint, Role::Buyer, &response).await?;
        Ok::<_, ChoreographyError>(endpoint)
    });

    assert_eq!(within(buyer).await??.answer, "lamp sold for 40");
    assert_eq!(within(seller).await??.price, 40);
    let endpoint = within(coordinator).await??;
    for peer in [Role::Buyer, Role::Seller] {
        let meta = endpoint.get_metadata(&peer).ok_or("no metadata")?;
        assert_eq!(meta.operation_count, 2, "{peer:?}");
    }
    Ok(())
}

/// Pattern 5: a receive under a timeout. The timed-out receive loses
/// nothing: the message that arrives later is the next one received.
pub(crate) async fn pattern_5(mut endpoint: Endpoint, mut peer_ep: Endpoint) -> Result<(), Error> {
    let mut handler = Handler::new();
    let dur = Duration::from_millis(50);
    let result = handler
        .recv_timeout::<Request>(&mut endpoint, Role::Peer, dur)
        .await;
    assert!(matches!(result, Err(ChoreographyError::Timeout(d)) if d == dur));

    let request = Request {
        query: "late".into(),
    };
    handler.send(&mut peer_ep, Role::Me, &request).await?;
    let received: Request = handler
        .recv_timeout(&mut endpoint, Role::Peer, Duration::from_secs(5))
        .await?;
    assert_eq!(received, request);
    Ok(())
}

/// Closing one side ends the other side's pending receive with `Closed`.
pub(crate) async fn close_is_seen(
    mut a: Endpoint,
    b_role: Role,
    mut b: Endpoint,
    a_role: Role,
) -> Result<(), Error> {
    let mut handler = Handler::new();
    handler.send(&mut a, b_role, &Ack { id: 1 }).await?;
    assert_eq!(a.close_all_channels(), 1);
    let ack: Ack = handler.recv(&mut b, a_role).await?;
    assert_eq!(ack.id, 1);
    let err = within(handler.recv::<Ack>(&mut b, a_role))
        .await
        .unwrap_err();
    assert!(err.is_closed(), "{err}");
    Ok(())
}
