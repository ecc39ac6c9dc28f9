use std::sync::Arc;
use std::time::Duration;

use rumpsteak_aura::{TransportError, TransportErrorKind};

pub use crate::frame::RejectReason;

/// Which limit of the replay buffer was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayLimit {
    /// The buffer held this many unacknowledged frames.
    Frames(usize),
    /// The buffer held this many bytes of unacknowledged frames.
    Bytes(usize),
}

impl std::fmt::Display for ReplayLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayLimit::Frames(n) => write!(f, "{n} frames"),
            ReplayLimit::Bytes(n) => write!(f, "{n} bytes"),
        }
    }
}

/// Why a resumable session ended: the bound that was hit.
///
/// Every pending and later operation of the session fails with a
/// [`TransportError`] of kind [`Other`](TransportErrorKind::Other) whose
/// source is this error; [`ResumeError::of`] finds it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The peer was not back within the reconnect deadline.
    #[error(
        "reconnect deadline of {deadline:?} passed after {attempts} attempts (last cause: {last_cause})"
    )]
    ReconnectDeadline {
        /// The deadline, counted from the moment the link was lost.
        deadline: Duration,
        /// How many links were tried.
        attempts: u32,
        /// Why the link was lost, or why the last attempt failed.
        last_cause: String,
    },
    /// A send did not fit the replay buffer while the link was down, with
    /// [`OnFull::Fail`](crate::OnFull::Fail).
    #[error("replay buffer overflowed: it holds {limit} while the link is down")]
    ReplayOverflow {
        /// The limit that was reached.
        limit: ReplayLimit,
    },
    /// The peer presented another session identifier.
    #[error("the peer presents session `{presented}`, expected `{expected}`")]
    WrongSession {
        /// This side's session identifier.
        expected: String,
        /// The peer's.
        presented: String,
    },
    /// The peer presented other roles than the ones expected.
    #[error("the peer presents roles `{presented}`, expected `{expected}`")]
    WrongRole {
        /// `from -> to` as this side expects them.
        expected: String,
        /// `from -> to` as the peer presented them.
        presented: String,
    },
    /// The new link proves another peer identity than the first link did.
    #[error("the peer's identity changed: expected `{expected}`, presented `{presented:?}`")]
    IdentityChanged {
        /// The identity the first link proved.
        expected: String,
        /// The identity the new link proves, if any.
        presented: Option<String>,
    },
    /// The peer restarted and lost the session's state: it comes back as
    /// a new incarnation, and is refused rather than resumed.
    #[error(
        "the peer restarted and lost its state: incarnation {presented:#018x}, expected {expected:#018x}"
    )]
    PeerRestarted {
        /// The incarnation the peer had.
        expected: u64,
        /// The incarnation it presents now (0: a fresh session).
        presented: u64,
    },
    /// The peer resumes a session this side does not have: this side
    /// restarted (and lost the session), or the session is over.
    #[error("the peer resumes a session this side does not have (incarnation {presented:#018x})")]
    UnknownSession {
        /// The incarnation of this side that the peer asked for.
        presented: u64,
    },
    /// The peer speaks another version of the framing: a peer of version 1
    /// is not resumable at all.
    #[error("the peer speaks wire format version {found}, this side speaks {supported}")]
    Version {
        /// The version byte the peer sent.
        found: u8,
        /// The version this side speaks.
        supported: u8,
    },
    /// The peer's sequence numbers do not fit what this side holds (it
    /// claims frames never sent, or lost frames it had acknowledged).
    #[error("sequence state mismatch: {0}")]
    StateMismatch(String),
    /// The peer refused this side, saying why.
    #[error("refused by the peer ({reason}): {detail}")]
    RefusedByPeer {
        /// The reason code of the peer's reject frame.
        reason: RejectReason,
        /// The peer's text, escaped.
        detail: String,
    },
    /// A frame on the link broke the resumable framing.
    #[error("protocol violation on the link: {0}")]
    Protocol(String),
    /// The task that drives the session's links stopped before the session
    /// ended: it was aborted, or the runtime it was spawned on shut down
    /// while the session was still in use (from another runtime).
    #[error("the session's driver task stopped (its runtime shut down) before the session ended")]
    DriverGone,
    /// A new link could not be had at all, for a reason no retry fixes (a
    /// refusal in the network handshake, a listener that is gone).
    #[error("no link to the peer: {0}")]
    Link(Arc<TransportError>),
}

impl ResumeError {
    /// The resume error inside a transport error returned by a resumable
    /// session, if that is why it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_resume::{ReplayLimit, ResumeError};
    ///
    /// let e = ResumeError::ReplayOverflow { limit: ReplayLimit::Frames(8) }.into_transport();
    /// assert!(matches!(
    ///     ResumeError::of(&e),
    ///     Some(ResumeError::ReplayOverflow { limit: ReplayLimit::Frames(8) })
    /// ));
    /// assert!(ResumeError::of(&rumpsteak_aura::TransportError::closed()).is_none());
    /// ```
    pub fn of(error: &TransportError) -> Option<&ResumeError> {
        match error.kind() {
            TransportErrorKind::Other(e) => e.downcast_ref::<ResumeError>(),
            _ => None,
        }
    }

    /// This error as the transport error a session operation returns.
    pub fn into_transport(self) -> TransportError {
        TransportError::other(self)
    }
}

/// Text from a peer, with control characters escaped so that it is safe
/// to log.
pub(crate) fn escaped(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
