use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::{Future, pending, poll_fn};
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, Label, Operation, Result, Role, TransportError, Violation,
};
use rumpsteak_aura_handler::RumpsteakEndpoint;
use rumpsteak_aura_transport::wire::{self, MAX_LABEL_LEN};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ext::HandlerExt;
use crate::op::{ErrorClass, OpKind, bounded, short_type_name};
use crate::recording::{Entry, RecordedError, Transcript};

/// A handler that plays one role's [`Transcript`] back, so that the role's
/// code runs with its peers absent, over no transport at all.
///
/// Its endpoint is a [`RumpsteakEndpoint`] with no sessions (pass
/// `RumpsteakEndpoint::new(role)`): the position in the transcript lives in
/// the `Replay` value. Each operation is matched against the next entry:
///
/// - the operation and the peer must be the recorded ones;
/// - a `send` must carry a payload of the recorded type whose postcard
///   bytes equal the recorded ones;
/// - a `recv` must ask for the recorded type, and gets the recorded
///   payload decoded (the session must have been tapped while recording,
///   see [`Recording::tap`](crate::Recording::tap));
/// - a `choose` must choose the recorded label; an `offer` returns the
///   recorded label, and `offer_among` requires it among the labels given.
///
/// Each operation does its step when its future is first polled, not when
/// the future is made: a future dropped unpolled (a losing `select!`
/// branch) takes no step.
///
/// An operation that failed when recorded fails again with the recorded
/// error: a timeout as [`ChoreographyError::Timeout`], a closed session as
/// a closed transport error, a missing channel as
/// [`ChoreographyError::NoChannel`], anything else as a transport error
/// whose source is the [`RecordedError`]. No time passes: a replayed
/// timeout fails at once.
///
/// An operation recorded as cancelled (see [`Entry::cancelled`]) takes its
/// step and then never completes, as it did not when recorded: what
/// dropped it then must drop it again. Inside this handler's
/// [`within`](HandlerExt::within) or
/// [`with_timeout`](ChoreoHandler::with_timeout), whose deadline is the
/// recorded one (or was not recorded), the deadline passes at once: the
/// body is given up and the call fails with
/// [`ChoreographyError::Timeout`]. Under a `tokio::time::timeout` (the
/// typed roles' `*_timeout` methods) the timer runs its real course.
///
/// Labels: `offer` returns the recorded label. One of the labels given to
/// `offer_among` or [`Replay::with_labels`] is returned as given; any other
/// label is copied once for this replay (and its clones), so a replay never
/// touches the handler's process-wide label table and copies at most the
/// transcript's distinct labels. A recorded label longer than the wire's
/// 255 bytes is a divergence.
///
/// A divergence (another operation, peer, type, payload or label than
/// recorded, a step past the end, or a recorded step that cannot be played
/// back) fails with
/// [`ChoreographyError::ProtocolViolation`] carrying
/// [`Violation::OutOfProtocol`], whose `expected` names the step number
/// and the recorded step and whose `attempted` names the step attempted.
/// The same facts, typed, are in [`Replay::divergence`]. After a
/// divergence every operation fails with the same error. Steps are
/// numbered from 1.
///
/// [`Replay::finish`] checks that the role took every recorded step.
pub struct Replay<R> {
    transcript: Arc<Transcript>,
    cursor: usize,
    divergence: Option<Divergence>,
    /// The labels `offer` may return without copying, and the copies made.
    labels: Arc<Mutex<Vec<&'static str>>>,
    /// Set by a step recorded as cancelled, to its recorded deadline; read
    /// by `within` and `with_timeout`, cleared by the next step.
    stall: Arc<Mutex<Option<Option<Duration>>>>,
    _role: PhantomData<fn() -> R>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: usable after a panic elsewhere.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A step the role attempted during a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The peer, in its `Debug` form.
    pub peer: String,
    /// What was attempted.
    pub op: OpKind,
    /// For `send` and `recv`, the payload's short type name.
    pub msg: Option<String>,
    /// For `choose`, the label.
    pub label: Option<String>,
    /// For `offer_among`, the labels accepted.
    pub among: Option<Vec<String>>,
    /// For `send`, the payload's postcard bytes.
    pub payload: Option<Vec<u8>>,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = self.msg.as_deref().unwrap_or("?");
        match self.op {
            OpKind::Send => write!(f, "send {msg} to {}", self.peer)?,
            OpKind::Recv => write!(f, "recv {msg} from {}", self.peer)?,
            OpKind::Choose => write!(
                f,
                "choose {} for {}",
                self.label.as_deref().unwrap_or("?"),
                self.peer
            )?,
            OpKind::Offer => write!(f, "offer from {}", self.peer)?,
        }
        if let Some(among) = &self.among {
            write!(f, " among [{}]", among.join(", "))?;
        }
        if let Some(p) = &self.payload {
            write!(f, " ({} payload bytes)", p.len())?;
        }
        Ok(())
    }
}

