//! What a layer reads of an endpoint while an operation borrows it.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rumpsteak_aura::Role;

use crate::RumpsteakEndpoint;
use crate::metadata::Traffic;

/// The counters an endpoint shares with its [`TotalsHandle`]s. Only the
/// endpoint writes them (through `&mut` of it), so plain relaxed loads and
/// stores suffice: a read on the endpoint's own thread sees every
/// operation that completed before it.
#[derive(Default)]
pub(crate) struct SharedTotals {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    open: AtomicUsize,
}

impl SharedTotals {
    /// Copies the endpoint's byte totals.
    #[inline(always)]
    pub(crate) fn publish_bytes(&self, total: &Traffic) {
        self.bytes_sent.store(total.bytes_sent, Ordering::Relaxed);
        self.bytes_received
            .store(total.bytes_received, Ordering::Relaxed);
    }

    /// Copies the endpoint's count of open sessions.
    pub(crate) fn publish_open(&self, open: u32) {
        self.open.store(open as usize, Ordering::Relaxed);
    }
}

/// Reads an endpoint's byte totals and open-session count without
/// borrowing it, so that a layer can read them once an operation that
/// borrows the endpoint has completed, from a future written by hand.
///
/// Made by [`RumpsteakEndpoint::totals_handle`]; from then on the endpoint
/// keeps it up to date: each completed operation stores the two byte
/// totals, and registering or closing a session stores the count. The
/// values are those of [`RumpsteakEndpoint::total_traffic`] and
/// [`RumpsteakEndpoint::active_channel_count`]. A clone reads the same
/// endpoint. Once the endpoint is dropped (and its sessions with it), the
/// handle reads its final byte totals and no open session.
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

    /// Bytes of the frames the endpoint sent, header included.
    #[inline]
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::Relaxed)
    }

    /// Bytes of the frames the endpoint received, header included.
    #[inline]
    pub fn bytes_received(&self) -> u64 {
        self.shared.bytes_received.load(Ordering::Relaxed)
    }

    /// How many of the endpoint's channels are open.
    #[inline]
    pub fn open_sessions(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
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

impl fmt::Debug for TotalsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotalsHandle")
            .field("bytes_sent", &self.bytes_sent())
            .field("bytes_received", &self.bytes_received())
            .field("open_sessions", &self.open_sessions())
            .finish()
    }
}
