//! TLS sessions with role identities: sessions and a mesh complete, and
//! every kind of wrong peer is refused with a typed error on both sides,
//! before any frame of the protocol is delivered.
#![cfg(feature = "dev-certs")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{
    any_port, assert_listener_refused, assert_refused_both, greeting, hello, refusal, within,
};
use rumpsteak_aura_net::tcp::{self, Mesh, SessionListener, TcpOptions};
use rumpsteak_aura_net::tls::dev::{self, DevCa, Issued};
use rumpsteak_aura_net::tls::rustls::pki_types;
use rumpsteak_aura_net::tls::{TlsConfig, Trust};
use rumpsteak_aura_net::{HANDSHAKE_VERSION, RefusalReason, TransportError};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn tls(identity: TlsConfig) -> TcpOptions {
    TcpOptions::new().with_tls(identity)
}

/// A listener for `role` over TLS with `ca`'s identity.
async fn listener(ca: &DevCa, role: &str) -> SessionListener {
    let options = tls(ca.identity(role).unwrap());
    SessionListener::bind(any_port(), role, &options)
        .await
        .unwrap()
}

/// Both sides of one connection attempt, within 10 seconds.
async fn attempt(
    listener: &SessionListener,
    expected: &str,
    (me, peer): (&str, &str),
    options: &TcpOptions,
) -> (
    Result<RumpsteakSession, TransportError>,
    Result<RumpsteakSession, TransportError>,
) {
    let addr = listener.local_addr();
    within(10, async {
        tokio::join!(
            tcp::connect(addr, me, peer, options),
            listener.accept(expected)
        )
    })
    .await
}

/// After a refusal the listener still serves the right peer, whose first
/// frame is the first the listener's session delivers: nothing of the
/// refused connection got through.
async fn assert_still_serves(listener: &SessionListener, ca: &DevCa, client: &str) {
    let options = tls(ca.identity(client).unwrap());
    let (d, a) = attempt(listener, client, (client, listener.local_role()), &options).await;
    let (mut d, mut a) = (d.unwrap(), a.unwrap());
    d.send_frame(b"legitimate".to_vec()).await.unwrap();
    assert_eq!(within(5, a.recv_frame()).await.unwrap(), b"legitimate");
}

#[tokio::test]
async fn a_tls_session_carries_frames_both_ways() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let options = tls(ca.identity("Buyer").unwrap());
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &options).await;
    let (mut buyer, mut seller) = (d.unwrap(), a.unwrap());
    for size in [0, 1, 1000, 100_000] {
        buyer.send_frame(vec![7; size]).await.unwrap();
        assert_eq!(seller.recv_frame().await.unwrap(), vec![7; size]);
        seller.send_frame(vec![9; size]).await.unwrap();
        assert_eq!(buyer.recv_frame().await.unwrap(), vec![9; size]);
    }
    drop(buyer);
    assert!(seller.recv_frame().await.unwrap_err().is_closed());
}

#[tokio::test]
async fn pinned_keys_prove_roles_without_a_ca() {
    let seller = dev::self_signed(&["Seller"]).unwrap();
    let buyer = dev::self_signed(&["Buyer"]).unwrap();
    let stranger = dev::self_signed(&["Buyer"]).unwrap();
    let pins = || Trust::pinned([("Seller", &seller.cert), ("Buyer", &buyer.cert)]).unwrap();
    let identity = |role: &str, issued: &Issued| {
        TlsConfig::new(role, vec![issued.cert.clone()], issued.key(), pins()).unwrap()
    };
    let server = SessionListener::bind(any_port(), "Seller", &tls(identity("Seller", &seller)))
        .await
        .unwrap();
    let (d, a) = attempt(
        &server,
        "Buyer",
        ("Buyer", "Seller"),
        &tls(identity("Buyer", &buyer)),
    )
    .await;
    let (mut d, mut a) = (d.unwrap(), a.unwrap());
    d.send_frame(b"pinned".to_vec()).await.unwrap();
    assert_eq!(a.recv_frame().await.unwrap(), b"pinned");

    // The same role name, another key: not believed.
    let (d, a) = attempt(
        &server,
        "Buyer",
        ("Buyer", "Seller"),
        &tls(identity("Buyer", &stranger)),
    )
    .await;
    let (_, a) = assert_refused_both(d, a, RefusalReason::UntrustedCertificate, true);
    assert!(refusal(&a).presented().contains("`Buyer`"), "{a}");
}