/// Where and how a replayed role left its transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Divergence {
    /// The step number, from 1.
    pub step: usize,
    /// The recorded step; `None` past the end of the transcript.
    pub recorded: Option<Entry>,
    /// The attempted step; `None` when the role ended (see
    /// [`Replay::finish`]) with recorded steps left.
    pub attempted: Option<Attempt>,
    /// What differs, in words: `operation`, `peer`, `message type`,
    /// `payload` or `label` (the attempt differs from the record);
    /// `past the end` (a step after the last); `steps left` (the role ended
    /// before the last step); `missing payload`, `missing label` or
    /// `label too long` (the recorded step cannot be played back).
    pub what: &'static str,
}

impl Divergence {
    /// The error a replayed operation fails with.
    pub fn to_error(&self) -> ChoreographyError {
        let (peer, op) = match (&self.attempted, &self.recorded) {
            (Some(a), _) => (a.peer.clone(), a.op.operation()),
            (None, Some(r)) => (r.peer.clone(), r.op.operation()),
            (None, None) => (String::new(), Operation::Connect),
        };
        let expected = match &self.recorded {
            Some(r) => {
                let why = match self.what {
                    "steps left" => "not taken".to_owned(),
                    "missing payload" => "recorded without its payload; a received payload \
                                          needs the session registered through Recording::tap"
                        .to_owned(),
                    "missing label" => "recorded without its label".to_owned(),
                    "label too long" => {
                        format!("recorded label longer than {MAX_LABEL_LEN} bytes")
                    }
                    what => format!("{what} differs"),
                };
                format!("step {}: {r} ({why})", self.step)
            }
            None => format!("step {}: the end of the transcript", self.step),
        };
        let attempted = match &self.attempted {
            Some(a) => a.to_string(),
            None => "the end of the role".to_owned(),
        };
        ChoreographyError::ProtocolViolation {
            peer,
            op,
            violation: Violation::OutOfProtocol {
                expected,
                attempted,
            },
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to_error() {
            ChoreographyError::ProtocolViolation {
                violation:
                    Violation::OutOfProtocol {
                        expected,
                        attempted,
                    },
                ..
            } => write!(
                f,
                "replay diverged: expected {expected}, attempted {attempted}"
            ),
            other => write!(f, "{other}"),
        }
    }
}

impl<R> Replay<R> {
    /// A replay of `transcript` from its first step.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_layers::{Limits, Replay, Transcript};
    ///
    /// let replay = Replay::<u8>::new(Transcript::new(Limits::default()));
    /// assert_eq!(replay.position(), 0);
    /// assert!(replay.finish().is_ok());
    /// ```
    pub fn new(transcript: Transcript) -> Self {
        Self::shared(Arc::new(transcript))
    }

    /// A replay of a shared transcript, for replaying it more than once.
    pub fn shared(transcript: Arc<Transcript>) -> Self {
        Replay {
            transcript,
            cursor: 0,
            divergence: None,
            labels: Arc::default(),
            stall: Arc::default(),
            _role: PhantomData,
        }
    }

    /// Adds labels that `offer` returns as they are when the recorded label
    /// is one of them, instead of a copy: the labels the role's code
    /// compares with, say. Copies compare equal all the same; this only
    /// saves them.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::Label;
    /// use rumpsteak_aura_layers::{Limits, Replay, Transcript};
    ///
    /// let replay = Replay::<u8>::new(Transcript::new(Limits::default()))
    ///     .with_labels(&[Label("accept"), Label("reject")]);
    /// assert_eq!(replay.position(), 0);
    /// ```
    pub fn with_labels(self, labels: &[Label]) -> Self {
        lock(&self.labels).extend(labels.iter().map(|l| l.0));
        self
    }

