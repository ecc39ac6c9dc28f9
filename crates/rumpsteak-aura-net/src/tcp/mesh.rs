//! Wiring every session of one role from a table of role addresses.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rumpsteak_aura::{TransportError, TransportErrorKind};
use tokio::net::TcpListener;
use tokio::time::Instant;

use rumpsteak_aura::{Refusal, RefusalReason};

use super::{Accepted, SessionListener, TcpOptions, connect};
use rumpsteak_aura_transport::RumpsteakSession;

/// Why a [`Mesh`] could not be wired.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The local role is not in the address table.
    #[error("role `{0}` is not in the address table")]
    NotInTable(String),

    /// Two entries of the table have the same name.
    #[error("role `{0}` appears more than once in the address table")]
    DuplicateRole(String),

    /// The local role could not listen on its address.
    #[error("role `{role}` could not listen for its peers")]
    Listen {
        /// The local role.
        role: String,
        /// The bind or accept failure, naming the address.
        #[source]
        source: TransportError,
    },

    /// A peer's address is a host name that did not resolve to any address
    /// before the deadline passed.
    #[error(
        "role `{role}` could not resolve `{address}`, the address of `{peer}`, within {deadline:?}{}",
        Lookup(.source.as_ref())
    )]
    Unresolved {
        /// The local role.
        role: String,
        /// The peer whose address did not resolve.
        peer: String,
        /// The peer's address as the table gives it (`host:port`).
        address: String,
        /// The overall deadline.
        deadline: Duration,
        /// The last lookup failure, if a lookup answered at all.
        #[source]
        source: Option<io::Error>,
    },

    /// The deadline passed before every peer was connected.
    #[error(
        "role `{role}` wired no session with {} within {deadline:?}",
        Names(missing)
    )]
    Incomplete {
        /// The local role.
        role: String,
        /// The peers still missing, in table order.
        missing: Vec<String>,
        /// The overall deadline.
        deadline: Duration,
        /// The last failure seen while trying, if any.
        #[source]
        last_error: Option<TransportError>,
    },
}

impl MeshError {
    /// The peers still missing when the deadline passed; empty for other
    /// errors.
    pub fn missing_roles(&self) -> &[String] {
        match self {
            MeshError::Incomplete { missing, .. } => missing,
            MeshError::Unresolved { peer, .. } => std::slice::from_ref(peer),
            _ => &[],
        }
    }
}

/// How a lookup ended, after the text of [`MeshError::Unresolved`].
struct Lookup<'a>(Option<&'a io::Error>);

impl fmt::Display for Lookup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => write!(f, ": {e}"),
            None => f.write_str(" (no lookup answered in time)"),
        }
    }
}

/// Where a role of a [`Mesh`] is reached, or listens: a socket address, or
/// a host name and a port.
///
/// A name is resolved (by the mesh's [`Resolve`]r, the system's by
/// default) every time it is used: before each dial attempt, so a peer
/// that comes back under a new address of the same name is found on the
/// next retry, and when the role binds its listener.
///
/// Parsed from `host:port`, `1.2.3.4:port` or `[v6]:port`:
///
/// ```
/// use rumpsteak_aura_net::tcp::MeshAddress;
///
/// let name: MeshAddress = "seller.shop.internal:7000".parse()?;
/// assert_eq!(name, MeshAddress::name("seller.shop.internal", 7000));
/// let v6: MeshAddress = "[::1]:7000".parse()?;
/// assert_eq!(v6, MeshAddress::Socket("[::1]:7000".parse()?));
/// assert_eq!(v6.port(), 7000);
///
/// let err = "seller.shop.internal".parse::<MeshAddress>().unwrap_err();
/// assert_eq!(err.to_string(), "`seller.shop.internal` has no port (write `host:port`)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MeshAddress {
    /// An IP address and port, used as they are.
    Socket(SocketAddr),
    /// A host name and port, resolved each time the address is used.
    Name {
        /// The host name (`seller.shop.internal`, `localhost`).
        host: String,
        /// The port.
        port: u16,
    },
}

impl MeshAddress {
    /// A host name and port. The name is not checked here; parse a
    /// `host:port` string to check it.
    pub fn name(host: impl Into<String>, port: u16) -> Self {
        MeshAddress::Name {
            host: host.into(),
            port,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            MeshAddress::Socket(addr) => addr.port(),
            MeshAddress::Name { port, .. } => *port,
        }
    }

    /// The socket addresses this address stands for now: itself, or what
    /// `resolver` answers for the name (an error if it answers none).
    pub async fn resolve(&self, resolver: &dyn Resolve) -> io::Result<Vec<SocketAddr>> {
        match self {
            MeshAddress::Socket(addr) => Ok(vec![*addr]),
            MeshAddress::Name { host, port } => {
                let addrs = resolver.resolve(host, *port).await?;
                if addrs.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("`{host}` resolved to no address"),
                    ));
                }
                Ok(addrs)
            }
        }
    }
}

impl MeshAddress {
    /// A failed lookup of this address as a transport error: an I/O
    /// error of the lookup's kind (so a caller that retries I/O errors
    /// retries it) whose text names this address before the lookup's
    /// own, and whose source is the lookup's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use rumpsteak_aura_net::tcp::MeshAddress;
    ///
    /// let at = MeshAddress::name("seller.shop.internal", 7000);
    /// let e = at.lookup_error(io::Error::new(io::ErrorKind::NotFound, "no such host"));
    /// assert_eq!(
    ///     e.to_string(),
    ///     "i/o error: resolve `seller.shop.internal:7000`: no such host"
    /// );
    /// ```
    pub fn lookup_error(&self, source: io::Error) -> TransportError {
        let kind = source.kind();
        TransportError::io(io::Error::new(
            kind,
            Unresolved {
                address: self.to_string(),
                source,
            },
        ))
    }
}

impl From<SocketAddr> for MeshAddress {
    fn from(addr: SocketAddr) -> Self {
        MeshAddress::Socket(addr)
    }
}

