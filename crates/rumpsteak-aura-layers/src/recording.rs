use std::any::type_name;
use std::error::Error as StdError;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
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
use crate::op::{ErrorClass, OpKind, short_type_name};

/// How much a [`Recording`] keeps.
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
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = self.msg.as_deref().unwrap_or("?");
        let label = self.label.as_deref().unwrap_or("?");
        match self.op {
            OpKind::Send => write!(f, "send {msg} to {}", self.peer)?,
            OpKind::Recv => write!(f, "recv {msg} from {}", self.peer)?,
            OpKind::Choose => write!(f, "choose {label} for {}", self.peer)?,
            OpKind::Offer => match &self.label {
                Some(l) => write!(f, "offer from {}: {l}", self.peer)?,
                None => write!(f, "offer from {}", self.peer)?,
            },
        }
        if let Some(p) = &self.payload {
            write!(f, " ({} payload bytes)", p.len())?;
        }
        if let Some(e) = &self.error {
            write!(f, ", failed: {e}")?;
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
            message: e.to_string(),
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
/// An operation whose future is dropped before it completes did not happen
/// as far as the transcript goes: nothing is recorded for it. (A send the
/// transport had already accepted does reach the peer, as with the bare
/// handler; the transcript leaves it out.)
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
    /// at the cost of one copy of each received message.
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
        let slot = Arc::new(Mutex::new(None));
        let name = format!("{peer:?}");
        {
            let mut shared = lock(&self.shared);
            shared.taps.retain(|(n, _)| *n != name);
            shared.taps.push((name, Arc::clone(&slot)));
        }
        RumpsteakSession::from_transport(Tap {
            inner: session,
            pending: None,
            slot,
        })
        .with_max_frame_len(max)
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
        let payload = match wire::decode(&frame) {
            Ok(Frame::Message(payload)) => Some(payload.to_vec()),
            _ => None,
        };
        *lock(&self.slot) = payload;
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

fn record<R, T>(
    shared: &Mutex<Shared>,
    ep: &RumpsteakEndpoint<R>,
    peer: &R,
    mut p: Pending,
    result: &Result<T>,
    label: Option<&'static str>,
) where
    R: Role + Eq + Hash + Clone + Debug,
{
    let name = format!("{peer:?}");
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
    if shared.transcript.role.is_none() {
        shared.transcript.role = Some(format!("{:?}", ep.local_role()));
    }
    shared.transcript.push(Entry {
        peer: name,
        op: p.op,
        msg: p.msg.map(str::to_owned),
        label: label.or(p.label).map(str::to_owned),
        payload: p.payload,
        bytes,
        error,
    });
}

/// One recorded operation; see `traced_op!` for the shape.
macro_rules! recorded_op {
    ($self:ident, $ep:ident, $peer:ident, $pending:expr, |$inner:ident, $e:ident| $call:expr, $label:expr) => {{
        let Recording {
            inner: $inner,
            shared,
        } = $self;
        let mut pending: Pending = $pending;
        async move {
            pending.before = $ep.traffic(&$peer);
            let peer = $peer.clone();
            let result = {
                let $e = &mut *$ep;
                $call.await
            };
            let label: fn(&_) -> Option<&'static str> = $label;
            record(shared, $ep, &peer, pending, &result, label(&result));
            result
        }
    }};
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

    /// Forwarded as it is: not a step of its own.
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
