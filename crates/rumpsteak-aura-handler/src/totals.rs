//! What a layer reads of an endpoint while an operation borrows it.

use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rumpsteak_aura::Role;

use crate::RumpsteakEndpoint;
use crate::metadata::{LastOp, Traffic};

/// What an endpoint shares with its [`TotalsHandle`]s. Only the endpoint
/// writes the counters (through `&mut` of it), so plain relaxed loads and
/// stores suffice: a read on the endpoint's own thread sees every
/// operation that completed before it.
pub(crate) struct SharedTotals {
    open: AtomicUsize,
    /// The endpoint's traffic when the handle was made: the totals are
    /// this plus what every session counted since.
    before: Traffic,
    /// One entry per session registered since the handle was made (and
    /// per session open then), in registration order; never shrinks.
    sessions: Mutex<Vec<SessionHandle>>,
    /// `sessions.len()`, read without the lock.
    session_count: AtomicUsize,
}

impl SharedTotals {
    /// Counters starting from the endpoint's `total` traffic so far.
    pub(crate) fn new(total: Traffic, open: u32) -> Self {
        SharedTotals {
            open: AtomicUsize::new(open as usize),
            before: total,
            sessions: Mutex::new(Vec::new()),
            session_count: AtomicUsize::new(0),
        }
    }

    /// Copies the endpoint's count of open sessions.
    pub(crate) fn publish_open(&self, open: u32) {
        self.open.store(open as usize, Ordering::Relaxed);
    }

    /// A new session's counters, listed for the handles.
    pub(crate) fn add_session(&self, peer: &str) -> Arc<SessionCounters> {
        let counters = Arc::new(SessionCounters::new(peer));
        let mut sessions = self.lock();
        sessions.push(SessionHandle {
            counters: Arc::clone(&counters),
        });
        self.session_count.store(sessions.len(), Ordering::Relaxed);
        counters
    }

    /// The list of sessions. Nothing panics while holding the lock, and
    /// a list that was being pushed to is still whole, so a poisoned lock
    /// is taken as it is.
    fn lock(&self) -> MutexGuard<'_, Vec<SessionHandle>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The counters of one session, written by the endpoint after each
/// operation on it that succeeded, read by [`SessionHandle`]s.
pub(crate) struct SessionCounters {
    peer: String,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    labels_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    labels_received: AtomicU64,
}

/// Adds `n` to a counter only the endpoint writes: a load and a store,
/// cheaper than an atomic read-modify-write.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl SessionCounters {
    fn new(peer: &str) -> Self {
        SessionCounters {
            peer: peer.to_owned(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            labels_sent: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            labels_received: AtomicU64::new(0),
        }
    }

    /// Counts a step that succeeded, moving a frame of `bytes`. Inlined
    /// where `op` is known, so that only its own counters are touched.
    #[inline(always)]
    pub(crate) fn count(&self, op: LastOp, bytes: usize) {
        let bytes = bytes as u64;
        match op {
            LastOp::Sent(_) | LastOp::Chose(_) => {
                bump(&self.frames_sent, 1);
                bump(&self.bytes_sent, bytes);
                if let LastOp::Chose(_) = op {
                    bump(&self.labels_sent, 1);
                }
            }
            LastOp::Received(_) | LastOp::Offered(_) => {
                bump(&self.frames_received, 1);
                bump(&self.bytes_received, bytes);
                if let LastOp::Offered(_) = op {
                    bump(&self.labels_received, 1);
                }
            }
            _ => {}
        }
    }
}

/// What one session of an endpoint moved since a [`TotalsHandle`] of the
/// endpoint was made (or since the session was registered, if later):
/// whole frames, header included, counted when a step succeeds. Labels
/// are the frames of `choose` and `offer`; the other frames are messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCounts {
    /// Frames sent: messages and labels.
    pub frames_sent: u64,
    /// Bytes of the frames sent.
    pub bytes_sent: u64,
    /// Of the frames sent, those that carried a label (`choose`).
    pub labels_sent: u64,
    /// Frames received: messages and labels.
    pub frames_received: u64,
    /// Bytes of the frames received.
    pub bytes_received: u64,
    /// Of the frames received, those that carried a label (`offer`).
    pub labels_received: u64,
}

impl SessionCounts {
    /// What was counted between `earlier` and `self`, two readings of the
    /// same session (nothing, for a count that did not grow).
    #[inline]
    pub fn since(&self, earlier: &SessionCounts) -> SessionCounts {
        SessionCounts {
            frames_sent: self.frames_sent.saturating_sub(earlier.frames_sent),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            labels_sent: self.labels_sent.saturating_sub(earlier.labels_sent),
            frames_received: self.frames_received.saturating_sub(earlier.frames_received),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            labels_received: self.labels_received.saturating_sub(earlier.labels_received),
        }
    }
}

/// Reads one session's [`SessionCounts`] without borrowing its endpoint.
/// Listed by [`TotalsHandle::sessions`]; it keeps reading the session's
/// final counts once the session is closed or replaced, or the endpoint
/// dropped.
#[derive(Clone)]
pub struct SessionHandle {
    counters: Arc<SessionCounters>,
}

impl SessionHandle {
    /// The peer of the session, in its `Debug` form.
    pub fn peer(&self) -> &str {
        &self.counters.peer
    }

