//! The role and version handshake: a wrong peer gets a typed refusal on
//! both sides, and the connection is closed.
#![cfg(feature = "tcp")]

mod common;

use common::{
    ACCEPT, Net, REJECT, any_port, assert_unexpected_role_refused, greeting, hello, read_frame,
    reason, refusal, within, write_frame,
};
use rumpsteak_aura_net::tcp::{self, TcpOptions};
use rumpsteak_aura_net::{HANDSHAKE_VERSION, RefusalReason};
use rumpsteak_aura_transport::wire::WIRE_VERSION;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The reason text inside a raw reject frame.
fn rejection(frame: &[u8]) -> String {
    assert_eq!(&frame[..4], b"RSKA");
    assert_eq!(frame[5], REJECT, "not a reject frame: {frame:?}");
    let from_len = frame[6] as usize;
    let reason_len = frame[7 + from_len] as usize;
    let reason = &frame[8 + from_len..8 + from_len + reason_len];
    String::from_utf8(reason.to_vec()).unwrap()
}

#[tokio::test]
async fn an_unexpected_role_is_refused_on_both_sides() {
    let listener = assert_unexpected_role_refused(Net::Tcp).await;

    // The listener keeps working for the right peer.
    let (dialed, accepted) = listener
        .dial_and_accept(Net::Tcp, ("Alice", "Bob"), "Alice", &TcpOptions::new())
        .await;
    let (mut alice, mut bob) = (dialed.unwrap(), accepted.unwrap());
    alice.send_frame(vec![1]).await.unwrap();
    assert_eq!(bob.recv_frame().await.unwrap(), vec![1]);
}

#[tokio::test]
async fn dialing_the_wrong_role_is_refused_on_both_sides() {
    let options = TcpOptions::new();
    let listener = Net::Tcp.bind("Bob", &options).await;
    let (dialed, accepted) = listener
        .dial_and_accept(Net::Tcp, ("Alice", "Carol"), "Alice", &options)
        .await;
    for e in [dialed.unwrap_err(), accepted.unwrap_err()] {
        let r = refusal(&e);
        assert_eq!(r.reason(), RefusalReason::WrongRole, "{e}");
        assert_eq!((r.expected(), r.presented()), ("Bob", "Carol"));
    }
}

#[tokio::test]
async fn an_acceptor_refuses_another_wire_version_and_closes() {
    let listener = Net::Tcp.bind("Bob", &TcpOptions::new()).await;
    let addr = listener.local_addr();
    let future = WIRE_VERSION.wrapping_add(1);
    let peer = async {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let mut frame = hello("Alice", "Bob");
        *frame.last_mut().unwrap() = future;
        write_frame(&mut raw, &frame).await;
        let reply = read_frame(&mut raw).await.expect("a reject frame");
        // Then the connection is closed.
        let after = read_frame(&mut raw).await;
        (reply, after)
    };
    let (accepted, (reply, after)) =
        within(5, async { tokio::join!(listener.accept("Alice"), peer) }).await;
    let err = accepted.unwrap_err();
    let r = refusal(&err);
    assert_eq!(r.reason(), RefusalReason::Version);
    assert_eq!(r.expected(), format!("wire format version {WIRE_VERSION}"));
    assert_eq!(r.presented(), format!("wire format version {future}"));
    assert!(
        rejection(&reply).contains(&format!("presented `wire format version {future}`")),
        "{reply:?}"
    );
    assert_eq!(
        reply[4], HANDSHAKE_VERSION,
        "the reject carries the acceptor's version"
    );
    assert_eq!(after, None);
}

#[tokio::test]
async fn a_dialer_refuses_another_wire_version_and_closes() {
    let raw_listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = raw_listener.local_addr().unwrap();
    let future = HANDSHAKE_VERSION.wrapping_add(1);
    // A peer of another version that accepts without checking.
    let peer = async {
        let (mut raw, _) = raw_listener.accept().await.unwrap();
        let hello = read_frame(&mut raw).await.expect("a greeting");
        write_frame(&mut raw, &greeting(future, ACCEPT, &["Bob"])).await;
        let verdict = read_frame(&mut raw).await.expect("a verdict");
        let after = read_frame(&mut raw).await;
        (hello, verdict, after)
    };
    let options = TcpOptions::new();
    let (dialed, (hello, verdict, after)) = within(5, async {
        tokio::join!(tcp::connect(addr, "Alice", "Bob", &options), peer)
    })
    .await;
    assert_eq!(hello, common::hello("Alice", "Bob"));
    let err = dialed.unwrap_err();
    let r = refusal(&err);
    assert_eq!(r.reason(), RefusalReason::Version);
    assert_eq!(r.presented(), format!("handshake version {future}"));
    assert!(
        rejection(&verdict).contains(&format!("presented `handshake version {future}`")),
        "{verdict:?}"
    );
    assert_eq!(after, None);
}

