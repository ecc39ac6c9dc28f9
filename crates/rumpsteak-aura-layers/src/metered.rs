use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role};
use rumpsteak_aura_handler::{RumpsteakEndpoint, SessionCounts, SessionHandle, TotalsHandle};
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
/// # Who counts what
///
/// The endpoint already counts every step that succeeds, per session
/// (frames and bytes each way, and which frames carried a label); the
/// layer asks it for a [`TotalsHandle`] the first time it sees it, which
/// makes the endpoint keep those counts where the layer can read them
/// (see [`RumpsteakEndpoint::totals_handle`]). So a successful operation
/// costs the layer nothing but its latency countdown and a few tests: the
/// layer itself counts only what the endpoint cannot know, the failed
/// operations (by kind and error class), the cancelled ones and the
/// latencies. [`Metered::snapshot`] puts the two together. Hence:
///
/// - A peer is listed once an operation of the layer with it has
///   completed (with success or an error) or been cancelled, in the order
///   that happened. A peer the layer never had an operation with is not
///   listed.
/// - A listed peer's successful operations and bytes are what its
///   sessions on the endpoints the layer used moved since the layer first
///   saw each endpoint: steps made on such an endpoint without the layer
///   (through the inner handler, say) count too, and steps an inner
///   handler reports without the endpoint moving a frame (one that
///   answers again when polled after it completed) do not. Sends and
///   choices are told apart by the label frames, receives and offers the
///   same way.
/// - A layer used with several endpoints in turn counts on each (one
///   handle per endpoint); a peer's figures are summed over them, and
///   over the sessions that replaced one another on an endpoint.
///
/// What counts: an operation that completed with an error counts once in
/// `operations` and in `errors`; bytes are the frames' sizes (header
/// included), as the endpoint counted them, never by encoding again. An
/// operation whose future was polled and then dropped before it completed
/// (a timeout around it, a `select!`) counts only in `cancelled`, unless
/// it was a `send` or `choose` whose frame the transport had already
/// taken (it was still flushing): the peer gets that frame and the
/// endpoint records the step, so it counts as a completed operation, with
/// its bytes. The step under way when the deadline of
/// [`HandlerExt::within`] passes counts the same way as any dropped
/// future, whereas [`HandlerExt::recv_timeout`] and `offer_timeout`
/// complete with a timeout error and count in `operations` and `errors`
/// (class `timeout`). A future dropped before its first poll is no
/// operation (the inner handler has not begun it): it counts nothing, and
/// if it was the one to be timed, the next operation is timed instead.
///
/// # The export
///
/// The exported counters and the open-session gauge are brought up to the
/// snapshot in batches: at every timed operation (the first, then one in
/// [`latency_sampling`](Metered::latency_sampling)), at every failed or
/// cancelled operation, by [`Metered::flush_metrics`] and when the layer
/// is dropped (and the gauge also when the layer first uses an endpoint).
/// So what a scraper sees of a layer's operation and byte counters is at
/// most `latency_sampling - 1` of the layer's completed operations behind
/// [`Metered::snapshot`] (15 by default; none with
/// `with_latency_sampling(1)`), never ahead, and complete once the layer
/// is dropped; steps made on its endpoints without the layer are exported
/// at the next batch. Errors, cancellations and latencies are exported as
/// they happen. The bound is in operations, not in time: a layer that
/// goes idle leaves its last untimed operations unexported until its next
/// timed operation, [`Metered::flush_metrics`] or its drop, however long
/// that takes; call `flush_metrics` when a session ends if a scraper must
/// see it whole while the layer lives on. (A batch costs nothing per
/// operation; calling the `metrics` handles on every operation cost about
/// 14 instructions each, recorder or not.)
///
/// The open-session gauge is shared by every `Metered` layer of a role:
/// each adds the number of open peer sessions (channels) of the endpoint
/// it used last, as read at its last batch, and takes its share out again
/// when it is dropped. So with several sessions of one role under way, the
/// gauge is their total, and it falls back when they end.
///
/// # Latency
///
/// Latency is the time from when an operation's future is made (which,
/// for a future that is awaited, is just before its first poll) to its
/// completion. Timing costs two clock reads, which on the in-memory
/// channel is a sizeable part of an operation, so by default one operation
/// in [`DEFAULT_LATENCY_SAMPLING`] (16) is timed, starting with the first;
/// the counters and byte totals stay exact.
/// [`Metered::with_latency_sampling`]`(1)` times every operation.
///
/// The layer's own counters are plain integers updated through `&mut
/// self`, which, with the endpoint counting the successful steps, is what
/// keeps it within a few nanoseconds of the bare handler; that is why the
/// layer is not `Clone`. Read them from the layer, or from `inner()` of
/// the layer above it. On the in-memory ping-pong on tokio's
/// current-thread runtime (`op_cost runtime_metered`, callgrind) a round
/// trip of four operations costs 5,102 instructions against the bare
/// handler's 4,871 (1.047): about 39 of the difference are the endpoint's
/// counting for the handle, 70 the one timed operation in 16 and its
/// batch of the export, 120 the layer's tests on each operation.
pub struct Metered<H: ChoreoHandler> {
    inner: H,
    meter: Meter<H::Role>,
}

