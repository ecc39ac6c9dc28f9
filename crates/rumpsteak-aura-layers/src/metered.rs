use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role};
use rumpsteak_aura_handler::{RumpsteakEndpoint, TotalsHandle};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ext::HandlerExt;
use crate::op::{ErrorClass, OpKind};

#[cfg(feature = "metrics")]
mod export;

/// A layer that counts every operation, per peer: operations by kind,
/// bytes, errors by class, cancelled operations and a latency histogram.
///
/// Read the figures in process with [`Metered::snapshot`]. With the
/// `metrics` feature they are also exported through the `metrics` crate
/// facade, to whatever recorder the application installed (a library never
/// installs one). The names and labels, all low-cardinality (roles are the
/// protocol's, classes and kinds are fixed sets):
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `rumpsteak_operations_total` | counter | `role`, `peer`, `op` |
/// | `rumpsteak_operations_cancelled_total` | counter | `role`, `peer` |
/// | `rumpsteak_bytes_sent_total` | counter | `role`, `peer` |
/// | `rumpsteak_bytes_received_total` | counter | `role`, `peer` |
/// | `rumpsteak_errors_total` | counter | `role`, `peer`, `op`, `class` |
/// | `rumpsteak_operation_duration_seconds` | histogram | `role`, `peer`, `op` |
/// | `rumpsteak_sessions_open` | gauge | `role` |
///
/// `op` is one of [`OpKind::name`], `class` one of [`ErrorClass::name`],
/// `role` and `peer` the roles' `Debug` forms: low-cardinality as long as
/// the role type's `Debug` form is (a fieldless enum, such as the one
/// `protocol!` generates, is; a role that carries an id in its `Debug`
/// form makes one series per id). The handles of a peer are
/// registered with the recorder in force (thread-local or global) when the
/// first operation with that peer completes or is cancelled (in its
/// future's `poll` or drop). [`Metered::describe_metrics`] gives the
/// recorder their descriptions.
///
/// The exported counters are brought up to the in-process ones in batches:
/// at every timed operation (the first, then one in
/// [`latency_sampling`](Metered::latency_sampling)), at every failed or
/// cancelled operation, by [`Metered::flush_metrics`] and when the layer
/// is dropped. So what a scraper sees of a layer's operation and byte
/// counters is at most `latency_sampling - 1` completed operations behind
/// [`Metered::snapshot`] (15 by default; none with
/// `with_latency_sampling(1)`), never ahead, and complete once the layer
/// is dropped; errors, cancellations, latencies and the session gauge are
/// exported as they happen. The bound is in operations, not in time: a
/// layer that goes idle leaves its last untimed operations unexported
/// until its next timed operation, [`Metered::flush_metrics`] or its drop,
/// however long that takes; call `flush_metrics` when a session ends if a
/// scraper must see it whole while the layer lives on. (A batch costs
/// nothing per operation; calling
/// the `metrics` handles on every operation cost about 14 instructions
/// each, recorder or not.)
///
/// What counts: an operation that completed, with success or an error, is
/// counted once, in `operations` and, if it failed, in `errors`; bytes are
/// the frames' sizes (header included), read from the endpoint's
/// [`total_traffic`](RumpsteakEndpoint::total_traffic) before and from its
/// [`TotalsHandle`] after, never by encoding again. An operation
/// whose future was polled and then dropped before it completed (a timeout
/// around it, a `select!`) counts only in `cancelled`, unless it was a
/// `send` or `choose` whose frame the transport had already taken (it was
/// still flushing): the peer gets that frame and the endpoint records the
/// step, so the layer counts it as a completed operation, with its bytes.
/// The step under way when the deadline of [`HandlerExt::within`] passes
/// counts the same way as any dropped future, whereas
/// [`HandlerExt::recv_timeout`] and `offer_timeout` complete with a
/// timeout error and count in `operations` and `errors` (class
/// `timeout`). A future dropped before its first poll is no operation
/// (the inner handler has not begun it): it counts nothing, and if it was
/// the one to be timed, the next operation is timed instead.
///
/// The open-session gauge is shared by every `Metered` layer of a role:
/// each adds the number of its endpoint's open peer sessions (channels),
/// read after each of its operations, and takes its share out again when
/// it is dropped. So with several sessions of one role under way, the
/// gauge is their total, and it falls back when they end.
///
/// Latency is the time from when an operation's future is made (which,
/// for a future that is awaited, is just before its first poll) to its
/// completion. Timing costs two clock reads, which on the in-memory
/// channel is a sizeable part of an operation, so by default one operation
/// in [`DEFAULT_LATENCY_SAMPLING`] (16) is timed, starting with the first;
/// the counters and byte totals stay exact.
/// [`Metered::with_latency_sampling`]`(1)` times every operation.
///
/// The counters are plain integers updated through `&mut self`, which is
/// what keeps the layer within a few nanoseconds of the bare handler; that
/// is why the layer is not `Clone`. Read them from the layer, or from
/// `inner()` of the layer above it.
pub struct Metered<H: ChoreoHandler> {
    inner: H,
    meter: Meter<H::Role>,
}

