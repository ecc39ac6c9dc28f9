//! A [`Mesh`] whose sessions are resumable: every pair of roles wired by
//! the mesh's rules, each session a [`ResumableSession`] under one policy.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumpsteak_aura::TransportError;
use rumpsteak_aura_net::tcp::{
    DialError, Mesh, MeshAddress, MeshAttempts, MeshDialer, MeshEntry, MeshError, MeshTransport,
    SessionListener, first_bound,
};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{OnFull, ResumeConfig};
use crate::error::ResumeError;
use crate::listener::{ResumeListener, link_options};
use crate::session::{LinkFuture, Redial, ResumableSession, ResumeHandle};

/// The resume settings every session of a [`ResumeMesh`] gets: those of
/// [`ResumeConfig`] but the session identifier (the mesh options') and
/// the roles (each pair's).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rumpsteak_aura_resume::{OnFull, ResumePolicy};
///
/// let policy = ResumePolicy::new()
///     .with_replay_limits(256, 1 << 20)
///     .with_on_full(OnFull::Fail)
///     .with_reconnect_deadline(Duration::from_secs(5));
/// let config = policy.config_for("auction-7", "Buyer", "Seller");
/// assert_eq!(config.session_id(), "auction-7");
/// assert_eq!(config.peer_role(), "Seller");
/// assert_eq!(config.replay_frames(), 256);
/// assert_eq!(config.reconnect_deadline(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct ResumePolicy {
    /// The settings, with an empty session identifier and roles.
    template: ResumeConfig,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl From<ResumeConfig> for ResumePolicy {
    /// Every setting of `config` but its session identifier and roles.
    fn from(config: ResumeConfig) -> Self {
        let mut template = config;
        template.session_id.clear();
        template.local_role.clear();
        template.peer_role.clear();
        ResumePolicy { template }
    }
}

impl ResumePolicy {
    /// The defaults of [`ResumeConfig::new`].
    pub fn new() -> Self {
        ResumePolicy {
            template: ResumeConfig::new("", "", ""),
        }
    }

    fn map(self, f: impl FnOnce(ResumeConfig) -> ResumeConfig) -> Self {
        ResumePolicy {
            template: f(self.template),
        }
    }

    /// As [`ResumeConfig::with_replay_limits`].
    pub fn with_replay_limits(self, frames: usize, bytes: usize) -> Self {
        self.map(|c| c.with_replay_limits(frames, bytes))
    }

    /// As [`ResumeConfig::with_on_full`].
    pub fn with_on_full(self, on_full: OnFull) -> Self {
        self.map(|c| c.with_on_full(on_full))
    }

    /// As [`ResumeConfig::with_receive_window`].
    pub fn with_receive_window(self, frames: usize) -> Self {
        self.map(|c| c.with_receive_window(frames))
    }

    /// As [`ResumeConfig::with_ack_policy`].
    pub fn with_ack_policy(self, frames: u64, delay: Duration) -> Self {
        self.map(|c| c.with_ack_policy(frames, delay))
    }

    /// As [`ResumeConfig::with_heartbeat`].
    pub fn with_heartbeat(self, heartbeat: Duration, idle_timeout: Duration) -> Self {
        self.map(|c| c.with_heartbeat(heartbeat, idle_timeout))
    }

    /// As [`ResumeConfig::with_reconnect_deadline`]. It bounds every
    /// reconnection after a pair's first link; the mesh deadline bounds
    /// the first links (see [`ResumeMesh`]).
    pub fn with_reconnect_deadline(self, deadline: Duration) -> Self {
        self.map(|c| c.with_reconnect_deadline(deadline))
    }

    /// As [`ResumeConfig::with_backoff`]: the wait between reconnection
    /// attempts. The first links are retried with the mesh's own backoff.
    pub fn with_backoff(self, initial: Duration, max: Duration) -> Self {
        self.map(|c| c.with_backoff(initial, max))
    }

    /// As [`ResumeConfig::with_exchange_timeout`].
    pub fn with_exchange_timeout(self, timeout: Duration) -> Self {
        self.map(|c| c.with_exchange_timeout(timeout))
    }

    /// As [`ResumeConfig::with_identity_check`].
    pub fn with_identity_check(self, check: bool) -> Self {
        self.map(|c| c.with_identity_check(check))
    }

    /// The configuration of one session under this policy.
    pub fn config_for(
        &self,
        session_id: impl Into<String>,
        local_role: impl Into<String>,
        peer_role: impl Into<String>,
    ) -> ResumeConfig {
        let mut config = self.template.clone();
        config.session_id = session_id.into();
        config.local_role = local_role.into();
        config.peer_role = peer_role.into();
        config
    }
}