impl fmt::Display for MeshAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeshAddress::Socket(addr) => addr.fmt(f),
            MeshAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Why a text is not a [`MeshAddress`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// There is no `:port` at the end.
    #[error("`{0}` has no port (write `host:port`)")]
    NoPort(String),
    /// The port is not a number from 0 to 65535.
    #[error("`{input}`: the port `{port}` is not a number from 0 to 65535")]
    BadPort {
        /// The whole address.
        input: String,
        /// The text after the last `:`.
        port: String,
    },
    /// The host is neither an IP address nor a host name.
    #[error("`{input}`: {reason}")]
    BadHost {
        /// The whole address.
        input: String,
        /// What is wrong with the host part.
        reason: &'static str,
    },
}

impl FromStr for MeshAddress {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, AddressError> {
        if let Ok(addr) = input.parse::<SocketAddr>() {
            return Ok(MeshAddress::Socket(addr));
        }
        let bad_host = |reason| AddressError::BadHost {
            input: input.to_string(),
            reason,
        };
        // `[v6]` alone: the last `:` is inside the brackets.
        if let Some(inner) = input.strip_prefix('[').and_then(|s| s.strip_suffix(']'))
            && !inner.contains(['[', ']'])
        {
            return Err(AddressError::NoPort(input.to_string()));
        }
        let Some((host, port)) = input.rsplit_once(':') else {
            return Err(AddressError::NoPort(input.to_string()));
        };
        if port.is_empty() {
            return Err(AddressError::NoPort(input.to_string()));
        }
        // Digits only: `u16::from_str` also takes a leading `+`.
        let port = port
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| port.parse::<u16>().ok())
            .flatten()
            .ok_or_else(|| AddressError::BadPort {
                input: input.to_string(),
                port: port.to_string(),
            })?;
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            // A good port, so the address in brackets is what is wrong.
            return Err(match inner.split_once('%') {
                Some((ip, zone))
                    if ip.parse::<std::net::Ipv6Addr>().is_ok()
                        && !zone.is_empty()
                        && zone.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    bad_host(
                        "the zone of a scoped IPv6 address is not an interface index (below 2^32)",
                    )
                }
                Some((ip, _)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => bad_host(
                    "the zone of a scoped IPv6 address must be a number (the interface \
                     index, as in `[fe80::1%2]:7000`), not an interface name",
                ),
                _ => bad_host("not an IPv6 address in brackets"),
            });
        }
        if host.starts_with('[') || host.ends_with(']') {
            return Err(bad_host("not an IPv6 address in brackets"));
        }
        if host.contains(':') {
            return Err(bad_host(
                "an IPv6 address needs brackets, as in `[::1]:7000`",
            ));
        }
        if host.is_empty() {
            return Err(bad_host("the host name is empty"));
        }
        if host.len() > 253 {
            return Err(bad_host("the host name is longer than 253 bytes"));
        }
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        // A final dot (a fully qualified name) is allowed.
        let labels = host.strip_suffix('.').unwrap_or(host);
        if !labels.split('.').all(label_ok) {
            return Err(bad_host(
                "not a host name (dot-separated labels of letters, digits, `-` and `_`)",
            ));
        }
        if labels
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad_host("not an IPv4 address"));
        }
        Ok(MeshAddress::Name {
            host: host.to_string(),
            port,
        })
    }
}

/// One role's row of a [`Mesh`] table: the address its peers dial (the
/// advertised address), and, if it differs, the address it listens on.
///
/// A role in a container or behind NAT listens on `0.0.0.0:7000` or
/// `[::]:7000` while its peers dial `seller.shop.internal:7000`:
///
/// ```
/// use rumpsteak_aura_net::tcp::MeshEntry;
///
/// let seller = MeshEntry::new("seller.shop.internal:7000".parse()?)
///     .with_bind("[::]:7000".parse()?);
/// assert_eq!(seller.address().to_string(), "seller.shop.internal:7000");
/// assert_eq!(seller.listen_address().to_string(), "[::]:7000");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MeshEntry {
    address: MeshAddress,
    bind: Option<MeshAddress>,
}

impl MeshEntry {
    /// A role reached at `address`, which it also listens on.
    pub fn new(address: MeshAddress) -> Self {
        MeshEntry {
            address,
            bind: None,
        }
    }

    /// Listens on `bind` instead of the advertised address (a name is
    /// resolved, and the first of its addresses that can be bound is).
    pub fn with_bind(mut self, bind: MeshAddress) -> Self {
        self.bind = Some(bind);
        self
    }

    /// The address peers dial.
    pub fn address(&self) -> &MeshAddress {
        &self.address
    }

    /// The bind address, if one was set.
    pub fn bind(&self) -> Option<&MeshAddress> {
        self.bind.as_ref()
    }

    /// The address the role listens on: the bind address, or else the
    /// advertised one.
    pub fn listen_address(&self) -> &MeshAddress {
        self.bind.as_ref().unwrap_or(&self.address)
    }
}

impl From<SocketAddr> for MeshEntry {
    fn from(addr: SocketAddr) -> Self {
        MeshEntry::new(MeshAddress::Socket(addr))
    }
}

impl From<MeshAddress> for MeshEntry {
    fn from(address: MeshAddress) -> Self {
        MeshEntry::new(address)
    }
}

/// What a [`Resolve`]r's lookup returns.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns the host names of a [`Mesh`] table into socket addresses.
///
/// [`SystemResolver`] (the default) asks the operating system, as
/// `tokio::net::lookup_host` does: `/etc/hosts`, DNS, and whatever else
/// the system is configured with. Another resolver can serve names from a
/// service registry, or, in tests, from a table the test changes.
///
/// # Examples
///
/// ```
/// use std::net::SocketAddr;
/// use rumpsteak_aura_net::tcp::{Resolve, ResolveFuture};
///
/// /// Every name is the same loopback port.
/// #[derive(Debug)]
/// struct Fixed(SocketAddr);
///
/// impl Resolve for Fixed {
///     fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
///         Box::pin(async move { Ok(vec![self.0]) })
///     }
/// }
/// # let _ = Fixed("127.0.0.1:7000".parse().unwrap());
/// ```
pub trait Resolve: Send + Sync + fmt::Debug + 'static {
    /// The socket addresses of `host` with `port`, in the order to try
    /// them.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The operating system's resolver (`tokio::net::lookup_host`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// The rows of a mesh: socket addresses only (as [`Mesh::new`] takes
/// them), or entries.
enum Table<R> {
    Sockets(Vec<(R, SocketAddr)>),
    Entries {
        entries: Vec<(R, MeshEntry)>,
        /// The rows whose advertised address is a socket address, for
        /// [`Mesh::table`].
        sockets: Vec<(R, SocketAddr)>,
    },
}

