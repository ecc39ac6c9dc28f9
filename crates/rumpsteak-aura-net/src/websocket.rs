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
//! Send errors: an I/O failure (a reset connection, say) is kind `Io`, as
//! over TCP; tungstenite's other errors are kind `Other`.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rumpsteak_aura::{Refusal, RefusalReason};
#[cfg(feature = "tls")]
use tokio::io::AsyncWriteExt;
use tokio::io::ReadBuf;
use tokio::time::Instant;

use crate::handshake::Escaped;
use crate::tcp::deadline::ReadDeadline;
use crate::tcp::{self, Accepted, Opener, SessionListener, TcpOptions, Ticket};
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
        WsError::Http(response) if response.status() == PLAIN_AT_TLS_STATUS => {
            TransportError::refused(
                Refusal::new(RefusalReason::PlainTextPeer, "TLS", "plain text")
                    .from_peer()
                    .with_detail(format!("{addr} accepts WebSocket over TLS only")),
            )
        }
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

/// The status a TLS WebSocket listener answers a plain-text upgrade with.
const PLAIN_AT_TLS_STATUS: u16 = 426;

/// How many bytes a side reads before its role handshake is done: the
/// HTTP upgrade (request or response, headers included) and the handshake
/// frames. A peer that sends more is cut off before it has cost more.
pub const MAX_PREHANDSHAKE_BYTES: usize = 16 * 1024;

/// Connects to the peer playing `peer_role` at `addr` over WebSocket, as
/// `local_role`; over TLS (`wss`) when the options carry an identity.
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
    let deadline = Instant::now() + options.handshake_timeout();
    #[cfg(feature = "tls")]
    if let Some(tls) = options.tls() {
        let halves = tls
            .connect(stream, addr, peer_role, deadline, options)
            .await?;
        let (budget, stream) = Budget::new(halves.read.unsplit(halves.write));
        let session = upgrade_as_client(stream, addr, "wss", deadline, options).await?;
        let proven = match tcp::proven_as(halves.verdict, peer_role) {
            Ok(proven) => proven,
            Err(refusal) => {
                let refused =
                    tcp::refuse_now(session, addr, local_role, refusal, deadline, options);
                return Err(refused.await);
            }
        };
        let identity = Some(proven.identity.as_str());
        let roles = (local_role, peer_role);
        let session =
            tcp::dial_handshake(session, addr, roles, identity, deadline, options).await?;
        budget.lift();
        return Ok(session);
    }
    let (budget, stream) = Budget::new(stream);
    let session = upgrade_as_client(stream, addr, "ws", deadline, options).await?;
    let roles = (local_role, peer_role);
    let session = tcp::dial_handshake(session, addr, roles, None, deadline, options).await?;
    budget.lift();
    Ok(session)
}

async fn upgrade_as_client<S: Socket>(
    stream: S,
    addr: SocketAddr,
    scheme: &str,
    deadline: Instant,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let url = format!("{scheme}://{addr}{PATH}");
    let (ws, _response) = tcp::until_deadline(deadline, options, addr, async {
        client_async_with_config(url, stream, Some(config(options)))
            .await
            .map_err(|e| upgrade_error(addr, e))
    })
    .await?;
    Ok(session(ws, options))
}

/// The listener side of a WebSocket connection, plain or over TLS.
fn ws_opener(local_role: &str, options: &TcpOptions) -> Opener {
    tcp::opener(
        local_role,
        options,
        |stream, addr, role, options, ticket| async move {
            open_ws(stream, addr, &role, &options, &ticket).await
        },
    )
}

