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
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rumpsteak_aura_benches::{Flavor, ok, run_pair};
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_choreography::transport::tls::dev::{DevCa, Issued};
use rumpsteak_aura_choreography::transport::tls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
    client::WebPkiServerVerifier,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::WebPkiClientVerifier,
};
use rumpsteak_aura_choreography::transport::tls::{TlsConfig, Trust};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The frame sizes of the ping-pong rows.
const SIZES: [(&str, usize); 2] = [("16B", 16), ("16KiB", 16 * 1024)];

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of one run: a CA, and one certificate for A (the
/// dialer) and one for B (the listener), used by every row.
struct Certs {
    ca: DevCa,
    a: Issued,
    b: Issued,
}

impl Certs {
    fn new() -> Certs {
        let ca = ok(DevCa::new("bench CA"));
        let a = ok(ca.issue(&["A"]));
        let b = ok(ca.issue(&["B"]));
        Certs { ca, a, b }
    }

    fn trust(&self) -> Trust {
        ok(Trust::anchors([self.ca.cert().clone()]))
    }

    /// The session options of `role` over TLS.
    fn session_options(&self, role: &str) -> TcpOptions {
        let issued = if role == "A" { &self.a } else { &self.b };
        let identity = ok(TlsConfig::new(
            role,
            vec![issued.cert.clone()],
            issued.key(),
            self.trust(),
        ));
        TcpOptions::new().with_tls(identity)
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        ok(roots.add(self.ca.cert().clone()));
        Arc::new(roots)
    }

    /// The raw dialer's rustls configuration: A's certificate, and B's
    /// chain checked against the CA.
    fn raw_client(&self) -> Arc<ClientConfig> {
        let chain =
            ok(WebPkiServerVerifier::builder_with_provider(self.roots(), provider()).build());
        let mut config = ok(ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13]))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
        .with_client_auth_cert(vec![self.a.cert.clone()], self.a.key());
        // As the session's dialer: no host name to send.
        if let Ok(config) = &mut config {
            config.enable_sni = false;
        }
        Arc::new(ok(config))
    }

    /// The raw listener's rustls configuration: B's certificate, and a
    /// client certificate required and checked against the CA.
    fn raw_server(&self) -> Arc<ServerConfig> {
        let clients =
            ok(WebPkiClientVerifier::builder_with_provider(self.roots(), provider()).build());
        let config = ok(ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13]))
        .with_client_cert_verifier(clients)
        .with_single_cert(vec![self.b.cert.clone()], self.b.key());
        Arc::new(ok(config))
    }
}

/// rustls's server-certificate check without the host-name part: the chain
/// is checked against the CA first, then the name, which a certificate
/// naming a role by URI never matches. The same work as the session's
/// chain check.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One end of the raw baseline: a TLS stream, length-prefixed frames by
/// hand.
struct RawTls<S> {
    io: BufReader<S>,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawTls<S> {
    fn new(stream: S) -> Self {
        RawTls {
            io: BufReader::new(stream),
            out: Vec::new(),
        }
    }

    async fn send(&mut self, frame: &[u8]) {
        self.out.clear();
        self.out
            .extend_from_slice(&ok(u32::try_from(frame.len())).to_be_bytes());
        self.out.extend_from_slice(frame);
        ok(self.io.write_all(&self.out).await);
        ok(self.io.flush().await);
    }

    async fn recv(&mut self) -> Vec<u8> {
        let len = ok(self.io.read_u32().await) as usize;
        let mut frame = vec![0; len];
        ok(self.io.read_exact(&mut frame).await);
        frame
    }
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

/// Times `iters` connection setups made by `setup`, each result dropped
/// after its time is taken.
fn time_setups<T, F>(rt: &Runtime, iters: u64, mut setup: impl FnMut() -> F) -> Duration
where
    F: Future<Output = T>,
{
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let made = setup().await;
            total += start.elapsed();
            drop(black_box(made));
        }
        total
    })
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
