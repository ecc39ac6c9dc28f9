use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
use std::time::{Duration, Instant};

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role};
use rumpsteak_aura_handler::RumpsteakEndpoint;
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
/// installs one); without a recorder the export costs one branch per
/// handle. The names and labels, all low-cardinality (roles are the
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
/// layer first meets that peer. [`Metered::describe_metrics`] gives the
/// recorder their descriptions.
///
/// What counts: an operation that completed, with success or an error, is
/// counted once, in `operations` and, if it failed, in `errors`; bytes are
/// the frames' sizes (header included), read from the endpoint's
/// [`total_traffic`](RumpsteakEndpoint::total_traffic) before and after,
/// never by encoding again. An operation
/// whose future was dropped before it completed (a timeout around it, a
/// `select!`) counts only in `cancelled`; so does the step under way when
/// the deadline of [`HandlerExt::within`] passes, whereas
/// [`HandlerExt::recv_timeout`] and `offer_timeout` complete with a
/// timeout error and count in `operations` and `errors` (class
/// `timeout`).
///
/// The open-session gauge is shared by every `Metered` layer of a role:
/// each adds the number of its endpoint's open peer sessions (channels),
/// read after each of its operations, and takes its share out again when
/// it is dropped. So with several sessions of one role under way, the
/// gauge is their total, and it falls back when they end.
///
/// Latency is the time from the first poll of an operation to its
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
    until_sample: u32,
    /// The operation under way: its peer's place in `peers`, the
    /// endpoint's byte total in its direction when it began, and its start
    /// when it is timed. Kept here rather than in the operation's future,
    /// which holds only a reference to the meter: a smaller future is
    /// cheaper to move.
    current: usize,
    before: u64,
    start: Option<Instant>,
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
                until_sample: 0,
                current: 0,
                before: 0,
                start: None,
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
        self.meter.until_sample = 0;
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

/// An operation under way, whose figures wait in [`Meter::current`] and
/// the fields after it. Dropped before [`Pending::finish`], it counts as
/// cancelled.
struct Pending<'a, R> {
    meter: &'a mut Meter<R>,
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

impl<R> Meter<R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    /// Whether the operation beginning now is timed.
    #[inline]
    fn tick(&mut self) -> bool {
        if self.until_sample == 0 {
            self.until_sample = self.sample_every - 1;
            true
        } else {
            self.until_sample -= 1;
            false
        }
    }

    /// Begins an operation with `peer`, at its first poll.
    #[inline]
    fn begin<'a>(
        &'a mut self,
        ep: &RumpsteakEndpoint<R>,
        peer: &R,
        kind: OpKind,
    ) -> Pending<'a, R> {
        let i = match self.peers.iter().position(|p| &p.role == peer) {
            Some(i) => i,
            None => self.new_peer(ep, peer),
        };
        self.current = i;
        self.before = moved(ep, kind);
        self.start = self.tick().then(Instant::now);
        Pending { meter: self }
    }

    #[cold]
    #[inline(never)]
    fn new_peer(&mut self, ep: &RumpsteakEndpoint<R>, peer: &R) -> usize {
        let role = self
            .role
            .get_or_insert_with(|| format!("{:?}", ep.local_role()));
        let name = format!("{peer:?}");
        #[cfg(not(feature = "metrics"))]
        let _ = &role;
        self.peers.push(PeerStats {
            #[cfg(feature = "metrics")]
            export: export::PeerExport::register(role, &name),
            role: peer.clone(),
            name,
            ops: [0; 4],
            cancelled: 0,
            bytes_sent: 0,
            bytes_received: 0,
            errors: [0; 8],
            latency: Histogram::new(),
        });
        self.peers.len() - 1
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

impl<R> Pending<'_, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    #[inline]
    fn finish<T>(self, ep: &RumpsteakEndpoint<R>, kind: OpKind, result: &Result<T>) {
        let m = &mut *self.meter;
        let bytes = moved(ep, kind) - m.before;
        let stats = &mut m.peers[m.current];
        stats.ops[kind.index()] += 1;
        #[cfg(feature = "metrics")]
        stats.export.ops[kind.index()].increment(1);
        if bytes > 0 {
            if kind.is_outgoing() {
                stats.bytes_sent += bytes;
                #[cfg(feature = "metrics")]
                stats.export.bytes_sent.increment(bytes);
            } else {
                stats.bytes_received += bytes;
                #[cfg(feature = "metrics")]
                stats.export.bytes_received.increment(bytes);
            }
        }
        if let Some(start) = m.start {
            timed(stats, kind, start);
        }
        if let Err(e) = result {
            failed(stats, kind, e);
        }
        let open = ep.active_channel_count();
        if open != m.open_sessions {
            m.sessions_changed(open);
        }
        // Completed: not a cancellation. `Pending` is one reference, so
        // forgetting it leaks nothing.
        std::mem::forget(self);
    }
}

/// Records the latency of a timed operation: one in
/// [`Meter::sample_every`], so kept out of the future's code.
#[cold]
#[inline(never)]
fn timed<R>(stats: &mut PeerStats<R>, kind: OpKind, start: Instant) {
    let elapsed = start.elapsed();
    stats.latency.record(elapsed);
    #[cfg(feature = "metrics")]
    stats.export.latency[kind.index()].record(elapsed.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

#[cold]
#[inline(never)]
fn failed<R>(stats: &mut PeerStats<R>, kind: OpKind, e: &ChoreographyError) {
    let class = ErrorClass::of(e);
    stats.errors[class.index()] += 1;
    #[cfg(feature = "metrics")]
    stats.export.error(kind, class);
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

impl<R> Drop for Pending<'_, R> {
    fn drop(&mut self) {
        // `current` was set by `begin`, and peers are never removed.
        let m = &mut *self.meter;
        if let Some(stats) = m.peers.get_mut(m.current) {
            stats.cancelled += 1;
            #[cfg(feature = "metrics")]
            stats.export.cancelled.increment(1);
        }
    }
}

/// One counted operation: `$call` is the inner handler's future, built from
/// the inner handler and the endpoint reborrowed, so that the endpoint can
/// be read again once it completes. Everything happens at the first poll:
/// a future dropped unpolled counts nothing.
macro_rules! metered_op {
    ($self:ident, $ep:ident, $peer:ident, $kind:expr, |$inner:ident, $e:ident| $call:expr) => {{
        let layer = $self;
        async move {
            let Metered {
                inner: $inner,
                meter,
            } = layer;
            let pending = meter.begin($ep, &$peer, $kind);
            let result = {
                let $e = &mut *$ep;
                $call.await
            };
            pending.finish($ep, $kind, &result);
            result
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
        metered_op!(self, ep, to, OpKind::Send, |inner, e| inner
            .send(e, to, msg))
    }

    fn recv<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        metered_op!(self, ep, from, OpKind::Recv, |inner, e| inner.recv(e, from))
    }

    fn choose(
        &mut self,
        ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        metered_op!(self, ep, who, OpKind::Choose, |inner, e| inner
            .choose(e, who, label))
    }

    fn offer(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        metered_op!(self, ep, from, OpKind::Offer, |inner, e| inner
            .offer(e, from))
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
        metered_op!(self, ep, from, OpKind::Offer, |inner, e| inner
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
        metered_op!(self, ep, from, OpKind::Recv, |inner, e| inner
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
        metered_op!(self, ep, from, OpKind::Offer, |inner, e| inner
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