/// Everything of [`Metered`] but the inner handler: what an operation
/// updates, borrowed apart from the handler so that both can be used while
/// the operation runs. An operation's future holds one reference to it.
struct Meter<R> {
    role: Option<String>,
    peers: Vec<PeerStats<R>>,
    /// The endpoint's open channels as read after the last operation;
    /// [`NOT_READ`] before the first.
    open_sessions: usize,
    sample_every: u32,
    /// Operations to go until the next timed one, this one included: the
    /// operation that brings it to 0 is timed (1 times the next).
    until_sample: u32,
    /// The local role's `Debug` form, made when the endpoint is first at
    /// hand; `role` takes it at the first operation.
    local: Option<String>,
    /// The handle that reads the totals of the endpoint of the last
    /// operation, made at the first operation on that endpoint.
    totals: Option<TotalsHandle>,
    /// The start of the operation under way when it is timed. Kept here
    /// rather than in the operation's future: a smaller future is cheaper
    /// to move.
    start: Option<Instant>,
    /// The slot in `peers` of the peer of the last operation (`0` before
    /// any): looked at first.
    last_peer: u32,
    /// The peer of the operation under way when the layer had not met it
    /// (its slot is [`NEW_PEER`]): put in `peers` when it is first counted.
    new: Option<R>,
    #[cfg(feature = "metrics")]
    sessions_gauge: export::SessionsShare,
}

/// [`Meter::open_sessions`] before any operation read it.
const NOT_READ: usize = usize::MAX;

/// How many latency buckets: bucket `i` holds durations below `2^i`
/// nanoseconds (and at least `2^(i-1)`), the last one everything longer.
const BUCKETS: usize = 40;

/// One operation in how many [`Metered`] times by default.
pub const DEFAULT_LATENCY_SAMPLING: u32 = 16;

struct PeerStats<R> {
    role: R,
    name: String,
    ops: [u64; 4],
    cancelled: u64,
    bytes_sent: u64,
    bytes_received: u64,
    errors: [u64; 8],
    latency: Histogram,
    #[cfg(feature = "metrics")]
    export: export::PeerExport,
}

#[cfg(feature = "metrics")]
impl<R> PeerStats<R> {
    /// Brings this peer's exported counters up to the in-process ones.
    fn flush_export(&mut self) {
        self.export
            .flush(&self.ops, self.bytes_sent, self.bytes_received);
    }
}

#[cfg(feature = "metrics")]
impl<R> Drop for Meter<R> {
    /// What was not exported yet is, before the layer goes.
    fn drop(&mut self) {
        for p in &mut self.peers {
            p.flush_export();
        }
    }
}

#[derive(Clone)]
struct Histogram {
    buckets: [u64; BUCKETS],
    count: u64,
    sum_ns: u128,
    max_ns: u64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [0; BUCKETS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }

    #[inline]
    fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = ((u64::BITS - ns.leading_zeros()) as usize).min(BUCKETS - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    fn snapshot(&self) -> LatencyHistogram {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (bucket_bound(i), *n))
            .collect();
        LatencyHistogram {
            count: self.count,
            sum: Duration::from_nanos(u64::try_from(self.sum_ns).unwrap_or(u64::MAX)),
            max: Duration::from_nanos(self.max_ns),
            buckets,
        }
    }
}

/// The upper bound of bucket `i`; the last bucket has none.
fn bucket_bound(i: usize) -> Option<Duration> {
    (i < BUCKETS - 1).then(|| Duration::from_nanos(1u64 << i))
}

/// The figures of one [`Metered`] layer, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The local role, in its `Debug` form, once an operation ran.
    pub role: Option<String>,
    /// The endpoint's open channels, as read after the last operation.
    pub open_sessions: usize,
    /// One entry per peer, in the order the layer first met them.
    pub peers: Vec<PeerMetrics>,
}

