//! Network sessions for rumpsteak-aura: TCP and WebSocket.
//!
//! Every network transport here opens a
//! [`RumpsteakSession`](rumpsteak_aura_transport::RumpsteakSession), the one
//! session interface of `rumpsteak-aura-transport`, and they share one role
//! handshake, one set of options ([`tcp::TcpOptions`]) and one
//! [`tcp::Mesh`]. The in-memory and sink/stream sessions, and the wire
//! format, stay in `rumpsteak-aura-transport`.
//!
//! - the `tcp` module (feature `tcp`): TCP connections with a role
//!   handshake, and `tcp::Mesh` to wire a multi-party protocol from a table
//!   of addresses;
//! - the `websocket` module (feature `websocket`): WebSocket binary
//!   messages.
//!
//! Plain-text sessions authenticate nothing: any process that reaches a
//! listener can claim any role. Use them on trusted networks only.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "tcp")]
mod handshake;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use rumpsteak_aura_transport::{TransportError, TransportErrorKind};