/// A [`Mesh`] with a resume policy: every session it wires is a
/// [`ResumableSession`] that survives dropped connections, handed back as
/// a plain [`RumpsteakSession`] (so an endpoint registers it unchanged)
/// with a [`ResumeHandle`] per peer for its reconnection stats.
///
/// It wires by the mesh's rules: the same table (bind and advertised
/// addresses, host names resolved by the mesh's resolver), the same split
/// (the role earlier in the table listens, the later one dials; one
/// listener per role serves all the roles after it), the same transport
/// (TCP, TLS when the options carry an identity, and with the features
/// `websocket` and `quic` WebSocket and QUIC), the same options (with the
/// resume wire version of [`link_options`] applied, so a plain peer is
/// refused in the handshake) and the same [`MeshError`]s.
///
/// # Deadlines
///
/// The first link of every pair is dialed with the mesh's retry backoff,
/// retried after connection failures, failed lookups and handshake
/// refusals alike, and all of them, with the first resume exchange on
/// each, must be done within the mesh deadline; otherwise `connect` ends
/// with [`MeshError::Incomplete`] (or [`MeshError::Unresolved`] for a
/// name that never resolved), naming the roles still missing. An error
/// that ends a pair's first resume exchange (the peer refused the session,
/// speaks another wire version, presents another session) ends the wiring
/// at once, as `Incomplete` with that [`ResumeError`] in its last error.
/// A first link lost during its resume exchange is replaced as a later
/// one is, under the policy's backoff and reconnect deadline, and within
/// the mesh deadline still.
///
/// After that, each session reconnects on its own under the policy: the
/// dialing side redials with the policy's backoff, looking the peer's
/// name up afresh on every attempt (a peer back under a new address of
/// the same name is found), within the policy's reconnect deadline.
/// Over plain TCP a link's identity is the peer's IP address, so with the
/// policy's identity check on (the default) a peer found at another IP
/// address is refused with [`ResumeError::IdentityChanged`]: for peers
/// that may move, turn the check off
/// ([`ResumePolicy::with_identity_check`]) or use TLS, whose identity is
/// the peer's key.
///
/// # What keeps reconnections coming in
///
/// A role that listens routes its peers' reconnections with a
/// [`ResumeListener`] over its mesh listener. That listener is owned by
/// the sessions it accepted: each one's driver holds it, so it stays
/// alive (and the port bound) as long as any of those sessions runs,
/// including after the application dropped a session whose last frames
/// still wait for their acknowledgement, and it closes when the last of
/// them has ended. Nothing in the returned [`MeshSessions`] needs to be
/// kept for resumption to work; the handles only read stats.
///
/// Once `connect` returns, the listener starts no new session: a first
/// link from a peer role whose session here has ended (the peer
/// restarted) is refused with
/// [`RejectReason::UnknownSession`](crate::RejectReason::UnknownSession),
/// so that peer's own wiring ends at once with that refusal. A first link
/// from a peer role whose session still runs goes to that session, which
/// refuses it and ends with [`ResumeError::PeerRestarted`]; the restarted
/// peer's wiring ends too, with [`ResumeError::UnknownSession`] (or the
/// refusal).
///
/// # Examples
///
/// Three roles in one process, each wiring itself as it would in its own:
///
/// ```
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use rumpsteak_aura_net::tcp::{Mesh, TcpOptions};
/// use rumpsteak_aura_resume::{ResumeMesh, ResumePolicy};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let buyer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let seller = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let unused: SocketAddr = "127.0.0.1:9".parse()?; // the last role never listens
/// let mesh = Mesh::new([
///     ("Buyer", buyer.local_addr()?),
///     ("Seller", seller.local_addr()?),
///     ("Coordinator", unused),
/// ])
/// .with_role_names(|role: &&str| role.to_string())
/// .with_options(TcpOptions::new().with_session_id("auction-7"));
/// let mesh = ResumeMesh::new(mesh, ResumePolicy::new().with_reconnect_deadline(Duration::from_secs(10)));
///
/// let (b, s, c) = tokio::join!(
///     mesh.connect_with_listener(&"Buyer", buyer),
///     mesh.connect_with_listener(&"Seller", seller),
///     mesh.connect(&"Coordinator"),
/// );
/// let (mut b, _s, mut c) = (b?, s?, c?);
/// assert_eq!(c.peers(), ["Buyer", "Seller"]);
/// c.sessions[0].1.send_frame(b"hello buyer".to_vec()).await?;
/// assert_eq!(b.sessions[1].1.recv_frame().await?, b"hello buyer");
/// assert_eq!(c.handle(&"Buyer").map(|h| h.stats().reconnects), Some(0));
/// # Ok(())
/// # }
/// ```
pub struct ResumeMesh<R> {
    mesh: Mesh<R>,
    policy: ResumePolicy,
}

