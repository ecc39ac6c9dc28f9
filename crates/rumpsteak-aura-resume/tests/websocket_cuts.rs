//! Resumable sessions over WebSocket: `WebSocketRedial` redials through a
//! proxy that the test cuts at chosen moments (between messages, while
//! messages are in flight), and the `ResumeListener` routes each
//! reconnection arriving at a `WebSocketListener`. Every message arrives
//! exactly once and in order.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{msg, num};
use rumpsteak_aura_net::tcp::TcpOptions;
use rumpsteak_aura_net::websocket::WebSocketListener;
use rumpsteak_aura_resume::{ResumableSession, ResumeConfig, ResumeListener, WebSocketRedial};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

/// A generous bound that only a hang reaches (the test takes well under a
/// second).
const HANG: Duration = Duration::from_secs(60);

/// Forwards to `upstream`; bumping `cut` closes every forwarded connection.
async fn proxy(upstream: SocketAddr, cut: watch::Receiver<u64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = listener.accept().await {
            let Ok(mut b) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = a.set_nodelay(true);
            let _ = b.set_nodelay(true);
            let mut cut = cut.clone();
            cut.borrow_and_update();
            tokio::spawn(async move {
                tokio::select! {
                    _ = copy_bidirectional(&mut a, &mut b) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_session_survives_cuts() {
    let options = TcpOptions::new().with_session_id("ws-resume");
    let bound = WebSocketListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Bob",
        &rumpsteak_aura_resume::link_options(options.clone()),
    )
    .await
    .unwrap();
    let (cut, cuts) = watch::channel(0u64);
    let via = proxy(bound.local_addr(), cuts).await;
    let backoff =
        |c: ResumeConfig| c.with_backoff(Duration::from_millis(1), Duration::from_millis(20));
    let listener = ResumeListener::new(
        bound,
        backoff(ResumeConfig::new("ws-resume", "Bob", "")),
        &["Alice"],
    );
    let redial = WebSocketRedial::new(via, "Alice", "Bob", options);
    let config = backoff(redial.config());
    let (a, b) = tokio::join!(
        ResumableSession::open(redial, config),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let receiver = tokio::spawn(async move {
        for i in 0..2000u64 {
            assert_eq!(
                num(&b.recv_frame().await.unwrap()),
                i,
                "out of order or duplicated"
            );
        }
        b.send_frame(msg(7)).await.unwrap();
        b
    });
    for i in 0..2000u64 {
        a.send_frame(msg(i)).await.unwrap();
        // Ten cut signals, with whatever is in flight at that moment (a
        // signal that finds no connection up cuts nothing).
        if i % 200 == 100 {
            cut.send_modify(|n| *n += 1);
        }
    }
    assert_eq!(
        num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
        7
    );
    let _b = timeout(HANG, receiver).await.unwrap().unwrap();
    // At least one resumption, at most one per signal.
    let reconnects = ha.stats().reconnects;
    assert!((1..=10).contains(&reconnects), "{reconnects}");
    assert!(ha.error().is_none() && hb.error().is_none());
}
