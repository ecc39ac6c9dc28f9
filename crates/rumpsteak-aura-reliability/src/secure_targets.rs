//! The fuzz entry functions of the TLS and QUIC handshakes.
//!
//! The TLS target runs the net crate's own listener and dialer over
//! in-memory pipes: the pipes are a socket type of their own
//! ([`tcp::Stream`], [`tcp::Listen`], [`tcp::Connect`]), so every input
//! goes through the same TLS, handshake and framing code as over TCP,
//! without a socket. The QUIC target runs a `QuicListener` and
//! `quic::connect` over loopback UDP.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rumpsteak_aura_net::quic::{self, QuicListener};
use rumpsteak_aura_net::tcp::{self, Connect, Listen, SessionListener, Stream, TcpOptions};
use rumpsteak_aura_net::tls::dev::{DevCa, Issued};
use rumpsteak_aura_net::tls::rustls;
use rumpsteak_aura_transport::{RumpsteakSession, TransportError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::{Mutex, mpsc};

use crate::targets::{HANG, chunks, drain, framed, play};

/// The address the in-memory pipes claim for both ends.
const PIPE_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);

/// One end of an in-memory pipe, as a [`tcp::Stream`]: what a peek saw is
/// kept and read first.
struct Piped {
    io: DuplexStream,
    ahead: Vec<u8>,
}

impl Piped {
    /// Both ends of a new pipe.
    fn pair() -> (Piped, Piped) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        (
            Piped {
                io: a,
                ahead: Vec::new(),
            },
            Piped {
                io: b,
                ahead: Vec::new(),
            },
        )
    }
}

impl AsyncRead for Piped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.ahead.is_empty() {
            let n = self.ahead.len().min(buf.remaining());
            buf.put_slice(&self.ahead[..n]);
            self.ahead.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Piped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Stream for Piped {
    type Read = tokio::io::ReadHalf<Piped>;
    type Write = tokio::io::WriteHalf<Piped>;

    async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ahead.is_empty() {
            let mut chunk = [0u8; 512];
            let n = self.io.read(&mut chunk).await?;
            self.ahead.extend_from_slice(&chunk[..n]);
        }
        let n = buf.len().min(self.ahead.len());
        buf[..n].copy_from_slice(&self.ahead[..n]);
        Ok(n)
    }

    fn into_split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// The listening side of the pipes: each pipe sent to it is a connection.
struct PipeListen(Mutex<mpsc::UnboundedReceiver<Piped>>);

impl Listen for PipeListen {
    type Conn = Piped;

    async fn accept(&self) -> io::Result<(Piped, SocketAddr)> {
        match self.0.lock().await.recv().await {
            Some(pipe) => Ok((pipe, PIPE_ADDR)),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "no more pipes")),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(PIPE_ADDR)
    }
}

/// The dialing side: each connect sends the far end of a new pipe.
struct PipeConnect(mpsc::UnboundedSender<Piped>);

impl Connect for PipeConnect {
    type Stream = Piped;

    async fn connect(&self, _addr: SocketAddr, _options: &TcpOptions) -> io::Result<Piped> {
        let (near, far) = Piped::pair();
        self.0
            .send(far)
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, "nobody listens"))?;
        Ok(near)
    }
}

fn options() -> TcpOptions {
    TcpOptions::new()
        .with_handshake_timeout(Duration::from_secs(2))
        .with_connect_timeout(Duration::from_secs(2))
        .with_linger(Duration::from_millis(50))
        .with_max_frame_len(64 * 1024)
}

fn must<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("fuzz rig: {what}: {e}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    must(
        "runtime",
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    )
}

/// The bytes as TLS handshake records: each chunk is a length byte and
/// that many bytes, sent in a record of type handshake (22), so that the
/// TLS layer parses the chunk as handshake messages.
fn records(body: &[u8]) -> Vec<u8> {
    chunks(body, |out, chunk| {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    })
}

/// Runs one input's future on `rt`, panicking if it hangs.
fn bounded(rt: &tokio::runtime::Runtime, what: &str, run: impl Future<Output = ()>) {
    if rt
        .block_on(async { tokio::time::timeout(HANG, run).await })
        .is_err()
    {
        panic!("a {what} input did not finish within {HANG:?}");
    }
}

