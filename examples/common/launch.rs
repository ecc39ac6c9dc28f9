//! What the one-process-per-role examples share: the role table given on
//! the command line (`buyer=ADDR,coordinator=ADDR,seller=ADDR`) and the
//! launcher's wait for its children.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::process::Child;

use super::{BoxError, Role};

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
