use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use rumpsteak_aura::TransportError;
use tokio::task::coop;

/// One end of an unbounded in-memory byte channel.
///
/// Created in connected pairs with [`SimpleChannel::pair`]: what one end
/// sends, the other receives, in order. Sending never waits, so a slow
/// receiver lets frames pile up in memory; the transport crate's bounded
/// channel (when enabled) is the alternative for untrusted workloads.
///
/// Closing one end (or dropping it) ends its sending side: the other end
/// still receives every frame sent before, then sees the channel closed.
/// Dropping an end also discards the frames it had not received, and the
/// other end's later sends fail.
///
/// Receiving takes part in tokio's cooperative scheduling, as tokio's own
/// channels do: a task that keeps finding frames waiting yields now and
/// then, so that it cannot starve the other tasks of its thread.
///
/// Each direction is one queue behind a mutex that is held only to append
/// a frame, to take a lone waiting frame, or to take all of them. When
/// more than one frame waits, the receiving end moves them out at once and
/// then hands them over one by one without locking, so a burst costs the
/// receiver one lock, and each send one uncontended lock.
pub struct SimpleChannel {
    outgoing: Arc<Lane>,
    incoming: Arc<Lane>,
    /// Frames already moved out of `incoming`, oldest first.
    taken: VecDeque<Vec<u8>>,
    closed: bool,
}

/// One direction of a pair.
#[derive(Default)]
struct Lane {
    state: Mutex<LaneState>,
}

#[derive(Default)]
struct LaneState {
    frames: VecDeque<Vec<u8>>,
    /// The receiving task, while it waits on an empty lane.
    waiting: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// A receiver's queue holding more slots than this gives them back as soon
/// as its last frame is received, so that one burst does not pin its memory
/// for the life of the channel. 4096 slots of a `Vec<u8>` are 96 KiB.
const RETAINED_SLOTS: usize = 4096;

impl Lane {
    /// Locks the lane. While it is held, no waker is woken or dropped:
    /// either runs arbitrary code, which could drop the other end of the
    /// pair and so need this very lock. Wakers taken out are woken or
    /// dropped after the lock is released.
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // Nothing under the lock can leave the queue inconsistent if it
        // panics (appending aborts on allocation failure, and a waker's
        // clone happens before anything is changed), so a poisoned lock
        // still guards a consistent queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        let mut state = self.lock();
        if state.receiver_gone {
            return Err(TransportError::closed());
        }
        state.frames.push_back(frame);
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
    }

    fn close_sender(&self) {
        let mut state = self.lock();
        state.sender_gone = true;
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    fn close_receiver(&self) {
        let mut state = self.lock();
        state.receiver_gone = true;
        let unread = std::mem::take(&mut state.frames);
        let waiting = state.waiting.take();
        drop(state);
        drop((unread, waiting));
    }
}

impl SimpleChannel {
    /// Creates a connected pair of channels.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_transport::SimpleChannel;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (mut a, mut b) = SimpleChannel::pair();
    /// a.send(b"hello".to_vec()).await?;
    /// assert_eq!(b.recv().await?, b"hello");
    /// # Ok::<(), String>(())
    /// # }).unwrap();
    /// ```
    pub fn pair() -> (Self, Self) {
        let a_to_b = Arc::new(Lane::default());
        let b_to_a = Arc::new(Lane::default());
        (
            SimpleChannel::new(a_to_b.clone(), b_to_a.clone()),
            SimpleChannel::new(b_to_a, a_to_b),
        )
    }

    fn new(outgoing: Arc<Lane>, incoming: Arc<Lane>) -> Self {
        SimpleChannel {
            outgoing,
            incoming,
            taken: VecDeque::new(),
            closed: false,
        }
    }

    /// Sends raw bytes to the other end.
    ///
    /// Fails when this end was closed or the other end dropped. The error is
    /// a `String` for compatibility with the handler guide;
    /// [`SimpleChannel::try_send_frame`] gives the typed error.
    pub async fn send(&mut self, msg: Vec<u8>) -> Result<(), String> {
        self.try_send_frame(msg).map_err(|e| e.to_string())
    }

    /// Receives the next raw bytes from the other end.
    ///
    /// Fails once the other end is closed and every frame it sent has been
    /// received. Cancel safe: dropping the future loses nothing.
    pub async fn recv(&mut self) -> Result<Vec<u8>, String> {
        poll_fn(|cx| self.poll_recv_frame(cx))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a frame without waiting (the channel is unbounded), with a typed
    /// error.
    #[inline]
    pub fn try_send_frame(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::closed());
        }
        self.outgoing.push(frame)
    }