impl<R> Table<R> {
    fn len(&self) -> usize {
        match self {
            Table::Sockets(rows) => rows.len(),
            Table::Entries { entries, .. } => entries.len(),
        }
    }

    fn role(&self, i: usize) -> &R {
        match self {
            Table::Sockets(rows) => &rows[i].0,
            Table::Entries { entries, .. } => &entries[i].0,
        }
    }

    fn entry(&self, i: usize) -> MeshEntry {
        match self {
            Table::Sockets(rows) => MeshEntry::from(rows[i].1),
            Table::Entries { entries, .. } => entries[i].1.clone(),
        }
    }

    fn roles(&self) -> impl Iterator<Item = &R> {
        (0..self.len()).map(|i| self.role(i))
    }
}

use crate::handshake::{Escaped, Names};

type NameFn<R> = Arc<dyn Fn(&R) -> String + Send + Sync>;

/// Every session of one role in a multi-party protocol, from a table of
/// role addresses shared by all roles.
///
/// Every pair of roles connects exactly once, by one rule: **the role
/// earlier in the table listens, the later one dials.** So the first role
/// only listens, the last only dials, and a role's own address is used only
/// if some role comes after it. Dialing retries with exponential backoff
/// while a peer is still starting (connection refused, reset, timed out)
/// and after a handshake refusal (the peer may be refusing a role that an
/// unfinished handshake still holds, or not be wired up yet), all within one
/// overall deadline; its error names the roles still missing and the last
/// failure seen.
///
/// A role is taken only by a **completed** handshake: a connection that
/// greets as a role and never confirms holds nothing, and the real peer's
/// handshake runs beside it. Once a role is wired, a later connection
/// claiming it is refused with `role ... is already connected`.
/// Plain-text handshakes prove nothing about who is dialing: on an untrusted
/// network, a peer that completes the handshake first as some role is taken
/// for it.
///
/// # Addresses
///
/// [`Mesh::new`] takes one socket address per role, used both to listen
/// and to dial. [`Mesh::from_entries`] takes [`MeshEntry`]s instead: an
/// advertised address that peers dial, which may be a host name and port
/// (`seller.shop.internal:7000`, `localhost:7000`), and optionally a
/// different address to listen on (`0.0.0.0:7000`, `[::]:7000`). Names are
/// resolved (by [`with_resolver`](Mesh::with_resolver)'s resolver, the
/// system's by default) before every dial attempt, so a peer restarted
/// under a new address or port of the same name is found on a retry; every
/// address a name resolves to is tried in turn. A lookup that takes longer
/// than the options' connect timeout counts as a failed attempt, and the
/// next attempt looks the name up afresh. A name that never resolves
/// before the deadline ends the wiring with [`MeshError::Unresolved`],
/// naming the role and the name. IPv4 and IPv6 addresses both work.
///
/// Roles are named by their `Debug` form unless
/// [`with_role_names`](Mesh::with_role_names) says otherwise; all processes
/// must use the same names and the same table order.
///
/// The sessions come back as `(peer, session)` pairs to register with the
/// handler's endpoint (`endpoint.register_session(peer, session)`).
///
/// # Examples
///
/// Three roles in one process, each wiring itself as it would in its own:
///
/// ```
/// use std::net::SocketAddr;
/// use rumpsteak_aura_net::tcp::Mesh;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// enum Role { Buyer, Coordinator, Seller }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Reserve ephemeral ports for the two roles that listen.
/// let buyer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let coordinator = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let unused: SocketAddr = "127.0.0.1:9".parse()?; // the last role never listens
/// let mesh = Mesh::new([
///     (Role::Buyer, buyer.local_addr()?),
///     (Role::Coordinator, coordinator.local_addr()?),
///     (Role::Seller, unused),
/// ]);
///
/// let (b, c, s) = tokio::join!(
///     mesh.connect_with_listener(&Role::Buyer, buyer),
///     mesh.connect_with_listener(&Role::Coordinator, coordinator),
///     mesh.connect(&Role::Seller),
/// );
/// let mut seller = s?;
/// let peers: Vec<Role> = seller.iter().map(|(peer, _)| *peer).collect();
/// assert_eq!(peers, [Role::Buyer, Role::Coordinator]);
///
/// let mut buyer = b?;
/// seller[0].1.send_frame(b"hello buyer".to_vec()).await?;
/// assert_eq!(buyer[1].1.recv_frame().await?, b"hello buyer");
/// # drop(c?);
/// # Ok(())
/// # }
/// ```
pub struct Mesh<R> {
    table: Table<R>,
    resolver: Arc<dyn Resolve>,
    options: TcpOptions,
    deadline: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    names: NameFn<R>,
    transport: MeshTransport,
}

/// Which network a [`Mesh`] wires its sessions over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshTransport {
    /// TCP connections (over TLS when the options carry an identity).
    #[default]
    Tcp,
    /// WebSocket connections (`wss` when the options carry an identity).
    #[cfg(feature = "websocket")]
    WebSocket,
    /// QUIC connections over UDP; the options must carry an identity.
    #[cfg(feature = "quic")]
    Quic,
}

/// The listener of the role being wired.
enum Listening {
    Tcp(SessionListener),
    #[cfg(feature = "websocket")]
    WebSocket(crate::websocket::WebSocketListener),
    #[cfg(feature = "quic")]
    Quic(crate::quic::QuicListener),
}

impl Listening {
    async fn accept_checked(&self, allow: &mut crate::handshake::Allow<'_>) -> Accepted {
        match self {
            Listening::Tcp(l) => l.accept_checked(allow).await,
            #[cfg(feature = "websocket")]
            Listening::WebSocket(l) => l.accept_checked(allow).await,
            #[cfg(feature = "quic")]
            Listening::Quic(l) => l.accept_checked(allow).await,
        }
    }
}

/// A socket the caller bound for the role being wired.
enum Bound {
    Tcp(TcpListener),
    #[cfg(feature = "quic")]
    Udp(std::net::UdpSocket),
}

