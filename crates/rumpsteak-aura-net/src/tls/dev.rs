//! Throwaway certificates for tests, examples and development (feature
//! `dev-certs`): a private CA made in memory, role certificates it
//! signs, and self-signed certificates for pinning.
//!
//! Nothing here is for production: the keys live in memory and are gone
//! with the process. For a deployment, make the CA and the role
//! certificates with your own tooling (the security chapter of the book
//! shows how with `openssl`), and load them with
//! [`TlsConfig::from_pem`] and [`Trust::anchors_pem`].
//!
//! # Examples
//!
//! ```
//! use rumpsteak_aura_net::tls::dev::DevCa;
//!
//! let ca = DevCa::new("test CA")?;
//! let buyer = ca.identity("Buyer")?;
//! assert_eq!(buyer.role(), "Buyer");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{TlsConfig, TlsConfigError, Trust, role_uri};

/// A certificate for some roles and its private key, in DER and PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: CertificateDer<'static>,
    /// The certificate in PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8) in DER.
    pub key_der: Vec<u8>,
    /// The private key in PEM.
    pub key_pem: String,
}

impl Issued {
    /// The private key, as rustls takes it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A private certificate authority that lives in memory.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    cert_pem: String,
}

fn rcgen_error(e: rcgen::Error) -> TlsConfigError {
    TlsConfigError::Key(format!("making a certificate: {e}"))
}

fn params(
    roles: &[&str],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, TlsConfigError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, roles.join(", "));
    params.subject_alt_names = roles
        .iter()
        .map(|r| {
            rcgen::string::Ia5String::try_from(role_uri(r))
                .map(SanType::URI)
                .map_err(rcgen_error)
        })
        .collect::<Result<_, _>>()?;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    Ok(params)
}

/// A day ago to a year from now: valid whatever the clock skew of a test
/// machine.
fn usual_validity() -> (SystemTime, SystemTime) {
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 3600);
    (now - day, now + 365 * day)
}

impl DevCa {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> Result<Self, TlsConfigError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let (not_before, not_after) = usual_validity();
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(DevCa {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's certificate.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA's certificate in PEM, to hand to [`Trust::anchors_pem`].
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Trust in this CA.
    pub fn trust(&self) -> Trust {
        match Trust::anchors([self.cert.clone()]) {
            Ok(trust) => trust,
            // The certificate was made just above and parses.
            Err(e) => unreachable!("a CA certificate made here is readable: {e}"),
        }
    }

    /// A certificate naming `roles`, valid from a day ago for a year.
    pub fn issue(&self, roles: &[&str]) -> Result<Issued, TlsConfigError> {
        let (not_before, not_after) = usual_validity();
        self.issue_valid(roles, not_before, not_after)
    }

    /// A certificate naming `roles`, valid between the two times (an
    /// expired one, for tests).
    pub fn issue_valid(
        &self,
        roles: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Issued, TlsConfigError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params(roles, not_before, not_after)?
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error)?;
        Ok(Issued {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The TLS configuration of `role`: a certificate from this CA, and
    /// trust in this CA.
    pub fn identity(&self, role: &str) -> Result<TlsConfig, TlsConfigError> {
        let issued = self.issue(&[role])?;
        TlsConfig::new(role, vec![issued.cert.clone()], issued.key(), self.trust())
    }
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

/// A self-signed certificate naming `roles`, for [`Trust::pinned`].
pub fn self_signed(roles: &[&str]) -> Result<Issued, TlsConfigError> {
    let key = KeyPair::generate().map_err(rcgen_error)?;
    let (not_before, not_after) = usual_validity();
    let cert = params(roles, not_before, not_after)?
        .self_signed(&key)
        .map_err(rcgen_error)?;
    Ok(Issued {
        cert: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    })
}
