use std::any::type_name;
use std::error::Error as StdError;
use std::fmt::{self, Debug};
use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role, TransportError};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakSession, Traffic};
use rumpsteak_aura_transport::SessionTransport;
use rumpsteak_aura_transport::wire::{self, Frame};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ext::HandlerExt;
use crate::op::{ErrorClass, OpKind, bounded, short_type_name};

/// How much a [`Recording`] keeps.
///
/// The limits bound the two parts of a transcript that grow with the run:
/// the number of entries and the payload bytes. Every other part of an
/// entry is bounded on its own: a label is at most 255 bytes (the wire's
/// limit), a peer's name and an error's message are cut to
/// [`MAX_ENTRY_TEXT`](crate::MAX_ENTRY_TEXT) bytes, and a type name is the
/// program's own. So a transcript takes at most about `max_entries`
/// times 1.3 KiB plus `max_payload_bytes`.
///
/// **When full**, the transcript keeps what it has and records nothing
/// more: it stays a prefix of the run, which [`Replay`](crate::Replay) can
/// still play back up to where it stops. [`Transcript::truncated`] is then
/// set and [`Transcript::dropped`] counts the operations left out. An entry
/// is left out as soon as it would pass either limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// The most entries kept.
    pub max_entries: usize,
    /// The most payload bytes kept, over all entries.
    pub max_payload_bytes: usize,
}

impl Limits {
    /// Limits of `max_entries` entries and `max_payload_bytes` payload
    /// bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let limits = rumpsteak_aura_layers::Limits::new(100, 64 * 1024);
    /// assert_eq!(limits.max_entries, 100);
    /// ```
    pub const fn new(max_entries: usize, max_payload_bytes: usize) -> Self {
        Limits {
            max_entries,
            max_payload_bytes,
        }
    }
}

impl Default for Limits {
    /// 10,000 entries and 16 MiB of payloads.
    fn default() -> Self {
        Limits::new(10_000, 16 * 1024 * 1024)
    }
}

/// One recorded operation and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// The peer, in its `Debug` form.
    pub peer: String,
    /// What was done.
    pub op: OpKind,
    /// For `send` and `recv`, the payload's short type name (`Offer`).
    pub msg: Option<String>,
    /// For `choose`, the label chosen; for `offer`, the label received.
    pub label: Option<String>,
    /// For `send`, the payload as postcard bytes (the frame without its
    /// header); for `recv`, the same, when the session was tapped (see
    /// [`Recording::tap`]).
    pub payload: Option<Vec<u8>>,
    /// The frame's size on the wire, header included, for an operation that
    /// succeeded.
    pub bytes: u64,
    /// The error, for an operation that failed.
    pub error: Option<RecordedError>,
    /// Set for an operation whose future was dropped before it completed
    /// (a timeout around it, a losing `select!` branch): it neither
    /// succeeded nor failed, `bytes` is 0 and `error` is `None`. See
    /// [`Recording`] for what such an entry holds.
    #[serde(default)]
    pub cancelled: Option<Cancellation>,
}

/// How a recorded operation was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cancellation {
    /// The deadline that dropped it, when it was the deadline of the
    /// recording layer's own [`within`](HandlerExt::within) or
    /// [`with_timeout`](ChoreoHandler::with_timeout); `None` when something
    /// the layer does not see dropped it (a `tokio::time::timeout` around
    /// the operation, a `select!`, the `within` of a layer above it).
    pub deadline: Option<Duration>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = self.msg.as_deref().unwrap_or("?");
        // A hand-edited transcript may hold a label of any length: show at
        // most what the wire allows.
        let label = self.label.as_deref().map(|l| {
            let mut end = l.len().min(wire::MAX_LABEL_LEN);
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            (&l[..end], if end < l.len() { "…" } else { "" })
        });
        match (self.op, label) {
            (OpKind::Send, _) => write!(f, "send {msg} to {}", self.peer)?,
            (OpKind::Recv, _) => write!(f, "recv {msg} from {}", self.peer)?,
            (OpKind::Choose, Some((l, more))) => write!(f, "choose {l}{more} for {}", self.peer)?,
            (OpKind::Choose, None) => write!(f, "choose ? for {}", self.peer)?,
            (OpKind::Offer, Some((l, more))) => write!(f, "offer from {}: {l}{more}", self.peer)?,
            (OpKind::Offer, None) => write!(f, "offer from {}", self.peer)?,
        }
        if let Some(p) = &self.payload {
            write!(f, " ({} payload bytes)", p.len())?;
        }
        if let Some(e) = &self.error {
            write!(f, ", failed: {e}")?;
        }
        match self.cancelled {
            Some(Cancellation { deadline: Some(d) }) => {
                write!(f, ", cancelled by a deadline of {d:?}")?
            }
            Some(Cancellation { deadline: None }) => write!(f, ", cancelled")?,
            None => {}
        }
        Ok(())
    }
}