#[tokio::test]
async fn a_dialer_of_another_ca_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let other = DevCa::new("another CA").unwrap();
    let server = listener(&ca, "Seller").await;
    // Its certificate is from another CA, and it trusts ours.
    let issued = other.issue(&["Buyer"]).unwrap();
    let identity =
        TlsConfig::new("Buyer", vec![issued.cert.clone()], issued.key(), ca.trust()).unwrap();
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &tls(identity)).await;
    let (d, _) = assert_refused_both(d, a, RefusalReason::UntrustedCertificate, true);
    assert_eq!(refusal(&d).expected(), "a certificate from a trusted CA");
    assert_eq!(refusal(&d).presented(), "certificate of `Buyer`");
    assert_still_serves(&server, &ca, "Buyer").await;
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
    let server = SessionListener::bind(any_port(), "Seller", &tls(identity))
        .await
        .unwrap();
    let options = tls(ca.identity("Buyer").unwrap());
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &options).await;
    // The dialer decides inside the TLS handshake, before its own
    // certificate or anything of the protocol is sent.
    let d = assert_listener_refused(d, a, RefusalReason::UntrustedCertificate);
    assert_eq!(refusal(&d).presented(), "certificate of `Seller`");
}

#[tokio::test]
async fn an_expired_certificate_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let issued = ca
        .issue_valid(&["Buyer"], now - 10 * day, now - day)
        .unwrap();
    let identity =
        TlsConfig::new("Buyer", vec![issued.cert.clone()], issued.key(), ca.trust()).unwrap();
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &tls(identity)).await;
    assert_refused_both(d, a, RefusalReason::ExpiredCertificate, true);
    assert_still_serves(&server, &ca, "Buyer").await;
}

#[tokio::test]
async fn a_listener_with_another_roles_certificate_is_refused() {
    let ca = DevCa::new("test CA").unwrap();
    // Listening as Seller with a certificate that names only Auditor is
    // refused up front: the identity is for another role.
    let err = SessionListener::bind(any_port(), "Seller", &tls(ca.identity("Auditor").unwrap()))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err).reason(), RefusalReason::CertificateRole);

    // A listener that really is Auditor, dialed as if it were Seller.
    let server = listener(&ca, "Auditor").await;
    let options = tls(ca.identity("Buyer").unwrap());
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &options).await;
    let d = assert_listener_refused(d, a, RefusalReason::CertificateRole);
    assert_eq!(refusal(&d).expected(), "Seller");
    assert_eq!(refusal(&d).presented(), "certificate of `Auditor`");
}

/// A raw TLS client that believes any server and presents `cert`, if any:
/// a peer that does not follow this crate's rules.
async fn raw_tls(
    addr: SocketAddr,
    cert: Option<&Issued>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = common::raw_client_config(cert);
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = pki_types::ServerName::try_from("rumpsteak-aura.invalid").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap()
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, payload: &[u8]) {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    s.write_all(&bytes).await.unwrap();
    s.flush().await.unwrap();
}

/// One frame, or `None` when the connection ended.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.ok()?;
    let mut frame = vec![0u8; u32::from_be_bytes(head) as usize];
    s.read_exact(&mut frame).await.ok()?;
    Some(frame)
}

/// The refusal code and the expected and presented identity of a raw
/// reject frame.
fn reject_fields(frame: &[u8]) -> (u8, String, String) {
    assert_eq!(&frame[..4], b"RSKA");
    assert_eq!(frame[5], 3, "not a reject frame: {frame:?}");
    let mut rest = &frame[6..];
    let string = |rest: &mut &[u8]| {
        let len = rest[0] as usize;
        let s = String::from_utf8(rest[1..1 + len].to_vec()).unwrap();
        *rest = &rest[1 + len..];
        s
    };
    let _from = string(&mut rest);
    let _reason = string(&mut rest);
    let code = rest[0];
    rest = &rest[1..];
    let expected = string(&mut rest);
    let presented = string(&mut rest);
    (code, expected, presented)
}

