//! QUIC over loopback UDP: what a session over QUIC costs against quinn
//! used by hand, with the same certificates (one throwaway CA, an ECDSA
//! P-256 certificate per role; see `common/certs.rs`), the same `ring`
//! provider, mutual authentication, the same ALPN, one bidirectional stream
//! per connection and the same framing (a big-endian `u32` length prefix).
//!
//! `quic_pingpong/<runtime>`: A sends a frame, B echoes it; time per round
//! trip, for 16 bytes and 16 KiB:
//!
//! - `raw_quinn_<size>`: the baseline, quinn's streams behind a
//!   `BufReader`, the prefix and the frame written and flushed by hand;
//! - `session_<size>`: `send_frame` and `recv_frame` of a `RumpsteakSession`
//!   from `quic::connect`.
//!
//! `quic_handshake`: one connection set up on the current-thread runtime:
//! `raw_quinn` connects, accepts and opens the stream (each side checks the
//! other's chain against the CA); `session` runs `quic::connect` and
//! `QuicListener::accept`: the QUIC handshake with the listener checked in
//! it, the address-validation retry, the dialer's chain and role checks,
//! and the role handshake.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::certs::{Certs, RawTls};
use rumpsteak_aura_benches::{Flavor, ok, run_pair, time_setups};
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::quic::{self, ALPN, QuicListener};
use rumpsteak_aura_choreography::transport::tcp::TcpOptions;
use tokio::runtime::Runtime;

const SIZES: [(&str, usize); 2] = [("16B", 16), ("16KiB", 16 * 1024)];

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

type RawStream = RawTls<tokio::io::Join<quinn::RecvStream, quinn::SendStream>>;

/// The raw baseline's two endpoints, made once per runtime.
struct Raw {
    server: quinn::Endpoint,
    client: quinn::Endpoint,
    client_config: quinn::ClientConfig,
}

impl Raw {
    fn new(certs: &Certs) -> Raw {
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
        Raw {
            server: ok(quinn::Endpoint::server(server_config, loopback())),
            client: ok(quinn::Endpoint::client(loopback())),
            client_config: quinn::ClientConfig::new(Arc::new(client_crypto)),
        }
    }

    /// One connection and its stream, both ends. The connections stay
    /// alive as long as the streams (dropped together after the run).
    async fn pair(
        &self,
    ) -> (
        (RawStream, quinn::Connection),
        (RawStream, quinn::Connection),
    ) {
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
}

struct Sessions {
    listener: QuicListener,
    options_a: TcpOptions,
}

impl Sessions {
    fn new(rt: &Runtime, certs: &Certs) -> Sessions {
        let _guard = rt.enter();
        Sessions {
            listener: ok(QuicListener::bind(
                loopback(),
                "B",
                &certs.session_options("B"),
            )),
            options_a: certs.session_options("A"),
        }
    }

    async fn pair(&self) -> (RumpsteakSession, RumpsteakSession) {
        let addr = self.listener.local_addr();
        let (a, b) = tokio::join!(
            quic::connect(addr, "A", "B", &self.options_a),
            self.listener.accept("A")
        );
        (ok(a), ok(b))
    }
}

fn quic_pingpong(c: &mut Criterion) {
    let certs = Certs::new();
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let raw = {
            let _guard = rt.enter();
            Raw::new(&certs)
        };
        let sessions = Sessions::new(&rt, &certs);
        let mut group = c.benchmark_group(format!("quic_pingpong/{}", flavor.name()));
        for (name, size) in SIZES {
            group.bench_function(format!("raw_quinn_{name}"), |b| {
                b.iter_custom(|iters| {
                    let ((mut a, a_conn), (mut bb, b_conn)) = rt.block_on(raw.pair());
                    let first = async move {
                        let frame = vec![7; size];
                        for _ in 0..iters {
                            a.send(&frame).await;
                            black_box(a.recv().await);
                        }
                        drop(a_conn);
                    };
                    let second = async move {
                        for _ in 0..iters {
                            let frame = bb.recv().await;
                            bb.send(&frame).await;
                        }
                        // Dropping the connection now would discard the last
                        // echo before A has it: wait for A to close first.
                        b_conn.closed().await;
                    };
                    run_pair(&rt, flavor, first, second)
                })
            });
            group.bench_function(format!("session_{name}"), |b| {
                b.iter_custom(|iters| {
                    let (mut a, mut bb) = rt.block_on(sessions.pair());
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

fn quic_handshake(c: &mut Criterion) {
    let certs = Certs::new();
    let rt = Flavor::CurrentThread.runtime();
    let raw = {
        let _guard = rt.enter();
        Raw::new(&certs)
    };
    let sessions = Sessions::new(&rt, &certs);
    let mut group = c.benchmark_group("quic_handshake");
    group.bench_function("raw_quinn", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || raw.pair()))
    });
    group.bench_function("session", |b| {
        b.iter_custom(|iters| time_setups(&rt, iters, || sessions.pair()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = quic_pingpong, quic_handshake
}
criterion_main!(benches);