impl<R: fmt::Debug> Mesh<R> {
    /// A mesh over `table`, in the order given. Defaults: [`TcpOptions::new`],
    /// a 30 s deadline, retries from 20 ms doubling up to 500 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_net::tcp::{Mesh, TcpOptions};
    ///
    /// let mesh = Mesh::new([
    ///     ("Buyer", "127.0.0.1:7001".parse().unwrap()),
    ///     ("Seller", "127.0.0.1:7002".parse().unwrap()),
    /// ])
    /// .with_role_names(|role: &&str| role.to_string())
    /// .with_options(TcpOptions::new().with_read_deadline(Duration::from_secs(60)))
    /// .with_deadline(Duration::from_secs(10));
    /// assert!(mesh.listens(&"Buyer"));
    /// assert!(!mesh.listens(&"Seller"));
    /// ```
    pub fn new(table: impl IntoIterator<Item = (R, SocketAddr)>) -> Self {
        Self::over(Table::Sockets(table.into_iter().collect()))
    }

    fn over(table: Table<R>) -> Self {
        Mesh {
            table,
            resolver: Arc::new(SystemResolver),
            options: TcpOptions::new(),
            deadline: Duration::from_secs(30),
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(500),
            names: Arc::new(|role: &R| format!("{role:?}")),
            transport: MeshTransport::Tcp,
        }
    }
}

impl<R: fmt::Debug + Clone> Mesh<R> {
    /// A mesh over a table of [`MeshEntry`]s (or anything that converts
    /// into one: a `SocketAddr`, a [`MeshAddress`]), in the order given;
    /// the defaults of [`Mesh::new`].
    ///
    /// # Examples
    ///
    /// A role listening on every interface, reached by name, beside one
    /// reached by an IPv6 address:
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::{Mesh, MeshAddress, MeshEntry};
    ///
    /// let mesh = Mesh::from_entries([
    ///     ("Buyer", MeshEntry::new("localhost:7001".parse()?).with_bind("[::]:7001".parse()?)),
    ///     ("Seller", MeshEntry::new("[::1]:7002".parse()?)),
    /// ]);
    /// let (role, buyer) = mesh.entries().next().unwrap();
    /// assert_eq!((*role, buyer.address()), ("Buyer", &MeshAddress::name("localhost", 7001)));
    /// assert!(mesh.listens(&"Buyer"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_entries<E: Into<MeshEntry>>(table: impl IntoIterator<Item = (R, E)>) -> Self {
        let entries: Vec<(R, MeshEntry)> = table.into_iter().map(|(r, e)| (r, e.into())).collect();
        let sockets = entries
            .iter()
            .filter_map(|(r, e)| match e.address() {
                MeshAddress::Socket(addr) => Some((r.clone(), *addr)),
                MeshAddress::Name { .. } => None,
            })
            .collect();
        Self::over(Table::Entries { entries, sockets })
    }
}

impl<R> Mesh<R> {
    /// Resolves the table's host names with `resolver` instead of the
    /// system's resolver.
    pub fn with_resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Sets the options of every session.
    pub fn with_options(mut self, options: TcpOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the overall deadline for wiring every session.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the dial retry backoff: the first wait (at least 1 ms), doubled
    /// after each failure up to `max`.
    pub fn with_retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        // A zero wait would retry a refused connection in a hot loop.
        self.retry_initial = initial.max(Duration::from_millis(1));
        self.retry_max = max.max(self.retry_initial);
        self
    }

    /// Names roles with `names` instead of their `Debug` form, in the
    /// handshake and in errors.
    pub fn with_role_names(mut self, names: impl Fn(&R) -> String + Send + Sync + 'static) -> Self {
        self.names = Arc::new(names);
        self
    }

    /// Wires the sessions over `transport` (TCP by default). All processes
    /// of one protocol must use the same.
    pub fn with_transport(mut self, transport: MeshTransport) -> Self {
        self.transport = transport;
        self
    }

    /// The transport the sessions are wired over.
    pub fn transport(&self) -> MeshTransport {
        self.transport
    }

    /// The rows whose advertised address is a socket address, in order:
    /// the whole table of a mesh made by [`Mesh::new`]. Rows given by host
    /// name are left out; [`entries`](Mesh::entries) has every row.
    pub fn table(&self) -> &[(R, SocketAddr)] {
        match &self.table {
            Table::Sockets(rows) => rows,
            Table::Entries { sockets, .. } => sockets,
        }
    }

    /// Every row of the table, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&R, MeshEntry)> {
        (0..self.table.len()).map(|i| (self.table.role(i), self.table.entry(i)))
    }

    /// The options of every session.
    pub fn options(&self) -> &TcpOptions {
        &self.options
    }

    /// The overall deadline for wiring every session.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The dial retry backoff: the first wait and the longest.
    pub fn retry_backoff(&self) -> (Duration, Duration) {
        (self.retry_initial, self.retry_max)
    }

    /// The resolver of the table's host names.
    pub fn resolver(&self) -> Arc<dyn Resolve> {
        Arc::clone(&self.resolver)
    }

    /// The name of `role` in the handshake and in errors: its `Debug` form,
    /// or what [`with_role_names`](Mesh::with_role_names) says.
    pub fn role_name(&self, role: &R) -> String {
        (self.names)(role)
    }

    /// The name of the role at `index` in the table, if there is one.
    fn name_at(&self, index: usize) -> Option<String> {
        (index < self.table.len()).then(|| (self.names)(self.table.role(index)))
    }

    /// What this mesh's dials use (the resolver, the transport, the
    /// options and the retry backoff), as one value that owns them, so
    /// that a dial can outlive the borrow of the mesh: a session that
    /// redials its peer keeps one. [`connect`](Mesh::connect) dials with
    /// the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_net::tcp::Mesh;
    ///
    /// let mesh = Mesh::new([("Buyer", "127.0.0.1:7001".parse().unwrap())])
    ///     .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(50));
    /// let dialer = mesh.dialer();
    /// assert_eq!(dialer.retry_wait(0), Duration::from_millis(10));
    /// assert_eq!(dialer.retry_wait(2), Duration::from_millis(40));
    /// assert_eq!(dialer.retry_wait(3), Duration::from_millis(50));
    /// ```
    pub fn dialer(&self) -> MeshDialer {
        MeshDialer {
            resolver: Arc::clone(&self.resolver),
            transport: self.transport,
            options: self.options.clone(),
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
        }
    }
}

impl<R: Clone + PartialEq + Send + Sync> Mesh<R> {
    /// Whether `role` listens on its own address (some role comes after it
    /// in the table).
    pub fn listens(&self, role: &R) -> bool {
        self.table
            .roles()
            .position(|r| r == role)
            .is_some_and(|i| i + 1 < self.table.len())
    }

