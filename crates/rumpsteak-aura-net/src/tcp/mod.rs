//! Sessions over TCP (feature `tcp`).
//!
//! One TCP connection carries one session between two roles. Frames are
//! length-delimited (a big-endian `u32` length, then the frame, as
//! `tokio_util`'s `LengthDelimitedCodec` writes them), `TCP_NODELAY` is on,
//! and the session's frame limit ([`TcpOptions::with_max_frame_len`]) holds
//! in both directions.
//!
//! # Setting up
//!
//! - [`connect`] dials a peer and returns the session;
//! - [`SessionListener`] binds an address and accepts sessions from peers;
//! - [`Mesh`] wires every session of one role in a multi-party protocol
//!   from a table of role addresses.
//!
//! # Other socket types
//!
//! The handshake, TLS and framing run on any byte stream, not only on
//! tokio's TCP sockets: [`connect_with`] dials through a [`Connect`], and
//! [`SessionListener::from_listen`] accepts from a [`Listen`] whose
//! connections are a [`Stream`]. A test can so run real sessions over a
//! simulated network (the reliability crate's turmoil simulation does) or
//! over in-memory pipes, with the same code as over TCP.
//!
//! # The handshake
//!
//! Right after connecting, both sides say which role they are, which
//! session they belong to ([`TcpOptions::with_session_id`]) and which
//! handshake and wire format versions ([`HANDSHAKE_VERSION`](crate::HANDSHAKE_VERSION))
//! they speak. A peer that is not the expected role, belongs to another
//! session or speaks another version is refused with a
//! [`Refused`](crate::TransportErrorKind::Refused) error on both sides,
//! naming what was expected and what was presented; one that is not a
//! rumpsteak-aura session at all gets a
//! [`Handshake`](crate::TransportErrorKind::Handshake) error. Either way
//! the connection is closed. Over TLS ([`TcpOptions::with_tls`]), the
//! certificates are checked first (see [`crate::tls`]).
//!
//! # Failure behaviour
//!
//! - A peer process that exits or is killed closes its connections: the
//!   pending receive on this side ends at once with `Closed` (between
//!   frames) or an I/O error (in the middle of a frame). A partly received
//!   frame is never delivered.
//! - A peer machine or network that goes silent is detected by TCP
//!   keepalive ([`TcpOptions::with_keepalive`], on by default), or sooner by
//!   a read deadline ([`TcpOptions::with_read_deadline`]).
//! - Connection refused, connect timeouts and address-in-use errors name the
//!   address.
//!
//! # Memory a slow peer can cost
//!
//! Sending waits while the kernel's socket buffers are full (TCP flow
//! control), so a peer that reads slowly costs the kernel's send and receive
//! buffers (a few MiB at most with default Linux settings) plus, in user
//! space, at most one frame being written and one frame being read: never
//! more than `2 × max_frame_len` per session.
//!
//! # Runtime
//!
//! Everything here runs on tokio and needs a runtime with I/O and timers
//! enabled (`#[tokio::main]` or `Builder::enable_all`).

mod admission;
pub(crate) mod deadline;
mod mesh;
mod options;
mod stream;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rumpsteak_aura::{Refusal, RefusalReason, TransportError};
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::handshake::{self, Allow, FrameIo, Local, check_name};

/// What a peer's verified certificate proves: the roles it names (and,
/// with pinned trust, whose pinned key it carries), and an identity for
/// the key that signed the handshake (`key:` and the hex of its
/// `SubjectPublicKeyInfo`), the same for every role the certificate names.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) struct Proven {
    pub(crate) roles: Vec<String>,
    pub(crate) identity: String,
}
use rumpsteak_aura_transport::RumpsteakSession;

pub use admission::Listen;
#[cfg(any(feature = "websocket", feature = "quic"))]
pub(crate) use admission::opener;
pub(crate) use admission::{Accepted, Admission, Opener, Ticket};
pub use mesh::{
    AddressError, DialError, Mesh, MeshAddress, MeshAttempts, MeshDialer, MeshEntry, MeshError,
    MeshTransport, Resolve, ResolveFuture, SystemResolver, first_bound,
};
pub use options::TcpOptions;
pub(crate) use stream::FramedTransport;
#[cfg(feature = "websocket")]
pub(crate) use stream::TcpTransport;

/// An I/O error that happened at a known address.
#[derive(Debug, thiserror::Error)]
#[error("{action} {addr}: {source}")]
struct AtAddress {
    action: &'static str,
    addr: SocketAddr,
    #[source]
    source: io::Error,
}

/// Wraps an I/O error so that its message names the address, keeping its
/// `io::ErrorKind`.
pub(crate) fn at_address(
    action: &'static str,
    addr: SocketAddr,
    source: io::Error,
) -> TransportError {
    let kind = source.kind();
    TransportError::io(io::Error::new(
        kind,
        AtAddress {
            action,
            addr,
            source,
        },
    ))
}

