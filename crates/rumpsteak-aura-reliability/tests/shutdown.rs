//! Closing or dropping one side while the other has an operation in flight
//! ends that operation with an error, never a hang: a receive waiting for
//! a frame, and a send waiting for room (where the transport can make a
//! sender wait), over every transport: in-memory, bounded, sink/stream,
//! TCP and WebSocket (the last two through the public API of
//! `rumpsteak-aura-net`, over loopback).
//!
//! TLS sessions run over TCP, QUIC sessions over loopback UDP, both with
//! certificates made at test time, each role's pinned.

mod common;

use std::time::Duration;

use common::{Handler, Msg, Party, endpoint, msg, within};
use futures::channel::mpsc;
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakSession};
use rumpsteak_aura_net::quic;
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_net::tls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use rumpsteak_aura_net::tls::{self, TlsConfig, Trust};
use rumpsteak_aura_net::websocket::{self, WebSocketListener};
use rumpsteak_aura_transport::{BoundedChannel, SimpleChannel};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    InMemory,
    Bounded,
    SinkStream,
    Tcp,
    WebSocket,
    Tls,
    Quic,
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    /// `close_channel` on the other side's endpoint.
    Close,
    /// The other side's endpoint is dropped.
    Drop,
}

fn options() -> TcpOptions {
    // A short linger, so that a dropped side lets go of its socket soon.
    TcpOptions::new().with_linger(Duration::from_millis(100))
}

/// A self-signed certificate naming `role`, and its key.
fn identity(role: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let uri = rcgen::string::Ia5String::try_from(tls::role_uri(role)).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = PrivatePkcs8KeyDer::from(key.serialize_der());
    (cert.der().clone(), der.into())
}

/// Alice's and Bob's TLS options, each trusting the other's pinned key.
fn tls_options() -> (TcpOptions, TcpOptions) {
    let (alice_cert, alice_key) = identity("Alice");
    let (bob_cert, bob_key) = identity("Bob");
    let trust = Trust::pinned([("Alice", &alice_cert), ("Bob", &bob_cert)]).unwrap();
    let alice = TlsConfig::new("Alice", vec![alice_cert.clone()], alice_key, trust.clone());
    let bob = TlsConfig::new("Bob", vec![bob_cert.clone()], bob_key, trust);
    (
        options().with_tls(alice.unwrap()),
        options().with_tls(bob.unwrap()),
    )
}

/// Alice's and Bob's sessions, connected over `kind`.
async fn sessions(kind: Kind) -> (RumpsteakSession, RumpsteakSession) {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let options = options();
    match kind {
        Kind::InMemory => {
            let (a, b) = SimpleChannel::pair();
            (a.into(), b.into())
        }
        Kind::Bounded => {
            let (a, b) = BoundedChannel::pair(1);
            (a.into(), b.into())
        }
        Kind::SinkStream => {
            let (to_b, from_a) = mpsc::channel::<Vec<u8>>(1);
            let (to_a, from_b) = mpsc::channel::<Vec<u8>>(1);
            (
                RumpsteakSession::from_sink_stream(to_b, from_b),
                RumpsteakSession::from_sink_stream(to_a, from_a),
            )
        }
        Kind::Tcp => {
            let listener = SessionListener::bind(loopback, "Bob", &options)
                .await
                .unwrap();
            let addr = listener.local_addr();
            let (a, b) = tokio::join!(
                tcp::connect(addr, "Alice", "Bob", &options),
                listener.accept("Alice")
            );
            (a.unwrap(), b.unwrap())
        }
        Kind::Tls => {
            let (alice, bob) = tls_options();
            let listener = SessionListener::bind(loopback, "Bob", &bob).await.unwrap();
            let addr = listener.local_addr();
            let (a, b) = tokio::join!(
                tcp::connect(addr, "Alice", "Bob", &alice),
                listener.accept("Alice")
            );
            (a.unwrap(), b.unwrap())
        }
        Kind::Quic => {
            let (alice, bob) = tls_options();
            let listener = quic::QuicListener::bind(loopback, "Bob", &bob).unwrap();
            let addr = listener.local_addr();
            let (a, b) = tokio::join!(
                quic::connect(addr, "Alice", "Bob", &alice),
                listener.accept("Alice")
            );
            (a.unwrap(), b.unwrap())
        }
        Kind::WebSocket => {
            let listener = WebSocketListener::bind(loopback, "Bob", &options)
                .await
                .unwrap();
            let addr = listener.local_addr();
            let (a, b) = tokio::join!(
                websocket::connect(addr, "Alice", "Bob", &options),
                listener.accept("Alice")
            );
            (a.unwrap(), b.unwrap())
        }
    }
}

