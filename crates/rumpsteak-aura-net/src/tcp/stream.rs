//! The TCP session transport: length-delimited frames over a `TcpStream`.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumpsteak_aura::TransportError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
#[cfg(feature = "websocket")]
use tokio::net::TcpStream;
#[cfg(feature = "websocket")]
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::runtime::Handle;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};
use tokio_util::io::poll_read_buf;

use super::TcpOptions;
use super::deadline::ReadDeadline;
use rumpsteak_aura_transport::SessionTransport;

/// Bytes in the length prefix (big-endian `u32`, the codec's default).
const HEAD_LEN: usize = 4;
/// How much to ask the kernel for at once when no frame size is known yet.
const READ_CHUNK: usize = 8 * 1024;
/// A write buffer that grew past this is released once it is empty.
const KEEP_WRITE_CAPACITY: usize = 1024 * 1024;

fn codec(max_frame_len: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(HEAD_LEN)
        .max_frame_length(max_frame_len)
        .new_codec()
}

/// The receiving half: reads length-delimited frames, never yields a partial
/// one, and keeps a partly received frame buffered across cancelled polls.
pub(crate) struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    codec: LengthDelimitedCodec,
    max_frame_len: usize,
    /// Bytes of an oversize frame still to be skipped.
    discard: usize,
    eof: bool,
    deadline: ReadDeadline,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(io: R, max_frame_len: usize, deadline: Option<Duration>) -> Self {
        FrameReader {
            io,
            buf: BytesMut::new(),
            codec: codec(max_frame_len),
            max_frame_len,
            discard: 0,
            eof: false,
            deadline: ReadDeadline::new(deadline),
        }
    }

    pub(crate) fn set_max_frame_len(&mut self, max: usize) {
        self.codec.set_max_frame_length(max);
        self.max_frame_len = max;
    }

    /// The length announced by the prefix at the front of the buffer.
    fn announced_len(&self) -> Option<usize> {
        let head: [u8; HEAD_LEN] = self.buf.get(..HEAD_LEN)?.try_into().ok()?;
        Some(usize::try_from(u32::from_be_bytes(head)).unwrap_or(usize::MAX))
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Vec<u8>, TransportError>> {
        loop {
            if self.discard > 0 {
                let n = self.discard.min(self.buf.len());
                self.buf.advance(n);
                self.discard -= n;
            }
            // The codec only ever sees a buffer that holds the whole next
            // frame, so between polls nothing is hidden inside the codec:
            // an empty buffer means "at a frame boundary".
            if self.discard == 0
                && let Some(len) = self.announced_len()
            {
                if len > self.max_frame_len {
                    self.buf.advance(HEAD_LEN);
                    self.discard = len;
                    return Poll::Ready(Err(TransportError::frame_too_large(
                        len,
                        self.max_frame_len,
                    )));
                }
                let total = len.saturating_add(HEAD_LEN);
                if self.buf.len() >= total {
                    return match self.codec.decode(&mut self.buf) {
                        Ok(Some(frame)) => {
                            self.deadline.progress();
                            Poll::Ready(Ok(Vec::from(frame)))
                        }
                        // Unreachable with a whole frame buffered; reported
                        // rather than trusted.
                        Ok(None) => Poll::Ready(Err(TransportError::io(io::Error::other(
                            "length-delimited codec did not yield a buffered frame",
                        )))),
                        Err(e) => Poll::Ready(Err(TransportError::io(e))),
                    };
                }
                self.buf.reserve(total - self.buf.len());
            }
            if self.eof {
                return Poll::Ready(Err(self.end_of_stream()));
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            match poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => self.eof = true,
                Poll::Ready(Ok(_)) => self.deadline.progress(),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    // The connection is gone (a reset, say): report it once.
                    // A partly received frame goes with it, and later reads
                    // see `Closed`, not the same loss again as an EOF
                    // inside a frame.
                    self.buf.clear();
                    self.discard = 0;
                    self.eof = true;
                    return Poll::Ready(Err(TransportError::io(e)));
                }
                Poll::Pending => return self.deadline.poll_expired(cx).map(Err),
            }
        }
    }

    /// The error for a stream that ended: `Closed` at a frame boundary, an
    /// I/O error inside a frame (whose bytes are dropped, never delivered).
    fn end_of_stream(&mut self) -> TransportError {
        if self.buf.is_empty() && self.discard == 0 {
            return TransportError::closed();
        }
        let partial = self.buf.len();
        self.buf.clear();
        self.discard = 0;
        TransportError::io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("connection closed in the middle of a frame ({partial} bytes of it discarded)"),
        ))
    }

    pub(crate) fn into_inner(self) -> R {
        self.io
    }

    fn saw_eof(&self) -> bool {
        self.eof
    }
}