impl MetricsSnapshot {
    /// The figures for the peer whose `Debug` form is `name`.
    pub fn peer(&self, name: &str) -> Option<&PeerMetrics> {
        self.peers.iter().find(|p| p.peer == name)
    }

    /// Operations with every peer, by kind.
    pub fn total_operations(&self) -> OpCounts {
        let mut total = OpCounts::default();
        for p in &self.peers {
            total.send += p.operations.send;
            total.recv += p.operations.recv;
            total.choose += p.operations.choose;
            total.offer += p.operations.offer;
        }
        total
    }
}

impl fmt::Display for MetricsSnapshot {
    /// A table, one line per peer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({} open sessions)",
            self.role.as_deref().unwrap_or("(no operation yet)"),
            self.open_sessions
        )?;
        for p in &self.peers {
            let o = &p.operations;
            writeln!(
                f,
                "  with {:<12} send {:>3}  recv {:>3}  choose {:>3}  offer {:>3}  \
                 cancelled {:>2}  errors {:>2}  bytes out {:>5} in {:>5}  p50 {:?}  max {:?}",
                p.peer,
                o.send,
                o.recv,
                o.choose,
                o.offer,
                p.cancelled,
                p.errors.total(),
                p.bytes_sent,
                p.bytes_received,
                p.latency.quantile(0.5).unwrap_or_default(),
                p.latency.max,
            )?;
        }
        Ok(())
    }
}

/// The figures for one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PeerMetrics {
    /// The peer, in its `Debug` form.
    pub peer: String,
    /// Completed operations (successful or not), by kind.
    pub operations: OpCounts,
    /// Operations whose future was dropped before completing.
    pub cancelled: u64,
    /// Bytes of the frames sent, header included.
    pub bytes_sent: u64,
    /// Bytes of the frames received, header included.
    pub bytes_received: u64,
    /// Failed operations, by class.
    pub errors: ErrorCounts,
    /// The latency of the timed operations of every kind.
    pub latency: LatencyHistogram,
}

/// Operations by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpCounts {
    /// `send`s.
    pub send: u64,
    /// `recv`s, with or without a timeout.
    pub recv: u64,
    /// `choose`s.
    pub choose: u64,
    /// `offer`s of every form.
    pub offer: u64,
}

impl OpCounts {
    /// The count for one kind.
    pub fn get(&self, kind: OpKind) -> u64 {
        match kind {
            OpKind::Send => self.send,
            OpKind::Recv => self.recv,
            OpKind::Choose => self.choose,
            OpKind::Offer => self.offer,
        }
    }

    /// Every kind together.
    pub fn total(&self) -> u64 {
        self.send + self.recv + self.choose + self.offer
    }
}

/// Failed operations, by [`ErrorClass`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// [`ErrorClass::Timeout`].
    pub timeout: u64,
    /// [`ErrorClass::Closed`].
    pub closed: u64,
    /// [`ErrorClass::Transport`].
    pub transport: u64,
    /// [`ErrorClass::NoChannel`].
    pub no_channel: u64,
    /// [`ErrorClass::Serialization`].
    pub serialization: u64,
    /// [`ErrorClass::Protocol`].
    pub protocol: u64,
    /// [`ErrorClass::UnexpectedLabel`].
    pub unexpected_label: u64,
    /// [`ErrorClass::Other`].
    pub other: u64,
}

impl ErrorCounts {
    fn from_array(a: &[u64; 8]) -> Self {
        ErrorCounts {
            timeout: a[ErrorClass::Timeout.index()],
            closed: a[ErrorClass::Closed.index()],
            transport: a[ErrorClass::Transport.index()],
            no_channel: a[ErrorClass::NoChannel.index()],
            serialization: a[ErrorClass::Serialization.index()],
            protocol: a[ErrorClass::Protocol.index()],
            unexpected_label: a[ErrorClass::UnexpectedLabel.index()],
            other: a[ErrorClass::Other.index()],
        }
    }

    /// The count for one class.
    pub fn get(&self, class: ErrorClass) -> u64 {
        match class {
            ErrorClass::Timeout => self.timeout,
            ErrorClass::Closed => self.closed,
            ErrorClass::Transport => self.transport,
            ErrorClass::NoChannel => self.no_channel,
            ErrorClass::Serialization => self.serialization,
            ErrorClass::Protocol => self.protocol,
            ErrorClass::UnexpectedLabel => self.unexpected_label,
            ErrorClass::Other => self.other,
        }
    }

