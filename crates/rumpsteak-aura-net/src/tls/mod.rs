//! TLS 1.3 with role identities (feature `tls`).
//!
//! With a [`TlsConfig`] in its options ([`TcpOptions::with_tls`]), every
//! TCP and WebSocket session (and every session of a
//! [`Mesh`](crate::tcp::Mesh)) runs over TLS 1.3, and each side proves
//! which role it plays with its certificate:
//!
//! - the dialer checks that the listener's certificate names the role it
//!   dialed;
//! - the listener requires a certificate from the dialer and checks that
//!   it names the role the dialer claims in its hello.
//!
//! # Naming roles in certificates
//!
//! A certificate proves role `R` when its subject alternative names hold
//! the URI `urn:rumpsteak-aura:role:R` ([`role_uri`]), where every byte of
//! `R` outside `A-Z a-z 0-9 - . _ ~` is percent-encoded (`Worker 1` is
//! `urn:rumpsteak-aura:role:Worker%201`). Names are case-sensitive. One
//! certificate may name several roles; the subject and any DNS names are
//! ignored. A role uses one certificate both to listen and to dial, so its
//! extended key usage, if present, must allow both server and client
//! authentication.
//!
//! # Whom to trust
//!
//! - [`Trust::anchors`]: certificates that chain to one of these CA
//!   certificates, and are within their validity period, are believed for
//!   the roles they name. The usual choice: one private CA per deployment
//!   that signs each role's certificate.
//! - [`Trust::pinned`]: for small deployments without a CA, a table of the
//!   public key each role must present. Each role's certificate is then
//!   self-signed; its validity period is checked, and it proves only the
//!   roles whose pinned key it carries.
//!
//! # What happens when a check fails
//!
//! Both sides get a [`Refused`](rumpsteak_aura::TransportErrorKind::Refused)
//! error naming the expected and the presented identity, the connection is
//! closed, and no frame of the protocol is exchanged. So that the refused
//! side learns why, certificate checks are made as soon as the TLS
//! handshake is done (the handshake itself only checks that each side holds
//! the key of the certificate it sent) and their verdict travels, encrypted,
//! in the role handshake; nothing is read from or sent to the peer before
//! that verdict except the refusal. A plain-text dialer at a TLS listener,
//! or a TLS dialer at a plain one, is refused in its own language.
//!
//! # Crypto provider
//!
//! rustls runs on the `ring` provider, passed explicitly
//! ([`TlsConfig::with_provider`] takes another): this crate never installs
//! a process-wide default.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rumpsteak_aura::{Refusal, RefusalReason, TransportError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::handshake::{self, Escaped, MAX_HANDSHAKE_FRAME};

#[cfg(feature = "dev-certs")]
pub mod dev;
use crate::tcp::{TcpOptions, within_handshake_timeout};

/// rustls and its helper crates, re-exported so that certificates and keys
/// can be built with the same versions of their types.
pub use rustls;

/// The prefix of the URI that names a role in a certificate.
pub const ROLE_URI_PREFIX: &str = "urn:rumpsteak-aura:role:";

