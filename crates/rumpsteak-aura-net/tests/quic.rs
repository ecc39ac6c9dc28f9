//! QUIC sessions: the same identities, protocol and refusals as over TLS,
//! over loopback UDP.
#![cfg(all(feature = "quic", feature = "dev-certs"))]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{
    any_port, assert_listener_refused, assert_refused_both, greeting, hello, refusal, within,
};
use rumpsteak_aura_net::quic::{self, ALPN, QuicListener};
use rumpsteak_aura_net::tcp::{Mesh, MeshTransport, TcpOptions};
use rumpsteak_aura_net::tls::TlsConfig;
use rumpsteak_aura_net::tls::dev::{DevCa, Issued};
use rumpsteak_aura_net::{HANDSHAKE_VERSION, RefusalReason, TransportError};
use rumpsteak_aura_transport::RumpsteakSession;

fn tls(identity: TlsConfig) -> TcpOptions {
    TcpOptions::new().with_tls(identity)
}

fn listener(ca: &DevCa, role: &str) -> QuicListener {
    QuicListener::bind(any_port(), role, &tls(ca.identity(role).unwrap())).unwrap()
}

async fn attempt(
    listener: &QuicListener,
    options: &TcpOptions,
    (me, peer): (&str, &str),
) -> (
    Result<RumpsteakSession, TransportError>,
    Result<RumpsteakSession, TransportError>,
) {
    let addr = listener.local_addr();
    within(10, async {
        tokio::join!(
            quic::connect(addr, me, peer, options),
            listener.accept("Buyer")
        )
    })
    .await
}

async fn assert_still_serves(listener: &QuicListener, ca: &DevCa) {
    let options = tls(ca.identity("Buyer").unwrap());
    let (d, a) = attempt(listener, &options, ("Buyer", listener.local_role())).await;
    let (mut d, mut a) = (d.unwrap(), a.unwrap());
    d.send_frame(b"legitimate".to_vec()).await.unwrap();
    assert_eq!(within(5, a.recv_frame()).await.unwrap(), b"legitimate");
}

#[tokio::test]
async fn a_quic_session_carries_frames_both_ways_then_closes() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller");
    let (d, a) = attempt(
        &server,
        &tls(ca.identity("Buyer").unwrap()),
        ("Buyer", "Seller"),
    )
    .await;
    let (mut buyer, mut seller) = (d.unwrap(), a.unwrap());
    for size in [0, 1, 1000, 200_000] {
        buyer.send_frame(vec![3; size]).await.unwrap();
        assert_eq!(seller.recv_frame().await.unwrap(), vec![3; size]);
        seller.send_frame(vec![4; size]).await.unwrap();
        assert_eq!(buyer.recv_frame().await.unwrap(), vec![4; size]);
    }
    // Frames sent right before a drop all arrive, then `Closed`.
    for i in 0..100u8 {
        buyer.send_frame(vec![i; 100]).await.unwrap();
    }
    drop(buyer);
    for i in 0..100u8 {
        assert_eq!(within(5, seller.recv_frame()).await.unwrap(), vec![i; 100]);
    }
    assert!(
        within(5, seller.recv_frame())
            .await
            .unwrap_err()
            .is_closed()
    );
}

#[tokio::test]
async fn quic_needs_an_identity() {
    let err = QuicListener::bind(any_port(), "Seller", &TcpOptions::new()).unwrap_err();
    assert!(err.to_string().contains("TLS identity"), "{err}");
    let err = quic::connect(any_port(), "Buyer", "Seller", &TcpOptions::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS identity"), "{err}");
}

#[tokio::test]
async fn a_dialer_of_another_ca_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let other = DevCa::new("another CA").unwrap();
    let server = listener(&ca, "Seller");
    let issued = other.issue(&["Buyer"]).unwrap();
    let identity =
        TlsConfig::new("Buyer", vec![issued.cert.clone()], issued.key(), ca.trust()).unwrap();
    let (d, a) = attempt(&server, &tls(identity), ("Buyer", "Seller")).await;
    assert_refused_both(d, a, RefusalReason::UntrustedCertificate, true);
    assert_still_serves(&server, &ca).await;
}

