//! The deployment file: roles and their addresses, identities, limits.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rumpsteak_aura_net::tcp::{
    AddressError, Mesh, MeshAddress, MeshEntry, MeshTransport, TcpOptions,
};
use rumpsteak_aura_net::tls::{TlsConfig, TlsConfigError, Trust};
use rumpsteak_aura_resume::{OnFull, ResumeConfig, ResumeMesh, ResumePolicy};
use serde::Deserialize;

/// The prefix of every environment variable a [`Deployment`] reads.
pub const ENV_PREFIX: &str = "RUMPSTEAK_";

/// Where a setting came from: a key of the deployment file, or the
/// environment variable that overrode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location(Box<Where>);

/// What a [`Location`] holds, boxed to keep errors small.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Where {
    file: PathBuf,
    key: String,
    env: Option<String>,
}

impl Location {
    fn file(file: &Path, key: impl Into<String>) -> Self {
        Location(Box::new(Where {
            file: file.to_path_buf(),
            key: key.into(),
            env: None,
        }))
    }

    fn env(file: &Path, key: impl Into<String>, var: impl Into<String>) -> Self {
        let mut at = Location::file(file, key);
        at.0.env = Some(var.into());
        at
    }

    /// The deployment file.
    pub fn path(&self) -> &Path {
        &self.0.file
    }

    /// The key in the file (`roles.Seller.address`).
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The environment variable that set it, if one did.
    pub fn env_var(&self) -> Option<&str> {
        self.0.env.as_deref()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = &self.0;
        match &at.env {
            None => write!(f, "{}: {}", at.file.display(), at.key),
            Some(var) => write!(f, "{var} (for {}: {})", at.file.display(), at.key),
        }
    }
}

/// Why a deployment could not be loaded or used. Every message starts with
/// the file and the key (or the environment variable) at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The deployment file cannot be read.
    #[error("{}: cannot read the deployment file: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The file is not TOML, or not of the expected shape (an unknown key,
    /// a value of the wrong type).
    #[error("{}: line {line}, column {column}: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// Where, counted from 1.
        line: usize,
        /// Where in the line, counted from 1.
        column: usize,
        /// What the TOML parser said.
        message: String,
    },

    /// A role of the protocol has no address in the file nor in the
    /// environment.
    #[error(
        "{at}: the protocol's role `{role}` has no address \
         (add `[roles.{role}]` with `address = \"host:port\"`, or set {env_var})"
    )]
    MissingRole {
        /// `roles.<role>` of the file.
        at: Location,
        /// The role.
        role: String,
        /// The environment variable that would give its address.
        env_var: String,
    },

    /// The file (or the environment) names a role the protocol does not
    /// have.
    #[error("{at}: `{role}` is not a role of this protocol (its roles: {known})")]
    UnknownRole {
        /// The entry.
        at: Location,
        /// The role named.
        role: String,
        /// The protocol's roles, as text.
        known: String,
    },

    /// An address is not `host:port`, `ip:port` or `[ipv6]:port`.
    #[error("{at}: {source}")]
    Address {
        /// The key.
        at: Location,
        /// What is wrong with it.
        #[source]
        source: AddressError,
    },

    /// A certificate or key file cannot be read.
    #[error("{at}: cannot read `{}`: {source}", path.display())]
    Certificate {
        /// The key naming the file.
        at: Location,
        /// The file, as resolved against the deployment file's directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Certificate or key files were read but cannot be used (not PEM, a
    /// key that does not match, a certificate for another role).
    #[error("{at}: {source}")]
    Identity {
        /// The key naming the file.
        at: Location,
        /// What the TLS configuration said.
        #[source]
        source: TlsConfigError,
    },

    /// A setting that must be there is not (a role's `cert` or `key` when
    /// `[tls]` is set, a trust source).
    #[error("{at}: missing: {what}")]
    Missing {
        /// The key that is missing.
        at: Location,
        /// What it should hold.
        what: String,
    },

    /// A value of the wrong form (a duration, a number, a transport name).
    #[error("{at}: `{value}` {expected}")]
    Value {
        /// The key.
        at: Location,
        /// The value given.
        value: String,
        /// What was expected instead.
        expected: String,
    },
}

// --------------------------------------------------------------------------
// The file's shape.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    transport: Option<String>,
    session: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    tls: Option<RawTls>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    resume: RawResume,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    address: Option<String>,
    bind: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: Option<String>,
    pinned: Option<bool>,
}

/// Limits as the file gives them: durations as text (`15s`), sizes and
/// counts as integers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    wiring_deadline: Option<String>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
    connect_timeout: Option<String>,
    handshake_timeout: Option<String>,
    read_deadline: Option<String>,
    keepalive: Option<String>,
    linger: Option<String>,
    max_pending_handshakes: Option<u64>,
    listen_backlog: Option<u64>,
    max_frame_len: Option<u64>,
}

/// The resume policy as the file gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResume {
    replay_frames: Option<u64>,
    replay_bytes: Option<u64>,
    on_full: Option<String>,
    receive_window: Option<u64>,
    ack_every: Option<u64>,
    ack_delay: Option<String>,
    heartbeat: Option<String>,
    idle_timeout: Option<String>,
    reconnect_deadline: Option<String>,
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    exchange_timeout: Option<String>,
    identity_check: Option<bool>,
}

// --------------------------------------------------------------------------
// The checked deployment.

/// A value and where it came from.
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    at: Location,
}

/// One role of a deployment: where its peers reach it, where it listens,
/// and the files of its identity.
#[derive(Debug, Clone)]
pub struct RoleConfig {
    name: String,
    address: Option<At<MeshAddress>>,
    bind: Option<At<MeshAddress>>,
    cert: Option<At<PathBuf>>,
    key: Option<At<PathBuf>>,
}

impl RoleConfig {
    /// The role's name, as in the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address its peers dial, if one was given.
    pub fn address(&self) -> Option<&MeshAddress> {
        self.address.as_ref().map(|a| &a.value)
    }

    /// The address it listens on, if it differs from the advertised one.
    pub fn bind(&self) -> Option<&MeshAddress> {
        self.bind.as_ref().map(|a| &a.value)
    }

    /// Its certificate chain file (PEM, leaf first), resolved against the
    /// deployment file's directory.
    pub fn cert(&self) -> Option<&Path> {
        self.cert.as_ref().map(|a| a.value.as_path())
    }

    /// Its private key file (PEM), resolved likewise.
    pub fn key(&self) -> Option<&Path> {
        self.key.as_ref().map(|a| a.value.as_path())
    }
}