    /// The transcript played back.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// How many steps were played back.
    pub fn position(&self) -> usize {
        self.cursor
    }

    /// How many recorded steps are left.
    pub fn remaining(&self) -> usize {
        self.transcript.entries.len().saturating_sub(self.cursor)
    }

    /// The divergence, once one happened.
    pub fn divergence(&self) -> Option<&Divergence> {
        self.divergence.as_ref()
    }

    /// Checks the role took every recorded step and never diverged: the
    /// divergence's error, or one naming the first step left.
    pub fn finish(&self) -> Result<()> {
        if let Some(d) = &self.divergence {
            return Err(d.to_error());
        }
        match self.transcript.entries.get(self.cursor) {
            None => Ok(()),
            Some(entry) => Err(Divergence {
                step: self.cursor + 1,
                recorded: Some(entry.clone()),
                attempted: None,
                what: "steps left",
            }
            .to_error()),
        }
    }

    /// Matches `attempt` against the next entry; on success, moves past it
    /// and returns it.
    fn step(&mut self, attempt: Attempt) -> Result<Entry> {
        if let Some(d) = &self.divergence {
            return Err(d.to_error());
        }
        // An earlier step's stall is over: its future was dropped.
        *lock(&self.stall) = None;
        let step = self.cursor + 1;
        let recorded = self.transcript.entries.get(self.cursor);
        let what = match recorded {
            None => Some("past the end"),
            Some(r) if r.op != attempt.op => Some("operation"),
            Some(r) if r.peer != attempt.peer => Some("peer"),
            Some(r) if matches!(r.op, OpKind::Send | OpKind::Recv) && r.msg != attempt.msg => {
                Some("message type")
            }
            Some(r) if r.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_LEN) => {
                Some("label too long")
            }
            Some(r) if r.error.is_none() && r.payload.is_none() && needs_payload(r) => {
                Some("missing payload")
            }
            Some(r)
                if r.op == OpKind::Offer
                    && r.error.is_none()
                    && r.cancelled.is_none()
                    && r.label.is_none() =>
            {
                Some("missing label")
            }
            Some(r)
                if r.op == OpKind::Send && r.error.is_none() && r.payload != attempt.payload =>
            {
                Some("payload")
            }
            Some(r) if r.op == OpKind::Choose && r.label != attempt.label => Some("label"),
            Some(r) => match (&attempt.among, &r.label) {
                (Some(among), Some(l))
                    if r.error.is_none() && r.cancelled.is_none() && !among.contains(l) =>
                {
                    Some("label")
                }
                _ => None,
            },
        };
        match what {
            None => {
                self.cursor += 1;
                match recorded {
                    Some(r) => Ok(r.clone()),
                    None => unreachable!("invariant: a missing entry is a divergence"),
                }
            }
            Some(what) => {
                let d = Divergence {
                    step,
                    recorded: recorded.cloned(),
                    attempted: Some(attempt),
                    what,
                };
                let e = d.to_error();
                if tracing::level_enabled!(tracing::Level::DEBUG) {
                    tracing::debug!(step, what, "replay diverged");
                }
                self.divergence = Some(d);
                Err(e)
            }
        }
    }
}

/// Whether a recorded step that did not fail needs its payload to be
/// played back: a `send` (to compare the attempt with), a `recv` that
/// completed (to return).
fn needs_payload(r: &Entry) -> bool {
    match r.op {
        OpKind::Send => true,
        OpKind::Recv => r.cancelled.is_none(),
        OpKind::Choose | OpKind::Offer => false,
    }
}

/// How a replayed step ends.
enum Played<T> {
    /// As recorded: with its value or its recorded error.
    Done(Result<T>),
    /// Recorded as cancelled: it never completes.
    Stalled,
}

/// The future of one replayed operation: `step` runs at the first poll.
async fn played<T>(step: impl FnOnce() -> Played<T>) -> Result<T> {
    match step() {
        Played::Done(r) => r,
        Played::Stalled => pending().await,
    }
}

