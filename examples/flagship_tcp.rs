//! The flagship protocol (see `flagship.rs`) with each role in its own OS
//! process, over loopback TCP, WebSocket or QUIC.
//!
//! ```text
//! cargo run -p rumpsteak-aura-examples --example flagship_tcp                  # all three roles, TCP
//! cargo run -p rumpsteak-aura-examples --example flagship_tcp -- --websocket   # all three roles, WebSocket
//! cargo run -p rumpsteak-aura-examples --example flagship_tcp -- --tls         # TCP with TLS 1.3
//! cargo run -p rumpsteak-aura-examples --example flagship_tcp -- --websocket --tls
//! cargo run -p rumpsteak-aura-examples --example flagship_tcp -- --quic        # QUIC (always TLS 1.3)
//! ```
//!
//! Without `--role`, the program is a launcher: it picks three free
//! loopback ports, starts itself three times as child processes, one per
//! role, and checks that all three finish successfully.
//!
//! With `--role buyer|coordinator|seller` it plays that one role, so the
//! roles can also run in three terminals:
//!
//! ```text
//! flagship_tcp --role seller      [--websocket] [--certs DIR] [--table buyer=ADDR,coordinator=ADDR,seller=ADDR]
//! flagship_tcp --role coordinator ...
//! flagship_tcp --role buyer       ...
//! ```
//!
//! The default table is `127.0.0.1:7401`, `:7402`, `:7403`; start the roles
//! in any order. Over TCP the sessions are wired by `tcp::Mesh` (the role
//! earlier in the table listens, the later one dials, with retries while
//! peers start). Over WebSocket the coordinator listens at its address and
//! the buyer and the seller dial it. Either way the protocol code is the
//! same as in-process (the role functions of `common/flagship.rs`): only
//! the setup and the log differ.
//!
//! With `--tls` the launcher makes a throwaway CA and a certificate per
//! role, writes them as PEM files into a temporary directory (removed at
//! the end) and passes it to each child as `--certs DIR`; each child loads
//! its identity from the files, and every session runs over TLS 1.3 with
//! each side proving its role by certificate (see `common/certs.rs` for
//! the file names, to run the roles by hand with certificates of your own).
//!
//! # From a deployment file, one role per machine
//!
//! ```text
//! flagship_tcp --role Seller      --config mesh.toml   # on the seller's machine
//! flagship_tcp --role Coordinator --config mesh.toml   # on the coordinator's
//! flagship_tcp --role Buyer       --config mesh.toml   # on the buyer's
//! flagship_tcp --config examples/mesh.toml             # all three on this machine
//! ```
//!
//! The file (see `examples/mesh.toml` and `examples/mesh-three-machines.toml`)
//! gives every role's address (a host name or an IP address, and the
//! address it listens on if that differs), the transport, the TLS identity
//! files and the limits; `RUMPSTEAK_ROLE_SELLER_ADDRESS` and the like
//! override it (see `rumpsteak_aura_deploy::Deployment`). Without `--role`,
//! the launcher starts the three roles of the file on this machine.
//!
//! SIGTERM or ctrl-c stops a role cleanly whichever way it was started:
//! it closes its sessions, so its peers' pending receives end at once with
//! a closed channel, and exits with status 143 (130 for ctrl-c) and a
//! message saying the protocol was interrupted.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::flagship;
use common::launch::{self, Args, Transport, address};
use common::narrate::{Say, say};
use common::{BoxError, Endpoint, Role, certs};
use rumpsteak_aura_choreography::deploy::{Deployment, Interrupted, Shutdown};
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::tcp::{Mesh, MeshTransport, TcpOptions};
use rumpsteak_aura_choreography::transport::websocket::{self, WebSocketListener};
use rumpsteak_aura_choreography::transport::{TransportError, TransportErrorKind};

/// How long wiring may take, and how long the launcher waits for its
/// children.
const WIRING_DEADLINE: Duration = Duration::from_secs(15);
const RUN_DEADLINE: Duration = Duration::from_secs(30);

// --------------------------------------------------------------------------
// The protocol: the role functions of `common/flagship.rs`, exactly as they
// run in-process; only the log differs.

// --------------------------------------------------------------------------
// Wiring: the only part that knows about the network.

/// Over TCP or QUIC: the mesh helper wires every pair of roles from the
/// table (of TCP or UDP addresses).
async fn wire_mesh(
    me: Role,
    table: &[(Role, SocketAddr)],
    transport: MeshTransport,
    options: &TcpOptions,
) -> Result<Endpoint, BoxError> {
    let mesh = Mesh::new(table.iter().copied())
        .with_transport(transport)
        .with_options(options.clone())
        .with_deadline(WIRING_DEADLINE);
    let mut ep = Endpoint::new(me);
    for (peer, session) in mesh.connect(&me).await? {
        ep.register_session(peer, session);
    }
    Ok(ep)
}

