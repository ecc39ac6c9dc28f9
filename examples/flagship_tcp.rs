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

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::flagship;
use common::launch::{self, Args, Transport, address};
use common::narrate::{Say, say};
use common::{BoxError, Endpoint, Role, certs};
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

async fn play(me: Role, args: &Args) -> Result<(), BoxError> {
    // Plain, or TLS with this role's identity from `--certs`: the same
    // options for every transport.
    let options = certs::tcp_options(me, args.certs.as_deref())?;
    let mut ep = match args.transport {
        Transport::Tcp => wire_mesh(me, &args.table, MeshTransport::Tcp, &options).await?,
        Transport::WebSocket => wire_websocket(me, &args.table, &options).await?,
        Transport::Quic => wire_mesh(me, &args.table, MeshTransport::Quic, &options).await?,
    };
    let security = if options.tls().is_some() {
        ", TLS 1.3, each peer's certificate checked for its role"
    } else {
        ""
    };
    say(
        me,
        format_args!(
            "connected to {} peer(s) over {}{security}",
            ep.active_channel_count(),
            args.transport.name()
        ),
    );
    match me {
        Role::Buyer => flagship::buyer(&mut ep, flagship::offers(), &Say).await?,
        Role::Coordinator => flagship::coordinator(&mut ep, &Say).await?,
        Role::Seller => flagship::seller(&mut ep, &Say).await?,
        other => return Err(format!("{other:?} has no part in this protocol").into()),
    }
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

// --------------------------------------------------------------------------
// The command line: without `--role`, the launcher of `common/launch.rs`.

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(
        "buyer=127.0.0.1:7401,coordinator=127.0.0.1:7402,seller=127.0.0.1:7403",
        &[Transport::Tcp, Transport::WebSocket, Transport::Quic],
    )?;
    match args.role {
        None => launch::launch(&args, "roles", RUN_DEADLINE).await,
        Some(me) => play(me, &args).await,
    }
}