fn timed_out(action: &'static str, addr: SocketAddr, after: Duration) -> TransportError {
    at_address(
        action,
        addr,
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {after:?}"),
        ),
    )
}

/// A connected byte stream that a session can run on: a TCP connection,
/// or one of a simulated network or an in-memory pipe.
///
/// The handshake, TLS and framing only read and write it; [`peek`](Self::peek)
/// lets a listener see whether a dialer speaks TLS before anything is
/// taken, and [`into_split`](Self::into_split) gives the halves a plain
/// session reads and writes independently.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sized + 'static {
    /// The receiving half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The sending half.
    type Write: AsyncWrite + Unpin + Send + 'static;

    /// Waits until at least one byte can be read (or the stream ended) and
    /// copies what is there into `buf` without taking it: the next read
    /// returns the same bytes. `Ok(0)` means the peer closed.
    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;

    /// Splits the stream into halves that can be used at the same time.
    fn into_split(self) -> (Self::Read, Self::Write);
}

impl Stream for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send {
        TcpStream::peek(self, buf)
    }

    fn into_split(self) -> (Self::Read, Self::Write) {
        TcpStream::into_split(self)
    }
}

/// How a dialer opens a connection to an address: [`TcpConnector`] for
/// real TCP, or a simulated network's connect.
pub trait Connect: Send + Sync {
    /// The connection it opens.
    type Stream: Stream;

    /// Opens a connection to `addr`, set up with `options` where the
    /// socket type has such settings. [`connect_with`] bounds it by
    /// [`TcpOptions::connect_timeout`] and names the address in errors.
    fn connect(
        &self,
        addr: SocketAddr,
        options: &TcpOptions,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Dials real TCP connections, with `TCP_NODELAY` and the options'
/// keepalive: what [`connect`] uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connect for TcpConnector {
    type Stream = TcpStream;

    async fn connect(&self, addr: SocketAddr, options: &TcpOptions) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        configure(&stream, options)?;
        Ok(stream)
    }
}

/// Opens a connection to `addr` through `connector`, within the connect
/// timeout.
async fn dial_stream_with<C: Connect>(
    connector: &C,
    addr: SocketAddr,
    options: &TcpOptions,
) -> Result<C::Stream, TransportError> {
    tokio::time::timeout(options.connect_timeout(), connector.connect(addr, options))
        .await
        .map_err(|_| timed_out("connect to", addr, options.connect_timeout()))?
        .map_err(|e| at_address("connect to", addr, e))
}

/// The plain framed transport of a stream.
fn framed<S: Stream>(
    stream: S,
    addr: SocketAddr,
    options: &TcpOptions,
) -> FramedTransport<S::Read, S::Write> {
    let (read, write) = stream.into_split();
    FramedTransport::new(read, write, addr, options)
}

/// Binds a listener with the options' backlog, naming the address when
/// that fails.
pub(crate) async fn bind_listener(
    addr: SocketAddr,
    options: &TcpOptions,
) -> Result<TcpListener, TransportError> {
    let bind = || -> io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As std and tokio do on Unix: a restarted listener can bind its
        // port while old connections are in TIME_WAIT.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(options.listen_backlog())
    };
    bind().map_err(|e| at_address("listen on", addr, e))
}

/// `TCP_NODELAY` and keepalive.
pub(crate) fn configure(stream: &TcpStream, options: &TcpOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(idle) = options.keepalive() {
        let idle = idle.max(Duration::from_secs(1));
        let keepalive = TcpKeepalive::new().with_time(idle);
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "windows"
        ))]
        let keepalive = keepalive
            .with_interval((idle / 3).max(Duration::from_secs(1)))
            .with_retries(3);
        SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}

/// Runs a handshake step until `deadline`, the end of the handshake
/// timeout that started when the connection was accepted.
pub(crate) async fn until_deadline<T>(
    deadline: Instant,
    options: &TcpOptions,
    addr: SocketAddr,
    step: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| timed_out("handshake with", addr, options.handshake_timeout()))?
}

/// A connection the role handshake runs on: TCP framing (plain or over
/// TLS), or WebSocket messages wrapped in a session.
pub(crate) trait Handshaking: FrameIo + Sized + 'static {
    /// Sets the frame limit in both directions.
    fn limit_frames(self, max: usize) -> Self;

    /// The session that carries on once the handshake is done.
    fn into_session(self) -> RumpsteakSession;

    /// The handshake succeeded: from now on the connection lingers for the
    /// session's linger time (before, it lingers at most
    /// [`REFUSED_LINGER`], whatever ends it: a refusal, a timeout, an
    /// eviction at the cap).
    fn settle(&mut self, _options: &TcpOptions) {}

    /// The session, knowing who the peer is.
    fn into_identified_session(self, identity: Box<str>) -> RumpsteakSession {
        self.into_session().with_peer_identity(identity)
    }

    /// The handshake failed: the connection is dropped next, lingering at
    /// most [`REFUSED_LINGER`] instead of the session's linger time, so a
    /// peer that was refused cannot keep the socket for long.
    fn refused(&mut self) {}
}