#[tokio::test]
async fn a_listener_of_another_ca_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let other = DevCa::new("another CA").unwrap();
    let issued = other.issue(&["Seller"]).unwrap();
    let identity = TlsConfig::new(
        "Seller",
        vec![issued.cert.clone()],
        issued.key(),
        ca.trust(),
    )
    .unwrap();
    let server = QuicListener::bind(any_port(), "Seller", &tls(identity)).unwrap();
    let (d, a) = attempt(
        &server,
        &tls(ca.identity("Buyer").unwrap()),
        ("Buyer", "Seller"),
    )
    .await;
    assert_listener_refused(d, a, RefusalReason::UntrustedCertificate);
}

#[tokio::test]
async fn an_expired_certificate_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller");
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let issued = ca
        .issue_valid(&["Buyer"], now - 10 * day, now - day)
        .unwrap();
    let identity =
        TlsConfig::new("Buyer", vec![issued.cert.clone()], issued.key(), ca.trust()).unwrap();
    let (d, a) = attempt(&server, &tls(identity), ("Buyer", "Seller")).await;
    assert_refused_both(d, a, RefusalReason::ExpiredCertificate, true);
}

#[tokio::test]
async fn a_listener_of_another_role_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Auditor");
    let (d, a) = attempt(
        &server,
        &tls(ca.identity("Buyer").unwrap()),
        ("Buyer", "Seller"),
    )
    .await;
    let d = assert_listener_refused(d, a, RefusalReason::CertificateRole);
    assert_eq!(refusal(&d).presented(), "certificate of `Auditor`");
}

#[tokio::test]
async fn another_session_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let options = tls(ca.identity("Seller").unwrap()).with_session_id("run-1");
    let server = QuicListener::bind(any_port(), "Seller", &options).unwrap();
    let dialer = tls(ca.identity("Buyer").unwrap()).with_session_id("run-2");
    let (d, a) = attempt(&server, &dialer, ("Buyer", "Seller")).await;
    assert_refused_both(d, a, RefusalReason::WrongSession, true);
}

/// A raw QUIC client that believes any server and presents `cert`, if any.
async fn raw_quic(addr: SocketAddr, cert: Option<&Issued>) -> quinn::Connection {
    let mut rustls = common::raw_client_config(cert);
    rustls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(rustls)).unwrap();
    let endpoint = quinn::Endpoint::client(any_port()).unwrap();
    endpoint
        .connect_with(quinn::ClientConfig::new(Arc::new(crypto)), addr, "x")
        .unwrap()
        .await
        .unwrap()
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// The code, expected and presented identity of the reject frame a raw
/// client got back for `hello` (with a protocol frame pipelined behind
/// it), and the listener's own error.
async fn raw_refused(
    server: &QuicListener,
    cert: Option<&Issued>,
    hello: Vec<u8>,
) -> (RefusalReason, TransportError) {
    let addr = server.local_addr();
    let client = async {
        let conn = raw_quic(addr, cert).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&framed(&hello)).await.unwrap();
        send.write_all(&framed(b"smuggled protocol frame"))
            .await
            .unwrap();
        let reply = recv.read_to_end(4096).await.unwrap_or_default();
        (conn, reply)
    };
    let (accepted, (_conn, reply)) =
        within(10, async { tokio::join!(server.accept("Buyer"), client) }).await;
    let err = accepted.unwrap_err();
    // Exactly one frame came back, a reject, and then the stream ended.
    let len = u32::from_be_bytes(reply[..4].try_into().unwrap()) as usize;
    assert_eq!(reply.len(), 4 + len, "one frame, then the end: {reply:?}");
    assert_eq!(&reply[4..8], b"RSKA");
    assert_eq!(reply[9], 3, "a reject frame");
    (refusal(&err).reason(), err)
}

#[tokio::test]
async fn a_dialer_without_a_certificate_is_refused() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller");
    let (reason, _) = raw_refused(&server, None, hello("Buyer", "Seller")).await;
    assert_eq!(reason, RefusalReason::NoCertificate);
    assert_still_serves(&server, &ca).await;
}

