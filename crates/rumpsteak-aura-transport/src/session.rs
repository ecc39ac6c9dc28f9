use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll, ready};

use rumpsteak_aura::TransportError;

use crate::SimpleChannel;
use crate::sink_stream::{IntoFrame, SinkStream};

/// The default largest frame a session sends or accepts: 64 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// The object-safe interface every transport implements.
///
/// It is poll-based, like `Sink` and `Stream`: the transport keeps all
/// in-flight state (a partly read frame, a frame waiting to be flushed) in
/// itself, never in a future. That is what makes every session operation
/// cancel safe: a dropped `recv` loses nothing, a dropped `send` either
/// handed over its whole frame or none of it.
///
/// The methods follow `futures::Sink` for the sending side and
/// `futures::Stream` for the receiving side.
pub trait SessionTransport: Send + fmt::Debug + 'static {
    /// Waits until one more frame can be accepted by
    /// [`start_send`](SessionTransport::start_send).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>>;

    /// Hands over one whole frame. Only called after `poll_ready` returned
    /// `Ready(Ok(()))`.
    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError>;

    /// Pushes every accepted frame towards the peer.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>>;

    /// Receives the next whole frame. Returns an error of kind
    /// [`Closed`](rumpsteak_aura::TransportErrorKind::Closed) once the peer
    /// has closed and every frame it sent was received.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>>;

    /// Begins an orderly close of the sending side: frames already accepted
    /// still reach the peer where the transport can manage it, then the peer
    /// sees the session closed. Must not block.
    fn close(&mut self);

    /// Who the peer was proven or seen to be, if the transport knows: a
    /// role proven by a certificate, or the network address a plain-text
    /// peer connected from. Handlers use it to share limits among the
    /// sessions of one peer (the labels it may teach the process). `None`
    /// by default.
    fn peer_identity(&self) -> Option<&str> {
        None
    }
}

/// A transport with a peer identity attached
/// ([`RumpsteakSession::with_peer_identity`]).
#[derive(Debug)]
struct Identified {
    inner: Box<dyn SessionTransport>,
    identity: Box<str>,
}

impl SessionTransport for Identified {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.inner.start_send(frame)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_flush(cx)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        self.inner.poll_recv(cx)
    }

    fn close(&mut self) {
        self.inner.close();
    }

    fn peer_identity(&self) -> Option<&str> {
        Some(&self.identity)
    }
}

/// An in-memory channel behind the trait, for the rare session that wraps
/// one (an in-memory session given an identity).
#[derive(Debug)]
struct InMemory(SimpleChannel);

impl SessionTransport for InMemory {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        // Never full: a send is one push.
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.0.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        self.0.poll_recv_frame(cx)
    }

    fn close(&mut self) {
        self.0.close();
    }
}

/// What a session holds for the moment its transport is moved out.
#[derive(Debug)]
struct Detached;

impl SessionTransport for Detached {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Err(TransportError::closed()))
    }

    fn start_send(&mut self, _: Vec<u8>) -> Result<(), TransportError> {
        Err(TransportError::closed())
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        Poll::Ready(Err(TransportError::closed()))
    }

    fn close(&mut self) {}
}

/// One role's session with one peer: frames in, frames out.
///
/// Build it from a [`SimpleChannel`] (also via `From`), from any sink and
/// stream of byte frames, or from a [`SessionTransport`]. Every session has a
/// frame size limit ([`DEFAULT_MAX_FRAME_LEN`] unless set with
/// [`with_max_frame_len`](RumpsteakSession::with_max_frame_len)), enforced on
/// both sending and receiving.
///
/// Dropping a session closes it as [`close`](RumpsteakSession::close) does.
pub struct RumpsteakSession {
    io: Io,
    max_frame_len: usize,
}

/// The in-memory channel is matched directly so that the common case pays
/// for no dynamic dispatch; every other transport sits behind the trait.
enum Io {
    Simple(SimpleChannel),
    Dynamic(Box<dyn SessionTransport>),
}

