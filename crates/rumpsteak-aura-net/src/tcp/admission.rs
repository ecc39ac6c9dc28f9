//! Accepting connections with every handshake running at once.
//!
//! A listener hands each accepted connection to its own task, which opens
//! it (TLS, a WebSocket upgrade) and reads the dialer's hello. So a peer
//! that connects and says nothing, or says it slowly, delays nobody: it
//! only holds its own task until the handshake timeout.
//!
//! Which roles a caller of `accept` wants is known only to that call, so
//! the task asks: it sends the role the dialer claims as
//! [`Admitted::Greeted`] and waits for the verdict, then completes or
//! refuses the handshake and reports [`Admitted::Done`]. The calls of
//! `accept` take the events one at a time (the listener's lock), so a call
//! that is cancelled loses nothing: a verdict it gave still completes, and
//! a session whose role the next call does not want is kept for a call
//! that does.
//!
//! Limits: at most [`TcpOptions::max_pending_handshakes`] connections are
//! in their handshake at once. When a new connection arrives at the cap,
//! the oldest one that has not sent its hello yet is closed to make room
//! (a legitimate dialer greets within a round trip, so it is never the
//! oldest silent one for long); when every pending connection has greeted,
//! the oldest of them is closed (a legitimate dialer confirms within a
//! round trip of being answered). When accepting itself fails (out of
//! descriptors), the error is returned and no connection is taken for
//! 100 ms, while the handshakes in progress go on.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rumpsteak_aura::{Refusal, RefusalReason, TransportError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{TcpOptions, at_address, configure};
use crate::handshake::Allow;
use rumpsteak_aura_transport::RumpsteakSession;

/// A handshake's result: the peer's role and its session.
pub(crate) type Accepted = Result<(String, RumpsteakSession), TransportError>;

/// What a handshake task tells the listener.
pub(crate) enum Admitted {
    /// The dialer's hello passed every check that does not depend on the
    /// caller; it claims `role` and waits for the verdict.
    Greeted {
        role: String,
        verdict: oneshot::Sender<Result<(), Refusal>>,
    },
    /// The handshake ended.
    Done(Accepted),
}

/// A handshake task's link to its listener.
pub(crate) struct Ticket {
    events: mpsc::UnboundedSender<Admitted>,
    greeted: Arc<AtomicBool>,
    _live: Live,
    /// When the whole handshake must be over.
    pub(crate) deadline: Instant,
}