    /// Every class together.
    pub fn total(&self) -> u64 {
        ErrorClass::ALL.iter().map(|c| self.get(*c)).sum()
    }
}

/// A latency histogram with power-of-two buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// How many operations were timed.
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
    /// The longest.
    pub max: Duration,
    /// The non-empty buckets, shortest first: each bucket's exclusive upper
    /// bound (a power of two of nanoseconds; `None` for the last, open
    /// bucket) and how many timed operations fell in it.
    pub buckets: Vec<(Option<Duration>, u64)>,
}

impl LatencyHistogram {
    /// An upper bound of the `q` quantile (`0.0..=1.0`): the bound of the
    /// bucket it falls in, or the maximum for the open bucket. `None` if
    /// nothing was timed.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = rumpsteak_aura_layers::LatencyHistogram::default();
    /// assert_eq!(h.quantile(0.5), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bound, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(
                    bound
                        .unwrap_or(self.max)
                        .min(self.max.max(Duration::from_nanos(1))),
                );
            }
        }
        Some(self.max)
    }
}

impl<H: ChoreoHandler> Metered<H> {
    /// Wraps `inner`, timing one operation in
    /// [`DEFAULT_LATENCY_SAMPLING`].
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    /// use rumpsteak_aura_layers::Metered;
    ///
    /// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    /// enum R { A }
    /// impl rumpsteak_aura::Role for R {
    ///     type Message = ();
    ///     fn seal(&mut self) {}
    ///     fn is_sealed(&self) -> bool { false }
    /// }
    ///
    /// let metered = Metered::new(RumpsteakHandler::<R, ()>::new());
    /// assert!(metered.snapshot().peers.is_empty());
    /// ```
    pub fn new(inner: H) -> Self {
        Metered {
            inner,
            meter: Meter {
                role: None,
                peers: Vec::new(),
                open_sessions: NOT_READ,
                sample_every: DEFAULT_LATENCY_SAMPLING,
                until_sample: 1,
                local: None,
                totals: None,
                start: None,
                last_peer: 0,
                new: None,
                #[cfg(feature = "metrics")]
                sessions_gauge: export::SessionsShare::default(),
            },
        }
    }

    /// Times one operation in `every` instead of all of them (`0` counts as
    /// `1`). The counters and byte totals stay exact; only the latency
    /// histogram (in process and exported) is sampled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)] enum R { A }
    /// # impl rumpsteak_aura::Role for R { type Message = (); fn seal(&mut self) {} fn is_sealed(&self) -> bool { false } }
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    /// use rumpsteak_aura_layers::Metered;
    ///
    /// let metered = Metered::new(RumpsteakHandler::<R, ()>::new()).with_latency_sampling(16);
    /// assert_eq!(metered.latency_sampling(), 16);
    /// ```
    pub fn with_latency_sampling(mut self, every: u32) -> Self {
        self.meter.sample_every = every.max(1);
        self.meter.until_sample = 1;
        self
    }

    /// One operation in how many is timed.
    pub fn latency_sampling(&self) -> u32 {
        self.meter.sample_every
    }

    /// The figures so far.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let m = &self.meter;
        MetricsSnapshot {
            role: m.role.clone(),
            open_sessions: if m.open_sessions == NOT_READ {
                0
            } else {
                m.open_sessions
            },
            peers: m
                .peers
                .iter()
                .map(|p| PeerMetrics {
                    peer: p.name.clone(),
                    operations: OpCounts {
                        send: p.ops[OpKind::Send.index()],
                        recv: p.ops[OpKind::Recv.index()],
                        choose: p.ops[OpKind::Choose.index()],
                        offer: p.ops[OpKind::Offer.index()],
                    },
                    cancelled: p.cancelled,
                    bytes_sent: p.bytes_sent,
                    bytes_received: p.bytes_received,
                    errors: ErrorCounts::from_array(&p.errors),
                    latency: p.latency.snapshot(),
                })
                .collect(),
        }
    }

    /// Gives the installed `metrics` recorder the description and unit of
    /// every metric this layer exports. Call it once, after installing the
    /// recorder; the layer works without it.
    #[cfg(feature = "metrics")]
    pub fn describe_metrics() {
        export::describe();
    }

    /// Brings the exported counters up to date with the snapshot's now.
    /// The layer does so itself at every timed operation (one in
    /// [`latency_sampling`](Self::latency_sampling)), at every error and
    /// cancellation, and when it is dropped; see the type's documentation.
    #[cfg(feature = "metrics")]
    pub fn flush_metrics(&mut self) {
        for p in &mut self.meter.peers {
            p.flush_export();
        }
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// Unwraps the handler; the figures are dropped.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<H> Debug for Metered<H>
where
    H: ChoreoHandler + Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metered")
            .field("inner", &self.inner)
            .field("role", &self.meter.role)
            .field(
                "peers",
                &self.meter.peers.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field("latency_sampling", &self.meter.sample_every)
            .finish()
    }
}

