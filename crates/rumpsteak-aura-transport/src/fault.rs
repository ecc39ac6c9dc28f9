//! Fault injection for tests (feature `test-utils`).
//!
//! [`inject`] wraps a session so that the frames moving through it suffer
//! one [`Fault`] per direction: the link is cut, frames are delayed,
//! corrupted, truncated, duplicated, reordered, or stop moving. The result
//! is an ordinary [`RumpsteakSession`], so it registers on an endpoint like
//! any other and the handler above it cannot tell it apart from a real
//! transport misbehaving.
//!
//! Each direction is seen from the wrapped side: [`Faults::inbound`] acts on
//! the frames this side receives, [`Faults::outbound`] on the frames it
//! sends. Frames are numbered from 0 in each direction, in the order they
//! enter the wrapper.
//!
//! | fault | what the frames suffer |
//! |-------|------------------------|
//! | [`Fault::Disconnect`] | after `after` frames, the link is cut both ways: the next operation on this side fails with an I/O error of kind `ConnectionReset`, later ones with `Closed`; the peer receives what was sent before the cut, then `Closed` |
//! | [`Fault::Delay`] | every frame waits `delay` before it moves on (needs a tokio runtime with timers) |
//! | [`Fault::Corrupt`] | one byte of one frame is XORed with a mask |
//! | [`Fault::Truncate`] | one frame is cut short |
//! | [`Fault::Duplicate`] | one frame moves on twice |
//! | [`Fault::Reorder`] | one frame is held back and moves on after the next one |
//! | [`Fault::Stall`] | after `after` frames, nothing moves in this direction until [`FaultHandle::release`] |
//!
//! An outbound stall behaves as a network that went silent: sends still
//! succeed, their frames wait in the wrapper, and after the release they
//! move on with this side's next operation. Closing the session hands every
//! frame it accepted to the wrapped session, delayed, stalled or held back
//! for a reorder alike, so a close never loses an accepted frame.
//!
//! # Examples
//!
//! ```
//! use rumpsteak_aura_transport::fault::{self, Fault, Faults};
//! use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (a, b) = SimpleChannel::pair();
//! let (mut a, handle) = fault::inject(a, Faults::new().inbound(Fault::Duplicate { frame: 0 }));
//! let mut b = RumpsteakSession::from(b);
//! b.send_frame(vec![7]).await?;
//! assert_eq!(a.recv_frame().await?, vec![7]);
//! assert_eq!(a.recv_frame().await?, vec![7]);
//! assert!(handle.tripped());
//! # Ok::<(), rumpsteak_aura_transport::TransportError>(())
//! # }).unwrap();
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use rumpsteak_aura::TransportError;
use tokio::time::Sleep;

use crate::{RumpsteakSession, SessionTransport};

/// One fault, acting on one direction of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Once `after` frames have moved through this direction, the link is
    /// cut in both directions: the wrapped session is closed and dropped.
    Disconnect {
        /// How many frames move through before the cut.
        after: usize,
    },
    /// Every frame waits this long before it moves on.
    Delay(Duration),
    /// Frame number `frame` has its byte at `offset` (modulo its length)
    /// XORed with `mask`. An empty frame is left alone.
    Corrupt {
        /// The frame's number in this direction, from 0.
        frame: usize,
        /// Which byte, modulo the frame's length.
        offset: usize,
        /// The bits to flip.
        mask: u8,
    },
    /// Frame number `frame` is cut to its first `len` bytes.
    Truncate {
        /// The frame's number in this direction, from 0.
        frame: usize,
        /// How many bytes are kept.
        len: usize,
    },
    /// Frame number `frame` moves on twice.
    Duplicate {
        /// The frame's number in this direction, from 0.
        frame: usize,
    },
    /// Frame number `frame` is held back and moves on right after frame
    /// `frame + 1` (or before the end of the stream, if there is none).
    Reorder {
        /// The frame's number in this direction, from 0.
        frame: usize,
    },
    /// Once `after` frames have moved through this direction, nothing more
    /// moves until [`FaultHandle::release`] is called. Frames that wait
    /// stay in the wrapped session (inbound) or in the wrapper (outbound):
    /// none is lost.
    Stall {
        /// How many frames move through before the stall.
        after: usize,
    },
}