/// Whom the roles trust, from `[tls]`.
#[derive(Debug, Clone)]
pub enum TrustFiles {
    /// `ca = "ca.pem"`: the CA certificates every role's certificate
    /// chains to.
    Ca(PathBuf),
    /// `pinned = true`: each role's own `cert` is the self-signed
    /// certificate its peers pin.
    Pinned,
}

/// The limits of the sessions and of wiring, from `[limits]`; unset ones
/// keep the library's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `wiring_deadline`: how long wiring every session may take.
    pub wiring_deadline: Option<Duration>,
    /// `retry_initial`: the first wait between dial attempts.
    pub retry_initial: Option<Duration>,
    /// `retry_max`: the longest wait between dial attempts.
    pub retry_max: Option<Duration>,
    /// `connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `handshake_timeout`.
    pub handshake_timeout: Option<Duration>,
    /// `read_deadline` (`"none"` for none, the default).
    pub read_deadline: Option<Option<Duration>>,
    /// `keepalive` (`"none"` turns it off).
    pub keepalive: Option<Option<Duration>>,
    /// `linger`.
    pub linger: Option<Duration>,
    /// `max_pending_handshakes`.
    pub max_pending_handshakes: Option<usize>,
    /// `listen_backlog`.
    pub listen_backlog: Option<u32>,
    /// `max_frame_len`, in bytes.
    pub max_frame_len: Option<usize>,
}

/// The policy of resumable sessions, from `[resume]`, for
/// [`Deployment::resume_mesh`]; unset keys keep the defaults of
/// [`ResumeConfig::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeSettings {
    /// `replay_frames`: unacknowledged frames a session keeps.
    pub replay_frames: Option<usize>,
    /// `replay_bytes`: unacknowledged bytes a session keeps.
    pub replay_bytes: Option<usize>,
    /// `on_full`: `"wait"` or `"fail"`.
    pub on_full: Option<OnFull>,
    /// `receive_window`: received frames that may wait for the
    /// application.
    pub receive_window: Option<usize>,
    /// `ack_every`: frames between standalone acknowledgements.
    pub ack_every: Option<u64>,
    /// `ack_delay`: the longest wait for a standalone acknowledgement.
    pub ack_delay: Option<Duration>,
    /// `heartbeat`: the heartbeat interval of an idle link.
    pub heartbeat: Option<Duration>,
    /// `idle_timeout`: a link silent this long is given up.
    pub idle_timeout: Option<Duration>,
    /// `reconnect_deadline`.
    pub reconnect_deadline: Option<Duration>,
    /// `backoff_initial`: the first wait between reconnection attempts.
    pub backoff_initial: Option<Duration>,
    /// `backoff_max`: the longest.
    pub backoff_max: Option<Duration>,
    /// `exchange_timeout`: how long a resume greeting may take.
    pub exchange_timeout: Option<Duration>,
    /// `identity_check`.
    pub identity_check: Option<bool>,
}

impl ResumeSettings {
    /// The policy these settings give.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_deploy::Deployment;
    ///
    /// let text = "[resume]\nreplay_frames = 256\nreconnect_deadline = \"5s\"\n";
    /// let deployment = Deployment::parse(text, "mesh.toml", std::iter::empty::<(String, String)>())?;
    /// let config = deployment.resume().policy().config_for("s", "Buyer", "Seller");
    /// assert_eq!(config.replay_frames(), 256);
    /// assert_eq!(config.replay_bytes(), 16 << 20); // the default
    /// assert_eq!(config.reconnect_deadline(), Duration::from_secs(5));
    /// # Ok::<(), rumpsteak_aura_deploy::ConfigError>(())
    /// ```
    pub fn policy(&self) -> ResumePolicy {
        let d = ResumeConfig::new("", "", "");
        let mut c = d.clone().with_replay_limits(
            self.replay_frames.unwrap_or(d.replay_frames()),
            self.replay_bytes.unwrap_or(d.replay_bytes()),
        );
        if let Some(v) = self.on_full {
            c = c.with_on_full(v);
        }
        if let Some(v) = self.receive_window {
            c = c.with_receive_window(v);
        }
        let (every, delay) = d.ack_policy();
        c = c.with_ack_policy(
            self.ack_every.unwrap_or(every),
            self.ack_delay.unwrap_or(delay),
        );
        let (heartbeat, idle) = d.heartbeat();
        c = c.with_heartbeat(
            self.heartbeat.unwrap_or(heartbeat),
            self.idle_timeout.unwrap_or(idle),
        );
        if let Some(v) = self.reconnect_deadline {
            c = c.with_reconnect_deadline(v);
        }
        let (initial, max) = d.backoff();
        c = c.with_backoff(
            self.backoff_initial.unwrap_or(initial),
            self.backoff_max.unwrap_or(max),
        );
        if let Some(v) = self.exchange_timeout {
            c = c.with_exchange_timeout(v);
        }
        if let Some(v) = self.identity_check {
            c = c.with_identity_check(v);
        }
        ResumePolicy::from(c)
    }
}