    /// Polls for the next frame, with a typed error.
    #[inline]
    pub fn poll_recv_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Vec<u8>, TransportError>> {
        let budget = ready!(coop::poll_proceed(cx));
        let frame = match self.taken.pop_front() {
            Some(frame) => {
                if self.taken.is_empty() && self.taken.capacity() > RETAINED_SLOTS {
                    self.taken = VecDeque::new();
                }
                Ok(frame)
            }
            None => ready!(self.take_waiting(cx)),
        };
        // Every answer counts as progress, a closed channel included (as
        // with tokio's channels): a task that keeps polling a closed channel
        // still yields now and then.
        budget.made_progress();
        Poll::Ready(frame)
    }

    /// Takes the oldest waiting frame and moves the others, if any, into
    /// `taken` (empty when this is called), or registers to be woken when
    /// one arrives. A lone frame, the usual case of a ping-pong, is taken
    /// out under the lock without swapping the queues.
    #[inline]
    fn take_waiting(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let mut state = self.incoming.lock();
        if let Some(frame) = state.frames.pop_front() {
            if !state.frames.is_empty() {
                std::mem::swap(&mut state.frames, &mut self.taken);
            }
            return Poll::Ready(Ok(frame));
        }
        if state.sender_gone {
            return Poll::Ready(Err(TransportError::closed()));
        }
        let stale = match &state.waiting {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => state.waiting.replace(cx.waker().clone()),
        };
        drop(state);
        drop(stale);
        Poll::Pending
    }

    /// Ends this end's sending side. Frames already sent stay readable by the
    /// other end; frames the other end sends stay readable here.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.outgoing.close_sender();
        }
    }

    /// Whether [`SimpleChannel::close`] was called on this end.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl Drop for SimpleChannel {
    fn drop(&mut self) {
        self.close();
        self.incoming.close_receiver();
    }
}