/// A raw TLS client sends `hello` and, pipelined behind it, a protocol
/// frame; the listener refuses it with a reject frame and closes, and
/// returns the refusal. Nothing of the client reaches a session.
async fn raw_refused(
    server: &SessionListener,
    cert: Option<&Issued>,
    hello: Vec<u8>,
) -> ((u8, String, String), TransportError) {
    let addr = server.local_addr();
    let client = async {
        let mut raw = raw_tls(addr, cert).await;
        write_frame(&mut raw, &hello).await;
        write_frame(&mut raw, b"smuggled protocol frame").await;
        let reply = read_frame(&mut raw).await.expect("a reject frame");
        let after = read_frame(&mut raw).await;
        (reply, after)
    };
    let (accepted, (reply, after)) =
        within(10, async { tokio::join!(server.accept("Buyer"), client) }).await;
    assert_eq!(after, None, "the connection is closed after the refusal");
    (reject_fields(&reply), accepted.unwrap_err())
}

#[tokio::test]
async fn a_dialer_without_a_certificate_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let ((code, expected, presented), err) =
        raw_refused(&server, None, hello("Buyer", "Seller")).await;
    let r = refusal(&err);
    assert_eq!(r.reason(), RefusalReason::NoCertificate);
    assert_eq!(
        (r.expected(), r.presented()),
        ("a certificate", "no certificate")
    );
    assert_eq!(
        (expected.as_str(), presented.as_str()),
        ("a certificate", "no certificate")
    );
    assert_ne!(code, 0);
    assert_still_serves(&server, &ca, "Buyer").await;
}

/// A peer with a valid certificate for `Auditor` claims to be `Buyer`: it
/// is refused, and the real `Buyer` then connects and is served.
#[tokio::test]
async fn a_certificate_of_one_role_cannot_claim_another() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let auditor = ca.issue(&["Auditor"]).unwrap();
    let ((_, expected, presented), err) =
        raw_refused(&server, Some(&auditor), hello("Buyer", "Seller")).await;
    let r = refusal(&err);
    assert_eq!(r.reason(), RefusalReason::CertificateRole);
    assert_eq!(
        (r.expected(), r.presented()),
        ("Buyer", "certificate of `Auditor`")
    );
    assert_eq!(
        (expected.as_str(), presented.as_str()),
        ("Buyer", "certificate of `Auditor`")
    );
    assert_still_serves(&server, &ca, "Buyer").await;
}

#[tokio::test]
async fn another_version_over_tls_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let buyer = ca.issue(&["Buyer"]).unwrap();
    let future = greeting(HANDSHAKE_VERSION + 1, 1, &["Buyer", "Seller", ""]);
    let ((_, expected, presented), err) = raw_refused(&server, Some(&buyer), future).await;
    let r = refusal(&err);
    assert_eq!(r.reason(), RefusalReason::Version);
    assert_eq!(
        r.presented(),
        format!("handshake version {}", HANDSHAKE_VERSION + 1)
    );
    assert_eq!(
        (expected.as_str(), presented.as_str()),
        (r.expected(), r.presented())
    );
}

#[tokio::test]
async fn plain_text_at_a_tls_listener_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &TcpOptions::new()).await;
    let (d, _) = assert_refused_both(d, a, RefusalReason::PlainTextPeer, true);
    assert_eq!(
        (refusal(&d).expected(), refusal(&d).presented()),
        ("TLS", "plain text")
    );
    assert_still_serves(&server, &ca, "Buyer").await;
}