/// The error of a recorded operation: its class and its message, and for
/// a timeout its duration. Replayed errors that have no typed equivalent
/// come back as a transport error whose source is this value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedError {
    /// The class of the original error.
    pub class: ErrorClass,
    /// The original error's message.
    pub message: String,
    /// The duration of a timeout.
    pub timeout: Option<Duration>,
}

impl RecordedError {
    /// The record of `e`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura::ChoreographyError;
    /// use rumpsteak_aura_layers::{ErrorClass, RecordedError};
    ///
    /// let r = RecordedError::of(&ChoreographyError::Timeout(Duration::from_millis(3)));
    /// assert_eq!(r.class, ErrorClass::Timeout);
    /// assert_eq!(r.timeout, Some(Duration::from_millis(3)));
    /// ```
    pub fn of(e: &ChoreographyError) -> Self {
        RecordedError {
            class: ErrorClass::of(e),
            message: bounded(e.to_string()),
            timeout: match e {
                ChoreographyError::Timeout(d) => Some(*d),
                _ => None,
            },
        }
    }
}

impl fmt::Display for RecordedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (recorded {})", self.message, self.class)
    }
}

impl StdError for RecordedError {}

/// What a [`Recording`] kept of one role's run. Serializes with serde.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Transcript {
    /// The local role, in its `Debug` form, once an operation ran.
    pub role: Option<String>,
    /// The operations, in the order they completed.
    pub entries: Vec<Entry>,
    /// Whether operations were left out because a limit was reached.
    pub truncated: bool,
    /// How many operations were left out.
    pub dropped: u64,
    /// Payload bytes kept, over all entries.
    pub payload_bytes: usize,
    /// The limits this transcript was recorded under.
    pub limits: Limits,
}

impl Transcript {
    /// An empty transcript with the given limits.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_layers::{Limits, Transcript};
    ///
    /// let t = Transcript::new(Limits::default());
    /// assert!(t.entries.is_empty() && !t.truncated);
    /// ```
    pub fn new(limits: Limits) -> Self {
        Transcript {
            limits,
            ..Transcript::default()
        }
    }

    /// Gives the cancelled entries kept after the first `mark` (entries
    /// are only ever appended) with no deadline the deadline `dur`.
    fn mark_cancelled_since(&mut self, mark: usize, dur: Duration) {
        for e in self.entries.iter_mut().skip(mark) {
            if let Some(c) = &mut e.cancelled
                && c.deadline.is_none()
            {
                c.deadline = Some(dur);
            }
        }
    }

    fn push(&mut self, entry: Entry) {
        let size = entry.payload.as_ref().map_or(0, Vec::len);
        if self.truncated
            || self.entries.len() >= self.limits.max_entries
            || self.payload_bytes + size > self.limits.max_payload_bytes
        {
            self.truncated = true;
            self.dropped += 1;
            return;
        }
        self.payload_bytes += size;
        self.entries.push(entry);
    }
}

/// Where a tapped session leaves the last message payload it received.
type TapSlot = Arc<Mutex<Option<Vec<u8>>>>;

