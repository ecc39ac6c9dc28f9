//! Sessions for rumpsteak-aura.
//!
//! A [`RumpsteakSession`] is one role's end of a conversation with one peer:
//! it moves whole frames (`Vec<u8>`) both ways. Sessions come from:
//!
//! - [`SimpleChannel::pair`], an unbounded in-memory channel pair (the
//!   default, and the fast path: no boxing, no dynamic dispatch);
//! - [`BoundedChannel::pair`], an in-memory pair with backpressure;
//! - the network transports (TCP, WebSocket, the role handshake and
//!   `Mesh`), which live in the `rumpsteak-aura-net` crate beside this one
//!   and open the same [`RumpsteakSession`];
//! - [`RumpsteakSession::from_sink_stream`], any `Sink<Vec<u8>>` and
//!   `Stream` of frames, for custom transports;
//! - [`RumpsteakSession::from_transport`], anything implementing the
//!   object-safe [`SessionTransport`] interface.
//!
//! The [`wire`] module defines what the frames contain. The handler crate
//! turns messages and labels into frames and back.
//!
//! With the `test-utils` feature, the `fault` module wraps a session so
//! that its frames are cut off, delayed, corrupted, truncated, duplicated,
//! reordered or stalled, for tests of what a role does when its transport
//! misbehaves.
//!
//! # Memory a slow peer can cost
//!
//! | transport | the sender waits? | buffered for a peer that does not read |
//! |-----------|-------------------|----------------------------------------|
//! | [`SimpleChannel`] | never | unbounded: every frame sent |
//! | [`BoundedChannel`] | when `capacity` frames are queued | `capacity` frames per direction |
//! | TCP, WebSocket (`rumpsteak-aura-net`) | when the kernel buffers are full | kernel socket buffers + one frame being written |
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod bounded;
mod depth;
#[cfg(feature = "test-utils")]
pub mod fault;
mod session;
mod simple;
mod sink_stream;
pub mod wire;

pub use bounded::BoundedChannel;
pub use rumpsteak_aura::{TransportError, TransportErrorKind};
pub use session::{DEFAULT_MAX_FRAME_LEN, RumpsteakSession, SessionTransport};
pub use simple::SimpleChannel;
pub use sink_stream::IntoFrame;
