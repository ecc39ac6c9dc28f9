//! Wiring every session of one role from a table of role addresses.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rumpsteak_aura::TransportError;
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
            _ => &[],
        }
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
    table: Vec<(R, SocketAddr)>,
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
        Mesh {
            table: table.into_iter().collect(),
            options: TcpOptions::new(),
            deadline: Duration::from_secs(30),
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(500),
            names: Arc::new(|role: &R| format!("{role:?}")),
            transport: MeshTransport::Tcp,
        }
    }
}

impl<R> Mesh<R> {
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

    /// The table, in order.
    pub fn table(&self) -> &[(R, SocketAddr)] {
        &self.table
    }
}

impl<R: Clone + PartialEq + Send + Sync> Mesh<R> {
    /// Whether `role` listens on its own address (some role comes after it
    /// in the table).
    pub fn listens(&self, role: &R) -> bool {
        self.table
            .iter()
            .position(|(r, _)| r == role)
            .is_some_and(|i| i + 1 < self.table.len())
    }

    /// Wires every session of `local`, binding its table address if it
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
        let addr = self.table[me].1;
        let tcp = |bound: Option<Bound>| async move {
            match bound {
                Some(Bound::Tcp(l)) => Ok(l),
                None => super::bind_listener(addr, &self.options).await,
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
                    None => std::net::UdpSocket::bind(addr)
                        .map_err(|e| super::at_address("listen on", addr, e))?,
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
        let names: Vec<String> = self.table.iter().map(|(r, _)| (self.names)(r)).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(MeshError::DuplicateRole(name.clone()));
            }
        }
        let Some(me) = self.table.iter().position(|(r, _)| r == local) else {
            return Err(MeshError::NotInTable((self.names)(local)));
        };
        let my_name = names[me].as_str();

        let listener = if me + 1 < self.table.len() {
            Some(
                self.listen(me, my_name, bound)
                    .await
                    .map_err(|source| MeshError::Listen {
                        role: my_name.to_string(),
                        source,
                    })?,
            )
        } else {
            None
        };

        let mut wiring = Wiring {
            mesh: self,
            names: &names,
            me,
            listener: listener.as_ref(),
            later: &names[me + 1..],
            claimed: Arc::new(Mutex::new(HashSet::new())),
            sessions: (0..self.table.len()).map(|_| None).collect(),
            last_error: None,
            pending: FuturesUnordered::new(),
        };
        wiring.start();
        let deadline_at = started + self.deadline;
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
        result: Result<RumpsteakSession, TransportError>,
    },
    /// A handshake on this role's listener ended.
    Admitted(Accepted),
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
    last_error: Option<TransportError>,
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
        let (mesh, names) = (self.mesh, self.names);
        let (me, them) = (names[self.me].as_str(), names[peer].as_str());
        let addr = mesh.table[peer].1;
        self.pending.push(Box::pin(async move {
            tokio::time::sleep(wait).await;
            let result = dial(mesh.transport, addr, me, them, &mesh.options).await;
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
            } => self.sessions[peer] = Some(session),
            Event::Dialed {
                peer,
                attempt,
                result: Err(e),
            } => {
                // Refusals too: "already connected" while a stale claim is
                // pending, or a peer whose table differs, shows in the
                // deadline error as the last failure.
                self.last_error = Some(e);
                let factor = 2u32.saturating_pow(attempt.min(16));
                let wait = self
                    .mesh
                    .retry_initial
                    .saturating_mul(factor)
                    .min(self.mesh.retry_max);
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
                self.last_error = Some(e);
                self.accept();
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<(R, RumpsteakSession)>, MeshError> {
        let missing: Vec<String> = (0..self.sessions.len())
            .filter(|&i| i != self.me && self.sessions[i].is_none())
            .map(|i| self.names[i].clone())
            .collect();
        if !missing.is_empty() {
            return Err(MeshError::Incomplete {
                role: self.names[self.me].clone(),
                missing,
                deadline: self.mesh.deadline,
                last_error: self.last_error,
            });
        }
        Ok(self
            .mesh
            .table
            .iter()
            .zip(self.sessions)
            .filter_map(|((role, _), session)| Some((role.clone(), session?)))
            .collect())
    }
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
        f.debug_struct("Mesh")
            .field("table", &self.table)
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
