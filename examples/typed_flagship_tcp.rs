//! The typed flagship (see `typed_flagship.rs`) with each role in its own
//! OS process, over loopback TCP.
//!
//! ```text
//! cargo run -p rumpsteak-aura-examples --example typed_flagship_tcp
//! cargo run -p rumpsteak-aura-examples --example typed_flagship_tcp -- --tls   # TCP with TLS 1.3
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
//! typed_flagship_tcp --role seller      [--certs DIR] [--table buyer=ADDR,coordinator=ADDR,seller=ADDR]
//! typed_flagship_tcp --role coordinator ...
//! typed_flagship_tcp --role buyer       ...
//! ```
//!
//! The default table is `127.0.0.1:7411`, `:7412`, `:7413`; start the roles
//! in any order. `tcp::Mesh` wires the sessions (the role earlier in the
//! table listens, the later one dials, with retries while peers start).
//! The roles are the typed ones of `common/typed.rs`, exactly as they run
//! in memory, each endpoint carrying its monitor: only the setup and the
//! log differ.
//!
//! `--tls` runs every session over TLS 1.3 with each role proving itself
//! by certificate, as in `flagship_tcp` (the launcher code is shared in
//! `common/launch.rs` and `common/certs.rs`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::flagship::offers;
use common::launch::{self, Args, Transport};
use common::narrate::{Say, say};
use common::typed;
/// The generated protocol module, re-exported so that `cargo doc` shows
/// the typed API the roles are written against.
pub use common::typed::purchase;
use common::{BoxError, Endpoint, Role, certs};
use rumpsteak_aura_choreography::transport::tcp::{Mesh, TcpOptions};

/// How long wiring may take, how long a role may run once wired, and how
/// long the launcher waits for its children.
const WIRING_DEADLINE: Duration = Duration::from_secs(15);
const PLAY_DEADLINE: Duration = Duration::from_secs(10);
const RUN_DEADLINE: Duration = Duration::from_secs(30);

// --------------------------------------------------------------------------
// The protocol: the typed roles of `common/typed.rs`; only the log differs.

/// Wires `me` to its peers with the mesh helper, and attaches the monitor
/// projected for `me`.
async fn wire(
    me: Role,
    table: &[(Role, SocketAddr)],
    options: &TcpOptions,
) -> Result<Endpoint, BoxError> {
    let mesh = Mesh::new(table.iter().copied())
        .with_options(options.clone())
        .with_deadline(WIRING_DEADLINE);
    let mut ep = Endpoint::new(me);
    for (peer, session) in mesh.connect(&me).await? {
        ep.register_session(peer, session);
    }
    Ok(ep.with_protocol(purchase::monitor(me)?))
}

async fn play(me: Role, args: &Args) -> Result<(), BoxError> {
    let options = certs::tcp_options(me, args.certs.as_deref())?;
    let mut ep = match args.transport {
        Transport::Tcp => wire(me, &args.table, &options).await?,
        other => {
            return Err(format!("typed roles are wired over TCP, not {}", other.name()).into());
        }
    };
    let security = if options.tls().is_some() {
        ", TLS 1.3, each peer's certificate checked for its role"
    } else {
        ""
    };
    say(
        me,
        format_args!(
            "connected to {} peer(s) over TCP{security}",
            ep.active_channel_count()
        ),
    );
    let run = async {
        match me {
            Role::Buyer => typed::buyer(&mut ep, offers(), &Say).await?,
            Role::Coordinator => typed::coordinator(&mut ep, &Say).await?,
            Role::Seller => typed::seller(&mut ep, &Say).await?,
            other => return Err(format!("{other:?} has no part in this protocol").into()),
        }
        Ok::<(), BoxError>(())
    };
    tokio::time::timeout(PLAY_DEADLINE, run)
        .await
        .map_err(|_| format!("{me:?} did not finish within {PLAY_DEADLINE:?}"))??;
    for (peer, meta) in ep.all_metadata() {
        say(
            me,
            format_args!(
                "with {peer:?}: {} operations, complete: {}, last: {}",
                meta.operation_count, meta.is_complete, meta.state_description
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
        "buyer=127.0.0.1:7411,coordinator=127.0.0.1:7412,seller=127.0.0.1:7413",
        &[Transport::Tcp],
    )?;
    if args.config.is_some() {
        return Err("this example takes no --config (flagship_tcp does)".into());
    }
    match args.role {
        None => launch::launch(&args, "typed roles", RUN_DEADLINE).await,
        Some(me) => play(me, &args).await,
    }
}