/// The faults of a session, at most one per direction.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rumpsteak_aura_transport::fault::{Fault, Faults};
///
/// let faults = Faults::new()
///     .inbound(Fault::Truncate { frame: 3, len: 2 })
///     .outbound(Fault::Delay(Duration::from_millis(5)));
/// assert_eq!(faults.inbound_fault(), Some(Fault::Truncate { frame: 3, len: 2 }));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    inbound: Option<Fault>,
    outbound: Option<Fault>,
}

impl Faults {
    /// No faults: the wrapper passes every frame through unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let faults = rumpsteak_aura_transport::fault::Faults::new();
    /// assert_eq!(faults.inbound_fault(), None);
    /// assert_eq!(faults.outbound_fault(), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fault of the frames this side receives.
    pub fn inbound(mut self, fault: Fault) -> Self {
        self.inbound = Some(fault);
        self
    }

    /// Sets the fault of the frames this side sends.
    pub fn outbound(mut self, fault: Fault) -> Self {
        self.outbound = Some(fault);
        self
    }

    /// The fault of the frames this side receives.
    pub fn inbound_fault(&self) -> Option<Fault> {
        self.inbound
    }

    /// The fault of the frames this side sends.
    pub fn outbound_fault(&self) -> Option<Fault> {
        self.outbound
    }
}

/// Watches and steers the faults of one wrapped session.
///
/// Cloning it gives another handle on the same session.
#[derive(Clone, Debug)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    tripped: AtomicBool,
    released: AtomicBool,
    /// The task waiting on a stall.
    waiting: Mutex<Option<Waker>>,
}

impl Shared {
    fn trip(&self) {
        self.tripped.store(true, Ordering::SeqCst);
    }

    fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Registers `waker` for the release; returns whether the stall was
    /// released meanwhile.
    fn wait_for_release(&self, waker: &Waker) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock that `release` takes after setting the
        // flag, so a release cannot slip between the check and the
        // registration.
        if self.released() {
            return true;
        }
        *waiting = Some(waker.clone());
        false
    }
}

impl FaultHandle {
    /// Whether a fault has acted yet: a frame was changed, duplicated, held
    /// back or delayed, the link was cut, or a stall began.
    pub fn tripped(&self) -> bool {
        self.shared.tripped.load(Ordering::SeqCst)
    }

    /// Ends a [`Fault::Stall`]: frames move again. A stall that has not
    /// begun yet will not begin.
    pub fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
        let waiting = self
            .shared
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

/// Wraps `session` so that its frames suffer `faults`; returns the wrapped
/// session and a handle on its faults.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_transport::fault::{self, Fault, Faults};
/// use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel, TransportErrorKind};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (a, b) = SimpleChannel::pair();
/// let (mut a, _) = fault::inject(a, Faults::new().outbound(Fault::Disconnect { after: 1 }));
/// let mut b = RumpsteakSession::from(b);
/// a.send_frame(vec![1]).await?;
/// let cut = a.send_frame(vec![2]).await.unwrap_err();
/// assert!(matches!(cut.kind(), TransportErrorKind::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset));
/// assert_eq!(b.recv_frame().await?, vec![1]);
/// assert!(b.recv_frame().await.unwrap_err().is_closed());
/// # Ok::<(), rumpsteak_aura_transport::TransportError>(())
/// # }).unwrap();
/// ```
pub fn inject(
    session: impl Into<RumpsteakSession>,
    faults: Faults,
) -> (RumpsteakSession, FaultHandle) {
    let shared = Arc::new(Shared::default());
    let session = session.into();
    let identity = session.peer_identity().map(Into::into);
    let transport = FaultyTransport {
        identity,
        inner: Some(session),
        inbound: Lane::new(faults.inbound),
        outbound: Lane::new(faults.outbound),
        sending: None,
        link: Link::Up,
        inbound_end: None,
        shared: Arc::clone(&shared),
    };
    (
        RumpsteakSession::from_transport(transport),
        FaultHandle { shared },
    )
}

/// Whether the link was cut, and whether this side was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Up,
    Cut { after: usize },
    Reported,
}

