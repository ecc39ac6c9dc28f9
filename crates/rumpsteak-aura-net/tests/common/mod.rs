//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::time::Duration;

use rumpsteak_aura_transport::{TransportError, TransportErrorKind};

// Each test file uses its own subset of the helpers.
#[cfg(feature = "tcp")]
#[allow(unused_imports)]
pub(crate) use net::{
    ACCEPT, HELLO, Listener, Net, REJECT, any_port, assert_unexpected_role_refused, greeting,
    hello, pair, raw_dial, raw_peer, read_frame, write_frame,
};

/// Fails the test if `f` takes longer than `secs` seconds, rather than
/// hanging the run.
pub(crate) async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("step did not finish in time")
}

/// The kind of an I/O error; fails the test on any other error.
pub(crate) fn io_error_kind(err: &TransportError) -> io::ErrorKind {
    let TransportErrorKind::Io(e) = err.kind() else {
        panic!("expected an i/o error, got {err}");
    };
    e.kind()
}

/// A frame one byte over `limit` is refused before anything is sent.
pub(crate) async fn assert_send_over_limit_refused(
    session: &mut rumpsteak_aura_transport::RumpsteakSession,
    limit: usize,
) {
    let err = session.send_frame(vec![0; limit + 1]).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            TransportErrorKind::FrameTooLarge { size, limit: l } if *size == limit + 1 && *l == limit
        ),
        "{err}"
    );
}

/// The refusal of a refused session setup; fails the test on any other
/// error.
pub(crate) fn refusal(err: &TransportError) -> &rumpsteak_aura_net::Refusal {
    err.refusal()
        .unwrap_or_else(|| panic!("expected a refusal, got {err}"))
}

/// Both errors are refusals for `reason`, the dialer's decided by its peer
/// exactly when `listener_decided`, and both name the same expected and
/// presented identity. Returns the two errors.
pub(crate) fn assert_refused_both(
    dialed: Result<rumpsteak_aura_transport::RumpsteakSession, TransportError>,
    accepted: Result<rumpsteak_aura_transport::RumpsteakSession, TransportError>,
    reason: rumpsteak_aura_net::RefusalReason,
    listener_decided: bool,
) -> (TransportError, TransportError) {
    let (d, a) = (dialed.unwrap_err(), accepted.unwrap_err());
    for e in [&d, &a] {
        assert_eq!(refusal(e).reason(), reason, "{e}");
    }
    assert_eq!(refusal(&d).is_from_peer(), listener_decided, "{d}");
    assert_eq!(refusal(&a).is_from_peer(), !listener_decided, "{a}");
    assert_eq!(refusal(&d).expected(), refusal(&a).expected());
    assert_eq!(refusal(&d).presented(), refusal(&a).presented());
    (d, a)
}

/// A dialer refused the listener's certificate inside the TLS handshake:
/// the dialer's error names the expected and the presented identity, the
/// listener learns the reason from the dialer's alert. Returns the
/// dialer's error.
pub(crate) fn assert_listener_refused(
    dialed: Result<rumpsteak_aura_transport::RumpsteakSession, TransportError>,
    accepted: Result<rumpsteak_aura_transport::RumpsteakSession, TransportError>,
    reason: rumpsteak_aura_net::RefusalReason,
) -> TransportError {
    let (d, a) = (dialed.unwrap_err(), accepted.unwrap_err());
    assert_eq!(refusal(&d).reason(), reason, "{d}");
    assert!(!refusal(&d).is_from_peer(), "{d}");
    assert_eq!(refusal(&a).reason(), reason, "{a}");
    assert!(refusal(&a).is_from_peer(), "{a}");
    assert_eq!(refusal(&a).presented(), "this listener's certificate");
    d
}

/// The reason of a handshake error; fails the test on any other error.
pub(crate) fn reason(err: &TransportError) -> &str {
    match err.kind() {
        TransportErrorKind::Handshake(r) => r,
        _ => panic!("expected a handshake error, got {err}"),
    }
}

/// Real sockets on loopback, and the handshake done by hand.
#[cfg(feature = "tcp")]
mod net {
    use std::net::SocketAddr;