    /// Wires every session of `local`, binding its table address (its
    /// bind address if it has one, else its advertised address) if it
    /// listens.
    ///
    /// Returns the sessions in table order, one per other role.
    pub async fn connect(&self, local: &R) -> Result<Vec<(R, RumpsteakSession)>, MeshError> {
        self.run(local, None).await
    }

    /// Like [`connect`](Mesh::connect), but accepts on `listener` instead of
    /// binding the table address: the way to use ephemeral ports. The
    /// listener is not needed (and is dropped) when `local` is last.
    ///
    /// For TCP and WebSocket meshes; a QUIC mesh takes a UDP socket
    /// ([`connect_with_socket`](Mesh::connect_with_socket)).
    pub async fn connect_with_listener(
        &self,
        local: &R,
        listener: TcpListener,
    ) -> Result<Vec<(R, RumpsteakSession)>, MeshError> {
        self.run(local, Some(Bound::Tcp(listener))).await
    }

    /// Like [`connect`](Mesh::connect) for a QUIC mesh, but accepts on
    /// `socket` instead of binding the table address.
    #[cfg(feature = "quic")]
    pub async fn connect_with_socket(
        &self,
        local: &R,
        socket: std::net::UdpSocket,
    ) -> Result<Vec<(R, RumpsteakSession)>, MeshError> {
        self.run(local, Some(Bound::Udp(socket))).await
    }

    /// The listener of the role at index `me`.
    async fn listen(
        &self,
        me: usize,
        name: &str,
        bound: Option<Bound>,
    ) -> Result<Listening, TransportError> {
        let entry = self.table.entry(me);
        let at = entry.listen_address();
        // What to bind, unless the caller bound it already.
        let addrs = match bound {
            Some(_) => Vec::new(),
            None => at
                .resolve(&*self.resolver)
                .await
                .map_err(|e| at.lookup_error(e))?,
        };
        let addrs = &addrs;
        let tcp = |bound: Option<Bound>| async move {
            match bound {
                Some(Bound::Tcp(l)) => Ok(l),
                None => first_bound(addrs, |a| super::bind_listener(a, &self.options)).await,
                #[cfg(feature = "quic")]
                Some(Bound::Udp(_)) => Err(wrong_socket("a TCP listener", "a UDP socket")),
            }
        };
        match self.transport {
            MeshTransport::Tcp => Ok(Listening::Tcp(SessionListener::from_listener(
                tcp(bound).await?,
                name,
                &self.options,
            )?)),
            #[cfg(feature = "websocket")]
            MeshTransport::WebSocket => Ok(Listening::WebSocket(
                crate::websocket::WebSocketListener::from_listener(
                    tcp(bound).await?,
                    name,
                    &self.options,
                )?,
            )),
            #[cfg(feature = "quic")]
            MeshTransport::Quic => {
                let socket = match bound {
                    Some(Bound::Udp(socket)) => socket,
                    None => {
                        first_bound(addrs, |addr| async move {
                            std::net::UdpSocket::bind(addr)
                                .map_err(|e| super::at_address("listen on", addr, e))
                        })
                        .await?
                    }
                    Some(Bound::Tcp(_)) => {
                        return Err(wrong_socket("a UDP socket", "a TCP listener"));
                    }
                };
                Ok(Listening::Quic(crate::quic::QuicListener::from_socket(
                    socket,
                    name,
                    &self.options,
                )?))
            }
        }
    }

    async fn run(
        &self,
        local: &R,
        bound: Option<Bound>,
    ) -> Result<Vec<(R, RumpsteakSession)>, MeshError> {
        let started = Instant::now();
        let deadline_at = started + self.deadline;
        let names: Vec<String> = self.table.roles().map(|r| (self.names)(r)).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(MeshError::DuplicateRole(name.clone()));
            }
        }
        let Some(me) = self.table.roles().position(|r| r == local) else {
            return Err(MeshError::NotInTable((self.names)(local)));
        };
        let my_name = names[me].as_str();

        let listener = if me + 1 < self.table.len() {
            // Binding waits for nothing but a lookup of a bind name, which
            // the deadline bounds too.
            let listening = tokio::time::timeout_at(deadline_at, self.listen(me, my_name, bound))
                .await
                .unwrap_or_else(|_| {
                    Err(TransportError::io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no lookup of `{}` answered within {:?}",
                            self.table.entry(me).listen_address(),
                            self.deadline
                        ),
                    )))
                });
            Some(listening.map_err(|source| MeshError::Listen {
                role: my_name.to_string(),
                source,
            })?)
        } else {
            None
        };

        let dialer = self.dialer();
        let mut wiring = Wiring {
            mesh: self,
            names: &names,
            me,
            listener: listener.as_ref(),
            later: &names[me + 1..],
            claimed: Arc::new(Mutex::new(HashSet::new())),
            sessions: (0..self.table.len()).map(|_| None).collect(),
            dialer: &dialer,
            attempts: MeshAttempts::new(self, me),
            pending: FuturesUnordered::new(),
        };
        wiring.start();
        while wiring.missing() > 0 {
            match tokio::time::timeout_at(deadline_at, wiring.pending.next()).await {
                Ok(Some(event)) => wiring.handle(event)?,
                // Nothing left to wait for: cannot happen while roles are
                // missing, since every missing role has a dial or an accept
                // pending. Reported as incomplete rather than trusted.
                Ok(None) | Err(_) => break,
            }
        }
        wiring.finish()
    }
}

enum Event {
    Dialed {
        peer: usize,
        attempt: u32,
        result: Result<RumpsteakSession, DialError>,
    },
    /// A handshake on this role's listener ended.
    Admitted(Accepted),
}

/// What the lookups of one peer's name have given so far.
#[derive(Debug, Default)]
struct LookupState {
    /// Whether a lookup ever answered with addresses.
    answered: bool,
    /// The last lookup failure, while no lookup has answered.
    failure: Option<io::Error>,
}

type Pending<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = Event> + Send + 'a>>>;

