//! What the one-process-per-role examples share: the command line (the
//! role table `buyer=ADDR,coordinator=ADDR,seller=ADDR`, the transport,
//! `--tls`, or a deployment file with `--config`), and the launcher, which
//! starts one child per role and waits for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Child;

use super::certs::{CertDir, role_name};
use super::{BoxError, Role};

/// How the roles' sessions travel.
///
/// A new transport (QUIC) is a new variant here with its flag in
/// [`Transport::from_flag`], and an arm in the `match` on the transport in
/// each example's wiring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Length-delimited frames over TCP (the default).
    Tcp,
    /// WebSocket binary messages (`--websocket`).
    WebSocket,
    /// QUIC over UDP (`--quic`); always encrypted, so it implies `--tls`.
    Quic,
}

impl Transport {
    /// The transport a command-line flag selects, if it is a transport
    /// flag.
    fn from_flag(flag: &str) -> Option<Transport> {
        match flag {
            "--websocket" => Some(Transport::WebSocket),
            "--quic" => Some(Transport::Quic),
            _ => None,
        }
    }

    /// The flag that selects this transport, if it is not the default.
    fn flag(self) -> Option<&'static str> {
        match self {
            Transport::Tcp => None,
            Transport::WebSocket => Some("--websocket"),
            Transport::Quic => Some("--quic"),
        }
    }

    /// Its name in the log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::WebSocket => "WebSocket",
            Transport::Quic => "QUIC",
        }
    }
}

/// The command line of a one-process-per-role example.
#[derive(Debug)]
pub(crate) struct Args {
    /// `--role R`: play that role; without it, launch all of them.
    pub(crate) role: Option<Role>,
    /// `--table buyer=ADDR,coordinator=ADDR,seller=ADDR`.
    pub(crate) table: Vec<(Role, SocketAddr)>,
    /// `--websocket`, or TCP.
    pub(crate) transport: Transport,
    /// `--tls`: the launcher makes throwaway certificates for the roles.
    pub(crate) tls: bool,
    /// `--certs DIR`: the roles' certificates and keys as PEM files (see
    /// `common/certs.rs`); implies TLS.
    pub(crate) certs: Option<PathBuf>,
    /// `--config FILE`: a deployment file (see `examples/mesh.toml`) that
    /// sets the addresses, the transport, the identities and the limits
    /// instead of the other options.
    pub(crate) config: Option<PathBuf>,
}

impl Args {
    /// Reads the process's arguments; `transports` are those the example
    /// can wire.
    pub(crate) fn parse(default_table: &str, transports: &[Transport]) -> Result<Args, BoxError> {
        let mut parsed = Args {
            role: None,
            table: parse_table(default_table)?,
            transport: Transport::Tcp,
            tls: false,
            certs: None,
            config: None,
        };
        let mut table_given = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--role" => {
                    parsed.role = Some(parse_role(&args.next().ok_or("--role needs a value")?)?);
                }
                "--table" => {
                    parsed.table = parse_table(&args.next().ok_or("--table needs a value")?)?;
                    table_given = true;
                }
                "--config" => {
                    parsed.config = Some(args.next().ok_or("--config needs a file")?.into());
                }
                "--tls" => parsed.tls = true,
                "--certs" => {
                    parsed.certs = Some(args.next().ok_or("--certs needs a directory")?.into());
                }
                flag => match Transport::from_flag(flag) {
                    Some(t) if transports.contains(&t) => parsed.transport = t,
                    Some(t) => {
                        return Err(format!("this example does not run over {}", t.name()).into());
                    }
                    None => return Err(format!("unknown argument `{flag}`").into()),
                },
            }
        }
        if parsed.config.is_some() {
            if table_given
                || parsed.tls
                || parsed.certs.is_some()
                || parsed.transport != Transport::Tcp
            {
                return Err(
                    "the deployment file of --config sets the addresses, the transport \
                            and the identities: leave out --table, --tls, --certs, --websocket \
                            and --quic"
                        .into(),
                );
            }
            return Ok(parsed);
        }
        if parsed.transport == Transport::Quic && parsed.certs.is_none() {
            // QUIC always runs TLS: the launcher makes the certificates.
            parsed.tls = true;
        }
        if parsed.role.is_some() && parsed.tls && parsed.certs.is_none() {
            return Err("--tls with --role needs --certs DIR (the launcher makes one)".into());
        }
        Ok(parsed)
    }

    /// Whether the sessions run over TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        self.tls || self.certs.is_some()
    }
}