impl RumpsteakSession {
    /// Wraps an in-memory channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (a, b) = SimpleChannel::pair();
    /// let (mut a, mut b) = (RumpsteakSession::from_simple_channel(a), RumpsteakSession::from(b));
    /// a.send_frame(vec![1, 2, 3]).await?;
    /// assert_eq!(b.recv_frame().await?, vec![1, 2, 3]);
    /// # Ok::<(), rumpsteak_aura_transport::TransportError>(())
    /// # }).unwrap();
    /// ```
    pub fn from_simple_channel(channel: SimpleChannel) -> Self {
        Self::with_io(Io::Simple(channel))
    }

    /// Wraps any sink and stream of byte frames: a custom transport, a
    /// WebSocket, a recording or middleware layer.
    ///
    /// The stream may yield `Vec<u8>` or `Result<Vec<u8>, E>`; its end means
    /// the peer closed the session. Sink and stream errors become
    /// [`TransportError`]s of kind `Other`, keeping the original error as the
    /// source.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt, channel::mpsc};
    /// use rumpsteak_aura_transport::RumpsteakSession;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (to_b, from_a) = mpsc::channel::<Vec<u8>>(16);
    /// let (to_a, from_b) = mpsc::channel::<Vec<u8>>(16);
    /// let mut a = RumpsteakSession::from_sink_stream(to_b, from_b);
    /// let mut b = RumpsteakSession::from_sink_stream(to_a, from_a);
    /// a.send_frame(b"ping".to_vec()).await?;
    /// assert_eq!(b.recv_frame().await?, b"ping");
    /// # Ok::<(), rumpsteak_aura_transport::TransportError>(())
    /// # }).unwrap();
    /// ```
    pub fn from_sink_stream<Si, St>(sender: Si, receiver: St) -> Self
    where
        Si: futures::Sink<Vec<u8>> + Send + 'static,
        Si::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        St: futures::Stream + Send + 'static,
        St::Item: IntoFrame,
    {
        Self::from_transport(SinkStream::new(sender, receiver))
    }

    /// Wraps a transport that implements [`SessionTransport`] directly.
    pub fn from_transport(transport: impl SessionTransport) -> Self {
        Self::with_io(Io::Dynamic(Box::new(transport)))
    }