/// A deployment: the protocol's roles with their addresses, the files of
/// their TLS identities, and the limits, loaded from one TOML file and
/// overridden by environment variables.
///
/// # The file
///
/// ```toml
/// transport = "tcp"            # or "websocket", "quic"
/// session = "shop-2024-06"     # optional: the session identifier
///
/// [roles.Buyer]
/// address = "buyer.shop.internal:7001"      # what peers dial: host:port, ip:port, [v6]:port
/// bind = "0.0.0.0:7001"                     # optional: what this role listens on
/// cert = "certs/buyer.pem"                  # with [tls]: its certificate chain (PEM)
/// key = "certs/buyer.key"                   # with [tls]: its private key (PEM)
///
/// [roles.Seller]
/// address = "seller.shop.internal:7003"
/// # ...
///
/// [tls]
/// ca = "certs/ca.pem"          # trust a CA; or `pinned = true` to pin each role's `cert`
///
/// [limits]
/// wiring_deadline = "30s"
/// handshake_timeout = "10s"
/// max_pending_handshakes = 1024
///
/// [resume]                     # for `resume_mesh`: the policy of resumable sessions
/// replay_frames = 1024         # unacknowledged frames and bytes a session keeps
/// replay_bytes = 16777216
/// on_full = "wait"             # or "fail": what a send does on a full buffer while the link is down
/// reconnect_deadline = "30s"
/// heartbeat = "1s"             # idle_timeout: at least twice as long
/// idle_timeout = "10s"
/// backoff_initial = "10ms"     # above 0, and at most backoff_max
/// backoff_max = "1s"
/// # also: receive_window, ack_every, ack_delay, exchange_timeout, identity_check
/// ```
///
/// Relative file names are relative to the deployment file's directory.
/// Durations are a number and a unit: `250ms`, `15s`, `2m`, `1h`.
///
/// # The environment
///
/// Every key can be overridden by the variable named `RUMPSTEAK_`, then
/// the key's path upper-cased with `_` for `.` (and for any character
/// other than a letter or digit), where `roles` is written `ROLE`:
/// `RUMPSTEAK_ROLE_SELLER_ADDRESS` for `roles.Seller.address`,
/// `RUMPSTEAK_TLS_CA`, `RUMPSTEAK_LIMITS_WIRING_DEADLINE`,
/// `RUMPSTEAK_RESUME_RECONNECT_DEADLINE`,
/// `RUMPSTEAK_TRANSPORT`. A role may be given by the environment alone.
/// A `RUMPSTEAK_ROLE_...` variable that names no role of the protocol or
/// no role key, and a `RUMPSTEAK_TLS_...`, `RUMPSTEAK_LIMITS_...` or
/// `RUMPSTEAK_RESUME_...` one that is no setting, is an error, so a misspelt one does not go
/// unnoticed; other `RUMPSTEAK_` variables (of other tools) are ignored.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_deploy::Deployment;
///
/// let text = r#"
///     [roles.Buyer]
///     address = "localhost:7001"
///     bind = "[::]:7001"
///     [roles.Seller]
///     address = "seller.shop.internal:7003"
///     [limits]
///     wiring_deadline = "20s"
/// "#;
/// let env = [("RUMPSTEAK_ROLE_SELLER_ADDRESS", "127.0.0.3:7003")];
/// let deployment = Deployment::parse(text, "mesh.toml", env)?;
/// let mesh = deployment.mesh([Role::Buyer, Role::Seller], &Role::Buyer)?;
/// let rows: Vec<String> = mesh.entries().map(|(_, e)| e.address().to_string()).collect();
/// assert_eq!(rows, ["localhost:7001", "127.0.0.3:7003"]);
/// assert_eq!(mesh.deadline(), std::time::Duration::from_secs(20));
///
/// # #[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// # enum Role { Buyer, Seller }
/// # Ok::<(), rumpsteak_aura_deploy::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Deployment {
    file: PathBuf,
    transport: At<MeshTransport>,
    session: Option<String>,
    roles: Vec<RoleConfig>,
    /// `RUMPSTEAK_ROLE_<X>_...` variables whose `<X>` names no role of
    /// the file, to match against the protocol's roles.
    env_roles: Vec<RoleConfig>,
    trust: Option<At<TrustFiles>>,
    limits: Limits,
    resume: ResumeSettings,
}

/// The environment variable of a key: `RUMPSTEAK_` and the path
/// upper-cased, `_` for anything but letters and digits.
fn env_name(path: &[&str]) -> String {
    let mut name = String::from(ENV_PREFIX);
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            name.push('_');
        }
        name.extend(part.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
    }
    name
}

/// The environment variable of a role's key.
pub fn role_env_var(role: &str, key: &str) -> String {
    env_name(&["ROLE", role, key])
}

/// The longest session identifier the handshake carries, in bytes.
const MAX_SESSION_LEN: usize = 255;

const ROLE_KEYS: [&str; 4] = ["address", "bind", "cert", "key"];