/// The sending half: encodes one frame at a time and keeps it until the
/// kernel took all of it.
pub(crate) struct FrameWriter<W> {
    io: W,
    buf: BytesMut,
    codec: LengthDelimitedCodec,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(io: W, max_frame_len: usize) -> Self {
        FrameWriter {
            io,
            buf: BytesMut::new(),
            codec: codec(max_frame_len),
        }
    }

    pub(crate) fn set_max_frame_len(&mut self, max: usize) {
        self.codec.set_max_frame_length(max);
    }

    /// Ready once the previous frame is with the kernel, so that at most one
    /// frame waits in user space.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.buf.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            self.poll_flush(cx)
        }
    }

    pub(crate) fn start_send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        let limit = self.codec.max_frame_length();
        if frame.len() > limit {
            return Err(TransportError::frame_too_large(frame.len(), limit));
        }
        self.codec
            .encode(frame, &mut self.buf)
            .map_err(TransportError::io)
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        while !self.buf.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(TransportError::io(io::ErrorKind::WriteZero.into())));
                }
                Poll::Ready(Ok(n)) => self.buf.advance(n),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(TransportError::io(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.buf.capacity() > KEEP_WRITE_CAPACITY {
            self.buf = BytesMut::new();
        }
        Pin::new(&mut self.io)
            .poll_flush(cx)
            .map_err(TransportError::io)
    }

    /// Flushes, then ends the sending direction (a TCP FIN).
    pub(crate) fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        if let Poll::Ready(Err(e)) = self.poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        if !self.buf.is_empty() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io)
            .poll_shutdown(cx)
            .map_err(TransportError::io)
    }
}

/// A [`SessionTransport`] of length-delimited frames over the two halves of
/// a byte stream: a TCP connection, or a TLS stream over one.
pub(crate) struct FramedTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    reader: Option<FrameReader<R>>,
    writer: Option<FrameWriter<W>>,
    peer_addr: SocketAddr,
    linger: Duration,
    /// Who the peer is, once the handshake said.
    identity: Option<Box<str>>,
}

/// The transport of a plain TCP connection.
#[cfg(feature = "websocket")]
pub(crate) type TcpTransport = FramedTransport<OwnedReadHalf, OwnedWriteHalf>;

#[cfg(feature = "websocket")]
impl TcpTransport {
    pub(crate) fn tcp(stream: TcpStream, peer_addr: SocketAddr, options: &TcpOptions) -> Self {
        super::framed(stream, peer_addr, options)
    }
}

impl<R, W> FramedTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub(crate) fn new(read: R, write: W, peer_addr: SocketAddr, options: &TcpOptions) -> Self {
        FramedTransport {
            reader: Some(FrameReader::new(
                read,
                options.max_frame_len(),
                options.read_deadline(),
            )),
            writer: Some(FrameWriter::new(write, options.max_frame_len())),
            peer_addr,
            // Until the handshake succeeds, a connection that ends lingers
            // briefly: see `Handshaking::settle`.
            linger: options.linger().min(super::REFUSED_LINGER),
            identity: None,
        }
    }

    /// Records who the peer is.
    pub(crate) fn set_identity(&mut self, identity: Box<str>) {
        self.identity = Some(identity);
    }

    /// Lingers for `linger` when dropped.
    pub(crate) fn set_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// Lingers at most `max` when dropped.
    pub(crate) fn shorten_linger(&mut self, max: Duration) {
        self.linger = self.linger.min(max);
    }

    pub(crate) fn set_max_frame_len(&mut self, max: usize) {
        if let Some(r) = &mut self.reader {
            r.set_max_frame_len(max);
        }
        if let Some(w) = &mut self.writer {
            w.set_max_frame_len(max);
        }
    }
}

