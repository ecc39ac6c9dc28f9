//! The network glue: redialing over TCP (and QUIC), and a listener that
//! routes every reconnection to the session it belongs to.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rumpsteak_aura::TransportError;
use rumpsteak_aura_net::tcp::{self, Listen, SessionListener, Stream, TcpOptions};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::config::ResumeConfig;
use crate::driver::{RoutedLink, Source, fresh_incarnation};
use crate::error::{ResumeError, escaped};
use crate::frame::{self, DecodeError, LinkFrame, RESUME_WIRE_VERSION, RejectReason};
use crate::session::{LinkFuture, Redial, ResumableSession};

/// `options` for the links of a resumable session: the network handshake
/// announces the link frames' wire version ([`RESUME_WIRE_VERSION`]), so
/// that a resumable side and a plain one refuse each other in the
/// handshake, on both sides, with a typed
/// [`RefusalReason::Version`](rumpsteak_aura::RefusalReason::Version),
/// before any frame. The redialers apply it to the options they are given;
/// bind the listener that a [`ResumeListener`] routes with it.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tcp::TcpOptions;
/// use rumpsteak_aura_resume::{RESUME_WIRE_VERSION, link_options};
///
/// let options = link_options(TcpOptions::new().with_session_id("auction-7"));
/// assert_eq!(options.wire_version(), RESUME_WIRE_VERSION);
/// ```
pub fn link_options(options: TcpOptions) -> TcpOptions {
    options.with_wire_version(RESUME_WIRE_VERSION)
}

/// What every redialer keeps: the address, both roles and the links'
/// options (with the wire version of [`link_options`]).
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    local_role: String,
    peer_role: String,
    options: TcpOptions,
}

impl Target {
    fn new(
        addr: SocketAddr,
        local_role: impl Into<String>,
        peer_role: impl Into<String>,
        options: TcpOptions,
    ) -> Self {
        Target {
            addr,
            local_role: local_role.into(),
            peer_role: peer_role.into(),
            options: link_options(options),
        }
    }

    /// The resume settings that fit: the session identifier and the roles.
    fn config(&self) -> ResumeConfig {
        ResumeConfig::new(
            self.options.session_id(),
            self.local_role.clone(),
            self.peer_role.clone(),
        )
    }
}

/// Redials a TCP peer with [`tcp::connect`], with the same roles and
/// options (the session identifier among them, and the wire version of
/// [`link_options`]) every time.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tcp::TcpOptions;
/// use rumpsteak_aura_resume::TcpRedial;
///
/// let options = TcpOptions::new().with_session_id("auction-7");
/// let redial = TcpRedial::new("127.0.0.1:7000".parse().unwrap(), "Alice", "Bob", options);
/// assert_eq!(redial.addr().port(), 7000);
/// ```
#[derive(Debug, Clone)]
pub struct TcpRedial(Target);

impl TcpRedial {
    /// Dials `addr` as `local_role`, expecting `peer_role`.
    pub fn new(
        addr: SocketAddr,
        local_role: impl Into<String>,
        peer_role: impl Into<String>,
        options: TcpOptions,
    ) -> Self {
        TcpRedial(Target::new(addr, local_role, peer_role, options))
    }

    /// The address dialed.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// The resume settings that fit this dialer: its session identifier
    /// and roles.
    pub fn config(&self) -> ResumeConfig {
        self.0.config()
    }
}

impl Redial for TcpRedial {
    fn redial(&mut self) -> LinkFuture<'_> {
        let t = &self.0;
        Box::pin(tcp::connect(
            t.addr,
            &t.local_role,
            &t.peer_role,
            &t.options,
        ))
    }
}

/// Redials a QUIC peer with `quic::connect` (feature `quic`).
#[cfg(feature = "quic")]
#[derive(Debug, Clone)]
pub struct QuicRedial(Target);

#[cfg(feature = "quic")]
impl QuicRedial {
    /// Dials `addr` as `local_role`, expecting `peer_role`.
    pub fn new(
        addr: SocketAddr,
        local_role: impl Into<String>,
        peer_role: impl Into<String>,
        options: TcpOptions,
    ) -> Self {
        QuicRedial(Target::new(addr, local_role, peer_role, options))
    }