/// The bytes the endpoint has moved so far in the direction of `kind`.
#[inline]
fn moved<R>(ep: &RumpsteakEndpoint<R>, kind: OpKind) -> u64
where
    R: Role + Eq + Hash + Clone + Debug,
{
    let total = ep.total_traffic();
    if kind.is_outgoing() {
        total.bytes_sent
    } else {
        total.bytes_received
    }
}

/// [`OpState::slot`] of a peer the layer has not met yet.
/// A slot past the end of every peer list (as `usize` too), so that one
/// bounds test finds a new peer.
const NEW_PEER: u32 = u32::MAX;

/// Where a [`MeteredOp`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Made, not polled: dropped now, it counts nothing.
    Unpolled,
    /// Polled, not complete: dropped now, it counts as cancelled (or as
    /// completed, if the endpoint recorded it when the inner future went).
    Running,
    /// Complete and counted.
    Done,
}

pin_project_lite::pin_project! {
    /// The future of one metered operation: the inner handler's future and
    /// what the layer needs to count it. Written by hand rather than as an
    /// `async` block so that its `poll` inlines into the caller's, and
    /// reading the endpoint's totals after the inner future completes
    /// needs no borrow of the endpoint (see [`Meter::totals`]).
    struct MeteredOp<'a, F, R, K>
    where
        R: Clone,
        R: Debug,
        R: PartialEq,
        K: Kind,
    {
        // Declared first, so dropped first: `op`'s drop, which counts an
        // operation dropped before it completed, then sees what the inner
        // future's drop recorded on the endpoint (a send whose frame the
        // transport had taken).
        #[pin]
        inner: F,
        op: OpState<'a, R, K>,
    }
}

/// What a [`MeteredOp`] needs besides the inner future; its drop counts an
/// operation that did not complete.
struct OpState<'a, R, K>
where
    R: Clone + Debug + PartialEq,
    K: Kind,
{
    meter: &'a mut Meter<R>,
    /// The peer's place in `meter.peers`, or [`NEW_PEER`] with the peer in
    /// [`Meter::new`].
    slot: u32,
    /// The endpoint's byte total in the direction of the operation when
    /// the future was made (nothing can move bytes between then and its
    /// first poll: the future borrows the endpoint).
    before: u64,
    stage: Stage,
    kind: PhantomData<K>,
}

impl<R, K> Drop for OpState<'_, R, K>
where
    R: Clone + Debug + PartialEq,
    K: Kind,
{
    fn drop(&mut self) {
        if self.stage != Stage::Done {
            self.meter
                .dropped(self.stage, self.slot, K::KIND, self.before);
        }
    }
}

impl<F, T, R, K> Future for MeteredOp<'_, F, R, K>
where
    F: Future<Output = Result<T>>,
    R: Role + Eq + Hash + Clone + Debug,
    K: Kind,
{
    type Output = Result<T>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.project();
        let op = this.op;
        // A store rather than a test: cheaper on every poll.
        op.stage = Stage::Running;
        let poll = this.inner.poll(cx);
        // Counted where it lies: moving the result out and back costs more
        // than the counting.
        if let Poll::Ready(result) = &poll {
            op.stage = Stage::Done;
            op.meter.finish(op.slot, K::KIND, op.before, result);
        }
        poll
    }
}

/// What [`Meter::prepare`] found, before the operation's future is made.
struct Prepared {
    slot: u32,
    before: u64,
}

/// The kind of a [`MeteredOp`], in its type, so that what depends on it
/// is decided when the future's code is compiled.
trait Kind {
    const KIND: OpKind;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $kind:expr;)*) => {$(
        $(#[$doc])*
        struct $name;
        impl Kind for $name {
            const KIND: OpKind = $kind;
        }
    )*};
}

kinds! {
    /// `send`.
    SendOp = OpKind::Send;
    /// `recv` and `recv_timeout`.
    RecvOp = OpKind::Recv;
    /// `choose`.
    ChooseOp = OpKind::Choose;
    /// The forms of `offer`.
    OfferOp = OpKind::Offer;
}

