use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};

use rumpsteak_aura::TransportError;
use tokio::sync::mpsc::{Receiver, channel};
use tokio_util::sync::PollSender;

use crate::{RumpsteakSession, SessionTransport};

/// One end of a bounded in-memory byte channel: the in-process transport
/// with backpressure.
///
/// Created in connected pairs with [`BoundedChannel::pair`]. Each direction
/// holds at most `capacity` frames that the receiver has not taken yet; a
/// sender that gets that far ahead waits until the receiver catches up. A
/// slow peer therefore costs at most `capacity` frames per direction in
/// memory, where a [`SimpleChannel`](crate::SimpleChannel) lets them pile up
/// without limit.
///
/// Convert an end into a session with `RumpsteakSession::from`. Closing or
/// dropping an end ends its sending side: the other end still receives every
/// frame sent before, then sees the channel closed.
pub struct BoundedChannel {
    tx: Option<PollSender<Vec<u8>>>,
    rx: Receiver<Vec<u8>>,
    capacity: usize,
}

impl BoundedChannel {
    /// Creates a connected pair whose directions each buffer at most
    /// `capacity` frames. A capacity of 0 is taken as 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_transport::{BoundedChannel, RumpsteakSession};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (a, b) = BoundedChannel::pair(1);
    /// let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
    /// a.send_frame(vec![1]).await?;
    /// // The buffer is full: the next send waits until `b` receives.
    /// let blocked = tokio::time::timeout(Duration::from_millis(20), a.send_frame(vec![2])).await;
    /// assert!(blocked.is_err());
    /// assert_eq!(b.recv_frame().await?, vec![1]);
    /// a.send_frame(vec![2]).await?;
    /// assert_eq!(b.recv_frame().await?, vec![2]);
    /// # Ok::<(), rumpsteak_aura_transport::TransportError>(())
    /// # }).unwrap();
    /// ```
    pub fn pair(capacity: usize) -> (Self, Self) {
        let capacity = capacity.max(1);
        let (a_tx, b_rx) = channel(capacity);
        let (b_tx, a_rx) = channel(capacity);
        (
            BoundedChannel {
                tx: Some(PollSender::new(a_tx)),
                rx: a_rx,
                capacity,
            },
            BoundedChannel {
                tx: Some(PollSender::new(b_tx)),
                rx: b_rx,
                capacity,
            },
        )
    }

    /// How many frames each direction buffers at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sends one frame, waiting while the other end is `capacity` frames
    /// behind.
    ///
    /// Cancel safe: if the future is dropped, the frame was either queued
    /// whole or not at all. Fails with a `Closed` error when either end has
    /// been closed.
    pub async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.start_send(frame)
    }

    /// Receives the next frame. Cancel safe: a dropped future loses nothing.
    ///
    /// Fails with a `Closed` error once the other end is closed and every
    /// frame it sent has been received.
    pub async fn recv(&mut self) -> Result<Vec<u8>, TransportError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl SessionTransport for BoundedChannel {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match &mut self.tx {
            // A failed reservation means the receiving end is gone.
            Some(tx) => tx
                .poll_reserve(cx)
                .map(|r| r.map_err(|_| TransportError::closed())),
            None => Poll::Ready(Err(TransportError::closed())),
        }
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        match &mut self.tx {
            Some(tx) => tx.send_item(frame).map_err(|_| TransportError::closed()),
            None => Err(TransportError::closed()),
        }
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        // A queued frame is already where the receiver takes it from.
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.ok_or_else(TransportError::closed))
    }

    fn close(&mut self) {
        // Dropping the sender (and any slot it had reserved) lets the other
        // end drain what was queued and then see the channel closed.
        self.tx = None;
    }
}

impl From<BoundedChannel> for RumpsteakSession {
    fn from(channel: BoundedChannel) -> Self {
        RumpsteakSession::from_transport(channel)
    }
}

impl fmt::Debug for BoundedChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedChannel")
            .field("capacity", &self.capacity)
            .field(
                "queued_for_peer",
                &self
                    .tx
                    .as_ref()
                    .and_then(|tx| tx.get_ref())
                    .map(|s| self.capacity - s.capacity()),
            )
            .field("queued_here", &self.rx.len())
            .field("closed", &self.tx.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn capacity_zero_is_one() {
        let (a, _b) = BoundedChannel::pair(0);
        assert_eq!(a.capacity(), 1);
    }

    #[tokio::test]
    async fn cancelled_send_loses_nothing_and_sends_nothing_twice() {
        let (mut a, mut b) = BoundedChannel::pair(1);
        a.send(vec![1]).await.unwrap();
        // This send cannot complete: the buffer is full. Cancel it.
        let cancelled = tokio::time::timeout(Duration::from_millis(10), a.send(vec![2])).await;
        assert!(cancelled.is_err());
        assert_eq!(b.recv().await.unwrap(), vec![1]);
        a.send(vec![3]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), vec![3]);
        a.close();
        assert!(b.recv().await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn send_to_dropped_end_is_closed() {
        let (mut a, b) = BoundedChannel::pair(4);
        drop(b);
        assert!(a.send(vec![1]).await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn debug_shows_queue_depths() {
        let (mut a, b) = BoundedChannel::pair(4);
        a.send(vec![1]).await.unwrap();
        a.send(vec![2]).await.unwrap();
        let shown = format!("{a:?} {b:?}");
        assert!(shown.contains("queued_for_peer: Some(2)"), "{shown}");
        assert!(shown.contains("queued_here: 2"), "{shown}");
    }
}