impl Deployment {
    /// Loads the deployment file at `path`, with the process's
    /// `RUMPSTEAK_*` environment variables over it.
    ///
    /// Only variables named `RUMPSTEAK_...` are read; those of other tools
    /// may hold anything (bytes that are not UTF-8 included). One of ours
    /// whose value is not UTF-8 is an error naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        // Not `std::env::vars()`: it panics at the first variable, of any
        // name, that is not UTF-8.
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => env.push((name.to_string(), value)),
                Err(value) => {
                    return Err(ConfigError::Value {
                        at: Location::env(path, "(environment)", name),
                        value: value.to_string_lossy().into_owned(),
                        expected: "is not valid UTF-8".into(),
                    });
                }
            }
        }
        Self::load_with_env(path, env)
    }

    /// Loads the deployment file at `path`, with the variables of `env`
    /// (name, value) over it instead of the process's environment.
    pub fn load_with_env<K, V>(
        path: impl AsRef<Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, env)
    }

    /// A deployment from the text of a file named `file` (for messages,
    /// and to resolve relative file names against its directory), with the
    /// variables of `env` over it.
    pub fn parse<K, V>(
        text: &str,
        file: impl AsRef<Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let file = file.as_ref();
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Syntax {
                file: file.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let env: BTreeMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Loader {
            file,
            base: file.parent().unwrap_or(Path::new("")),
            env: &env,
        }
        .load(raw)
    }

    /// The deployment file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The transport every session runs over (`transport`, TCP by
    /// default).
    pub fn transport(&self) -> MeshTransport {
        self.transport.value
    }

    /// The session identifier (`session`), if set.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The roles of the file, with the environment's overrides, in the
    /// file's (alphabetical) order; roles given by the environment alone
    /// are not among them until [`mesh`](Self::mesh) matches them.
    pub fn roles(&self) -> &[RoleConfig] {
        &self.roles
    }

    /// The role named `name`: from the file, or from the environment
    /// alone.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles
            .iter()
            .find(|r| r.name == name)
            .or_else(|| self.env_role(name))
    }

    fn env_role(&self, name: &str) -> Option<&RoleConfig> {
        let upper = env_name(&[name]);
        self.env_roles
            .iter()
            .find(|r| env_name(&[&r.name]) == upper)
    }

    /// Whom the roles trust (`[tls]`), if TLS is configured.
    pub fn trust(&self) -> Option<&TrustFiles> {
        self.trust.as_ref().map(|t| &t.value)
    }

    /// The limits (`[limits]`).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The TLS identity of `role`, read from its `cert` and `key` files
    /// and the trust files, if `[tls]` is configured.
    pub fn identity(&self, role: &str) -> Result<Option<TlsConfig>, ConfigError> {
        self.identity_among(role, &[])
    }

    /// The identity of `role`, where `protocol` names the protocol's roles
    /// (to give roles set by the environment alone their exact names).
    fn identity_among(
        &self,
        role: &str,
        protocol: &[String],
    ) -> Result<Option<TlsConfig>, ConfigError> {
        let Some(trust) = &self.trust else {
            return Ok(None);
        };
        let me = self.role(role).ok_or_else(|| ConfigError::MissingRole {
            at: Location::file(&self.file, format!("roles.{role}")),
            role: role.to_string(),
            env_var: role_env_var(role, "address"),
        })?;
        let trust = match &trust.value {
            TrustFiles::Ca(path) => {
                let pem = read(&trust.at, path)?;
                Trust::anchors_pem(&pem).map_err(|source| ConfigError::Identity {
                    at: trust.at.clone(),
                    source,
                })?
            }
            TrustFiles::Pinned => self.pins(protocol)?,
        };
        let cert = self.required(me, &me.cert, "cert", "its certificate chain (PEM)")?;
        let key = self.required(me, &me.key, "key", "its private key (PEM)")?;
        let chain = read(&cert.at, &cert.value)?;
        let key_pem = read(&key.at, &key.value)?;
        TlsConfig::from_pem(role, &chain, &key_pem, trust)
            .map(Some)
            .map_err(|source| ConfigError::Identity {
                at: match source {
                    TlsConfigError::Pem {
                        what: "private key",
                        ..
                    } => key.at.clone(),
                    _ => cert.at.clone(),
                },
                source,
            })
    }

    /// Every role's `cert`, pinned for that role.
    fn pins(&self, protocol: &[String]) -> Result<Trust, ConfigError> {
        use rumpsteak_aura_net::tls::rustls::pki_types::CertificateDer;
        use rumpsteak_aura_net::tls::rustls::pki_types::pem::PemObject;

        let mut pins: Vec<(String, CertificateDer<'static>)> = Vec::new();
        for role in self.roles.iter().chain(&self.env_roles) {
            let cert = self.required(role, &role.cert, "cert", "the certificate to pin (PEM)")?;
            let pem = read(&cert.at, &cert.value)?;
            let der = CertificateDer::from_pem_slice(&pem).map_err(|e| ConfigError::Identity {
                at: cert.at.clone(),
                source: TlsConfigError::Pem {
                    what: "pinned certificate",
                    reason: e.to_string(),
                },
            })?;
            // A role set by the environment alone is named in upper case
            // there; pin it under the protocol's spelling.
            let upper = env_name(&[&role.name]);
            let name = protocol
                .iter()
                .find(|n| **n == role.name)
                .or_else(|| protocol.iter().find(|n| env_name(&[n]) == upper))
                .unwrap_or(&role.name);
            pins.push((name.clone(), der));
        }
        Trust::pinned(pins.iter().map(|(r, c)| (r.as_str(), c))).map_err(|source| {
            ConfigError::Identity {
                at: Location::file(&self.file, "tls.pinned"),
                source,
            }
        })
    }

    fn required<'a, T>(
        &self,
        role: &RoleConfig,
        field: &'a Option<At<T>>,
        key: &str,
        what: &str,
    ) -> Result<&'a At<T>, ConfigError> {
        field.as_ref().ok_or_else(|| ConfigError::Missing {
            at: Location::file(&self.file, format!("roles.{}.{key}", role.name)),
            what: format!(
                "{what} of role `{}`, needed with [tls] (or set {})",
                role.name,
                role_env_var(&role.name, key)
            ),
        })
    }

    /// The `[resume]` settings (all unset without the section).
    pub fn resume(&self) -> &ResumeSettings {
        &self.resume
    }

    /// The session options of `role`: the limits, the session
    /// identifier, and its TLS identity if `[tls]` is configured.
    pub fn tcp_options(&self, role: &str) -> Result<TcpOptions, ConfigError> {
        self.tcp_options_among(role, &[])
    }

    fn tcp_options_among(
        &self,
        role: &str,
        protocol: &[String],
    ) -> Result<TcpOptions, ConfigError> {
        let l = &self.limits;
        let mut options = TcpOptions::new();
        if let Some(v) = l.max_frame_len {
            options = options.with_max_frame_len(v);
        }
        if let Some(v) = l.read_deadline {
            options = options.with_read_deadline(v);
        }
        if let Some(v) = l.keepalive {
            options = options.with_keepalive(v);
        }
        if let Some(v) = l.connect_timeout {
            options = options.with_connect_timeout(v);
        }
        if let Some(v) = l.handshake_timeout {
            options = options.with_handshake_timeout(v);
        }
        if let Some(v) = l.linger {
            options = options.with_linger(v);
        }
        if let Some(v) = l.max_pending_handshakes {
            options = options.with_max_pending_handshakes(v);
        }
        if let Some(v) = l.listen_backlog {
            options = options.with_listen_backlog(v);
        }
        if let Some(id) = &self.session {
            options = options.with_session_id(id.clone());
        }
        if let Some(identity) = self.identity_among(role, protocol)? {
            options = options.with_tls(identity);
        }
        Ok(options)
    }

    /// The mesh of `local`, over the protocol's `roles` in the order given
    /// (the same in every process: the earlier role of each pair listens),
    /// with roles named by their `Debug` form.
    ///
    /// Fails if a role of the protocol has no address, if the file or the
    /// environment names a role the protocol does not have, or if
    /// `local`'s identity files cannot be read.
    pub fn mesh<R>(
        &self,
        roles: impl IntoIterator<Item = R>,
        local: &R,
    ) -> Result<Mesh<R>, ConfigError>
    where
        R: fmt::Debug + Clone + PartialEq + Send + Sync + 'static,
    {
        self.mesh_named(roles, local, |r: &R| format!("{r:?}"))
    }

    /// As [`mesh`](Self::mesh), with roles named by `names` (in the file,
    /// in handshakes and in certificates).
    pub fn mesh_named<R>(
        &self,
        roles: impl IntoIterator<Item = R>,
        local: &R,
        names: impl Fn(&R) -> String + Send + Sync + 'static,
    ) -> Result<Mesh<R>, ConfigError>
    where
        R: fmt::Debug + Clone + PartialEq + Send + Sync + 'static,
    {
        let roles: Vec<R> = roles.into_iter().collect();
        let role_names: Vec<String> = roles.iter().map(&names).collect();
        let known = || {
            role_names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for r in &self.roles {
            if !role_names.contains(&r.name) {
                return Err(ConfigError::UnknownRole {
                    at: Location::file(&self.file, format!("roles.{}", r.name)),
                    role: r.name.clone(),
                    known: known(),
                });
            }
        }
        for r in &self.env_roles {
            let upper = env_name(&[&r.name]);
            if !role_names.iter().any(|n| env_name(&[n]) == upper) {
                let at = [&r.address, &r.bind]
                    .into_iter()
                    .flatten()
                    .map(|a| a.at.clone())
                    .next()
                    .or_else(|| {
                        [&r.cert, &r.key]
                            .into_iter()
                            .flatten()
                            .map(|a| a.at.clone())
                            .next()
                    })
                    .unwrap_or_else(|| Location::file(&self.file, format!("roles.{}", r.name)));
                return Err(ConfigError::UnknownRole {
                    at,
                    role: r.name.clone(),
                    known: known(),
                });
            }
        }
        let mut table = Vec::with_capacity(roles.len());
        for (role, name) in roles.into_iter().zip(&role_names) {
            let config = self.role(name);
            let Some(address) = config.and_then(RoleConfig::address) else {
                return Err(ConfigError::MissingRole {
                    at: Location::file(&self.file, format!("roles.{name}")),
                    role: name.clone(),
                    env_var: role_env_var(name, "address"),
                });
            };
            let mut entry = MeshEntry::new(address.clone());
            if let Some(bind) = config.and_then(RoleConfig::bind) {
                entry = entry.with_bind(bind.clone());
            }
            table.push((role, entry));
        }
        let Some(me) = table.iter().position(|(r, _)| r == local) else {
            let name = names(local);
            return Err(ConfigError::UnknownRole {
                at: Location::file(&self.file, format!("roles.{name}")),
                role: name,
                known: known(),
            });
        };
        let options = self.tcp_options_among(&role_names[me], &role_names)?;
        let l = &self.limits;
        let mut mesh = Mesh::from_entries(table)
            .with_role_names(names)
            .with_transport(self.transport.value)
            .with_options(options);
        if let Some(d) = l.wiring_deadline {
            mesh = mesh.with_deadline(d);
        }
        if l.retry_initial.is_some() || l.retry_max.is_some() {
            let initial = l.retry_initial.unwrap_or(Duration::from_millis(20));
            let max = l.retry_max.unwrap_or(Duration::from_millis(500));
            mesh = mesh.with_retry_backoff(initial, max);
        }
        Ok(mesh)
    }
}