/// The error an operation fails with when its entry recorded one.
fn replayed_error(entry: &Entry, e: &RecordedError) -> ChoreographyError {
    let op = entry.op.operation();
    match e.class {
        ErrorClass::Timeout => ChoreographyError::Timeout(e.timeout.unwrap_or_default()),
        ErrorClass::Closed => ChoreographyError::Transport(
            TransportError::closed().in_context(op, entry.peer.clone()),
        ),
        ErrorClass::NoChannel => ChoreographyError::NoChannel {
            peer: entry.peer.clone(),
            op,
        },
        _ => ChoreographyError::Transport(
            TransportError::other(e.clone()).in_context(op, entry.peer.clone()),
        ),
    }
}

fn attempt<R: Debug>(peer: &R, op: OpKind) -> Attempt {
    Attempt {
        peer: bounded(format!("{peer:?}")),
        op,
        msg: None,
        label: None,
        among: None,
        payload: None,
    }
}

impl<R: Debug> Replay<R> {
    /// The end of a step recorded as cancelled: `within` learns the
    /// recorded deadline.
    fn stalled<T>(&self, entry: &Entry) -> Option<Played<T>> {
        let c = entry.cancelled?;
        *lock(&self.stall) = Some(c.deadline);
        Some(Played::Stalled)
    }

    fn do_send<Msg: Serialize>(&mut self, to: &R, msg: &Msg) -> Played<()> {
        let ty = short_type_name(type_name::<Msg>());
        let payload = match postcard::to_allocvec(msg) {
            Ok(p) => p,
            Err(e) => {
                return Played::Done(Err(ChoreographyError::Serialization {
                    peer: format!("{to:?}"),
                    op: Operation::Send,
                    type_name: type_name::<Msg>(),
                    source: Box::new(e),
                }));
            }
        };
        let entry = match self.step(Attempt {
            msg: Some(ty.to_owned()),
            payload: Some(payload),
            ..attempt(to, OpKind::Send)
        }) {
            Ok(entry) => entry,
            Err(e) => return Played::Done(Err(e)),
        };
        if let Some(stalled) = self.stalled(&entry) {
            return stalled;
        }
        Played::Done(match &entry.error {
            Some(e) => Err(replayed_error(&entry, e)),
            None => Ok(()),
        })
    }

    fn do_recv<Msg: DeserializeOwned>(&mut self, from: &R) -> Played<Msg> {
        let ty = short_type_name(type_name::<Msg>());
        let entry = match self.step(Attempt {
            msg: Some(ty.to_owned()),
            ..attempt(from, OpKind::Recv)
        }) {
            Ok(entry) => entry,
            Err(e) => return Played::Done(Err(e)),
        };
        if let Some(stalled) = self.stalled(&entry) {
            return stalled;
        }
        if let Some(e) = &entry.error {
            return Played::Done(Err(replayed_error(&entry, e)));
        }
        // `step` made sure a completed recv has its payload.
        let payload = entry.payload.as_deref().unwrap_or_default();
        Played::Done(
            wire::decode_message(payload).map_err(|e| ChoreographyError::Serialization {
                peer: entry.peer.clone(),
                op: Operation::Recv,
                type_name: type_name::<Msg>(),
                source: Box::new(e),
            }),
        )
    }

    fn do_choose(&mut self, who: &R, label: Label) -> Played<()> {
        let entry = match self.step(Attempt {
            label: Some(label.0.to_owned()),
            ..attempt(who, OpKind::Choose)
        }) {
            Ok(entry) => entry,
            Err(e) => return Played::Done(Err(e)),
        };
        if let Some(stalled) = self.stalled(&entry) {
            return stalled;
        }
        Played::Done(match &entry.error {
            Some(e) => Err(replayed_error(&entry, e)),
            None => Ok(()),
        })
    }

    fn do_offer(&mut self, from: &R, among: Option<&[Label]>) -> Played<Label> {
        let entry = match self.step(Attempt {
            among: among.map(|ls| ls.iter().map(|l| l.0.to_owned()).collect()),
            ..attempt(from, OpKind::Offer)
        }) {
            Ok(entry) => entry,
            Err(e) => return Played::Done(Err(e)),
        };
        if let Some(stalled) = self.stalled(&entry) {
            return stalled;
        }
        if let Some(e) = &entry.error {
            return Played::Done(Err(replayed_error(&entry, e)));
        }
        // `step` made sure a completed offer has a label of at most
        // MAX_LABEL_LEN bytes.
        let text = entry.label.as_deref().unwrap_or_default();
        if let Some(known) = among.and_then(|ls| ls.iter().find(|l| l.0 == text)) {
            return Played::Done(Ok(*known));
        }
        Played::Done(Ok(Label(self.label(text))))
    }