/// What [`ResumeMesh::connect`] wired: one session per other role, in
/// table order, and its handle.
#[derive(Debug)]
#[non_exhaustive]
pub struct MeshSessions<R> {
    /// The sessions, to register with the endpoint
    /// (`endpoint.register_session(peer, session)`).
    pub sessions: Vec<(R, RumpsteakSession)>,
    /// Each session's stats handle, in the same order. Reading them is
    /// all they are for; dropping them changes nothing.
    pub handles: Vec<(R, ResumeHandle)>,
}

impl<R: PartialEq> MeshSessions<R> {
    /// The handle of the session with `peer`.
    pub fn handle(&self, peer: &R) -> Option<&ResumeHandle> {
        self.handles.iter().find(|(r, _)| r == peer).map(|(_, h)| h)
    }
}

impl<R: Clone> MeshSessions<R> {
    /// The peers, in table order.
    pub fn peers(&self) -> Vec<R> {
        self.handles.iter().map(|(r, _)| r.clone()).collect()
    }
}

impl<R> ResumeMesh<R> {
    /// Wires `mesh`'s sessions as resumable ones under `policy`. The
    /// mesh's options get the resume wire version ([`link_options`]).
    pub fn new(mesh: Mesh<R>, policy: ResumePolicy) -> Self {
        let options = link_options(mesh.options().clone());
        ResumeMesh {
            mesh: mesh.with_options(options),
            policy,
        }
    }

    /// The mesh, with the options its links use.
    pub fn mesh(&self) -> &Mesh<R> {
        &self.mesh
    }

    /// The policy of every session.
    pub fn policy(&self) -> &ResumePolicy {
        &self.policy
    }
}

impl<R: fmt::Debug> fmt::Debug for ResumeMesh<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeMesh")
            .field("mesh", &self.mesh)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A socket the caller bound for the role being wired.
enum Bound {
    Tcp(TcpListener),
    #[cfg(feature = "quic")]
    Udp(std::net::UdpSocket),
}

