//! The read deadline shared by the TCP and WebSocket receiving halves.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rumpsteak_aura::{TransportError, TransportErrorKind};
use tokio::time::{Instant, Sleep};

/// Fails a receive that sees no progress for the deadline. The timer is
/// made once and reset, not reallocated, on every wait that follows
/// progress.
pub(crate) struct ReadDeadline {
    deadline: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl ReadDeadline {
    /// `None` waits for ever.
    pub(crate) fn new(deadline: Option<Duration>) -> Self {
        ReadDeadline {
            deadline,
            timer: None,
            armed: false,
        }
    }

    /// Input arrived: the next wait starts a fresh deadline.
    pub(crate) fn progress(&mut self) {
        self.armed = false;
    }

    /// Called while the receive is pending: ready with a
    /// [`ReadDeadline`](TransportErrorKind::ReadDeadline) error once the
    /// deadline has passed since the last progress.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<TransportError> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(deadline)));
        if !self.armed {
            timer.as_mut().reset(Instant::now() + deadline);
            self.armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                Poll::Ready(TransportErrorKind::ReadDeadline(deadline).into())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