#[tokio::test]
async fn a_certificate_of_one_role_cannot_claim_another() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller");
    let auditor = ca.issue(&["Auditor"]).unwrap();
    let (reason, err) = raw_refused(&server, Some(&auditor), hello("Buyer", "Seller")).await;
    assert_eq!(reason, RefusalReason::CertificateRole);
    assert_eq!(refusal(&err).presented(), "certificate of `Auditor`");
    // The real Buyer then connects and is served.
    assert_still_serves(&server, &ca).await;
}

#[tokio::test]
async fn another_version_is_refused() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller");
    let buyer = ca.issue(&["Buyer"]).unwrap();
    let future = greeting(HANDSHAKE_VERSION + 1, 1, &["Buyer", "Seller", ""]);
    let (reason, _) = raw_refused(&server, Some(&buyer), future).await;
    assert_eq!(reason, RefusalReason::Version);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Buyer,
    Broker,
    Seller,
}

#[tokio::test]
async fn a_quic_mesh_of_three_roles_wires_and_talks() {
    let ca = DevCa::new("test CA").unwrap();
    let roles = [Role::Buyer, Role::Broker, Role::Seller];
    let mut sockets = Vec::new();
    let mut table = Vec::new();
    for role in roles {
        let s = UdpSocket::bind(any_port()).unwrap();
        table.push((role, s.local_addr().unwrap()));
        sockets.push(s);
    }
    let runs = roles.into_iter().zip(sockets).map(|(role, socket)| {
        let mesh = Mesh::new(table.clone())
            .with_transport(MeshTransport::Quic)
            .with_options(tls(ca.identity(&format!("{role:?}")).unwrap()))
            .with_deadline(Duration::from_secs(10));
        async move {
            let mut sessions = mesh.connect_with_socket(&role, socket).await.unwrap();
            for (_, s) in sessions.iter_mut() {
                s.send_frame(format!("{role:?}").into_bytes())
                    .await
                    .unwrap();
            }
            for (peer, s) in sessions.iter_mut() {
                let heard = within(5, s.recv_frame()).await.unwrap();
                assert_eq!(heard, format!("{peer:?}").into_bytes());
            }
            sessions
        }
    });
    // Keep every session until all roles are done, so none closes early.
    let done = within(20, futures::future::join_all(runs)).await;
    assert_eq!(done.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2]);
}

#[tokio::test]
async fn a_second_quic_connection_for_a_wired_role_is_refused() {
    let ca = DevCa::new("test CA").unwrap();
    let socket = UdpSocket::bind(any_port()).unwrap();
    let addr = socket.local_addr().unwrap();
    let table = vec![
        (Role::Buyer, addr),
        (Role::Broker, any_port()),
        (Role::Seller, any_port()),
    ];
    let mesh = Mesh::new(table)
        .with_transport(MeshTransport::Quic)
        .with_options(tls(ca.identity("Buyer").unwrap()))
        .with_deadline(Duration::from_secs(10));
    let buyer = tokio::spawn(async move { mesh.connect_with_socket(&Role::Buyer, socket).await });
    let broker = tls(ca.identity("Broker").unwrap());
    let mut first = within(10, quic::connect(addr, "Broker", "Buyer", &broker))
        .await
        .unwrap();
    let dup = within(10, quic::connect(addr, "Broker", "Buyer", &broker))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&dup).reason(),
        RefusalReason::DuplicateRole,
        "{dup}"
    );
    let seller = tls(ca.identity("Seller").unwrap());
    let mut seller = within(10, quic::connect(addr, "Seller", "Buyer", &seller))
        .await
        .unwrap();
    let mut wired = within(10, buyer).await.unwrap().unwrap();
    first.send_frame(b"broker".to_vec()).await.unwrap();
    seller.send_frame(b"seller".to_vec()).await.unwrap();
    assert_eq!(wired[0].1.recv_frame().await.unwrap(), b"broker");
    assert_eq!(wired[1].1.recv_frame().await.unwrap(), b"seller");
}

