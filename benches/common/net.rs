//! The network rows' setups and loops, shared by the `tls` and `quic`
//! benches and the `net_ratio` binary, so that the criterion rows and the
//! alternating samples time the same work.
//!
//! Each side of a pair is one connection; connection setup is outside the
//! timed part. A ping-pong round trip is: A sends a frame of `size` bytes,
//! B echoes it, A reads the echo.

use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::quic::{self, ALPN, QuicListener};
use rumpsteak_aura_choreography::transport::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_choreography::transport::tls::rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::certs::{Certs, RawTls};
use crate::{Clock, Flavor, ok, run_pair_on};

/// Port 0 on the IPv4 loopback.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A raw TLS client stream with the benches' framing.
pub type RawClient = RawTls<tokio_rustls::client::TlsStream<TcpStream>>;
/// A raw TLS server stream with the benches' framing.
pub type RawServer = RawTls<tokio_rustls::server::TlsStream<TcpStream>>;
/// A raw QUIC bidirectional stream with the benches' framing.
pub type RawQuicStream = RawTls<tokio::io::Join<quinn::RecvStream, quinn::SendStream>>;

/// Session A to session B: `send_frame` and `recv_frame`, `iters` round
/// trips of `size` bytes, measured by `clock`.
pub fn session_pingpong(
    clock: Clock,
    rt: &Runtime,
    flavor: Flavor,
    (mut a, mut b): (RumpsteakSession, RumpsteakSession),
    size: usize,
    iters: u64,
) -> Duration {
    let first = async move {
        for _ in 0..iters {
            ok(a.send_frame(vec![7; size]).await);
            black_box(ok(a.recv_frame().await));
        }
    };
    let second = async move {
        for _ in 0..iters {
            let frame = ok(b.recv_frame().await);
            ok(b.send_frame(frame).await);
        }
    };
    run_pair_on(clock, rt, flavor, first, second)
}

/// The raw baselines' round-trip loop: A sends `size` bytes and reads the
/// echo, `iters` times, over framing by hand.
struct RawRun {
    clock: Clock,
    flavor: Flavor,
    size: usize,
    iters: u64,
}

impl RawRun {
    /// Times the loop between `a` and `b`; each side then runs its `done`.
    fn time<SA, SB>(
        self,
        rt: &Runtime,
        mut a: RawTls<SA>,
        mut b: RawTls<SB>,
        a_done: impl Future<Output = ()> + Send + 'static,
        b_done: impl Future<Output = ()> + Send + 'static,
    ) -> Duration
    where
        SA: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        SB: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let RawRun {
            clock,
            flavor,
            size,
            iters,
        } = self;
        let first = async move {
            let frame = vec![7; size];
            for _ in 0..iters {
                a.send(&frame).await;
                black_box(a.recv().await);
            }
            a_done.await;
        };
        let second = async move {
            for _ in 0..iters {
                let frame = b.recv().await;
                b.send(&frame).await;
            }
            b_done.await;
        };
        run_pair_on(clock, rt, flavor, first, second)
    }
}

/// A `Debug` that names the type and nothing else: its fields (listeners,
/// TLS configurations) print nothing useful.
macro_rules! opaque_debug {
    ($($ty:ident),*) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    )*};
}

opaque_debug!(TlsEnds, RawQuic, QuicSessions);

/// What the TLS rows need on one runtime: a raw listener and a session
/// listener for B, bound once, and A's side of each.
pub struct TlsEnds {
    raw_listener: TcpListener,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
    session_listener: SessionListener,
    options_a: TcpOptions,
}

impl TlsEnds {
    /// Binds both listeners on `rt`.
    pub fn new(rt: &Runtime, certs: &Certs) -> TlsEnds {
        rt.block_on(async {
            let options_b = certs.session_options("B");
            TlsEnds {
                raw_listener: ok(TcpListener::bind(loopback()).await),
                connector: TlsConnector::from(certs.raw_client()),
                acceptor: TlsAcceptor::from(certs.raw_server()),
                session_listener: ok(SessionListener::bind(loopback(), "B", &options_b).await),
                options_a: certs.session_options("A"),
            }
        })
    }

    /// A raw TLS connection: TCP connect and accept, then the TLS handshake.
    pub async fn raw_pair(&self) -> (RawClient, RawServer) {
        let addr = ok(self.raw_listener.local_addr());
        let dial = async {
            let tcp = ok(TcpStream::connect(addr).await);
            ok(tcp.set_nodelay(true));
            let name = ok(ServerName::try_from("rumpsteak-aura.invalid"));
            ok(self.connector.connect(name, tcp).await)
        };
        let accept = async {
            let (tcp, _) = ok(self.raw_listener.accept().await);
            ok(tcp.set_nodelay(true));
            ok(self.acceptor.accept(tcp).await)
        };
        let (a, b) = tokio::join!(dial, accept);
        (RawTls::new(a), RawTls::new(b))
    }

    /// A TLS session from A to B.
    pub async fn session_pair(&self) -> (RumpsteakSession, RumpsteakSession) {
        session_pair(&self.session_listener, &self.options_a).await
    }

    /// `iters` raw TLS round trips of `size` bytes on a new connection,
    /// measured by `clock`.
    pub fn raw_pingpong(
        &self,
        clock: Clock,
        rt: &Runtime,
        flavor: Flavor,
        size: usize,
        iters: u64,
    ) -> Duration {
        let (a, b) = rt.block_on(self.raw_pair());
        let run = RawRun {
            clock,
            flavor,
            size,
            iters,
        };
        run.time(rt, a, b, async {}, async {})
    }

