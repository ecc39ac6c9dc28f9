//! The resumable session: the front the application polls, and the state
//! it shares with the driver task that owns the link.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};

use rumpsteak_aura::TransportError;
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport};

use crate::config::{OnFull, ResumeConfig};
use crate::driver::{Driver, FrontRead, Source, Wire};
use crate::error::{ReplayLimit, ResumeError};
use crate::frame::MAX_DATA_HEADER;
use crate::reads::ReadDispatch;

/// The future of one attempt at a new link.
pub type LinkFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RumpsteakSession, TransportError>> + Send + 'a>>;

/// Where a resumable session gets a fresh underlying session to the same
/// peer: the first one, and one after every loss.
///
/// The dialing side redials (see `TcpRedial`); the accepting side is
/// served by a `ResumeListener`, which routes each reconnection to its
/// session. Any `FnMut() -> impl Future<Output = Result<RumpsteakSession,
/// TransportError>>` is a `Redial`, for custom links and tests.
///
/// An error of kind [`Refused`](rumpsteak_aura::TransportErrorKind::Refused)
/// ends the session (a refusal in the network handshake is not fixed by
/// trying again); any other error is retried with backoff until the
/// reconnect deadline.
pub trait Redial: Send + 'static {
    /// One attempt at a new underlying session.
    fn redial(&mut self) -> LinkFuture<'_>;
}

impl<F, Fut> Redial for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<RumpsteakSession, TransportError>> + Send + 'static,
{
    fn redial(&mut self) -> LinkFuture<'_> {
        Box::pin(self())
    }
}

/// A frame accepted from the application and not acknowledged yet.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) seq: u64,
    /// The close marker, which takes a sequence number of its own.
    pub(crate) close: bool,
    pub(crate) payload: Vec<u8>,
}

/// What the front and the driver share, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Unacknowledged frames, sequence numbers `acked + 1 ..next_seq`.
    pub(crate) replay: VecDeque<Out>,
    pub(crate) replay_bytes: usize,
    pub(crate) next_seq: u64,
    pub(crate) acked: u64,
    /// Frames received in order, not yet taken by the application.
    pub(crate) inbox: VecDeque<Vec<u8>>,
    /// The last sequence number received in order.
    pub(crate) received: u64,
    pub(crate) peer_closed: bool,
    pub(crate) peer_gone: bool,
    pub(crate) local_closed: bool,
    pub(crate) front_gone: bool,
    pub(crate) link_up: bool,
    /// The largest frame the current link carries.
    pub(crate) link_max_frame: usize,
    pub(crate) failed: Option<ResumeError>,
    pub(crate) done: bool,
    pub(crate) reconnects: u64,
    pub(crate) last_cause: Option<String>,
    pub(crate) send_waker: Option<Waker>,
    pub(crate) recv_waker: Option<Waker>,
    pub(crate) driver_waker: Option<Waker>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    state: Mutex<State>,
    /// The sending side of the link; taken before `state` when both are.
    wire: Mutex<Wire>,
    /// Set (under the state lock) before the session's error is: a flush
    /// that finds it clear needs no lock.
    failing: AtomicBool,
    pub(crate) replay_frames: usize,
    pub(crate) replay_bytes: usize,
    pub(crate) on_full: OnFull,
    pub(crate) receive_window: usize,
    pub(crate) ack_every: u64,
    pub(crate) ack_delay: std::time::Duration,
    /// Who the link's read readiness wakes; `read_waker` is its waker,
    /// which every read of the link polls with.
    pub(crate) reads: Arc<ReadDispatch>,
    pub(crate) read_waker: Waker,
}