impl Deployment {
    /// As [`mesh`](Self::mesh), with every session resumable under the
    /// `[resume]` policy ([`ResumeSettings::policy`]): the mesh's
    /// `connect` then gives back resumable sessions and their handles.
    /// Every role of the protocol must use one: a plain peer and a
    /// resumable one refuse each other in the handshake.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_deploy::Deployment;
    ///
    /// let text = r#"
    ///     [roles.Buyer]
    ///     address = "127.0.0.1:7001"
    ///     [roles.Seller]
    ///     address = "127.0.0.1:7003"
    ///     [resume]
    ///     reconnect_deadline = "2m"
    ///     on_full = "fail"
    /// "#;
    /// let deployment = Deployment::parse(text, "mesh.toml", std::iter::empty::<(String, String)>())?;
    /// let mesh = deployment.resume_mesh([Role::Buyer, Role::Seller], &Role::Seller)?;
    /// let config = mesh.policy().config_for("s", "Seller", "Buyer");
    /// assert_eq!(config.reconnect_deadline(), Duration::from_secs(120));
    ///
    /// # #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    /// # enum Role { Buyer, Seller }
    /// # Ok::<(), rumpsteak_aura_deploy::ConfigError>(())
    /// ```
    pub fn resume_mesh<R>(
        &self,
        roles: impl IntoIterator<Item = R>,
        local: &R,
    ) -> Result<ResumeMesh<R>, ConfigError>
    where
        R: fmt::Debug + Clone + PartialEq + Send + Sync + 'static,
    {
        Ok(ResumeMesh::new(
            self.mesh(roles, local)?,
            self.resume.policy(),
        ))
    }

    /// As [`resume_mesh`](Self::resume_mesh), with roles named by `names`.
    pub fn resume_mesh_named<R>(
        &self,
        roles: impl IntoIterator<Item = R>,
        local: &R,
        names: impl Fn(&R) -> String + Send + Sync + 'static,
    ) -> Result<ResumeMesh<R>, ConfigError>
    where
        R: fmt::Debug + Clone + PartialEq + Send + Sync + 'static,
    {
        Ok(ResumeMesh::new(
            self.mesh_named(roles, local, names)?,
            self.resume.policy(),
        ))
    }
}

/// Reads one identity file, naming the key and the file on failure.
fn read(at: &Location, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Certificate {
        at: at.clone(),
        path: path.to_path_buf(),
        source,
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, column)
}

/// Turns the raw file and the environment into a checked deployment.
struct Loader<'a> {
    file: &'a Path,
    base: &'a Path,
    env: &'a BTreeMap<String, String>,
}