    /// `iters` TLS session round trips of `size` bytes on a new session,
    /// measured by `clock`.
    pub fn session_pingpong(
        &self,
        clock: Clock,
        rt: &Runtime,
        flavor: Flavor,
        size: usize,
        iters: u64,
    ) -> Duration {
        session_pingpong(
            clock,
            rt,
            flavor,
            rt.block_on(self.session_pair()),
            size,
            iters,
        )
    }
}

/// A session from A to B through `listener`, dialed with `options`.
pub async fn session_pair(
    listener: &SessionListener,
    options: &TcpOptions,
) -> (RumpsteakSession, RumpsteakSession) {
    let addr = listener.local_addr();
    let (a, b) = tokio::join!(tcp::connect(addr, "A", "B", options), listener.accept("A"));
    (ok(a), ok(b))
}

/// The raw QUIC baseline's two endpoints, made once per runtime.
pub struct RawQuic {
    server: quinn::Endpoint,
    client: quinn::Endpoint,
    client_config: quinn::ClientConfig,
}

/// One end of a raw QUIC pair: the stream, and its connection, which
/// lives as long as the stream.
pub type RawQuicEnd = (RawQuicStream, quinn::Connection);

impl RawQuic {
    /// Both endpoints, with the certificates of `certs` and the sessions'
    /// ALPN; must be called inside the runtime that will drive them.
    pub fn new(certs: &Certs) -> RawQuic {
        let mut server_tls = (*certs.raw_server()).clone();
        server_tls.alpn_protocols = vec![ALPN.to_vec()];
        let server_crypto = ok(quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(
            server_tls,
        )));
        let server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        let mut client_tls = (*certs.raw_client()).clone();
        client_tls.alpn_protocols = vec![ALPN.to_vec()];
        let client_crypto = ok(quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(
            client_tls,
        )));
        RawQuic {
            server: ok(quinn::Endpoint::server(server_config, loopback())),
            client: ok(quinn::Endpoint::client(loopback())),
            client_config: quinn::ClientConfig::new(Arc::new(client_crypto)),
        }
    }

    /// One connection and its stream, both ends.
    pub async fn pair(&self) -> (RawQuicEnd, RawQuicEnd) {
        let addr = ok(self.server.local_addr());
        let dial = async {
            let conn = ok(ok(self
                .client
                .connect_with(self.client_config.clone(), addr, "b"))
            .await);
            let (send, recv) = ok(conn.open_bi().await);
            (send, recv, conn)
        };
        let accept = async {
            let incoming = ok(self.server.accept().await.ok_or("endpoint closed"));
            ok(ok(incoming.accept()).await)
        };
        let ((send, recv, a_conn), b_conn) = tokio::join!(dial, accept);
        // A stream shows at the listener with its first bytes: the dialer
        // sends an empty frame, which the listener reads, before the run.
        let mut a = RawTls::new(tokio::io::join(recv, send));
        let b_streams = async { ok(b_conn.accept_bi().await) };
        let ((), (b_send, b_recv)) = tokio::join!(a.send(&[]), b_streams);
        let mut b = RawTls::new(tokio::io::join(b_recv, b_send));
        black_box(b.recv().await);
        ((a, a_conn), (b, b_conn))
    }

    /// `iters` raw QUIC round trips of `size` bytes on a new connection,
    /// measured by `clock`.
    pub fn pingpong(
        &self,
        clock: Clock,
        rt: &Runtime,
        flavor: Flavor,
        size: usize,
        iters: u64,
    ) -> Duration {
        let ((a, a_conn), (b, b_conn)) = rt.block_on(self.pair());
        let run = RawRun {
            clock,
            flavor,
            size,
            iters,
        };
        // Dropping B's connection as soon as its loop ends would discard
        // the last echo before A has it: B waits for A to close first.
        run.time(rt, a, b, async move { drop(a_conn) }, async move {
            b_conn.closed().await;
        })
    }
}

/// The QUIC sessions' listener for B and A's options.
pub struct QuicSessions {
    listener: QuicListener,
    options_a: TcpOptions,
}

impl QuicSessions {
    /// Binds B's listener on `rt`.
    pub fn new(rt: &Runtime, certs: &Certs) -> QuicSessions {
        let _guard = rt.enter();
        QuicSessions {
            listener: ok(QuicListener::bind(
                loopback(),
                "B",
                &certs.session_options("B"),
            )),
            options_a: certs.session_options("A"),
        }
    }

    /// A QUIC session from A to B.
    pub async fn pair(&self) -> (RumpsteakSession, RumpsteakSession) {
        let addr = self.listener.local_addr();
        let (a, b) = tokio::join!(
            quic::connect(addr, "A", "B", &self.options_a),
            self.listener.accept("A")
        );
        (ok(a), ok(b))
    }

    /// `iters` QUIC session round trips of `size` bytes on a new session,
    /// measured by `clock`.
    pub fn pingpong(
        &self,
        clock: Clock,
        rt: &Runtime,
        flavor: Flavor,
        size: usize,
        iters: u64,
    ) -> Duration {
        session_pingpong(clock, rt, flavor, rt.block_on(self.pair()), size, iters)
    }
}