impl Inner {
    pub(crate) fn new(config: &ResumeConfig) -> Self {
        let reads = Arc::new(ReadDispatch::default());
        Inner {
            state: Mutex::new(State {
                replay: VecDeque::new(),
                replay_bytes: 0,
                next_seq: 1,
                acked: 0,
                inbox: VecDeque::new(),
                received: 0,
                peer_closed: false,
                peer_gone: false,
                local_closed: false,
                front_gone: false,
                link_up: false,
                link_max_frame: usize::MAX,
                failed: None,
                done: false,
                reconnects: 0,
                last_cause: None,
                send_waker: None,
                recv_waker: None,
                driver_waker: None,
            }),
            replay_frames: config.replay_frames,
            replay_bytes: config.replay_bytes,
            on_full: config.on_full,
            receive_window: config.receive_window,
            ack_every: config.ack_every,
            ack_delay: config.ack_delay,
            reads: reads.clone(),
            read_waker: Waker::from(reads),
            wire: Mutex::new(Wire::new()),
            failing: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under the lock leaves the state consistent before
        // anything that could panic, so a poisoned lock still guards a
        // consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the session with `error` ([`State::fail`]) under the lock `s`
    /// of this `Inner`'s state.
    pub(crate) fn fail(&self, s: &mut State, error: ResumeError) -> Vec<Waker> {
        self.failing.store(true, Ordering::Release);
        s.fail(error)
    }

    /// The sending side of the link. Never taken while `state` is held.
    pub(crate) fn wire(&self) -> MutexGuard<'_, Wire> {
        // As with `lock`: every update leaves it consistent.
        self.wire.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the driver task, if it waits.
    fn wake_driver(&self) {
        let driver = self.lock().driver_waker.take();
        wake(driver);
    }

    /// The sending side of the link if no one holds it.
    fn try_wire(&self) -> Option<MutexGuard<'_, Wire>> {
        match self.wire.try_lock() {
            Ok(w) => Some(w),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

impl State {
    /// Ends the session with `error` (the first error wins), waking every
    /// waiting operation. Called through [`Inner::fail`] only.
    fn fail(&mut self, error: ResumeError) -> Vec<Waker> {
        if self.failed.is_none() && !self.done {
            self.failed = Some(error);
        }
        self.wake_all()
    }

    /// The driver's waker, to wake once the lock is let go, if `wanted`.
    fn driver_if(&mut self, wanted: bool) -> Option<Waker> {
        if wanted {
            self.driver_waker.take()
        } else {
            None
        }
    }

    pub(crate) fn wake_all(&mut self) -> Vec<Waker> {
        [
            self.send_waker.take(),
            self.recv_waker.take(),
            self.driver_waker.take(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

pub(crate) fn wake(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// What a resumable session reports about its reconnections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeStats {
    /// How many times the session got a new link and resumed.
    pub reconnects: u64,
    /// Why the last link was lost, if one was.
    pub last_cause: Option<String>,
    /// Whether a link is up right now.
    pub connected: bool,
    /// Frames in the replay buffer (sent or not, not acknowledged).
    pub unacked_frames: usize,
    /// Bytes in the replay buffer.
    pub unacked_bytes: usize,
    /// Frames the application handed over so far.
    pub frames_sent: u64,
    /// Frames received in order so far.
    pub frames_received: u64,
}

/// A cheap handle that reads a resumable session's [`ResumeStats`], also
/// after the session was turned into a [`RumpsteakSession`].
#[derive(Debug, Clone)]
pub struct ResumeHandle {
    inner: Arc<Inner>,
}

impl ResumeHandle {
    /// The session's reconnection metadata now.
    pub fn stats(&self) -> ResumeStats {
        let s = self.inner.lock();
        ResumeStats {
            reconnects: s.reconnects,
            last_cause: s.last_cause.clone(),
            connected: s.link_up,
            unacked_frames: s.replay.len(),
            unacked_bytes: s.replay_bytes,
            frames_sent: s.next_seq - 1 - u64::from(s.local_closed),
            frames_received: s.received - u64::from(s.peer_closed),
        }
    }

    /// Why the session ended, if it ended with a bound.
    pub fn error(&self) -> Option<ResumeError> {
        self.inner.lock().failed.clone()
    }

    /// Whether the driver is finished: the session ended, orderly or not.
    pub fn is_finished(&self) -> bool {
        let s = self.inner.lock();
        s.done || s.failed.is_some()
    }
}

/// A session that survives the loss of its underlying link.
///
/// Every frame is numbered per direction and kept in a bounded replay
/// buffer until the peer acknowledges it. When the link drops, a new one
/// comes from the [`Redial`] source (or, on the accepting side, from the
/// `ResumeListener`); both sides prove it is the same session (session
/// identifier, roles, the incarnation nonces exchanged at first connect,
/// and the peer identity the first link proved), say the last sequence
/// number each received, and resend exactly what the other lacks.
/// Operations in flight wait meanwhile. The bounds that end it are the
/// [`ResumeError`] variants.
///
/// It implements [`SessionTransport`]; [`into_session`](Self::into_session)
/// makes it a [`RumpsteakSession`] for the handler. A driver task on the
/// current tokio runtime keeps the timers, gets new links, and reads the
/// link while the application does not wait for a frame; a receive that
/// finds nothing received reads the link itself, and a send writes its
/// frame on the link itself, when the driver is not at it (otherwise they
/// leave the job to the driver). So a frame in either direction costs no
/// task switch.
///
/// A receive given up while it waited on the link (a timeout around it)
/// leaves the link's next readiness with the application's task. The
/// application's next use of the session (a send, a receive, a close, or
/// dropping it) hands the link to the driver, which reads at once; until
/// then, what arrives is read by the driver when its timer next fires, at
/// the latest a heartbeat later.
///
/// # Cancel safety
///
/// Every operation is one step on the shared state: a send either put its
/// whole frame in the replay buffer or nothing, a receive either took a
/// frame out of the received queue or nothing. A dropped `send_frame` or
/// `recv_frame` future so loses nothing, across a reconnection too, since
/// the replay buffer and the received queue outlive every link.
///
/// # Flush
///
/// A flush completes once the frames are in the replay buffer: from there
/// they reach the peer, exactly once and in order, unless the session ends
/// with an error. Sends wait while the buffer is full (for
/// acknowledgements), which is the backpressure a slow peer exerts.
pub struct ResumableSession {
    inner: Arc<Inner>,
    peer_identity: Option<Box<str>>,
}

impl ResumableSession {
    /// Opens a resumable session over the links `source` gives: waits for
    /// the first link and the first resume exchange (bounded by the
    /// reconnect deadline), then returns the session.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_resume::{ResumableSession, ResumeConfig};
    /// use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
    /// use tokio::sync::mpsc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // An in-memory "network": Alice dials by making a channel pair and
    /// // handing Bob the other end.
    /// let (to_bob, mut incoming) = mpsc::unbounded_channel::<RumpsteakSession>();
    /// let alice = ResumableSession::open(
    ///     move || {
    ///         let (a, b) = SimpleChannel::pair();
    ///         let sent = to_bob.send(b.into());
    ///         async move {
    ///             sent.map_err(|_| rumpsteak_aura::TransportError::closed())?;
    ///             Ok(RumpsteakSession::from(a))
    ///         }
    ///     },
    ///     ResumeConfig::new("demo", "Alice", "Bob"),
    /// );
    /// let incoming = std::sync::Arc::new(tokio::sync::Mutex::new(incoming));
    /// let bob = ResumableSession::open(
    ///     move || {
    ///         let incoming = incoming.clone();
    ///         async move { incoming.lock().await.recv().await.ok_or_else(rumpsteak_aura::TransportError::closed) }
    ///     },
    ///     ResumeConfig::new("demo", "Bob", "Alice"),
    /// );
    /// let (alice, bob) = tokio::join!(alice, bob);
    /// let (mut alice, mut bob) = (alice?.into_session(), bob?.into_session());
    /// alice.send_frame(b"hello".to_vec()).await?;
    /// assert_eq!(bob.recv_frame().await?, b"hello");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(
        source: impl Redial,
        config: ResumeConfig,
    ) -> Result<ResumableSession, ResumeError> {
        Self::start(Source::Redial(Box::new(source)), config, None, None).await
    }

    pub(crate) async fn start(
        source: Source,
        config: ResumeConfig,
        first: Option<crate::driver::RoutedLink>,
        incarnation: Option<u64>,
    ) -> Result<ResumableSession, ResumeError> {
        let inner = Arc::new(Inner::new(&config));
        let mut driver = match incarnation {
            Some(i) => Driver::with_incarnation(inner.clone(), source, config, i),
            None => Driver::new(inner.clone(), source, config),
        };
        let link = match driver.connect(None, first).await {
            Ok(Some(link)) => link,
            Ok(None) => {
                return Err(ResumeError::Protocol(
                    "session ended before it began".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let peer_identity = link.peer_identity().map(Box::from);
        tokio::spawn(driver.run(link));
        Ok(ResumableSession {
            inner,
            peer_identity,
        })
    }

    /// A handle that reads this session's stats later.
    pub fn handle(&self) -> ResumeHandle {
        ResumeHandle {
            inner: self.inner.clone(),
        }
    }

    /// The session's reconnection metadata now.
    pub fn stats(&self) -> ResumeStats {
        self.handle().stats()
    }

    /// This session behind the one session interface, for the handler.
    pub fn into_session(self) -> RumpsteakSession {
        RumpsteakSession::from_transport(self)
    }

    fn error(s: &State) -> Option<TransportError> {
        if let Some(e) = &s.failed {
            return Some(e.clone().into_transport());
        }
        if s.local_closed || s.peer_gone || s.done {
            return Some(TransportError::closed());
        }
        None
    }
}

impl SessionTransport for ResumableSession {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        let mut s = self.inner.lock();
        if let Some(e) = Self::error(&s) {
            return Poll::Ready(Err(e));
        }
        let frames_full = s.replay.len() >= self.inner.replay_frames;
        let bytes_full = s.replay_bytes >= self.inner.replay_bytes;
        if !frames_full && !bytes_full {
            return Poll::Ready(Ok(()));
        }
        if !s.link_up && self.inner.on_full == OnFull::Fail {
            let limit = if frames_full {
                ReplayLimit::Frames(self.inner.replay_frames)
            } else {
                ReplayLimit::Bytes(self.inner.replay_bytes)
            };
            let error = ResumeError::ReplayOverflow { limit };
            tracing::debug!(%error, "resumable session ends");
            let wakers = self.inner.fail(&mut s, error.clone());
            drop(s);
            wake(wakers);
            return Poll::Ready(Err(error.into_transport()));
        }
        s.send_waker = Some(cx.waker().clone());
        // Room comes with acknowledgements, which the driver reads while
        // the application is not reading the link itself.
        let driver = s.driver_waker.take();
        drop(s);
        // The driver is woken either way.
        let _ = self.inner.reads.app_leaves();
        wake(driver);
        Poll::Pending
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        // Sending, the application is not waiting for the link (a receive
        // it gave up may have left it marked waiting, or woken for a
        // readiness it never read): what the link receives now is the
        // driver's to read.
        if self.inner.reads.app_leaves() {
            self.inner.wake_driver();
        }
        let mut s = self.inner.lock();
        if let Some(e) = Self::error(&s) {
            return Err(e);
        }
        if frame.len() > self.inner.replay_bytes {
            return Err(TransportError::frame_too_large(
                frame.len(),
                self.inner.replay_bytes,
            ));
        }
        let link_limit = s.link_max_frame.saturating_sub(MAX_DATA_HEADER);
        if frame.len() > link_limit {
            return Err(TransportError::frame_too_large(frame.len(), link_limit));
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        s.replay_bytes += frame.len();
        s.replay.push_back(Out {
            seq,
            close: false,
            payload: frame,
        });
        let link_up = s.link_up;
        drop(s);
        // The frame is in the replay buffer: what follows only decides who
        // writes it. Written here when the driver is not at the link (which
        // saves waking it); otherwise, or when the link cannot take it all
        // now, the driver does.
        let written = link_up
            && match self.inner.wire.try_lock() {
                Ok(mut w) => w.send_from_front(&self.inner),
                Err(_) => false,
            };
        if !written {
            let driver = self.inner.lock().driver_waker.take();
            wake(driver);
        }
        Ok(())
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if !self.inner.failing.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let s = self.inner.lock();
        match &s.failed {
            Some(e) => Poll::Ready(Err(e.clone().into_transport())),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let inner = &*self.inner;
        // Taken before the state, as everywhere; held, it keeps the driver
        // from reading (and filling the received queue) meanwhile.
        let mut wire = inner.try_wire();
        let mut s = inner.lock();
        if let Some(frame) = s.inbox.pop_front() {
            // The driver stops reading at a full window; taking a frame
            // out makes room again.
            // So does a wake this receive got for the link and leaves unread.
            let wanted = s.inbox.len() + 1 >= inner.receive_window || inner.reads.app_leaves();
            let driver = s.driver_if(wanted);
            drop(s);
            drop(wire);
            wake(driver);
            return Poll::Ready(Ok(frame));
        }
        if let Some(e) = &s.failed {
            return Poll::Ready(Err(e.clone().into_transport()));
        }
        if s.peer_closed || s.peer_gone || s.done {
            return Poll::Ready(Err(TransportError::closed()));
        }
        if !s
            .recv_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            s.recv_waker = Some(cx.waker().clone());
        }
        // Nothing received: read the link here if it is up and free, which
        // saves waking the driver task for every frame. Otherwise the driver
        // reads, and wakes this receive through `recv_waker`.
        let read = match wire.as_mut() {
            Some(w) if s.link_up => {
                inner.reads.app_waits(cx.waker());
                let mut read_cx = Context::from_waker(&inner.read_waker);
                w.read_for_front(inner, &mut s, &mut read_cx)
            }
            _ => FrontRead::Handover(None),
        };
        match read {
            FrontRead::Frame {
                frame,
                sender,
                wake_driver,
                ack_now,
            } => {
                s.recv_waker = None;
                let mut driver = s.driver_if(wake_driver);
                drop(s);
                inner.reads.app_read();
                // An acknowledgement the link did not take whole, or that
                // broke it, is the driver's to finish or to act on, as with
                // a send's frame: a broken link found here is noticed by the
                // driver's next poll only.
                if ack_now
                    && let Some(w) = wire.as_mut()
                    && !w.send_from_front(inner)
                    && driver.is_none()
                {
                    driver = inner.lock().driver_waker.take();
                }
                drop(wire);
                wake(sender);
                wake(driver);
                Poll::Ready(Ok(frame))
            }
            FrontRead::Pending(sender) => {
                drop(s);
                drop(wire);
                wake(sender);
                Poll::Pending
            }
            FrontRead::Handover(sender) => {
                // The link's readiness and what the front left are the
                // driver's now; it runs (again, if it was running) and
                // reads on.
                let up = s.link_up;
                let driver = s.driver_if(up);
                drop(s);
                drop(wire);
                // Woken above while the link is up; a new link is read by
                // the driver in any case.
                let _ = inner.reads.app_leaves();
                wake(sender);
                wake(driver);
                Poll::Pending
            }
        }
    }

    fn close(&mut self) {
        // As with a send: a receive given up while it waited on the link
        // left its readiness with this task, and the driver now waits for
        // the acknowledgement of the close marker (the session's last act,
        // when it is dropped), which only the driver reads then.
        let unread = self.inner.reads.app_leaves();
        let mut s = self.inner.lock();
        if s.local_closed {
            drop(s);
            if unread {
                self.inner.wake_driver();
            }
            return;
        }
        s.local_closed = true;
        let seq = s.next_seq;
        s.next_seq += 1;
        s.replay.push_back(Out {
            seq,
            close: true,
            payload: Vec::new(),
        });
        let driver = s.driver_waker.take();
        drop(s);
        wake(driver);
    }

    fn peer_identity(&self) -> Option<&str> {
        self.peer_identity.as_deref()
    }
}

impl Drop for ResumableSession {
    fn drop(&mut self) {
        self.close();
        let mut s = self.inner.lock();
        s.front_gone = true;
        let driver = s.driver_waker.take();
        drop(s);
        wake(driver);
    }
}

impl fmt::Debug for ResumableSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableSession")
            .field("stats", &self.stats())
            .field("peer_identity", &self.peer_identity)
            .finish_non_exhaustive()
    }
}
