//! TLS 1.3 over loopback TCP: what a session over TLS costs against
//! tokio-rustls used by hand, with the same certificates (one throwaway CA,
//! an ECDSA P-256 certificate per role), the same `ring` provider, TLS 1.3
//! only, mutual authentication, one TLS stream per connection and the same
//! framing (a big-endian `u32` length prefix).
//!
//! `tls_pingpong/<runtime>`: A sends a frame, B echoes it; time per round
//! trip, for a small frame (16 bytes) and a large one (16 KiB):
//!
//! - `raw_tls_<size>`: the baseline, a `tokio_rustls` stream (`TCP_NODELAY`)
//!   behind a `BufReader`, the prefix and the frame written and flushed by
//!   hand;
//! - `session_<size>`: `send_frame` and `recv_frame` of a `RumpsteakSession`
//!   from `tcp::connect` with `TcpOptions::with_tls`.
//!
//! Connection setup is outside the timed part.
//!
//! `tls_handshake`: one connection set up, from the dialer's first byte to
//! both sides holding a usable stream, on the current-thread runtime (the
//! two sides' CPU work adds up, whatever the machine's load):
//!
//! - `raw_tls`: TCP connect and accept, then `TlsConnector::connect` and
//!   `TlsAcceptor::accept` (each side checks the other's chain against the
//!   CA, as the session does; the name check has nothing to check, as
//!   roles are named by URI);
//! - `session_tls`: `tcp::connect` and `SessionListener::accept` over TLS:
//!   the TLS handshake, the chain and role checks, the role handshake;
//! - `session_plain`: the same without TLS, to show what TLS adds.
//!
//! The sessions are dropped outside the timed part.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::certs::{Certs, RawTls};
use rumpsteak_aura_benches::{Flavor, ok, run_pair, time_setups};
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_choreography::transport::tls::rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The frame sizes of the ping-pong rows.
const SIZES: [(&str, usize); 2] = [("16B", 16), ("16KiB", 16 * 1024)];

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

type RawClient = RawTls<tokio_rustls::client::TlsStream<TcpStream>>;
type RawServer = RawTls<tokio_rustls::server::TlsStream<TcpStream>>;

/// A raw TLS connection: TCP connect and accept, then the TLS handshake.
async fn raw_pair(
    listener: &TcpListener,
    connector: &TlsConnector,
    acceptor: &TlsAcceptor,
) -> (RawClient, RawServer) {
    let addr = ok(listener.local_addr());
    let dial = async {
        let tcp = ok(TcpStream::connect(addr).await);
        ok(tcp.set_nodelay(true));
        let name = ok(ServerName::try_from("rumpsteak-aura.invalid"));
        ok(connector.connect(name, tcp).await)
    };
    let accept = async {
        let (tcp, _) = ok(listener.accept().await);
        ok(tcp.set_nodelay(true));
        ok(acceptor.accept(tcp).await)
    };
    let (a, b) = tokio::join!(dial, accept);
    (RawTls::new(a), RawTls::new(b))
}

/// A session from A to B over `b`.
async fn session_pair(
    listener: &SessionListener,
    options: &TcpOptions,
) -> (RumpsteakSession, RumpsteakSession) {
    let addr = listener.local_addr();
    let (a, b) = tokio::join!(tcp::connect(addr, "A", "B", options), listener.accept("A"));
    (ok(a), ok(b))
}

/// What the ping-pong rows need on one runtime: a raw listener and a
/// session listener, bound once.
struct Endpoints {
    raw_listener: TcpListener,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
    session_listener: SessionListener,
    options_a: TcpOptions,
}

impl Endpoints {
    fn new(rt: &Runtime, certs: &Certs) -> Endpoints {
        rt.block_on(async {
            let options_b = certs.session_options("B");
            Endpoints {
                raw_listener: ok(TcpListener::bind(loopback()).await),
                connector: TlsConnector::from(certs.raw_client()),
                acceptor: TlsAcceptor::from(certs.raw_server()),
                session_listener: ok(SessionListener::bind(loopback(), "B", &options_b).await),
                options_a: certs.session_options("A"),
            }
        })
    }
}

fn tls_pingpong(c: &mut Criterion) {
    let certs = Certs::new();
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let ends = Endpoints::new(&rt, &certs);
        let mut group = c.benchmark_group(format!("tls_pingpong/{}", flavor.name()));

        for (name, size) in SIZES {
            group.bench_function(format!("raw_tls_{name}"), |b| {
                b.iter_custom(|iters| {
                    let (mut a, mut bb) = rt.block_on(raw_pair(
                        &ends.raw_listener,
                        &ends.connector,
                        &ends.acceptor,
                    ));
                    let first = async move {
                        let frame = vec![7; size];
                        for _ in 0..iters {
                            a.send(&frame).await;
                            black_box(a.recv().await);
                        }
                    };
                    let second = async move {
                        for _ in 0..iters {
                            let frame = bb.recv().await;
                            bb.send(&frame).await;
                        }
                    };
                    run_pair(&rt, flavor, first, second)
                })
            });

            group.bench_function(format!("session_{name}"), |b| {
                b.iter_custom(|iters| {
                    let (mut a, mut bb) =
                        rt.block_on(session_pair(&ends.session_listener, &ends.options_a));
                    let first = async move {
                        for _ in 0..iters {
                            ok(a.send_frame(vec![7; size]).await);
                            black_box(ok(a.recv_frame().await));
                        }
                    };
                    let second = async move {
                        for _ in 0..iters {
                            let frame = ok(bb.recv_frame().await);
                            ok(bb.send_frame(frame).await);
                        }
                    };
                    run_pair(&rt, flavor, first, second)
                })
            });
        }
        group.finish();
    }
}

fn tls_handshake(c: &mut Criterion) {
    let certs = Certs::new();
    let rt = Flavor::CurrentThread.runtime();
    let ends = Endpoints::new(&rt, &certs);
    let plain = TcpOptions::new();
    let plain_listener =
        rt.block_on(async { ok(SessionListener::bind(loopback(), "B", &plain).await) });

    let mut group = c.benchmark_group("tls_handshake");
    group.bench_function("raw_tls", |b| {
        b.iter_custom(|iters| {
            time_setups(&rt, iters, || {
                raw_pair(&ends.raw_listener, &ends.connector, &ends.acceptor)
            })
        })
    });
    group.bench_function("session_tls", |b| {
        b.iter_custom(|iters| {
            time_setups(&rt, iters, || {
                session_pair(&ends.session_listener, &ends.options_a)
            })
        })
    });
    group.bench_function("session_plain", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || session_pair(&plain_listener, &plain)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = tls_pingpong, tls_handshake
}
criterion_main!(benches);