#[tokio::test]
async fn tls_at_a_plain_listener_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let server = SessionListener::bind(any_port(), "Seller", &TcpOptions::new())
        .await
        .unwrap();
    let options = tls(ca.identity("Buyer").unwrap());
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &options).await;
    let (d, _) = assert_refused_both(d, a, RefusalReason::TlsPeer, true);
    assert_eq!(
        (refusal(&d).expected(), refusal(&d).presented()),
        ("plain text", "TLS")
    );
}

#[tokio::test]
async fn another_session_over_tls_is_refused_on_both_sides() {
    let ca = DevCa::new("test CA").unwrap();
    let options = tls(ca.identity("Seller").unwrap()).with_session_id("order-1");
    let server = SessionListener::bind(any_port(), "Seller", &options)
        .await
        .unwrap();
    let dialer = tls(ca.identity("Buyer").unwrap()).with_session_id("order-2");
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &dialer).await;
    let (d, _) = assert_refused_both(d, a, RefusalReason::WrongSession, true);
    assert_eq!(
        (refusal(&d).expected(), refusal(&d).presented()),
        ("order-1", "order-2")
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Buyer,
    Broker,
    Seller,
}

const ROLES: [Role; 3] = [Role::Buyer, Role::Broker, Role::Seller];

/// A TLS mesh of three roles wires every pair and carries frames; each
/// role proves itself with its own certificate.
#[tokio::test]
async fn a_tls_mesh_of_three_roles_wires_and_talks() {
    let ca = DevCa::new("test CA").unwrap();
    let mut listeners = Vec::new();
    let mut table = Vec::new();
    for role in ROLES {
        let l = TcpListener::bind(any_port()).await.unwrap();
        table.push((role, l.local_addr().unwrap()));
        listeners.push(l);
    }
    let runs = ROLES.into_iter().zip(listeners).map(|(role, l)| {
        let mesh = Mesh::new(table.clone())
            .with_options(
                tls(ca.identity(&format!("{role:?}")).unwrap()).with_session_id("deal-42"),
            )
            .with_deadline(Duration::from_secs(10));
        async move {
            let mut sessions = mesh.connect_with_listener(&role, l).await.unwrap();
            for (_, s) in sessions.iter_mut() {
                s.send_frame(format!("{role:?}").into_bytes())
                    .await
                    .unwrap();
            }
            for (peer, s) in sessions.iter_mut() {
                let heard = within(5, s.recv_frame()).await.unwrap();
                assert_eq!(heard, format!("{peer:?}").into_bytes());
            }
        }
    });
    within(20, futures::future::join_all(runs)).await;
}

/// While Broker is wired to Buyer's mesh, a second Broker with a valid
/// Broker certificate is refused as a duplicate (the mesh decides, and the
/// second dialer gets the typed refusal), and the mesh completes with the
/// first.
#[tokio::test]
async fn a_second_connection_for_a_wired_role_is_refused() {
    let ca = DevCa::new("test CA").unwrap();
    let buyer_l = TcpListener::bind(any_port()).await.unwrap();
    let table = vec![
        (Role::Buyer, buyer_l.local_addr().unwrap()),
        (Role::Broker, any_port()),
        (Role::Seller, any_port()),
    ];
    let mesh = |role: Role| {
        Mesh::new(table.clone())
            .with_options(tls(ca.identity(&format!("{role:?}")).unwrap()))
            .with_deadline(Duration::from_secs(10))
    };
    let buyer = mesh(Role::Buyer);
    let buyer =
        tokio::spawn(async move { buyer.connect_with_listener(&Role::Buyer, buyer_l).await });
    // Broker and Seller dial Buyer as their meshes would.
    let addr = table[0].1;
    let broker_options = tls(ca.identity("Broker").unwrap());
    let mut first = within(10, tcp::connect(addr, "Broker", "Buyer", &broker_options))
        .await
        .unwrap();
    let dup = within(10, tcp::connect(addr, "Broker", "Buyer", &broker_options))
        .await
        .unwrap_err();
    let r = refusal(&dup);
    assert_eq!(r.reason(), RefusalReason::DuplicateRole, "{dup}");
    assert_eq!(r.presented(), "Broker");
    assert!(r.is_from_peer());

    // Seller completes the mesh; the first Broker session works.
    let seller_options = tls(ca.identity("Seller").unwrap());
    let mut seller = within(10, tcp::connect(addr, "Seller", "Buyer", &seller_options))
        .await
        .unwrap();
    let mut wired = within(10, buyer).await.unwrap().unwrap();
    first.send_frame(b"broker".to_vec()).await.unwrap();
    seller.send_frame(b"seller".to_vec()).await.unwrap();
    assert_eq!(wired[0].1.recv_frame().await.unwrap(), b"broker");
    assert_eq!(wired[1].1.recv_frame().await.unwrap(), b"seller");
}