    /// The resume settings that fit this dialer: its session identifier
    /// and roles.
    pub fn config(&self) -> ResumeConfig {
        self.0.config()
    }
}

#[cfg(feature = "quic")]
impl Redial for QuicRedial {
    fn redial(&mut self) -> LinkFuture<'_> {
        let t = &self.0;
        Box::pin(rumpsteak_aura_net::quic::connect(
            t.addr,
            &t.local_role,
            &t.peer_role,
            &t.options,
        ))
    }
}

/// Redials a WebSocket peer with `websocket::connect` (feature
/// `websocket`).
#[cfg(feature = "websocket")]
#[derive(Debug, Clone)]
pub struct WebSocketRedial(Target);

#[cfg(feature = "websocket")]
impl WebSocketRedial {
    /// Dials `addr` as `local_role`, expecting `peer_role`.
    pub fn new(
        addr: SocketAddr,
        local_role: impl Into<String>,
        peer_role: impl Into<String>,
        options: TcpOptions,
    ) -> Self {
        WebSocketRedial(Target::new(addr, local_role, peer_role, options))
    }

    /// The resume settings that fit this dialer: its session identifier
    /// and roles.
    pub fn config(&self) -> ResumeConfig {
        self.0.config()
    }
}

#[cfg(feature = "websocket")]
impl Redial for WebSocketRedial {
    fn redial(&mut self) -> LinkFuture<'_> {
        let t = &self.0;
        Box::pin(rumpsteak_aura_net::websocket::connect(
            t.addr,
            &t.local_role,
            &t.peer_role,
            &t.options,
        ))
    }
}

/// The future of one accepted link.
pub type AcceptFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(String, RumpsteakSession), TransportError>> + Send + 'a>>;

/// A listener whose handshaken connections a [`ResumeListener`] routes:
/// `SessionListener` (TCP, over any socket type) and, with `quic`,
/// `QuicListener`.
pub trait AcceptLinks: Send + Sync + 'static {
    /// The next connection from one of `roles`, with the role it proved.
    fn accept_link<'a>(&'a self, roles: &'a [&'a str]) -> AcceptFuture<'a>;
}

impl<L: Listen> AcceptLinks for SessionListener<L>
where
    L::Conn: Stream,
{
    fn accept_link<'a>(&'a self, roles: &'a [&'a str]) -> AcceptFuture<'a> {
        Box::pin(self.accept_any(roles))
    }
}

#[cfg(feature = "websocket")]
impl AcceptLinks for rumpsteak_aura_net::websocket::WebSocketListener {
    fn accept_link<'a>(&'a self, roles: &'a [&'a str]) -> AcceptFuture<'a> {
        Box::pin(self.accept_any(roles))
    }
}

#[cfg(feature = "quic")]
impl AcceptLinks for rumpsteak_aura_net::quic::QuicListener {
    fn accept_link<'a>(&'a self, roles: &'a [&'a str]) -> AcceptFuture<'a> {
        Box::pin(self.accept_any(roles))
    }
}

/// A live session's entry: where its reconnections go.
struct Entry {
    peer_role: String,
    links: mpsc::Sender<RoutedLink>,
}

#[derive(Default)]
struct Router {
    /// Live sessions by this side's incarnation.
    sessions: Mutex<HashMap<u64, Entry>>,
    /// First links that wait for an `accept` of their role.
    fresh: Mutex<VecDeque<(String, RoutedLink)>>,
    /// Set (under the `fresh` lock) once no `accept` will come any more:
    /// first links are then refused instead of queued.
    closed: AtomicBool,
    /// The last connection refused before its resume greeting (a failed
    /// handshake), for the mesh's errors.
    last_refused: Mutex<Option<TransportError>>,
    arrived: Notify,
}

/// First links waiting for `accept` beyond this are refused.
const MAX_WAITING: usize = 64;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks panics halfway through an update.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes a session's entry when its driver ends.
struct Registration {
    router: Arc<Router>,
    incarnation: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        locked(&self.router.sessions).remove(&self.incarnation);
    }
}

