//! Sessions over WebSocket binary messages (feature `websocket`).
//!
//! One WebSocket connection carries one session; each frame is one binary
//! message. The session is built with
//! [`RumpsteakSession::from_sink_stream`], the same path a custom transport
//! takes, over a `tokio-tungstenite` stream.
//!
//! - [`connect`] and [`WebSocketListener`] open the connection over TCP
//!   (URL path `/rumpsteak`, plain `ws://`), then run the same role and
//!   wire-version handshake as [`tcp`], carried in binary
//!   messages. They take [`TcpOptions`]: WebSocket sessions run over TCP and
//!   honour the same frame limit, read deadline, keepalive and timeouts.
//! - [`session`] wraps a WebSocket you opened yourself (behind a web
//!   framework, over TLS) without a handshake.
//!
//! Other messages are handled as follows: ping and pong are left to
//! tungstenite (which answers pings) and skipped; a close message ends the
//! session, so the pending receive sees `Closed`; a text message is an
//! error of kind [`Other`](crate::TransportErrorKind::Other), and the
//! session stays usable, unless the text is not valid UTF-8: RFC 6455 fails
//! such a connection, so the error (kind `Other`, naming it) is followed by
//! `Closed`. A peer that vanishes without the WebSocket close
//! handshake (a killed process) makes the pending receive fail with an I/O
//! error of kind `UnexpectedEof`. A message over the frame limit is refused
//! by tungstenite before it is buffered whole, and ends the session.
//!
//! Send errors come from tungstenite and are reported with kind `Other`.
//!
//! Memory a slow peer can cost: as for TCP (kernel buffers plus one message
//! each way in user space), since tungstenite writes through to the socket
//! and every send is flushed.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{Sink, SinkExt, Stream, StreamExt};
use rumpsteak_aura::TransportError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, accept_async_with_config, client_async_with_config};

use crate::handshake::{self, Escaped};
use crate::tcp::deadline::ReadDeadline;
use crate::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_transport::{IntoFrame, RumpsteakSession};

/// The WebSocket library the sessions are built on, re-exported so that
/// [`session`] can be called with the same version of its types.
pub use tokio_tungstenite;

/// The URL path the helpers use.
const PATH: &str = "/rumpsteak";

fn config(options: &TcpOptions) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(options.max_frame_len()))
        .max_frame_size(Some(options.max_frame_len()))
}

/// Wraps an open WebSocket into a session, with no role handshake.
///
/// Use it for a WebSocket accepted by a web framework or opened over TLS.
/// The session's frame limit is `options.max_frame_len()`; configure the
/// WebSocket's own `max_message_size` to match, so that an oversize message
/// is refused before it is buffered. The read deadline and linger time of
/// `options` apply; its connect, keepalive and handshake settings do not.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tcp::TcpOptions;
/// use rumpsteak_aura_net::websocket::{self, tokio_tungstenite};
/// use tokio_tungstenite::tungstenite::protocol::Role;
/// use tokio_tungstenite::WebSocketStream;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
/// let (a, b) = tokio::io::duplex(1024);
/// let a = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
/// let b = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
/// let options = TcpOptions::new();
/// let (mut a, mut b) = (websocket::session(a, &options), websocket::session(b, &options));
/// a.send_frame(b"over a websocket".to_vec()).await?;
/// assert_eq!(b.recv_frame().await?, b"over a websocket");
/// # Ok(())
/// # }
/// ```
pub fn session<S>(ws: WebSocketStream<S>, options: &TcpOptions) -> RumpsteakSession
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let sink = BinarySink {
        inner: Some(sink),
        closed: false,
        linger: options.linger(),
    };
    let stream = BinaryStream {
        inner: Some(stream),
        ended: false,
        deadline: ReadDeadline::new(options.read_deadline()),
        linger: options.linger(),
    };
    RumpsteakSession::from_sink_stream(sink, stream).with_max_frame_len(options.max_frame_len())
}

fn upgrade_error(addr: SocketAddr, e: WsError) -> TransportError {
    match e {
        WsError::Io(e) => tcp::at_address("websocket upgrade with", addr, e),
        WsError::Http(response) => TransportError::handshake(format!(
            "{addr} refused the websocket upgrade: HTTP {}",
            response.status()
        )),
        other => TransportError::handshake(format!(
            "websocket upgrade with {addr} failed: {}",
            Escaped(&other.to_string())
        )),
    }
}

