use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::{Sink, Stream};
use rumpsteak_aura::TransportError;

use crate::SessionTransport;

/// An item a custom transport's stream may yield: a frame, or a frame or an
/// error.
///
/// Implemented for `Vec<u8>` and for `Result<Vec<u8>, E>` where `E` converts
/// into a boxed error.
pub trait IntoFrame {
    /// Converts the item into a frame or a transport error.
    fn into_frame(self) -> Result<Vec<u8>, TransportError>;
}

impl IntoFrame for Vec<u8> {
    fn into_frame(self) -> Result<Vec<u8>, TransportError> {
        Ok(self)
    }
}

impl<E> IntoFrame for Result<Vec<u8>, E>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    fn into_frame(self) -> Result<Vec<u8>, TransportError> {
        self.map_err(TransportError::other)
    }
}

/// A session over a user's sink and stream.
///
/// Both halves are pinned on the heap once, at construction, so neither needs
/// to be `Unpin`.
pub(crate) struct SinkStream<Si, St> {
    sink: Option<Pin<Box<Si>>>,
    stream: Pin<Box<St>>,
    /// Set once the stream has ended: a stream must not be polled again
    /// after it returned `None`, so later receives report `Closed` at once.
    stream_done: bool,
}

impl<Si, St> SinkStream<Si, St> {
    pub(crate) fn new(sink: Si, stream: St) -> Self {
        SinkStream {
            sink: Some(Box::pin(sink)),
            stream: Box::pin(stream),
            stream_done: false,
        }
    }
}

/// A sink's error: an `io::Error` stays an I/O error (kind `Io`, as over
/// TCP), anything else is kind `Other`.
fn sink_error(e: impl Into<Box<dyn StdError + Send + Sync>>) -> TransportError {
    match e.into().downcast::<std::io::Error>() {
        Ok(io) => TransportError::io(*io),
        Err(other) => TransportError::other(other),
    }
}

impl<Si, St> SessionTransport for SinkStream<Si, St>
where
    Si: Sink<Vec<u8>> + Send + 'static,
    Si::Error: Into<Box<dyn StdError + Send + Sync>>,
    St: Stream + Send + 'static,
    St::Item: IntoFrame,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match &mut self.sink {
            Some(sink) => sink.as_mut().poll_ready(cx).map_err(sink_error),
            None => Poll::Ready(Err(TransportError::closed())),
        }
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        match &mut self.sink {
            Some(sink) => sink.as_mut().start_send(frame).map_err(sink_error),
            None => Err(TransportError::closed()),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match &mut self.sink {
            Some(sink) => sink.as_mut().poll_flush(cx).map_err(sink_error),
            // Nothing can be pending on a closed sending side.
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        if self.stream_done {
            return Poll::Ready(Err(TransportError::closed()));
        }
        match self.stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(item.into_frame()),
            Poll::Ready(None) => {
                self.stream_done = true;
                Poll::Ready(Err(TransportError::closed()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn close(&mut self) {
        if let Some(mut sink) = self.sink.take() {
            // One non-blocking attempt to close properly (a channel sink closes
            // at once; a network sink starts its close); dropping the sink then
            // releases it either way.
            let mut cx = Context::from_waker(Waker::noop());
            let _ = sink.as_mut().poll_close(&mut cx);
        }
    }
}

impl<Si, St> fmt::Debug for SinkStream<Si, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkStream")
            .field("sink", &std::any::type_name::<Si>())
            .field("stream", &std::any::type_name::<St>())
            .field("closed", &self.sink.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::RumpsteakSession;
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};

    #[tokio::test]
    async fn stream_errors_and_end_are_typed() {
        let (tx, rx) = mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
        let mut session = RumpsteakSession::from_sink_stream(futures::sink::drain(), rx);
        tx.unbounded_send(Ok(vec![1])).unwrap();
        tx.unbounded_send(Err(std::io::Error::other("boom")))
            .unwrap();
        drop(tx);
        assert_eq!(session.recv_frame().await.unwrap(), vec![1]);
        let err = session.recv_frame().await.unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert!(session.recv_frame().await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn an_ended_stream_is_never_polled_again() {
        // `unfold` panics if polled after it ended; receives after the end
        // must report Closed without touching it.
        let stream =
            futures::stream::unfold(0u8, |n| async move { (n == 0).then(|| (vec![7], 1)) });
        let mut session = RumpsteakSession::from_sink_stream(futures::sink::drain(), stream);
        assert_eq!(session.recv_frame().await.unwrap(), vec![7]);
        for _ in 0..3 {
            assert!(session.recv_frame().await.unwrap_err().is_closed());
        }
    }

    #[tokio::test]
    async fn close_ends_the_peer_stream_after_pending_frames() {
        let (to_b, mut from_a) = mpsc::channel::<Vec<u8>>(4);
        let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(4);
        let mut a = RumpsteakSession::from_sink_stream(to_b, from_b);
        a.send_frame(vec![5]).await.unwrap();
        a.close();
        assert_eq!(from_a.next().await, Some(vec![5]));
        assert_eq!(from_a.next().await, None);
        assert!(a.send_frame(vec![6]).await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn sink_errors_are_typed() {
        let (mut to_b, from_a) = mpsc::channel::<Vec<u8>>(1);
        to_b.close().await.unwrap();
        drop(from_a);
        let (_tx, rx) = mpsc::channel::<Vec<u8>>(1);
        let mut a = RumpsteakSession::from_sink_stream(to_b, rx);
        let err = a.send_frame(vec![1]).await.unwrap_err();
        assert!(matches!(
            err.kind(),
            rumpsteak_aura::TransportErrorKind::Other(_)
        ));
    }
}