/// A TLS listener over pipes, and the dialer's options, one set per thread.
struct TlsRig {
    rt: tokio::runtime::Runtime,
    listener: SessionListener<PipeListen>,
    to_listener: mpsc::UnboundedSender<Piped>,
    dialer: TcpOptions,
}

impl TlsRig {
    fn new() -> Self {
        let rt = runtime();
        let ca = must("CA", DevCa::new("fuzz CA"));
        let server = options().with_tls(must("identity", ca.identity("Server")));
        let dialer = options().with_tls(must("identity", ca.identity("Client")));
        let (to_listener, pipes) = mpsc::unbounded_channel();
        let listener = {
            let _entered = rt.enter();
            must(
                "listener",
                SessionListener::from_listen(PipeListen(Mutex::new(pipes)), "Server", &server),
            )
        };
        TlsRig {
            rt,
            listener,
            to_listener,
            dialer,
        }
    }
}

thread_local! {
    static TLS_RIG: RefCell<Option<TlsRig>> = const { RefCell::new(None) };
}

/// The TLS handshake against a peer that sends arbitrary bytes. The first
/// byte picks the side: the TLS listener fed raw bytes or the bytes as TLS
/// handshake records, or the TLS dialer fed raw bytes or plain frames (as a
/// plain listener's refusal would be). Whatever the bytes, the call ends
/// with a session or an error within the handshake timeout, the session of
/// a peer that never proved a certificate is never opened, and the
/// listener still accepts a good dialer afterwards (checked on every 64th
/// input, as a good handshake costs far more than a bad one).
pub fn fuzz_tls_handshake(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    TLS_RIG.with(|rig| {
        let mut rig = rig.borrow_mut();
        let rig = rig.get_or_insert_with(TlsRig::new);
        let run = async {
            match mode % 4 {
                0 | 1 => {
                    let bytes = if mode % 4 == 0 {
                        body.to_vec()
                    } else {
                        records(body)
                    };
                    let (near, far) = Piped::pair();
                    if rig.to_listener.send(far).is_err() {
                        panic!("the pipe listener is gone");
                    }
                    let acceptor = async {
                        let accepted = rig.listener.accept("Client").await;
                        // Fuzz bytes cannot carry a certificate signed by
                        // the rig's CA and a signature by its key.
                        if let Ok(session) = accepted {
                            panic!("a TLS session opened from arbitrary bytes: {session:?}");
                        }
                    };
                    tokio::join!(play(near, &bytes), acceptor);
                }
                _ => {
                    let bytes = if mode % 4 == 2 {
                        body.to_vec()
                    } else {
                        framed(body)
                    };
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    let connector = PipeConnect(tx);
                    let peer = async {
                        if let Some(pipe) = rx.recv().await {
                            play(pipe, &bytes).await;
                        }
                    };
                    let dialer = async {
                        let dialed = tcp::connect_with(
                            &connector,
                            PIPE_ADDR,
                            "Client",
                            "Server",
                            &rig.dialer,
                        )
                        .await;
                        if let Ok(session) = dialed {
                            panic!("a TLS dial succeeded against arbitrary bytes: {session:?}");
                        }
                    };
                    tokio::join!(peer, dialer);
                }
            }
        };
        bounded(&rig.rt, "TLS handshake", run);
        if body.len() % 64 == 0 {
            bounded(&rig.rt, "TLS good handshake", good_tls(rig));
        }
    });
}

/// A good dialer still gets a session from the rig's listener.
async fn good_tls(rig: &TlsRig) {
    let connector = PipeConnect(rig.to_listener.clone());
    let dial = tcp::connect_with(&connector, PIPE_ADDR, "Client", "Server", &rig.dialer);
    let (dialed, accepted) = tokio::join!(dial, accept_good(&rig.listener));
    let (mut dialed, mut accepted) = match (dialed, accepted) {
        (Ok(d), Ok(a)) => (d, a),
        (d, a) => panic!("a good TLS handshake failed after fuzz input: {d:?} / {a:?}"),
    };
    let sent = dialed.send_frame(vec![7]).await;
    assert!(sent.is_ok(), "send after a good TLS handshake: {sent:?}");
    let got = accepted.recv_frame().await;
    assert_eq!(got.ok(), Some(vec![7]), "a frame over a good TLS session");
}