/// Connects to the peer playing `peer_role` at `addr` over WebSocket, as
/// `local_role`.
///
/// Errors are those of [`tcp::connect`]; a server that refuses the
/// WebSocket upgrade gives a [`Handshake`](crate::TransportErrorKind::Handshake)
/// error naming the address.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tcp::TcpOptions;
/// use rumpsteak_aura_net::websocket::{self, WebSocketListener};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
/// let options = TcpOptions::new();
/// let listener = WebSocketListener::bind("127.0.0.1:0".parse().unwrap(), "Server", &options).await?;
/// let addr = listener.local_addr();
/// let server = tokio::spawn(async move {
///     let mut session = listener.accept("Client").await?;
///     let request = session.recv_frame().await?;
///     session.send_frame(request.iter().map(|b| b + 1).collect()).await
/// });
///
/// let mut session = websocket::connect(addr, "Client", "Server", &options).await?;
/// session.send_frame(vec![1, 2, 3]).await?;
/// assert_eq!(session.recv_frame().await?, vec![2, 3, 4]);
/// server.await.expect("server task")?;
/// # Ok(())
/// # }
/// ```
pub async fn connect(
    addr: SocketAddr,
    local_role: &str,
    peer_role: &str,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let stream = tcp::dial_checked(addr, local_role, peer_role, options).await?;
    let url = format!("ws://{addr}{PATH}");
    let (ws, _response) = tcp::within_handshake_timeout(options, addr, async {
        client_async_with_config(url, stream, Some(config(options)))
            .await
            .map_err(|e| upgrade_error(addr, e))
    })
    .await?;
    tcp::dial_handshake(session(ws, options), addr, local_role, peer_role, options).await
}

/// A bound TCP address on which one role accepts WebSocket sessions.
pub struct WebSocketListener {
    inner: SessionListener,
}

impl WebSocketListener {
    /// Binds `addr` for the role `local_role`. Port 0 picks a free port.
    ///
    /// Fails with an I/O error naming the address when it is in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::TcpOptions;
    /// use rumpsteak_aura_net::websocket::WebSocketListener;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
    /// let listener = WebSocketListener::bind("127.0.0.1:0".parse().unwrap(), "Server", &TcpOptions::new()).await?;
    /// assert_eq!(listener.local_role(), "Server");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bind(
        addr: SocketAddr,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        Ok(WebSocketListener {
            inner: SessionListener::bind(addr, local_role, options).await?,
        })
    }

    /// Uses a listener the caller bound already.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_net::tcp::TcpOptions;
    /// use rumpsteak_aura_net::websocket::WebSocketListener;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rumpsteak_aura_transport::TransportError> {
    /// let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let listener = WebSocketListener::from_listener(bound, "Server", &TcpOptions::new())?;
    /// assert_ne!(listener.local_addr().port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_listener(
        listener: TcpListener,
        local_role: &str,
        options: &TcpOptions,
    ) -> Result<Self, TransportError> {
        Ok(WebSocketListener {
            inner: SessionListener::from_listener(listener, local_role, options)?,
        })
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// The role this listener accepts sessions for.
    pub fn local_role(&self) -> &str {
        self.inner.local_role()
    }

    /// Accepts the next connection, upgrades it and runs the handshake,
    /// expecting the peer to be `peer_role`. As
    /// [`SessionListener::accept`], a refused peer makes this call fail;
    /// call it again to keep waiting.
    pub async fn accept(&self, peer_role: &str) -> Result<RumpsteakSession, TransportError> {
        let mut allow = handshake::expect_role(peer_role);
        self.accept_checked(&mut allow).await.map(|(_, s)| s)
    }

    /// Accepts the next connection from any of `peer_roles`, returning the
    /// role that connected with its session.
    pub async fn accept_any(
        &self,
        peer_roles: &[&str],
    ) -> Result<(String, RumpsteakSession), TransportError> {
        let mut allow = handshake::expect_one_of(peer_roles);
        self.accept_checked(&mut allow).await
    }

    async fn accept_checked(
        &self,
        allow: &mut (dyn FnMut(&str) -> Result<(), String> + Send),
    ) -> Result<(String, RumpsteakSession), TransportError> {
        let (stream, addr): (TcpStream, SocketAddr) = self.inner.accept_stream().await?;
        let options = self.inner.options();
        let ws = tcp::within_handshake_timeout(options, addr, async {
            accept_async_with_config(stream, Some(config(options)))
                .await
                .map_err(|e| upgrade_error(addr, e))
        })
        .await?;
        let session = session(ws, options);
        tcp::accept_handshake(session, addr, self.local_role(), allow, options).await
    }
}