    /// What the session moved so far.
    #[inline]
    pub fn counts(&self) -> SessionCounts {
        let c = &*self.counters;
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SessionCounts {
            frames_sent: read(&c.frames_sent),
            bytes_sent: read(&c.bytes_sent),
            labels_sent: read(&c.labels_sent),
            frames_received: read(&c.frames_received),
            bytes_received: read(&c.bytes_received),
            labels_received: read(&c.labels_received),
        }
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("peer", &self.peer())
            .field("counts", &self.counts())
            .finish()
    }
}

/// Reads an endpoint's traffic, per session and in total, and its
/// open-session count without borrowing it, so that a layer can read them
/// once an operation that borrows the endpoint has completed, or at any
/// time from elsewhere.
///
/// Made by [`RumpsteakEndpoint::totals_handle`]; from then on the endpoint
/// keeps it up to date: each step that succeeds counts its frame in its
/// session's [`SessionCounts`] (a session registered later gets counters
/// of its own, listed by [`sessions`](Self::sessions)), and registering
/// or closing a session stores the open count. The byte totals are those
/// of [`RumpsteakEndpoint::total_traffic`] and the count that of
/// [`RumpsteakEndpoint::active_channel_count`]. A clone reads the same
/// endpoint. Once the endpoint is dropped (and its sessions with it), the
/// handle reads its final figures and no open session.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura::ChoreoHandler;
/// use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Party { Alice, Bob }
/// impl rumpsteak_aura::Role for Party {
///     type Message = ();
///     fn seal(&mut self) {}
///     fn is_sealed(&self) -> bool { false }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (a, _b) = SimpleChannel::pair();
/// let mut ep = RumpsteakEndpoint::new(Party::Alice);
/// ep.register_channel(Party::Bob, a);
/// let totals = ep.totals_handle();
/// assert!(totals.is_of(&ep));
/// assert_eq!(totals.open_sessions(), 1);
/// RumpsteakHandler::<Party, ()>::new().send(&mut ep, Party::Bob, &7u8).await?;
/// assert_eq!(totals.bytes_sent(), ep.total_traffic().bytes_sent);
/// let bob = &totals.sessions(0)[0];
/// assert_eq!(bob.peer(), "Bob");
/// assert_eq!(bob.counts().frames_sent, 1);
/// ep.close_channel(&Party::Bob);
/// assert_eq!(totals.open_sessions(), 0);
/// # Ok::<(), rumpsteak_aura::ChoreographyError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TotalsHandle {
    shared: Arc<SharedTotals>,
}

impl TotalsHandle {
    pub(crate) fn new(shared: Arc<SharedTotals>) -> Self {
        TotalsHandle { shared }
    }

    /// The endpoint's traffic: what it was when the handle was made, plus
    /// what every session counted since. Sums the sessions.
    fn total(&self) -> Traffic {
        let mut total = self.shared.before;
        for s in self.shared.lock().iter() {
            let c = s.counts();
            total.frames_sent += c.frames_sent;
            total.bytes_sent += c.bytes_sent;
            total.frames_received += c.frames_received;
            total.bytes_received += c.bytes_received;
        }
        total
    }

    /// Frames the endpoint sent.
    pub fn frames_sent(&self) -> u64 {
        self.total().frames_sent
    }

    /// Frames the endpoint received.
    pub fn frames_received(&self) -> u64 {
        self.total().frames_received
    }

    /// Bytes of the frames the endpoint sent, header included.
    pub fn bytes_sent(&self) -> u64 {
        self.total().bytes_sent
    }

    /// Bytes of the frames the endpoint received, header included.
    pub fn bytes_received(&self) -> u64 {
        self.total().bytes_received
    }

    /// How many of the endpoint's channels are open.
    #[inline]
    pub fn open_sessions(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// How many sessions [`sessions`](Self::sessions) lists: one read,
    /// without the lock, so that a reader can tell cheaply whether there
    /// are new ones.
    #[inline]
    pub fn session_count(&self) -> usize {
        self.shared.session_count.load(Ordering::Relaxed)
    }

    /// The sessions counted, from the `from`th on, in registration order:
    /// those open when the first handle was made, then every session
    /// registered since (a replaced one stays listed, with its final
    /// counts, beside the one that replaced it).
    pub fn sessions(&self, from: usize) -> Vec<SessionHandle> {
        let sessions = self.shared.lock();
        sessions.get(from..).unwrap_or_default().to_vec()
    }

    /// Whether this handle reads `ep`.
    #[inline]
    pub fn is_of<R>(&self, ep: &RumpsteakEndpoint<R>) -> bool
    where
        R: Role + Eq + Hash + Clone + fmt::Debug,
    {
        ep.shares_totals(&self.shared)
    }
}

/// A handle of no endpoint: it reads no traffic and no session, and
/// [`is_of`](TotalsHandle::is_of) no endpoint. For a layer that keeps
/// the handle of the endpoint it used last, before it has used any: one
/// test of the handle then tells whether an endpoint is the last one.
impl Default for TotalsHandle {
    fn default() -> Self {
        TotalsHandle::new(Arc::new(SharedTotals::new(Traffic::default(), 0)))
    }
}

impl fmt::Debug for TotalsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotalsHandle")
            .field("bytes_sent", &self.bytes_sent())
            .field("bytes_received", &self.bytes_received())
            .field("open_sessions", &self.open_sessions())
            .field("sessions", &self.session_count())
            .finish()
    }
}
