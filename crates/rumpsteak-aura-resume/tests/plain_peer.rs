//! A resumable side and a plain one refuse each other in the network
//! handshake, on both sides and whichever side dials, with a typed
//! version refusal: the links announce the resume wire version through
//! `link_options`, so no frame of either framing reaches the other.

use std::time::Duration;

use rumpsteak_aura::{RefusalReason, TransportError};
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_resume::{
    RESUME_WIRE_VERSION, ResumableSession, ResumeConfig, ResumeError, ResumeListener, TcpRedial,
    link_options,
};
use rumpsteak_aura_transport::wire::WIRE_VERSION;

/// A bound on each step that would otherwise wait for a deadline of
/// seconds: generous for a loaded 2-core machine, far below the 30 s
/// reconnect deadline a refused dial would otherwise retry against.
const HANG: Duration = Duration::from_secs(10);

fn assert_version_refusal(e: &TransportError, expected: u8, presented: u8) {
    let r = e
        .refusal()
        .unwrap_or_else(|| panic!("expected a refusal, got {e}"));
    assert_eq!(r.reason(), RefusalReason::Version, "{e}");
    assert_eq!(r.expected(), format!("wire format version {expected}"));
    assert_eq!(r.presented(), format!("wire format version {presented}"));
}

#[tokio::test]
async fn a_plain_dialer_is_refused_by_a_resumable_listener() {
    let options = TcpOptions::new().with_session_id("plain");
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Bob",
        &link_options(options.clone()),
    )
    .await
    .unwrap();
    let addr = bound.local_addr();
    let listener = ResumeListener::new(bound, ResumeConfig::new("plain", "Bob", ""), &["Alice"]);

    let dialed = tokio::time::timeout(HANG, tcp::connect(addr, "Alice", "Bob", &options))
        .await
        .expect("the refusal comes in the handshake");
    assert_version_refusal(&dialed.unwrap_err(), RESUME_WIRE_VERSION, WIRE_VERSION);

    // The plain dialer took nothing: a resumable one still gets the session.
    let redial = TcpRedial::new(addr, "Alice", "Bob", options);
    let config = redial.config();
    let (alice, bob) = tokio::time::timeout(HANG, async {
        tokio::join!(
            ResumableSession::open(redial, config),
            listener.accept("Alice")
        )
    })
    .await
    .expect("a resumable dialer is accepted");
    let (mut alice, mut bob) = (alice.unwrap().into_session(), bob.unwrap().into_session());
    alice.send_frame(vec![4, 2]).await.unwrap();
    assert_eq!(bob.recv_frame().await.unwrap(), vec![4, 2]);
}

#[tokio::test]
async fn a_resumable_dialer_is_refused_by_a_plain_listener_at_once() {
    let options = TcpOptions::new().with_session_id("plain");
    let plain = SessionListener::bind("127.0.0.1:0".parse().unwrap(), "Bob", &options)
        .await
        .unwrap();
    let redial = TcpRedial::new(plain.local_addr(), "Alice", "Bob", options);
    let config = redial.config();
    let (opened, accepted) = tokio::time::timeout(HANG, async {
        tokio::join!(
            ResumableSession::open(redial, config),
            plain.accept("Alice")
        )
    })
    .await
    .expect("a refusal ends the open at once, not at the reconnect deadline");
    assert_version_refusal(&accepted.unwrap_err(), WIRE_VERSION, RESUME_WIRE_VERSION);
    match opened.err() {
        Some(ResumeError::Link(e)) => assert_version_refusal(&e, WIRE_VERSION, RESUME_WIRE_VERSION),
        other => panic!("expected the link's version refusal, got {other:?}"),
    }
}