/// Over WebSocket: a star around the coordinator, which listens at its
/// table address; the others dial it, retrying while it starts.
async fn wire_websocket(
    me: Role,
    table: &[(Role, SocketAddr)],
    options: &TcpOptions,
) -> Result<Endpoint, BoxError> {
    let coordinator_addr = address(table, Role::Coordinator)?;
    let mut ep = Endpoint::new(me);
    if me == Role::Coordinator {
        let listener = WebSocketListener::bind(coordinator_addr, "Coordinator", options).await?;
        for _ in 0..2 {
            let (name, session) =
                tokio::time::timeout(WIRING_DEADLINE, listener.accept_any(&["Buyer", "Seller"]))
                    .await
                    .map_err(|_| "no buyer and seller within the wiring deadline")??;
            let peer = if name == "Buyer" {
                Role::Buyer
            } else {
                Role::Seller
            };
            ep.register_session(peer, session);
        }
    } else {
        let session = dial_websocket(coordinator_addr, me, options).await?;
        ep.register_session(Role::Coordinator, session);
    }
    Ok(ep)
}

async fn dial_websocket(
    addr: SocketAddr,
    me: Role,
    options: &TcpOptions,
) -> Result<RumpsteakSession, TransportError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(20);
    loop {
        match websocket::connect(addr, &format!("{me:?}"), "Coordinator", options).await {
            Ok(session) => return Ok(session),
            // Not listening yet: try again, until the deadline.
            Err(e)
                if matches!(e.kind(), TransportErrorKind::Io(_))
                    && started.elapsed() < WIRING_DEADLINE =>
            {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Why a role stopped before the end of the protocol.
#[derive(Debug)]
enum Stop {
    /// SIGTERM or ctrl-c.
    Interrupted(Interrupted),
    /// Anything else.
    Failed(BoxError),
}

impl<E: Into<BoxError>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Failed(e.into())
    }
}

/// Runs `wiring` unless a signal comes first.
async fn wire<T>(
    shutdown: &mut Shutdown,
    wiring: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, Stop> {
    shutdown
        .or_interrupted(wiring)
        .await
        .map_err(Stop::Interrupted)?
        .map_err(Stop::Failed)
}

/// The role from the command line's table (and `--certs`).
async fn play(me: Role, args: &Args, shutdown: &mut Shutdown) -> Result<(), Stop> {
    // Plain, or TLS with this role's identity from `--certs`: the same
    // options for every transport.
    let options = certs::tcp_options(me, args.certs.as_deref())?;
    let ep = wire(shutdown, async {
        match args.transport {
            Transport::Tcp => wire_mesh(me, &args.table, MeshTransport::Tcp, &options).await,
            Transport::WebSocket => wire_websocket(me, &args.table, &options).await,
            Transport::Quic => wire_mesh(me, &args.table, MeshTransport::Quic, &options).await,
        }
    })
    .await?;
    let tls = options.tls().is_some();
    run(me, ep, args.transport.name(), tls, shutdown).await
}

/// The role from a deployment file: its addresses, transport, identity
/// and limits, with the environment's overrides.
async fn play_deployed(me: Role, config: &Path, shutdown: &mut Shutdown) -> Result<(), Stop> {
    let deployment = Deployment::load(config)?;
    let mesh = deployment.mesh(launch::ROLES, &me)?;
    for (role, entry) in mesh.entries() {
        let listen = match entry.bind() {
            Some(bind) if *role == me => format!(", listening on {bind}"),
            _ => String::new(),
        };
        say(me, format_args!("{role:?} at {}{listen}", entry.address()));
    }
    let ep = wire(shutdown, async {
        let mut ep = Endpoint::new(me);
        for (peer, session) in mesh.connect(&me).await? {
            ep.register_session(peer, session);
        }
        Ok(ep)
    })
    .await?;
    let transport = match deployment.transport() {
        MeshTransport::Tcp => "TCP",
        MeshTransport::WebSocket => "WebSocket",
        MeshTransport::Quic => "QUIC",
        _ => "another transport",
    };
    let tls = mesh.options().tls().is_some();
    run(me, ep, transport, tls, shutdown).await
}

/// Plays `me`'s part of the protocol on the wired endpoint, until it ends
/// or a signal stops it (then every session is closed at once).
async fn run(
    me: Role,
    mut ep: Endpoint,
    transport: &str,
    tls: bool,
    shutdown: &mut Shutdown,
) -> Result<(), Stop> {
    let security = if tls {
        ", TLS 1.3, each peer's certificate checked for its role"
    } else {
        ""
    };
    say(
        me,
        format_args!(
            "connected to {} peer(s) over {transport}{security}",
            ep.active_channel_count(),
        ),
    );
    shutdown
        .run_until_shutdown(&mut ep, async |ep: &mut Endpoint| -> Result<(), BoxError> {
            match me {
                Role::Buyer => flagship::buyer(ep, flagship::offers(), &Say).await?,
                Role::Coordinator => flagship::coordinator(ep, &Say).await?,
                Role::Seller => flagship::seller(ep, &Say).await?,
                other => return Err(format!("{other:?} has no part in this protocol").into()),
            }
            Ok(())
        })
        .await
        .map_err(Stop::Interrupted)??;
    for (peer, meta) in ep.all_metadata() {
        say(
            me,
            format_args!(
                "with {peer:?}: {} operations, last: {}",
                meta.operation_count, meta.state_description
            ),
        );
    }
    ep.close_all_channels();
    Ok(())
}

/// Plays `me` and turns the way it ended into the process's exit: an
/// interrupted protocol exits at once with the signal's status and a
/// message saying so.
async fn play_and_exit(me: Role, args: &Args) -> Result<(), BoxError> {
    // First thing: from here on SIGTERM and ctrl-c stop the role cleanly.
    let mut shutdown = Shutdown::install()?;
    let played = match &args.config {
        Some(config) => play_deployed(me, config, &mut shutdown).await,
        None => play(me, args, &mut shutdown).await,
    };
    match played {
        Ok(()) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::Interrupted(interrupted)) => {
            eprintln!("{me:?}: {interrupted}");
            std::process::exit(interrupted.exit_code());
        }
    }
}

// --------------------------------------------------------------------------
// The command line: without `--role`, the launcher of `common/launch.rs`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match start().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message, not its `Debug` form: it names the file and the
            // key at fault.
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start() -> Result<(), BoxError> {
    let args = Args::parse(
        "buyer=127.0.0.1:7401,coordinator=127.0.0.1:7402,seller=127.0.0.1:7403",
        &[Transport::Tcp, Transport::WebSocket, Transport::Quic],
    )?;
    match (args.role, &args.config) {
        (None, None) => launch::launch(&args, "roles", RUN_DEADLINE).await,
        (None, Some(config)) => launch::launch_from_config(config, "roles", RUN_DEADLINE).await,
        (Some(me), _) => play_and_exit(me, &args).await,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Stdio;

    use super::*;
    use crate::common::certs::CertDir;
    use crate::common::launch::parse_role;
    use rumpsteak_aura_choreography::deploy::{ConfigError, TrustFiles};

    /// Which role a child plays, and from which file.
    const CHILD_ROLE: &str = "FLAGSHIP_TEST_ROLE";
    const CHILD_CONFIG: &str = "FLAGSHIP_TEST_CONFIG";

    /// One role as `flagship_tcp --role ROLE --config FILE` plays it (the
    /// same function): this test binary, started again by the other tests
    /// with only this test selected.
    #[tokio::test]
    #[ignore = "run by the other tests of this module in child processes"]
    async fn role_from_the_environment() {
        let role = parse_role(&std::env::var(CHILD_ROLE).unwrap()).unwrap();
        let args = Args {
            role: Some(role),
            table: Vec::new(),
            transport: Transport::Tcp,
            tls: false,
            certs: None,
            config: Some(PathBuf::from(std::env::var(CHILD_CONFIG).unwrap())),
        };
        play_and_exit(role, &args).await.unwrap();
    }

    /// `role` played from `config` in a child process (this test binary
    /// running `role_from_the_environment`), its output piped.
    fn spawn_role(role: Role, config: &Path) -> tokio::process::Child {
        tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "tests::role_from_the_environment",
                "--nocapture",
            ])
            .env(CHILD_ROLE, format!("{role:?}"))
            .env(CHILD_CONFIG, config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn free_port(ip: &str) -> u16 {
        std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// The flagship's three roles in three processes, each started from
    /// one deployment file as on three machines: TLS with certificates
    /// made now, `localhost` and distinct loopback addresses, wildcard
    /// binds.
    #[tokio::test]
    async fn three_processes_from_one_file_over_tls() {
        let certs = CertDir::create(&launch::ROLES).unwrap();
        let (pb, pc) = (free_port("::"), free_port("0.0.0.0"));
        let text = format!(
            r#"
            transport = "tcp"
            session = "flagship-test"
            [tls]
            ca = "ca.pem"
            [roles.Buyer]
            address = "localhost:{pb}"
            bind = "[::]:{pb}"
            cert = "buyer.pem"
            key = "buyer.key"
            [roles.Coordinator]
            address = "127.0.0.2:{pc}"
            bind = "0.0.0.0:{pc}"
            cert = "coordinator.pem"
            key = "coordinator.key"
            [roles.Seller]
            address = "127.0.0.3:9"
            cert = "seller.pem"
            key = "seller.key"
            [limits]
            wiring_deadline = "20s"
            "#
        );
        let config = certs.path().join("mesh.toml");
        std::fs::write(&config, text).unwrap();

        let children: Vec<_> = launch::ROLES
            .into_iter()
            .map(|role| (role, spawn_role(role, &config)))
            .collect();
        for (role, child) in children {
            // Generous: the protocol takes milliseconds once wired; the
            // bound only turns a hang into a failure on a loaded machine.
            let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
                .await
                .expect("each role finishes within 60 s")
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
            assert!(
                output.status.success(),
                "{role:?}: {}\n{stdout}\n{stderr}",
                output.status
            );
            let connected = format!(
                "[{role:?}] connected to 2 peer(s) over TCP, TLS 1.3, each peer's certificate checked"
            );
            assert!(stdout.contains(&connected), "{role:?}: {stdout}");
            let last = match role {
                Role::Buyer => "[Buyer] bought chair for 35 (receipt #2)",
                Role::Coordinator => "[Coordinator] relays done",
                _ => "[Seller] closes the shop",
            };
            assert!(stdout.contains(last), "{role:?}: {stdout}");
        }
    }

    /// SIGTERM to a role still wiring (its peers never start): it exits
    /// at once with status 143 and says the protocol was interrupted.
    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_stops_a_role_with_status_143() {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

        let dir = CertDir::create(&[]).unwrap();
        let config = dir.path().join("mesh.toml");
        // Nobody listens at the Buyer's and Coordinator's addresses, and
        // the wiring deadline is far off: only the signal can end it soon.
        let text = format!(
            "[roles.Buyer]\naddress = \"127.0.0.2:{}\"\n\
             [roles.Coordinator]\naddress = \"127.0.0.3:{}\"\n\
             [roles.Seller]\naddress = \"localhost:9\"\n\
             [limits]\nwiring_deadline = \"5m\"\n",
            free_port("127.0.0.2"),
            free_port("127.0.0.3"),
        );
        std::fs::write(&config, text).unwrap();
        let mut child = spawn_role(Role::Seller, &config);
        // The role prints its table, then wires: wait for that.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.starts_with("[Seller] Seller at") {
                    return;
                }
            }
            panic!("the role ended before wiring");
        })
        .await
        // Generous: a fresh process on a loaded machine.
        .expect("the role started within 30 s");

        let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        // Far under the 5 min wiring deadline: the signal ended it.
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the role exited within 10 s of SIGTERM")
            .unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        assert_eq!(status.code(), Some(143), "{status}: {stderr}");
        assert!(
            stderr.contains(
                "Seller: the protocol was interrupted by SIGTERM before it finished; no session was open"
            ),
            "{stderr}"
        );
    }

    /// The checked-in deployment files load; the three-machine one names
    /// the certificate files it cannot find here.
    #[test]
    fn the_example_deployment_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let local = Deployment::load_with_env(
            dir.join("mesh.toml"),
            std::iter::empty::<(String, String)>(),
        )
        .unwrap();
        let mesh = local.mesh(launch::ROLES, &Role::Buyer).unwrap();
        let rows: Vec<String> = mesh
            .entries()
            .map(|(_, e)| e.address().to_string())
            .collect();
        assert_eq!(rows, ["localhost:7401", "127.0.0.2:7402", "127.0.0.3:7403"]);

        let file = dir.join("mesh-three-machines.toml");
        let machines =
            Deployment::load_with_env(&file, std::iter::empty::<(String, String)>()).unwrap();
        assert!(matches!(machines.trust(), Some(TrustFiles::Ca(_))));
        assert_eq!(
            machines
                .role("Seller")
                .unwrap()
                .address()
                .unwrap()
                .to_string(),
            "seller.shop.internal:7403"
        );
        let err = machines.mesh(launch::ROLES, &Role::Seller).unwrap_err();
        assert!(matches!(err, ConfigError::Certificate { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: tls.ca: cannot read", file.display())),
            "{err}"
        );
    }
}