/// Accepts resumable sessions at a listener, and routes each reconnection
/// to the session it belongs to.
///
/// A task reads the resume greeting of every connection the listener
/// hands over. A greeting that resumes (it names this side's incarnation)
/// goes to that session, whose driver then resumes on it; one for an
/// incarnation no live session has is refused
/// ([`RejectReason::UnknownSession`]: this side restarted, or the session
/// ended). A first greeting goes to [`accept`](Self::accept), unless a live
/// session already has that peer role: then it goes to that session, which
/// refuses a restarted peer ([`ResumeError::PeerRestarted`]) rather than
/// resume it. So one listener serves one session per peer role at a time,
/// as one `Mesh` does.
///
/// Dropping the listener stops routing; its sessions then end at their
/// reconnect deadline when their link drops.
pub struct ResumeListener {
    router: Arc<Router>,
    config: ResumeConfig,
    task: AbortHandle,
}

impl ResumeListener {
    /// Routes the connections that `listener` accepts from `peer_roles`.
    /// `config` gives the session identifier (the listener's, from its
    /// `TcpOptions`), this side's role and the resume settings; its peer
    /// role is set by each `accept`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::{SessionListener, TcpOptions};
    /// use rumpsteak_aura_resume::{ResumableSession, ResumeConfig, ResumeListener, TcpRedial, link_options};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = TcpOptions::new().with_session_id("demo");
    /// let bound = SessionListener::bind("127.0.0.1:0".parse()?, "Server", &link_options(options.clone())).await?;
    /// let addr = bound.local_addr();
    /// let listener = ResumeListener::new(bound, ResumeConfig::new("demo", "Server", ""), &["Client"]);
    /// let redial = TcpRedial::new(addr, "Client", "Server", options);
    /// let config = redial.config();
    /// let (client, server) = tokio::join!(ResumableSession::open(redial, config), listener.accept("Client"));
    /// let (mut client, mut server) = (client?.into_session(), server?.into_session());
    /// client.send_frame(vec![1, 2, 3]).await?;
    /// assert_eq!(server.recv_frame().await?, vec![1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(listener: impl AcceptLinks, config: ResumeConfig, peer_roles: &[&str]) -> Self {
        let router = Arc::new(Router::default());
        let roles: Vec<String> = peer_roles.iter().map(|r| r.to_string()).collect();
        let task = tokio::spawn(route_all(
            listener,
            roles,
            router.clone(),
            config.exchange_timeout,
        ))
        .abort_handle();
        ResumeListener {
            router,
            config,
            task,
        }
    }

    /// Waits for the first connection of a new session from `peer_role`,
    /// runs the first resume exchange on it, and returns the session.
    /// Cancel safe while it waits: a connection that arrived stays for the
    /// next call. Cancelled during the first resume exchange, it drops the
    /// connection it took (the dialer then tries again, and is refused with
    /// `UnknownSession` if it finished its side of the exchange).
    pub async fn accept(&self, peer_role: &str) -> Result<ResumableSession, ResumeError> {
        self.accept_keeping(peer_role, None).await
    }

    /// [`accept`](Self::accept), and the session's driver holds `keep`
    /// until it ends (a mesh's sessions keep their listener alive so).
    pub(crate) async fn accept_keeping(
        &self,
        peer_role: &str,
        keep: Option<Arc<dyn Send + Sync>>,
    ) -> Result<ResumableSession, ResumeError> {
        loop {
            let arrived = self.router.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let waiting = {
                let mut fresh = locked(&self.router.fresh);
                fresh
                    .iter()
                    .position(|(role, _)| role == peer_role)
                    .and_then(|i| fresh.remove(i))
            };
            if let Some((role, routed)) = waiting {
                return self.open(role, routed, keep).await;
            }
            arrived.await;
        }
    }

    async fn open(
        &self,
        role: String,
        routed: RoutedLink,
        keep: Option<Arc<dyn Send + Sync>>,
    ) -> Result<ResumableSession, ResumeError> {
        let mut config = self.config.clone();
        config.peer_role = role.clone();
        let incarnation = fresh_incarnation();
        let (tx, rx) = mpsc::channel(4);
        locked(&self.router.sessions).insert(
            incarnation,
            Entry {
                peer_role: role,
                links: tx,
            },
        );
        let registration = Registration {
            router: self.router.clone(),
            incarnation,
        };
        let source = Source::Routed {
            links: rx,
            _registration: Box::new((registration, keep)),
        };
        ResumableSession::start(source, config, Some(routed), Some(incarnation)).await
    }

    /// No `accept` will come any more (a mesh's wiring is over): the first
    /// links that wait are refused, and so is every later one for a peer
    /// role that has no live session, with
    /// [`RejectReason::UnknownSession`], rather than held for an `accept`
    /// that never comes. Reconnections still go to their sessions.
    pub(crate) fn stop_accepting(&self) {
        let waiting: Vec<(String, RoutedLink)> = {
            let mut fresh = locked(&self.router.fresh);
            self.router.closed.store(true, Ordering::SeqCst);
            fresh.drain(..).collect()
        };
        for (role, routed) in waiting {
            // A first link that arrived while its role's session was being
            // opened (between `accept` taking the first and registering
            // it) belongs to that session, as a later one would.
            let live = locked(&self.router.sessions)
                .values()
                .find(|e| e.peer_role == role)
                .map(|e| e.links.clone());
            match live {
                Some(links) => {
                    if let Err(e) = links.try_send(routed) {
                        tracing::debug!(%role, "session busy or gone; the reconnection is dropped: {e}");
                    }
                }
                None => {
                    tokio::spawn(reject(
                        routed.link,
                        RejectReason::UnknownSession,
                        no_new_session(&role),
                    ));
                }
            }
        }
    }

    /// The last connection refused before its resume greeting, if one
    /// was since the last call.
    pub(crate) fn take_refused(&self) -> Option<TransportError> {
        locked(&self.router.last_refused).take()
    }

    /// How many sessions this listener routes reconnections to now.
    pub fn live_sessions(&self) -> usize {
        locked(&self.router.sessions).len()
    }
}

