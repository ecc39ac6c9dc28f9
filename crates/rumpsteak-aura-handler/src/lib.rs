//! The rumpsteak-aura handler: choreographic effects over sessions.
//!
//! - [`RumpsteakEndpoint`] is one role's state: one session per peer, each
//!   with its [`SessionMetadata`], and optionally a protocol monitor.
//! - [`RumpsteakHandler`] is the stateless strategy that performs `send`,
//!   `recv`, `choose` and `offer` on an endpoint (it implements
//!   [`ChoreoHandler`](rumpsteak_aura::ChoreoHandler)), plus timeouts and
//!   strict offers.
//!
//! Messages travel as postcard in frames that say whether they carry a
//! message or a label (see `rumpsteak_aura_transport::wire`), so a label can
//! never be misread as a message, nor the reverse.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod endpoint;
mod handler;
mod labels;
mod metadata;
mod totals;

pub use endpoint::RumpsteakEndpoint;
pub use handler::RumpsteakHandler;
pub use labels::{MAX_INTERNED_LABELS, MAX_LABELS_PER_SESSION, intern_label, register_labels};
pub use metadata::{SessionMetadata, Traffic};
pub use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
pub use totals::{SessionCounts, SessionHandle, TotalsHandle};