impl Loader<'_> {
    /// A setting: the environment's value if set, else the file's.
    fn setting(&self, path: &[&str], file_value: Option<String>) -> Option<(String, Location)> {
        let key = path.join(".");
        let var = env_name(&path_for_env(path));
        match self.env.get(&var) {
            Some(v) => Some((v.clone(), Location::env(self.file, key, var))),
            None => file_value.map(|v| (v, Location::file(self.file, key))),
        }
    }

    fn address(
        &self,
        path: &[&str],
        value: Option<String>,
    ) -> Result<Option<At<MeshAddress>>, ConfigError> {
        self.setting(path, value)
            .map(|(text, at)| match text.trim().parse::<MeshAddress>() {
                // Port 0 would listen on a port the kernel picks, which no
                // peer knows, or dial a port nothing listens on: every
                // peer would retry until the wiring deadline.
                Ok(value) if value.port() == 0 => Err(ConfigError::Value {
                    at,
                    value: text,
                    expected: "has port 0: peers dial the port written here, so give the one \
                               the role listens on"
                        .into(),
                }),
                Ok(value) => Ok(At { value, at }),
                Err(source) => Err(ConfigError::Address { at, source }),
            })
            .transpose()
    }

    fn path(&self, path: &[&str], value: Option<String>) -> Option<At<PathBuf>> {
        self.setting(path, value).map(|(text, at)| At {
            value: self.base.join(text),
            at,
        })
    }

    fn role(&self, name: &str, raw: RawRole) -> Result<RoleConfig, ConfigError> {
        Ok(RoleConfig {
            name: name.to_string(),
            address: self.address(&["roles", name, "address"], raw.address)?,
            bind: self.address(&["roles", name, "bind"], raw.bind)?,
            cert: self.path(&["roles", name, "cert"], raw.cert),
            key: self.path(&["roles", name, "key"], raw.key),
        })
    }

    fn load(&self, raw: RawFile) -> Result<Deployment, ConfigError> {
        let transport = match self.setting(&["transport"], raw.transport) {
            None => At {
                value: MeshTransport::Tcp,
                at: Location::file(self.file, "transport"),
            },
            Some((text, at)) => At {
                value: transport(&text).ok_or_else(|| ConfigError::Value {
                    at: at.clone(),
                    value: text.clone(),
                    expected: transport_expected(),
                })?,
                at,
            },
        };
        let session = match self.setting(&["session"], raw.session) {
            // The handshake carries at most this many bytes of it
            // (`TcpOptions::with_session_id`); a longer one would fail
            // every dial until the wiring deadline.
            Some((text, at)) if text.len() > MAX_SESSION_LEN => {
                return Err(ConfigError::Value {
                    at,
                    value: text,
                    expected: format!(
                        "is longer than {MAX_SESSION_LEN} bytes, the most a session identifier may be"
                    ),
                });
            }
            setting => setting.map(|(s, _)| s),
        };

        // Two roles whose variables are spelt alike (`order-desk` and
        // `order_desk`, `Seller` and `SELLER`): a variable of that spelling
        // would set both, so it is refused rather than given to either.
        let names: Vec<&String> = raw.roles.keys().collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                if env_name(&[a]) != env_name(&[b]) {
                    continue;
                }
                let prefix = format!("{}_", env_name(&["ROLE", a]));
                let set = ROLE_KEYS
                    .iter()
                    .map(|k| format!("{prefix}{}", k.to_ascii_uppercase()))
                    .find(|var| self.env.contains_key(var));
                if let Some(var) = set {
                    return Err(ConfigError::Value {
                        at: Location::env(self.file, format!("roles.{a}"), var.clone()),
                        value: var,
                        expected: format!(
                            "would set both roles `{a}` and `{b}`, whose variables are spelt \
                             alike: rename one of them in the file"
                        ),
                    });
                }
            }
        }
        let mut roles = Vec::new();
        for (name, raw_role) in raw.roles {
            roles.push(self.role(&name, raw_role)?);
        }
        // Roles the environment names that the file does not have: each
        // `RUMPSTEAK_ROLE_<X>_<KEY>` for a known key.
        let mut env_only: BTreeMap<String, ()> = BTreeMap::new();
        let role_prefix = format!("{ENV_PREFIX}ROLE_");
        for var in self.env.keys() {
            let Some(rest) = var.strip_prefix(&role_prefix) else {
                continue;
            };
            let Some((upper, _)) = ROLE_KEYS.iter().find_map(|k| {
                let suffix = format!("_{}", k.to_ascii_uppercase());
                rest.strip_suffix(&suffix).map(|r| (r, k))
            }) else {
                return Err(ConfigError::Value {
                    at: Location::env(self.file, "roles", var.clone()),
                    value: var.clone(),
                    expected: format!(
                        "is not a role setting (RUMPSTEAK_ROLE_<ROLE>_ followed by one of {})",
                        ROLE_KEYS.map(|k| k.to_ascii_uppercase()).join(", ")
                    ),
                });
            };
            if !roles
                .iter()
                .any(|r| env_name(&[&r.name]) == env_name(&[upper]))
            {
                env_only.insert(upper.to_string(), ());
            }
        }
        for var in self.env.keys() {
            // Only the groups of the file's own keys: other `RUMPSTEAK_`
            // variables belong to other tools (the reliability crate's
            // RUMPSTEAK_SIM_SEED).
            let ours = ["TLS_", "LIMITS_", "RESUME_"]
                .iter()
                .any(|group| var.starts_with(&format!("{ENV_PREFIX}{group}")));
            if ours && !known_setting(var) {
                return Err(ConfigError::Value {
                    at: Location::env(self.file, "(none)", var.clone()),
                    value: var.clone(),
                    expected: "is not a setting of the deployment file (see the naming rule of `Deployment`)"
                        .into(),
                });
            }
        }
        let mut env_roles = Vec::new();
        for upper in env_only.into_keys() {
            env_roles.push(self.role(&upper, RawRole::default())?);
        }

        let trust = match raw.tls {
            None if !self.env.contains_key("RUMPSTEAK_TLS_CA")
                && !self.env.contains_key("RUMPSTEAK_TLS_PINNED") =>
            {
                None
            }
            tls => {
                let tls = tls.unwrap_or_default();
                let ca = self.path(&["tls", "ca"], tls.ca);
                let pinned =
                    match self.setting(&["tls", "pinned"], tls.pinned.map(|b| b.to_string())) {
                        None => None,
                        Some((text, at)) => Some(At {
                            value: text
                                .trim()
                                .parse::<bool>()
                                .map_err(|_| ConfigError::Value {
                                    at: at.clone(),
                                    value: text.clone(),
                                    expected: "is not `true` or `false`".into(),
                                })?,
                            at,
                        }),
                    };
                match (ca, pinned) {
                    (Some(ca), None | Some(At { value: false, .. })) => Some(At {
                        value: TrustFiles::Ca(ca.value),
                        at: ca.at,
                    }),
                    (None, Some(At { value: true, at })) => Some(At {
                        value: TrustFiles::Pinned,
                        at,
                    }),
                    (Some(_), Some(At { value: true, at })) => {
                        return Err(ConfigError::Value {
                            at,
                            value: "true".into(),
                            expected:
                                "conflicts with `tls.ca`: trust a CA or pin certificates, not both"
                                    .into(),
                        });
                    }
                    (None, None | Some(At { value: false, .. })) => {
                        return Err(ConfigError::Missing {
                            at: Location::file(self.file, "tls.ca"),
                            what: "whom to trust: `ca = \"ca.pem\"` or `pinned = true`".into(),
                        });
                    }
                }
            }
        };

        // QUIC always runs TLS: without identities every dial would fail
        // (and be retried) until the wiring deadline.
        #[cfg(feature = "quic")]
        if transport.value == MeshTransport::Quic && trust.is_none() {
            return Err(ConfigError::Missing {
                at: Location::file(self.file, "tls"),
                what: format!(
                    "`[tls]` with whom to trust and each role's `cert` and `key`: \
                     {} is \"quic\", which always runs TLS 1.3",
                    transport.at
                ),
            });
        }

        let resume = self.resume(raw.resume)?;
        let l = raw.limits;
        let limits = Limits {
            wiring_deadline: self.positive(
                &["limits", "wiring_deadline"],
                l.wiring_deadline,
                |v| self.duration(&["limits", "wiring_deadline"], v),
            )?,
            retry_initial: self.duration(&["limits", "retry_initial"], l.retry_initial)?,
            retry_max: self.duration(&["limits", "retry_max"], l.retry_max)?,
            connect_timeout: self.positive(
                &["limits", "connect_timeout"],
                l.connect_timeout,
                |v| self.duration(&["limits", "connect_timeout"], v),
            )?,
            handshake_timeout: self.positive(
                &["limits", "handshake_timeout"],
                l.handshake_timeout,
                |v| self.duration(&["limits", "handshake_timeout"], v),
            )?,
            read_deadline: self.positive(&["limits", "read_deadline"], l.read_deadline, |v| {
                self.optional_duration(&["limits", "read_deadline"], v)
            })?,
            keepalive: self.optional_duration(&["limits", "keepalive"], l.keepalive)?,
            linger: self.duration(&["limits", "linger"], l.linger)?,
            max_pending_handshakes: self.number(
                &["limits", "max_pending_handshakes"],
                l.max_pending_handshakes,
            )?,
            listen_backlog: self.number(&["limits", "listen_backlog"], l.listen_backlog)?,
            max_frame_len: self.number(&["limits", "max_frame_len"], l.max_frame_len)?,
        };

        Ok(Deployment {
            file: self.file.to_path_buf(),
            transport,
            session,
            roles,
            env_roles,
            trust,
            limits,
            resume,
        })
    }

    /// The `[resume]` settings.
    fn resume(&self, r: RawResume) -> Result<ResumeSettings, ConfigError> {
        let key = |k| ["resume", k];
        let zero = |k: &'static str, v: Option<u64>| -> ConfigError {
            let (value, at) = self
                .setting(&key(k), v.map(|v| v.to_string()))
                .unwrap_or_else(|| ("0".into(), Location::file(self.file, format!("resume.{k}"))));
            ConfigError::Value {
                at,
                value,
                expected: "is zero: give at least 1".into(),
            }
        };
        let size = |k: &'static str, v: Option<u64>| -> Result<Option<usize>, ConfigError> {
            match self.number::<usize>(&key(k), v)? {
                Some(0) => Err(zero(k, v)),
                n => Ok(n),
            }
        };
        let count = |k: &'static str, v: Option<u64>| -> Result<Option<u64>, ConfigError> {
            match self.number::<u64>(&key(k), v)? {
                Some(0) => Err(zero(k, v)),
                n => Ok(n),
            }
        };
        let positive = |k: &'static str, v: Option<String>| {
            self.positive(&key(k), v, |v| self.duration(&key(k), v))
        };
        let on_full = match self.setting(&key("on_full"), r.on_full) {
            None => None,
            Some((text, at)) => Some(match text.trim() {
                "wait" => OnFull::Wait,
                "fail" => OnFull::Fail,
                _ => {
                    return Err(ConfigError::Value {
                        at,
                        value: text,
                        expected: "is not `wait` or `fail`".into(),
                    });
                }
            }),
        };
        let identity_check = match self.setting(
            &key("identity_check"),
            r.identity_check.map(|b| b.to_string()),
        ) {
            None => None,
            Some((text, at)) => {
                Some(
                    text.trim()
                        .parse::<bool>()
                        .map_err(|_| ConfigError::Value {
                            at,
                            value: text.clone(),
                            expected: "is not `true` or `false`".into(),
                        })?,
                )
            }
        };
        let settings = ResumeSettings {
            replay_frames: size("replay_frames", r.replay_frames)?,
            replay_bytes: size("replay_bytes", r.replay_bytes)?,
            on_full,
            receive_window: size("receive_window", r.receive_window)?,
            ack_every: count("ack_every", r.ack_every)?,
            ack_delay: self.duration(&key("ack_delay"), r.ack_delay)?,
            heartbeat: positive("heartbeat", r.heartbeat.clone())?,
            idle_timeout: positive("idle_timeout", r.idle_timeout.clone())?,
            reconnect_deadline: positive("reconnect_deadline", r.reconnect_deadline)?,
            backoff_initial: self.duration(&key("backoff_initial"), r.backoff_initial.clone())?,
            backoff_max: self.duration(&key("backoff_max"), r.backoff_max.clone())?,
            exchange_timeout: positive("exchange_timeout", r.exchange_timeout)?,
            identity_check,
        };
        // A zero first wait stays zero when doubled: failed attempts would
        // follow each other without a pause until the deadline.
        if settings.backoff_initial.is_some_and(|d| d.is_zero())
            && let Some((value, at)) =
                self.setting(&key("backoff_initial"), r.backoff_initial.clone())
        {
            return Err(ConfigError::Value {
                at,
                value,
                expected: "is zero, which retries a failed reconnection at once, over and \
                           over: give a duration above 0"
                    .into(),
            });
        }
        // `ResumeConfig::with_backoff` raises a longest wait below the first
        // one to it; a file that says so is refused instead, naming the key
        // it set (the longest wait, if it set both).
        let (default_initial, default_max) = ResumeConfig::new("", "", "").backoff();
        let initial = settings.backoff_initial.unwrap_or(default_initial);
        let max = settings.backoff_max.unwrap_or(default_max);
        if max < initial {
            let (k, v, expected) = if settings.backoff_max.is_some() {
                let default = if settings.backoff_initial.is_some() {
                    ""
                } else {
                    ", the default"
                };
                (
                    "backoff_max",
                    r.backoff_max.clone(),
                    format!("is below backoff_initial ({initial:?}{default}): give at least that"),
                )
            } else {
                (
                    "backoff_initial",
                    r.backoff_initial.clone(),
                    format!("is above backoff_max ({max:?}, the default): give at most that"),
                )
            };
            if let Some((value, at)) = self.setting(&key(k), v) {
                return Err(ConfigError::Value {
                    at,
                    value,
                    expected,
                });
            }
        }
        // A link given up before its next heartbeat could arrive would be
        // replaced over and over while idle; `ResumeConfig::with_heartbeat`
        // would cut such a heartbeat to half the timeout, which a file's
        // settings are not left to.
        let (heartbeat, idle) = ResumeConfig::new("", "", "").heartbeat();
        let (h, i) = (
            settings.heartbeat.unwrap_or(heartbeat),
            settings.idle_timeout.unwrap_or(idle),
        );
        if i < h.saturating_mul(2) {
            let (k, v) = if settings.idle_timeout.is_some() {
                ("idle_timeout", r.idle_timeout)
            } else {
                ("heartbeat", r.heartbeat)
            };
            let (text, at) = self.setting(&key(k), v).unwrap_or_else(|| {
                (
                    format!("{i:?}"),
                    Location::file(self.file, format!("resume.{k}")),
                )
            });
            return Err(ConfigError::Value {
                at,
                value: text,
                expected: format!(
                    "leaves the idle timeout ({i:?}) shorter than two heartbeats ({h:?} each): \
                     an idle link would be given up between heartbeats"
                ),
            });
        }
        Ok(settings)
    }

    fn duration(
        &self,
        key: &[&str],
        value: Option<String>,
    ) -> Result<Option<Duration>, ConfigError> {
        self.setting(key, value)
            .map(|(text, at)| {
                parse_duration(&text).ok_or_else(|| ConfigError::Value {
                    at,
                    value: text.clone(),
                    expected: DURATION_EXPECTED.into(),
                })
            })
            .transpose()
    }

    /// `parse`'s value of limit `key`, refused if it is zero: a zero
    /// deadline or timeout fails every attempt at once.
    fn positive<T: IsZero>(
        &self,
        key: &[&str],
        value: Option<String>,
        parse: impl Fn(Option<String>) -> Result<Option<T>, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        let parsed = parse(value.clone())?;
        if parsed.as_ref().is_some_and(IsZero::is_zero)
            && let Some((text, at)) = self.setting(key, value)
        {
            return Err(ConfigError::Value {
                at,
                value: text,
                expected: "is zero, which fails every attempt at once: give a duration above 0"
                    .into(),
            });
        }
        Ok(parsed)
    }

    fn optional_duration(
        &self,
        key: &[&str],
        value: Option<String>,
    ) -> Result<Option<Option<Duration>>, ConfigError> {
        self.setting(key, value)
            .map(|(text, at)| {
                if text.trim() == "none" {
                    return Ok(None);
                }
                parse_duration(&text)
                    .map(Some)
                    .ok_or_else(|| ConfigError::Value {
                        at,
                        value: text.clone(),
                        expected: format!("{DURATION_EXPECTED}, or `none`"),
                    })
            })
            .transpose()
    }

    fn number<T: TryFrom<u64>>(
        &self,
        key: &[&str],
        value: Option<u64>,
    ) -> Result<Option<T>, ConfigError> {
        self.setting(key, value.map(|v| v.to_string()))
            .map(|(text, at)| {
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| T::try_from(n).ok())
                    .ok_or_else(|| ConfigError::Value {
                        at,
                        value: text.clone(),
                        expected: format!("is not a whole number from 0 to {}", max_of::<T>()),
                    })
            })
            .transpose()
    }
}