struct Wiring<'a, R> {
    mesh: &'a Mesh<R>,
    names: &'a [String],
    me: usize,
    listener: Option<&'a Listening>,
    /// The roles that dial this one.
    later: &'a [String],
    /// Roles whose handshake completed, so that a later connection
    /// claiming the same role is refused.
    claimed: Arc<Mutex<HashSet<String>>>,
    sessions: Vec<Option<RumpsteakSession>>,
    dialer: &'a MeshDialer,
    attempts: MeshAttempts,
    pending: Pending<'a>,
}

impl<'a, R: Clone + PartialEq + Send + Sync> Wiring<'a, R> {
    fn missing(&self) -> usize {
        (0..self.sessions.len())
            .filter(|&i| i != self.me && self.sessions[i].is_none())
            .count()
    }

    fn start(&mut self) {
        for peer in 0..self.me {
            self.dial(peer, 0, Duration::ZERO);
        }
        self.accept();
    }

    fn dial(&mut self, peer: usize, attempt: u32, wait: Duration) {
        let (dialer, names) = (self.dialer, self.names);
        let (me, them) = (names[self.me].as_str(), names[peer].as_str());
        let entry = self.mesh.table.entry(peer);
        self.pending.push(Box::pin(async move {
            tokio::time::sleep(wait).await;
            let result = dialer.dial(entry.address(), me, them).await;
            Event::Dialed {
                peer,
                attempt,
                result,
            }
        }));
    }

    /// Waits for the next completed handshake on the listener. Every
    /// connection's handshake runs in its own task, so one that greets and
    /// never confirms delays nobody; a role is claimed only when its
    /// handshake completes.
    fn accept(&mut self) {
        let Some(listener) = self.listener else {
            return;
        };
        let later = self.later;
        let claimed = Arc::clone(&self.claimed);
        self.pending.push(Box::pin(async move {
            let mut allow = |from: &str| -> Result<(), Refusal> {
                if !later.iter().any(|n| n == from) {
                    return Err(Refusal::new(
                        RefusalReason::WrongRole,
                        format!("one of {}", Names(later)),
                        from,
                    ));
                }
                if lock(&claimed).contains(from) {
                    return Err(Refusal::new(
                        RefusalReason::DuplicateRole,
                        "a role not connected yet",
                        from,
                    )
                    .with_detail(format!("role `{}` is already connected", Escaped(from))));
                }
                Ok(())
            };
            Event::Admitted(listener.accept_checked(&mut allow).await)
        }));
    }

    fn handle(&mut self, event: Event) -> Result<(), MeshError> {
        match event {
            Event::Dialed {
                peer,
                result: Ok(session),
                ..
            } => {
                self.attempts.connected(peer);
                self.sessions[peer] = Some(session);
            }
            Event::Dialed {
                peer,
                attempt,
                result: Err(failure),
            } => {
                // Refusals too: "already connected" while a stale claim is
                // pending, or a peer whose table differs, shows in the
                // deadline error as the last failure.
                self.attempts.failed(peer, failure);
                let wait = self.dialer.retry_wait(attempt);
                self.dial(peer, attempt.saturating_add(1), wait);
            }
            Event::Admitted(Ok((name, session))) => {
                // The first completed handshake takes the role; a second one
                // that completed meanwhile is dropped (its peer sees the
                // connection close).
                if let Some(i) = self.names.iter().position(|n| *n == name)
                    && self.sessions[i].is_none()
                    && lock(&self.claimed).insert(name)
                {
                    self.sessions[i] = Some(session);
                }
                self.accept();
            }
            Event::Admitted(Err(e)) => {
                // A refused or failed handshake, or accepting itself failed
                // (the admission then pauses accepting on its own): note it
                // and go on at once, so that no failure delays the verdicts
                // other connections wait for.
                self.attempts.note(e);
                self.accept();
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<(R, RumpsteakSession)>, MeshError> {
        let missing: Vec<usize> = (0..self.sessions.len())
            .filter(|&i| i != self.me && self.sessions[i].is_none())
            .collect();
        if let Some(e) = self.attempts.unresolved(self.mesh, &missing) {
            return Err(e);
        }
        if !missing.is_empty() {
            let last_error = self.attempts.take_last_error();
            return Err(self.attempts.incomplete(self.mesh, &missing, last_error));
        }
        Ok(self
            .mesh
            .table
            .roles()
            .zip(self.sessions)
            .filter_map(|(role, session)| Some((role.clone(), session?)))
            .collect())
    }
}

/// How the peers of a [`Mesh`] are dialed: the mesh's resolver,
/// transport, session options and retry backoff, owned apart from the
/// table (see [`Mesh::dialer`]).
#[derive(Clone, Debug)]
pub struct MeshDialer {
    resolver: Arc<dyn Resolve>,
    transport: MeshTransport,
    options: TcpOptions,
    retry_initial: Duration,
    retry_max: Duration,
}

impl MeshDialer {
    /// The transport it dials over.
    pub fn transport(&self) -> MeshTransport {
        self.transport
    }

    /// The options of every session it dials.
    pub fn options(&self) -> &TcpOptions {
        &self.options
    }

    /// One dial attempt at a peer's advertised `address`, handshaking as
    /// `me` with `them`: looks a name up (again, on every attempt; a
    /// lookup that takes longer than the options' connect timeout fails)
    /// and tries each address in turn until one answers. A refusal or a
    /// failed handshake ends the attempt at once: a rumpsteak-aura peer
    /// answered there.
    pub async fn dial(
        &self,
        address: &MeshAddress,
        me: &str,
        them: &str,
    ) -> Result<RumpsteakSession, DialError> {
        let lookup_failed = |source| DialError::Lookup {
            address: address.clone(),
            source,
        };
        // One lookup may take as long as one connection attempt: a lookup
        // that never answers would otherwise hold up every later attempt at
        // this peer, and so every fresh lookup, until the deadline.
        let limit = self.options.connect_timeout();
        let addrs = match tokio::time::timeout(limit, address.resolve(&*self.resolver)).await {
            Ok(lookup) => lookup.map_err(lookup_failed)?,
            Err(_) => {
                return Err(lookup_failed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer to the lookup within {limit:?} (the connect timeout)"),
                )));
            }
        };
        let mut last = None;
        for addr in addrs {
            match dial(self.transport, addr, me, them, &self.options).await {
                Ok(session) => return Ok(session),
                Err(e) if matches!(e.kind(), TransportErrorKind::Io(_)) => last = Some(e),
                Err(e) => return Err(DialError::Transport(e)),
            }
        }
        // `resolve` answers at least one address, so `last` is set; were it
        // not, say so rather than trust it.
        Err(DialError::Transport(last.unwrap_or_else(|| {
            address.lookup_error(io::Error::new(
                io::ErrorKind::NotFound,
                "no address to dial",
            ))
        })))
    }

    /// The wait after failed attempt number `attempt` (from 0): the
    /// backoff's first wait, doubled for each attempt before, at most the
    /// backoff's longest.
    pub fn retry_wait(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.retry_initial
            .saturating_mul(factor)
            .min(self.retry_max)
    }
}

/// Why one [`MeshDialer::dial`] attempt failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The peer's name did not resolve, or no lookup answered within the
    /// options' connect timeout.
    #[error("resolve `{address}`: {source}")]
    Lookup {
        /// The address looked up.
        address: MeshAddress,
        /// The lookup's failure.
        #[source]
        source: io::Error,
    },
    /// A connection failed at every address (this is the last failure),
    /// or the peer refused the handshake or failed it.
    #[error(transparent)]
    Transport(TransportError),
}