impl Drop for ResumeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for ResumeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeListener")
            .field("session", &self.config.session_id)
            .field("local_role", &self.config.local_role)
            .field("live_sessions", &self.live_sessions())
            .finish_non_exhaustive()
    }
}

async fn route_all(
    listener: impl AcceptLinks,
    roles: Vec<String>,
    router: Arc<Router>,
    timeout: std::time::Duration,
) {
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    loop {
        match listener.accept_link(&roles).await {
            Ok((role, link)) => {
                tokio::spawn(route(router.clone(), role, link, timeout));
            }
            Err(e) => {
                tracing::debug!(error = %e, "connection refused before the resume greeting");
                // As in the net mesh's `MeshAttempts::note`: a refusal is
                // not replaced by a failure that says less (a dialer that
                // hung up at its own deadline).
                let mut last = locked(&router.last_refused);
                if e.refusal().is_some() || last.as_ref().is_none_or(|l| l.refusal().is_none()) {
                    *last = Some(e);
                }
            }
        }
    }
}

/// Reads a connection's resume greeting and hands it to its session.
async fn route(
    router: Arc<Router>,
    role: String,
    mut link: RumpsteakSession,
    timeout: std::time::Duration,
) {
    let first = match tokio::time::timeout(timeout, link.recv_frame()).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %role, "link broke before its resume greeting");
            return;
        }
        Err(_) => {
            tracing::debug!(%role, "no resume greeting within {timeout:?}");
            return;
        }
    };
    let hello = match frame::decode(&first) {
        Ok(LinkFrame::Hello(h)) => h,
        Ok(_) => return reject(link, RejectReason::Other, "expected a resume greeting").await,
        Err(DecodeError::Version(v)) => {
            let text = ResumeError::Version {
                found: v,
                supported: frame::RESUME_WIRE_VERSION,
            }
            .to_string();
            return reject(link, RejectReason::Version, &text).await;
        }
        Err(DecodeError::Malformed(m)) => return reject(link, RejectReason::Other, m).await,
    };
    let target = {
        let sessions = locked(&router.sessions);
        if hello.peer_incarnation != 0 {
            match sessions.get(&hello.peer_incarnation) {
                Some(e) if e.peer_role == role => Some(e.links.clone()),
                _ => None,
            }
        } else {
            sessions
                .values()
                .find(|e| e.peer_role == role)
                .map(|e| e.links.clone())
        }
    };
    let routed = RoutedLink { link, hello };
    match target {
        Some(links) => {
            tracing::debug!(%role, "reconnection routed to its session");
            if let Err(e) = links.try_send(routed) {
                tracing::debug!(%role, "session busy or gone; the reconnection is dropped: {e}");
            }
        }
        None if routed.hello.peer_incarnation != 0 => {
            let text = ResumeError::UnknownSession {
                presented: routed.hello.peer_incarnation,
            }
            .to_string();
            reject(routed.link, RejectReason::UnknownSession, &text).await;
        }
        None => {
            let mut fresh = locked(&router.fresh);
            if router.closed.load(Ordering::SeqCst) {
                drop(fresh);
                return reject(
                    routed.link,
                    RejectReason::UnknownSession,
                    no_new_session(&role),
                )
                .await;
            }
            if fresh.len() >= MAX_WAITING {
                drop(fresh);
                tracing::debug!(%role, "too many sessions wait for accept; refused");
                return;
            }
            fresh.push_back((role, routed));
            drop(fresh);
            router.arrived.notify_waiters();
        }
    }
}