impl<R, W> SessionTransport for FramedTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match &mut self.writer {
            Some(w) => w.poll_ready(cx),
            None => Poll::Ready(Err(TransportError::closed())),
        }
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        match &mut self.writer {
            Some(w) => w.start_send(&frame),
            None => Err(TransportError::closed()),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match &mut self.writer {
            Some(w) => w.poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn peer_identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        match &mut self.reader {
            Some(r) => r.poll_frame(cx),
            None => Poll::Ready(Err(TransportError::closed())),
        }
    }

    /// Flushes what was accepted and sends FIN. When the kernel cannot take
    /// the rest at once and a tokio runtime is at hand, a background task
    /// finishes the job within the linger time; without a runtime the rest
    /// is dropped.
    fn close(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        if writer.poll_shutdown(&mut cx).is_pending()
            && let Ok(runtime) = Handle::try_current()
        {
            let linger = self.linger;
            runtime.spawn(async move {
                let _ = tokio::time::timeout(linger, poll_fn(|cx| writer.poll_shutdown(cx))).await;
            });
        }
    }
}

impl<R, W> Drop for FramedTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// Closing a socket while the peer's frames sit unread in it makes the
    /// kernel answer with a reset, which can destroy frames the peer has
    /// not read yet. So, inside a runtime, the receiving half lingers in the
    /// background, discarding input until the peer closes too (or the
    /// linger time passes).
    fn drop(&mut self) {
        self.close();
        let Some(reader) = self.reader.take() else {
            return;
        };
        if reader.saw_eof() {
            return;
        }
        if let Ok(runtime) = Handle::try_current() {
            let linger = self.linger;
            let mut read = reader.into_inner();
            runtime.spawn(async move {
                let mut scratch = [0u8; 4096];
                let drain = async {
                    while let Ok(n) = read.read(&mut scratch).await
                        && n > 0
                    {}
                };
                let _ = tokio::time::timeout(linger, drain).await;
            });
        }
    }
}