/// How long a connection whose handshake failed lingers for its peer to
/// close (enough for the refusal to be read, not for a refused peer to
/// hold the socket).
pub(crate) const REFUSED_LINGER: Duration = Duration::from_millis(100);

impl<R, W> Handshaking for FramedTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    fn limit_frames(mut self, max: usize) -> Self {
        self.set_max_frame_len(max);
        self
    }

    fn refused(&mut self) {
        self.shorten_linger(REFUSED_LINGER);
    }

    fn settle(&mut self, options: &TcpOptions) {
        self.set_linger(options.linger());
    }

    fn into_session(self) -> RumpsteakSession {
        RumpsteakSession::from_transport(self)
    }

    fn into_identified_session(mut self, identity: Box<str>) -> RumpsteakSession {
        self.set_identity(identity);
        RumpsteakSession::from_transport(self)
    }
}

impl Handshaking for RumpsteakSession {
    fn limit_frames(self, max: usize) -> Self {
        self.with_max_frame_len(max)
    }

    fn into_session(self) -> RumpsteakSession {
        self
    }
}

/// The session after the handshake, with the session's frame limit and
/// the peer's identity: the role its certificate proved, or the address a
/// plain-text peer connected from (so that limits shared by the sessions
/// of one peer, the labels it may teach, hold however many it opens).
fn after_handshake<T: Handshaking>(
    io: T,
    options: &TcpOptions,
    proven: Option<&str>,
    addr: SocketAddr,
) -> RumpsteakSession {
    let max = options.max_frame_len();
    let identity = match proven {
        Some(key) => key.to_string(),
        None => address_identity(addr.ip()),
    };
    let mut io = io.limit_frames(max);
    io.settle(options);
    io.into_identified_session(identity.into_boxed_str())
        .with_max_frame_len(max)
}

/// The identity of a plain-text peer: its IPv4 address, or the /64 prefix
/// of its IPv6 address (one host easily holds a whole /64). Peers behind
/// one NAT or proxy share it.
fn address_identity(ip: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("address:{prefix}/64")
        }
    }
}

