//! Sessions over QUIC (feature `quic`).
//!
//! One QUIC connection carries the session between one pair of roles, on
//! one bidirectional stream of it, framed as over TCP (a big-endian `u32`
//! length, then the frame). QUIC always encrypts: the options must carry
//! a TLS identity ([`TcpOptions::with_tls`]), and roles are proven by
//! their certificates exactly as over TLS (see [`crate::tls`]), with the
//! same role handshake inside the stream and the same refusals.
//!
//! - [`connect`] dials a peer from a UDP socket of its own;
//! - [`QuicListener`] binds a UDP address and accepts sessions from
//!   peers, with every handshake running at once and the limits of
//!   [`SessionListener`](crate::tcp::SessionListener);
//! - [`Mesh`](crate::tcp::Mesh) wires a whole protocol over QUIC with
//!   [`MeshTransport::Quic`](crate::tcp::MeshTransport::Quic).
//!
//! Which [`TcpOptions`] apply: the frame limit, the read deadline, the
//! connect timeout (for the QUIC handshake, which is the connection
//! attempt) and the handshake timeout (for everything until the role
//! handshake is done), the session identifier, the cap on
//! pending handshakes and the linger time as over TCP; keepalive becomes
//! QUIC's keep-alive interval, and a connection that hears nothing from
//! its peer for three times that (at least 10 s; 30 s with keepalive off,
//! so a session idle that long ends) fails with an I/O error. The listen
//! backlog does not apply.
//!
//! Against hostile peers: a listener asks every new address to prove it
//! receives what is sent to it (a QUIC retry, one more round trip) before
//! any handshake work, so spoofed source addresses cost a stateless reply
//! and evict no one; quinn's queue of connections not yet taken is capped
//! at the cap on pending handshakes. Before its hello, an authenticated
//! connection can make the listener buffer up to QUIC's stream window.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, ConnectionError, Endpoint, EndpointConfig, Incoming, TokioRuntime};
use rumpsteak_aura::TransportError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::handshake::{self, check_name};
use crate::tcp::{
    self, Accepted, Admission, FramedTransport, Listen, Opener, TcpOptions, Ticket, at_address,
};
use crate::tls::{RefusalSlot, TlsConfig, Verdict};
use rumpsteak_aura_transport::RumpsteakSession;

/// The application protocol both sides name in the QUIC handshake.
pub const ALPN: &[u8] = b"rumpsteak-aura/2";

/// The identity QUIC needs, or a clear error.
fn identity(options: &TcpOptions) -> Result<&TlsConfig, TransportError> {
    options.tls().ok_or_else(|| {
        TransportError::other(io::Error::new(
            io::ErrorKind::InvalidInput,
            "QUIC sessions need a TLS identity: set TcpOptions::with_tls",
        ))
    })
}

fn transport_config(options: &TcpOptions) -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    // One session per connection, on one stream the dialer opens.
    config.max_concurrent_bidi_streams(1u32.into());
    config.max_concurrent_uni_streams(0u32.into());
    let keepalive = options.keepalive();
    config.keep_alive_interval(keepalive);
    let idle = keepalive.map_or(Duration::from_secs(30), |k| {
        (k * 3).max(Duration::from_secs(10))
    });
    if let Ok(idle) = quinn::IdleTimeout::try_from(idle) {
        config.max_idle_timeout(Some(idle));
    }
    Arc::new(config)
}

fn config_error(e: impl fmt::Display) -> TransportError {
    TransportError::other(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("QUIC configuration: {e}"),
    ))
}

