//! Run-time support for the typed roles that the `protocol!` macro of
//! `rumpsteak-aura-macros` generates.
//!
//! The macro turns a global protocol into one module per role, with one
//! state type per point of the role's local type. Every state holds a
//! [`Core`]: the handler and endpoint the role runs on, borrowed for the
//! whole run, and the peers that still expect something of it. A state's
//! methods are thin calls of the handler's operations through the core, so
//! typed roles keep every property of the handler (cancel-safe operations,
//! monitors, every transport) and add none of their own costs beyond moving
//! a few pointers from one state to the next.
//!
//! What lives here rather than in the generated code:
//! - [`Core`], with the drop rule: a state dropped before its end abandons
//!   the protocol, closing the channels to the peers that still expect
//!   something (see [`RumpsteakEndpoint::abandon`]), so they get a
//!   closed-channel error instead of waiting for ever. For a protocol with
//!   a role family the pending members are known only at run time (the
//!   family's size is a run's): [`Core::abandon_with`] lists them only when
//!   a state is dropped before its end;
//! - [`Deadline`], what a typed receive or branch with a timeout returns
//!   when time runs out: the unchanged state, to retry or give up;
//! - re-exports of what the expansion names, so that it needs only one
//!   path (`::rumpsteak_aura_choreography::typed` by default, or this
//!   crate for users of single crates).
//!
//! The states of a role that goes over a family also hold the run's family
//! sizes, and those of a `foreach` the index of the member whose round it
//! is, so they are 16 bytes plus one word per family, plus one in a
//! `foreach`.
//!
//! Users do not call into this crate directly, except for [`Deadline`].
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod core;
mod deadline;

pub use crate::core::{Core, RoleBounds, register_once, unit_serde};
pub use crate::deadline::Deadline;

#[doc(hidden)]
pub use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, Label, Operation, Result, Role, Violation,
};
#[doc(hidden)]
pub use rumpsteak_aura_handler::RumpsteakEndpoint;
#[doc(hidden)]
pub use rumpsteak_aura_protocol::ProjectionError;
#[doc(hidden)]
pub use rumpsteak_aura_protocol::{MAX_MEMBERS, Monitor, Protocol};
#[doc(hidden)]
pub use serde;