impl fmt::Debug for WebSocketListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketListener")
            .field("local_addr", &self.local_addr())
            .field("local_role", &self.local_role())
            .finish_non_exhaustive()
    }
}

/// What a WebSocket session can run over.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Socket for S {}

/// The sending half: each frame becomes one binary message.
struct BinarySink<S: Socket> {
    inner: Option<SplitSink<WebSocketStream<S>, Message>>,
    closed: bool,
    linger: Duration,
}

fn gone() -> WsError {
    WsError::AlreadyClosed
}

impl<S: Socket> Sink<Vec<u8>> for BinarySink<S> {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match &mut self.inner {
            Some(sink) => sink.poll_ready_unpin(cx),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Vec<u8>) -> Result<(), WsError> {
        match &mut self.inner {
            Some(sink) => sink.start_send_unpin(Message::Binary(frame.into())),
            None => Err(gone()),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match &mut self.inner {
            Some(sink) => sink.poll_flush_unpin(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let Some(sink) = &mut self.inner else {
            return Poll::Ready(Ok(()));
        };
        let done = sink.poll_close_unpin(cx);
        if done.is_ready() {
            self.closed = true;
        }
        done
    }
}

impl<S: Socket> Drop for BinarySink<S> {
    /// A close the kernel could not take at once is finished in the
    /// background, within the linger time, when a runtime is at hand.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let Some(sink) = self.inner.take() else {
            return;
        };
        if let Ok(runtime) = Handle::try_current() {
            let linger = self.linger;
            runtime.spawn(finish_close(sink, linger));
        }
    }
}

async fn finish_close<S: Socket>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    linger: Duration,
) {
    let _ = tokio::time::timeout(linger, sink.close()).await;
}

/// The receiving half: binary messages become frames, everything else is
/// handled as the module documentation says.
struct BinaryStream<S: Socket> {
    inner: Option<SplitStream<WebSocketStream<S>>>,
    ended: bool,
    deadline: ReadDeadline,
    linger: Duration,
}

/// One item of [`BinaryStream`]: a frame or an already typed error.
struct Received(Result<Vec<u8>, TransportError>);

impl IntoFrame for Received {
    fn into_frame(self) -> Result<Vec<u8>, TransportError> {
        self.0
    }
}

/// A text message where a binary one was expected.
#[derive(Debug, thiserror::Error)]
#[error(
    "received a websocket text message{}; sessions carry binary messages only",
    match .0 { Some(n) => format!(" of {n} bytes"), None => " that is not valid UTF-8 (the connection ends)".to_string() }
)]
struct TextMessage(Option<usize>);

fn receive_error(e: WsError) -> Option<TransportError> {
    Some(match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => return None,
        WsError::Io(e) => TransportError::io(e),
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            TransportError::frame_too_large(size, max_size)
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            TransportError::io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection without a websocket close handshake",
            ))
        }
        other => TransportError::other(other),
    })
}

impl<S: Socket> Stream for BinaryStream<S> {
    type Item = Received;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Received>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(inner) = &mut this.inner else {
                return Poll::Ready(None);
            };
            let message = match inner.poll_next_unpin(cx) {
                Poll::Pending => {
                    return this
                        .deadline
                        .poll_expired(cx)
                        .map(|e| Some(Received(Err(e))));
                }
                Poll::Ready(message) => message,
            };
            this.deadline.progress();
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    return Poll::Ready(Some(Received(Ok(Vec::from(bytes)))));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(text))) => {
                    let e = TransportError::other(TextMessage(Some(text.len())));
                    return Poll::Ready(Some(Received(Err(e))));
                }
                Some(Ok(Message::Close(_))) | None => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Some(Err(WsError::Utf8(_))) => {
                    // tokio-tungstenite ends its stream after any error, as
                    // RFC 6455 fails a connection on text that is not UTF-8:
                    // reported as such, then the session is closed.
                    this.ended = true;
                    let e = TransportError::other(TextMessage(None));
                    return Poll::Ready(Some(Received(Err(e))));
                }
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(receive_error(e).map(|e| Received(Err(e))));
                }
            }
        }
    }
}

