use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::{Future, ready};
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, Label, Operation, Result, Role, TransportError, Violation,
};
use rumpsteak_aura_handler::{RumpsteakEndpoint, intern_label};
use rumpsteak_aura_transport::wire;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ext::HandlerExt;
use crate::op::{ErrorClass, OpKind, short_type_name};
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
/// An operation that failed when recorded fails again with the recorded
/// error: a timeout as [`ChoreographyError::Timeout`], a closed session as
/// a closed transport error, a missing channel as
/// [`ChoreographyError::NoChannel`], anything else as a transport error
/// whose source is the [`RecordedError`]. No time passes: a replayed
/// timeout fails at once.
///
/// A divergence (another operation, peer, type, payload or label than
/// recorded, or a step past the end) fails with
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
    _role: PhantomData<fn() -> R>,
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
    /// `payload`, `label`, `past the end`, `steps left`.
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
            Some(r) => format!("step {}: {r} ({} differs)", self.step, self.what),
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
            _role: PhantomData,
        }
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
        self.transcript.entries.len() - self.cursor
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
        let step = self.cursor + 1;
        let recorded = self.transcript.entries.get(self.cursor);
        let what = match recorded {
            None => Some("past the end"),
            Some(r) if r.op != attempt.op => Some("operation"),
            Some(r) if r.peer != attempt.peer => Some("peer"),
            Some(r) if matches!(r.op, OpKind::Send | OpKind::Recv) && r.msg != attempt.msg => {
                Some("message type")
            }
            Some(r)
                if r.op == OpKind::Send
                    && r.error.is_none()
                    && r.payload.is_some()
                    && r.payload != attempt.payload =>
            {
                Some("payload")
            }
            Some(r) if r.op == OpKind::Choose && r.label != attempt.label => Some("label"),
            Some(r) => match (&attempt.among, &r.label) {
                (Some(among), Some(l)) if r.error.is_none() && !among.contains(l) => Some("label"),
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
        peer: format!("{peer:?}"),
        op,
        msg: None,
        label: None,
        among: None,
        payload: None,
    }
}

impl<R: Debug> Replay<R> {
    fn do_send<Msg: Serialize>(&mut self, to: &R, msg: &Msg) -> Result<()> {
        let ty = short_type_name(type_name::<Msg>());
        let payload = postcard::to_allocvec(msg).map_err(|e| ChoreographyError::Serialization {
            peer: format!("{to:?}"),
            op: Operation::Send,
            type_name: type_name::<Msg>(),
            source: Box::new(e),
        })?;
        let entry = self.step(Attempt {
            msg: Some(ty.to_owned()),
            payload: Some(payload),
            ..attempt(to, OpKind::Send)
        })?;
        match &entry.error {
            Some(e) => Err(replayed_error(&entry, e)),
            None => Ok(()),
        }
    }

    fn do_recv<Msg: DeserializeOwned>(&mut self, from: &R) -> Result<Msg> {
        let ty = short_type_name(type_name::<Msg>());
        let entry = self.step(Attempt {
            msg: Some(ty.to_owned()),
            ..attempt(from, OpKind::Recv)
        })?;
        if let Some(e) = &entry.error {
            return Err(replayed_error(&entry, e));
        }
        let serialization =
            |source: Box<dyn std::error::Error + Send + Sync>| ChoreographyError::Serialization {
                peer: entry.peer.clone(),
                op: Operation::Recv,
                type_name: type_name::<Msg>(),
                source,
            };
        match &entry.payload {
            Some(payload) => wire::decode_message(payload).map_err(|e| serialization(Box::new(e))),
            None => Err(serialization(
                "the transcript holds no payload for this step: \
                 record with the session registered through Recording::tap"
                    .into(),
            )),
        }
    }

    fn do_choose(&mut self, who: &R, label: Label) -> Result<()> {
        let entry = self.step(Attempt {
            label: Some(label.0.to_owned()),
            ..attempt(who, OpKind::Choose)
        })?;
        match &entry.error {
            Some(e) => Err(replayed_error(&entry, e)),
            None => Ok(()),
        }
    }

    fn do_offer(&mut self, from: &R, among: Option<&[Label]>) -> Result<Label> {
        let entry = self.step(Attempt {
            among: among.map(|ls| ls.iter().map(|l| l.0.to_owned()).collect()),
            ..attempt(from, OpKind::Offer)
        })?;
        if let Some(e) = &entry.error {
            return Err(replayed_error(&entry, e));
        }
        let Some(text) = entry.label.as_deref() else {
            return Err(ChoreographyError::ProtocolViolation {
                peer: entry.peer.clone(),
                op: Operation::Offer,
                violation: Violation::OutOfProtocol {
                    expected: format!("step {}: a recorded label", self.cursor),
                    attempted: "offer".to_owned(),
                },
            });
        };
        if let Some(known) = among.and_then(|ls| ls.iter().find(|l| l.0 == text)) {
            return Ok(*known);
        }
        intern_label(text)
            .map(Label)
            .map_err(|violation| ChoreographyError::ProtocolViolation {
                peer: entry.peer.clone(),
                op: Operation::Offer,
                violation,
            })
    }
}

impl<R> Clone for Replay<R> {
    /// A clone plays the same transcript from the same position.
    fn clone(&self) -> Self {
        Replay {
            transcript: Arc::clone(&self.transcript),
            cursor: self.cursor,
            divergence: self.divergence.clone(),
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
        ready(self.do_send(&to, msg))
    }

    fn recv<Msg>(
        &mut self,
        _ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        ready(self.do_recv(&from))
    }

    fn choose(
        &mut self,
        _ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.do_choose(&who, label))
    }

    fn offer(
        &mut self,
        _ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        ready(self.do_offer(&from, None))
    }

    /// Runs `body` without a timer: a replay takes no time, and the steps
    /// inside fail as they were recorded to.
    fn with_timeout<F, T>(
        &mut self,
        _ep: &mut Self::Endpoint,
        _at: R,
        _dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: Future<Output = Result<T>> + Send,
    {
        body
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
        ready(self.do_offer(&from, Some(expected)))
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
        ready(self.do_recv(&from))
    }

    /// Plays back like `offer`: a recorded timeout fails at once.
    fn offer_timeout(
        &mut self,
        _ep: &mut RumpsteakEndpoint<R>,
        from: R,
        _dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send {
        ready(self.do_offer(&from, None))
    }

    /// Runs `body` without a timer.
    fn within<T, F>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        _dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>>
    where
        Self: Sized,
        F: AsyncFnOnce(&mut Self, &mut RumpsteakEndpoint<R>) -> Result<T>,
    {
        body(self, ep)
    }
}
