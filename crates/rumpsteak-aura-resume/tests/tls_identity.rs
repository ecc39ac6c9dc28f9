//! Over TLS the peer identity is the key of the certificate: a reconnection
//! that reaches another key for the same role (another machine with a
//! certificate of the same CA) is refused with `IdentityChanged`, before
//! any greeting; one that reaches the same key resumes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
use rumpsteak_aura_net::tls::dev::DevCa;
use rumpsteak_aura_resume::{
    ResumableSession, ResumeConfig, ResumeError, ResumeListener, TcpRedial,
};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

/// A generous bound that only a hang reaches (the test takes well under
/// a second).
const HANG: Duration = Duration::from_secs(60);

/// Forwards to whichever upstream is current; bumping `cut` closes every
/// forwarded connection.
async fn switch(upstream: Arc<Mutex<SocketAddr>>, cut: watch::Receiver<u64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = listener.accept().await {
            let to = *upstream.lock().unwrap();
            let Ok(mut b) = TcpStream::connect(to).await else {
                continue;
            };
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

async fn bob(ca: &DevCa, options: &TcpOptions) -> (SocketAddr, ResumeListener) {
    let options = options.clone().with_tls(ca.identity("Bob").unwrap());
    let bound = SessionListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "Bob",
        &rumpsteak_aura_resume::link_options(options.clone()),
    )
    .await
    .unwrap();
    let addr = bound.local_addr();
    let config = ResumeConfig::new("tls-resume", "Bob", "")
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20));
    (addr, ResumeListener::new(bound, config, &["Alice"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_for_the_same_role_is_refused() {
    let ca = DevCa::new("test CA").unwrap();
    let options = TcpOptions::new().with_session_id("tls-resume");
    let (first, listener) = bob(&ca, &options).await;
    let upstream = Arc::new(Mutex::new(first));
    let (cut, cuts) = watch::channel(0u64);
    let via = switch(upstream.clone(), cuts).await;

    let alice_options = options.clone().with_tls(ca.identity("Alice").unwrap());
    let redial = TcpRedial::new(via, "Alice", "Bob", alice_options);
    let config = redial
        .config()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .with_reconnect_deadline(Duration::from_secs(20));
    let (a, b) = tokio::join!(
        ResumableSession::open(redial, config),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let proven = rumpsteak_aura_transport::SessionTransport::peer_identity(&a)
        .unwrap()
        .to_string();
    assert!(proven.starts_with("key:"), "{proven}");
    let ha = a.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());

    // A cut to the same Bob resumes.
    a.send_frame(vec![1]).await.unwrap();
    assert_eq!(b.recv_frame().await.unwrap(), vec![1]);
    cut.send_modify(|n| *n += 1);
    a.send_frame(vec![2]).await.unwrap();
    assert_eq!(
        timeout(HANG, b.recv_frame()).await.unwrap().unwrap(),
        vec![2]
    );
    // The proxy closes its connections when its task sees the cut, which
    // may be after it forwarded frame 2 on the old link: the reconnection
    // can come after the frame, but it comes, once.
    timeout(HANG, async {
        while ha.stats().reconnects == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(ha.stats().reconnects, 1);

    // The next connection reaches another Bob: same CA, same role, another
    // key.
    let (other, _other_listener) = bob(&ca, &options).await;
    *upstream.lock().unwrap() = other;
    cut.send_modify(|n| *n += 1);
    let e = timeout(HANG, a.recv_frame()).await.unwrap().unwrap_err();
    match ResumeError::of(&e) {
        Some(ResumeError::IdentityChanged {
            expected,
            presented,
        }) => {
            assert_eq!(expected, &proven);
            let presented = presented.as_deref().unwrap();
            assert!(presented.starts_with("key:") && presented != proven);
        }
        _ => panic!("expected an identity change, got {e}"),
    }
}