#[tokio::test]
async fn a_stranger_is_refused_and_closed() {
    let listener = Net::Tcp.bind("Bob", &TcpOptions::new()).await;
    let addr = listener.local_addr();
    let stranger = async {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let reply = read_frame(&mut raw).await.expect("a reject frame");
        (reply, read_frame(&mut raw).await)
    };
    let (accepted, (reply, after)) = within(5, async {
        tokio::join!(listener.accept("Alice"), stranger)
    })
    .await;
    let err = accepted.unwrap_err();
    assert!(
        reason(&err).contains("not a rumpsteak-aura session"),
        "{err}"
    );
    assert!(rejection(&reply).contains("not a rumpsteak-aura session"));
    assert_eq!(after, None);
}

#[tokio::test]
async fn first_frames_right_after_the_handshake_are_kept() {
    // The dialer sends right after confirming; the acceptor must not lose
    // bytes that arrived together with the confirmation.
    let listener = Net::Tcp.bind("Bob", &TcpOptions::new()).await;
    let addr = listener.local_addr();
    let dialer = async {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        write_frame(&mut raw, &hello("Alice", "Bob")).await;
        let reply = read_frame(&mut raw).await.unwrap();
        assert_eq!(reply, greeting(HANDSHAKE_VERSION, ACCEPT, &["Bob"]));
        // Confirmation and two frames in one write.
        let mut bytes = Vec::new();
        for payload in [
            greeting(HANDSHAKE_VERSION, ACCEPT, &["Alice"]),
            b"one".to_vec(),
            b"two".to_vec(),
        ] {
            bytes.extend((payload.len() as u32).to_be_bytes());
            bytes.extend(payload);
        }
        raw.write_all(&bytes).await.unwrap();
        raw
    };
    let (accepted, _raw) =
        within(5, async { tokio::join!(listener.accept("Alice"), dialer) }).await;
    let mut bob = accepted.unwrap();
    assert_eq!(bob.recv_frame().await.unwrap(), b"one");
    assert_eq!(bob.recv_frame().await.unwrap(), b"two");
}

/// A refused peer that keeps its end open does not keep the listener's
/// socket for the linger time (5 s by default): soon after the refusal the
/// listener's socket is gone, so a byte written to it is answered with a
/// reset (while lingering it would be read and discarded, and the reader
/// would see a clean end of stream).
#[tokio::test]
async fn a_refused_connection_does_not_linger() {
    let listener = Net::Tcp.bind("Bob", &TcpOptions::new()).await;
    let addr = listener.local_addr();
    let peer = async {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        write_frame(&mut raw, &hello("Mallory", "Bob")).await;
        let reply = read_frame(&mut raw).await.expect("a reject frame");
        assert_eq!(reply[5], REJECT);
        assert_eq!(read_frame(&mut raw).await, None, "then a FIN");
        raw
    };
    let (accepted, mut raw) =
        within(5, async { tokio::join!(listener.accept("Alice"), peer) }).await;
    assert!(accepted.is_err());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The first write may be taken by our kernel before the reset comes
    // back; a few tries, each within a bounded wait.
    let mut reset = false;
    for _ in 0..10 {
        match raw.write_all(b"x").await {
            Err(_) => {
                reset = true;
                break;
            }
            Ok(()) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert!(reset, "the refused connection is still lingering");
}

/// A session layer with frames of its own (resumable sessions) announces
/// its wire version through the options: a plain peer is refused in the
/// handshake, on both sides and whichever side dials, and two peers of
/// the same layer meet.
#[tokio::test]
async fn a_layer_of_another_wire_version_and_a_plain_peer_refuse_each_other() {
    let other = WIRE_VERSION.wrapping_add(1);
    let layered = TcpOptions::new().with_wire_version(other);
    assert_eq!(TcpOptions::new().wire_version(), WIRE_VERSION);
    assert_eq!(layered.wire_version(), other);
    let plain = TcpOptions::new();
    for (listening, dialing, expected, presented) in [
        (&plain, &layered, WIRE_VERSION, other),
        (&layered, &plain, other, WIRE_VERSION),
    ] {
        let listener = Net::Tcp.bind("Bob", listening).await;
        let (dialed, accepted) = within(
            5,
            listener.dial_and_accept(Net::Tcp, ("Alice", "Bob"), "Alice", dialing),
        )
        .await;
        for e in [dialed.unwrap_err(), accepted.unwrap_err()] {
            let r = refusal(&e);
            assert_eq!(r.reason(), RefusalReason::Version, "{e}");
            assert_eq!(r.expected(), format!("wire format version {expected}"));
            assert_eq!(r.presented(), format!("wire format version {presented}"));
        }
    }
    let listener = Net::Tcp.bind("Bob", &layered).await;
    let (dialed, accepted) = within(
        5,
        listener.dial_and_accept(Net::Tcp, ("Alice", "Bob"), "Alice", &layered),
    )
    .await;
    let (mut alice, mut bob) = (dialed.unwrap(), accepted.unwrap());
    alice.send_frame(vec![9]).await.unwrap();
    assert_eq!(bob.recv_frame().await.unwrap(), vec![9]);
}