/// Why a first link is refused once no `accept` comes any more.
fn no_new_session(role: &str) -> String {
    format!(
        "no new session with `{}` starts here: the one there was is over",
        escaped(role)
    )
}

async fn reject(mut link: RumpsteakSession, reason: RejectReason, text: impl AsRef<str>) {
    let text = text.as_ref();
    tracing::debug!(%reason, text = %escaped(text), "connection refused at the resume greeting");
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        link.send_frame(frame::encode_reject(reason, text)),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Hello;
    use rumpsteak_aura_transport::SimpleChannel;

    /// A listener no connection ever comes to.
    struct Silent;

    impl AcceptLinks for Silent {
        fn accept_link<'a>(&'a self, _roles: &'a [&'a str]) -> AcceptFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    /// A routed first link from `role`, and the peer's end of it.
    fn first_link(role: &str) -> (RoutedLink, RumpsteakSession) {
        let (ours, theirs) = SimpleChannel::pair();
        let hello = Hello {
            session: "s".into(),
            from: role.into(),
            to: "A".into(),
            incarnation: 7,
            peer_incarnation: 0,
            received: 0,
        };
        (
            RoutedLink {
                link: ours.into(),
                hello,
            },
            theirs.into(),
        )
    }

    #[tokio::test]
    async fn stop_accepting_refuses_the_waiting_links_of_roles_without_a_session() {
        let listener = ResumeListener::new(Silent, ResumeConfig::new("s", "A", ""), &["B", "C"]);
        // B's session is live (registered as `open` does); a first link of
        // B waits in the queue, as one does that arrived while that session
        // was being opened; so does one of C, which has no session.
        let (to_b, mut b_links) = mpsc::channel(4);
        locked(&listener.router.sessions).insert(
            1,
            Entry {
                peer_role: "B".into(),
                links: to_b,
            },
        );
        let (b_link, _b_peer) = first_link("B");
        let (c_link, mut c_peer) = first_link("C");
        locked(&listener.router.fresh).extend([("B".into(), b_link), ("C".into(), c_link)]);

        listener.stop_accepting();
        assert!(locked(&listener.router.fresh).is_empty());
        // B's link went to B's session, not refused.
        let routed = b_links
            .try_recv()
            .expect("B's link is routed to its session");
        assert_eq!(routed.hello.from, "B");
        // C's peer reads the refusal (bounded against a hang: the reject is
        // sent by a task of its own).
        let f = tokio::time::timeout(std::time::Duration::from_secs(60), c_peer.recv_frame())
            .await
            .expect("the refusal comes")
            .expect("a frame");
        assert!(
            matches!(
                frame::decode(&f),
                Ok(LinkFrame::Reject {
                    reason: RejectReason::UnknownSession,
                    ..
                })
            ),
            "{f:?}"
        );
    }
}
