//! Certificates for the one-process-per-role examples run with `--tls`.
//!
//! The launcher makes a throwaway CA and one certificate per role
//! ([`CertDir::create`]), writes them as PEM files into a fresh temporary
//! directory, and hands the directory to each child (`--certs DIR`); the
//! directory is removed when the [`CertDir`] is dropped. Each child loads
//! its own identity from it ([`tcp_options`]) exactly as a deployment
//! would load files made by its own tooling:
//!
//! ```text
//! DIR/ca.pem            the CA certificate every role trusts
//! DIR/buyer.pem         Buyer's certificate (its chain, leaf first)
//! DIR/buyer.key         Buyer's private key (PKCS#8)
//! DIR/coordinator.pem   ...
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rumpsteak_aura_choreography::transport::tcp::TcpOptions;
use rumpsteak_aura_choreography::transport::tls::dev::DevCa;
use rumpsteak_aura_choreography::transport::tls::{TlsConfig, Trust, role_uri};

use super::narrate::say;
use super::{BoxError, Role};

/// The file of the CA certificate in a certificate directory.
const CA_FILE: &str = "ca.pem";

/// A role's name in certificates and handshakes (`Buyer`), as `Mesh`
/// names roles by default.
pub(crate) fn role_name(role: Role) -> String {
    format!("{role:?}")
}

/// A role's name in file names and on the command line (`buyer`).
fn file_stem(role: Role) -> String {
    role_name(role).to_lowercase()
}

/// A temporary directory of PEM files: a throwaway CA and one certificate
/// per role. Removed when dropped.
#[derive(Debug)]
pub(crate) struct CertDir {
    path: PathBuf,
}

impl CertDir {
    /// Makes a CA and a certificate for each of `roles`, and writes them
    /// into a new directory under the system's temporary directory.
    pub(crate) fn create(roles: &[Role]) -> Result<CertDir, BoxError> {
        let ca = DevCa::new("rumpsteak-aura example CA")?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!(
            "rumpsteak-aura-certs-{}-{nanos}",
            std::process::id()
        ));
        create_private_dir(&path)?;
        // From here on the directory is removed on every path out.
        let dir = CertDir { path };
        write_file(&dir.path.join(CA_FILE), ca.cert_pem().as_bytes())?;
        for &role in roles {
            let issued = ca.issue(&[&role_name(role)])?;
            let stem = file_stem(role);
            write_file(
                &dir.path.join(format!("{stem}.pem")),
                issued.cert_pem.as_bytes(),
            )?;
            write_file(
                &dir.path.join(format!("{stem}.key")),
                issued.key_pem.as_bytes(),
            )?;
        }
        Ok(dir)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!(
                "could not remove the certificate directory {}: {e}",
                self.path.display()
            );
        }
    }
}

/// A new directory only this user can read (on Unix); fails if it exists.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Writes a new file only this user can read (on Unix); fails if it
/// exists.
fn write_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

fn read_file(path: &Path) -> Result<Vec<u8>, BoxError> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// The identity of `me` from the PEM files in `dir`: its certificate and
/// key, and trust in the CA certificate.
pub(crate) fn load(dir: &Path, me: Role) -> Result<TlsConfig, BoxError> {
    let stem = file_stem(me);
    let chain = read_file(&dir.join(format!("{stem}.pem")))?;
    let key = read_file(&dir.join(format!("{stem}.key")))?;
    let ca = read_file(&dir.join(CA_FILE))?;
    let trust = Trust::anchors_pem(&ca)?;
    Ok(TlsConfig::from_pem(&role_name(me), &chain, &key, trust)?)
}

/// The session options of `me`: plain, or TLS 1.3 with the identity in
/// `certs` (and a line in the log saying which).
pub(crate) fn tcp_options(me: Role, certs: Option<&Path>) -> Result<TcpOptions, BoxError> {
    let Some(dir) = certs else {
        return Ok(TcpOptions::new());
    };
    let identity = load(dir, me)?;
    let stem = file_stem(me);
    say(
        me,
        format_args!(
            "TLS identity `{}` ({}) from {stem}.pem and {stem}.key, trusting {CA_FILE}",
            identity.role(),
            role_uri(identity.role()),
        ),
    );
    Ok(TcpOptions::new().with_tls(identity))
}