#[cfg(feature = "websocket")]
mod websocket {
    use super::*;
    use rumpsteak_aura_net::websocket::{self, WebSocketListener};

    async fn ws_attempt(
        listener: &WebSocketListener,
        options: &TcpOptions,
    ) -> (
        Result<RumpsteakSession, TransportError>,
        Result<RumpsteakSession, TransportError>,
    ) {
        let addr = listener.local_addr();
        within(10, async {
            tokio::join!(
                websocket::connect(addr, "Buyer", "Seller", options),
                listener.accept("Buyer")
            )
        })
        .await
    }

    #[tokio::test]
    async fn a_wss_session_carries_frames_both_ways() {
        let ca = DevCa::new("test CA").unwrap();
        let server =
            WebSocketListener::bind(any_port(), "Seller", &tls(ca.identity("Seller").unwrap()))
                .await
                .unwrap();
        let (d, a) = ws_attempt(&server, &tls(ca.identity("Buyer").unwrap())).await;
        let (mut buyer, mut seller) = (d.unwrap(), a.unwrap());
        buyer.send_frame(vec![1; 70_000]).await.unwrap();
        assert_eq!(seller.recv_frame().await.unwrap(), vec![1; 70_000]);
        seller.send_frame(b"back".to_vec()).await.unwrap();
        assert_eq!(buyer.recv_frame().await.unwrap(), b"back");
    }

    #[tokio::test]
    async fn an_untrusted_wss_dialer_is_refused_on_both_sides() {
        let ca = DevCa::new("test CA").unwrap();
        let other = DevCa::new("another CA").unwrap();
        let server =
            WebSocketListener::bind(any_port(), "Seller", &tls(ca.identity("Seller").unwrap()))
                .await
                .unwrap();
        let issued = other.issue(&["Buyer"]).unwrap();
        let identity =
            TlsConfig::new("Buyer", vec![issued.cert.clone()], issued.key(), ca.trust()).unwrap();
        let (d, a) = ws_attempt(&server, &tls(identity)).await;
        assert_refused_both(d, a, RefusalReason::UntrustedCertificate, true);
    }

    #[tokio::test]
    async fn plain_websocket_at_a_wss_listener_is_refused_on_both_sides() {
        let ca = DevCa::new("test CA").unwrap();
        let server =
            WebSocketListener::bind(any_port(), "Seller", &tls(ca.identity("Seller").unwrap()))
                .await
                .unwrap();
        let (d, a) = ws_attempt(&server, &TcpOptions::new()).await;
        assert_refused_both(d, a, RefusalReason::PlainTextPeer, true);
    }

    #[tokio::test]
    async fn wss_at_a_plain_websocket_listener_is_refused_on_both_sides() {
        let ca = DevCa::new("test CA").unwrap();
        let server = WebSocketListener::bind(any_port(), "Seller", &TcpOptions::new())
            .await
            .unwrap();
        let (d, a) = ws_attempt(&server, &tls(ca.identity("Buyer").unwrap())).await;
        assert_refused_both(d, a, RefusalReason::TlsPeer, true);
    }
}