async fn open_ws(
    stream: TcpStream,
    addr: SocketAddr,
    local_role: &str,
    options: &TcpOptions,
    ticket: &Ticket,
) -> Accepted {
    let deadline = ticket.deadline;
    let first =
        tcp::until_deadline(deadline, options, addr, tcp::first_byte(&stream, addr)).await?;
    let speaks_tls = first == Some(tcp::TLS_HANDSHAKE_RECORD);
    #[cfg(feature = "tls")]
    if let Some(tls) = options.tls() {
        if !speaks_tls {
            let mut stream = stream;
            let answer = format!(
                "HTTP/1.1 {PLAIN_AT_TLS_STATUS} Upgrade Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
            let write = async {
                stream
                    .write_all(answer.as_bytes())
                    .await
                    .map_err(TransportError::io)
            };
            let _ = tcp::until_deadline(deadline, options, addr, write).await;
            return Err(TransportError::refused(
                Refusal::new(RefusalReason::PlainTextPeer, "TLS", "plain text")
                    .with_detail(format!("refused {addr}")),
            ));
        }
        let halves = tcp::until_deadline(deadline, options, addr, tls.accept(stream, addr)).await?;
        let (budget, stream) = Budget::new(halves.read.unsplit(halves.write));
        let session = upgrade_as_server(stream, addr, options, deadline).await?;
        return match halves.verdict {
            Ok(proven) => {
                let accepted =
                    tcp::admit(session, addr, local_role, Some(&proven), options, ticket).await;
                budget.lift();
                accepted
            }
            Err(refusal) => {
                Err(tcp::refuse_now(session, addr, local_role, refusal, deadline, options).await)
            }
        };
    }
    if speaks_tls {
        // A TLS dialer at a plain listener: its TLS layer finds this
        // refusal, in TCP framing, where it expected a server hello.
        let io = tcp::TcpTransport::tcp(stream, addr, options);
        let refusal = Refusal::new(RefusalReason::TlsPeer, "plain text", "TLS");
        return Err(tcp::refuse_now(io, addr, local_role, refusal, deadline, options).await);
    }
    let (budget, stream) = Budget::new(stream);
    let session = upgrade_as_server(stream, addr, options, deadline).await?;
    let accepted = tcp::admit(session, addr, local_role, None, options, ticket).await;
    budget.lift();
    accepted
}

async fn upgrade_as_server<S: Socket>(
    stream: S,
    addr: SocketAddr,
    options: &TcpOptions,
    deadline: Instant,
) -> Result<RumpsteakSession, TransportError> {
    let ws = tcp::until_deadline(deadline, options, addr, async {
        accept_async_with_config(stream, Some(config(options)))
            .await
            .map_err(|e| upgrade_error(addr, e))
    })
    .await?;
    Ok(session(ws, options))
}

/// A bound TCP address on which one role accepts WebSocket sessions.
///
/// Handshakes (the WebSocket upgrade and the role handshake) run
/// concurrently, with the limits of [`SessionListener`]; before its
/// handshake is done, a connection may send at most
/// [`MAX_PREHANDSHAKE_BYTES`].
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
        let listener = tcp::bind_listener(addr, options).await?;
        Self::from_listener(listener, local_role, options)
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
            inner: SessionListener::with_opener(listener, local_role, options, ws_opener)?,
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

    /// How many connections are in their handshake right now.
    pub fn pending_handshakes(&self) -> usize {
        self.inner.pending_handshakes()
    }

    /// Waits for the next completed handshake of a peer playing
    /// `peer_role`. As [`SessionListener::accept`], a refused peer makes
    /// this call fail; call it again to keep waiting.
    pub async fn accept(&self, peer_role: &str) -> Result<RumpsteakSession, TransportError> {
        self.inner.accept(peer_role).await
    }

    /// Accepts the next connection from any of `peer_roles`, returning the
    /// role that connected with its session.
    pub async fn accept_any(
        &self,
        peer_roles: &[&str],
    ) -> Result<(String, RumpsteakSession), TransportError> {
        self.inner.accept_any(peer_roles).await
    }

    pub(crate) async fn accept_checked(&self, allow: &mut crate::handshake::Allow<'_>) -> Accepted {
        self.inner.accept_checked(allow).await
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

/// Caps the bytes read from a stream until the handshake is done
/// ([`MAX_PREHANDSHAKE_BYTES`]); then it only passes bytes through.
struct Budget<S> {
    inner: S,
    left: Arc<AtomicUsize>,
}

/// Lifts the cap of a [`Budget`] once the handshake is done.
struct Lift(Arc<AtomicUsize>);

impl Lift {
    fn lift(&self) {
        self.0.store(usize::MAX, Ordering::Relaxed);
    }
}

impl<S> Budget<S> {
    fn new(inner: S) -> (Lift, Self) {
        let left = Arc::new(AtomicUsize::new(MAX_PREHANDSHAKE_BYTES));
        (Lift(Arc::clone(&left)), Budget { inner, left })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Budget<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.left.load(Ordering::Relaxed);
        if left == usize::MAX {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        if left == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the peer sent more than {MAX_PREHANDSHAKE_BYTES} bytes before its handshake was done"
                ),
            )));
        }
        // Read at most what is left, through a small buffer of our own
        // (only until the handshake is done).
        let mut scratch = [0u8; 2048];
        let room = buf.remaining().min(left).min(scratch.len());
        let mut limited = ReadBuf::new(&mut scratch[..room]);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = &polled {
            let n = limited.filled().len();
            buf.put_slice(limited.filled());
            self.left.fetch_sub(n, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budget<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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

/// A send error as the session reports it: tungstenite's I/O failures stay
/// I/O errors (kind `Io`, as over TCP), the rest are kind `Other`.
type SendError = Box<dyn std::error::Error + Send + Sync>;

fn send_error(e: WsError) -> SendError {
    match e {
        WsError::Io(io) => Box::new(io),
        other => Box::new(other),
    }
}

impl<S: Socket> Sink<Vec<u8>> for BinarySink<S> {
    type Error = SendError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        match &mut self.inner {
            Some(sink) => sink.poll_ready_unpin(cx).map_err(send_error),
            None => Poll::Ready(Err(send_error(gone()))),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Vec<u8>) -> Result<(), SendError> {
        match &mut self.inner {
            Some(sink) => sink
                .start_send_unpin(Message::Binary(frame.into()))
                .map_err(send_error),
            None => Err(send_error(gone())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        match &mut self.inner {
            Some(sink) => sink.poll_flush_unpin(cx).map_err(send_error),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        let Some(sink) = &mut self.inner else {
            return Poll::Ready(Ok(()));
        };
        let done = sink.poll_close_unpin(cx);
        if done.is_ready() {
            self.closed = true;
        }
        done.map_err(send_error)
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
