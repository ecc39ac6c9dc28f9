//! Sessions over WebSocket binary messages: round trips, the handshake,
//! close, and a vanished peer.
#![cfg(feature = "websocket")]

mod common;

use std::io;
use std::time::Duration;

use common::{
    Net, assert_send_over_limit_refused, assert_unexpected_role_refused, io_error_kind, pair,
    reason, within,
};
use rumpsteak_aura_net::tcp::TcpOptions;
use rumpsteak_aura_net::websocket;
use rumpsteak_aura_transport::TransportErrorKind;

#[tokio::test]
async fn frames_of_every_size_arrive_whole_and_in_order() {
    let (mut client, mut server) =
        pair(Net::WebSocket, &TcpOptions::new(), &TcpOptions::new()).await;
    let sizes = [0usize, 1, 125, 126, 65_535, 65_536, 1 << 20];
    let echo = tokio::spawn(async move {
        for _ in sizes {
            let frame = server.recv_frame().await.unwrap();
            server.send_frame(frame).await.unwrap();
        }
        server
    });
    for size in sizes {
        let frame: Vec<u8> = (0..size).map(|b| (b % 241) as u8).collect();
        client.send_frame(frame.clone()).await.unwrap();
        assert_eq!(within(10, client.recv_frame()).await.unwrap(), frame);
    }
    within(10, echo).await.unwrap();
}

#[tokio::test]
async fn close_delivers_every_frame_then_closed() {
    let (mut client, mut server) =
        pair(Net::WebSocket, &TcpOptions::new(), &TcpOptions::new()).await;
    for i in 0u8..100 {
        client.send_frame(vec![i; 100]).await.unwrap();
    }
    drop(client);
    for i in 0u8..100 {
        assert_eq!(within(5, server.recv_frame()).await.unwrap(), vec![i; 100]);
    }
    assert!(
        within(5, server.recv_frame())
            .await
            .unwrap_err()
            .is_closed()
    );
}

#[tokio::test]
async fn an_unexpected_role_is_refused_on_both_sides() {
    assert_unexpected_role_refused(Net::WebSocket).await;
}

#[tokio::test]
async fn a_websocket_dialer_at_a_tcp_listener_is_refused_on_both_sides() {
    let options = TcpOptions::new();
    let listener = Net::Tcp.bind("Bob", &options).await;
    let (dialed, accepted) = listener
        .dial_and_accept(Net::WebSocket, ("Alice", "Bob"), "Alice", &options)
        .await;
    let (d, a) = (dialed.unwrap_err(), accepted.unwrap_err());
    assert!(reason(&a).contains("not a rumpsteak-aura session"), "{a}");
    assert!(matches!(d.kind(), TransportErrorKind::Handshake(_)), "{d}");
    assert!(
        d.to_string().contains(&listener.local_addr().to_string()),
        "{d}"
    );
}

#[tokio::test]
async fn a_tcp_dialer_at_a_websocket_listener_fails_in_bounded_time() {
    let options = TcpOptions::new().with_handshake_timeout(Duration::from_millis(300));
    let listener = Net::WebSocket.bind("Bob", &options).await;
    let (dialed, accepted) = listener
        .dial_and_accept(Net::Tcp, ("Alice", "Bob"), "Alice", &options)
        .await;
    // The listener refuses the non-HTTP bytes; the dialer sees its
    // connection end or time out, never a session.
    assert!(dialed.is_err());
    assert!(accepted.is_err());
}

#[tokio::test]
async fn a_vanished_peer_ends_the_pending_receive() {
    let listener = Net::WebSocket.bind("Bob", &TcpOptions::new()).await;
    let addr = listener.local_addr();
    // A raw WebSocket client that completes the role handshake by hand,
    // then vanishes without a close handshake.
    let raw = async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) =
            websocket::tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
                .await
                .unwrap();
        use futures::{SinkExt, StreamExt};
        use websocket::tokio_tungstenite::tungstenite::Message;
        let version = rumpsteak_aura_net::HANDSHAKE_VERSION;
        ws.send(Message::Binary(common::hello("Alice", "Bob").into()))
            .await
            .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert!(matches!(reply, Message::Binary(_)));
        ws.send(Message::Binary(
            common::greeting(version, common::ACCEPT, &["Alice"]).into(),
        ))
        .await
        .unwrap();
        ws
    };
    let (accepted, ws) = within(5, async { tokio::join!(listener.accept("Alice"), raw) }).await;
    let mut bob = accepted.unwrap();
    let pending = tokio::spawn(async move { bob.recv_frame().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(ws);
    let err = within(5, pending).await.unwrap().unwrap_err();
    assert_eq!(io_error_kind(&err), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn the_frame_limit_holds_over_websocket() {
    let small = TcpOptions::new().with_max_frame_len(1024);
    let (mut client, mut server) = pair(Net::WebSocket, &TcpOptions::new(), &small).await;
    assert_send_over_limit_refused(&mut server, 1024).await;
    client.send_frame(vec![1; 5000]).await.unwrap();
    let err = within(5, server.recv_frame()).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            TransportErrorKind::FrameTooLarge { limit: 1024, .. }
        ),
        "{err}"
    );
}