/// Checks both role names and the session identifier, then opens the TCP
/// connection for a dialer.
#[cfg(feature = "websocket")]
pub(crate) async fn dial_checked(
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<TcpStream, TransportError> {
    dial_checked_with(&TcpConnector, addr, local_role, peer_role, options).await
}

/// Checks both role names and the session identifier, then opens a
/// connection for a dialer through `connector`.
async fn dial_checked_with<C: Connect>(
    connector: &C,
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<C::Stream, TransportError> {
    check_name(local_role)?;
    check_name(peer_role)?;
    check_name(options.session_id())?;
    #[cfg(feature = "tls")]
    if let Some(tls) = options.tls() {
        tls.check_role(local_role)?;
    }
    dial_stream_with(connector, addr, options).await
}

/// The dialing side of the handshake, until `deadline` (the handshake
/// timeout from the moment the connection opened, shared by every step of
/// the dial) and under the handshake frame limit. Over TLS, `io` is already encrypted and the
/// listener's certificate already checked.
pub(crate) async fn dial_handshake<T: Handshaking>(
    io: T,
    addr: SocketAddr,
    (local_role, peer_role): (&str, &str),
    proven: Option<&str>,
    deadline: Instant,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let mut io = io.limit_frames(handshake::MAX_HANDSHAKE_FRAME);
    let local = Local {
        role: local_role,
        session: options.session_id(),
        peer_proven: None,
        wire: options.wire_version(),
    };
    let done = until_deadline(
        deadline,
        options,
        addr,
        handshake::dial(&mut io, local, peer_role, addr),
    )
    .await;
    if let Err(e) = done {
        io.refused();
        return Err(e);
    }
    Ok(after_handshake(io, options, proven, addr))
}

/// The accepting side of the handshake on an opened connection, under
/// the ticket's deadline and the handshake frame limit: reads and checks
/// the hello, asks the listener for its verdict on the claimed role, then
/// answers. `peer_proven` is, over TLS, the roles the dialer's certificate
/// proves.
pub(crate) async fn admit<T: Handshaking>(
    io: T,
    addr: SocketAddr,
    local_role: &str,
    peer_proven: Option<&Proven>,
    options: &TcpOptions,
    ticket: &Ticket,
) -> Accepted {
    let mut io = io.limit_frames(handshake::MAX_HANDSHAKE_FRAME);
    let local = Local {
        role: local_role,
        session: options.session_id(),
        peer_proven: peer_proven.map(|p| p.roles.as_slice()),
        wire: options.wire_version(),
    };
    let step = async {
        let from = handshake::read_hello(&mut io, local, addr).await?;
        let verdict = ticket.verdict(&from).await;
        handshake::finish_accept(&mut io, local_role, &from, verdict, addr).await?;
        Ok(from)
    };
    match until_deadline(ticket.deadline, options, addr, step).await {
        Ok(from) => {
            let proven = peer_proven.map(|p| p.identity.as_str());
            let session = after_handshake(io, options, proven, addr);
            Ok((from, session))
        }
        Err(e) => {
            io.refused();
            Err(e)
        }
    }
}

/// Opens a dialed connection: TLS first when the options carry an
/// identity, then the role handshake.
async fn dial_on<S: Stream>(
    stream: S,
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let deadline = Instant::now() + options.handshake_timeout();
    #[cfg(feature = "tls")]
    if let Some(tls) = options.tls() {
        let halves = tls
            .connect(stream, addr, peer_role, deadline, options)
            .await?;
        let transport = FramedTransport::new(halves.read, halves.write, addr, options);
        let proven = match proven_as(halves.verdict, peer_role) {
            Ok(proven) => proven,
            Err(refusal) => {
                return Err(
                    refuse_now(transport, addr, local_role, refusal, deadline, options).await,
                );
            }
        };
        let roles = (local_role, peer_role);
        let identity = Some(proven.identity.as_str());
        return dial_handshake(transport, addr, roles, identity, deadline, options).await;
    }
    let transport = framed(stream, addr, options);
    dial_handshake(
        transport,
        addr,
        (local_role, peer_role),
        None,
        deadline,
        options,
    )
    .await
}

/// The dialer's verdict on the listener's certificate: it must prove
/// `peer_role`, the role dialed.
#[cfg(feature = "tls")]
pub(crate) fn proven_as(verdict: crate::tls::Verdict, peer_role: &str) -> Result<Proven, Refusal> {
    let proven = verdict?;
    if proven.roles.iter().any(|r| r == peer_role) {
        return Ok(proven);
    }
    Err(Refusal::new(
        RefusalReason::CertificateRole,
        peer_role,
        format!("certificate of {}", handshake::Names(&proven.roles)),
    ))
}

/// The listener side of a plain or TLS connection (not WebSocket).
fn framed_opener<S: Stream>(local_role: &str, options: &TcpOptions) -> Opener<S> {
    admission::opener(
        local_role,
        options,
        |stream, addr, role, options, ticket| async move {
            open_framed(stream, addr, &role, &options, &ticket).await
        },
    )
}

async fn open_framed<S: Stream>(
    mut stream: S,
    addr: SocketAddr,
    local_role: &str,
    options: &TcpOptions,
    ticket: &Ticket,
) -> Accepted {
    let peeked = peek_first(&mut stream, addr);
    let first = until_deadline(ticket.deadline, options, addr, peeked).await?;
    let speaks_tls = first == Some(TLS_HANDSHAKE_RECORD);
    #[cfg(feature = "tls")]
    if let Some(tls) = options.tls() {
        if !speaks_tls {
            // A plain-text dialer: it is told so in its own framing.
            let io = framed(stream, addr, options);
            let refusal = Refusal::new(RefusalReason::PlainTextPeer, "TLS", "plain text");
            return Err(refuse_now(io, addr, local_role, refusal, ticket.deadline, options).await);
        }
        let accepted = until_deadline(ticket.deadline, options, addr, tls.accept(stream, addr));
        let halves = accepted.await?;
        let transport = FramedTransport::new(halves.read, halves.write, addr, options);
        return match halves.verdict {
            Ok(proven) => admit(transport, addr, local_role, Some(&proven), options, ticket).await,
            Err(refusal) => Err(refuse_now(
                transport,
                addr,
                local_role,
                refusal,
                ticket.deadline,
                options,
            )
            .await),
        };
    }
    let io = framed(stream, addr, options);
    if speaks_tls {
        // A TLS dialer at a plain listener: its TLS layer finds this
        // refusal in what it reads instead of a server hello.
        let refusal = Refusal::new(RefusalReason::TlsPeer, "plain text", "TLS");
        return Err(refuse_now(io, addr, local_role, refusal, ticket.deadline, options).await);
    }
    admit(io, addr, local_role, None, options, ticket).await
}

/// Refuses a connection before its role handshake, telling the peer why
/// (as far as it listens before `deadline`); returns this side's error.
pub(crate) async fn refuse_now<T: Handshaking>(
    io: T,
    addr: SocketAddr,
    local_role: &str,
    refusal: Refusal,
    deadline: Instant,
    options: &TcpOptions,
) -> TransportError {
    let mut io = io.limit_frames(handshake::MAX_HANDSHAKE_FRAME);
    let sent = handshake::refuse_plainly(&mut io, local_role, refusal.clone());
    let _ = until_deadline(deadline, options, addr, sent).await;
    io.refused();
    TransportError::refused(refusal.with_detail(format!("refused {addr}")))
}

/// The first byte of every TLS connection: a handshake record.
pub(crate) const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Waits for the dialer's first byte without taking it; `None` if it
/// closed first.
#[cfg(feature = "websocket")]
pub(crate) async fn first_byte(
    stream: &TcpStream,
    addr: SocketAddr,
) -> Result<Option<u8>, TransportError> {
    let mut byte = [0u8; 1];
    let peeked = stream.peek(&mut byte).await;
    first_of(peeked, byte, addr)
}

/// Waits for the dialer's first byte on any stream without taking it;
/// `None` if it closed first.
async fn peek_first<S: Stream>(
    stream: &mut S,
    addr: SocketAddr,
) -> Result<Option<u8>, TransportError> {
    let mut byte = [0u8; 1];
    let peeked = stream.peek(&mut byte).await;
    first_of(peeked, byte, addr)
}

fn first_of(
    peeked: io::Result<usize>,
    byte: [u8; 1],
    addr: SocketAddr,
) -> Result<Option<u8>, TransportError> {
    match peeked {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(byte[0])),
        Err(e) => Err(at_address("read from", addr, e)),
    }
}

/// Connects to the peer playing `peer_role` at `addr`, as `local_role`.
///
/// With an identity in the options ([`TcpOptions::with_tls`]) the
/// connection runs TLS 1.3 and the listener must prove with its
/// certificate that it is `peer_role`; without one it is plain text.
///
/// Fails with an I/O error naming the address when the connection is
/// refused or does not open within [`TcpOptions::connect_timeout`]; with a
/// [`Refused`](crate::TransportErrorKind::Refused) error naming what was
/// expected and what was presented when the peer is not `peer_role`, does
/// not expect `local_role`, belongs to another session, speaks another
/// version, or fails the certificate checks; and with a
/// [`Handshake`](crate::TransportErrorKind::Handshake) error when it is not
/// a rumpsteak-aura session at all.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
/// let options = TcpOptions::new();
/// let listener = SessionListener::bind("127.0.0.1:0".parse().unwrap(), "Server", &options).await?;
/// let addr = listener.local_addr();
/// let server = tokio::spawn(async move {
///     let mut session = listener.accept("Client").await?;
///     let request = session.recv_frame().await?;
///     session.send_frame(request.iter().rev().copied().collect()).await
/// });
///
/// let mut session = tcp::connect(addr, "Client", "Server", &options).await?;
/// session.send_frame(vec![1, 2, 3]).await?;
/// assert_eq!(session.recv_frame().await?, vec![3, 2, 1]);
/// server.await.expect("server task")?;
/// # Ok(())
/// # }
/// ```
pub async fn connect(
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    connect_with(&TcpConnector, addr, local_role, peer_role, options).await
}

/// As [`connect`], over the connections that `connector` opens: the same
/// checks, TLS and role handshake, on another socket type (a simulated
/// network's, an in-memory pipe).
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tcp::{self, SessionListener, TcpConnector, TcpOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
/// let options = TcpOptions::new();
/// let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let listener = SessionListener::from_listen(bound, "Server", &options)?;
/// let addr = listener.local_addr();
/// let server = tokio::spawn(async move { listener.accept("Client").await });
/// let session = tcp::connect_with(&TcpConnector, addr, "Client", "Server", &options).await?;
/// assert_eq!(session.peer_identity(), Some("address:127.0.0.1"));
/// server.await.expect("server task")?;
/// # Ok(())
/// # }
/// ```
pub async fn connect_with<C: Connect>(
    connector: &C,
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let stream = dial_checked_with(connector, addr, local_role, peer_role, options).await?;
    dial_on(stream, addr, local_role, peer_role, options).await
}

/// A bound TCP address on which one role accepts sessions from its peers.
///
/// Every connection runs its handshake in a task of its own, so a peer
/// that connects and stays silent delays no other: it is closed when the
/// handshake timeout passes ([`TcpOptions::with_handshake_timeout`]). At
/// most [`TcpOptions::max_pending_handshakes`] handshakes run at once;
/// at the cap, the oldest connection that has not greeted yet is closed to
/// make room. The listen backlog is [`TcpOptions::listen_backlog`].
///
/// Handshakes make progress while a call of [`accept`](Self::accept) (or
/// [`accept_any`](Self::accept_any)) is waiting; calls on one listener are
/// served one at a time. A call that is cancelled loses nothing: a
/// handshake it agreed to completes, and its session goes to the next call
/// that expects its role.
///
/// The listener does not track the sessions it handed out: each call asks
/// for one more session, so one role may connect again after its earlier
/// session was accepted (a server with many clients of the same role).
/// [`Mesh`], which knows the whole table, refuses a second connection for a
/// role already wired.
///
/// Over another socket type, `L` is that type's [`Listen`]; see
/// [`from_listen`](Self::from_listen).
pub struct SessionListener<L: Listen = TcpListener> {
    admission: Admission<L>,
    local_role: String,
}

impl SessionListener {
    /// Binds `addr` for the role `local_role`, with the backlog of
    /// [`TcpOptions::listen_backlog`]. Port 0 picks a free port; see
    /// [`local_addr`](SessionListener::local_addr).
    ///
    /// Fails with an I/O error naming the address when it is in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
    /// let options = TcpOptions::new();
    /// let first = SessionListener::bind("127.0.0.1:0".parse().unwrap(), "Server", &options).await?;
    /// assert_ne!(first.local_addr().port(), 0);
    /// let err = SessionListener::bind(first.local_addr(), "Server", &options).await.unwrap_err();
    /// assert!(err.to_string().contains(&first.local_addr().to_string()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bind(
        addr: SocketAddr,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        check_name(local_role)?;
        let listener = bind_listener(addr, options).await?;
        Self::from_listener(listener, local_role, options)
    }

    /// Uses a listener the caller bound already (for example, to learn an
    /// ephemeral port before the table of addresses is written). Its
    /// backlog is the one it was bound with.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
    /// let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = bound.local_addr()?;
    /// let listener = SessionListener::from_listener(bound, "Server", &TcpOptions::new())?;
    /// assert_eq!(listener.local_addr(), addr);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_listener(
        listener: TcpListener,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        Self::from_listen(listener, local_role, options)
    }
}