/// A limit that may be zero.
trait IsZero {
    fn is_zero(&self) -> bool;
}

impl IsZero for Duration {
    fn is_zero(&self) -> bool {
        Duration::is_zero(self)
    }
}

impl IsZero for Option<Duration> {
    fn is_zero(&self) -> bool {
        self.is_some_and(|d| d.is_zero())
    }
}

/// The keys outside `roles`, with the environment's spelling.
const SETTINGS: [&[&str]; 28] = [
    &["transport"],
    &["session"],
    &["tls", "ca"],
    &["tls", "pinned"],
    &["limits", "wiring_deadline"],
    &["limits", "retry_initial"],
    &["limits", "retry_max"],
    &["limits", "connect_timeout"],
    &["limits", "handshake_timeout"],
    &["limits", "read_deadline"],
    &["limits", "keepalive"],
    &["limits", "linger"],
    &["limits", "max_pending_handshakes"],
    &["limits", "listen_backlog"],
    &["limits", "max_frame_len"],
    &["resume", "replay_frames"],
    &["resume", "replay_bytes"],
    &["resume", "on_full"],
    &["resume", "receive_window"],
    &["resume", "ack_every"],
    &["resume", "ack_delay"],
    &["resume", "heartbeat"],
    &["resume", "idle_timeout"],
    &["resume", "reconnect_deadline"],
    &["resume", "backoff_initial"],
    &["resume", "backoff_max"],
    &["resume", "exchange_timeout"],
    &["resume", "identity_check"],
];