/// Everything of [`Metered`] but the inner handler: what an operation
/// updates, borrowed apart from the handler so that both can be used while
/// the operation runs. An operation's future holds the one reference to
/// it, so what only the cold paths of the operation under way need is
/// kept here rather than in the future.
// What every operation reads or writes comes first.
struct Meter<R> {
    /// Operations to go until the next timed one, this one included: the
    /// operation that brings it to 0 is timed (1 times the next).
    until_sample: u32,
    /// Whether the completion of the operation under way takes the slow
    /// way: it is timed, or its peer is not listed yet. Its future keeps
    /// a copy.
    slow: bool,
    /// The peer of the operation under way, or of the last one.
    current: Option<R>,
    /// For a `send` or `choose` under way: the frames its endpoint had
    /// sent when the future was made (nothing can move one before its
    /// first poll: the future borrows the endpoint), to tell, if it is
    /// dropped, whether the endpoint recorded it.
    before: u64,
    /// The handle of the endpoint of the last operation, made when the
    /// layer first saw that endpoint (before any, one of no endpoint).
    watching: TotalsHandle,
    /// `current`'s place in `peers`, or [`NEW_PEER`] until it is listed.
    slot: u32,
    /// The start of the operation under way when it is timed.
    start: Option<Instant>,
    sample_every: u32,
    /// The local role's `Debug` form, once a peer is listed.
    role: Option<String>,
    /// The local role's `Debug` form, made when an endpoint is first seen.
    local: Option<String>,
    peers: Vec<PeerStats<R>>,
    /// Every endpoint the layer has used, in the order it first saw them.
    endpoints: Vec<Watched>,
    #[cfg(feature = "metrics")]
    sessions_gauge: export::SessionsShare,
}

/// One endpoint the layer has used.
struct Watched {
    totals: TotalsHandle,
    /// How many of its sessions (`totals.sessions`) the layer has linked.
    seen: usize,
    /// Its sessions with peers the layer has not listed (yet).
    unlisted: Vec<Link>,
}

/// One session the layer counts from: what it had moved when the layer
/// first saw its endpoint (nothing, for a session registered later).
struct Link {
    session: SessionHandle,
    baseline: SessionCounts,
    /// What of the session the export has: from the baseline on, brought
    /// up at each batch.
    #[cfg(feature = "metrics")]
    exported: SessionCounts,
}

impl Link {
    fn new(session: SessionHandle, baseline: SessionCounts) -> Self {
        Link {
            session,
            baseline,
            #[cfg(feature = "metrics")]
            exported: baseline,
        }
    }

    fn counted(&self) -> SessionCounts {
        self.session.counts().since(&self.baseline)
    }
}