struct Shared {
    transcript: Transcript,
    /// The last message payload each tapped session received, by peer name.
    taps: Vec<(String, TapSlot)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while the lock was held left plain data behind, still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A layer that records every operation and its outcome (peer, operation,
/// type name or label, payload bytes, frame size, error) into a
/// [`Transcript`], bounded by [`Limits`].
///
/// Clones share the transcript: keep one to read it with
/// [`Recording::transcript`] while the other runs the role.
///
/// Sent payloads are encoded with postcard for the transcript (the wire
/// encoding without the frame header). A received payload can only be
/// captured as it comes off the session, so register each session through
/// [`Recording::tap`] to have received payloads in the transcript, which
/// [`Replay`](crate::Replay) needs to play a `recv` back.
///
/// # Cancelled operations
///
/// An operation whose future is dropped after its first poll and before it
/// completes is recorded as an entry with [`Entry::cancelled`] set, in the
/// place it started: its peer, operation, type name, and for a `choose` its
/// label and for a `send` its payload (so that a replay can check the
/// attempt), with `bytes` 0 and no error. Such an entry does not say that
/// anything was delivered: a cancelled `recv` or `offer` consumed nothing
/// (the handler's receive is cancel safe, and a tapped payload is left for
/// the step that takes it), and a cancelled `send` reached the peer only if
/// the transport had already accepted the frame, as with the bare handler.
/// When the layer's own [`within`](HandlerExt::within) or
/// [`with_timeout`](ChoreoHandler::with_timeout) dropped the operation,
/// its deadline is kept in [`Cancellation::deadline`]. A future dropped
/// before its first poll did nothing and leaves no entry.
///
/// [`Replay`](crate::Replay) plays a cancelled entry back as an operation
/// that never completes, so the deadline or `select!` that dropped it when
/// recorded drops it again.
pub struct Recording<H> {
    inner: H,
    shared: Arc<Mutex<Shared>>,
}

impl<H> Recording<H> {
    /// Wraps `inner`, with the default [`Limits`].
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    /// use rumpsteak_aura_layers::Recording;
    ///
    /// let recording = Recording::new(RumpsteakHandler::<u8, ()>::new());
    /// assert!(recording.transcript().entries.is_empty());
    /// ```
    pub fn new(inner: H) -> Self {
        Self::with_limits(inner, Limits::default())
    }

    /// Wraps `inner`, keeping at most what `limits` allow.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    /// use rumpsteak_aura_layers::{Limits, Recording};
    ///
    /// let recording = Recording::with_limits(RumpsteakHandler::<u8, ()>::new(), Limits::new(8, 1024));
    /// assert_eq!(recording.transcript().limits.max_entries, 8);
    /// ```
    pub fn with_limits(inner: H, limits: Limits) -> Self {
        Recording {
            inner,
            shared: Arc::new(Mutex::new(Shared {
                transcript: Transcript::new(limits),
                taps: Vec::new(),
            })),
        }
    }

    /// A copy of the transcript so far.
    pub fn transcript(&self) -> Transcript {
        lock(&self.shared).transcript.clone()
    }

    /// Takes the transcript so far, leaving an empty one with the same
    /// limits.
    pub fn take_transcript(&self) -> Transcript {
        let mut shared = lock(&self.shared);
        let limits = shared.transcript.limits;
        std::mem::replace(&mut shared.transcript, Transcript::new(limits))
    }

    /// Wraps the session with `peer` so that the payloads it receives reach
    /// the transcript. Register the returned session in place of the
    /// original; it keeps the original's frame limit and behaves the same,
    /// at the cost of one copy of each received message, with one
    /// exception over a transport that can be not ready to send, which
    /// [`Recording::tap_transport`] avoids.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
    /// use rumpsteak_aura_layers::Recording;
    ///
    /// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    /// enum R { A, B }
    /// impl rumpsteak_aura::Role for R {
    ///     type Message = ();
    ///     fn seal(&mut self) {}
    ///     fn is_sealed(&self) -> bool { false }
    /// }
    ///
    /// let recording = Recording::new(RumpsteakHandler::<R, ()>::new());
    /// let (a, _b) = SimpleChannel::pair();
    /// let mut ep = RumpsteakEndpoint::new(R::A);
    /// ep.register_session(R::B, recording.tap(&R::B, a));
    /// assert!(ep.has_channel(&R::B));
    /// ```
    pub fn tap<R: Debug>(
        &self,
        peer: &R,
        session: impl Into<RumpsteakSession>,
    ) -> RumpsteakSession {
        let session = session.into();
        let max = session.max_frame_len();
        let slot = self.slot_for(peer);
        RumpsteakSession::from_transport(Tap {
            inner: session,
            pending: None,
            slot,
        })
        .with_max_frame_len(max)
    }

    /// Like [`Recording::tap`], for a session over a transport of your own:
    /// the returned session forwards the transport's send readiness as it
    /// is, so a send cancelled while the transport was not ready is not
    /// delivered, exactly as on a session made with
    /// [`RumpsteakSession::from_transport`]. (A session given to `tap` is
    /// already whole, and its readiness cannot be asked before a frame is
    /// handed over: `tap` buffers one frame, which over a transport that
    /// can be not ready sends a frame whose send was cancelled later. Over
    /// the in-memory channel a send completes at once and the two agree.)
    ///
    /// The session has the default frame limit; set another with
    /// [`RumpsteakSession::with_max_frame_len`].
    pub fn tap_transport<R: Debug>(
        &self,
        peer: &R,
        transport: impl SessionTransport,
    ) -> RumpsteakSession {
        RumpsteakSession::from_transport(TapTransport {
            inner: transport,
            slot: self.slot_for(peer),
        })
    }

    fn slot_for<R: Debug>(&self, peer: &R) -> TapSlot {
        let slot = Arc::new(Mutex::new(None));
        let name = bounded(format!("{peer:?}"));
        let mut shared = lock(&self.shared);
        shared.taps.retain(|(n, _)| *n != name);
        shared.taps.push((name, Arc::clone(&slot)));
        slot
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// Unwraps the handler; clones of the layer keep the transcript.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<H: Clone> Clone for Recording<H> {
    /// A clone wraps a clone of the handler and shares the transcript.
    fn clone(&self) -> Self {
        Recording {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<H: Debug> Debug for Recording<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = lock(&self.shared);
        f.debug_struct("Recording")
            .field("inner", &self.inner)
            .field("entries", &shared.transcript.entries.len())
            .field("truncated", &shared.transcript.truncated)
            .finish()
    }
}

/// A session that copies each received message payload into a slot the
/// recording reads.
struct Tap {
    inner: RumpsteakSession,
    pending: Option<Vec<u8>>,
    slot: TapSlot,
}

impl Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl SessionTransport for Tap {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.pending.is_some() {
            ready!(self.inner.poll_send_frame(cx, &mut self.pending))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.pending = Some(frame);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_send_frame(cx, &mut self.pending)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let frame = ready!(self.inner.poll_recv_frame(cx))?;
        copy_payload(&self.slot, &frame);
        Poll::Ready(Ok(frame))
    }

    fn close(&mut self) {
        self.inner.close();
    }
}

/// Leaves a copy of a received message's payload in the slot.
fn copy_payload(slot: &TapSlot, frame: &[u8]) {
    let payload = match wire::decode(frame) {
        Ok(Frame::Message(payload)) => Some(payload.to_vec()),
        _ => None,
    };
    *lock(slot) = payload;
}

/// A transport that copies each received message payload into a slot the
/// recording reads, and forwards everything else as it is.
struct TapTransport<T> {
    inner: T,
    slot: TapSlot,
}

impl<T: Debug> Debug for TapTransport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapTransport")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<T: SessionTransport> SessionTransport for TapTransport<T> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.inner.start_send(frame)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_flush(cx)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let frame = ready!(self.inner.poll_recv(cx))?;
        copy_payload(&self.slot, &frame);
        Poll::Ready(Ok(frame))
    }

    fn close(&mut self) {
        self.inner.close();
    }
}

/// What an entry will say, apart from its outcome.
struct Pending {
    op: OpKind,
    msg: Option<&'static str>,
    label: Option<&'static str>,
    payload: Option<Vec<u8>>,
    before: Option<Traffic>,
}

/// An operation under way, from its first poll. Dropped before
/// [`OpGuard::complete`], it records the operation as cancelled.
struct OpGuard<'a> {
    shared: &'a Mutex<Shared>,
    peer: String,
    pending: Option<Pending>,
}

impl<'a> OpGuard<'a> {
    fn begin<R>(
        shared: &'a Mutex<Shared>,
        ep: &RumpsteakEndpoint<R>,
        peer: &R,
        mut pending: Pending,
    ) -> Self
    where
        R: Role + Eq + Hash + Clone + Debug,
    {
        pending.before = ep.traffic(peer);
        {
            let mut s = lock(shared);
            if s.transcript.role.is_none() {
                s.transcript.role = Some(bounded(format!("{:?}", ep.local_role())));
            }
        }
        OpGuard {
            shared,
            peer: bounded(format!("{peer:?}")),
            pending: Some(pending),
        }
    }