/// The launcher: picks free loopback ports, makes the certificates if
/// TLS is asked for without a `--certs` directory, starts this program
/// once per role, and waits for every child within `deadline`. `what`
/// names the roles in the log (`typed roles`).
pub(crate) async fn launch(args: &Args, what: &str, deadline: Duration) -> Result<(), BoxError> {
    // Free ports, found by binding port 0 and letting go.
    let mut table = Vec::new();
    for role in ROLES {
        let addr = match args.transport {
            Transport::Quic => std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?,
            Transport::Tcp | Transport::WebSocket => {
                std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?
            }
        };
        table.push((role, addr));
    }
    let table_arg = format_table(&table);
    let security = if args.uses_tls() { " with TLS 1.3" } else { "" };
    println!(
        "launching {} {what} over {}{security}: {table_arg}",
        ROLES.len(),
        args.transport.name()
    );

    // Removed when dropped, after the children are done.
    let made = match (&args.certs, args.tls) {
        (None, true) => Some(CertDir::create(&ROLES)?),
        _ => None,
    };
    let certs: Option<&Path> = made.as_ref().map(CertDir::path).or(args.certs.as_deref());
    if let Some(dir) = certs {
        let names: Vec<String> = ROLES.into_iter().map(role_name).collect();
        let source = if made.is_some() {
            "certificates from a throwaway CA"
        } else {
            "certificates"
        };
        println!(
            "TLS role identities: {}; {source} in {}",
            names.join(", "),
            dir.display()
        );
    }

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for role in ROLES {
        let mut command = tokio::process::Command::new(&exe);
        command
            .args([
                "--role",
                &format!("{role:?}").to_lowercase(),
                "--table",
                &table_arg,
            ])
            .kill_on_drop(true);
        if let Some(flag) = args.transport.flag() {
            command.arg(flag);
        }
        if let Some(dir) = certs {
            command.arg("--certs").arg(dir);
        }
        children.push((role, command.spawn()?));
    }

    wait_all(children, deadline, what).await
}

/// The launcher for a deployment file: starts this program once per role
/// with `--role ROLE --config FILE`, as each machine of the deployment
/// would, and waits for every child within `deadline`.
pub(crate) async fn launch_from_config(
    config: &Path,
    what: &str,
    deadline: Duration,
) -> Result<(), BoxError> {
    println!(
        "launching {} {what} from {} on this machine",
        ROLES.len(),
        config.display()
    );
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for role in ROLES {
        let mut command = tokio::process::Command::new(&exe);
        command
            .arg("--role")
            .arg(role_name(role))
            .arg("--config")
            .arg(config)
            .kill_on_drop(true);
        children.push((role, command.spawn()?));
    }
    wait_all(children, deadline, what).await
}

/// The roles, in table order.
pub(crate) const ROLES: [Role; 3] = [Role::Buyer, Role::Coordinator, Role::Seller];

/// Waits for every child within `deadline`, and says which failed. `what`
/// names the roles in the success line (`all 3 typed roles finished ...`).
pub(crate) async fn wait_all(
    children: Vec<(Role, Child)>,
    deadline: Duration,
    what: &str,
) -> Result<(), BoxError> {
    let count = children.len();
    let mut failed = Vec::new();
    for (role, mut child) in children {
        match tokio::time::timeout(deadline, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => failed.push(format!("{role:?} exited with {status}")),
            Ok(Err(e)) => failed.push(format!("{role:?}: {e}")),
            Err(_) => failed.push(format!("{role:?} did not finish within {deadline:?}")),
        }
    }
    if failed.is_empty() {
        println!("all {count} {what} finished successfully");
        Ok(())
    } else {
        Err(failed.join("; ").into())
    }
}

pub(crate) fn parse_role(name: &str) -> Result<Role, BoxError> {
    ROLES
        .into_iter()
        .find(|r| format!("{r:?}").eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("unknown role `{name}` (buyer, coordinator or seller)").into())
}

pub(crate) fn parse_table(text: &str) -> Result<Vec<(Role, SocketAddr)>, BoxError> {
    let mut table = Vec::new();
    for entry in text.split(',') {
        let (role, addr) = entry
            .split_once('=')
            .ok_or_else(|| format!("table entry `{entry}` is not ROLE=ADDR"))?;
        table.push((parse_role(role)?, addr.parse()?));
    }
    // Table order decides who listens: keep the protocol's order whatever
    // order the entries were given in.
    table.sort_by_key(|(role, _)| ROLES.iter().position(|r| r == role));
    for role in ROLES {
        address(&table, role)?;
    }
    Ok(table)
}

pub(crate) fn format_table(table: &[(Role, SocketAddr)]) -> String {
    let entries: Vec<String> = table
        .iter()
        .map(|(role, addr)| format!("{}={addr}", format!("{role:?}").to_lowercase()))
        .collect();
    entries.join(",")
}

pub(crate) fn address(table: &[(Role, SocketAddr)], role: Role) -> Result<SocketAddr, BoxError> {
    table
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, addr)| *addr)
        .ok_or_else(|| format!("the table has no address for {role:?}").into())
}