    /// The `&'static str` for a recorded label: a known one, or a copy made
    /// once for this replay. At most one copy per distinct label of the
    /// transcript, each at most MAX_LABEL_LEN bytes.
    fn label(&self, text: &str) -> &'static str {
        let mut labels = lock(&self.labels);
        if let Some(known) = labels.iter().find(|l| **l == text) {
            return known;
        }
        let copied: &'static str = Box::leak(text.to_owned().into_boxed_str());
        labels.push(copied);
        copied
    }
}

/// Runs `body` under a deadline of `dur`, with the real timer, and gives it
/// up at once when a step of the replay stalls on an operation recorded as
/// cancelled by this deadline (or by an unrecorded one).
async fn replayed_deadline<T>(
    stall: &Mutex<Option<Option<Duration>>>,
    dur: Duration,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    let mut body = pin!(body);
    let mut sleep = pin!(tokio::time::sleep(dur));
    poll_fn(|cx| {
        if let Poll::Ready(r) = body.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        {
            let mut stall = lock(stall);
            if let Some(deadline) = *stall
                && deadline.is_none_or(|d| d == dur)
            {
                *stall = None;
                return Poll::Ready(Err(ChoreographyError::Timeout(dur)));
            }
        }
        sleep
            .as_mut()
            .poll(cx)
            .map(|()| Err(ChoreographyError::Timeout(dur)))
    })
    .await
}

impl<R> Clone for Replay<R> {
    /// A clone plays the same transcript from the same position, on its
    /// own; it shares the labels copied so far.
    fn clone(&self) -> Self {
        Replay {
            transcript: Arc::clone(&self.transcript),
            cursor: self.cursor,
            divergence: self.divergence.clone(),
            labels: Arc::clone(&self.labels),
            stall: Arc::default(),
            _role: PhantomData,
        }
    }
}

impl<R> Debug for Replay<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("role", &self.transcript.role)
            .field("position", &self.cursor)
            .field("steps", &self.transcript.entries.len())
            .field("divergence", &self.divergence)
            .finish()
    }
}

impl<R> ChoreoHandler for Replay<R>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    type Role = R;
    type Endpoint = RumpsteakEndpoint<R>;

    fn send<Msg>(
        &mut self,
        _ep: &mut Self::Endpoint,
        to: R,
        msg: &Msg,
    ) -> impl Future<Output = Result<()>> + Send
    where
        Msg: Serialize + Send + Sync,
    {
        played(move || self.do_send(&to, msg))
    }

    fn recv<Msg>(
        &mut self,
        _ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        played(move || self.do_recv(&from))
    }

    fn choose(
        &mut self,
        _ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        played(move || self.do_choose(&who, label))
    }

    fn offer(
        &mut self,
        _ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        played(move || self.do_offer(&from, None))
    }

    /// Runs `body` under the deadline, as the handler does; a step of this
    /// replay recorded as cancelled by it ends it at once (see [`Replay`]).
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
        let stall = Arc::clone(&self.stall);
        async move { replayed_deadline(&stall, dur, body).await }
    }
}

impl<R> HandlerExt for Replay<R>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    fn offer_among(
        &mut self,
        _ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send {
        played(move || self.do_offer(&from, Some(expected)))
    }

    /// Plays back like `recv`: a recorded timeout fails at once.
    fn recv_timeout<Msg>(
        &mut self,
        _ep: &mut RumpsteakEndpoint<R>,
        from: R,
        _dur: Duration,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        played(move || self.do_recv(&from))
    }

    /// Plays back like `offer`: a recorded timeout fails at once.
    fn offer_timeout(
        &mut self,
        _ep: &mut RumpsteakEndpoint<R>,
        from: R,
        _dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send {
        played(move || self.do_offer(&from, None))
    }

    /// Runs the steps of `body` under the deadline, as the handler does; a
    /// step recorded as cancelled by it ends it at once with
    /// [`ChoreographyError::Timeout`] (see [`Replay`]).
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
        let stall = Arc::clone(&self.stall);
        async move { replayed_deadline(&stall, dur, body(self, ep)).await }
    }
}
