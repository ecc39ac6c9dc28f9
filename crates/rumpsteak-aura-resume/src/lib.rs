//! Resumable sessions for rumpsteak-aura: sessions that survive a dropped
//! connection, with nothing lost or duplicated.
//!
//! A [`ResumableSession`] implements the one session interface
//! ([`SessionTransport`](rumpsteak_aura_transport::SessionTransport)) over
//! an underlying session it can replace: its *link*. Each direction numbers
//! its frames; each side acknowledges what it received (on every data
//! frame, and on its own when idle); unacknowledged frames wait in a
//! bounded replay buffer. When the link drops, the session gets a new one
//! from its [`Redial`] source (the dialing side redials; the accepting side
//! is handed the reconnection by a `ResumeListener`), both sides prove it
//! is the same session and peer, say the last sequence number each
//! received, and resend exactly what the other lacks. Operations in flight
//! wait; the application sees a delay.
//!
//! The session ends with a typed [`ResumeError`] naming the bound when the
//! peer is not back within the reconnect deadline, the replay buffer
//! overflows ([`OnFull::Fail`]), the peer presents another session, role or
//! identity, the peer restarted and lost its state (its incarnation nonce
//! changed), or the peer speaks another wire version (a peer of version 1,
//! which is not resumable, is refused: over the network in the role
//! handshake already, when both sides' options come from [`link_options`]).
//!
//! The link frames are wire format version 2 (`docs/wire-format.md`,
//! "Resumable sessions"). With the `tcp` feature (default), [`TcpRedial`]
//! redials with `tcp::connect` and [`ResumeListener`] routes reconnections
//! arriving at a `SessionListener`; with `websocket` and `quic`, the same
//! over WebSocket (`WebSocketRedial`, `WebSocketListener`) and QUIC
//! (`QuicRedial`, `QuicListener`).
//!
//! [`ResumeMesh`] (feature `tcp`) is a `Mesh` with a resume policy: it
//! wires every session of one role by the mesh's rules (table, transport,
//! deadline, `MeshError`s) as a resumable session under one
//! [`ResumePolicy`], and gives them back as plain sessions for the
//! endpoint, with a [`ResumeHandle`] per peer. The listener that routes a
//! role's reconnections is owned by the sessions it accepted, so nothing
//! else of the wiring needs to be kept.
//!
//! Every session runs a driver task on the current tokio runtime, which
//! needs timers enabled.
//!
//! The crate's tests cut links over each transport: an in-memory network,
//! TCP through a proxy that cuts at seeded byte counts
//! (`tests/tcp_proxy_cuts.rs`), WebSocket (`tests/websocket_cuts.rs`), and
//! QUIC through a UDP relay that silently drops a connection's path, both
//! ways or one (`tests/quic_cuts.rs`, feature `quic`); each bound has a test
//! of its own (`tests/bounds.rs`). The reliability crate runs resumable
//! sessions under the turmoil network simulation
//! (`tests/resume_simulation.rs` there).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod driver;
mod error;
mod frame;
#[cfg(feature = "tcp")]
mod listener;
#[cfg(feature = "tcp")]
mod mesh;
mod reads;
mod session;

pub use config::{MIN_BACKOFF, MIN_HEARTBEAT, OnFull, ResumeConfig};
pub use error::{RejectReason, ReplayLimit, ResumeError};
pub use frame::RESUME_WIRE_VERSION;
#[cfg(feature = "quic")]
pub use listener::QuicRedial;
#[cfg(feature = "websocket")]
pub use listener::WebSocketRedial;
#[cfg(feature = "tcp")]
pub use listener::{AcceptFuture, AcceptLinks, ResumeListener, TcpRedial, link_options};
#[cfg(feature = "tcp")]
pub use mesh::{MeshSessions, ResumeMesh, ResumePolicy};
pub use session::{LinkFuture, Redial, ResumableSession, ResumeHandle, ResumeStats};
