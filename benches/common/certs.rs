//! The certificates and the raw TLS baseline the TLS and QUIC benches
//! share: one throwaway CA, a certificate for A (the dialer) and one for B
//! (the listener), the rustls configurations of the raw baselines, and a
//! raw length-prefixed framing over any byte stream.

use std::sync::Arc;

use rumpsteak_aura_choreography::transport::tcp::TcpOptions;
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

use crate::ok;

/// The provider of every bench: ring, as rumpsteak-aura-net uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of one run: a CA, and one certificate for A (the
/// dialer) and one for B (the listener), used by every row.
#[derive(Debug)]
pub struct Certs {
    ca: DevCa,
    a: Issued,
    b: Issued,
}

impl Default for Certs {
    fn default() -> Self {
        Self::new()
    }
}

impl Certs {
    /// A new CA and the certificates of A and B.
    pub fn new() -> Certs {
        let ca = ok(DevCa::new("bench CA"));
        let a = ok(ca.issue(&["A"]));
        let b = ok(ca.issue(&["B"]));
        Certs { ca, a, b }
    }

    /// Trust in the CA.
    pub fn trust(&self) -> Trust {
        ok(Trust::anchors([self.ca.cert().clone()]))
    }

    /// The session options of `role` over TLS.
    pub fn session_options(&self, role: &str) -> TcpOptions {
        let issued = if role == "A" { &self.a } else { &self.b };
        let identity = ok(TlsConfig::new(
            role,
            vec![issued.cert.clone()],
            issued.key(),
            self.trust(),
        ));
        TcpOptions::new().with_tls(identity)
    }

    /// The CA as rustls roots.
    pub fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        ok(roots.add(self.ca.cert().clone()));
        Arc::new(roots)
    }

    /// The raw dialer's rustls configuration: A's certificate, and B's
    /// chain checked against the CA.
    pub fn raw_client(&self) -> Arc<ClientConfig> {
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
    pub fn raw_server(&self) -> Arc<ServerConfig> {
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
pub struct ChainOnly(Arc<WebPkiServerVerifier>);

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
#[derive(Debug)]
pub struct RawTls<S> {
    io: BufReader<S>,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawTls<S> {
    /// Frames over `stream`.
    pub fn new(stream: S) -> Self {
        RawTls {
            io: BufReader::new(stream),
            out: Vec::new(),
        }
    }

    /// Writes one frame and flushes.
    pub async fn send(&mut self, frame: &[u8]) {
        self.out.clear();
        self.out
            .extend_from_slice(&ok(u32::try_from(frame.len())).to_be_bytes());
        self.out.extend_from_slice(frame);
        ok(self.io.write_all(&self.out).await);
        ok(self.io.flush().await);
    }

    /// Reads one frame.
    pub async fn recv(&mut self) -> Vec<u8> {
        let len = ok(self.io.read_u32().await) as usize;
        let mut frame = vec![0; len];
        ok(self.io.read_exact(&mut frame).await);
        frame
    }
}