    fn with_io(io: Io) -> Self {
        RumpsteakSession {
            io,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Sets the largest frame, in bytes, this session sends or accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
    ///
    /// let (a, _b) = SimpleChannel::pair();
    /// let session = RumpsteakSession::from(a).with_max_frame_len(1024);
    /// assert_eq!(session.max_frame_len(), 1024);
    /// ```
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    /// The largest frame, in bytes, this session sends or accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Sends one frame.
    ///
    /// A frame over the size limit is refused before anything is sent.
    /// Cancel safe in the sense that matters for framing: if the future is
    /// dropped, the peer receives either the whole frame or nothing of it.
    pub async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        let mut slot = Some(frame);
        poll_fn(|cx| self.poll_send_frame(cx, &mut slot)).await
    }

    /// Polls the sending of the frame in `frame`: the frame is taken out of
    /// the slot once the transport has accepted it whole, then the transport
    /// is flushed. Poll again with the emptied slot until `Ready`.
    ///
    /// A frame over the size limit is refused (and dropped) before anything
    /// is sent. On the in-memory channel this completes at the first poll.
    #[inline(always)]
    pub fn poll_send_frame(
        &mut self,
        cx: &mut Context<'_>,
        frame: &mut Option<Vec<u8>>,
    ) -> Poll<Result<(), TransportError>> {
        if let Some(size) = frame.as_ref().map(Vec::len)
            && size > self.max_frame_len
        {
            *frame = None;
            return Poll::Ready(Err(TransportError::frame_too_large(
                size,
                self.max_frame_len,
            )));
        }
        match &mut self.io {
            Io::Simple(ch) => Poll::Ready(match frame.take() {
                Some(f) => ch.try_send_frame(f),
                None => Ok(()),
            }),
            Io::Dynamic(t) => {
                if frame.is_some() {
                    ready!(t.poll_ready(cx))?;
                    if let Some(f) = frame.take() {
                        t.start_send(f)?;
                    }
                }
                t.poll_flush(cx)
            }
        }
    }

    /// Receives one frame. Cancel safe: a dropped future loses nothing.
    pub async fn recv_frame(&mut self) -> Result<Vec<u8>, TransportError> {
        poll_fn(|cx| self.poll_recv_frame(cx)).await
    }

    /// Polls for the next frame.
    ///
    /// Frames accepted by an earlier, cancelled send are flushed first, so a
    /// role never waits for an answer to a request still sitting in its own
    /// buffer. A received frame over the size limit is discarded and reported
    /// as an error; the session stays usable.
    #[inline(always)]
    pub fn poll_recv_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Vec<u8>, TransportError>> {
        let frame = match &mut self.io {
            Io::Simple(ch) => ch.poll_recv_frame(cx),
            Io::Dynamic(t) => {
                if let Poll::Ready(Err(e)) = t.poll_flush(cx) {
                    return Poll::Ready(Err(e));
                }
                t.poll_recv(cx)
            }
        };
        match frame {
            Poll::Ready(Ok(f)) if f.len() > self.max_frame_len => Poll::Ready(Err(
                TransportError::frame_too_large(f.len(), self.max_frame_len),
            )),
            other => other,
        }
    }

    /// Who the peer is, as far as the transport knows (see
    /// [`SessionTransport::peer_identity`]); `None` for an in-memory session
    /// that was not given one.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
    ///
    /// let (a, _b) = SimpleChannel::pair();
    /// let session = RumpsteakSession::from(a);
    /// assert_eq!(session.peer_identity(), None);
    /// let session = session.with_peer_identity("address:192.0.2.7");
    /// assert_eq!(session.peer_identity(), Some("address:192.0.2.7"));
    /// ```
    pub fn peer_identity(&self) -> Option<&str> {
        match &self.io {
            Io::Simple(_) => None,
            Io::Dynamic(t) => t.peer_identity(),
        }
    }

    /// Attaches who the peer is, for transports that learn it outside the
    /// session (a network handshake). The session is unchanged otherwise.
    pub fn with_peer_identity(mut self, identity: impl Into<Box<str>>) -> Self {
        let inner: Box<dyn SessionTransport> =
            match std::mem::replace(&mut self.io, Io::Dynamic(Box::new(Detached))) {
                Io::Simple(ch) => Box::new(InMemory(ch)),
                Io::Dynamic(t) => t,
            };
        self.io = Io::Dynamic(Box::new(Identified {
            inner,
            identity: identity.into(),
        }));
        self
    }

    /// Ends the sending side: the peer receives every frame sent before and
    /// then sees the session closed. Frames the peer already sent may still
    /// be received here.
    pub fn close(&mut self) {
        match &mut self.io {
            Io::Simple(ch) => ch.close(),
            Io::Dynamic(t) => t.close(),
        }
    }
}

impl From<SimpleChannel> for RumpsteakSession {
    fn from(channel: SimpleChannel) -> Self {
        Self::from_simple_channel(channel)
    }
}

impl Drop for RumpsteakSession {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for RumpsteakSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RumpsteakSession");
        match &self.io {
            Io::Simple(ch) => d.field("transport", ch),
            Io::Dynamic(t) => d.field("transport", t),
        };
        d.field("max_frame_len", &self.max_frame_len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversize_frames_are_refused_both_ways() {
        let (a, b) = SimpleChannel::pair();
        let mut a = RumpsteakSession::from(a).with_max_frame_len(4);
        let mut b = RumpsteakSession::from(b).with_max_frame_len(2);

        let err = a.send_frame(vec![0; 5]).await.unwrap_err();
        assert!(matches!(
            err.kind(),
            rumpsteak_aura::TransportErrorKind::FrameTooLarge { size: 5, limit: 4 }
        ));
        // Within a's limit but over b's: b discards it and stays usable.
        a.send_frame(vec![0; 3]).await.unwrap();
        a.send_frame(vec![7]).await.unwrap();
        let err = b.recv_frame().await.unwrap_err();
        assert!(matches!(
            err.kind(),
            rumpsteak_aura::TransportErrorKind::FrameTooLarge { size: 3, limit: 2 }
        ));
        assert_eq!(b.recv_frame().await.unwrap(), vec![7]);
    }

    #[tokio::test]
    async fn dropping_a_session_closes_it() {
        let (a, b) = SimpleChannel::pair();
        let mut a = RumpsteakSession::from(a);
        let mut b = RumpsteakSession::from(b);
        a.send_frame(vec![1]).await.unwrap();
        drop(a);
        assert_eq!(b.recv_frame().await.unwrap(), vec![1]);
        assert!(b.recv_frame().await.unwrap_err().is_closed());
    }
}