/// The client configuration of one dial, checking inside the QUIC
/// handshake that the listener proves `peer_role`; the slot receives the
/// refusal, if any.
fn client_config(
    tls: &TlsConfig,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<(quinn::ClientConfig, RefusalSlot), TransportError> {
    let (mut rustls, slot) = tls.client_config(peer_role).map_err(config_error)?;
    rustls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(Arc::new(rustls)).map_err(config_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config(options));
    Ok((config, slot))
}

fn server_config(
    tls: &TlsConfig,
    options: &TcpOptions,
) -> Result<quinn::ServerConfig, TransportError> {
    let mut rustls = tls.rustls_server();
    rustls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(Arc::new(rustls)).map_err(config_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config(options));
    // quinn's own queue of connections not yet taken by the listener: no
    // more than the cap on pending handshakes, at most 64 KiB of early
    // datagrams each.
    let cap = options.max_pending_handshakes();
    config.max_incoming(cap);
    config.incoming_buffer_size(64 * 1024);
    config.incoming_buffer_size_total(64 * 1024 * cap as u64);
    Ok(config)
}

/// A QUIC connection that failed, as a transport error naming the
/// address.
/// `listening` is whether this side accepted the connection: only then is
/// a TLS alert believed as the dialer's refusal.
fn connection_error(e: ConnectionError, addr: SocketAddr, listening: bool) -> TransportError {
    // A dialer that refused this side's certificate closes with the
    // crypto error of its TLS alert (0x100 + the alert).
    if let (true, ConnectionError::ConnectionClosed(close)) = (listening, &e) {
        let code = u64::from(close.error_code);
        if (0x100..0x200).contains(&code)
            && let Some(refusal) =
                crate::tls::refused_by_alert(rustls::AlertDescription::from((code - 0x100) as u8))
        {
            return TransportError::refused(refusal.with_detail(format!("by {addr}")));
        }
    }
    let kind = match &e {
        ConnectionError::TimedOut => io::ErrorKind::TimedOut,
        ConnectionError::Reset => io::ErrorKind::ConnectionReset,
        ConnectionError::ApplicationClosed(_) | ConnectionError::ConnectionClosed(_) => {
            io::ErrorKind::ConnectionAborted
        }
        ConnectionError::LocallyClosed => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    if matches!(
        e,
        ConnectionError::TransportError(_) | ConnectionError::VersionMismatch
    ) {
        return TransportError::handshake(format!(
            "QUIC with {addr} failed: {}",
            handshake::Escaped(&e.to_string())
        ));
    }
    at_address("QUIC connection with", addr, io::Error::new(kind, e))
}

/// The certificate chain a connection's peer presented.
fn peer_chain(conn: &Connection) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()
        .map(|chain| *chain)
}

/// What keeps a QUIC session's connection (and, for a dialer, its own
/// endpoint) alive for as long as either half of the stream is in use.
struct Keep {
    conn: Connection,
    endpoint: Option<Endpoint>,
}

impl Drop for Keep {
    /// Both halves are done: close the connection, and let a dialer's own
    /// endpoint tell the peer before it goes away.
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"session closed");
        if let (Some(endpoint), Ok(runtime)) =
            (self.endpoint.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
            });
        }
    }
}

/// The receiving half of a session's stream.
pub(crate) struct QuicRecv {
    stream: quinn::RecvStream,
    _keep: Arc<Keep>,
}

/// The sending half of a session's stream.
///
/// Dropping the last handle of a QUIC connection closes it at once,
/// discarding data not yet acknowledged; so a dropped sending half finishes
/// its stream and, in the background (inside a runtime), keeps the
/// connection until the peer acknowledged everything, or stopped the
/// stream, or the linger time passed.
pub(crate) struct QuicSend {
    stream: Option<quinn::SendStream>,
    keep: Option<Arc<Keep>>,
    linger: Linger,
}

/// How long a dropped stream keeps its connection for the peer's
/// acknowledgements: briefly until the handshake succeeded (a refused or
/// evicted connection is not kept), the session's linger time after.
#[derive(Clone)]
struct Linger(Arc<AtomicU64>);

impl Linger {
    fn during_handshake(options: &TcpOptions) -> Linger {
        let brief = options.linger().min(tcp::REFUSED_LINGER);
        Linger(Arc::new(AtomicU64::new(millis(brief))))
    }

    /// The handshake succeeded.
    fn settle(&self, options: &TcpOptions) {
        self.0.store(millis(options.linger()), Ordering::Relaxed);
    }

    fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Drop for QuicSend {
    fn drop(&mut self) {
        let (Some(mut stream), Some(keep)) = (self.stream.take(), self.keep.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let linger = self.linger.get();
        runtime.spawn(async move {
            // Already finished by an orderly close, or reset: either way the
            // wait below ends.
            let _ = stream.finish();
            let _ = tokio::time::timeout(linger, stream.stopped()).await;
            drop(keep);
        });
    }
}

impl AsyncRead for QuicRecv {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl QuicSend {
    fn stream(&mut self) -> io::Result<&mut quinn::SendStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the stream was dropped"))
    }
}

impl AsyncWrite for QuicSend {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(s) => AsyncWrite::poll_write(Pin::new(s), cx, data),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => AsyncWrite::poll_flush(Pin::new(s), cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => AsyncWrite::poll_shutdown(Pin::new(s), cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

type QuicTransport = FramedTransport<QuicRecv, QuicSend>;

fn transport(
    conn: Connection,
    endpoint: Option<Endpoint>,
    (send, recv): (quinn::SendStream, quinn::RecvStream),
    addr: SocketAddr,
    options: &TcpOptions,
) -> (QuicTransport, Linger) {
    let keep = Arc::new(Keep { conn, endpoint });
    let linger = Linger::during_handshake(options);
    let transport = FramedTransport::new(
        QuicRecv {
            stream: recv,
            _keep: Arc::clone(&keep),
        },
        QuicSend {
            stream: Some(send),
            keep: Some(keep),
            linger: linger.clone(),
        },
        addr,
        options,
    );
    (transport, linger)
}

/// The UDP address to dial from: any port, same family as the peer's.
fn any_local(peer: SocketAddr) -> SocketAddr {
    if peer.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    }
}

/// Connects to the peer playing `peer_role` at UDP address `addr`, as
/// `local_role`, over QUIC.
///
/// Errors are those of [`tcp::connect`] over TLS; options without a TLS
/// identity fail at once.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::quic::{self, QuicListener};
/// use rumpsteak_aura_net::tcp::TcpOptions;
/// use rumpsteak_aura_net::tls::dev::DevCa;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ca = DevCa::new("example CA")?;
/// let server = TcpOptions::new().with_tls(ca.identity("Server")?);
/// let listener = QuicListener::bind("127.0.0.1:0".parse()?, "Server", &server)?;
/// let addr = listener.local_addr();
/// let serving = tokio::spawn(async move {
///     let mut session = listener.accept("Client").await?;
///     let request = session.recv_frame().await?;
///     session.send_frame(request.iter().rev().copied().collect()).await
/// });
///
/// let client = TcpOptions::new().with_tls(ca.identity("Client")?);
/// let mut session = quic::connect(addr, "Client", "Server", &client).await?;
/// session.send_frame(vec![1, 2, 3]).await?;
/// assert_eq!(session.recv_frame().await?, vec![3, 2, 1]);
/// serving.await??;
/// # Ok(())
/// # }
/// ```
pub async fn connect(
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    check_name(local_role)?;
    check_name(peer_role)?;
    check_name(options.session_id())?;
    let tls = identity(options)?;
    tls.check_role(local_role)?;
    let endpoint = Endpoint::client(any_local(addr))
        .map_err(|e| at_address("bind a UDP socket to dial", addr, e))?;
    let (config, slot) = client_config(tls, peer_role, options)?;
    let connecting = endpoint
        .connect_with(config, addr, "rumpsteak-aura.invalid")
        .map_err(|e| TransportError::handshake(format!("QUIC to {addr}: {e}")))?;
    let deadline = Instant::now() + options.handshake_timeout();
    let opened = tcp::until_deadline(deadline, options, addr, async {
        // The QUIC handshake is the connection attempt: it is bounded by
        // the connect timeout as well as by the handshake deadline.
        let connect_timeout = options.connect_timeout();
        let attempt = tokio::time::timeout(connect_timeout, connecting).await;
        let Ok(attempt) = attempt else {
            return Err(at_address(
                "connect to",
                addr,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out after {connect_timeout:?}"),
                ),
            ));
        };
        let conn = match attempt {
            Ok(conn) => conn,
            Err(e) => {
                return Err(match slot.take() {
                    Some(refusal) => {
                        TransportError::refused(refusal.with_detail(format!("refused {addr}")))
                    }
                    None => connection_error(e, addr, false),
                });
            }
        };
        let streams = conn
            .open_bi()
            .await
            .map_err(|e| connection_error(e, addr, false))?;
        Ok((conn, streams))
    })
    .await;
    let (conn, streams) = opened?;
    let verdict = tls.verify_listener(peer_chain(&conn).as_deref());
    let (transport, linger) = transport(conn, Some(endpoint), streams, addr, options);
    match tcp::proven_as(verdict, peer_role) {
        Ok(proven) => {
            let identity = Some(proven.identity.as_str());
            let roles = (local_role, peer_role);
            let session =
                tcp::dial_handshake(transport, addr, roles, identity, deadline, options).await;
            if session.is_ok() {
                linger.settle(options);
            }
            session
        }
        Err(refusal) => {
            Err(tcp::refuse_now(transport, addr, local_role, refusal, deadline, options).await)
        }
    }
}

impl Listen for Endpoint {
    type Conn = Incoming;

    /// The next connection from an address that proved it receives what
    /// is sent to it: an unvalidated one is asked to retry with a token
    /// first (one more round trip), so that spoofed source addresses cost
    /// a stateless reply, not a handshake, and evict no one.
    async fn accept(&self) -> io::Result<(Incoming, SocketAddr)> {
        loop {
            let Some(incoming) = Endpoint::accept(self).await else {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the QUIC endpoint is closed",
                ));
            };
            if !incoming.remote_address_validated() && incoming.may_retry() {
                // Fails only if a retry is not allowed, checked above.
                let _ = incoming.retry();
                continue;
            }
            let addr = incoming.remote_address();
            return Ok((incoming, addr));
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Endpoint::local_addr(self)
    }
}

/// A bound UDP address on which one role accepts QUIC sessions from its
/// peers. It behaves as [`SessionListener`](crate::tcp::SessionListener):
/// concurrent handshakes under a cap, typed refusals, cancel-safe accepts.
pub struct QuicListener {
    admission: Admission<Endpoint>,
    local_role: String,
}

impl QuicListener {
    /// Binds UDP address `addr` for the role `local_role`; port 0 picks a
    /// free port. The options must carry `local_role`'s TLS identity.
    pub fn bind(
        addr: SocketAddr,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        let socket = UdpSocket::bind(addr).map_err(|e| at_address("listen on", addr, e))?;
        Self::from_socket(socket, local_role, options)
    }

    /// Uses a UDP socket the caller bound already (to learn an ephemeral
    /// port before the table of addresses is written, say).
    pub fn from_socket(
        socket: UdpSocket,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        check_name(local_role)?;
        check_name(options.session_id())?;
        let tls = identity(options)?;
        tls.check_role(local_role)?;
        let addr = socket.local_addr().map_err(TransportError::io)?;
        let endpoint = Endpoint::new(
            EndpointConfig::default(),
            Some(server_config(tls, options)?),
            socket,
            Arc::new(TokioRuntime),
        )
        .map_err(|e| at_address("listen on", addr, e))?;
        Ok(QuicListener {
            admission: Admission::new(endpoint, options, opener(local_role, options))?,
            local_role: local_role.to_string(),
        })
    }

    /// The UDP address this listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.admission.local_addr()
    }

    /// The role this listener accepts sessions for.
    pub fn local_role(&self) -> &str {
        &self.local_role
    }

    /// How many connections are in their handshake right now.
    pub fn pending_handshakes(&self) -> usize {
        self.admission.pending()
    }

    /// Waits for the next completed handshake of a peer playing
    /// `peer_role`; as [`SessionListener::accept`](crate::tcp::SessionListener::accept).
    pub async fn accept(&self, peer_role: &str) -> Result<RumpsteakSession, TransportError> {
        let mut allow = handshake::expect_role(peer_role);
        self.admission.next(&mut allow).await.map(|(_, s)| s)
    }

    /// Accepts the next connection from any of `peer_roles`, returning the
    /// role that connected with its session.
    pub async fn accept_any(
        &self,
        peer_roles: &[&str],
    ) -> Result<(String, RumpsteakSession), TransportError> {
        let mut allow = handshake::expect_one_of(peer_roles);
        self.admission.next(&mut allow).await
    }

    pub(crate) async fn accept_checked(&self, allow: &mut handshake::Allow<'_>) -> Accepted {
        self.admission.next(allow).await
    }
}

impl fmt::Debug for QuicListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicListener")
            .field("local_addr", &self.local_addr())
            .field("local_role", &self.local_role)
            .finish_non_exhaustive()
    }
}

