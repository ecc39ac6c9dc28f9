//! A live session over TLS is not ended by a newcomer that passes the role
//! handshake with another key of the peer's role: the newcomer is refused
//! with `IdentityChanged` before the live link is touched, and the session
//! goes on over it.

use std::time::Duration;

use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
use rumpsteak_aura_net::tls::dev::DevCa;
use rumpsteak_aura_resume::{
    RejectReason, ResumableSession, ResumeConfig, ResumeError, ResumeListener, TcpRedial,
};
use tokio::time::timeout;

/// A generous bound that only a hang reaches (the test takes well under a
/// second).
const HANG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_of_the_role_does_not_take_over_a_live_session() {
    let ca = DevCa::new("test CA").unwrap();
    let options = TcpOptions::new().with_session_id("takeover");
    let bob_options = options.clone().with_tls(ca.identity("Bob").unwrap());
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Bob",
        &rumpsteak_aura_resume::link_options(bob_options),
    )
    .await
    .unwrap();
    let addr = bound.local_addr();
    let bob_config = ResumeConfig::new("takeover", "Bob", "")
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20));
    let listener = ResumeListener::new(bound, bob_config, &["Alice"]);

    let dial = |key| {
        let redial = TcpRedial::new(addr, "Alice", "Bob", options.clone().with_tls(key));
        let config = redial
            .config()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
            .with_reconnect_deadline(Duration::from_secs(5));
        ResumableSession::open(redial, config)
    };
    let (a, b) = tokio::join!(
        dial(ca.identity("Alice").unwrap()),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    a.send_frame(vec![1]).await.unwrap();
    assert_eq!(b.recv_frame().await.unwrap(), vec![1]);

    // Another key of Alice's role, from the same CA, dials the same
    // session while the first Alice is connected.
    let newcomer = timeout(HANG, dial(ca.identity("Alice").unwrap()))
        .await
        .expect("the newcomer was neither refused nor let in");
    let e = newcomer.expect_err("the newcomer was let into the live session");
    match &e {
        ResumeError::RefusedByPeer { reason, .. } => {
            assert_eq!(*reason, RejectReason::IdentityChanged, "{e}")
        }
        other => panic!("expected a refusal for another identity, got {other}"),
    }

    // The live session goes on over its first link.
    a.send_frame(vec![2]).await.unwrap();
    assert_eq!(
        timeout(HANG, b.recv_frame()).await.unwrap().unwrap(),
        vec![2]
    );
    b.send_frame(vec![3]).await.unwrap();
    assert_eq!(
        timeout(HANG, a.recv_frame()).await.unwrap().unwrap(),
        vec![3]
    );
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats().last_cause);
    assert_eq!(ha.stats().reconnects, 0, "{:?}", ha.stats().last_cause);
    assert!(hb.error().is_none(), "{:?}", hb.error());
}