impl Prepared {
    /// The metered future of `inner`.
    #[inline]
    fn wrap<F, R, K>(self, meter: &mut Meter<R>, inner: F) -> MeteredOp<'_, F, R, K>
    where
        R: Clone + Debug + PartialEq,
        K: Kind,
    {
        MeteredOp {
            inner,
            op: OpState {
                meter,
                slot: self.slot,
                before: self.before,
                stage: Stage::Unpolled,
                kind: PhantomData,
            },
        }
    }
}

impl<R: Clone + Debug + PartialEq> Meter<R> {
    /// The place in `peers` of a peer first counted now.
    fn new_peer(&mut self) -> Option<usize> {
        new_peer_index(
            &mut self.peers,
            &mut self.role,
            &self.local,
            &mut self.last_peer,
            self.new.take(),
        )
    }

    /// An operation's future dropped before it completed, after its inner
    /// future: not counted if it was never polled; counted as completed if
    /// the endpoint moved its bytes all the same (a send or choose whose
    /// frame the transport had taken, which the endpoint records when the
    /// inner future is dropped); as cancelled otherwise.
    #[cold]
    #[inline(never)]
    fn dropped(&mut self, stage: Stage, slot: u32, kind: OpKind, before: u64) {
        // The timing `prepare` began, if any, ends here.
        let timed = self.start.take().is_some();
        if stage != Stage::Running {
            // Never polled, so no operation: if it was the one to be timed,
            // the next one is, so that the sampling rate and the export's
            // lag bound (a flush at every timed operation) still hold.
            if timed {
                self.until_sample = 1;
            }
            return;
        }
        let slot = match slot {
            NEW_PEER => match self.new_peer() {
                Some(slot) => slot,
                None => return,
            },
            slot => slot as usize,
        };
        // `prepare` made the handle of the endpoint the operation ran on.
        let after = match &self.totals {
            Some(t) if kind.is_outgoing() => t.bytes_sent(),
            Some(t) => t.bytes_received(),
            None => before,
        };
        let moved = after.saturating_sub(before);
        // Peers are never removed.
        if let Some(stats) = self.peers.get_mut(slot) {
            if moved > 0 {
                stats.ops[kind.index()] += 1;
                if kind.is_outgoing() {
                    stats.bytes_sent += moved;
                } else {
                    stats.bytes_received += moved;
                }
                #[cfg(feature = "metrics")]
                stats.flush_export();
                return;
            }
            stats.cancelled += 1;
            #[cfg(feature = "metrics")]
            {
                stats.export.cancelled.increment(1);
                stats.flush_export();
            }
        }
    }
}