impl<R, W> fmt::Debug for FramedTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedTransport")
            .field("peer_addr", &self.peer_addr)
            .field("sending", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumpsteak_aura::TransportErrorKind;
    use tokio::io::AsyncWriteExt;
    use tokio::time::Instant;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    async fn next<R: AsyncRead + Unpin>(r: &mut FrameReader<R>) -> Result<Vec<u8>, TransportError> {
        poll_fn(|cx| r.poll_frame(cx)).await
    }

    #[tokio::test]
    async fn frames_split_anywhere_arrive_whole() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(rx, 1024, None);
        let mut bytes = framed(b"hello");
        bytes.extend(framed(b""));
        bytes.extend(framed(b"world"));
        let writer = tokio::spawn(async move {
            for b in bytes {
                tx.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(next(&mut reader).await.unwrap(), b"hello");
        assert_eq!(next(&mut reader).await.unwrap(), b"");
        assert_eq!(next(&mut reader).await.unwrap(), b"world");
        writer.await.unwrap();
        assert!(next(&mut reader).await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error_not_a_message() {
        for cut in [2, 4, 7] {
            let (mut tx, rx) = tokio::io::duplex(64);
            let mut reader = FrameReader::new(rx, 1024, None);
            tx.write_all(&framed(b"whole")).await.unwrap();
            tx.write_all(&framed(b"partial")[..cut]).await.unwrap();
            drop(tx);
            assert_eq!(next(&mut reader).await.unwrap(), b"whole");
            let err = next(&mut reader).await.unwrap_err();
            let TransportErrorKind::Io(io) = err.kind() else {
                panic!("cut at {cut}: expected an i/o error, got {err}");
            };
            assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
            assert!(err.to_string().contains("middle of a frame"), "{err}");
            assert!(next(&mut reader).await.unwrap_err().is_closed());
        }
    }

    /// Half a frame, then a reset, then (as a socket does) end of stream.
    struct ResetMidFrame(u8);

    impl AsyncRead for ResetMidFrame {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.0 += 1;
            Poll::Ready(match self.0 {
                1 => {
                    buf.put_slice(&framed(b"partial")[..6]);
                    Ok(())
                }
                2 => Err(io::ErrorKind::ConnectionReset.into()),
                _ => Ok(()),
            })
        }
    }

    #[tokio::test]
    async fn a_reset_mid_frame_is_reported_once() {
        let mut reader = FrameReader::new(ResetMidFrame(0), 1024, None);
        let err = next(&mut reader).await.unwrap_err();
        let TransportErrorKind::Io(io) = err.kind() else {
            panic!("expected an i/o error, got {err}");
        };
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        let again = next(&mut reader).await.unwrap_err();
        assert!(again.is_closed(), "the reset was reported twice: {again}");
    }

    #[tokio::test]
    async fn oversize_frame_is_skipped_and_the_stream_stays_usable() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(rx, 4, None);
        tokio::spawn(async move {
            tx.write_all(&framed(&[7; 100])).await.unwrap();
            tx.write_all(&framed(b"ok")).await.unwrap();
        });
        let err = next(&mut reader).await.unwrap_err();
        assert!(matches!(
            err.kind(),
            TransportErrorKind::FrameTooLarge {
                size: 100,
                limit: 4
            }
        ));
        assert_eq!(next(&mut reader).await.unwrap(), b"ok");
    }

    #[tokio::test]
    async fn a_huge_announced_length_allocates_nothing() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(rx, 1024, None);
        tx.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let err = next(&mut reader).await.unwrap_err();
        assert!(matches!(
            err.kind(),
            TransportErrorKind::FrameTooLarge { .. }
        ));
        assert!(reader.buf.capacity() <= 2 * READ_CHUNK);
    }

    #[tokio::test(start_paused = true)]
    async fn read_deadline_fires_when_silent_and_resets_on_progress() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let deadline = Duration::from_secs(5);
        let mut reader = FrameReader::new(rx, 1024, Some(deadline));
        let start = Instant::now();
        let err = next(&mut reader).await.unwrap_err();
        assert!(matches!(err.kind(), TransportErrorKind::ReadDeadline(d) if *d == deadline));
        assert_eq!(start.elapsed(), deadline);

        // A frame trickling in slower than the deadline as a whole, but never
        // silent for that long, is not cut off.
        let bytes = framed(b"slow frame");
        tokio::spawn(async move {
            for b in bytes {
                tokio::time::sleep(Duration::from_secs(2)).await;
                tx.write_all(&[b]).await.unwrap();
            }
        });
        assert_eq!(next(&mut reader).await.unwrap(), b"slow frame");
    }

    #[tokio::test]
    async fn cancelled_send_delivers_the_frame_whole_later() {
        let (tx, rx) = tokio::io::duplex(8);
        let mut writer = FrameWriter::new(tx, 1024);
        let mut reader = FrameReader::new(rx, 1024, None);
        poll_fn(|cx| writer.poll_ready(cx)).await.unwrap();
        writer.start_send(&[1; 100]).unwrap();
        // The pipe holds 8 bytes: the flush cannot finish. Give up on it.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(writer.poll_flush(&mut cx).is_pending());
        // The next send waits for the first frame to go out, so reading
        // lets both through, whole and in order.
        let sending = async {
            poll_fn(|cx| writer.poll_ready(cx)).await.unwrap();
            writer.start_send(&[2; 3]).unwrap();
            poll_fn(|cx| writer.poll_flush(cx)).await.unwrap();
        };
        let receiving = async {
            (
                next(&mut reader).await.unwrap(),
                next(&mut reader).await.unwrap(),
            )
        };
        let ((), (first, second)) = tokio::join!(sending, receiving);
        assert_eq!(first, vec![1; 100]);
        assert_eq!(second, vec![2; 3]);
    }

    #[test]
    fn oversize_send_is_refused_before_anything_is_buffered() {
        let (tx, _rx) = tokio::io::duplex(8);
        let mut writer = FrameWriter::new(tx, 4);
        let err = writer.start_send(&[0; 5]).unwrap_err();
        assert!(matches!(
            err.kind(),
            TransportErrorKind::FrameTooLarge { size: 5, limit: 4 }
        ));
        assert!(writer.buf.is_empty());
    }
}