/// How many latency buckets: bucket `i` holds durations below `2^i`
/// nanoseconds (and at least `2^(i-1)`), the last one everything longer.
const BUCKETS: usize = 40;

/// One operation in how many [`Metered`] times by default.
pub const DEFAULT_LATENCY_SAMPLING: u32 = 16;

/// [`Meter::slot`] of a peer not listed yet: past the end of every list.
const NEW_PEER: u32 = u32::MAX;

struct PeerStats<R> {
    role: R,
    name: String,
    /// Operations that completed with an error, by kind: the endpoint
    /// counts only those that succeeded.
    failed: [u64; 4],
    cancelled: u64,
    errors: [u64; 8],
    latency: Histogram,
    /// The sessions with this peer, on every endpoint the layer used.
    links: Vec<Link>,
    #[cfg(feature = "metrics")]
    export: export::PeerExport,
}

/// A peer's operations by kind and bytes, the endpoint's and the layer's
/// counts together.
struct Counted {
    ops: [u64; 4],
    bytes_sent: u64,
    bytes_received: u64,
}

impl<R> PeerStats<R> {
    /// Adds what the session moved to `c`.
    fn add(c: &mut Counted, moved: &SessionCounts) {
        c.ops[OpKind::Send.index()] += moved.frames_sent - moved.labels_sent;
        c.ops[OpKind::Choose.index()] += moved.labels_sent;
        c.ops[OpKind::Recv.index()] += moved.frames_received - moved.labels_received;
        c.ops[OpKind::Offer.index()] += moved.labels_received;
        c.bytes_sent += moved.bytes_sent;
        c.bytes_received += moved.bytes_received;
    }

    /// The peer's figures from its linked sessions and the layer's own
    /// counts, plus those of `more` sessions with it.
    fn counted<'a>(&self, more: impl Iterator<Item = SessionCounts> + 'a) -> Counted {
        let mut c = Counted {
            ops: self.failed,
            bytes_sent: 0,
            bytes_received: 0,
        };
        for link in &self.links {
            Self::add(&mut c, &link.counted());
        }
        for moved in more {
            Self::add(&mut c, &moved);
        }
        c
    }

    /// Brings this peer's exported counters up to the in-process ones:
    /// what each of its sessions moved since the last batch (its failed
    /// operations were exported as they happened).
    #[cfg(feature = "metrics")]
    #[inline]
    fn flush_export(&mut self) {
        for link in &mut self.links {
            let now = link.session.counts();
            self.export.moved(&now.since(&link.exported));
            link.exported = now;
        }
    }
}

