//! Listeners under hostile connections: silent and slow peers delay no
//! one, the cap on pending handshakes holds, and a WebSocket peer cannot
//! make a listener buffer more than the pre-handshake budget.
#![cfg(feature = "tcp")]

mod common;

use std::time::{Duration, Instant};

use common::{any_port, within};
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Accepts until a `Client` session completes; failed handshakes (the
/// silent ones timing out, say) are counted and skipped.
async fn accept_client(listener: &SessionListener) -> RumpsteakSession {
    loop {
        if let Ok(session) = listener.accept("Client").await {
            return session;
        }
    }
}

/// Opens `n` connections that never send a byte.
async fn silent(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(TcpStream::connect(addr).await.unwrap());
    }
    conns
}

/// Every connection in `conns` is closed by the listener within `secs`.
async fn all_closed(conns: Vec<TcpStream>, secs: u64) {
    let reads = conns.into_iter().map(|mut c| async move {
        let mut byte = [0u8; 1];
        // A clean end of stream or a reset: either way the socket is gone.
        match c.read(&mut byte).await {
            Ok(0) | Err(_) => {}
            Ok(_) => panic!("a silent connection was sent data"),
        }
    });
    within(secs, futures::future::join_all(reads)).await;
}

/// 200 connections that send nothing are open while a legitimate peer
/// connects; it completes its handshake within one second, and the silent
/// ones are closed when the handshake timeout passes.
///
/// Why one second is safe and still proves the point: with handshakes run
/// one after another, the legitimate peer would wait for 200 handshake
/// timeouts of 3 s each (10 minutes), or for at least one (3 s) if only the
/// connection ahead of it were serialized. Run concurrently, its handshake
/// costs two round trips on loopback plus accepting 200 sockets, a few
/// milliseconds; even a loaded 2-core machine that is 100 times slower stays
/// well under a second.
async fn silent_peers_delay_no_one(options: TcpOptions, client: TcpOptions) {
    let listener = SessionListener::bind(any_port(), "Server", &options)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let hold = silent(addr, 200).await;
    let server = async {
        let mut session = accept_client(&listener).await;
        assert_eq!(session.recv_frame().await.unwrap(), b"hello");
    };
    let dial = async {
        let started = Instant::now();
        let mut session = tcp::connect(addr, "Client", "Server", &client)
            .await
            .unwrap();
        let took = started.elapsed();
        session.send_frame(b"hello".to_vec()).await.unwrap();
        took
    };
    let ((), took) = within(10, async { tokio::join!(server, dial) }).await;
    assert!(
        took < Duration::from_secs(1),
        "the handshake took {took:?} behind 200 silent connections"
    );
    // The listener took all 200 into handshakes, and the timeout (3 s)
    // closes every one of them.
    all_closed(hold, 10).await;
    let settle = Instant::now();
    while listener.pending_handshakes() > 0 && settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(listener.pending_handshakes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_silent_connections_delay_no_one() {
    let options = TcpOptions::new().with_handshake_timeout(Duration::from_secs(3));
    silent_peers_delay_no_one(options.clone(), options).await;
}

#[cfg(feature = "dev-certs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_silent_connections_delay_no_one_over_tls() {
    let ca = rumpsteak_aura_net::tls::dev::DevCa::new("test CA").unwrap();
    let base = TcpOptions::new().with_handshake_timeout(Duration::from_secs(3));
    silent_peers_delay_no_one(
        base.clone().with_tls(ca.identity("Server").unwrap()),
        base.with_tls(ca.identity("Client").unwrap()),
    )
    .await;
}

/// At the cap of pending handshakes, the oldest silent connection makes
/// room: 50 silent connections against a cap of 8 leave at most 8 pending,
/// the others closed at once (long before the 30 s handshake timeout), and a
/// legitimate peer still gets in.
#[tokio::test]
async fn the_cap_on_pending_handshakes_evicts_the_oldest_silent_one() {
    let options = TcpOptions::new()
        .with_handshake_timeout(Duration::from_secs(30))
        .with_max_pending_handshakes(8);
    let listener = SessionListener::bind(any_port(), "Server", &options)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let mut hold = silent(addr, 50).await;
    let server = async {
        let mut session = accept_client(&listener).await;
        assert_eq!(session.recv_frame().await.unwrap(), b"in");
    };
    let dial = async {
        // Let the listener take the 50 first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut s = tcp::connect(addr, "Client", "Server", &options)
            .await
            .unwrap();
        s.send_frame(b"in".to_vec()).await.unwrap();
    };
    within(10, async { tokio::join!(server, dial) }).await;
    assert!(
        listener.pending_handshakes() <= 8,
        "{} pending",
        listener.pending_handshakes()
    );
    // The 42 oldest were evicted: closed now, not after 30 s.
    let evicted: Vec<TcpStream> = hold.drain(..42).collect();
    all_closed(evicted, 5).await;
}

#[cfg(feature = "websocket")]
mod websocket {
    use super::*;
    use futures::SinkExt;
    use rumpsteak_aura_net::websocket::{self, MAX_PREHANDSHAKE_BYTES, WebSocketListener};
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::Message;

    /// The 60 MiB hello of the report: the upgrade succeeds, then the
    /// peer sends one huge binary message as its hello. The listener stops
    /// reading after the pre-handshake budget, so it never buffers the
    /// message, and the sender cannot push it through.
    #[tokio::test]
    async fn a_huge_hello_is_cut_off_at_the_prehandshake_budget() {
        let listener = WebSocketListener::bind(any_port(), "Server", &TcpOptions::new())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let attacker = async {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut ws, _) =
                tokio_tungstenite::client_async(format!("ws://{addr}/rumpsteak"), stream)
                    .await
                    .unwrap();
            ws.send(Message::Binary(vec![0u8; 60 << 20].into())).await
        };
        let (accepted, sent) = within(20, async {
            tokio::join!(listener.accept("Client"), attacker)
        })
        .await;
        let err = accepted.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("more than {MAX_PREHANDSHAKE_BYTES} bytes")),
            "{err}"
        );
        assert!(sent.is_err(), "the 60 MiB hello went through");
    }

    /// The same budget holds for the HTTP upgrade request itself.
    #[tokio::test]
    async fn a_huge_upgrade_request_is_cut_off() {
        let listener = WebSocketListener::bind(any_port(), "Server", &TcpOptions::new())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let attacker = async {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            raw.write_all(b"GET /rumpsteak HTTP/1.1\r\nHost: x\r\nX-Pad: ")
                .await
                .unwrap();
            let pad = vec![b'a'; 1 << 20];
            let mut written = 0usize;
            for _ in 0..64 {
                match raw.write_all(&pad).await {
                    Ok(()) => written += pad.len(),
                    Err(_) => break,
                }
            }
            written
        };
        let (accepted, written) = within(20, async {
            tokio::join!(listener.accept("Client"), attacker)
        })
        .await;
        let err = accepted.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("more than {MAX_PREHANDSHAKE_BYTES} bytes")),
            "{err}"
        );
        // The kernel's buffers take a few MiB; 64 MiB never go through.
        assert!(written < 32 << 20, "{written} bytes written");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_websocket_connections_delay_no_one() {
        let options = TcpOptions::new().with_handshake_timeout(Duration::from_secs(3));
        let listener = WebSocketListener::bind(any_port(), "Server", &options)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let hold = silent(addr, 200).await;
        let server = async {
            loop {
                if let Ok(mut s) = listener.accept("Client").await {
                    assert_eq!(s.recv_frame().await.unwrap(), b"hello");
                    return;
                }
            }
        };
        let dial = async {
            let started = Instant::now();
            let mut s = websocket::connect(addr, "Client", "Server", &options)
                .await
                .unwrap();
            let took = started.elapsed();
            s.send_frame(b"hello".to_vec()).await.unwrap();
            took
        };
        let ((), took) = within(10, async { tokio::join!(server, dial) }).await;
        // As for TCP: serialized handshakes would cost at least 3 s here.
        assert!(took < Duration::from_secs(1), "{took:?}");
        all_closed(hold, 10).await;
    }
}