impl<L: Listen> SessionListener<L>
where
    L::Conn: Stream,
{
    /// Accepts sessions from the connections `listener` delivers: a tokio
    /// [`TcpListener`] (as [`from_listener`](SessionListener::from_listener)),
    /// or another socket type's listener (a simulated network's), with the
    /// same handshake, TLS, limits and framing as over TCP.
    pub fn from_listen(
        listener: L,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        Self::with_opener(listener, local_role, options, framed_opener)
    }
}

impl<L: Listen> SessionListener<L> {
    /// A listener whose connections are opened by the opener that
    /// `opener` builds for the role and options (plain, TLS, WebSocket).
    pub(crate) fn with_opener(
        listener: L,
        local_role: &str,
        options: &TcpOptions,
        opener: fn(&str, &TcpOptions) -> Opener<L::Conn>,
    ) -> Result<Self, TransportError> {
        check_name(local_role)?;
        check_name(options.session_id())?;
        #[cfg(feature = "tls")]
        if let Some(tls) = options.tls() {
            tls.check_role(local_role)?;
        }
        Ok(SessionListener {
            admission: Admission::new(listener, options, opener(local_role, options))?,
            local_role: local_role.to_string(),
        })
    }

    /// The address this listener is bound to.
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
    /// `peer_role`, and returns its session.
    ///
    /// A connection from any other role, from another session, from a peer
    /// of another version or (over TLS) one whose certificate fails, is
    /// refused and closed, and this call returns the
    /// [`Refused`](crate::TransportErrorKind::Refused) error; a connection
    /// that is not a rumpsteak-aura session, or breaks, gives a
    /// [`Handshake`](crate::TransportErrorKind::Handshake) or I/O error, and
    /// a silent one a timeout after [`TcpOptions::handshake_timeout`]. Call
    /// it again to keep waiting: other handshakes go on meanwhile.
    pub async fn accept(&self, peer_role: &str) -> Result<RumpsteakSession, TransportError> {
        let mut allow = handshake::expect_role(peer_role);
        self.admission.next(&mut allow).await.map(|(_, s)| s)
    }