impl DialError {
    /// As a transport error: a failed lookup as
    /// [`MeshAddress::lookup_error`] makes it.
    pub fn into_transport(self) -> TransportError {
        match self {
            DialError::Lookup { address, source } => address.lookup_error(source),
            DialError::Transport(e) => e,
        }
    }
}

/// What one role's dials at its peers have shown while it wires its
/// sessions, and the [`MeshError`] its wiring ends with when peers are
/// missing at the deadline: the bookkeeping of [`Mesh::connect`], for a
/// layer that wires a mesh's sessions its own way and reports as the mesh
/// does. Roles are named by their index in the mesh's table; an index
/// outside it is ignored.
///
/// # Examples
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use rumpsteak_aura_net::tcp::{DialError, Mesh, MeshAddress, MeshAttempts, MeshError};
///
/// let buyer: MeshAddress = "buyer.shop.internal:7001".parse()?;
/// let seller: MeshAddress = "127.0.0.1:7002".parse()?;
/// let mesh = Mesh::from_entries([("Buyer", buyer.clone()), ("Seller", seller)])
///     .with_role_names(|role: &&str| role.to_string())
///     .with_deadline(Duration::from_secs(1));
/// // Seller (index 1) dials Buyer (index 0), whose name never resolved.
/// let mut attempts = MeshAttempts::new(&mesh, 1);
/// attempts.failed(0, DialError::Lookup {
///     address: buyer,
///     source: io::Error::new(io::ErrorKind::NotFound, "no such host"),
/// });
/// let err = attempts.unresolved(&mesh, &[0]).expect("the name never resolved");
/// assert!(matches!(err, MeshError::Unresolved { ref peer, .. } if peer == "Buyer"));
/// assert_eq!(
///     err.to_string(),
///     "role `Seller` could not resolve `buyer.shop.internal:7001`, the address of `Buyer`, \
///      within 1s: no such host"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MeshAttempts {
    /// The index of the role being wired.
    local: usize,
    /// Per role, the lookups of its name.
    lookups: Vec<LookupState>,
    last_error: Option<TransportError>,
}

impl MeshAttempts {
    /// Nothing seen yet by the role at index `local` of `mesh`'s table.
    pub fn new<R>(mesh: &Mesh<R>, local: usize) -> Self {
        MeshAttempts {
            local,
            lookups: (0..mesh.table.len())
                .map(|_| LookupState::default())
                .collect(),
            last_error: None,
        }
    }

    /// A dial at the role at index `peer` connected (its name resolved).
    pub fn connected(&mut self, peer: usize) {
        if let Some(lookups) = self.lookups.get_mut(peer) {
            lookups.answered = true;
        }
    }

    /// A dial at the role at index `peer` failed: that is the last error
    /// now (a failed lookup as [`DialError::into_transport`] makes it).
    /// A transport failure means the name resolved; a failed lookup is
    /// kept for [`unresolved`](Self::unresolved) while none has.
    pub fn failed(&mut self, peer: usize, failure: DialError) {
        let error = match failure {
            DialError::Transport(e) => {
                self.connected(peer);
                e
            }
            DialError::Lookup { address, source } => {
                // `io::Error` is not `Clone`: the last error gets a copy of
                // the kind and text.
                let last = address.lookup_error(io::Error::new(source.kind(), source.to_string()));
                if let Some(lookups) = self.lookups.get_mut(peer)
                    && !lookups.answered
                {
                    lookups.failure = Some(source);
                }
                last
            }
        };
        self.note(error);
    }

    /// Another failure (an accept, a refused handshake): the last error
    /// now, unless the last error is a [refusal](TransportError::refusal)
    /// and this one is not. A refusal says why the peer will not wire; a
    /// later dial that met no listener, or a dialer that hung up at its
    /// own deadline, says less.
    pub fn note(&mut self, error: TransportError) {
        let keep = self
            .last_error
            .as_ref()
            .is_some_and(|last| last.refusal().is_some())
            && error.refusal().is_none();
        if !keep {
            self.last_error = Some(error);
        }
    }

    /// The last error noted, taken out.
    pub fn take_last_error(&mut self) -> Option<TransportError> {
        self.last_error.take()
    }

    /// [`MeshError::Unresolved`] for the first of the `missing` roles
    /// that the local role dials whose name never resolved, with that
    /// name's last lookup failure, or `None` if there is no such role.
    /// A role whose name never resolved is the error to report, whatever
    /// else is missing.
    pub fn unresolved<R>(&mut self, mesh: &Mesh<R>, missing: &[usize]) -> Option<MeshError> {
        let &peer = missing.iter().find(|&&i| {
            i < self.local
                && i < mesh.table.len()
                && self.lookups.get(i).is_some_and(|l| !l.answered)
                && matches!(mesh.table.entry(i).address(), MeshAddress::Name { .. })
        })?;
        Some(MeshError::Unresolved {
            role: mesh.name_at(self.local)?,
            peer: mesh.name_at(peer)?,
            address: mesh.table.entry(peer).address().to_string(),
            deadline: mesh.deadline,
            source: self.lookups[peer].failure.take(),
        })
    }