/// How one pair's wiring went wrong: its first resume exchange ended
/// with a bound.
struct Failure(ResumeError);

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under this lock is a single assignment.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<R: Clone + PartialEq + Send + Sync + 'static> ResumeMesh<R> {
    /// Wires every session of `local`, binding its table address (its
    /// bind address if it has one, else its advertised address) if it
    /// listens.
    pub async fn connect(&self, local: &R) -> Result<MeshSessions<R>, MeshError> {
        self.run(local, None).await
    }

    /// Like [`connect`](Self::connect), but accepts on `listener` instead
    /// of binding the table address: the way to use ephemeral ports. The
    /// listener is dropped when `local` is last. For TCP and WebSocket
    /// meshes.
    pub async fn connect_with_listener(
        &self,
        local: &R,
        listener: TcpListener,
    ) -> Result<MeshSessions<R>, MeshError> {
        self.run(local, Some(Bound::Tcp(listener))).await
    }

    /// Like [`connect`](Self::connect) for a QUIC mesh, but accepts on
    /// `socket` instead of binding the table address.
    #[cfg(feature = "quic")]
    pub async fn connect_with_socket(
        &self,
        local: &R,
        socket: std::net::UdpSocket,
    ) -> Result<MeshSessions<R>, MeshError> {
        self.run(local, Some(Bound::Udp(socket))).await
    }

    async fn run(&self, local: &R, bound: Option<Bound>) -> Result<MeshSessions<R>, MeshError> {
        let mesh = &self.mesh;
        let deadline = mesh.deadline();
        let deadline_at = Instant::now() + deadline;
        let entries: Vec<(R, MeshEntry)> = mesh.entries().map(|(r, e)| (r.clone(), e)).collect();
        let names: Vec<String> = entries.iter().map(|(r, _)| mesh.role_name(r)).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(MeshError::DuplicateRole(name.clone()));
            }
        }
        let Some(me) = entries.iter().position(|(r, _)| r == local) else {
            return Err(MeshError::NotInTable(mesh.role_name(local)));
        };
        let my_name = names[me].clone();
        let session_id = mesh.options().session_id().to_string();

        let listener = if me + 1 < entries.len() {
            let later: Vec<&str> = names[me + 1..].iter().map(String::as_str).collect();
            let config = self.policy.config_for(&session_id, &my_name, "");
            let at = entries[me].1.listen_address().clone();
            let listening = tokio::time::timeout_at(
                deadline_at,
                self.listen(&at, &my_name, bound, config, &later),
            )
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no lookup of `{at}` answered within {deadline:?}"),
                )))
            });
            Some(Arc::new(listening.map_err(|source| MeshError::Listen {
                role: my_name.clone(),
                source,
            })?))
        } else {
            None
        };

        let seen = Arc::new(Mutex::new(MeshAttempts::new(mesh, me)));
        let dialer = mesh.dialer();
        // Every pair is wired in its own task, so that the sessions that
        // are up run their drivers while the others still wait.
        let mut pending: JoinSet<(usize, Result<ResumableSession, Failure>)> = JoinSet::new();
        for (peer, (_, entry)) in entries.iter().enumerate().take(me) {
            let target = Arc::new(DialTarget {
                address: entry.address().clone(),
                dialer: dialer.clone(),
                me: my_name.clone(),
                them: names[peer].clone(),
            });
            let config = self.policy.config_for(&session_id, &my_name, &names[peer]);
            let seen = seen.clone();
            pending.spawn(async move {
                let result = async {
                    let first = first_link(&target, peer, &seen).await;
                    let redial = MeshRedial {
                        first: Some(first),
                        target,
                    };
                    ResumableSession::open(redial, config)
                        .await
                        .map_err(Failure)
                }
                .await;
                (peer, result)
            });
        }
        if let Some(listener) = &listener {
            for (peer, name) in names.iter().enumerate().skip(me + 1) {
                let listener = listener.clone();
                let name = name.clone();
                pending.spawn(async move {
                    let keep: Arc<dyn Send + Sync> = listener.clone();
                    let result = listener.accept_keeping(&name, Some(keep)).await;
                    (peer, result.map_err(Failure))
                });
            }
        }
        // The accepts, then the drivers of the sessions they accept, hold
        // the listener too; this reference goes when the wiring is over.

        let mut sessions: Vec<Option<ResumableSession>> =
            (0..entries.len()).map(|_| None).collect();
        let mut fatal = None;
        while !pending.is_empty() {
            match tokio::time::timeout_at(deadline_at, pending.join_next()).await {
                Ok(Some(Ok((peer, Ok(session))))) => sessions[peer] = Some(session),
                Ok(Some(Ok((_, Err(Failure(e)))))) => {
                    fatal = Some(e.into_transport());
                    break;
                }
                Ok(Some(Err(join))) => {
                    fatal = Some(TransportError::other(io::Error::other(format!(
                        "a wiring task failed: {join}"
                    ))));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        // Dropping the set aborts the pairs still wiring.
        drop(pending);
        // No accept comes any more: a first link from now on (a peer that
        // restarted after its session here ended) is refused, not queued
        // for as long as the other sessions hold the listener.
        let refused = listener.as_ref().and_then(|l| {
            l.stop_accepting();
            l.take_refused()
        });
        drop(listener);

        let missing: Vec<usize> = (0..entries.len())
            .filter(|&i| i != me && sessions[i].is_none())
            .collect();
        let mut seen = locked(&seen);
        if fatal.is_none()
            && let Some(e) = seen.unresolved(mesh, &missing)
        {
            return Err(e);
        }
        if !missing.is_empty() {
            let last_error = fatal.or_else(|| seen.take_last_error()).or(refused);
            return Err(seen.incomplete(mesh, &missing, last_error));
        }
        drop(seen);
        let mut wired = MeshSessions {
            sessions: Vec::with_capacity(entries.len().saturating_sub(1)),
            handles: Vec::with_capacity(entries.len().saturating_sub(1)),
        };
        for ((role, _), session) in entries.into_iter().zip(sessions) {
            if let Some(session) = session {
                wired.handles.push((role.clone(), session.handle()));
                wired.sessions.push((role, session.into_session()));
            }
        }
        Ok(wired)
    }

    /// The listener of the local role at `at`, routing reconnections from
    /// the `later` roles.
    async fn listen(
        &self,
        at: &MeshAddress,
        name: &str,
        bound: Option<Bound>,
        config: ResumeConfig,
        later: &[&str],
    ) -> Result<ResumeListener, TransportError> {
        let options = self.mesh.options();
        let addrs = match bound {
            Some(_) => Vec::new(),
            None => at
                .resolve(&*self.mesh.resolver())
                .await
                .map_err(|e| at.lookup_error(e))?,
        };
        match (self.mesh.transport(), bound) {
            (MeshTransport::Tcp, Some(Bound::Tcp(l))) => Ok(ResumeListener::new(
                SessionListener::from_listener(l, name, options)?,
                config,
                later,
            )),
            (MeshTransport::Tcp, None) => {
                let l = first_bound(&addrs, |a| SessionListener::bind(a, name, options)).await?;
                Ok(ResumeListener::new(l, config, later))
            }
            #[cfg(feature = "websocket")]
            (MeshTransport::WebSocket, Some(Bound::Tcp(l))) => {
                use rumpsteak_aura_net::websocket::WebSocketListener;
                let l = WebSocketListener::from_listener(l, name, options)?;
                Ok(ResumeListener::new(l, config, later))
            }
            #[cfg(feature = "websocket")]
            (MeshTransport::WebSocket, None) => {
                use rumpsteak_aura_net::websocket::WebSocketListener;
                let l = first_bound(&addrs, |a| WebSocketListener::bind(a, name, options)).await?;
                Ok(ResumeListener::new(l, config, later))
            }
            #[cfg(feature = "quic")]
            (MeshTransport::Quic, Some(Bound::Udp(socket))) => {
                use rumpsteak_aura_net::quic::QuicListener;
                let l = QuicListener::from_socket(socket, name, options)?;
                Ok(ResumeListener::new(l, config, later))
            }
            #[cfg(feature = "quic")]
            (MeshTransport::Quic, None) => {
                use rumpsteak_aura_net::quic::QuicListener;
                let l = first_bound(
                    &addrs,
                    |a| async move { QuicListener::bind(a, name, options) },
                )
                .await?;
                Ok(ResumeListener::new(l, config, later))
            }
            #[cfg(feature = "quic")]
            (MeshTransport::Quic, Some(Bound::Tcp(_))) => {
                Err(wrong_socket("a UDP socket", "a TCP listener"))
            }
            #[cfg(feature = "quic")]
            (_, Some(Bound::Udp(_))) => Err(wrong_socket("a TCP listener", "a UDP socket")),
            (transport, _) => Err(unsupported(transport)),
        }
    }
}

#[cfg(feature = "quic")]
fn wrong_socket(wanted: &str, given: &str) -> TransportError {
    TransportError::other(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("this mesh's transport listens on {wanted}, and was given {given}"),
    ))
}

