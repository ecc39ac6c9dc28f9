use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use rumpsteak_aura::TransportError;

/// One end of an unbounded in-memory byte channel.
///
/// Created in connected pairs with [`SimpleChannel::pair`]: what one end
/// sends, the other receives, in order. Sending never waits, so a slow
/// receiver lets frames pile up in memory; the transport crate's bounded
/// channel (when enabled) is the alternative for untrusted workloads.
///
/// Closing one end (or dropping it) ends its sending side: the other end
/// still receives every frame sent before, then sees the channel closed.
#[derive(Debug)]
pub struct SimpleChannel {
    tx: Option<UnboundedSender<Vec<u8>>>,
    rx: UnboundedReceiver<Vec<u8>>,
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
        let (a_tx, b_rx) = unbounded_channel();
        let (b_tx, a_rx) = unbounded_channel();
        (
            SimpleChannel {
                tx: Some(a_tx),
                rx: a_rx,
            },
            SimpleChannel {
                tx: Some(b_tx),
                rx: b_rx,
            },
        )
    }

    /// Sends raw bytes to the other end.
    ///
    /// Fails when either end has been closed. The error is a `String` for
    /// compatibility with the handler guide; [`SimpleChannel::try_send_frame`]
    /// gives the typed error.
    pub async fn send(&mut self, msg: Vec<u8>) -> Result<(), String> {
        self.try_send_frame(msg).map_err(|e| e.to_string())
    }

    /// Receives the next raw bytes from the other end.
    ///
    /// Fails once the other end is closed and every frame it sent has been
    /// received. Cancel safe: dropping the future loses nothing.
    pub async fn recv(&mut self) -> Result<Vec<u8>, String> {
        self.rx
            .recv()
            .await
            .ok_or_else(|| TransportError::closed().to_string())
    }

    /// Sends a frame without waiting (the channel is unbounded), with a typed
    /// error.
    pub fn try_send_frame(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        match &self.tx {
            Some(tx) => tx.send(frame).map_err(|_| TransportError::closed()),
            None => Err(TransportError::closed()),
        }
    }

    /// Polls for the next frame, with a typed error.
    pub fn poll_recv_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Vec<u8>, TransportError>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.ok_or_else(TransportError::closed))
    }

    /// Ends this end's sending side. Frames already sent stay readable by the
    /// other end; frames the other end sends stay readable here.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Whether [`SimpleChannel::close`] was called on this end.
    pub fn is_closed(&self) -> bool {
        self.tx.is_none()
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
}