fn known_setting(var: &str) -> bool {
    SETTINGS.iter().any(|path| env_name(path) == var)
}

/// The largest `u64` that fits in `T`.
fn max_of<T: TryFrom<u64>>() -> u64 {
    // Halve the gap until the largest value that converts is found: at
    // most 64 steps.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if T::try_from(mid).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The path of a key as its environment variable spells it (`roles` is
/// `ROLE`).
fn path_for_env<'a>(path: &[&'a str]) -> Vec<&'a str> {
    path.iter()
        .enumerate()
        .map(|(i, p)| if i == 0 && *p == "roles" { "ROLE" } else { *p })
        .collect()
}

const DURATION_EXPECTED: &str =
    "is not a duration (a number and a unit: `250ms`, `15s`, `2m`, `1h`)";

/// `250ms`, `15s`, `2m`, `1h`, `1.5s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

fn transport(name: &str) -> Option<MeshTransport> {
    match name.trim().to_ascii_lowercase().as_str() {
        "tcp" => Some(MeshTransport::Tcp),
        #[cfg(feature = "websocket")]
        "websocket" => Some(MeshTransport::WebSocket),
        #[cfg(feature = "quic")]
        "quic" => Some(MeshTransport::Quic),
        _ => None,
    }
}

fn transport_expected() -> String {
    let mut names = vec!["`tcp`"];
    if cfg!(feature = "websocket") {
        names.push("`websocket`");
    }
    if cfg!(feature = "quic") {
        names.push("`quic`");
    }
    format!(
        "is not a transport this program was built with (one of {})",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration(" 2m "), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("15 parsecs"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn env_names() {
        assert_eq!(
            role_env_var("Seller", "address"),
            "RUMPSTEAK_ROLE_SELLER_ADDRESS"
        );
        assert_eq!(
            role_env_var("order-desk", "bind"),
            "RUMPSTEAK_ROLE_ORDER_DESK_BIND"
        );
        assert_eq!(
            env_name(&path_for_env(&["limits", "wiring_deadline"])),
            "RUMPSTEAK_LIMITS_WIRING_DEADLINE"
        );
    }

    #[test]
    fn largest_values() {
        assert_eq!(max_of::<u32>(), u64::from(u32::MAX));
        assert_eq!(max_of::<u64>(), u64::MAX);
    }

    #[test]
    fn lines_and_columns() {
        assert_eq!(line_column("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_column("abc", 0), (1, 1));
    }
}