impl Ticket {
    /// Asks the listener for its verdict on the role the dialer claims.
    pub(crate) async fn verdict(&self, role: &str) -> Result<(), Refusal> {
        self.greeted.store(true, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let asked = self.events.send(Admitted::Greeted {
            role: role.to_string(),
            verdict: tx,
        });
        let gone = || {
            Refusal::new(RefusalReason::ByPeer, "a listener", "a closed listener")
                .with_detail("the listener stopped accepting")
        };
        if asked.is_err() {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Reports the end of the handshake.
    pub(crate) fn done(&self, result: Accepted) {
        // A listener that is gone drops the session, which closes it.
        let _ = self.events.send(Admitted::Done(result));
    }
}

/// Counts a task as live until it ends or is aborted.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Opens an accepted connection and runs its handshake, reporting through
/// the ticket: the part that differs between TCP, TLS, WebSocket and QUIC.
pub(crate) type Opener<C = TcpStream> =
    Arc<dyn Fn(C, SocketAddr, Ticket) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The opener that runs `open` on every connection, with the listener's
/// role and options, and reports its result: the one place where a
/// transport's way of opening a connection becomes a handshake task.
pub(crate) fn opener<C, F, Fut>(local_role: &str, options: &TcpOptions, open: F) -> Opener<C>
where
    C: Send + 'static,
    F: Fn(C, SocketAddr, Arc<str>, Arc<TcpOptions>, Arc<Ticket>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Accepted> + Send + 'static,
{
    let role: Arc<str> = Arc::from(local_role);
    let options = Arc::new(options.clone());
    let open = Arc::new(open);
    Arc::new(move |conn: C, addr: SocketAddr, ticket: Ticket| {
        let ticket = Arc::new(ticket);
        let opened = open(
            conn,
            addr,
            Arc::clone(&role),
            Arc::clone(&options),
            Arc::clone(&ticket),
        );
        Box::pin(async move {
            let result = opened.await;
            ticket.done(result);
        })
    })
}

/// Where a listener's connections come from: a tokio [`TcpListener`], a
/// QUIC endpoint, or another socket type's listener (a simulated
/// network's) for [`SessionListener::from_listen`](super::SessionListener::from_listen).
///
/// Each connection it returns gets a handshake task of its own, under the
/// limits of [`SessionListener`](super::SessionListener).
pub trait Listen: Send + Sync + 'static {
    /// A connection as it arrives, before its handshake.
    type Conn: Send + 'static;

    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;

    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Sets a new connection up before its handshake task starts (TCP:
    /// `TCP_NODELAY` and keepalive); a connection it fails for is dropped.
    fn prepare(&self, _conn: &Self::Conn, _options: &TcpOptions) -> io::Result<()> {
        Ok(())
    }
}

impl Listen for TcpListener {
    type Conn = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }

    fn prepare(&self, conn: &TcpStream, options: &TcpOptions) -> io::Result<()> {
        configure(conn, options)
    }
}

struct Slot {
    task: AbortHandle,
    greeted: Arc<AtomicBool>,
}

struct Inner {
    events: mpsc::UnboundedReceiver<Admitted>,
    /// Handshake tasks, oldest first; finished ones are pruned lazily.
    slots: VecDeque<Slot>,
    /// Sessions whose verdict an earlier, cancelled call gave, for a call
    /// that wants their role.
    ready: Vec<(String, RumpsteakSession)>,
    /// After `accept` itself failed (out of descriptors, say), no new
    /// connection is taken before this instant, so that a caller who
    /// retries does not spin on the same error.
    accept_paused_until: Option<Instant>,
}

/// How long accepting pauses after the listener's own `accept` failed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The accepting half of a listener: the socket, the handshake tasks, and
/// the events they send.
pub(crate) struct Admission<L: Listen = TcpListener> {
    listener: L,
    local_addr: SocketAddr,
    options: TcpOptions,
    opener: Opener<L::Conn>,
    sender: mpsc::UnboundedSender<Admitted>,
    live: Arc<AtomicUsize>,
    inner: Mutex<Inner>,
}

impl<L: Listen> Admission<L> {
    pub(crate) fn new(
        listener: L,
        options: &TcpOptions,
        opener: Opener<L::Conn>,
    ) -> Result<Self, TransportError> {
        let local_addr = listener.local_addr().map_err(TransportError::io)?;
        let (sender, events) = mpsc::unbounded_channel();
        Ok(Admission {
            listener,
            local_addr,
            options: options.clone(),
            opener,
            sender,
            live: Arc::new(AtomicUsize::new(0)),
            inner: Mutex::new(Inner {
                events,
                slots: VecDeque::new(),
                ready: Vec::new(),
                accept_paused_until: None,
            }),
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn options(&self) -> &TcpOptions {
        &self.options
    }

    /// How many connections are in their handshake now.
    pub(crate) fn pending(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The next completed handshake whose role `allow` accepts; a refusal
    /// (by `allow` or by the checks before it) or a failed handshake is
    /// returned as the error, so that the caller sees every failure.
    pub(crate) async fn next(&self, allow: &mut Allow<'_>) -> Accepted {
        let mut inner = self.inner.lock().await;
        if let Some(i) = inner.ready.iter().position(|(role, _)| allow(role).is_ok()) {
            return Ok(inner.ready.swap_remove(i));
        }
        loop {
            let paused = inner.accept_paused_until;
            tokio::select! {
                // Events first: a connection that greeted is answered
                // before more connections are taken.
                biased;
                event = inner.events.recv() => match event {
                    Some(Admitted::Greeted { role, verdict, .. }) => {
                        let _ = verdict.send(allow(&role));
                    }
                    Some(Admitted::Done(Ok((role, session)))) => {
                        if allow(&role).is_ok() {
                            return Ok((role, session));
                        }
                        inner.ready.push((role, session));
                    }
                    Some(Admitted::Done(Err(e))) => return Err(e),
                    // The admission holds a sender, so the channel stays open.
                    None => return Err(TransportError::closed()),
                },
                accepted = self.listener.accept(), if paused.is_none() => {
                    match accepted {
                        Ok((conn, addr)) => self.start(&mut inner, conn, addr),
                        Err(e) => {
                            inner.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                            return Err(at_address("accept on", self.local_addr, e));
                        }
                    }
                }
                () = pause_end(paused) => inner.accept_paused_until = None,
            }
        }
    }

    /// Starts the handshake task of a new connection, making room under
    /// the cap first.
    fn start(&self, inner: &mut Inner, conn: L::Conn, addr: SocketAddr) {
        inner.slots.retain(|s| !s.task.is_finished());
        if self.live.load(Ordering::Relaxed) >= self.options.max_pending_handshakes() {
            match inner
                .slots
                .iter()
                .position(|s| !s.greeted.load(Ordering::Relaxed))
            {
                Some(i) => {
                    if let Some(oldest) = inner.slots.remove(i) {
                        oldest.task.abort();
                    }
                }
                // Everyone pending is past the hello: the oldest, whose
                // dialer has had the longest to confirm, makes room.
                None => {
                    if let Some(oldest) = inner.slots.pop_front() {
                        oldest.task.abort();
                    }
                }
            }
        }
        if self.listener.prepare(&conn, &self.options).is_err() {
            return;
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        let greeted = Arc::new(AtomicBool::new(false));
        let ticket = Ticket {
            events: self.sender.clone(),
            greeted: Arc::clone(&greeted),
            _live: Live(Arc::clone(&self.live)),
            deadline: Instant::now() + self.options.handshake_timeout(),
        };
        let task = tokio::spawn((self.opener)(conn, addr, ticket));
        inner.slots.push_back(Slot {
            task: task.abort_handle(),
            greeted,
        });
    }
}

/// Resolves when the pause on accepting ends; never, if there is none.
async fn pause_end(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

impl<L: Listen> Drop for Admission<L> {
    fn drop(&mut self) {
        // Handshakes of a listener that is gone cannot be handed to anyone.
        for slot in &self.inner.get_mut().slots {
            slot.task.abort();
        }
    }
}