/// What a direction has ready.
enum Gate {
    Frame(Vec<u8>),
    Empty,
    Stalled,
}

/// One direction's frames and its fault.
struct Lane {
    fault: Option<Fault>,
    /// Frames that entered the lane.
    seen: usize,
    /// Frames that left it.
    passed: usize,
    /// Frames processed and waiting to leave, oldest first.
    out: VecDeque<Vec<u8>>,
    /// A frame held back by a reorder.
    held: Option<Vec<u8>>,
    /// The delay of the frame at the head of `out`.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Lane {
    fn new(fault: Option<Fault>) -> Self {
        Lane {
            fault,
            seen: 0,
            passed: 0,
            out: VecDeque::new(),
            held: None,
            timer: None,
        }
    }

    /// Takes in one frame and applies the fault to it.
    fn push(&mut self, mut frame: Vec<u8>, shared: &Shared) {
        let n = self.seen;
        self.seen += 1;
        match self.fault {
            Some(Fault::Corrupt {
                frame: k,
                offset,
                mask,
            }) if n == k && !frame.is_empty() => {
                let at = offset % frame.len();
                frame[at] ^= mask;
                shared.trip();
            }
            Some(Fault::Truncate { frame: k, len }) if n == k => {
                frame.truncate(len);
                shared.trip();
            }
            Some(Fault::Duplicate { frame: k }) if n == k => {
                self.out.push_back(frame.clone());
                shared.trip();
            }
            Some(Fault::Reorder { frame: k }) if n == k => {
                self.held = Some(frame);
                shared.trip();
                return;
            }
            _ => {}
        }
        self.out.push_back(frame);
        if let Some(held) = self.held.take() {
            self.out.push_back(held);
        }
    }

    /// Lets a frame held back by a reorder go, as the stream ends.
    fn release_held(&mut self) -> bool {
        match self.held.take() {
            Some(held) => {
                self.out.push_back(held);
                true
            }
            None => false,
        }
    }

    /// The next frame allowed to leave, once its delay is over.
    fn poll_gate(&mut self, cx: &mut Context<'_>, shared: &Shared) -> Poll<Gate> {
        if let Some(Fault::Stall { after }) = self.fault
            && self.passed >= after
            && !shared.released()
        {
            shared.trip();
            if !shared.wait_for_release(cx.waker()) {
                return Poll::Ready(Gate::Stalled);
            }
        }
        if self.out.is_empty() {
            return Poll::Ready(Gate::Empty);
        }
        if let Some(Fault::Delay(delay)) = self.fault {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            ready!(timer.as_mut().poll(cx));
            self.timer = None;
            shared.trip();
        }
        Poll::Ready(match self.out.pop_front() {
            Some(frame) => {
                self.passed += 1;
                Gate::Frame(frame)
            }
            None => Gate::Empty,
        })
    }

    /// Whether a disconnect is due now that a frame left.
    fn cut_due(&self) -> Option<usize> {
        match self.fault {
            Some(Fault::Disconnect { after }) if self.passed >= after => Some(after),
            _ => None,
        }
    }
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("fault", &self.fault)
            .field("seen", &self.seen)
            .field("passed", &self.passed)
            .field("waiting", &self.out.len())
            .field("held", &self.held.is_some())
            .finish()
    }
}

/// The wrapper: a session inside a session.
#[derive(Debug)]
struct FaultyTransport {
    /// `None` once the link is cut.
    inner: Option<RumpsteakSession>,
    inbound: Lane,
    outbound: Lane,
    /// The frame being handed to `inner`.
    sending: Option<Vec<u8>>,
    link: Link,
    /// The error that ended the inbound stream, kept while a frame held
    /// back by a reorder is delivered first.
    inbound_end: Option<TransportError>,
    shared: Arc<Shared>,
    /// The wrapped session's peer identity, kept after a cut.
    identity: Option<Box<str>>,
}

