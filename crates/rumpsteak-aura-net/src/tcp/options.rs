use std::time::Duration;

use rumpsteak_aura_transport::DEFAULT_MAX_FRAME_LEN;

/// Settings for TCP (and WebSocket) sessions.
///
/// Start from [`TcpOptions::new`] (the defaults) and change what you need
/// with the `with_*` methods. The defaults suit a local network:
///
/// | setting | default |
/// |---------|---------|
/// | [`max_frame_len`](TcpOptions::max_frame_len) | 64 MiB ([`DEFAULT_MAX_FRAME_LEN`]) |
/// | [`read_deadline`](TcpOptions::read_deadline) | none |
/// | [`keepalive`](TcpOptions::keepalive) | 30 s |
/// | [`connect_timeout`](TcpOptions::connect_timeout) | 10 s |
/// | [`handshake_timeout`](TcpOptions::handshake_timeout) | 10 s |
/// | [`linger`](TcpOptions::linger) | 5 s |
/// | [`session_id`](TcpOptions::session_id) | empty |
/// | [`wire_version`](TcpOptions::wire_version) | [`WIRE_VERSION`](rumpsteak_aura_transport::wire::WIRE_VERSION) |
/// | [`max_pending_handshakes`](TcpOptions::max_pending_handshakes) | 1024 |
/// | [`listen_backlog`](TcpOptions::listen_backlog) | 1024 |
/// | [`tls`](TcpOptions::with_tls) | none: plain text, for trusted networks only |
///
/// The limits on connections that have not finished their handshake
/// (timeout, pending handshakes, backlog) suit a listener open to the
/// public: a silent connection costs one small task and its socket, at
/// most 10 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rumpsteak_aura_net::tcp::TcpOptions;
///
/// let options = TcpOptions::new()
///     .with_max_frame_len(1 << 20)
///     .with_read_deadline(Duration::from_secs(30))
///     .with_connect_timeout(Duration::from_secs(2));
/// assert_eq!(options.max_frame_len(), 1 << 20);
/// assert_eq!(options.read_deadline(), Some(Duration::from_secs(30)));
/// assert_eq!(TcpOptions::new().with_keepalive(None).keepalive(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    max_frame_len: usize,
    read_deadline: Option<Duration>,
    keepalive: Option<Duration>,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    linger: Duration,
    session_id: String,
    wire_version: u8,
    max_pending_handshakes: usize,
    listen_backlog: u32,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            read_deadline: None,
            keepalive: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(5),
            session_id: String::new(),
            wire_version: rumpsteak_aura_transport::wire::WIRE_VERSION,
            max_pending_handshakes: 1024,
            listen_backlog: 1024,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl TcpOptions {
    /// The default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::TcpOptions;
    /// use rumpsteak_aura_transport::DEFAULT_MAX_FRAME_LEN;
    ///
    /// assert_eq!(TcpOptions::new().max_frame_len(), DEFAULT_MAX_FRAME_LEN);
    /// assert_eq!(TcpOptions::new(), TcpOptions::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest frame, in bytes, the session sends or accepts. It is
    /// also the most one frame can cost in memory on the receiving side.
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    /// Sets how long a pending receive may wait with no byte arriving
    /// before it fails with a
    /// [`ReadDeadline`](crate::TransportErrorKind::ReadDeadline) error.
    /// `None` (the default) waits as long as the connection is alive.
    ///
    /// Use it when a peer may legitimately stay connected but must answer
    /// within a known time. The session stays usable after the error.
    pub fn with_read_deadline(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.read_deadline = deadline.into();
        self
    }

    /// Sets TCP keepalive: after `idle` without traffic the kernel probes
    /// the peer, and a peer whose machine or network is gone is detected
    /// roughly `2 × idle` later, failing the pending receive with an I/O
    /// error. `None` turns keepalive off.
    ///
    /// A peer *process* that dies is noticed at once without keepalive: its
    /// kernel closes the connection.
    pub fn with_keepalive(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.keepalive = idle.into();
        self
    }

    /// Sets how long one connection attempt may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long the role handshake after connecting may take.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how long a dropped session keeps its socket open in the
    /// background (inside a tokio runtime) to finish sending and to wait for
    /// the peer's close, so that no frame is lost to a connection reset.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets the session identifier, which both sides of every connection
    /// must share: two instances of a protocol between the same roles (on
    /// the same listener) with different identifiers are never crossed. A
    /// dialer of another session is refused with
    /// [`RefusalReason::WrongSession`](rumpsteak_aura::RefusalReason::WrongSession).
    /// At most 255 bytes of UTF-8; empty by default.
    pub fn with_session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = id.into();
        self
    }

    /// Sets the version of the frames that follow the handshake, which the
    /// hello announces and both sides must share: a session layer with a
    /// framing of its own on top of these sessions (resumable sessions,
    /// say) sets its own, so that a peer speaking plain frames is refused
    /// in the handshake, on both sides, with
    /// [`RefusalReason::Version`](rumpsteak_aura::RefusalReason::Version)
    /// (expected and presented are the two versions), instead of reading
    /// frames it cannot understand. The default is the plain wire format's
    /// [`WIRE_VERSION`](rumpsteak_aura_transport::wire::WIRE_VERSION).
    pub fn with_wire_version(mut self, version: u8) -> Self {
        self.wire_version = version;
        self
    }

    /// Sets how many accepted connections may be in their handshake at
    /// once (at least 1). At the cap, the oldest one that has not sent its
    /// hello is closed to make room for a new one.
    pub fn with_max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max.max(1);
        self
    }

    /// Sets the listen backlog of listeners this crate binds: how many
    /// connections the kernel queues before they are accepted.
    pub fn with_listen_backlog(mut self, backlog: u32) -> Self {
        self.listen_backlog = backlog.max(1);
        self
    }

    /// Runs every session over TLS 1.3 with `tls`'s identity: the local
    /// role proves itself with its certificate and checks the peer's (see
    /// [`tls`](crate::tls)).
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The TLS configuration, if sessions run over TLS.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&crate::tls::TlsConfig> {
        self.tls.as_ref()
    }

    /// The session identifier.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The version of the frames that follow the handshake.
    pub fn wire_version(&self) -> u8 {
        self.wire_version
    }

    /// The cap on connections in their handshake at once.
    pub fn max_pending_handshakes(&self) -> usize {
        self.max_pending_handshakes
    }

    /// The listen backlog.
    pub fn listen_backlog(&self) -> u32 {
        self.listen_backlog
    }

    /// The largest frame, in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The read deadline, if any.
    pub fn read_deadline(&self) -> Option<Duration> {
        self.read_deadline
    }

    /// The keepalive idle time, if keepalive is on.
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// The time allowed for one connection attempt.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The time allowed for the role handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// How long a dropped session lingers to close cleanly.
    pub fn linger(&self) -> Duration {
        self.linger
    }
}
