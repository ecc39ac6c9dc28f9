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
//! # The handshake
//!
//! Right after connecting, both sides say which role they are and which
//! wire format version ([`WIRE_VERSION`]) they
//! speak. A peer that is not the expected role, speaks another version, or
//! is not a rumpsteak-aura session at all is refused with a
//! [`Handshake`](crate::TransportErrorKind::Handshake) error on both sides,
//! naming the reason, and the connection is closed.
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

pub(crate) mod deadline;
mod mesh;
mod options;
mod stream;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rumpsteak_aura::TransportError;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};

use crate::handshake::{self, FrameIo, check_name};
use rumpsteak_aura_transport::RumpsteakSession;
use rumpsteak_aura_transport::wire::WIRE_VERSION;

pub use mesh::{Mesh, MeshError};
pub use options::TcpOptions;
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

/// Opens a TCP connection to `addr` and sets it up for a session.
pub(crate) async fn dial_stream(
    addr: SocketAddr,
    options: &TcpOptions,
) -> Result<TcpStream, TransportError> {
    let stream = tokio::time::timeout(options.connect_timeout(), TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connect to", addr, options.connect_timeout()))?
        .map_err(|e| at_address("connect to", addr, e))?;
    configure(&stream, options).map_err(|e| at_address("configure connection to", addr, e))?;
    Ok(stream)
}

/// Binds a listener, naming the address when that fails.
pub(crate) async fn bind_listener(addr: SocketAddr) -> Result<TcpListener, TransportError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| at_address("listen on", addr, e))
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

/// Runs a handshake step under the handshake timeout.
pub(crate) async fn within_handshake_timeout<T>(
    options: &TcpOptions,
    addr: SocketAddr,
    step: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(options.handshake_timeout(), step)
        .await
        .map_err(|_| timed_out("handshake with", addr, options.handshake_timeout()))?
}

/// A connection the role handshake runs on: TCP framing, or WebSocket
/// messages wrapped in a session.
pub(crate) trait Handshaking: FrameIo + Sized {
    /// Sets the frame limit in both directions.
    fn limit_frames(self, max: usize) -> Self;

    /// The session that carries on once the handshake is done.
    fn into_session(self) -> RumpsteakSession;

    /// The handshake failed: the connection is dropped next, lingering at
    /// most [`REFUSED_LINGER`] instead of the session's linger time, so a
    /// peer that was refused cannot keep the socket for long.
    fn refused(&mut self) {}
}

/// How long a connection whose handshake failed lingers for its peer to
/// close (enough for the refusal to be read, not for a refused peer to
/// hold the socket).
pub(crate) const REFUSED_LINGER: Duration = Duration::from_millis(100);

impl Handshaking for TcpTransport {
    fn limit_frames(mut self, max: usize) -> Self {
        self.set_max_frame_len(max);
        self
    }

    fn refused(&mut self) {
        self.shorten_linger(REFUSED_LINGER);
    }