fn unsupported(transport: MeshTransport) -> TransportError {
    TransportError::other(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("resumable sessions over {transport:?} need a feature of rumpsteak-aura-resume"),
    ))
}

/// Everything a dial of one peer needs, shared by the first dial and
/// every redial.
#[derive(Debug)]
struct DialTarget {
    address: MeshAddress,
    dialer: MeshDialer,
    me: String,
    them: String,
}

impl DialTarget {
    /// One attempt, as the mesh makes one ([`MeshDialer::dial`]), over a
    /// transport this crate was built with.
    async fn dial(&self) -> Result<RumpsteakSession, DialError> {
        match self.dialer.transport() {
            MeshTransport::Tcp => {}
            #[cfg(feature = "websocket")]
            MeshTransport::WebSocket => {}
            #[cfg(feature = "quic")]
            MeshTransport::Quic => {}
            transport => return Err(DialError::Transport(unsupported(transport))),
        }
        self.dialer.dial(&self.address, &self.me, &self.them).await
    }
}

/// The first link to peer `peer`: dial attempts with the mesh's backoff
/// until one succeeds; the caller's deadline ends the loop otherwise.
async fn first_link(
    target: &DialTarget,
    peer: usize,
    seen: &Mutex<MeshAttempts>,
) -> RumpsteakSession {
    let mut attempt = 0u32;
    loop {
        match target.dial().await {
            Ok(session) => {
                locked(seen).connected(peer);
                return session;
            }
            Err(failure) => locked(seen).failed(peer, failure),
        }
        let wait = target.dialer.retry_wait(attempt);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(wait).await;
    }
}

/// A mesh peer's redialer: the first link the mesh dialed, then a fresh
/// dial (a fresh lookup of the name among it) on every call.
struct MeshRedial {
    first: Option<RumpsteakSession>,
    target: Arc<DialTarget>,
}

impl Redial for MeshRedial {
    fn redial(&mut self) -> LinkFuture<'_> {
        let first = self.first.take();
        let target = &self.target;
        Box::pin(async move {
            if let Some(link) = first {
                return Ok(link);
            }
            target.dial().await.map_err(DialError::into_transport)
        })
    }
}