    fn complete<R, T>(
        mut self,
        ep: &RumpsteakEndpoint<R>,
        peer: &R,
        result: &Result<T>,
        label: Option<&'static str>,
    ) where
        R: Role + Eq + Hash + Clone + Debug,
    {
        if let Some(p) = self.pending.take() {
            let name = std::mem::take(&mut self.peer);
            record(self.shared, ep, peer, name, p, result, label);
        }
    }
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        // The tapped payload, if any, stays in its slot for the step that
        // consumes the message: nothing was received here.
        let mut shared = lock(self.shared);
        shared.transcript.push(Entry {
            peer: std::mem::take(&mut self.peer),
            op: p.op,
            msg: p.msg.map(str::to_owned),
            label: p.label.map(str::to_owned),
            payload: if p.op == OpKind::Send {
                p.payload
            } else {
                None
            },
            bytes: 0,
            error: None,
            cancelled: Some(Cancellation { deadline: None }),
        });
    }
}

fn record<R, T>(
    shared: &Mutex<Shared>,
    ep: &RumpsteakEndpoint<R>,
    peer: &R,
    name: String,
    mut p: Pending,
    result: &Result<T>,
    label: Option<&'static str>,
) where
    R: Role + Eq + Hash + Clone + Debug,
{
    let mut shared = lock(shared);
    if !p.op.is_outgoing() {
        // Take the tapped payload whatever the outcome, so that it is never
        // mistaken for a later step's.
        let tapped = shared
            .taps
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, slot)| lock(slot).take());
        if p.op == OpKind::Recv {
            p.payload = tapped;
        }
    }
    let bytes = match (result, p.before, ep.traffic(peer)) {
        (Ok(_), Some(before), Some(after)) => {
            if p.op.is_outgoing() {
                after.bytes_sent - before.bytes_sent
            } else {
                after.bytes_received - before.bytes_received
            }
        }
        _ => 0,
    };
    let error = result.as_ref().err().map(RecordedError::of);
    if error.is_some() && p.op == OpKind::Send {
        // The payload was not sent.
        p.payload = None;
    }
    shared.transcript.push(Entry {
        peer: name,
        op: p.op,
        msg: p.msg.map(str::to_owned),
        label: label.or(p.label).map(str::to_owned),
        payload: p.payload,
        bytes,
        error,
        cancelled: None,
    });
}