impl FaultyTransport {
    /// The error of an operation on a cut link: the cut once, then closed.
    fn link_error(&mut self) -> Option<TransportError> {
        match self.link {
            Link::Up => None,
            Link::Cut { after } => {
                self.link = Link::Reported;
                Some(TransportError::io(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!("fault injected: link cut after {after} frames"),
                )))
            }
            Link::Reported => Some(TransportError::closed()),
        }
    }

    fn cut(&mut self, after: usize) {
        if let Some(mut inner) = self.inner.take() {
            inner.close();
        }
        self.outbound.out.clear();
        self.outbound.held = None;
        self.sending = None;
        self.link = Link::Cut { after };
        self.shared.trip();
    }

    /// Moves the outbound lane's frames into the wrapped session, as far as
    /// it takes them. A stalled lane counts as drained: its frames wait in
    /// the wrapper, as on a network that went silent.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        loop {
            if self.sending.is_none()
                && let Some(after) = self.outbound.cut_due()
            {
                self.cut(after);
            }
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if self.sending.is_some() {
                ready!(inner.poll_send_frame(cx, &mut self.sending))?;
                continue;
            }
            match ready!(self.outbound.poll_gate(cx, &self.shared)) {
                Gate::Frame(frame) => self.sending = Some(frame),
                Gate::Empty => return inner.poll_send_frame(cx, &mut None),
                Gate::Stalled => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl SessionTransport for FaultyTransport {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if let Some(e) = self.link_error() {
            return Poll::Ready(Err(e));
        }
        ready!(self.poll_drain(cx))?;
        // A cut that happened while draining fails this send.
        match self.link_error() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if let Some(e) = self.link_error() {
            return Err(e);
        }
        self.outbound.push(frame, &self.shared);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match self.link {
            Link::Up => {}
            // A frame that made the cut due was still handed over: the send
            // that carried it succeeded, the next operation reports the cut.
            Link::Cut { .. } | Link::Reported => return Poll::Ready(Ok(())),
        }
        self.poll_drain(cx)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        loop {
            if let Some(e) = self.link_error() {
                return Poll::Ready(Err(e));
            }
            match ready!(self.inbound.poll_gate(cx, &self.shared)) {
                Gate::Frame(frame) => {
                    if let Some(after) = self.inbound.cut_due() {
                        self.cut(after);
                    }
                    return Poll::Ready(Ok(frame));
                }
                Gate::Stalled => return Poll::Pending,
                Gate::Empty => {}
            }
            if let Some(e) = self.inbound_end.take() {
                return Poll::Ready(Err(e));
            }
            if let Some(after) = self.inbound.cut_due() {
                // `Disconnect { after: 0 }`: cut before the first frame.
                self.cut(after);
                continue;
            }
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(Err(TransportError::closed()));
            };
            match ready!(inner.poll_recv_frame(cx)) {
                Ok(frame) => self.inbound.push(frame, &self.shared),
                Err(e) => {
                    if !self.inbound.release_held() {
                        return Poll::Ready(Err(e));
                    }
                    self.inbound_end = Some(e);
                }
            }
        }
    }

    fn close(&mut self) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        // Every accepted frame is handed over, whatever holds it.
        self.outbound.release_held();
        let mut cx = Context::from_waker(Waker::noop());
        if let Some(frame) = self.sending.take() {
            let mut slot = Some(frame);
            let _ = inner.poll_send_frame(&mut cx, &mut slot);
        }
        while let Some(frame) = self.outbound.out.pop_front() {
            let mut slot = Some(frame);
            if inner.poll_send_frame(&mut cx, &mut slot).is_pending() {
                break;
            }
        }
        inner.close();
    }

    fn peer_identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimpleChannel;
    use rumpsteak_aura::TransportErrorKind;

    fn pair(faults: Faults) -> (RumpsteakSession, RumpsteakSession, FaultHandle) {
        let (a, b) = SimpleChannel::pair();
        let (a, handle) = inject(a, faults);
        (a, RumpsteakSession::from(b), handle)
    }

    fn is_reset(e: &TransportError) -> bool {
        matches!(e.kind(), TransportErrorKind::Io(io) if io.kind() == io::ErrorKind::ConnectionReset)
    }

    #[tokio::test]
    async fn no_faults_pass_everything_through() {
        let (mut a, mut b, handle) = pair(Faults::new());
        for i in 0..5u8 {
            a.send_frame(vec![i]).await.unwrap();
            b.send_frame(vec![i + 10]).await.unwrap();
        }
        for i in 0..5u8 {
            assert_eq!(b.recv_frame().await.unwrap(), vec![i]);
            assert_eq!(a.recv_frame().await.unwrap(), vec![i + 10]);
        }
        assert!(!handle.tripped());
        drop(a);
        assert!(b.recv_frame().await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn an_inbound_cut_is_reported_once_then_closed_and_reaches_the_peer() {
        let (mut a, mut b, _) = pair(Faults::new().inbound(Fault::Disconnect { after: 2 }));
        for i in 0..4u8 {
            b.send_frame(vec![i]).await.unwrap();
        }
        assert_eq!(a.recv_frame().await.unwrap(), vec![0]);
        assert_eq!(a.recv_frame().await.unwrap(), vec![1]);
        assert!(is_reset(&a.recv_frame().await.unwrap_err()));
        assert!(a.recv_frame().await.unwrap_err().is_closed());
        assert!(a.send_frame(vec![9]).await.unwrap_err().is_closed());
        // The peer's end of the link is gone too.
        assert!(b.send_frame(vec![5]).await.unwrap_err().is_closed());
        assert!(b.recv_frame().await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn a_reorder_at_the_end_of_the_stream_still_delivers_the_frame() {
        let (mut a, mut b, _) = pair(Faults::new().inbound(Fault::Reorder { frame: 1 }));
        b.send_frame(vec![0]).await.unwrap();
        b.send_frame(vec![1]).await.unwrap();
        b.close();
        assert_eq!(a.recv_frame().await.unwrap(), vec![0]);
        assert_eq!(a.recv_frame().await.unwrap(), vec![1]);
        assert!(a.recv_frame().await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn an_outbound_stall_holds_frames_until_released() {
        let (mut a, mut b, handle) = pair(Faults::new().outbound(Fault::Stall { after: 1 }));
        a.send_frame(vec![0]).await.unwrap();
        a.send_frame(vec![1]).await.unwrap();
        assert_eq!(b.recv_frame().await.unwrap(), vec![0]);
        let waited = tokio::time::timeout(Duration::from_millis(20), b.recv_frame()).await;
        assert!(waited.is_err(), "the stalled frame arrived");
        assert!(handle.tripped());
        handle.release();
        a.send_frame(vec![2]).await.unwrap();
        assert_eq!(b.recv_frame().await.unwrap(), vec![1]);
        assert_eq!(b.recv_frame().await.unwrap(), vec![2]);
    }

    #[tokio::test]
    async fn closing_hands_over_frames_still_held() {
        let (mut a, mut b, _) = pair(Faults::new().outbound(Fault::Stall { after: 0 }));
        a.send_frame(vec![0]).await.unwrap();
        a.send_frame(vec![1]).await.unwrap();
        drop(a);
        assert_eq!(b.recv_frame().await.unwrap(), vec![0]);
        assert_eq!(b.recv_frame().await.unwrap(), vec![1]);
        assert!(b.recv_frame().await.unwrap_err().is_closed());
    }

    #[test]
    fn the_wrapped_session_keeps_its_peer_identity() {
        let (a, _b) = SimpleChannel::pair();
        let a = RumpsteakSession::from(a).with_peer_identity("role:Bob");
        let (a, _) = inject(a, Faults::new().inbound(Fault::Disconnect { after: 0 }));
        assert_eq!(a.peer_identity(), Some("role:Bob"));
        let (c, _d) = SimpleChannel::pair();
        let (c, _) = inject(c, Faults::new());
        assert_eq!(c.peer_identity(), None);
    }

    #[tokio::test]
    async fn corrupting_an_empty_frame_changes_nothing() {
        let (mut a, mut b, handle) = pair(Faults::new().inbound(Fault::Corrupt {
            frame: 0,
            offset: 3,
            mask: 0xff,
        }));
        b.send_frame(Vec::new()).await.unwrap();
        b.send_frame(vec![1, 2]).await.unwrap();
        assert_eq!(a.recv_frame().await.unwrap(), Vec::<u8>::new());
        assert_eq!(a.recv_frame().await.unwrap(), vec![1, 2]);
        assert!(!handle.tripped());
    }
}