    fn into_session(self) -> RumpsteakSession {
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

/// The session after the handshake, with the session's frame limit.
fn after_handshake<T: Handshaking>(io: T, options: &TcpOptions) -> RumpsteakSession {
    let max = options.max_frame_len();
    io.limit_frames(max).into_session().with_max_frame_len(max)
}

/// Checks both role names, then opens the TCP connection for a dialer.
pub(crate) async fn dial_checked(
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<TcpStream, TransportError> {
    check_name(local_role)?;
    check_name(peer_role)?;
    dial_stream(addr, options).await
}

/// The dialing side of the handshake, under the handshake timeout and the
/// handshake frame limit.
pub(crate) async fn dial_handshake<T: Handshaking>(
    io: T,
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let mut io = io.limit_frames(handshake::MAX_HANDSHAKE_FRAME);
    let done = within_handshake_timeout(
        options,
        addr,
        handshake::dial(&mut io, local_role, peer_role, addr, WIRE_VERSION),
    )
    .await;
    if let Err(e) = done {
        io.refused();
        return Err(e);
    }
    Ok(after_handshake(io, options))
}

/// The accepting side of the handshake, under the handshake timeout and
/// the handshake frame limit; returns the peer's role with the session.
pub(crate) async fn accept_handshake<T: Handshaking>(
    io: T,
    addr: SocketAddr,
    local_role: &str,
    allow: &mut (dyn FnMut(&str) -> Result<(), String> + Send),
    options: &TcpOptions,
) -> Result<(String, RumpsteakSession), TransportError> {
    let mut io = io.limit_frames(handshake::MAX_HANDSHAKE_FRAME);
    let role = match within_handshake_timeout(
        options,
        addr,
        handshake::accept(&mut io, local_role, allow, addr, WIRE_VERSION),
    )
    .await
    {
        Ok(role) => role,
        Err(e) => {
            io.refused();
            return Err(e);
        }
    };
    Ok((role, after_handshake(io, options)))
}

/// Connects to the peer playing `peer_role` at `addr`, as `local_role`.
///
/// Fails with an I/O error naming the address when the connection is
/// refused or does not open within [`TcpOptions::connect_timeout`], and with
/// a [`Handshake`](crate::TransportErrorKind::Handshake) error when the
/// peer is not `peer_role`, does not expect `local_role`, or speaks another
/// wire format version.
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
    let stream = dial_checked(addr, local_role, peer_role, options).await?;
    let transport = TcpTransport::new(stream, addr, options);
    dial_handshake(transport, addr, local_role, peer_role, options).await
}

/// A bound TCP address on which one role accepts sessions from its peers.
pub struct SessionListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    local_role: String,
    options: TcpOptions,
}

impl SessionListener {
    /// Binds `addr` for the role `local_role`. Port 0 picks a free port; see
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
        let listener = bind_listener(addr).await?;
        Self::from_listener(listener, local_role, options)
    }

    /// Uses a listener the caller bound already (for example, to learn an
    /// ephemeral port before the table of addresses is written).
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
        check_name(local_role)?;
        let local_addr = listener.local_addr().map_err(TransportError::io)?;
        Ok(SessionListener {
            listener,
            local_addr,
            local_role: local_role.to_string(),
            options: options.clone(),
        })
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The role this listener accepts sessions for.
    pub fn local_role(&self) -> &str {
        &self.local_role
    }

    /// Accepts the next connection and runs the handshake, expecting the
    /// peer to be `peer_role`.
    ///
    /// A connection from any other role, or from a peer of another wire
    /// version, is refused and closed, and this call returns the
    /// [`Handshake`](crate::TransportErrorKind::Handshake) error; call it
    /// again to keep waiting. A peer that connects and says nothing is cut
    /// off after [`TcpOptions::handshake_timeout`].
    pub async fn accept(&self, peer_role: &str) -> Result<RumpsteakSession, TransportError> {
        let mut allow = handshake::expect_role(peer_role);
        self.accept_checked(&mut allow).await.map(|(_, s)| s)
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
        self.accept_checked(&mut allow).await
    }

    pub(crate) async fn accept_checked(
        &self,
        allow: &mut (dyn FnMut(&str) -> Result<(), String> + Send),
    ) -> Result<(String, RumpsteakSession), TransportError> {
        let (stream, addr) = self.accept_stream().await?;
        accept_on(stream, addr, &self.local_role, allow, &self.options).await
    }

    pub(crate) async fn accept_stream(&self) -> Result<(TcpStream, SocketAddr), TransportError> {
        let (stream, addr) = self
            .listener
            .accept()
            .await
            .map_err(|e| at_address("accept on", self.local_addr, e))?;
        configure(&stream, &self.options)
            .map_err(|e| at_address("configure connection from", addr, e))?;
        Ok((stream, addr))
    }

    pub(crate) fn options(&self) -> &TcpOptions {
        &self.options
    }
}

/// The accepting side of the handshake on a fresh connection.
pub(crate) async fn accept_on(
    stream: TcpStream,
    addr: SocketAddr,
    local_role: &str,
    allow: &mut (dyn FnMut(&str) -> Result<(), String> + Send),
    options: &TcpOptions,
) -> Result<(String, RumpsteakSession), TransportError> {
    let transport = TcpTransport::new(stream, addr, options);
    accept_handshake(transport, addr, local_role, allow, options).await
}

impl fmt::Debug for SessionListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionListener")
            .field("local_addr", &self.local_addr)
            .field("local_role", &self.local_role)
            .field("options", &self.options)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