async fn endpoints(kind: Kind) -> (RumpsteakEndpoint<Party>, RumpsteakEndpoint<Party>) {
    let (a, b) = sessions(kind).await;
    (
        endpoint(Party::Alice, Party::Bob, a),
        endpoint(Party::Bob, Party::Alice, b),
    )
}

fn end(ending: Ending, mut ep: RumpsteakEndpoint<Party>, peer: Party) {
    match ending {
        Ending::Close => assert!(ep.close_channel(&peer)),
        Ending::Drop => drop(ep),
    }
}

/// Bob waits for a message; Alice sends one, then closes or drops. Bob gets
/// the message, then his next receive, already waiting, fails.
async fn receive_in_flight(kind: Kind, ending: Ending) {
    let (mut alice, mut bob) = endpoints(kind).await;
    let mut h = Handler::new();
    let waiting = tokio::spawn(async move {
        let mut h = Handler::new();
        let first = h.recv::<Msg>(&mut bob, Party::Alice).await;
        let second = h.recv::<Msg>(&mut bob, Party::Alice).await;
        (first, second, bob)
    });
    h.send(&mut alice, Party::Bob, &msg(1)).await.unwrap();
    // Give the second receive time to be waiting; the check below shows
    // it was still in flight when Alice went away.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "{kind:?}: the receive did not wait");
    end(ending, alice, Party::Bob);

    let (first, second, bob) = within(10, waiting).await.unwrap();
    assert_eq!(first.unwrap(), msg(1), "{kind:?}");
    let e = second.unwrap_err();
    assert!(e.is_closed(), "{kind:?} {ending:?}: {e}");
    assert!(bob.has_channel(&Party::Alice), "{kind:?}");
    let meta = bob.get_metadata(&Party::Alice).unwrap();
    assert!(meta.is_complete, "{kind:?}: {meta:?}");
    assert_eq!(meta.operation_count, 1);
}

/// Alice sends until the transport makes her wait; Bob, who reads nothing,
/// closes or drops. Alice's waiting send fails.
async fn send_in_flight(kind: Kind, ending: Ending, frame_len: usize) {
    let (mut alice, bob) = endpoints(kind).await;
    let sending = tokio::spawn(async move {
        let mut h = Handler::new();
        let big = vec![7u8; frame_len];
        let mut sent = 0u64;
        loop {
            if let Err(e) = h.send(&mut alice, Party::Bob, &big).await {
                return (sent, e, alice);
            }
            sent += 1;
        }
    });
    // Long enough for the sender to fill the buffers on the way (a few
    // MiB of kernel buffers over loopback); the check shows it is stuck.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sending.is_finished(), "{kind:?}: the send did not wait");
    end(ending, bob, Party::Alice);

    let (sent, e, alice) = within(10, sending).await.unwrap();
    assert!(sent >= 1, "{kind:?}: nothing was sent before the wait");
    assert!(
        e.as_transport().is_some(),
        "{kind:?} {ending:?}: not a transport error: {e}"
    );
    assert_eq!(alice.traffic(&Party::Bob).unwrap().frames_sent, sent);
    assert!(alice.has_channel(&Party::Bob));
}

async fn all_scenarios(kind: Kind, send_frame_len: Option<usize>) {
    for ending in [Ending::Close, Ending::Drop] {
        receive_in_flight(kind, ending).await;
        if let Some(len) = send_frame_len {
            send_in_flight(kind, ending, len).await;
        }
    }
}

// An in-memory send never waits (the channel is unbounded), so only a
// receive can be in flight there.
#[tokio::test]
async fn in_memory_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::InMemory, None).await;
}

#[tokio::test]
async fn bounded_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::Bounded, Some(16)).await;
}

#[tokio::test]
async fn sink_stream_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::SinkStream, Some(16)).await;
}

#[tokio::test]
async fn tcp_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::Tcp, Some(256 * 1024)).await;
}

#[tokio::test]
async fn websocket_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::WebSocket, Some(256 * 1024)).await;
}

#[tokio::test]
async fn tls_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::Tls, Some(256 * 1024)).await;
}

#[tokio::test]
async fn quic_operations_in_flight_end_with_an_error() {
    all_scenarios(Kind::Quic, Some(256 * 1024)).await;
}
