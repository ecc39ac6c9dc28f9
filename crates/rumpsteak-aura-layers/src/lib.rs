//! Handler layers: behaviour around a [`ChoreoHandler`], composed as
//! wrappers the way tower layers wrap a service.
//!
//! - [`Traced`]: a `tracing` span per operation, inside a span per session;
//! - [`Metered`]: per-peer counters, bytes, errors by class and a latency
//!   histogram, read in process as a [`MetricsSnapshot`] and, with the
//!   `metrics` feature, exported through the `metrics` crate facade;
//! - [`Recording`]: every operation and its outcome in a serde
//!   [`Transcript`], bounded by [`Limits`];
//! - [`Replay`]: a handler that plays one role's transcript back, so that
//!   role's code runs in a test with its peers absent.
//!
//! Every layer is a small struct generic over the handler it wraps, with
//! `inner()`, `inner_mut()` and `into_inner()`, and keeps
//! [`RumpsteakEndpoint`] as its endpoint, so layers stack in any order
//! (`Traced<Metered<RumpsteakHandler<R, M>>>`) and drive code written
//! against `H: ChoreoHandler<Endpoint = RumpsteakEndpoint<R>>`. The
//! operations beyond the trait (`offer_among`, `recv_timeout`,
//! `offer_timeout`, `within`) are reachable through the stack by
//! [`HandlerExt`], implemented for [`RumpsteakHandler`] and every layer.
//!
//! No layer installs a global subscriber or recorder, and no layer keeps
//! global state.
//!
//! [`ChoreoHandler`]: rumpsteak_aura::ChoreoHandler
//! [`RumpsteakEndpoint`]: rumpsteak_aura_handler::RumpsteakEndpoint
//! [`RumpsteakHandler`]: rumpsteak_aura_handler::RumpsteakHandler
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod ext;
mod metered;
mod op;
mod recording;
mod replay;

mod traced;

pub use ext::HandlerExt;
pub use metered::{
    DEFAULT_LATENCY_SAMPLING, ErrorCounts, LatencyHistogram, Metered, MetricsSnapshot, OpCounts,
    PeerMetrics,
};
pub use op::{ErrorClass, MAX_ENTRY_TEXT, OpKind};
pub use recording::{Cancellation, Entry, Limits, RecordedError, Recording, Transcript};
pub use replay::{Attempt, Divergence, Replay};

pub use traced::Traced;
