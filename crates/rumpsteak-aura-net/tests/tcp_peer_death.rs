//! A peer that dies, resets or goes silent ends the pending receive with a
//! transport error in bounded time; a half-written frame is never delivered.
#![cfg(feature = "tcp")]

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::{Net, io_error_kind, pair, raw_peer, within};
use rumpsteak_aura_net::tcp::TcpOptions;
use rumpsteak_aura_transport::TransportErrorKind;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_peer_dying_mid_frame_is_an_error_not_a_message() {
    let (mut bob, mut raw) = raw_peer().await;

    // One whole frame, then the first 10 bytes of a 100-byte frame.
    raw.write_all(&[0, 0, 0, 2, b'o', b'k']).await.unwrap();
    raw.write_all(&[0, 0, 0, 100]).await.unwrap();
    raw.write_all(&[9; 10]).await.unwrap();
    assert_eq!(within(5, bob.recv_frame()).await.unwrap(), b"ok");
    let pending = tokio::spawn(async move {
        let result = bob.recv_frame().await;
        (result, bob)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(raw);

    let (result, mut bob) = within(5, pending).await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(io_error_kind(&err), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("middle of a frame"), "{err}");
    assert!(bob.recv_frame().await.unwrap_err().is_closed());
}

#[tokio::test]
async fn a_reset_connection_ends_the_pending_receive() {
    let (mut bob, raw) = raw_peer().await;
    let pending = tokio::spawn(async move { bob.recv_frame().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Abort the connection: the kernel sends a reset, not a FIN.
    raw.set_zero_linger().unwrap();
    drop(raw);
    let err = within(5, pending).await.unwrap().unwrap_err();
    assert_eq!(io_error_kind(&err), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn a_dropped_peer_session_ends_the_pending_receive_with_closed() {
    let options = TcpOptions::new();
    let (client, mut server) = pair(Net::Tcp, &options, &options).await;
    let pending = tokio::spawn(async move { server.recv_frame().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(client);
    assert!(within(5, pending).await.unwrap().unwrap_err().is_closed());
}

#[tokio::test]
async fn a_silent_peer_hits_the_read_deadline_and_the_session_survives() {
    let deadline = Duration::from_millis(200);
    let (mut client, mut server) = pair(
        Net::Tcp,
        &TcpOptions::new().with_read_deadline(deadline),
        &TcpOptions::new(),
    )
    .await;
    let started = Instant::now();
    let err = within(5, client.recv_frame()).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err.kind(), TransportErrorKind::ReadDeadline(d) if *d == deadline),
        "{err}"
    );
    assert!(
        waited >= deadline && waited < Duration::from_secs(2),
        "waited {waited:?}"
    );

    server.send_frame(b"late".to_vec()).await.unwrap();
    assert_eq!(within(5, client.recv_frame()).await.unwrap(), b"late");
}

#[tokio::test]
async fn sending_to_a_peer_that_dropped_its_session_fails_after_its_linger() {
    let linger = Duration::from_millis(100);
    let (mut client, server) = pair(
        Net::Tcp,
        &TcpOptions::new(),
        &TcpOptions::new().with_linger(linger),
    )
    .await;
    drop(server);
    // The peer's close shows at once on the receiving side...
    assert!(
        within(5, client.recv_frame())
            .await
            .unwrap_err()
            .is_closed()
    );
    // ...while sends are absorbed until the peer's linger ends, then fail.
    let started = Instant::now();
    let err = loop {
        if let Err(e) = client.send_frame(vec![0; 1024]).await {
            break e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "sends kept succeeding"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(matches!(err.kind(), TransportErrorKind::Io(_)), "{err}");
}