/// A QUIC listener on loopback, a raw UDP socket to send it datagrams, a
/// QUIC client that speaks TLS with a good certificate but then says
/// arbitrary things on the session's stream, and a QUIC server that does
/// the same to `quic::connect`.
struct QuicRig {
    rt: tokio::runtime::Runtime,
    listener: QuicListener,
    udp: UdpSocket,
    client: quinn::Endpoint,
    server: quinn::Endpoint,
    dialer: TcpOptions,
}

/// A server certificate check that accepts any certificate (the rig's raw
/// client is the hostile side; what it talks to is the rig's own
/// listener) but checks the handshake signatures as TLS must.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn raw_quic_client(client: &Issued) -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = must(
        "client TLS",
        rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13]),
    );
    let mut config = must(
        "client certificate",
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
            .with_client_auth_cert(vec![client.cert.clone()], client.key()),
    );
    config.alpn_protocols = vec![quic::ALPN.to_vec()];
    let crypto = must(
        "QUIC client",
        quinn::crypto::rustls::QuicClientConfig::try_from(config),
    );
    quinn::ClientConfig::new(Arc::new(crypto))
}

fn raw_quic_server(server: &Issued) -> quinn::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = must(
        "server TLS",
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13]),
    );
    let mut config = must(
        "server certificate",
        builder
            .with_no_client_auth()
            .with_single_cert(vec![server.cert.clone()], server.key()),
    );
    config.alpn_protocols = vec![quic::ALPN.to_vec()];
    let crypto = must(
        "QUIC server",
        quinn::crypto::rustls::QuicServerConfig::try_from(config),
    );
    quinn::ServerConfig::with_crypto(Arc::new(crypto))
}

impl QuicRig {
    fn new() -> Self {
        let rt = runtime();
        let ca = must("CA", DevCa::new("fuzz CA"));
        let server = options().with_tls(must("identity", ca.identity("Server")));
        let dialer = options().with_tls(must("identity", ca.identity("Client")));
        let client_cert = must("certificate", ca.issue(&["Client"]));
        let server_cert = must("certificate", ca.issue(&["Server"]));
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let _entered = rt.enter();
        let listener = must("listener", QuicListener::bind(loopback, "Server", &server));
        let udp = must("UDP socket", UdpSocket::bind(loopback));
        let mut client = must("client endpoint", quinn::Endpoint::client(loopback));
        client.set_default_client_config(raw_quic_client(&client_cert));
        let server = must(
            "server endpoint",
            quinn::Endpoint::server(raw_quic_server(&server_cert), loopback),
        );
        drop(_entered);
        QuicRig {
            rt,
            listener,
            udp,
            client,
            server,
            dialer,
        }
    }
}

thread_local! {
    static QUIC_RIG: RefCell<Option<QuicRig>> = const { RefCell::new(None) };
}

/// The QUIC handshake against arbitrary input. The first byte picks what
/// is arbitrary: the datagrams a `QuicListener`'s endpoint receives (each
/// chunk a length byte, times 8, and that many bytes); the frames a dialer
/// that completed the QUIC and TLS handshakes with a good certificate
/// sends on its stream as its role hello; or the frames a QUIC server with
/// a good certificate answers `quic::connect`'s hello with. Whatever the
/// input, every call ends within the handshake timeout, and the listener
/// still accepts a good dialer afterwards (checked on every 16th input).
pub fn fuzz_quic_handshake(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    QUIC_RIG.with(|rig| {
        let mut rig = rig.borrow_mut();
        let rig = rig.get_or_insert_with(QuicRig::new);
        let run = async {
            match mode % 3 {
                0 => datagrams(rig, body).await,
                1 => hostile_dialer(rig, &framed(body)).await,
                _ => hostile_listener(rig, &framed(body)).await,
            }
        };
        bounded(&rig.rt, "QUIC handshake", run);
        if body.len() % 16 == 0 {
            bounded(&rig.rt, "QUIC good handshake", good_quic(rig));
        }
    });
}

