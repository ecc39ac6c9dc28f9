//! Frames cross a real TCP connection whole, in order, within the limit,
//! and an orderly close loses none of them.
#![cfg(feature = "tcp")]

mod common;

use std::time::Duration;

use common::{Net, assert_send_over_limit_refused, pair, within};
use rumpsteak_aura_net::tcp::TcpOptions;
use rumpsteak_aura_transport::TransportErrorKind;

#[tokio::test]
async fn frames_of_every_size_arrive_whole_and_in_order() {
    let options = TcpOptions::new();
    let (mut client, mut server) = pair(Net::Tcp, &options, &options).await;
    let sizes = [0usize, 1, 2, 100, 65_536, 1 << 20, 3 << 20];
    let echo = tokio::spawn(async move {
        for _ in sizes {
            let frame = server.recv_frame().await.unwrap();
            server.send_frame(frame).await.unwrap();
        }
        server
    });
    for (i, size) in sizes.into_iter().enumerate() {
        let frame: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
        client.send_frame(frame.clone()).await.unwrap();
        assert_eq!(within(10, client.recv_frame()).await.unwrap(), frame);
    }
    within(10, echo).await.unwrap();
}

#[tokio::test]
async fn close_delivers_every_frame_then_closed() {
    let options = TcpOptions::new();
    let (mut client, mut server) = pair(Net::Tcp, &options, &options).await;
    const N: usize = 2_000;
    // The client sends everything and drops its session at once, while the
    // server has not read a single frame yet.
    let sender = tokio::spawn(async move {
        for i in 0..N {
            client
                .send_frame(vec![(i % 251) as u8; 1024])
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..N {
        let frame = within(10, server.recv_frame()).await.unwrap();
        assert_eq!(frame, vec![(i % 251) as u8; 1024], "frame {i}");
    }
    within(10, sender).await.unwrap();
    assert!(
        within(10, server.recv_frame())
            .await
            .unwrap_err()
            .is_closed()
    );
}

#[tokio::test]
async fn a_closed_session_still_receives() {
    let options = TcpOptions::new();
    let (mut client, mut server) = pair(Net::Tcp, &options, &options).await;
    client.send_frame(b"last words".to_vec()).await.unwrap();
    client.close();
    assert!(client.send_frame(vec![1]).await.unwrap_err().is_closed());
    assert_eq!(server.recv_frame().await.unwrap(), b"last words");
    assert!(
        within(5, server.recv_frame())
            .await
            .unwrap_err()
            .is_closed()
    );
    // Half-closed: the server can still answer.
    server.send_frame(b"noted".to_vec()).await.unwrap();
    assert_eq!(within(5, client.recv_frame()).await.unwrap(), b"noted");
}

#[tokio::test]
async fn the_frame_limit_holds_over_tcp() {
    let small = TcpOptions::new().with_max_frame_len(1024);
    let (mut client, mut server) = pair(Net::Tcp, &TcpOptions::new(), &small).await;
    assert_eq!(server.max_frame_len(), 1024);

    // The server refuses to send beyond its limit, before anything leaves.
    assert_send_over_limit_refused(&mut server, 1024).await;

    // An oversize frame from the client is skipped with an error; the next
    // one arrives.
    client.send_frame(vec![1; 5000]).await.unwrap();
    client.send_frame(vec![2; 10]).await.unwrap();
    let err = within(5, server.recv_frame()).await.unwrap_err();
    assert!(matches!(
        err.kind(),
        TransportErrorKind::FrameTooLarge {
            size: 5000,
            limit: 1024
        }
    ));
    assert_eq!(within(5, server.recv_frame()).await.unwrap(), vec![2; 10]);
}

#[tokio::test]
async fn cancelled_receives_lose_nothing() {
    let options = TcpOptions::new();
    let (mut client, mut server) = pair(Net::Tcp, &options, &options).await;
    let big: Vec<u8> = (0..8 << 20).map(|i| (i % 253) as u8).collect();
    let expected = big.clone();
    let sender = tokio::spawn(async move {
        client.send_frame(big).await.unwrap();
        client.send_frame(vec![7]).await.unwrap();
        client
    });
    // Receive with a tiny timeout over and over: many receives are dropped
    // half-way through the big frame.
    let mut cancelled = 0;
    let frame = loop {
        match tokio::time::timeout(Duration::from_micros(200), server.recv_frame()).await {
            Ok(frame) => break frame.unwrap(),
            Err(_) => cancelled += 1,
        }
        assert!(cancelled < 1_000_000, "never completed");
    };
    assert!(cancelled > 0, "no receive was cancelled");
    assert_eq!(frame, expected);
    assert_eq!(within(5, server.recv_frame()).await.unwrap(), vec![7]);
    within(5, sender).await.unwrap();
}

#[tokio::test]
async fn ping_pong_many_rounds() {
    let options = TcpOptions::new();
    let (mut client, mut server) = pair(Net::Tcp, &options, &options).await;
    let echo = tokio::spawn(async move {
        while let Ok(frame) = server.recv_frame().await {
            server.send_frame(frame).await.unwrap();
        }
    });
    for i in 0u32..2_000 {
        client.send_frame(i.to_be_bytes().to_vec()).await.unwrap();
        assert_eq!(client.recv_frame().await.unwrap(), i.to_be_bytes());
    }
    drop(client);
    within(5, echo).await.unwrap();
}

#[tokio::test]
#[ignore = "stress: run with --ignored"]
async fn stress_tcp_bulk_both_ways() {
    let options = TcpOptions::new();
    let (mut client, mut server) = pair(Net::Tcp, &options, &options).await;
    const N: u32 = 200_000;
    let echo = tokio::spawn(async move {
        for i in 0..N {
            let frame = server.recv_frame().await.unwrap();
            assert_eq!(&frame[..4], i.to_be_bytes());
            server.send_frame(frame).await.unwrap();
        }
    });
    for i in 0..N {
        let mut frame = i.to_be_bytes().to_vec();
        frame.resize(4 + (i as usize * 7919) % 4096, 0xAB);
        client.send_frame(frame.clone()).await.unwrap();
        assert_eq!(client.recv_frame().await.unwrap(), frame);
    }
    within(60, echo).await.unwrap();
}