/// A listener the dialer does not trust learns nothing of the dialer: the
/// dialer's check fails inside the TLS handshake, before its certificate
/// is sent, so an impostor sees neither the certificate nor a hello.
#[tokio::test]
async fn an_untrusted_listener_never_sees_the_dialers_certificate() {
    use rumpsteak_aura_net::tls::rustls;
    use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
    use std::sync::Mutex;

    #[derive(Debug)]
    struct Recording(
        Arc<Mutex<Vec<Vec<u8>>>>,
        Arc<rustls::crypto::CryptoProvider>,
    );
    impl ClientCertVerifier for Recording {
        fn offer_client_auth(&self) -> bool {
            true
        }
        fn client_auth_mandatory(&self) -> bool {
            false
        }
        fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
            &[]
        }
        fn verify_client_cert(
            &self,
            end_entity: &pki_types::CertificateDer<'_>,
            _: &[pki_types::CertificateDer<'_>],
            _: pki_types::UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            self.0.lock().unwrap().push(end_entity.to_vec());
            Ok(ClientCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.3 only".into()))
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.1.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.1.signature_verification_algorithms.supported_schemes()
        }
    }

    let ca = DevCa::new("test CA").unwrap();
    // The impostor claims Seller with a self-signed certificate.
    let impostor = dev::self_signed(&["Seller"]).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(Recording(seen.clone(), provider)))
        .with_single_cert(vec![impostor.cert.clone()], impostor.key())
        .unwrap();
    let raw = TcpListener::bind(any_port()).await.unwrap();
    let addr = raw.local_addr().unwrap();
    let server = async {
        let (stream, _) = raw.accept().await.unwrap();
        match tokio_rustls::TlsAcceptor::from(Arc::new(config))
            .accept(stream)
            .await
        {
            // Whatever the handshake's fate, nothing of the protocol follows.
            Ok(mut tls) => {
                let mut buf = Vec::new();
                let _ = tls.read_to_end(&mut buf).await;
                buf
            }
            Err(_) => Vec::new(),
        }
    };
    let options = tls(ca.identity("Buyer").unwrap());
    let (dialed, received) = within(10, async {
        tokio::join!(tcp::connect(addr, "Buyer", "Seller", &options), server)
    })
    .await;
    let err = dialed.unwrap_err();
    assert_eq!(
        refusal(&err).reason(),
        RefusalReason::UntrustedCertificate,
        "{err}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the impostor saw the dialer's certificate"
    );
    assert!(received.is_empty(), "the impostor received {received:?}");
}

#[test]
fn pinning_a_ca_issued_certificate_is_refused_up_front() {
    let ca = DevCa::new("test CA").unwrap();
    let issued = ca.issue(&["Buyer"]).unwrap();
    let err = Trust::pinned([("Buyer", &issued.cert)]).unwrap_err();
    assert!(err.to_string().contains("not self-signed"), "{err}");
}

/// Sessions know who their peer is: the key its certificate proved over
/// TLS, the address it connected from in plain text.
#[tokio::test]
async fn sessions_carry_their_peers_identity() {
    let ca = DevCa::new("test CA").unwrap();
    let server = listener(&ca, "Seller").await;
    let options = tls(ca.identity("Buyer").unwrap());
    let (d, a) = attempt(&server, "Buyer", ("Buyer", "Seller"), &options).await;
    let (seller, buyer) = (d.unwrap(), a.unwrap());
    // Over TLS a peer is the key of its certificate, whatever roles the
    // certificate names.
    let (seller_id, buyer_id) = (
        seller.peer_identity().unwrap(),
        buyer.peer_identity().unwrap(),
    );
    assert!(seller_id.starts_with("key:") && buyer_id.starts_with("key:"));
    assert_ne!(seller_id, buyer_id);
    let (d2, _a2) = attempt(&server, "Buyer", ("Buyer", "Seller"), &options).await;
    assert_eq!(d2.unwrap().peer_identity(), Some(seller_id));

    let plain = SessionListener::bind(any_port(), "Seller", &TcpOptions::new())
        .await
        .unwrap();
    let (d, a) = attempt(&plain, "Buyer", ("Buyer", "Seller"), &TcpOptions::new()).await;
    assert_eq!(d.unwrap().peer_identity(), Some("address:127.0.0.1"));
    assert_eq!(a.unwrap().peer_identity(), Some("address:127.0.0.1"));
}
