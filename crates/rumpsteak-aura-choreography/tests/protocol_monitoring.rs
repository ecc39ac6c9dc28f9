//! Protocol monitoring through the real handler: the flagship runs to
//! completion under its monitors, every kind of violation is refused before
//! it reaches the wire, and `offer` accepts only the labels the local type
//! allows.

use std::time::Duration;

use rumpsteak_aura_choreography::protocol::Protocol;
use rumpsteak_aura_choreography::{
    ChoreoHandler, ChoreographyError, Label, RumpsteakEndpoint, RumpsteakHandler, SimpleChannel,
    Violation,
};
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long a peer waits to show that nothing reached it.
const QUIET: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Buyer,
    Coordinator,
    Seller,
    Client,
    Server,
    Logger,
}

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

type Handler = RumpsteakHandler<Role, ()>;
type Endpoint = RumpsteakEndpoint<Role>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Offer {
    amount: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rejection {
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Request(u32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Response(u32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ack;

const FLAGSHIP: &str = "
roles Buyer, Coordinator, Seller;
Buyer -> Coordinator: Offer(Offer);
Coordinator -> Seller: Offer(Offer);
choice at Seller {
    accept: {
        Seller -> Coordinator: Receipt(Receipt);
        choice at Coordinator {
            accept: { Coordinator -> Buyer: Receipt(Receipt); }
        }
    }
    reject: {
        choice at Coordinator {
            reject: { Coordinator -> Buyer: Rejection(Rejection); }
        }
    }
}
";

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

/// Connects every pair of `roles` with a `SimpleChannel`.
fn mesh(roles: &[Role]) -> Vec<Endpoint> {
    let mut eps: Vec<Endpoint> = roles.iter().map(|r| RumpsteakEndpoint::new(*r)).collect();
    for i in 0..roles.len() {
        for j in i + 1..roles.len() {
            let (a, b) = SimpleChannel::pair();
            eps[i].register_channel(roles[j], a);
            eps[j].register_channel(roles[i], b);
        }
    }
    eps
}

/// `(state_description, is_complete)` as seen on the session with `peer`.
fn snapshot(ep: &Endpoint, peer: Role) -> (String, bool) {
    match ep.get_metadata(&peer) {
        Some(m) => (m.state_description.clone(), m.is_complete),
        None => (format!("no metadata for {peer:?}"), false),
    }
}

type Snapshots = Vec<(String, bool)>;

/// What the Buyer ends with.
type Outcome = Result<Receipt, Rejection>;

async fn buyer(mut ep: Endpoint) -> Result<(Snapshots, Outcome), ChoreographyError> {
    let mut h = Handler::new();
    let mut s = vec![snapshot(&ep, Role::Coordinator)];
    h.send(&mut ep, Role::Coordinator, &Offer { amount: 100 })
        .await?;
    s.push(snapshot(&ep, Role::Coordinator));
    let label = h.offer(&mut ep, Role::Coordinator).await?;
    s.push(snapshot(&ep, Role::Coordinator));
    let outcome = if label == ACCEPT {
        Ok(h.recv::<Receipt>(&mut ep, Role::Coordinator).await?)
    } else {
        Err(h.recv::<Rejection>(&mut ep, Role::Coordinator).await?)
    };
    s.push(snapshot(&ep, Role::Coordinator));
    Ok((s, outcome))
}

async fn coordinator(mut ep: Endpoint) -> Result<Snapshots, ChoreographyError> {
    let mut h = Handler::new();
    let mut s = vec![snapshot(&ep, Role::Buyer)];
    let offer: Offer = h.recv(&mut ep, Role::Buyer).await?;
    s.push(snapshot(&ep, Role::Buyer));
    h.send(&mut ep, Role::Seller, &offer).await?;
    s.push(snapshot(&ep, Role::Seller));
    let label = h.offer(&mut ep, Role::Seller).await?;
    s.push(snapshot(&ep, Role::Seller));
    if label == ACCEPT {
        let r: Receipt = h.recv(&mut ep, Role::Seller).await?;
        s.push(snapshot(&ep, Role::Seller));
        h.choose(&mut ep, Role::Buyer, ACCEPT).await?;
        s.push(snapshot(&ep, Role::Buyer));
        h.send(&mut ep, Role::Buyer, &r).await?;
        s.push(snapshot(&ep, Role::Buyer));
    } else {
        h.choose(&mut ep, Role::Buyer, REJECT).await?;
        s.push(snapshot(&ep, Role::Buyer));
        let why = Rejection {
            reason: format!("{} is too low", offer.amount),
        };
        h.send(&mut ep, Role::Buyer, &why).await?;
        s.push(snapshot(&ep, Role::Buyer));
    }
    Ok(s)
}

async fn seller(mut ep: Endpoint, accept: bool) -> Result<Snapshots, ChoreographyError> {
    let mut h = Handler::new();
    let mut s = vec![snapshot(&ep, Role::Coordinator)];
    let offer: Offer = h.recv(&mut ep, Role::Coordinator).await?;
    s.push(snapshot(&ep, Role::Coordinator));
    if accept {
        h.choose(&mut ep, Role::Coordinator, ACCEPT).await?;
        s.push(snapshot(&ep, Role::Coordinator));
        h.send(&mut ep, Role::Coordinator, &Receipt { id: offer.amount })
            .await?;
    } else {
        h.choose(&mut ep, Role::Coordinator, REJECT).await?;
    }
    s.push(snapshot(&ep, Role::Coordinator));
    Ok(s)
}

/// Every snapshot but the last is incomplete, the last is complete and
/// says `end`.
fn assert_completes_exactly_at_end(role: &str, s: &Snapshots) {
    let (last, rest) = s
        .split_last()
        .unwrap_or_else(|| panic!("{role}: no snapshots"));
    for (i, (desc, done)) in rest.iter().enumerate() {
        assert!(!done, "{role}: complete too early at step {i}: {desc}");
        assert!(desc.contains(" | next: "), "{role}: step {i}: {desc}");
    }
    assert!(last.1, "{role}: not complete at the end: {}", last.0);
    assert!(last.0.ends_with(" | end"), "{role}: {}", last.0);
}

async fn run_flagship(
    accept: bool,
) -> Result<(Snapshots, Snapshots, Snapshots, Outcome), Box<dyn std::error::Error>> {
    let p = Protocol::parse(FLAGSHIP)?;
    p.validate()?;
    let roles = [Role::Buyer, Role::Coordinator, Role::Seller];
    let mut eps = mesh(&roles).into_iter();
    let mut next = |name: &str| -> Result<Endpoint, Box<dyn std::error::Error>> {
        let ep = eps.next().ok_or("missing endpoint")?;
        Ok(ep.with_protocol(p.monitor_for(name)?))
    };
    let (b, c, s) = (next("Buyer")?, next("Coordinator")?, next("Seller")?);
    let bt = tokio::spawn(buyer(b));
    let ct = tokio::spawn(coordinator(c));
    let st = tokio::spawn(seller(s, accept));
    let all = async { (bt.await, ct.await, st.await) };
    let (b, c, s) = tokio::time::timeout(Duration::from_secs(5), all).await?;
    let (bs, receipt) = b??;
    Ok((bs, c??, s??, receipt))
}

#[tokio::test]
async fn flagship_accept_runs_to_completion_under_monitors() -> TestResult {
    let (b, c, s, receipt) = run_flagship(true).await?;
    assert_eq!(receipt, Ok(Receipt { id: 100 }));
    assert_completes_exactly_at_end("Buyer", &b);
    assert_completes_exactly_at_end("Coordinator", &c);
    assert_completes_exactly_at_end("Seller", &s);
    // The description shows the last operation and the protocol position.
    assert_eq!(
        b[0].0,
        "registered with Coordinator | next: send Offer(Offer) to Coordinator; offer accept|reject from Coordinator; …"
    );
    assert_eq!(
        b[1].0,
        "sent Offer to Coordinator | next: offer accept|reject from Coordinator; …"
    );
    assert_eq!(
        b[2].0,
        "Coordinator chose accept | next: recv Receipt(Receipt) from Coordinator; end"
    );
    assert_eq!(
        c[4].0,
        "received Receipt from Seller | next: choose accept for Buyer; …"
    );
    assert_eq!(b[3].0, "received Receipt from Coordinator | end");
    assert_eq!(
        c[4].0,
        "received Receipt from Seller | next: choose accept for Buyer; …"
    );
    assert_eq!(
        c.last().map(|x| x.0.as_str()),
        Some("sent Receipt to Buyer | end")
    );
    assert_eq!(
        s.last().map(|x| x.0.as_str()),
        Some("sent Receipt to Coordinator | end")
    );
    Ok(())
}

#[tokio::test]
async fn flagship_reject_runs_to_completion_under_monitors() -> TestResult {
    let (b, c, s, receipt) = run_flagship(false).await?;
    assert_eq!(
        receipt,
        Err(Rejection {
            reason: "100 is too low".into()
        })
    );
    assert_completes_exactly_at_end("Buyer", &b);
    assert_completes_exactly_at_end("Coordinator", &c);
    assert_completes_exactly_at_end("Seller", &s);
    assert_eq!(
        b.last().map(|x| x.0.as_str()),
        Some("received Rejection from Coordinator | end")
    );
    assert_eq!(
        c.last().map(|x| x.0.as_str()),
        Some("sent Rejection to Buyer | end")
    );
    assert_eq!(
        s.last().map(|x| x.0.as_str()),
        Some("chose reject for Coordinator | end")
    );
    Ok(())
}

#[test]
fn flagship_projections_are_as_documented() -> TestResult {
    let p = Protocol::parse(FLAGSHIP)?;
    assert_eq!(
        p.project("Buyer")?.to_string(),
        "send Offer(Offer) to Coordinator; branch from Coordinator { accept: { recv Receipt(Receipt) from Coordinator; end } reject: { recv Rejection(Rejection) from Coordinator; end } }"
    );
    assert_eq!(
        p.project("Seller")?.to_string(),
        "recv Offer(Offer) from Coordinator; select to Coordinator { accept: { send Receipt(Receipt) to Coordinator; end } reject: { end } }"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Violations. The Client is monitored; its peers are not, so that they can
// observe their raw channel and show that nothing arrived.

const CLIENT_SERVER: &str = "
roles Client, Server, Logger;
Client -> Server: Request(Request);
Server -> Client: Response(Response);
choice at Client {
    commit: { Client -> Server: Ack; Server -> Logger: Audit(Audit); }
    abort: { Server -> Logger: Audit(Audit); }
}
";

/// A monitored Client and unmonitored Server and Logger.
fn client_setup() -> Result<(Endpoint, Endpoint, Endpoint), Box<dyn std::error::Error>> {
    let p = Protocol::parse(CLIENT_SERVER)?;
    p.validate()?;
    let mut eps = mesh(&[Role::Client, Role::Server, Role::Logger]).into_iter();
    let client = eps
        .next()
        .ok_or("missing client")?
        .with_protocol(p.monitor_for("Client")?);
    let server = eps.next().ok_or("missing server")?;
    let logger = eps.next().ok_or("missing logger")?;
    Ok((client, server, logger))
}

/// Asserts `r` is an out-of-protocol violation with these texts.
fn assert_out_of_protocol<T: std::fmt::Debug>(
    r: Result<T, ChoreographyError>,
    want_expected: &str,
    want_attempted: &str,
) {
    let e = match r {
        Err(e) => e,
        Ok(v) => panic!("expected a protocol violation, got Ok({v:?})"),
    };
    let text = e.to_string();
    match e {
        ChoreographyError::ProtocolViolation {
            violation:
                Violation::OutOfProtocol {
                    expected,
                    attempted,
                },
            ..
        } => {
            assert_eq!(expected, want_expected);
            assert_eq!(attempted, want_attempted);
            assert!(
                text.contains(&format!(
                    "expected {want_expected}, attempted {want_attempted}"
                )),
                "unreadable error: {text}"
            );
        }
        other => panic!("expected OutOfProtocol, got {other:?}"),
    }
}

/// Asserts that nothing arrives at `ep` from `from`.
async fn assert_nothing_from(ep: &mut Endpoint, from: Role) {
    let mut h = Handler::new();
    let r = h.offer_timeout(ep, from, QUIET).await;
    assert!(
        matches!(r, Err(ChoreographyError::Timeout(_))),
        "{:?} received something from {from:?}: {r:?}",
        ep.local_role()
    );
}

#[tokio::test]
async fn wrong_peer_is_refused_and_nothing_is_sent() -> TestResult {
    let (mut client, mut server, mut logger) = client_setup()?;
    let mut h = Handler::new();
    let r = h.send(&mut client, Role::Logger, &Request(1)).await;
    assert_out_of_protocol(
        r,
        "send Request(Request) to Server",
        "send Request to Logger",
    );
    assert_nothing_from(&mut logger, Role::Client).await;
    // The monitor did not move: the right step still works.
    h.send(&mut client, Role::Server, &Request(2)).await?;
    let got: Request = h.recv(&mut server, Role::Client).await?;
    assert_eq!(got, Request(2));
    Ok(())
}

#[tokio::test]
async fn wrong_direction_is_refused_and_nothing_is_sent() -> TestResult {
    let (mut client, mut server, _logger) = client_setup()?;
    let mut h = Handler::new();
    // The server sends a Response early: the client must not consume it.
    h.send(&mut server, Role::Client, &Response(9)).await?;
    let r = h.recv::<Response>(&mut client, Role::Server).await;
    assert_out_of_protocol(
        r,
        "send Request(Request) to Server",
        "recv Response from Server",
    );
    assert_nothing_from(&mut server, Role::Client).await;
    let meta = client.get_metadata(&Role::Server).ok_or("no metadata")?;
    assert_eq!(meta.operation_count, 0);
    assert!(!meta.is_complete);
    Ok(())
}

#[tokio::test]
async fn wrong_label_is_refused_and_nothing_is_sent() -> TestResult {
    let (mut client, mut server, _logger) = client_setup()?;
    let mut h = Handler::new();
    h.send(&mut client, Role::Server, &Request(1)).await?;
    let _: Request = h.recv(&mut server, Role::Client).await?;
    h.send(&mut server, Role::Client, &Response(2)).await?;
    let _: Response = h.recv(&mut client, Role::Server).await?;
    let r = h.choose(&mut client, Role::Server, Label("maybe")).await;
    assert_out_of_protocol(
        r,
        "choose commit|abort for Server",
        "choose maybe for Server",
    );
    assert_nothing_from(&mut server, Role::Client).await;
    Ok(())
}

#[tokio::test]
async fn wrong_payload_type_is_refused_and_nothing_is_sent() -> TestResult {
    let (mut client, mut server, _logger) = client_setup()?;
    let mut h = Handler::new();
    let r = h.send(&mut client, Role::Server, &Response(1)).await;
    assert_out_of_protocol(
        r,
        "send Request(Request) to Server",
        "send Response to Server",
    );
    assert_nothing_from(&mut server, Role::Client).await;
    Ok(())
}

#[tokio::test]
async fn any_operation_after_the_end_is_refused_and_nothing_is_sent() -> TestResult {
    let (mut client, mut server, mut logger) = client_setup()?;
    let mut h = Handler::new();
    h.send(&mut client, Role::Server, &Request(1)).await?;
    let _: Request = h.recv(&mut server, Role::Client).await?;
    h.send(&mut server, Role::Client, &Response(2)).await?;
    let _: Response = h.recv(&mut client, Role::Server).await?;
    h.choose(&mut client, Role::Server, Label("abort")).await?;
    assert_eq!(h.offer(&mut server, Role::Client).await?, Label("abort"));
    let meta = client.get_metadata(&Role::Server).ok_or("no metadata")?;
    assert!(meta.is_complete, "{}", meta.state_description);
    assert_eq!(meta.state_description, "chose abort for Server | end");

    let r = h.send(&mut client, Role::Server, &Request(3)).await;
    assert_out_of_protocol(r, "end of protocol", "send Request to Server");
    let r = h.choose(&mut client, Role::Logger, Label("abort")).await;
    assert_out_of_protocol(r, "end of protocol", "choose abort for Logger");
    let r = h.recv::<Response>(&mut client, Role::Server).await;
    assert_out_of_protocol(r, "end of protocol", "recv Response from Server");
    let r = h.offer(&mut client, Role::Server).await;
    assert_out_of_protocol(r, "end of protocol", "offer from Server");
    assert_nothing_from(&mut server, Role::Client).await;
    assert_nothing_from(&mut logger, Role::Client).await;
    Ok(())
}

// ---------------------------------------------------------------------------
// Offer: the monitored Server accepts only the labels of its local type.

/// An unmonitored Client and a monitored Server, past Request and Response.
async fn server_at_choice() -> Result<(Endpoint, Endpoint), Box<dyn std::error::Error>> {
    let p = Protocol::parse(CLIENT_SERVER)?;
    let mut eps = mesh(&[Role::Client, Role::Server]).into_iter();
    let mut client = eps.next().ok_or("missing client")?;
    let mut server = eps
        .next()
        .ok_or("missing server")?
        .with_protocol(p.monitor_for("Server")?);
    let mut h = Handler::new();
    h.send(&mut client, Role::Server, &Request(1)).await?;
    let _: Request = h.recv(&mut server, Role::Client).await?;
    h.send(&mut server, Role::Client, &Response(2)).await?;
    let _: Response = h.recv(&mut client, Role::Server).await?;
    Ok((client, server))
}

#[tokio::test]
async fn offer_refuses_a_label_the_local_type_does_not_allow() -> TestResult {
    let (mut client, mut server) = server_at_choice().await?;
    let mut h = Handler::new();
    h.choose(&mut client, Role::Server, Label("sideways"))
        .await?;
    let r = h.offer(&mut server, Role::Client).await;
    assert_out_of_protocol(
        r,
        "offer commit|abort from Client",
        "offer sideways from Client",
    );
    let meta = server.get_metadata(&Role::Client).ok_or("no metadata")?;
    assert!(!meta.is_complete);
    assert!(
        meta.state_description
            .ends_with("next: offer commit|abort from Client; …"),
        "{}",
        meta.state_description
    );
    Ok(())
}

#[tokio::test]
async fn offer_accepts_an_allowed_label_and_follows_its_branch() -> TestResult {
    let (mut client, mut server) = server_at_choice().await?;
    let mut h = Handler::new();
    h.choose(&mut client, Role::Server, Label("commit")).await?;
    assert_eq!(h.offer(&mut server, Role::Client).await?, Label("commit"));
    h.send(&mut client, Role::Server, &Ack).await?;
    // Following the branch: the Ack is expected, a second label is not.
    let r = h.offer(&mut server, Role::Client).await;
    assert_out_of_protocol(r, "recv Ack from Client", "offer from Client");
    let _: Ack = h.recv(&mut server, Role::Client).await?;
    let meta = server.get_metadata(&Role::Client).ok_or("no metadata")?;
    assert_eq!(
        meta.state_description,
        "received Ack from Client | next: send Audit(Audit) to Logger; end"
    );
    Ok(())
}