impl<S: Socket> Drop for BinaryStream<S> {
    /// As for TCP, the receiving half lingers in the background until the
    /// peer closes, so that unread input does not turn into a reset.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let Some(stream) = self.inner.take() else {
            return;
        };
        if let Ok(runtime) = Handle::try_current() {
            let linger = self.linger;
            runtime.spawn(drain(stream, linger));
        }
    }
}

async fn drain<S: Socket>(mut stream: SplitStream<WebSocketStream<S>>, linger: Duration) {
    let drained = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(linger, drained).await;
}

impl<S: Socket> fmt::Debug for BinarySink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinarySink")
            .field("closed", &self.closed)
            .finish()
    }
}

impl<S: Socket> fmt::Debug for BinaryStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryStream")
            .field("ended", &self.ended)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumpsteak_aura::TransportErrorKind;
    use tokio_tungstenite::tungstenite::protocol::Role;

    async fn pair(
        options: &TcpOptions,
    ) -> (RumpsteakSession, WebSocketStream<tokio::io::DuplexStream>) {
        let (a, b) = tokio::io::duplex(4096);
        let a = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let b = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        (session(a, options), b)
    }

    #[tokio::test]
    async fn pings_are_skipped_text_is_an_error_close_is_closed() {
        let (mut session, mut raw) = pair(&TcpOptions::new()).await;
        raw.send(Message::Ping(vec![1].into())).await.unwrap();
        raw.send(Message::Binary(vec![1, 2].into())).await.unwrap();
        raw.send(Message::Text("hello".into())).await.unwrap();
        raw.send(Message::Binary(vec![3].into())).await.unwrap();
        raw.send(Message::Close(None)).await.unwrap();

        assert_eq!(session.recv_frame().await.unwrap(), vec![1, 2]);
        let err = session.recv_frame().await.unwrap_err();
        assert!(matches!(err.kind(), TransportErrorKind::Other(_)));
        assert!(err.to_string().contains("text message of 5 bytes"), "{err}");
        assert_eq!(session.recv_frame().await.unwrap(), vec![3]);
        assert!(session.recv_frame().await.unwrap_err().is_closed());
        // The raw side got its pong.
        assert!(matches!(raw.next().await, Some(Ok(Message::Pong(_)))));
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_one_error_then_closed() {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        let (mut session, mut raw) = pair(&TcpOptions::new()).await;
        let bad = Frame::message(vec![0xff, 0xfe], OpCode::Data(Data::Text), true);
        raw.send(Message::Frame(bad)).await.unwrap();
        raw.send(Message::Binary(vec![5].into())).await.unwrap();
        let err = session.recv_frame().await.unwrap_err();
        assert!(matches!(err.kind(), TransportErrorKind::Other(_)), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert!(session.recv_frame().await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn vanished_peer_is_an_unexpected_eof() {
        let (mut session, raw) = pair(&TcpOptions::new()).await;
        drop(raw);
        let err = session.recv_frame().await.unwrap_err();
        let TransportErrorKind::Io(io) = err.kind() else {
            panic!("expected an i/o error, got {err}");
        };
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test(start_paused = true)]
    async fn read_deadline_applies() {
        let deadline = Duration::from_secs(3);
        let (mut session, _raw) = pair(&TcpOptions::new().with_read_deadline(deadline)).await;
        let err = session.recv_frame().await.unwrap_err();
        assert!(matches!(err.kind(), TransportErrorKind::ReadDeadline(d) if *d == deadline));
    }

    #[tokio::test]
    async fn close_sends_a_close_message() {
        let (mut session, mut raw) = pair(&TcpOptions::new()).await;
        session.send_frame(vec![9]).await.unwrap();
        session.close();
        assert_eq!(
            raw.next().await.unwrap().unwrap(),
            Message::Binary(vec![9].into())
        );
        assert!(matches!(raw.next().await, Some(Ok(Message::Close(_)))));
    }
}