fn opener(local_role: &str, options: &TcpOptions) -> Opener<Incoming> {
    tcp::opener(
        local_role,
        options,
        |incoming, addr, role, options, ticket| async move {
            open(incoming, addr, &role, &options, &ticket).await
        },
    )
}

async fn open(
    incoming: Incoming,
    addr: SocketAddr,
    local_role: &str,
    options: &TcpOptions,
    ticket: &Ticket,
) -> Accepted {
    let tls = identity(options)?;
    let opened = tcp::until_deadline(ticket.deadline, options, addr, async {
        let conn = incoming
            .accept()
            .map_err(|e| connection_error(e, addr, true))?
            .await
            .map_err(|e| connection_error(e, addr, true))?;
        let streams = conn
            .accept_bi()
            .await
            .map_err(|e| connection_error(e, addr, true))?;
        Ok((conn, streams))
    });
    let (conn, streams) = opened.await?;
    let verdict: Verdict = tls.verify_dialer(peer_chain(&conn).as_deref());
    let (transport, linger) = transport(conn, None, streams, addr, options);
    match verdict {
        Ok(proven) => {
            let accepted =
                tcp::admit(transport, addr, local_role, Some(&proven), options, ticket).await;
            if accepted.is_ok() {
                linger.settle(options);
            }
            accepted
        }
        Err(refusal) => Err(tcp::refuse_now(
            transport,
            addr,
            local_role,
            refusal,
            ticket.deadline,
            options,
        )
        .await),
    }
}
