//! [`Deadline`]: a timed-out typed step, with its state.

use std::fmt::{self, Debug, Display};
use std::time::Duration;

use rumpsteak_aura::ChoreographyError;

/// Why a typed receive or branch with a deadline did not complete: time ran
/// out, and the unchanged state `S` is handed back, or the operation
/// failed.
///
/// Nothing is lost when time runs out: the handler's operations are cancel
/// safe, so a message or label that arrives later is there for the next
/// attempt, with the same state. Converting into a [`ChoreographyError`]
/// (as `?` does) drops the state, which abandons the protocol (see
/// [`Core`](crate::Core)), and gives [`ChoreographyError::Timeout`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rumpsteak_aura_typed::Deadline;
///
/// let timed_out: Deadline<&str> = Deadline::Elapsed { state: "s", after: Duration::from_millis(5) };
/// assert_eq!(timed_out.to_string(), "operation timed out after 5ms");
/// assert_eq!(timed_out.into_state().ok(), Some("s"));
/// ```
pub enum Deadline<S> {
    /// The deadline passed first. `state` is the state the step was
    /// attempted from, ready for another attempt.
    Elapsed {
        /// The unchanged state.
        state: S,
        /// The deadline that passed.
        after: Duration,
    },
    /// The operation failed before the deadline; the state is gone (it was
    /// dropped, abandoning the protocol).
    Failed(ChoreographyError),
}

impl<S> Deadline<S> {
    /// The state back if time ran out, or the error if the step failed.
    pub fn into_state(self) -> Result<S, ChoreographyError> {
        match self {
            Deadline::Elapsed { state, .. } => Ok(state),
            Deadline::Failed(e) => Err(e),
        }
    }

    /// Whether time ran out (rather than the operation failing).
    pub fn is_elapsed(&self) -> bool {
        matches!(self, Deadline::Elapsed { .. })
    }
}

impl<S> From<Deadline<S>> for ChoreographyError {
    fn from(d: Deadline<S>) -> Self {
        match d {
            Deadline::Elapsed { after, .. } => ChoreographyError::Timeout(after),
            Deadline::Failed(e) => e,
        }
    }
}

impl<S> Debug for Deadline<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deadline::Elapsed { after, .. } => f
                .debug_struct("Elapsed")
                .field("after", after)
                .finish_non_exhaustive(),
            Deadline::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl<S> Display for Deadline<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deadline::Elapsed { after, .. } => write!(f, "operation timed out after {after:?}"),
            Deadline::Failed(e) => Display::fmt(e, f),
        }
    }
}

impl<S> std::error::Error for Deadline<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Deadline::Elapsed { .. } => None,
            Deadline::Failed(e) => Some(e),
        }
    }
}