impl fmt::Debug for SimpleChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleChannel")
            .field("closed", &self.closed)
            .field("taken", &self.taken.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_arrive_in_order_then_closed() {
        let (mut a, mut b) = SimpleChannel::pair();
        for i in 0u8..3 {
            a.send(vec![i]).await.unwrap();
        }
        a.close();
        assert!(a.is_closed());
        for i in 0u8..3 {
            assert_eq!(b.recv().await.unwrap(), vec![i]);
        }
        assert_eq!(b.recv().await.unwrap_err(), "channel closed by peer");
        // The closed end can still receive what the other end sends.
        b.send(vec![9]).await.unwrap();
        assert_eq!(a.recv().await.unwrap(), vec![9]);
        assert!(a.send(vec![1]).await.is_err());
    }

    #[tokio::test]
    async fn send_to_dropped_peer_fails() {
        let (mut a, b) = SimpleChannel::pair();
        drop(b);
        let err = a.try_send_frame(vec![1]).unwrap_err();
        assert!(err.is_closed());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_send_close_and_drop() {
        let (mut a, mut b) = SimpleChannel::pair();
        let waiter = tokio::spawn(async move {
            let first = b.recv().await;
            let second = b.recv().await;
            (first, second, b)
        });
        tokio::task::yield_now().await;
        a.send(vec![1]).await.unwrap();
        tokio::task::yield_now().await;
        a.close();
        let (first, second, mut b) = waiter.await.unwrap();
        assert_eq!(first.unwrap(), vec![1]);
        assert_eq!(second.unwrap_err(), "channel closed by peer");

        // Dropping the other end wakes a receiver too.
        let (mut c, d) = SimpleChannel::pair();
        let waiter = tokio::spawn(async move { c.recv().await });
        tokio::task::yield_now().await;
        drop(d);
        assert!(waiter.await.unwrap().is_err());
        // `a` is still open towards `b`, which keeps receiving after `a`'s close
        // only what was sent before it.
        assert!(b.recv().await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_receiver_discards_its_frames_and_fails_later_sends() {
        let (mut a, b) = SimpleChannel::pair();
        a.try_send_frame(vec![0; 1024]).unwrap();
        let lane = a.outgoing.clone();
        drop(b);
        assert!(lane.lock().frames.is_empty(), "unread frames are freed");
        assert!(a.try_send_frame(vec![1]).unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn frames_taken_alone_and_in_bursts_keep_their_order() {
        let (mut a, mut b) = SimpleChannel::pair();
        // A lone frame is taken under the lock, without a swap.
        a.try_send_frame(vec![1]).unwrap();
        assert_eq!(b.recv().await.unwrap(), vec![1]);
        assert!(b.taken.is_empty());
        // Two waiting: the first is taken, the second moves to `taken`.
        a.try_send_frame(vec![2]).unwrap();
        a.try_send_frame(vec![3]).unwrap();
        assert_eq!(b.recv().await.unwrap(), vec![2]);
        assert_eq!(b.taken.len(), 1);
        // A frame sent meanwhile comes after those already taken.
        a.try_send_frame(vec![4]).unwrap();
        assert_eq!(b.recv().await.unwrap(), vec![3]);
        assert_eq!(b.recv().await.unwrap(), vec![4]);
        a.close();
        assert!(b.recv().await.is_err());
    }

    #[tokio::test]
    async fn a_burst_does_not_pin_its_memory() {
        let (mut a, mut b) = SimpleChannel::pair();
        let burst = 4 * RETAINED_SLOTS;
        for i in 0..burst {
            a.try_send_frame(vec![i as u8]).unwrap();
        }
        assert_eq!(b.recv().await.unwrap(), vec![0]);
        assert_eq!(b.taken.len(), burst - 1, "the burst was taken at once");
        for i in 1..burst {
            assert_eq!(b.recv().await.unwrap(), vec![i as u8]);
        }
        // Given back with the last frame, on both sides of the swap.
        assert!(b.taken.capacity() <= RETAINED_SLOTS);
        assert!(a.outgoing.lock().frames.capacity() <= RETAINED_SLOTS);
        a.try_send_frame(vec![7]).unwrap();
        assert_eq!(b.recv().await.unwrap(), vec![7]);
    }

    /// A task that keeps finding frames waiting must still let the other
    /// tasks of its thread run, as it would with tokio's own channels.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_receiver_yields_to_other_tasks() {
        use std::sync::atomic::{AtomicBool, Ordering};

        let (mut a, mut b) = SimpleChannel::pair();
        const FRAMES: usize = 2_000;
        for _ in 0..FRAMES {
            a.try_send_frame(vec![0]).unwrap();
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let mut seen_after = None;
        for i in 0..FRAMES {
            b.recv().await.unwrap();
            if seen_after.is_none() && ran.load(Ordering::SeqCst) {
                seen_after = Some(i);
            }
        }
        let seen_after = seen_after.expect("the other task never ran while frames were waiting");
        assert!(seen_after < FRAMES - 1, "ran only at the end: {seen_after}");
    }

    /// A waker that counts its clones through the `Arc` and does nothing.
    struct Quiet;

    impl std::task::Wake for Quiet {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn dropping_a_waiting_end_releases_its_waker() {
        let (mut a, mut b) = SimpleChannel::pair();
        let quiet = Arc::new(Quiet);
        let waker = Waker::from(quiet.clone());
        assert!(
            b.poll_recv_frame(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(waker);
        drop(b);
        assert!(a.try_send_frame(vec![1]).is_err());
        assert_eq!(
            Arc::strong_count(&quiet),
            1,
            "the lane still holds the waker"
        );
    }

    /// A closed channel answers at once; a task polling it in a loop must
    /// still let the other tasks of its thread run.
    #[tokio::test(flavor = "current_thread")]
    async fn a_receiver_polling_a_closed_channel_yields_to_other_tasks() {
        use std::sync::atomic::{AtomicBool, Ordering};

        let (a, mut b) = SimpleChannel::pair();
        drop(a);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        for _ in 0..10_000 {
            assert!(b.recv().await.is_err());
            if ran.load(Ordering::SeqCst) {
                return;
            }
        }
        panic!("the other task never ran while the receiver polled a closed channel");
    }

    /// A waker whose last reference owns the other end of the pair: when a
    /// new waker replaces it, dropping it drops that end, which closes the
    /// lane being polled. That must happen after the lane is unlocked.
    #[test]
    fn replacing_a_waker_that_owns_the_peer_does_not_deadlock() {
        struct Owning(#[allow(dead_code)] Mutex<SimpleChannel>);
        impl std::task::Wake for Owning {
            fn wake(self: Arc<Self>) {}
        }

        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (a, mut b) = SimpleChannel::pair();
            let owning = Waker::from(Arc::new(Owning(Mutex::new(a))));
            assert!(
                b.poll_recv_frame(&mut Context::from_waker(&owning))
                    .is_pending()
            );
            drop(owning);
            let quiet = Waker::from(Arc::new(Quiet));
            // The old waker is dropped here, and with it `a`: the lane is
            // now closed, which this poll or the next one reports.
            let first = b.poll_recv_frame(&mut Context::from_waker(&quiet));
            let closed = match first {
                Poll::Ready(r) => r,
                Poll::Pending => match b.poll_recv_frame(&mut Context::from_waker(&quiet)) {
                    Poll::Ready(r) => r,
                    Poll::Pending => Ok(Vec::new()),
                },
            };
            let _ = done_tx.send(closed.is_err());
        });
        let closed = done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("deadlocked replacing the waker");
        assert!(closed, "dropping the other end closes the lane");
    }
}
