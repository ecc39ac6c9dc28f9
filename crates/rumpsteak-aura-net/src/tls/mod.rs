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
//! error, the connection is closed, and no frame of the protocol is
//! exchanged.
//!
//! - The dialer checks the listener's certificate inside the TLS handshake:
//!   a listener that fails the check never sees the dialer's certificate
//!   or anything it says. The dialer's refusal names the expected and the
//!   presented identity; the listener learns the kind of failure from the
//!   dialer's TLS alert (its refusal names the reason only).
//! - The listener checks the dialer's certificate right after the TLS
//!   handshake (the handshake itself only checks that the dialer holds the
//!   key of the certificate it sent), and tells the dialer why it is
//!   refused, encrypted, in the role handshake; the dialer's claimed role is
//!   checked against its certificate when its hello arrives. Over
//!   WebSocket the HTTP upgrade comes first, within the pre-handshake byte
//!   budget, so that the refusal can travel as a WebSocket message.
//! - A plain-text dialer at a TLS listener, or a TLS dialer at a plain one,
//!   is refused in its own language.
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
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::handshake::{self, Escaped, MAX_HANDSHAKE_FRAME};

#[cfg(feature = "dev-certs")]
pub mod dev;
use crate::tcp::{TcpOptions, until_deadline};
use tokio::time::Instant;

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
    let role = decode_role_uri(uri)?;
    // Only the one spelling `role_uri` writes counts: no raw reserved
    // characters, no needless or lower-case escapes.
    (role_uri(&role) == uri).then_some(role)
}

fn decode_role_uri(uri: &str) -> Option<String> {
    let encoded = uri.strip_prefix(ROLE_URI_PREFIX)?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let [b, tail @ ..] = rest {
        if *b == b'%' {
            let hex = tail.get(..2)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
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
                if parsed.issuer() != parsed.subject() {
                    return Err(TlsConfigError::Trust(format!(
                        "pinned certificate of `{role}` is not self-signed \
                         (pins are self-signed certificates; use Trust::anchors for CA-issued ones)"
                    )));
                }
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
    provider: Arc<CryptoProvider>,
    own: Arc<SingleCertAndKey>,
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

        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| TlsConfigError::Key(e.to_string()))?
            .with_client_cert_verifier(check)
            .with_cert_resolver(own.clone());

        let config = TlsConfig(Arc::new(Inner {
            role: role.to_string(),
            trust,
            algorithms,
            provider,
            own,
            server: Arc::new(server),
        }));
        // Fails here, not at the first dial, if the provider cannot.
        config
            .client_config("")
            .map_err(|e| TlsConfigError::Key(e.to_string()))?;
        Ok(config)
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

    /// The client configuration of one dial, expecting the listener to be
    /// `peer_role`: the listener's certificate is checked inside the TLS
    /// handshake, so a listener that fails the check never sees this side's
    /// certificate. The slot receives the refusal, if any.
    pub(crate) fn client_config(
        &self,
        peer_role: &str,
    ) -> Result<(ClientConfig, RefusalSlot), rustls::Error> {
        let slot = RefusalSlot::default();
        let check = Arc::new(ListenerCheck {
            trust: self.0.trust.clone(),
            possession: KeyPossession {
                algorithms: self.0.algorithms,
            },
            expected: peer_role.to_string(),
            slot: slot.clone(),
        });
        let mut client = ClientConfig::builder_with_provider(Arc::clone(&self.0.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(check)
            .with_client_cert_resolver(self.0.own.clone());
        // Peers are named by role, not by host name.
        client.enable_sni = false;
        Ok((client, slot))
    }

    /// The client side of TLS on a dialed connection, expecting the
    /// listener to prove `peer_role`. Returns the halves of the encrypted
    /// stream and the roles the listener's certificate proves; a listener
    /// that fails the check is refused inside the TLS handshake.
    pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        addr: SocketAddr,
        peer_role: &str,
        deadline: Instant,
        options: &TcpOptions,
    ) -> Result<Halves<client::TlsStream<Sniff<S>>>, TransportError> {
        let (config, slot) = self
            .client_config(peer_role)
            .map_err(TransportError::other)?;
        let connector = TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("rumpsteak-aura.invalid")
            .map_err(|e| TransportError::other(e.to_string()))?;
        let mut sniffed = Vec::new();
        let tls = until_deadline(deadline, options, addr, async {
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
                    Err(tls_failure(e, addr, Side::Dialer))
                }
            }
        })
        .await;
        let mut tls = match tls {
            Ok(tls) => tls,
            Err(e) => {
                if let Some(refusal) = slot.take() {
                    return Err(TransportError::refused(
                        refusal.with_detail(format!("refused {addr}")),
                    ));
                }
                return Err(handshake::plain_refusal(&sniffed, addr).unwrap_or(e));
            }
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
    pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        addr: SocketAddr,
    ) -> Result<Halves<server::TlsStream<S>>, TransportError> {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.0.server));
        let tls = acceptor
            .accept(stream)
            .await
            .map_err(|e| tls_failure(e, addr, Side::Listener))?;
        let verdict = self.verify(tls.get_ref().1.peer_certificates(), Side::Dialer);
        let (read, write) = tokio::io::split(tls);
        Ok(Halves {
            read,
            write,
            verdict,
        })
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
        verify_chain(&self.0.trust, &self.0.algorithms, chain, side)
    }
}

