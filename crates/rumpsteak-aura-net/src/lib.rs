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
//!   messages;
//! - the `tls` module (feature `tls`): TLS 1.3 for both, with each role
//!   proven by its certificate;
//! - the `quic` module (feature `quic`): QUIC connections, one per pair of
//!   roles, with the same identities.
//!
//! Plain-text sessions authenticate nothing: any process that reaches a
//! listener can claim any role, and can read every message. Use them on
//! trusted networks only, and TLS everywhere else.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "tcp")]
mod handshake;
#[cfg(feature = "quic")]
pub mod quic;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod websocket;

#[cfg(feature = "tcp")]
pub use handshake::HANDSHAKE_VERSION;
pub use rumpsteak_aura::{Refusal, RefusalReason};
pub use rumpsteak_aura_transport::{TransportError, TransportErrorKind};