    /// Accepts the next connection from any of `peer_roles`, returning the
    /// role that connected with its session.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
    /// let options = TcpOptions::new();
    /// let listener = SessionListener::bind("127.0.0.1:0".parse().unwrap(), "Hub", &options).await?;
    /// let addr = listener.local_addr();
    /// let dialer = tokio::spawn(async move { tcp::connect(addr, "Carol", "Hub", &options).await });
    /// let (role, _session) = listener.accept_any(&["Bob", "Carol"]).await?;
    /// assert_eq!(role, "Carol");
    /// dialer.await.expect("dialer task")?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn accept_any(
        &self,
        peer_roles: &[&str],
    ) -> Result<(String, RumpsteakSession), TransportError> {
        let mut allow = handshake::expect_one_of(peer_roles);
        self.admission.next(&mut allow).await
    }

    /// The next completed handshake whose claimed role `allow` accepts.
    pub(crate) async fn accept_checked(&self, allow: &mut Allow<'_>) -> Accepted {
        self.admission.next(allow).await
    }

    pub(crate) fn options(&self) -> &TcpOptions {
        self.admission.options()
    }
}

impl<L: Listen> fmt::Debug for SessionListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionListener")
            .field("local_addr", &self.local_addr())
            .field("local_role", &self.local_role)
            .field("options", self.options())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_peers_are_known_by_address_and_ipv6_hosts_by_their_64() {
        let id = |s: &str| address_identity(s.parse().unwrap());
        assert_eq!(id("192.0.2.7"), "address:192.0.2.7");
        assert_eq!(id("::ffff:192.0.2.7"), "address:192.0.2.7");
        assert_eq!(id("2001:db8:1:2:3:4:5:6"), "address:2001:db8:1:2::/64");
        assert_eq!(id("2001:db8:1:2:ffff::1"), id("2001:db8:1:2::9"));
        assert_ne!(id("2001:db8:1:3::1"), id("2001:db8:1:2::1"));
    }
    use rumpsteak_aura::TransportErrorKind;

    /// `err` is an I/O error of `kind` whose message names `what` (an
    /// action and the address).
    fn assert_io_error(err: &TransportError, kind: io::ErrorKind, what: &str) {
        let TransportErrorKind::Io(io) = err.kind() else {
            panic!("expected an i/o error, got {err}");
        };
        assert_eq!(io.kind(), kind);
        assert!(err.to_string().contains(what), "{err}");
    }

    #[tokio::test]
    async fn refused_connection_names_the_address() {
        // Bind then drop: nothing listens on the port any more.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let err = connect(addr, "A", "B", &TcpOptions::new())
            .await
            .unwrap_err();
        assert_io_error(
            &err,
            io::ErrorKind::ConnectionRefused,
            &format!("connect to {addr}"),
        );
    }

    #[tokio::test]
    async fn address_in_use_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = SessionListener::bind(addr, "A", &TcpOptions::new())
            .await
            .unwrap_err();
        assert_io_error(&err, io::ErrorKind::AddrInUse, &format!("listen on {addr}"));
    }

    #[tokio::test]
    async fn silent_acceptor_times_the_handshake_out() {
        // A plain listener that accepts but never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _hold = tokio::spawn(async move { silent.accept().await });
        let options = TcpOptions::new().with_handshake_timeout(Duration::from_millis(50));
        let err = connect(addr, "A", "B", &options).await.unwrap_err();
        assert_io_error(
            &err,
            io::ErrorKind::TimedOut,
            &format!("handshake with {addr}"),
        );
    }

    #[tokio::test]
    async fn overlong_role_names_are_refused_up_front() {
        let name = "x".repeat(300);
        let err = connect(
            "127.0.0.1:9".parse().unwrap(),
            &name,
            "B",
            &TcpOptions::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err.kind(), TransportErrorKind::Handshake(_)));
    }

    #[tokio::test]
    async fn real_tcp_connections_get_nodelay_and_keepalive_on_both_sides() {
        // `connect` and `bind` set their sockets up through `TcpConnector`
        // and `Listen::prepare` of a `TcpListener`: both must keep setting
        // `TCP_NODELAY` and the options' keepalive, or turn keepalive off.
        for keepalive in [Some(Duration::from_secs(42)), None] {
            let options = TcpOptions::new().with_keepalive(keepalive);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (dialed, accepted) = tokio::join!(
                TcpConnector.connect(addr, &options),
                Listen::accept(&listener)
            );
            let (dialed, (accepted, _)) = (dialed.unwrap(), accepted.unwrap());
            Listen::prepare(&listener, &accepted, &options).unwrap();
            for stream in [&dialed, &accepted] {
                let socket = SockRef::from(stream);
                assert!(stream.nodelay().unwrap());
                assert_eq!(socket.keepalive().unwrap(), keepalive.is_some());
                #[cfg(target_os = "linux")]
                if let Some(idle) = keepalive {
                    assert_eq!(socket.tcp_keepalive_time().unwrap(), idle);
                }
            }
        }
    }

    // Another socket type: in-memory pipes, to show that the dialer and the
    // listener (handshake, TLS, framing) run on anything that implements
    // the socket traits.

    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncReadExt, DuplexStream, ReadBuf};
    use tokio::sync::{Mutex, mpsc};

    struct Pipe {
        io: DuplexStream,
        ahead: Vec<u8>,
    }

    impl AsyncRead for Pipe {
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

    impl AsyncWrite for Pipe {
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

    impl Stream for Pipe {
        type Read = tokio::io::ReadHalf<Pipe>;
        type Write = tokio::io::WriteHalf<Pipe>;

        async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ahead.is_empty() {
                let mut chunk = [0u8; 64];
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

    const PIPE_ADDR: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9)),
        1,
    );

    struct Pipes(Mutex<mpsc::UnboundedReceiver<Pipe>>);

    impl Listen for Pipes {
        type Conn = Pipe;

        async fn accept(&self) -> io::Result<(Pipe, SocketAddr)> {
            match self.0.lock().await.recv().await {
                Some(pipe) => Ok((pipe, PIPE_ADDR)),
                None => Err(io::ErrorKind::NotConnected.into()),
            }
        }

        fn local_addr(&self) -> io::Result<SocketAddr> {
            Ok(PIPE_ADDR)
        }
    }

    struct PipeDialer(mpsc::UnboundedSender<Pipe>);

    impl Connect for PipeDialer {
        type Stream = Pipe;

        async fn connect(&self, _addr: SocketAddr, _options: &TcpOptions) -> io::Result<Pipe> {
            let (a, b) = tokio::io::duplex(4096);
            let far = Pipe {
                io: b,
                ahead: Vec::new(),
            };
            self.0
                .send(far)
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok(Pipe {
                io: a,
                ahead: Vec::new(),
            })
        }
    }

    fn pipes(role: &str, options: &TcpOptions) -> (SessionListener<Pipes>, PipeDialer) {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = SessionListener::from_listen(Pipes(Mutex::new(rx)), role, options).unwrap();
        (listener, PipeDialer(tx))
    }

    #[tokio::test]
    async fn sessions_and_refusals_run_over_another_socket_type() {
        let options = TcpOptions::new();
        let (listener, dialer) = pipes("Server", &options);
        let dial = connect_with(&dialer, PIPE_ADDR, "Client", "Server", &options);
        let (dialed, accepted) = tokio::join!(dial, listener.accept("Client"));
        let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        dialed.send_frame(vec![1, 2, 3]).await.unwrap();
        assert_eq!(accepted.recv_frame().await.unwrap(), vec![1, 2, 3]);
        accepted.send_frame(vec![4]).await.unwrap();
        assert_eq!(dialed.recv_frame().await.unwrap(), vec![4]);
        assert_eq!(accepted.peer_identity(), Some("address:192.0.2.9"));

        // The same handshake refuses a role the listener does not expect,
        // on both sides.
        let dial = connect_with(&dialer, PIPE_ADDR, "Mallory", "Server", &options);
        let (dialed, accepted) = tokio::join!(dial, listener.accept("Client"));
        assert!(matches!(
            dialed.unwrap_err().kind(),
            TransportErrorKind::Refused(_)
        ));
        assert!(matches!(
            accepted.unwrap_err().kind(),
            TransportErrorKind::Refused(_)
        ));
    }

    #[cfg(feature = "dev-certs")]
    #[tokio::test]
    async fn tls_runs_over_another_socket_type_with_its_certificate_checks() {
        use crate::tls::dev::DevCa;
        let ca = DevCa::new("pipe CA").unwrap();
        let server = TcpOptions::new().with_tls(ca.identity("Server").unwrap());
        let client = TcpOptions::new().with_tls(ca.identity("Client").unwrap());
        let (listener, dialer) = pipes("Server", &server);
        let dial = connect_with(&dialer, PIPE_ADDR, "Client", "Server", &client);
        let (dialed, accepted) = tokio::join!(dial, listener.accept("Client"));
        let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        dialed.send_frame(vec![9; 100]).await.unwrap();
        assert_eq!(accepted.recv_frame().await.unwrap(), vec![9; 100]);
        // The identity is the certificate's key, not the pipe's address.
        assert!(accepted.peer_identity().unwrap().starts_with("key:"));

        // A dialer that expects another role refuses the listener's
        // certificate; a plain-text dialer is refused by the TLS listener.
        let dial = connect_with(&dialer, PIPE_ADDR, "Client", "Other", &client);
        let (dialed, accepted) = tokio::join!(dial, listener.accept("Client"));
        assert!(matches!(
            dialed.unwrap_err().kind(),
            TransportErrorKind::Refused(_)
        ));
        assert!(accepted.is_err());
        let plain = TcpOptions::new();
        let dial = connect_with(&dialer, PIPE_ADDR, "Client", "Server", &plain);
        let (dialed, accepted) = tokio::join!(dial, listener.accept("Client"));
        assert!(matches!(
            dialed.unwrap_err().kind(),
            TransportErrorKind::Refused(_)
        ));
        assert!(matches!(
            accepted.unwrap_err().kind(),
            TransportErrorKind::Refused(_)
        ));
    }
}