impl<R> Meter<R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    /// Starts the timing of the operation beginning now if it is the one
    /// to be timed: a decrement and a test of its result.
    #[inline]
    fn tick(&mut self) {
        // Never below 1 before the decrement: it is reset on reaching 0.
        self.until_sample = self.until_sample.wrapping_sub(1);
        if self.until_sample == 0 {
            self.sampled();
        }
    }

    /// The operation beginning now is timed, and the one `sample_every`
    /// later will be.
    #[cold]
    #[inline(never)]
    fn sampled(&mut self) {
        self.until_sample = self.sample_every;
        self.start = Some(Instant::now());
    }

    /// Looks at `ep` before an operation of `kind` with `peer` on it is
    /// made: what [`Prepared::wrap`] then needs.
    #[inline]
    fn prepare(&mut self, ep: &mut RumpsteakEndpoint<R>, peer: &R, kind: OpKind) -> Prepared {
        if !self.totals.as_ref().is_some_and(|t| t.is_of(ep)) {
            self.watch(ep);
        }
        // Most operations are with the peer of the one before.
        let last = self.last_peer;
        let slot = if self
            .peers
            .get(last as usize)
            .is_some_and(|p| &p.role == peer)
        {
            last
        } else {
            self.find(ep, peer)
        };
        self.tick();
        Prepared {
            slot,
            before: moved(ep, kind),
        }
    }

    /// The first operation on `ep`: its totals are read through a handle
    /// from now on.
    #[cold]
    #[inline(never)]
    fn watch(&mut self, ep: &mut RumpsteakEndpoint<R>) {
        self.totals = Some(ep.totals_handle());
    }

    /// The slot of `peer` when it is not the peer of the last operation.
    #[inline(never)]
    fn find(&mut self, ep: &RumpsteakEndpoint<R>, peer: &R) -> u32 {
        // A place past `u32::MAX` (never seen) is found again by name.
        match self.peers.iter().position(|p| &p.role == peer) {
            Some(i) if i < NEW_PEER as usize => {
                self.last_peer = i as u32;
                self.last_peer
            }
            _ => self.met(ep, peer),
        }
    }

    /// A peer not met before: its name is made at the operation's first
    /// poll, and the local role's now, while the endpoint is at hand.
    #[cold]
    #[inline(never)]
    fn met(&mut self, ep: &RumpsteakEndpoint<R>, peer: &R) -> u32 {
        if self.local.is_none() {
            self.local = Some(format!("{:?}", ep.local_role()));
        }
        self.new = Some(peer.clone());
        NEW_PEER
    }

    /// Counts a completed operation.
    #[inline(always)]
    fn finish<T>(&mut self, slot: u32, kind: OpKind, before: u64, result: &Result<T>) {
        // `prepare` made the handle of the endpoint the operation ran on.
        let (after, open) = match &self.totals {
            Some(t) if kind.is_outgoing() => (t.bytes_sent(), t.open_sessions()),
            Some(t) => (t.bytes_received(), t.open_sessions()),
            None => (before, self.open_sessions),
        };
        // The endpoint's totals only grow.
        let bytes = after.wrapping_sub(before);
        // One test for both a peer met before and the bounds: a new peer's
        // slot is `NEW_PEER`, past every vector's end.
        let stats = if (slot as usize) < self.peers.len() {
            &mut self.peers[slot as usize]
        } else {
            let found = new_peer_index(
                &mut self.peers,
                &mut self.role,
                &self.local,
                &mut self.last_peer,
                self.new.take(),
            );
            match found.and_then(|i| self.peers.get_mut(i)) {
                Some(stats) => stats,
                // Only for a future polled again after it completed, on a
                // layer with no peer: nothing to count it for.
                None => return,
            }
        };
        stats.ops[kind.index()] += 1;
        if kind.is_outgoing() {
            stats.bytes_sent += bytes;
        } else {
            stats.bytes_received += bytes;
        }
        if self.start.is_some() {
            timed(stats, kind, self.start.take());
        }
        if let Err(e) = result {
            failed(stats, kind, e);
        }
        if open != self.open_sessions {
            self.sessions_changed(open);
        }
    }

    /// The endpoint's open channels changed (or are read for the first
    /// time): the snapshot's figure and this layer's share of the gauge
    /// follow.
    #[cold]
    #[inline(never)]
    fn sessions_changed(&mut self, open: usize) {
        self.open_sessions = open;
        #[cfg(feature = "metrics")]
        self.sessions_gauge
            .report(open, self.role.as_deref().unwrap_or(""));
    }
}

/// The place in `peers` of the peer of an operation first counted now (of
/// a peer not met when the operation was made; another operation may have
/// met it since), which is from then on the last peer; `None` only if
/// there is no peer to count for.
#[cold]
#[inline(never)]
fn new_peer_index<R: Clone + Debug + PartialEq>(
    peers: &mut Vec<PeerStats<R>>,
    role: &mut Option<String>,
    local: &Option<String>,
    last_peer: &mut u32,
    peer: Option<R>,
) -> Option<usize> {
    // `met` put the peer there, and the operation's first completion took
    // it: a future polled again after it completed (which its caller
    // should not do) finds it gone, and counts again for the peer that
    // completion made the last one, as for a peer met before.
    let Some(peer) = peer else {
        let last = *last_peer as usize;
        return (last < peers.len()).then_some(last);
    };
    let i = match peers.iter().position(|p| p.role == peer) {
        Some(i) => i,
        None => {
            let role = role.get_or_insert_with(|| local.clone().unwrap_or_default());
            let name = format!("{peer:?}");
            #[cfg(not(feature = "metrics"))]
            let _ = &role;
            peers.push(PeerStats {
                #[cfg(feature = "metrics")]
                export: export::PeerExport::register(role, &name),
                role: peer,
                name,
                ops: [0; 4],
                cancelled: 0,
                bytes_sent: 0,
                bytes_received: 0,
                errors: [0; 8],
                latency: Histogram::new(),
            });
            peers.len() - 1
        }
    };
    // A place past `u32::MAX` (never seen) is found by name each time.
    if let Ok(slot) = u32::try_from(i)
        && slot != NEW_PEER
    {
        *last_peer = slot;
    }
    Some(i)
}

