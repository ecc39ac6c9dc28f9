//! The guide's usage patterns, as user code against the facade, with every
//! role running concurrently.
//!
//! Pattern 2's receiver is written in the safe form (a fallback arm that
//! returns an error, or `offer_among`), never with `unreachable!()`.
//! Pattern 5 is shown in the forms that compile: `with_timeout` with a body
//! that borrows a different endpoint, `recv_timeout`, and `within`.

use std::time::Duration;

use rumpsteak_aura_choreography::effects::{
    ChoreoHandler, ChoreographyError, Label,
    handlers::rumpsteak::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Client,
    Server,
    Me,
    Other,
    Peer,
    Buyer,
    Coordinator,
    Seller,
    Self_,
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
enum Msg {
    Request(Request),
    Response(Response),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Request {
    query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Response {
    answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ack {
    id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Offer {
    item: String,
    price: u32,
}

type Handler = RumpsteakHandler<Role, Msg>;
type Error = Box<dyn std::error::Error + Send + Sync>;

fn connect(a: &mut RumpsteakEndpoint<Role>, b: &mut RumpsteakEndpoint<Role>) {
    let (a_ch, b_ch) = SimpleChannel::pair();
    a.register_channel(*b.local_role(), a_ch);
    b.register_channel(*a.local_role(), b_ch);
}

fn pair(a: Role, b: Role) -> (RumpsteakEndpoint<Role>, RumpsteakEndpoint<Role>) {
    let mut a = RumpsteakEndpoint::new(a);
    let mut b = RumpsteakEndpoint::new(b);
    connect(&mut a, &mut b);
    (a, b)
}

// ---------------------------------------------------------------------------
// Pattern 1: Request-Response

#[tokio::test]
async fn pattern_1_request_response() -> Result<(), Error> {
    let (mut endpoint, mut server_ep) = pair(Role::Client, Role::Server);

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
    // Client side
    let request = Request {
        query: "data".to_string(),
    };
    handler.send(&mut endpoint, Role::Server, &request).await?;
    let response: Response = handler.recv(&mut endpoint, Role::Server).await?;

    assert_eq!(response.answer, "result for data");
    assert_eq!(server.await??, request);
    let meta = endpoint.get_metadata(&Role::Server).ok_or("no metadata")?;
    assert_eq!(meta.operation_count, 2);
    assert_eq!(meta.state_description, "received Response from Server");
    Ok(())
}

// ---------------------------------------------------------------------------
// Pattern 2: Choice with Branches

/// The guide's sender, for a given condition.
async fn pattern_2_sender(
    handler: &mut Handler,
    endpoint: &mut RumpsteakEndpoint<Role>,
    condition: bool,
) -> Result<(), ChoreographyError> {
    // Sender
    let decision = if condition {
        Label("accept")
    } else {
        Label("reject")
    };
    handler.choose(endpoint, Role::Other, decision).await?;
    Ok(())
}

/// The guide's receiver in the safe form: a label outside the protocol is an
/// error the caller sees, not a panic a peer can trigger.
async fn pattern_2_receiver(
    handler: &mut Handler,
    endpoint: &mut RumpsteakEndpoint<Role>,
) -> Result<&'static str, ChoreographyError> {
    // Receiver
    let choice = handler.offer(endpoint, Role::Me).await?;
    match choice.0 {
        "accept" => {
            // Handle accept branch
            Ok("took the accept branch")
        }
        "reject" => {
            // Handle reject branch
            Ok("took the reject branch")
        }
        other => Err(ChoreographyError::UnexpectedLabel {
            peer: format!("{:?}", Role::Me),
            op: rumpsteak_aura_choreography::Operation::Offer,
            expected: vec![Label("accept"), Label("reject")],
            received: other.to_string(),
        }),
    }
}

/// The same receiver with `offer_among`: the handler rejects other labels.
async fn pattern_2_receiver_strict(
    handler: &mut Handler,
    endpoint: &mut RumpsteakEndpoint<Role>,
) -> Result<&'static str, ChoreographyError> {
    const ACCEPT: Label = Label("accept");
    const REJECT: Label = Label("reject");
    let choice = handler
        .offer_among(endpoint, Role::Me, &[ACCEPT, REJECT])
        .await?;
    Ok(if choice == ACCEPT {
        "took the accept branch"
    } else {
        "took the reject branch"
    })
}

#[tokio::test]
async fn pattern_2_choice_with_branches() -> Result<(), Error> {
    let (mut me, mut other) = pair(Role::Me, Role::Other);

    let receiver = tokio::spawn(async move {
        let mut handler = Handler::new();
        let first = pattern_2_receiver(&mut handler, &mut other).await?;
        let second = pattern_2_receiver(&mut handler, &mut other).await?;
        let third = pattern_2_receiver_strict(&mut handler, &mut other).await?;
        let fourth = pattern_2_receiver_strict(&mut handler, &mut other).await?;
        Ok::<_, ChoreographyError>([first, second, third, fourth])
    });

    let mut handler = Handler::new();
    for condition in [true, false, false, true] {
        pattern_2_sender(&mut handler, &mut me, condition).await?;
    }

    assert_eq!(
        receiver.await??,
        [
            "took the accept branch",
            "took the reject branch",
            "took the reject branch",
            "took the accept branch",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn pattern_2_receiver_survives_an_unexpected_label() -> Result<(), Error> {
    let (mut me, mut other) = pair(Role::Me, Role::Other);
    let mut handler = Handler::new();

    // A peer outside the protocol chooses a label the receiver never expects.
    handler.choose(&mut me, Role::Other, Label("maybe")).await?;
    let err = pattern_2_receiver(&mut handler, &mut other)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "offer from Me: peer chose `maybe`, expected one of [`accept`, `reject`]"
    );

    handler
        .choose(&mut me, Role::Other, Label("perhaps"))
        .await?;
    let err = pattern_2_receiver_strict(&mut handler, &mut other)
        .await
        .unwrap_err();
    assert!(matches!(
        &err,
        ChoreographyError::UnexpectedLabel { received, .. } if received == "perhaps"
    ));

    // The receiver and its channel are still fine.
    pattern_2_sender(&mut handler, &mut me, true).await?;
    assert_eq!(
        pattern_2_receiver(&mut handler, &mut other).await?,
        "took the accept branch"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Pattern 3: Sequential Messages

#[tokio::test]
async fn pattern_3_sequential_messages() -> Result<(), Error> {
    let (mut endpoint, mut peer_ep) = pair(Role::Me, Role::Peer);
    const N: u32 = 5;

    let peer = tokio::spawn(async move {
        let mut handler = Handler::new();
        let mut seen = Vec::new();
        for _ in 0..N {
            let item: Item = handler.recv(&mut peer_ep, Role::Me).await?;
            handler
                .send(&mut peer_ep, Role::Me, &Ack { id: item.id })
                .await?;
            seen.push(item.id);
        }
        Ok::<_, ChoreographyError>(seen)
    });

    let mut handler = Handler::new();
    let items: Vec<Item> = (1..=N).map(|id| Item { id }).collect();
    let mut acks = Vec::new();
    for item in items {
        handler.send(&mut endpoint, Role::Peer, &item).await?;
        let ack: Ack = handler.recv(&mut endpoint, Role::Peer).await?;
        assert_eq!(ack.id, item.id, "each ack answers its own item");
        acks.push(ack.id);
    }

    assert_eq!(acks, [1, 2, 3, 4, 5]);
    assert_eq!(peer.await??, [1, 2, 3, 4, 5]);
    let meta = endpoint.get_metadata(&Role::Peer).ok_or("no metadata")?;
    assert_eq!(meta.operation_count, 2 * N as usize);
    Ok(())
}

// ---------------------------------------------------------------------------
// Pattern 4: Multi-Party Coordination

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_4_multi_party_coordination() -> Result<(), Error> {
    let mut buyer_ep = RumpsteakEndpoint::new(Role::Buyer);
    let mut endpoint = RumpsteakEndpoint::new(Role::Coordinator);
    let mut seller_ep = RumpsteakEndpoint::new(Role::Seller);
    connect(&mut buyer_ep, &mut endpoint);
    connect(&mut endpoint, &mut seller_ep);

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

    let response = buyer.await??;
    assert_eq!(response.answer, "lamp sold for 40");
    assert_eq!(seller.await??.price, 40);
    let endpoint = coordinator.await??;
    for peer in [Role::Buyer, Role::Seller] {
        let meta = endpoint.get_metadata(&peer).ok_or("no metadata")?;
        assert_eq!(meta.operation_count, 2, "{peer:?}");
    }
    assert_eq!(
        endpoint
            .get_metadata(&Role::Buyer)
            .map(|m| m.state_description.as_str()),
        Some("sent Response to Buyer")
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Pattern 5: Timeout Protection

/// What the guide's `match result` does with each outcome.
fn classify<T: std::fmt::Debug>(result: Result<T, ChoreographyError>) -> String {
    match result {
        Ok(msg) => {
            // Process message
            format!("message {msg:?}")
        }
        Err(ChoreographyError::Timeout(d)) => {
            // Handle timeout
            format!("timeout after {d:?}")
        }
        Err(e) => {
            // Handle other errors
            format!("error {e}")
        }
    }
}

#[tokio::test]
async fn pattern_5_with_timeout_as_declared() -> Result<(), Error> {
    // `with_timeout` keeps the guide's signature. Its body is a future built
    // before the call, so it must not borrow the handler and endpoint passed
    // to the call: here it uses a copy of the (stateless) handler and the
    // endpoint that talks to the peer, while the call gets a second endpoint
    // that only names the role being timed.
    let (mut endpoint, mut peer_ep) = pair(Role::Me, Role::Peer);
    let mut timer_ep = RumpsteakEndpoint::new(Role::Self_);
    let mut handler = Handler::new();
    let mut body_handler = handler;
    let dur = Duration::from_millis(50);

    let result = handler
        .with_timeout(&mut timer_ep, Role::Self_, dur, async {
            body_handler
                .recv::<Request>(&mut endpoint, Role::Peer)
                .await
        })
        .await;
    assert!(matches!(result, Err(ChoreographyError::Timeout(d)) if d == dur));

    // The timed-out receive lost nothing: the channel is still registered
    // and the next receive gets the next message.
    assert!(endpoint.has_channel(&Role::Peer));
    let request = Request {
        query: "late".into(),
    };
    handler.send(&mut peer_ep, Role::Me, &request).await?;
    let result = handler
        .with_timeout(&mut timer_ep, Role::Self_, dur, async {
            body_handler
                .recv::<Request>(&mut endpoint, Role::Peer)
                .await
        })
        .await;
    assert_eq!(
        classify(result),
        r#"message Request { query: "late" }"#.to_string()
    );
    Ok(())
}

#[tokio::test]
async fn pattern_5_recv_timeout_on_the_same_handler_and_endpoint() -> Result<(), Error> {
    let (mut endpoint, mut peer_ep) = pair(Role::Me, Role::Peer);
    let mut handler = Handler::new();

    let result = handler
        .recv_timeout::<Request>(&mut endpoint, Role::Peer, Duration::from_millis(30))
        .await;
    assert_eq!(classify(result), "timeout after 30ms");

    // A message that arrives in time is delivered.
    let peer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut handler = Handler::new();
        let request = Request {
            query: "in time".into(),
        };
        handler.send(&mut peer_ep, Role::Me, &request).await?;
        Ok::<_, ChoreographyError>(peer_ep)
    });
    let result = handler
        .recv_timeout::<Request>(&mut endpoint, Role::Peer, Duration::from_secs(5))
        .await;
    assert_eq!(
        result?,
        Request {
            query: "in time".into()
        }
    );

    // Other errors stay other errors: the peer closed its side.
    drop(peer.await??);
    let result = handler
        .recv_timeout::<Request>(&mut endpoint, Role::Peer, Duration::from_secs(5))
        .await;
    assert_eq!(
        classify(result),
        "error recv from Peer: channel closed by peer"
    );

    // offer_timeout is the same for choices.
    let (mut endpoint, _peer_ep) = pair(Role::Me, Role::Peer);
    let result = handler
        .offer_timeout(&mut endpoint, Role::Peer, Duration::from_millis(10))
        .await;
    assert!(matches!(result, Err(ChoreographyError::Timeout(_))));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_5_within_runs_several_steps_under_one_deadline() -> Result<(), Error> {
    let (mut endpoint, mut peer_ep) = pair(Role::Me, Role::Peer);

    // A peer that answers one request and then goes silent, keeping its
    // endpoint (and so the channel) open until the test collects it.
    let peer = tokio::spawn(async move {
        let mut handler = Handler::new();
        let request: Request = handler.recv(&mut peer_ep, Role::Me).await?;
        let response = Response {
            answer: request.query.to_uppercase(),
        };
        handler.send(&mut peer_ep, Role::Me, &response).await?;
        let _: Request = handler.recv(&mut peer_ep, Role::Me).await?;
        Ok::<_, ChoreographyError>(peer_ep)
    });

    let mut handler = Handler::new();
    let answered = handler
        .within(&mut endpoint, Duration::from_secs(5), async |h, ep| {
            let request = Request {
                query: "first".into(),
            };
            h.send(ep, Role::Peer, &request).await?;
            h.recv::<Response>(ep, Role::Peer).await
        })
        .await?;
    assert_eq!(answered.answer, "FIRST");

    let silent = handler
        .within(&mut endpoint, Duration::from_millis(50), async |h, ep| {
            let request = Request {
                query: "second".into(),
            };
            h.send(ep, Role::Peer, &request).await?;
            h.recv::<Response>(ep, Role::Peer).await
        })
        .await;
    assert_eq!(classify(silent), "timeout after 50ms");

    let peer_ep = peer.await??;
    assert!(peer_ep.has_channel(&Role::Me));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_5_forms_run_inside_spawned_tasks() -> Result<(), Error> {
    let (mut endpoint, _peer_ep) = pair(Role::Me, Role::Peer);
    let role = tokio::spawn(async move {
        let mut handler = Handler::new();
        let short = Duration::from_millis(10);
        let a = handler
            .recv_timeout::<Request>(&mut endpoint, Role::Peer, short)
            .await;
        let b = handler
            .within(&mut endpoint, short, async |h, ep| {
                h.recv::<Request>(ep, Role::Peer).await
            })
            .await;
        [classify(a), classify(b)]
    });
    assert_eq!(role.await?, ["timeout after 10ms", "timeout after 10ms"]);
    Ok(())
}