#[cfg(feature = "metrics")]
impl<R> Drop for Meter<R> {
    /// What was not exported yet is, before the layer goes.
    fn drop(&mut self) {
        self.flush();
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
    /// The open channels of the endpoint of the last operation, read when
    /// the snapshot is taken.
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
                until_sample: 1,
                slow: false,
                current: None,
                before: 0,
                watching: TotalsHandle::default(),
                slot: NEW_PEER,
                start: None,
                sample_every: DEFAULT_LATENCY_SAMPLING,
                role: None,
                local: None,
                peers: Vec::new(),
                endpoints: Vec::new(),
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

    /// The figures so far: the layer's own counts with what the sessions
    /// of its endpoints moved since it first saw each (see the type's
    /// documentation).
    pub fn snapshot(&self) -> MetricsSnapshot {
        let m = &self.meter;
        // Sessions registered since the layer last linked them.
        let fresh: Vec<Vec<SessionHandle>> = m
            .endpoints
            .iter()
            .map(|w| w.totals.sessions(w.seen))
            .collect();
        let more = |name: &str| {
            let unlisted = m.endpoints.iter().flat_map(|w| &w.unlisted);
            let unlisted = unlisted
                .filter(move |l| l.session.peer() == name)
                .map(Link::counted);
            let fresh = fresh.iter().flatten();
            let fresh = fresh.filter(move |s| s.peer() == name).map(|s| s.counts());
            unlisted.chain(fresh).collect::<Vec<_>>()
        };
        MetricsSnapshot {
            role: m.role.clone(),
            open_sessions: m.watching.open_sessions(),
            peers: m
                .peers
                .iter()
                .map(|p| {
                    let c = p.counted(more(&p.name).into_iter());
                    PeerMetrics {
                        peer: p.name.clone(),
                        operations: OpCounts {
                            send: c.ops[OpKind::Send.index()],
                            recv: c.ops[OpKind::Recv.index()],
                            choose: c.ops[OpKind::Choose.index()],
                            offer: c.ops[OpKind::Offer.index()],
                        },
                        cancelled: p.cancelled,
                        bytes_sent: c.bytes_sent,
                        bytes_received: c.bytes_received,
                        errors: ErrorCounts::from_array(&p.errors),
                        latency: p.latency.snapshot(),
                    }
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

    /// Brings the exported counters and the gauge up to date with the
    /// snapshot's now. The layer does so itself at every timed operation
    /// (one in [`latency_sampling`](Self::latency_sampling)), at every
    /// error and cancellation, and when it is dropped; see the type's
    /// documentation.
    #[cfg(feature = "metrics")]
    pub fn flush_metrics(&mut self) {
        self.meter.flush();
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

/// Where the operation under way is.
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
    /// the layer's meter, which holds the rest of the operation's state.
    /// Written by hand rather than as an `async` block so that its `poll`
    /// inlines into the caller's.
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

/// The layer's part of a [`MeteredOp`]; its drop counts an operation that
/// did not complete.
///
/// What a completed operation's `poll` tests lives here, in the future,
/// not behind `meter`: between the inner poll and the return the fast
/// path then touches only the future's own memory, so the compiler can
/// have the inner future write its result where the caller wants it
/// (a store or a load through `meter` there, which might alias it, made
/// it copy the result, some 80 bytes, on every poll).
struct OpState<'a, R: Clone + Debug + PartialEq, K: Kind> {
    meter: &'a mut Meter<R>,
    stage: Stage,
    /// [`Meter::slow`] when the future was made.
    slow: bool,
    kind: PhantomData<K>,
}

impl<R: Clone + Debug + PartialEq, K: Kind> Drop for OpState<'_, R, K> {
    #[inline]
    fn drop(&mut self) {
        if self.stage != Stage::Done {
            self.meter.dropped(K::KIND, self.stage);
        }
    }
}

impl<F, T, R, K> Future for MeteredOp<'_, F, R, K>
where
    F: Future<Output = Result<T>>,
    R: Clone + Debug + PartialEq,
    K: Kind,
{
    type Output = Result<T>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.project();
        let op = this.op;
        // A store rather than a test: cheaper on every poll.
        op.stage = Stage::Running;
        // Taken apart and put together again, so that what goes back is
        // only what the arm holds (nothing but the tag for a send's `Ok`):
        // returning the inner poll whole copied all of its 80 bytes, twice.
        match this.inner.poll(cx) {
            // A success with a listed peer, untimed, is the endpoint's to
            // count: nothing to do.
            Poll::Ready(Ok(v)) => {
                op.stage = Stage::Done;
                if op.slow {
                    op.slow = false;
                    op.meter.completed(K::KIND, None);
                }
                Poll::Ready(Ok(v))
            }
            Poll::Ready(Err(e)) => {
                op.stage = Stage::Done;
                op.slow = false;
                op.meter.completed(K::KIND, Some(&e));
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
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

impl<R> Meter<R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    /// Looks at `ep` before an operation of kind `K` with `peer` on it is
    /// made. Tests only, unless the endpoint or the peer is not that of
    /// the last operation or the operation is the one to be timed.
    /// Returns whether the operation's completion takes the slow way.
    #[inline(always)]
    fn prepare<K: Kind>(&mut self, ep: &mut RumpsteakEndpoint<R>, peer: &R) -> bool {
        if !self.watching.is_of(ep) {
            self.watch(ep);
        }
        if self.current.as_ref() != Some(peer) {
            self.switch(peer);
        }
        // Never below 1 before the decrement: it is reset on reaching 0.
        self.until_sample = self.until_sample.wrapping_sub(1);
        if self.until_sample == 0 {
            self.sampled();
        }
        if K::KIND.is_outgoing() {
            self.before = ep.total_traffic().frames_sent;
        }
        self.slow
    }

    /// An endpoint other than the last operation's: one seen before, or a
    /// new one, whose sessions are counted from now on.
    #[cold]
    #[inline(never)]
    fn watch(&mut self, ep: &mut RumpsteakEndpoint<R>) {
        if self.local.is_none() {
            self.local = Some(format!("{:?}", ep.local_role()));
        }
        let known = self.endpoints.iter().position(|w| w.totals.is_of(ep));
        let totals = match known {
            Some(i) => self.endpoints[i].totals.clone(),
            None => {
                let totals = ep.totals_handle();
                let sessions = totals.sessions(0);
                let unlisted = sessions
                    .into_iter()
                    .map(|s| {
                        let now = s.counts();
                        Link::new(s, now)
                    })
                    .collect::<Vec<_>>();
                self.endpoints.push(Watched {
                    seen: unlisted.len(),
                    totals: totals.clone(),
                    unlisted,
                });
                self.link_sessions();
                totals
            }
        };
        self.watching = totals;
        #[cfg(feature = "metrics")]
        self.report_sessions();
    }
}

impl<R: Clone + Debug + PartialEq> Meter<R> {
    /// A peer other than the last operation's.
    #[cold]
    #[inline(never)]
    fn switch(&mut self, peer: &R) {
        self.slot = match self.peers.iter().position(|p| &p.role == peer) {
            Some(i) => u32::try_from(i).unwrap_or(NEW_PEER),
            None => NEW_PEER,
        };
        self.current = Some(peer.clone());
        self.slow = self.start.is_some() || self.slot == NEW_PEER;
    }

    /// The operation beginning now is timed, and the one `sample_every`
    /// later will be.
    #[cold]
    #[inline(never)]
    fn sampled(&mut self) {
        self.until_sample = self.sample_every;
        self.start = Some(Instant::now());
        self.slow = true;
    }

    /// The place in `peers` of the peer of the operation under way, listed
    /// now if it was not; `None` only before any operation.
    #[inline]
    fn listed(&mut self) -> Option<usize> {
        if (self.slot as usize) < self.peers.len() {
            return Some(self.slot as usize);
        }
        self.list()
    }

    /// Lists the peer of the operation under way, if it is not yet.
    #[cold]
    #[inline(never)]
    fn list(&mut self) -> Option<usize> {
        let peer = self.current.clone()?;
        // A place past `u32::MAX` (never seen) is found by role each time.
        if let Some(i) = self.peers.iter().position(|p| p.role == peer) {
            return Some(i);
        }
        let role = self
            .role
            .get_or_insert_with(|| self.local.clone().unwrap_or_default());
        let name = format!("{peer:?}");
        #[cfg(not(feature = "metrics"))]
        let _ = &role;
        self.peers.push(PeerStats {
            #[cfg(feature = "metrics")]
            export: export::PeerExport::register(role, &name),
            role: peer,
            name,
            failed: [0; 4],
            cancelled: 0,
            errors: [0; 8],
            latency: Histogram::new(),
            links: Vec::new(),
        });
        let i = self.peers.len() - 1;
        self.slot = u32::try_from(i).unwrap_or(NEW_PEER);
        self.link_sessions();
        Some(i)
    }

    /// The slow way of a completed operation: a timed one, one whose peer
    /// is not listed yet, or a failed one.
    #[cold]
    #[inline(never)]
    fn completed(&mut self, kind: OpKind, error: Option<&ChoreographyError>) {
        // Read first, so that the latency does not include the counting.
        let elapsed = self.start.take().map(|start| start.elapsed());
        self.slow = false;
        let Some(i) = self.listed() else { return };
        let stats = &mut self.peers[i];
        if let Some(elapsed) = elapsed {
            stats.latency.record(elapsed);
            #[cfg(feature = "metrics")]
            stats.export.latency[kind.index()].record(elapsed.as_secs_f64());
        }
        if let Some(e) = error {
            let class = ErrorClass::of(e);
            stats.failed[kind.index()] += 1;
            stats.errors[class.index()] += 1;
            #[cfg(feature = "metrics")]
            stats.export.error(kind, class);
        }
        #[cfg(feature = "metrics")]
        if elapsed.is_some() || error.is_some() {
            self.flush();
        }
    }

    /// An operation's future dropped before it completed, after its inner
    /// future: not counted if it was never polled; counted by the endpoint
    /// if it moved its frame all the same (a send or choose whose frame
    /// the transport had taken, which the endpoint records when the inner
    /// future is dropped); as cancelled otherwise.
    #[cold]
    #[inline(never)]
    fn dropped(&mut self, kind: OpKind, stage: Stage) {
        // The timing `prepare` began, if any, ends here.
        let timed = self.start.take().is_some();
        if stage == Stage::Unpolled {
            // Never polled, so no operation: if it was the one to be timed,
            // the next one is, so that the sampling rate and the export's
            // lag bound (a flush at every timed operation) still hold.
            if timed {
                self.until_sample = 1;
            }
            self.slow = self.slot == NEW_PEER;
            return;
        }
        self.slow = false;
        let Some(i) = self.listed() else { return };
        let recorded = kind.is_outgoing() && self.watching.frames_sent() > self.before;
        if !recorded {
            let stats = &mut self.peers[i];
            stats.cancelled += 1;
            #[cfg(feature = "metrics")]
            stats.export.cancelled.increment(1);
        }
        #[cfg(feature = "metrics")]
        self.flush();
    }
}

impl<R> Meter<R> {
    /// Links the sessions registered on the endpoints since the last look,
    /// if any: one read per endpoint when there are none.
    #[cfg(feature = "metrics")]
    #[inline]
    fn sync_sessions(&mut self) {
        if self
            .endpoints
            .iter()
            .any(|w| w.totals.session_count() != w.seen)
        {
            self.link_sessions();
        }
    }

    /// Links the sessions registered on the endpoints since the last call,
    /// and gives every session with a listed peer to that peer.
    #[cold]
    #[inline(never)]
    fn link_sessions(&mut self) {
        for w in &mut self.endpoints {
            if w.totals.session_count() > w.seen {
                let fresh = w.totals.sessions(w.seen);
                w.seen += fresh.len();
                // Registered after the layer saw the endpoint: counted
                // from their start.
                let fresh = fresh
                    .into_iter()
                    .map(|s| Link::new(s, SessionCounts::default()));
                w.unlisted.extend(fresh);
            }
            let mut k = 0;
            while k < w.unlisted.len() {
                let name = w.unlisted[k].session.peer();
                match self.peers.iter_mut().find(|p| p.name == name) {
                    Some(p) => p.links.push(w.unlisted.swap_remove(k)),
                    None => k += 1,
                }
            }
        }
    }

    /// Brings the export up to the snapshot: every peer's counters and
    /// this layer's share of the open-session gauge.
    #[cfg(feature = "metrics")]
    fn flush(&mut self) {
        self.sync_sessions();
        for p in &mut self.peers {
            p.flush_export();
        }
        self.report_sessions();
    }

    /// The open channels of the endpoint of the last operation, for this
    /// layer's share of the gauge.
    #[cfg(feature = "metrics")]
    fn report_sessions(&mut self) {
        let open = self.watching.open_sessions();
        if !self.sessions_gauge.reports(open) {
            let local = self.local.as_deref().unwrap_or("");
            self.sessions_gauge.report(open, local);
        }
    }
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
        let slow = meter.prepare::<$kind>($e, &$peer);
        MeteredOp {
            inner: $call,
            op: OpState {
                meter,
                stage: Stage::Unpolled,
                slow,
                kind: PhantomData::<$kind>,
            },
        }
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