/// Sends each chunk as a datagram to the listener, and lets its endpoint
/// take them in while a call of `accept` runs for a moment.
async fn datagrams(rig: &QuicRig, body: &[u8]) {
    let to = rig.listener.local_addr();
    let mut rest = body;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, tail) = tail.split_at((usize::from(len) * 8).min(tail.len()));
        // A full socket buffer drops the datagram, as a network may.
        let _ = rig.udp.send_to(datagram, to);
        rest = tail;
    }
    let accept = rig.listener.accept("Client");
    if let Ok(Ok(session)) = tokio::time::timeout(Duration::from_millis(2), accept).await {
        panic!("a QUIC session opened from arbitrary datagrams: {session:?}");
    }
}

/// A dialer with a good certificate that sends `bytes` as its hello.
async fn hostile_dialer(rig: &QuicRig, bytes: &[u8]) {
    let to = rig.listener.local_addr();
    let peer = async {
        let Ok(connecting) = rig.client.connect(to, "rumpsteak-aura.invalid") else {
            return;
        };
        let Ok(conn) = connecting.await else {
            return;
        };
        if let Ok((mut send, mut recv)) = conn.open_bi().await {
            let _ = send.write_all(bytes).await;
            let _ = send.finish();
            let mut sink = [0u8; 4096];
            while let Ok(Some(_)) = recv.read(&mut sink).await {}
        }
        conn.close(0u32.into(), b"done");
    };
    let acceptor = async {
        if let Ok(mut session) = rig.listener.accept("Client").await {
            drain(&mut session).await;
        }
    };
    tokio::join!(peer, acceptor);
}

/// A listener with a good certificate that answers `quic::connect` with
/// `bytes`.
async fn hostile_listener(rig: &QuicRig, bytes: &[u8]) {
    let Ok(to) = rig.server.local_addr() else {
        return;
    };
    let peer = async {
        let Some(incoming) = rig.server.accept().await else {
            return;
        };
        let Ok(conn) = incoming.await else {
            return;
        };
        if let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let _ = send.write_all(bytes).await;
            let _ = send.finish();
            let mut sink = [0u8; 4096];
            while let Ok(Some(_)) = recv.read(&mut sink).await {}
        }
        conn.close(0u32.into(), b"done");
    };
    let dialer = async {
        if let Ok(mut session) = quic::connect(to, "Client", "Server", &rig.dialer).await {
            drain(&mut session).await;
        }
    };
    tokio::join!(peer, dialer);
}

/// A good dialer still gets a session from the rig's listener.
async fn good_quic(rig: &QuicRig) {
    let to = rig.listener.local_addr();
    let dial = quic::connect(to, "Client", "Server", &rig.dialer);
    let (dialed, accepted): (Result<_, TransportError>, _) =
        tokio::join!(dial, accept_good(&rig.listener));
    let (mut dialed, mut accepted) = match (dialed, accepted) {
        (Ok(d), Ok(a)) => (d, a),
        (d, a) => panic!("a good QUIC handshake failed after fuzz input: {d:?} / {a:?}"),
    };
    let sent = dialed.send_frame(vec![7]).await;
    assert!(sent.is_ok(), "send after a good QUIC handshake: {sent:?}");
    let got = accepted.recv_frame().await;
    assert_eq!(got.ok(), Some(vec![7]), "a frame over a good QUIC session");
}

/// A listener that `accept_good` can wait on.
trait Accepts {
    async fn accept_client(&self) -> Result<RumpsteakSession, TransportError>;
}

impl Accepts for SessionListener<PipeListen> {
    async fn accept_client(&self) -> Result<RumpsteakSession, TransportError> {
        self.accept("Client").await
    }
}

impl Accepts for QuicListener {
    async fn accept_client(&self) -> Result<RumpsteakSession, TransportError> {
        self.accept("Client").await
    }
}

/// The next session a good dialer opens; the errors of hostile
/// connections an earlier input left in their handshake (whose `accept`
/// was cancelled) come first and are skipped, a few at most.
async fn accept_good<L: Accepts>(listener: &L) -> Result<RumpsteakSession, TransportError> {
    let mut last = None;
    for _ in 0..8 {
        match listener.accept_client().await {
            Ok(session) => return Ok(session),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(TransportError::closed))
}