    /// [`MeshError::Incomplete`] naming the `missing` roles (in the order
    /// given), with `last_error` as its last error.
    pub fn incomplete<R>(
        &self,
        mesh: &Mesh<R>,
        missing: &[usize],
        last_error: Option<TransportError>,
    ) -> MeshError {
        MeshError::Incomplete {
            role: mesh.name_at(self.local).unwrap_or_default(),
            missing: missing.iter().filter_map(|&i| mesh.name_at(i)).collect(),
            deadline: mesh.deadline,
            last_error,
        }
    }
}

/// Binds the first of `addrs` that `bind` can, or returns the last
/// failure (an I/O error of kind `NotFound` if `addrs` is empty): how a
/// [`Mesh`] binds a listen address whose name resolves to several.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura::TransportError;
/// use rumpsteak_aura_net::tcp::first_bound;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let addrs = ["127.0.0.1:0".parse()?];
/// let listener = first_bound(&addrs, |a| async move {
///     tokio::net::TcpListener::bind(a).await.map_err(TransportError::io)
/// })
/// .await?;
/// assert!(listener.local_addr()?.ip().is_loopback());
/// # Ok(())
/// # }
/// ```
pub async fn first_bound<T, F, Fut>(addrs: &[SocketAddr], bind: F) -> Result<T, TransportError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = Result<T, TransportError>>,
{
    let mut last = None;
    for &addr in addrs {
        match bind(addr).await {
            Ok(bound) => return Ok(bound),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        TransportError::io(io::Error::new(
            io::ErrorKind::NotFound,
            "no address to listen on",
        ))
    }))
}

/// A lookup failure as a transport error naming the address.
#[derive(Debug, thiserror::Error)]
#[error("resolve `{address}`: {source}")]
struct Unresolved {
    address: String,
    #[source]
    source: io::Error,
}

/// Dials one peer over the mesh's transport.
async fn dial(
    transport: MeshTransport,
    addr: SocketAddr,
    me: &str,
    them: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    match transport {
        MeshTransport::Tcp => connect(addr, me, them, options).await,
        #[cfg(feature = "websocket")]
        MeshTransport::WebSocket => crate::websocket::connect(addr, me, them, options).await,
        #[cfg(feature = "quic")]
        MeshTransport::Quic => crate::quic::connect(addr, me, them, options).await,
    }
}

#[cfg(feature = "quic")]
fn wrong_socket(wanted: &str, given: &str) -> TransportError {
    TransportError::other(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("this mesh's transport listens on {wanted}, and was given {given}"),
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The set stays consistent even if a holder panicked mid-insert.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<R: fmt::Debug> fmt::Debug for Mesh<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<_> = self.entries().collect();
        f.debug_struct("Mesh")
            .field("table", &entries)
            .field("resolver", &self.resolver)
            .field("options", &self.options)
            .field("deadline", &self.deadline)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum R {
        A,
        B,
        C,
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn earlier_roles_listen() {
        let mesh = Mesh::new([(R::A, addr()), (R::B, addr()), (R::C, addr())]);
        assert!(mesh.listens(&R::A));
        assert!(mesh.listens(&R::B));
        assert!(!mesh.listens(&R::C));
    }

    #[test]
    fn accessors_give_what_the_builders_set() {
        let mesh = Mesh::new([(R::A, addr()), (R::B, addr())])
            .with_retry_backoff(Duration::from_millis(7), Duration::from_millis(70))
            .with_role_names(|r| format!("role-{r:?}"));
        assert_eq!(
            mesh.retry_backoff(),
            (Duration::from_millis(7), Duration::from_millis(70))
        );
        assert_eq!(mesh.role_name(&R::B), "role-B");
        assert!(format!("{:?}", mesh.resolver()).contains("SystemResolver"));
    }

    #[test]
    fn a_refusal_stays_the_last_error_until_another_refusal() {
        use rumpsteak_aura::{Refusal, RefusalReason};
        let refusal = |reason| TransportError::refused(Refusal::new(reason, "B", "A"));
        let mesh = Mesh::new([(R::A, addr()), (R::B, addr())]);
        let mut seen = MeshAttempts::new(&mesh, 1);
        seen.note(TransportError::closed());
        seen.note(refusal(RefusalReason::Version));
        // A dialer hanging up, or a dial that met no listener, says less.
        seen.note(TransportError::closed());
        seen.failed(
            0,
            DialError::Transport(TransportError::io(io::ErrorKind::ConnectionRefused.into())),
        );
        let last = seen.take_last_error();
        assert_eq!(
            last.as_ref().and_then(|e| e.refusal()).map(|r| r.reason()),
            Some(RefusalReason::Version)
        );
        // A later refusal replaces it; with none noted, nothing is left.
        seen.note(refusal(RefusalReason::Version));
        seen.note(refusal(RefusalReason::WrongRole));
        let last = seen.take_last_error();
        assert_eq!(
            last.as_ref().and_then(|e| e.refusal()).map(|r| r.reason()),
            Some(RefusalReason::WrongRole)
        );
        assert!(seen.take_last_error().is_none());
    }

    #[tokio::test]
    async fn table_errors_are_caught_before_any_io() {
        let mesh = Mesh::new([(R::A, addr()), (R::B, addr())]);
        let err = mesh.connect(&R::C).await.unwrap_err();
        assert_eq!(err.to_string(), "role `C` is not in the address table");

        let mesh = Mesh::new([(R::A, addr()), (R::B, addr())]).with_role_names(|_| "same".into());
        let err = mesh.connect(&R::A).await.unwrap_err();
        assert!(matches!(err, MeshError::DuplicateRole(n) if n == "same"));
    }

    #[tokio::test]
    async fn deadline_names_the_missing_roles() {
        // C dials A and B, neither of which is there: refused until the
        // deadline passes.
        let free = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let mesh = Mesh::new([(R::A, free), (R::B, free), (R::C, free)])
            .with_deadline(Duration::from_millis(200))
            .with_retry_backoff(Duration::from_millis(5), Duration::from_millis(20));
        let started = Instant::now();
        let err = mesh.connect(&R::C).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.missing_roles(), ["A", "B"]);
        assert!(
            err.to_string()
                .starts_with("role `C` wired no session with `A`, `B` within"),
            "{err}"
        );
        let MeshError::Incomplete {
            last_error: Some(last),
            ..
        } = &err
        else {
            panic!("expected the last error, got {err:?}");
        };
        assert!(last.to_string().contains(&free.to_string()), "{last}");
    }
}