    use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
    #[cfg(feature = "websocket")]
    use rumpsteak_aura_net::websocket::{self, WebSocketListener};
    use rumpsteak_aura_transport::{RumpsteakSession, TransportError};

    use super::{refusal, within};
    use rumpsteak_aura_net::{HANDSHAKE_VERSION, RefusalReason};
    use rumpsteak_aura_transport::wire::WIRE_VERSION;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Port 0 on loopback: the kernel picks a free port.
    pub(crate) fn any_port() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// The transport a test runs over.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Net {
        Tcp,
        #[cfg(feature = "websocket")]
        WebSocket,
    }

    impl Net {
        /// Binds a listener for `role` on a free loopback port.
        pub(crate) async fn bind(self, role: &str, options: &TcpOptions) -> Listener {
            match self {
                Net::Tcp => Listener::Tcp(
                    SessionListener::bind(any_port(), role, options)
                        .await
                        .unwrap(),
                ),
                #[cfg(feature = "websocket")]
                Net::WebSocket => Listener::WebSocket(
                    WebSocketListener::bind(any_port(), role, options)
                        .await
                        .unwrap(),
                ),
            }
        }

        /// Dials `addr` as `me`, expecting the peer to be `peer`.
        pub(crate) async fn connect(
            self,
            addr: SocketAddr,
            me: &str,
            peer: &str,
            options: &TcpOptions,
        ) -> Result<RumpsteakSession, TransportError> {
            match self {
                Net::Tcp => tcp::connect(addr, me, peer, options).await,
                #[cfg(feature = "websocket")]
                Net::WebSocket => websocket::connect(addr, me, peer, options).await,
            }
        }
    }

    /// A bound listener of either transport.
    pub(crate) enum Listener {
        Tcp(SessionListener),
        #[cfg(feature = "websocket")]
        WebSocket(WebSocketListener),
    }

    impl Listener {
        pub(crate) fn local_addr(&self) -> SocketAddr {
            match self {
                Listener::Tcp(l) => l.local_addr(),
                #[cfg(feature = "websocket")]
                Listener::WebSocket(l) => l.local_addr(),
            }
        }

        /// Accepts the next session, expecting the peer to be `peer`.
        pub(crate) async fn accept(&self, peer: &str) -> Result<RumpsteakSession, TransportError> {
            match self {
                Listener::Tcp(l) => l.accept(peer).await,
                #[cfg(feature = "websocket")]
                Listener::WebSocket(l) => l.accept(peer).await,
            }
        }

        /// Dials this listener over `net` as `me` expecting `peer`, while it
        /// accepts expecting `expected`; both outcomes, within 5 seconds.
        pub(crate) async fn dial_and_accept(
            &self,
            net: Net,
            (me, peer): (&str, &str),
            expected: &str,
            options: &TcpOptions,
        ) -> (
            Result<RumpsteakSession, TransportError>,
            Result<RumpsteakSession, TransportError>,
        ) {
            let addr = self.local_addr();
            within(5, async {
                tokio::join!(net.connect(addr, me, peer, options), self.accept(expected))
            })
            .await
        }
    }

    /// A connected session pair over `net`: the dialer plays `Client` with
    /// the `client` options, the acceptor `Server` with the `server` ones.
    pub(crate) async fn pair(
        net: Net,
        client: &TcpOptions,
        server: &TcpOptions,
    ) -> (RumpsteakSession, RumpsteakSession) {
        let listener = net.bind("Server", server).await;
        let (c, s) = listener
            .dial_and_accept(net, ("Client", "Server"), "Client", client)
            .await;
        (c.unwrap(), s.unwrap())
    }

    /// Mallory dials a `Bob` listener over `net` that expects Alice: both
    /// sides fail with a refusal naming the expected and the presented
    /// role, and the dialer's names the address. Returns the listener,
    /// still usable.
    pub(crate) async fn assert_unexpected_role_refused(net: Net) -> Listener {
        let options = TcpOptions::new();
        let listener = net.bind("Bob", &options).await;
        let (dialed, accepted) = listener
            .dial_and_accept(net, ("Mallory", "Bob"), "Alice", &options)
            .await;
        let (d, a) = (dialed.unwrap_err(), accepted.unwrap_err());
        for e in [&d, &a] {
            let r = refusal(e);
            assert_eq!(r.reason(), RefusalReason::WrongRole, "{e}");
            assert_eq!((r.expected(), r.presented()), ("Alice", "Mallory"));
        }
        assert!(refusal(&d).is_from_peer());
        assert!(!refusal(&a).is_from_peer());
        assert!(
            d.to_string().contains(&listener.local_addr().to_string()),
            "{d}"
        );
        listener
    }

    /// A version 2 hello, as documented in the handshake: `from`, `to`, an
    /// empty session, the wire format version.
    pub(crate) fn hello(me: &str, peer: &str) -> Vec<u8> {
        let mut frame = greeting(HANDSHAKE_VERSION, HELLO, &[me, peer, ""]);
        frame.push(WIRE_VERSION);
        frame
    }

    /// A handshake frame payload as documented in the handshake: magic,
    /// version, kind, then length-prefixed strings.
    pub(crate) fn greeting(version: u8, kind: u8, strings: &[&str]) -> Vec<u8> {
        let mut out = b"RSKA".to_vec();
        out.push(version);
        out.push(kind);
        for s in strings {
            out.push(s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    pub(crate) const HELLO: u8 = 1;
    pub(crate) const ACCEPT: u8 = 2;
    pub(crate) const REJECT: u8 = 3;

    /// Writes one length-delimited frame on a raw socket.
    pub(crate) async fn write_frame(s: &mut TcpStream, payload: &[u8]) {
        s.write_all(&(payload.len() as u32).to_be_bytes())
            .await
            .unwrap();
        s.write_all(payload).await.unwrap();
    }

    /// Reads one length-delimited frame from a raw socket; `None` at a clean
    /// end of stream.
    pub(crate) async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut head = [0u8; 4];
        match s.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("raw read failed: {e}"),
        }
        let mut frame = vec![0u8; u32::from_be_bytes(head) as usize];
        s.read_exact(&mut frame).await.unwrap();
        Some(frame)
    }

    /// Plays the dialing side of the handshake by hand on a raw socket, so that
    /// a test can then misbehave at the byte level.
    pub(crate) async fn raw_dial(addr: SocketAddr, me: &str, peer: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.unwrap();
        write_frame(&mut s, &hello(me, peer)).await;
        let reply = read_frame(&mut s).await.expect("a handshake reply");
        assert_eq!(reply[5], ACCEPT, "the acceptor refused: {reply:?}");
        write_frame(&mut s, &greeting(HANDSHAKE_VERSION, ACCEPT, &[me])).await;
        s
    }

    /// A `Bob` session over TCP whose peer `Alice` is a raw socket that did
    /// the handshake by hand ([`raw_dial`]).
    pub(crate) async fn raw_peer() -> (RumpsteakSession, TcpStream) {
        let listener = Net::Tcp.bind("Bob", &TcpOptions::new()).await;
        let addr = listener.local_addr();
        let (accepted, raw) =
            tokio::join!(listener.accept("Alice"), raw_dial(addr, "Alice", "Bob"));
        (accepted.unwrap(), raw)
    }
}

/// A rustls client configuration that believes any server and presents
/// `cert`, if any: for peers that do not follow this crate's rules.
#[cfg(feature = "dev-certs")]
pub(crate) fn raw_client_config(
    cert: Option<&rumpsteak_aura_net::tls::dev::Issued>,
) -> rumpsteak_aura_net::tls::rustls::ClientConfig {
    use rumpsteak_aura_net::tls::rustls::{self, pki_types};
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use std::sync::Arc;

    #[derive(Debug)]
    struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &pki_types::CertificateDer<'_>,
            _: &[pki_types::CertificateDer<'_>],
            _: &pki_types::ServerName<'_>,
            _: &[u8],
            _: pki_types::UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.3 only".into()))
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    match cert {
        Some(c) => builder
            .with_client_auth_cert(vec![c.cert.clone()], c.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}
