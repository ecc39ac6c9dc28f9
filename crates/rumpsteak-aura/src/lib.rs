//! Core traits of rumpsteak-aura.
//!
//! This crate holds what every other layer agrees on and nothing that runs:
//!
//! - [`Role`] and [`Message`], implemented by the user's role and message types;
//! - [`Label`], the name of a branch in a choice;
//! - [`ChoreoHandler`], the interface through which a role performs
//!   choreographic effects (`send`, `recv`, `choose`, `offer`);
//! - [`ProtocolMonitor`], the hook through which a run-time session type
//!   checks each step before it reaches the wire;
//! - the errors: [`ChoreographyError`] and the typed [`TransportError`].
//!
//! It depends on serde and thiserror only: no runtime, no wire format. The
//! transport, the handler and the facade crate build on it.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod handler;
mod label;
mod monitor;
mod role;

pub use error::{
    ChoreographyError, FrameError, Operation, Refusal, RefusalReason, Result, TransportError,
    TransportErrorKind, Violation,
};
pub use handler::ChoreoHandler;
pub use label::Label;
pub use monitor::{ProtocolMonitor, Step, Transition};
pub use role::{Message, Role};