/// The URI a certificate's subject alternative names must hold to prove
/// `role`.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_net::tls::role_uri;
///
/// assert_eq!(role_uri("Buyer"), "urn:rumpsteak-aura:role:Buyer");
/// assert_eq!(role_uri("Worker[3]"), "urn:rumpsteak-aura:role:Worker%5B3%5D");
/// ```
pub fn role_uri(role: &str) -> String {
    let mut uri = String::with_capacity(ROLE_URI_PREFIX.len() + role.len());
    uri.push_str(ROLE_URI_PREFIX);
    for b in role.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// The role a URI names, if it is a role URI whose escapes decode to
/// UTF-8.
fn role_from_uri(uri: &str) -> Option<String> {
    let encoded = uri.strip_prefix(ROLE_URI_PREFIX)?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let [b, tail @ ..] = rest {
        if *b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(*b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A TLS configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM input holds nothing usable.
    #[error("{what}: {reason}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate or key cannot be used (unparsable, or a key that
    /// does not match the certificate).
    #[error("certificate or key: {0}")]
    Key(String),
    /// The certificate does not name the role it is meant for.
    #[error("the certificate does not name role `{role}` (it names {names})")]
    NotForRole {
        /// The role of the identity.
        role: String,
        /// The roles the certificate names, as text.
        names: String,
    },
    /// A trust anchor or pinned certificate cannot be read.
    #[error("trust: {0}")]
    Trust(String),
}

/// Whom a side believes: CA certificates, or a pinned key per role.
#[derive(Clone)]
pub struct Trust(TrustKind);

#[derive(Clone)]
enum TrustKind {
    Anchors(Arc<[TrustAnchor<'static>]>),
    /// Role, and the DER `SubjectPublicKeyInfo` it must present.
    Pinned(Arc<[(String, Vec<u8>)]>),
}

impl Trust {
    /// Trusts certificates that chain to one of `ca_certs`.
    pub fn anchors(
        ca_certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, TlsConfigError> {
        let anchors = ca_certs
            .into_iter()
            .map(|cert| {
                webpki::anchor_from_trusted_cert(&cert)
                    .map(|a| a.to_owned())
                    .map_err(|e| TlsConfigError::Trust(format!("CA certificate: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if anchors.is_empty() {
            return Err(TlsConfigError::Trust("no CA certificate given".into()));
        }
        Ok(Trust(TrustKind::Anchors(anchors.into())))
    }

    /// Trusts certificates that chain to one of the CA certificates in
    /// `pem`.
    pub fn anchors_pem(pem: &[u8]) -> Result<Self, TlsConfigError> {
        Self::anchors(certs_from_pem("CA certificates", pem)?)
    }

    /// Trusts, for each role, the self-signed certificate carrying the
    /// public key of that role's certificate in `certs`.
    pub fn pinned<'a>(
        certs: impl IntoIterator<Item = (&'a str, &'a CertificateDer<'a>)>,
    ) -> Result<Self, TlsConfigError> {
        let pins = certs
            .into_iter()
            .map(|(role, cert)| {
                let parsed = webpki::EndEntityCert::try_from(cert).map_err(|e| {
                    TlsConfigError::Trust(format!("pinned certificate of `{role}`: {e}"))
                })?;
                Ok((
                    role.to_string(),
                    parsed.subject_public_key_info().as_ref().to_vec(),
                ))
            })
            .collect::<Result<Vec<_>, TlsConfigError>>()?;
        Ok(Trust(TrustKind::Pinned(pins.into())))
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TrustKind::Anchors(a) => write!(f, "Trust::anchors({} CA)", a.len()),
            TrustKind::Pinned(p) => {
                let roles: Vec<&str> = p.iter().map(|(r, _)| r.as_str()).collect();
                write!(f, "Trust::pinned({roles:?})")
            }
        }
    }
}

fn certs_from_pem(
    what: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Pem {
            what,
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// One role's TLS identity and whom it trusts: what
/// [`TcpOptions::with_tls`] takes.
///
/// Cheap to clone. Two configurations are equal when they are clones of
/// one another.
#[derive(Clone)]
pub struct TlsConfig(Arc<Inner>);

struct Inner {
    role: String,
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl TlsConfig {
    /// The identity of `role`: its certificate chain (its own certificate
    /// first) and private key, and whom it trusts, on the `ring` provider.
    ///
    /// Fails if the certificate does not name `role`, or the key does not
    /// match it.
    pub fn new(
        role: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        trust: Trust,
    ) -> Result<Self, TlsConfigError> {
        Self::with_provider(
            Arc::new(rustls::crypto::ring::default_provider()),
            role,
            chain,
            key,
            trust,
        )
    }

    /// As [`new`](Self::new), with the chain and key in PEM.
    pub fn from_pem(
        role: &str,
        chain_pem: &[u8],
        key_pem: &[u8],
        trust: Trust,
    ) -> Result<Self, TlsConfigError> {
        let chain = certs_from_pem("certificate chain", chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsConfigError::Pem {
            what: "private key",
            reason: e.to_string(),
        })?;
        Self::new(role, chain, key, trust)
    }

    /// As [`new`](Self::new), on the given crypto provider.
    pub fn with_provider(
        provider: Arc<CryptoProvider>,
        role: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        trust: Trust,
    ) -> Result<Self, TlsConfigError> {
        let Some(leaf) = chain.first() else {
            return Err(TlsConfigError::Key("the certificate chain is empty".into()));
        };
        let names = roles_of(leaf).map_err(|e| TlsConfigError::Key(e.to_string()))?;
        if !names.iter().any(|n| n == role) {
            return Err(TlsConfigError::NotForRole {
                role: role.to_string(),
                names: describe_roles(&names),
            });
        }
        let certified = CertifiedKey::from_der(chain, key, &provider)
            .map_err(|e| TlsConfigError::Key(e.to_string()))?;
        let own = Arc::new(SingleCertAndKey::from(certified));
        let algorithms = provider.signature_verification_algorithms;
        let check = Arc::new(KeyPossession { algorithms });
        let versions = [&rustls::version::TLS13];

        let mut client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| TlsConfigError::Key(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(check.clone())
            .with_client_cert_resolver(own.clone());
        // Peers are named by role, not by host name.
        client.enable_sni = false;

        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| TlsConfigError::Key(e.to_string()))?
            .with_client_cert_verifier(check)
            .with_cert_resolver(own);

        Ok(TlsConfig(Arc::new(Inner {
            role: role.to_string(),
            trust,
            algorithms,
            client: Arc::new(client),
            server: Arc::new(server),
        })))
    }

    /// The role this identity proves.
    pub fn role(&self) -> &str {
        &self.0.role
    }

    /// The trust this side checks peers against.
    pub fn trust(&self) -> &Trust {
        &self.0.trust
    }

    /// Fails unless this identity is for `role`.
    pub(crate) fn check_role(&self, role: &str) -> Result<(), TransportError> {
        if self.0.role == role {
            return Ok(());
        }
        Err(TransportError::refused(
            Refusal::new(RefusalReason::CertificateRole, role, self.0.role.as_str())
                .with_detail("this side's own TLS identity is for another role"),
        ))
    }

    /// The client side of TLS on a dialed connection. Returns the halves
    /// of the encrypted stream and the verdict on the listener's
    /// certificate: the roles it proves, or why it is refused.
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        options: &TcpOptions,
    ) -> Result<Halves<client::TlsStream<Sniff<TcpStream>>>, TransportError> {
        let connector = TlsConnector::from(Arc::clone(&self.0.client));
        let name = ServerName::try_from("rumpsteak-aura.invalid")
            .map_err(|e| TransportError::other(e.to_string()))?;
        let mut sniffed = Vec::new();
        let tls = within_handshake_timeout(options, addr, async {
            match connector
                .connect(name, Sniff::new(stream))
                .into_fallible()
                .await
            {
                Ok(tls) => Ok(tls),
                Err((e, sniff)) => {
                    // What the peer sent instead of a TLS answer may be a
                    // plain listener's refusal.
                    sniffed = sniff.seen;
                    Err(tls_failure(e, addr))
                }
            }
        })
        .await;
        let mut tls = match tls {
            Ok(tls) => tls,
            Err(e) => return Err(handshake::plain_refusal(&sniffed, addr).unwrap_or(e)),
        };
        tls.get_mut().0.stop();
        let verdict = self.verify(tls.get_ref().1.peer_certificates(), Side::Listener);
        let (read, write) = tokio::io::split(tls);
        Ok(Halves {
            read,
            write,
            verdict,
        })
    }

    /// The server side of TLS on an accepted connection; as
    /// [`connect`](Self::connect), with the verdict on the dialer's
    /// certificate.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<Halves<server::TlsStream<TcpStream>>, TransportError> {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.0.server));
        let tls = acceptor
            .accept(stream)
            .await
            .map_err(|e| tls_failure(e, addr))?;
        let verdict = self.verify(tls.get_ref().1.peer_certificates(), Side::Dialer);
        let (read, write) = tokio::io::split(tls);
        Ok(Halves {
            read,
            write,
            verdict,
        })
    }

    /// The rustls client configuration, for transports that run TLS
    /// themselves (QUIC).
    #[cfg(feature = "quic")]
    pub(crate) fn rustls_client(&self) -> ClientConfig {
        (*self.0.client).clone()
    }

    /// The rustls server configuration, for transports that run TLS
    /// themselves (QUIC).
    #[cfg(feature = "quic")]
    pub(crate) fn rustls_server(&self) -> ServerConfig {
        (*self.0.server).clone()
    }

    /// The verdict on a listener's certificate chain, checked by a dialer.
    #[cfg(feature = "quic")]
    pub(crate) fn verify_listener(&self, chain: Option<&[CertificateDer<'_>]>) -> Verdict {
        self.verify(chain, Side::Listener)
    }

    /// The verdict on a dialer's certificate chain, checked by a listener.
    #[cfg(feature = "quic")]
    pub(crate) fn verify_dialer(&self, chain: Option<&[CertificateDer<'_>]>) -> Verdict {
        self.verify(chain, Side::Dialer)
    }

    /// Checks a peer's certificate chain against this side's trust: the
    /// roles it proves, or why it is refused.
    fn verify(&self, chain: Option<&[CertificateDer<'_>]>, side: Side) -> Verdict {
        let Some((leaf, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Err(Refusal::new(
                RefusalReason::NoCertificate,
                "a certificate",
                "no certificate",
            ));
        };
        let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| {
            Refusal::new(
                RefusalReason::UntrustedCertificate,
                "a readable certificate",
                "an unreadable certificate",
            )
            .with_detail(e.to_string())
        })?;
        let mut roles: Vec<String> = cert.valid_uri_names().filter_map(role_from_uri).collect();
        let presented = format!("certificate of {}", describe_roles(&roles));
        let usage = match side {
            Side::Listener => webpki::KeyUsage::server_auth(),
            Side::Dialer => webpki::KeyUsage::client_auth(),
        };
        let algs = self.0.algorithms.all;
        let now = UnixTime::now();
        match &self.0.trust.0 {
            TrustKind::Anchors(anchors) => {
                cert.verify_for_usage(algs, anchors, intermediates, now, usage, None, None)
                    .map_err(|e| {
                        chain_refusal(&e, "a certificate from a trusted CA", &presented)
                    })?;
            }
            TrustKind::Pinned(pins) => {
                // A pinned certificate is its own anchor: this checks its
                // signature and its validity period.
                let own = webpki::anchor_from_trusted_cert(leaf).map_err(|e| {
                    chain_refusal(&e, "a pinned self-signed certificate", &presented)
                })?;
                cert.verify_for_usage(algs, &[own], &[], now, usage, None, None)
                    .map_err(|e| {
                        chain_refusal(&e, "a pinned self-signed certificate", &presented)
                    })?;
                let key = cert.subject_public_key_info();
                roles.retain(|role| {
                    pins.iter()
                        .any(|(pinned, k)| pinned == role && k.as_slice() == key.as_ref())
                });
                if roles.is_empty() {
                    return Err(Refusal::new(
                        RefusalReason::UntrustedCertificate,
                        "a key pinned for the role",
                        format!("{presented} with a key pinned for none of them"),
                    ));
                }
            }
        }
        if roles.is_empty() {
            return Err(Refusal::new(
                RefusalReason::CertificateRole,
                "a certificate naming a role",
                presented,
            ));
        }
        Ok(roles)
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("role", &self.0.role)
            .field("trust", &self.0.trust)
            .finish_non_exhaustive()
    }
}

/// Which side's certificate is checked.
#[derive(Clone, Copy)]
enum Side {
    Listener,
    Dialer,
}

/// The roles a peer's certificate proves, or why it is refused.
pub(crate) type Verdict = Result<Vec<String>, Refusal>;

/// An encrypted stream split in two, with the verdict on the peer's
/// certificate.
pub(crate) struct Halves<S> {
    pub(crate) read: ReadHalf<S>,
    pub(crate) write: WriteHalf<S>,
    pub(crate) verdict: Verdict,
}

fn roles_of(cert: &CertificateDer<'_>) -> Result<Vec<String>, webpki::Error> {
    let parsed = webpki::EndEntityCert::try_from(cert)?;
    Ok(parsed.valid_uri_names().filter_map(role_from_uri).collect())
}

fn describe_roles(roles: &[String]) -> String {
    if roles.is_empty() {
        return "no role".to_string();
    }
    handshake::Names(roles).to_string()
}

fn chain_refusal(e: &webpki::Error, expected: &str, presented: &str) -> Refusal {
    let reason = match e {
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            RefusalReason::ExpiredCertificate
        }
        _ => RefusalReason::UntrustedCertificate,
    };
    Refusal::new(reason, expected, presented).with_detail(e.to_string())
}

/// A TLS failure that is not a verdict of this crate's checks: the peer
/// broke the TLS handshake or is not speaking TLS.
fn tls_failure(e: io::Error, addr: SocketAddr) -> TransportError {
    if e.kind() == io::ErrorKind::TimedOut || e.get_ref().is_none() {
        return crate::tcp::at_address("TLS handshake with", addr, e);
    }
    TransportError::handshake(format!(
        "TLS handshake with {addr} failed: {}",
        Escaped(&e.to_string())
    ))
}

/// The certificate checks made during the TLS handshake itself: only that
/// the peer holds the private key of the certificate it sent. Whether that
/// certificate is trusted, valid and of the right role is decided right
/// after the handshake ([`TlsConfig::verify`]), before any frame of the
/// role handshake is read or sent, so that the verdict can be told to the
/// peer; a connection whose verdict is a refusal carries nothing but that
/// refusal.
#[derive(Debug)]
struct KeyPossession {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for KeyPossession {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for KeyPossession {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Not mandatory in TLS: a dialer without a certificate is refused by
    /// the check after the handshake, which can tell it why.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(self, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(self, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Keeps the first bytes read from a stream while the TLS handshake runs,
/// so that a plain listener's refusal can be read from them.
pub(crate) struct Sniff<S> {
    inner: S,
    seen: Vec<u8>,
    recording: bool,
}

/// Enough for a length prefix and the largest handshake frame.
const SNIFF_LIMIT: usize = 4 + MAX_HANDSHAKE_FRAME;

impl<S> Sniff<S> {
    fn new(inner: S) -> Self {
        Sniff {
            inner,
            seen: Vec::new(),
            recording: true,
        }
    }

    fn stop(&mut self) {
        self.recording = false;
        self.seen = Vec::new();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.recording && polled.is_ready() {
            let room = SNIFF_LIMIT.saturating_sub(self.seen.len());
            let new = &buf.filled()[before..];
            let take = new.len().min(room);
            let copy = new[..take].to_vec();
            self.seen.extend_from_slice(&copy);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_uris_roundtrip_and_escape() {
        for role in ["Buyer", "Worker[3]", "a b", "Ünïcode", "%", "x~y.z-_"] {
            let uri = role_uri(role);
            assert!(uri.is_ascii(), "{uri}");
            assert_eq!(role_from_uri(&uri).as_deref(), Some(role), "{uri}");
        }
        assert_eq!(role_uri("a b"), "urn:rumpsteak-aura:role:a%20b");
        assert_eq!(role_from_uri("urn:rumpsteak-aura:role:%4"), None);
        assert_eq!(role_from_uri("urn:rumpsteak-aura:role:%FF"), None);
        assert_eq!(role_from_uri("urn:other:Buyer"), None);
    }
}