/// One recorded operation; see `traced_op!` for the shape. Nothing is
/// recorded before the first poll.
macro_rules! recorded_op {
    ($self:ident, $ep:ident, $peer:ident, $pending:expr, |$inner:ident, $e:ident| $call:expr, $label:expr) => {{
        let Recording {
            inner: $inner,
            shared,
        } = $self;
        let pending: Pending = $pending;
        async move {
            let guard = OpGuard::begin(shared, $ep, &$peer, pending);
            let peer = $peer.clone();
            let result = {
                let $e = &mut *$ep;
                $call.await
            };
            let label: fn(&_) -> Option<&'static str> = $label;
            guard.complete($ep, &peer, &result, label(&result));
            result
        }
    }};
}

/// Runs `body` under a deadline of `dur`, as the handler does; when the
/// deadline passes, the operations the body had under way are dropped
/// first, and the entries they leave are marked with the deadline.
async fn recorded_deadline<T>(
    shared: &Mutex<Shared>,
    dur: Duration,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    let mut body = pin!(Some(body));
    let mut sleep = pin!(tokio::time::sleep(dur));
    let finished = poll_fn(|cx| {
        if let Some(b) = body.as_mut().as_pin_mut()
            && let Poll::Ready(r) = b.poll(cx)
        {
            return Poll::Ready(Some(r));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await;
    if let Some(result) = finished {
        return result;
    }
    let mark = lock(shared).transcript.entries.len();
    body.set(None);
    lock(shared).transcript.mark_cancelled_since(mark, dur);
    Err(ChoreographyError::Timeout(dur))
}

fn no_label<T>(_: &Result<T>) -> Option<&'static str> {
    None
}

fn offered(r: &Result<Label>) -> Option<&'static str> {
    r.as_ref().ok().map(|l| l.0)
}

fn incoming(op: OpKind, msg: Option<&'static str>) -> Pending {
    Pending {
        op,
        msg,
        label: None,
        payload: None,
        before: None,
    }
}

impl<H, R> ChoreoHandler for Recording<H>
where
    H: ChoreoHandler<Role = R, Endpoint = RumpsteakEndpoint<R>>,
    R: Role + Eq + Hash + Clone + Debug + Send,
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
        let pending = Pending {
            op: OpKind::Send,
            msg: Some(short_type_name(type_name::<Msg>())),
            label: None,
            // If it cannot be encoded, the send fails the same way.
            payload: postcard::to_allocvec(msg).ok(),
            before: None,
        };
        recorded_op!(
            self,
            ep,
            to,
            pending,
            |inner, e| inner.send(e, to.clone(), msg),
            no_label
        )
    }

    fn recv<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        let pending = incoming(OpKind::Recv, Some(short_type_name(type_name::<Msg>())));
        recorded_op!(
            self,
            ep,
            from,
            pending,
            |inner, e| inner.recv(e, from.clone()),
            no_label
        )
    }

    fn choose(
        &mut self,
        ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        let pending = Pending {
            op: OpKind::Choose,
            msg: None,
            label: Some(label.0),
            payload: None,
            before: None,
        };
        recorded_op!(
            self,
            ep,
            who,
            pending,
            |inner, e| inner.choose(e, who.clone(), label),
            no_label
        )
    }

    fn offer(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        let pending = incoming(OpKind::Offer, None);
        recorded_op!(
            self,
            ep,
            from,
            pending,
            |inner, e| inner.offer(e, from.clone()),
            offered
        )
    }

    /// Not a step of its own: runs `body` under the deadline as the
    /// handler does (failing with [`ChoreographyError::Timeout`]), and when
    /// the deadline passes, the operations of this transcript that `body`
    /// had under way are recorded as cancelled with the deadline.
    fn with_timeout<F, T>(
        &mut self,
        _ep: &mut Self::Endpoint,
        _at: R,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: Future<Output = Result<T>> + Send,
    {
        let shared = &*self.shared;
        recorded_deadline(shared, dur, body)
    }
}