/// Checks a peer's certificate chain against `trust`: the roles it
/// proves, or why it is refused.
fn verify_chain(
    trust: &Trust,
    algorithms: &WebPkiSupportedAlgorithms,
    chain: Option<&[CertificateDer<'_>]>,
    side: Side,
) -> Verdict {
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
    let algs = algorithms.all;
    let now = UnixTime::now();
    match &trust.0 {
        TrustKind::Anchors(anchors) => {
            cert.verify_for_usage(algs, anchors, intermediates, now, usage, None, None)
                .map_err(|e| chain_refusal(&e, "a certificate from a trusted CA", &presented))?;
        }
        TrustKind::Pinned(pins) => {
            // A pinned certificate is its own anchor: this checks its
            // signature and its validity period.
            let own = webpki::anchor_from_trusted_cert(leaf)
                .map_err(|e| chain_refusal(&e, "a pinned self-signed certificate", &presented))?;
            cert.verify_for_usage(algs, &[own], &[], now, usage, None, None)
                .map_err(|e| chain_refusal(&e, "a pinned self-signed certificate", &presented))?;
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
    // The peer's identity is its key (the one that signed the handshake),
    // not a role it names: a certificate naming many roles is one peer.
    let key = cert.subject_public_key_info();
    let mut identity = String::with_capacity(4 + 2 * key.as_ref().len());
    identity.push_str("key:");
    for b in key.as_ref() {
        identity.push_str(&format!("{b:02x}"));
    }
    Ok(Proven { roles, identity })
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

pub(crate) use crate::tcp::Proven;

/// The roles a peer's certificate proves, or why it is refused.
pub(crate) type Verdict = Result<Proven, Refusal>;

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
/// `side` is this side: only a listener believes an alert as a refusal,
/// since it comes from a dialer that checked the listener's certificate;
/// an alert a dialer receives may come from anyone on the path before any
/// authentication.
fn tls_failure(e: io::Error, addr: SocketAddr, side: Side) -> TransportError {
    if e.kind() == io::ErrorKind::TimedOut || e.get_ref().is_none() {
        return crate::tcp::at_address("TLS handshake with", addr, e);
    }
    if let Some(rustls::Error::AlertReceived(alert)) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        && matches!(side, Side::Listener)
        && let Some(refusal) = refused_by_alert(*alert)
    {
        return TransportError::refused(refusal.with_detail(format!("by {addr}")));
    }
    TransportError::handshake(format!(
        "TLS handshake with {addr} failed: {}",
        Escaped(&e.to_string())
    ))
}

/// A listener's check of the dialer's certificate during the TLS handshake
/// itself: only that the dialer holds the private key of the certificate it
/// sent (and the signature checks every other verifier here delegates to).
/// Whether that certificate is trusted, valid and of the claimed role is
/// decided right after the handshake ([`TlsConfig::verify`]), before any
/// frame of the role handshake is read, so that the verdict can be told to
/// the dialer; a connection whose verdict is a refusal carries nothing but
/// that refusal. (A dialer checks the listener inside the handshake, with
/// [`ListenerCheck`].)
#[derive(Debug)]
struct KeyPossession {
    algorithms: WebPkiSupportedAlgorithms,
}

impl KeyPossession {
    /// Only TLS 1.3 is offered, so rustls never asks for this.
    fn tls12_signature(&self) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS 1.2 is not offered by rumpsteak-aura sessions".into(),
        ))
    }

    /// That the peer signed the handshake with the key of `cert`.
    fn tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
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
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12_signature()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Where a dialer's certificate check leaves its refusal, for the dial to
/// report once the TLS handshake failed.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusalSlot(Arc<std::sync::Mutex<Option<Refusal>>>);

impl RefusalSlot {
    fn put(&self, refusal: Refusal) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(refusal);
    }

    /// The refusal the check left, if any.
    pub(crate) fn take(&self) -> Option<Refusal> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// A dialer's check of the listener's certificate, made inside the TLS
/// handshake: trusted, valid, and naming the role dialed. Failing it ends
/// the handshake before this side's certificate is sent.
#[derive(Debug)]
struct ListenerCheck {
    trust: Trust,
    /// The handshake's signatures are checked as everywhere else.
    possession: KeyPossession,
    expected: String,
    slot: RefusalSlot,
}

impl ServerCertVerifier for ListenerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        let verified = verify_chain(
            &self.trust,
            &self.possession.algorithms,
            Some(&chain),
            Side::Listener,
        );
        let verdict = crate::tcp::proven_as(verified, &self.expected);
        match verdict {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(refusal) => {
                // The alert tells the listener the kind of failure.
                let alert = match refusal.reason() {
                    RefusalReason::ExpiredCertificate => rustls::CertificateError::Expired,
                    RefusalReason::UntrustedCertificate => rustls::CertificateError::UnknownIssuer,
                    _ => rustls::CertificateError::NotValidForName,
                };
                self.slot.put(refusal);
                Err(rustls::Error::InvalidCertificate(alert))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.possession.tls12_signature()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.possession.tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.possession.algorithms.supported_schemes()
    }
}

/// What a listener learns when a dialer refused its certificate inside
/// the TLS handshake: the alert the dialer sent.
pub(crate) fn refused_by_alert(alert: rustls::AlertDescription) -> Option<Refusal> {
    use rustls::AlertDescription as A;
    let reason = match alert {
        A::CertificateExpired => RefusalReason::ExpiredCertificate,
        A::UnknownCA => RefusalReason::UntrustedCertificate,
        A::BadCertificate => RefusalReason::CertificateRole,
        _ => return None,
    };
    Some(
        Refusal::new(
            reason,
            "a certificate the dialer trusts for the role it dialed",
            "this listener's certificate",
        )
        .from_peer(),
    )
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
        // Other spellings of a role are not believed.
        assert_eq!(role_from_uri("urn:rumpsteak-aura:role:%41lice"), None);
        assert_eq!(role_from_uri("urn:rumpsteak-aura:role:%+A"), None);
        assert_eq!(role_from_uri("urn:rumpsteak-aura:role:a b"), None);
        assert_eq!(role_from_uri("urn:rumpsteak-aura:role:a%2fb"), None);
    }
}
