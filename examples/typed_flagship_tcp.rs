//! The typed flagship (see `typed_flagship.rs`) with each role in its own
//! OS process, over loopback TCP.
//!
//! ```text
//! cargo run -p rumpsteak-aura-examples --example typed_flagship_tcp
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
//! typed_flagship_tcp --role seller      [--table buyer=ADDR,coordinator=ADDR,seller=ADDR]
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

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::flagship::offers;
use common::launch::{self, ROLES, format_table, parse_role, parse_table};
use common::narrate::{Say, say};
use common::typed;
/// The generated protocol module, re-exported so that `cargo doc` shows
/// the typed API the roles are written against.
pub use common::typed::purchase;
use common::{BoxError, Endpoint, Role};
use rumpsteak_aura_choreography::transport::tcp::Mesh;

/// How long wiring may take, how long a role may run once wired, and how
/// long the launcher waits for its children.
const WIRING_DEADLINE: Duration = Duration::from_secs(15);
const PLAY_DEADLINE: Duration = Duration::from_secs(10);
const RUN_DEADLINE: Duration = Duration::from_secs(30);

// --------------------------------------------------------------------------
// The protocol: the typed roles of `common/typed.rs`; only the log differs.

/// Wires `me` to its peers with the mesh helper, and attaches the monitor
/// projected for `me`.
async fn wire(me: Role, table: &[(Role, SocketAddr)]) -> Result<Endpoint, BoxError> {
    let mesh = Mesh::new(table.iter().copied()).with_deadline(WIRING_DEADLINE);
    let mut ep = Endpoint::new(me);
    for (peer, session) in mesh.connect(&me).await? {
        ep.register_session(peer, session);
    }
    Ok(ep.with_protocol(purchase::monitor(me)?))
}

async fn play(me: Role, table: &[(Role, SocketAddr)]) -> Result<(), BoxError> {
    let mut ep = wire(me, table).await?;
    say(
        me,
        format_args!("connected to {} peer(s)", ep.active_channel_count()),
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
// The launcher and the command line.

/// Starts one child process per role and checks that each succeeds.
async fn launch() -> Result<(), BoxError> {
    // Free ports, found by binding port 0 and letting go.
    let mut table = Vec::new();
    for role in ROLES {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        table.push((role, probe.local_addr()?));
    }
    let table_arg = format_table(&table);
    println!(
        "launching {} typed roles over TCP: {table_arg}",
        ROLES.len()
    );

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for role in ROLES {
        let child = tokio::process::Command::new(&exe)
            .args([
                "--role",
                &format!("{role:?}").to_lowercase(),
                "--table",
                &table_arg,
            ])
            .kill_on_drop(true)
            .spawn()?;
        children.push((role, child));
    }

    launch::wait_all(children, RUN_DEADLINE, "typed roles").await
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut role = None;
    let mut table =
        parse_table("buyer=127.0.0.1:7411,coordinator=127.0.0.1:7412,seller=127.0.0.1:7413")?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--role" => role = Some(parse_role(&args.next().ok_or("--role needs a value")?)?),
            "--table" => table = parse_table(&args.next().ok_or("--table needs a value")?)?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    match role {
        None => launch().await,
        Some(me) => play(me, &table).await,
    }
}