impl<H, R> HandlerExt for Recording<H>
where
    H: HandlerExt<Role = R, Endpoint = RumpsteakEndpoint<R>>,
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    fn offer_among(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send {
        let pending = incoming(OpKind::Offer, None);
        recorded_op!(
            self,
            ep,
            from,
            pending,
            |inner, e| inner.offer_among(e, from.clone(), expected),
            offered
        )
    }

    /// Recorded as a `recv`; a timeout is recorded as a failed `recv`, so
    /// that a replay times out at the same step.
    fn recv_timeout<Msg>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        let pending = incoming(OpKind::Recv, Some(short_type_name(type_name::<Msg>())));
        recorded_op!(
            self,
            ep,
            from,
            pending,
            |inner, e| inner.recv_timeout(e, from.clone(), dur),
            no_label
        )
    }

    /// Recorded as an `offer`; a timeout as a failed `offer`.
    fn offer_timeout(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send {
        let pending = incoming(OpKind::Offer, None);
        recorded_op!(
            self,
            ep,
            from,
            pending,
            |inner, e| inner.offer_timeout(e, from.clone(), dur),
            offered
        )
    }

    /// Runs the steps of `body` under one deadline, as the handler does;
    /// when it passes, the step under way is recorded as cancelled, with
    /// the deadline (see [`Cancellation::deadline`]).
    fn within<T, F>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>>
    where
        Self: Sized,
        F: AsyncFnOnce(&mut Self, &mut RumpsteakEndpoint<R>) -> Result<T>,
    {
        let shared = Arc::clone(&self.shared);
        async move { recorded_deadline(&shared, dur, body(self, ep)).await }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            peer: "B".into(),
            op: OpKind::Send,
            msg: Some("u32".into()),
            label: None,
            payload: Some(vec![0; n]),
            bytes: 0,
            error: None,
            cancelled: None,
        }
    }

    #[test]
    fn full_transcript_keeps_its_prefix() {
        let mut t = Transcript::new(Limits::new(2, 100));
        t.push(entry(1));
        t.push(entry(1));
        t.push(entry(1));
        assert_eq!(t.entries.len(), 2);
        assert!(t.truncated);
        assert_eq!(t.dropped, 1);

        let mut t = Transcript::new(Limits::new(10, 5));
        t.push(entry(4));
        t.push(entry(4));
        // Fits again, but the transcript stays a prefix.
        t.push(entry(1));
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.dropped, 2);
        assert_eq!(t.payload_bytes, 4);
    }
}