/// Records the latency of a timed operation: one in
/// [`Meter::sample_every`], so kept out of the future's code.
#[cold]
#[inline(never)]
fn timed<R>(stats: &mut PeerStats<R>, kind: OpKind, start: Option<Instant>) {
    let Some(start) = start else { return };
    let elapsed = start.elapsed();
    stats.latency.record(elapsed);
    #[cfg(feature = "metrics")]
    {
        stats.export.latency[kind.index()].record(elapsed.as_secs_f64());
        stats.flush_export();
    }
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

#[cold]
#[inline(never)]
fn failed<R>(stats: &mut PeerStats<R>, kind: OpKind, e: &ChoreographyError) {
    let class = ErrorClass::of(e);
    stats.errors[class.index()] += 1;
    #[cfg(feature = "metrics")]
    {
        stats.export.error(kind, class);
        stats.flush_export();
    }
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// One counted operation: `$call` is the inner handler's future, made
/// from the inner handler and the endpoint once the layer has looked at
/// the endpoint. Nothing is counted before the first poll: a future
/// dropped unpolled counts nothing.
macro_rules! metered_op {
    ($self:ident, $ep:ident, $peer:ident, $kind:ty, |$inner:ident, $e:ident| $call:expr) => {{
        let Metered {
            inner: $inner,
            meter,
        } = $self;
        let $e = $ep;
        // Looked at before `$call` borrows the endpoint for the future.
        let prepared = meter.prepare($e, &$peer, <$kind>::KIND);
        prepared.wrap::<_, _, $kind>(meter, $call)
    }};
}

impl<H, R> ChoreoHandler for Metered<H>
where
    H: ChoreoHandler<Role = R, Endpoint = RumpsteakEndpoint<R>>,
    R: Role + Eq + Hash + Clone + Debug + Send + 'static,
{
    type Role = R;
    type Endpoint = RumpsteakEndpoint<R>;

    fn send<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        to: R,
        msg: &Msg,
    ) -> impl Future<Output = Result<()>> + Send
    where
        Msg: Serialize + Send + Sync,
    {
        let _ = type_name::<Msg>;
        metered_op!(self, ep, to, SendOp, |inner, e| inner.send(e, to, msg))
    }

    fn recv<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        metered_op!(self, ep, from, RecvOp, |inner, e| inner.recv(e, from))
    }

    fn choose(
        &mut self,
        ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        metered_op!(self, ep, who, ChooseOp, |inner, e| inner
            .choose(e, who, label))
    }

    fn offer(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        metered_op!(self, ep, from, OfferOp, |inner, e| inner.offer(e, from))
    }

    /// Forwarded as it is: `with_timeout` is not a step of its own. The
    /// steps inside `body` are counted by whichever handler runs them.
    fn with_timeout<F, T>(
        &mut self,
        ep: &mut Self::Endpoint,
        at: R,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: Future<Output = Result<T>> + Send,
    {
        self.inner.with_timeout(ep, at, dur, body)
    }
}

impl<H, R> HandlerExt for Metered<H>
where
    H: HandlerExt<Role = R, Endpoint = RumpsteakEndpoint<R>>,
    R: Role + Eq + Hash + Clone + Debug + Send + 'static,
{
    fn offer_among(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send {
        metered_op!(self, ep, from, OfferOp, |inner, e| inner
            .offer_among(e, from, expected))
    }

    /// Counted as a `recv`; a timeout counts as an error of class
    /// `timeout`, not as a cancellation.
    fn recv_timeout<Msg>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        metered_op!(self, ep, from, RecvOp, |inner, e| inner
            .recv_timeout(e, from, dur))
    }

    /// Counted as an `offer`; a timeout counts as an error of class
    /// `timeout`.
    fn offer_timeout(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send {
        metered_op!(self, ep, from, OfferOp, |inner, e| inner
            .offer_timeout(e, from, dur))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_power_of_two() {
        let mut h = Histogram::new();
        h.record(Duration::from_nanos(0));
        h.record(Duration::from_nanos(3));
        h.record(Duration::from_nanos(1000));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.max, Duration::from_nanos(1000));
        assert_eq!(
            s.buckets,
            vec![
                (Some(Duration::from_nanos(1)), 1),
                (Some(Duration::from_nanos(4)), 1),
                (Some(Duration::from_nanos(1024)), 1),
            ]
        );
        assert_eq!(s.quantile(0.5), Some(Duration::from_nanos(4)));
        assert_eq!(s.quantile(1.0), Some(Duration::from_nanos(1000)));
    }
}