/// 50 peers that complete the QUIC handshake and never open their stream
/// are pending while a legitimate peer connects: it gets in within one
/// second (serialized handshakes would wait 3 s for the first silent one
/// alone; concurrently it costs a few loopback round trips, well under a
/// second even on a loaded 2-core machine), and the silent ones are closed
/// when the handshake timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_quic_peers_delay_no_one() {
    let ca = DevCa::new("test CA").unwrap();
    let options =
        tls(ca.identity("Seller").unwrap()).with_handshake_timeout(Duration::from_secs(3));
    let server = QuicListener::bind(any_port(), "Seller", &options).unwrap();
    let addr = server.local_addr();
    let buyer_cert = ca.issue(&["Buyer"]).unwrap();
    // The listener is accepting (the QUIC handshakes run only then) while
    // the silent peers connect, and the legitimate one after them.
    let serve = async {
        loop {
            if let Ok(mut s) = server.accept("Buyer").await {
                assert_eq!(s.recv_frame().await.unwrap(), b"hello");
                return;
            }
        }
    };
    let peers = async {
        let mut silent = Vec::new();
        for _ in 0..50 {
            silent.push(raw_quic(addr, Some(&buyer_cert)).await);
        }
        let started = Instant::now();
        let client = tls(ca.identity("Buyer").unwrap());
        let mut s = quic::connect(addr, "Buyer", "Seller", &client)
            .await
            .unwrap();
        let took = started.elapsed();
        s.send_frame(b"hello".to_vec()).await.unwrap();
        (silent, took, s)
    };
    let ((), (silent, took, _session)) = within(20, async { tokio::join!(serve, peers) }).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    let closed = silent.iter().map(|c| c.closed());
    within(10, futures::future::join_all(closed)).await;
}

/// A reply sent right before the sender drops its session all arrives,
/// even after the other side closed its own sending half first (the
/// connection stays until the data is acknowledged).
#[tokio::test]
async fn a_reply_sent_before_a_drop_after_a_half_close_arrives_whole() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller");
    let (d, a) = attempt(
        &server,
        &tls(ca.identity("Buyer").unwrap()),
        ("Buyer", "Seller"),
    )
    .await;
    let (mut buyer, mut seller) = (d.unwrap(), a.unwrap());
    buyer.send_frame(b"request".to_vec()).await.unwrap();
    buyer.close();
    let serve = tokio::spawn(async move {
        assert_eq!(seller.recv_frame().await.unwrap(), b"request");
        assert!(seller.recv_frame().await.unwrap_err().is_closed());
        for i in 0..4u8 {
            seller.send_frame(vec![i; 1 << 20]).await.unwrap();
        }
        // Dropped right after the last send.
    });
    for i in 0..4u8 {
        assert_eq!(
            within(10, buyer.recv_frame()).await.unwrap(),
            vec![i; 1 << 20]
        );
    }
    assert!(
        within(10, buyer.recv_frame())
            .await
            .unwrap_err()
            .is_closed()
    );
    serve.await.unwrap();
}

/// A QUIC dial to an address where nothing answers ends at the connect
/// timeout, as a TCP dial does, not only at the longer handshake timeout.
#[tokio::test]
async fn a_dial_to_nobody_ends_at_the_connect_timeout() {
    let ca = DevCa::new("test CA").unwrap();
    // A bound UDP socket that never answers.
    let silent = UdpSocket::bind(any_port()).unwrap();
    let options = tls(ca.identity("Buyer").unwrap())
        .with_connect_timeout(Duration::from_millis(300))
        .with_handshake_timeout(Duration::from_secs(30));
    let started = Instant::now();
    let err = within(
        10,
        quic::connect(silent.local_addr().unwrap(), "Buyer", "Seller", &options),
    )
    .await
    .unwrap_err();
    // Far under the 30 s handshake timeout: the connect timeout ended it.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        common::io_error_kind(&err),
        std::io::ErrorKind::TimedOut,
        "{err}"
    );
    assert!(err.to_string().contains("connect to"), "{err}");
}
