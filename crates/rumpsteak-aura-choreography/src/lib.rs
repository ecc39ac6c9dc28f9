// The README's typed example needs the `typed` feature, so the README is the
// crate documentation (and its doctest) only with it.
#![cfg_attr(feature = "typed", doc = include_str!("../../../README.md"))]
#![cfg_attr(
    not(feature = "typed"),
    doc = "Choreographic protocols over async channels: the rumpsteak-aura facade. \
           The README, with its examples, is this documentation with the `typed` feature."
)]
//!
//! # Layout
//!
//! This crate only re-exports; the code lives in the layer crates:
//!
//! | module | crate |
//! |---|---|
//! | crate root, [`effects`] | `rumpsteak-aura` (core traits, labels, errors) |
//! | [`effects::handlers::rumpsteak`] | `rumpsteak-aura-handler` and `rumpsteak-aura-transport` |
//! | [`transport`] | `rumpsteak-aura-transport` (sessions, wire format, in-memory sessions) and `rumpsteak-aura-net` (`tcp`, `websocket`, `tls`, `quic`) |
//! | [`protocol`](mod@protocol) | `rumpsteak-aura-protocol` (global types, projection, run-time monitors) |
//! | [`layers`] | `rumpsteak-aura-layers` (tracing, metrics, recording and replay around a handler) |
//! | `typed`, [`protocol!`](macro@protocol) (feature `typed`) | `rumpsteak-aura-typed` and `rumpsteak-aura-macros` (typed roles generated from a global protocol) |

pub use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, FrameError, Label, Message, Operation, ProtocolMonitor,
    Result, Role, Step, TransportError, TransportErrorKind, Violation,
};
pub use rumpsteak_aura_handler::{
    RumpsteakEndpoint, RumpsteakHandler, RumpsteakSession, SessionMetadata, SimpleChannel,
};

/// Choreographic effects: the handler interface, labels, errors and the
/// handlers that implement them.
pub mod effects {
    pub use rumpsteak_aura::{
        ChoreoHandler, ChoreographyError, FrameError, Label, Operation, ProtocolMonitor, Result,
        Step, TransportError, TransportErrorKind, Violation,
    };

    /// The available handlers.
    pub mod handlers {
        /// The rumpsteak handler, its endpoint, and the sessions it runs on.
        pub mod rumpsteak {
            pub use rumpsteak_aura_handler::*;
            pub use rumpsteak_aura_transport::{IntoFrame, SessionTransport};
        }
    }
}

/// Sessions, the wire format and the transports.
pub mod transport {
    pub use rumpsteak_aura::{Refusal, RefusalReason};
    #[cfg(feature = "tcp")]
    pub use rumpsteak_aura_net::HANDSHAKE_VERSION;
    #[cfg(feature = "quic")]
    pub use rumpsteak_aura_net::quic;
    #[cfg(feature = "tcp")]
    pub use rumpsteak_aura_net::tcp;
    #[cfg(feature = "tls")]
    pub use rumpsteak_aura_net::tls;
    #[cfg(feature = "websocket")]
    pub use rumpsteak_aura_net::websocket;
    pub use rumpsteak_aura_transport::*;
}

/// Session types at run time: global protocols, projection onto local types,
/// and the monitors that endpoints check every step against.
pub mod protocol {
    pub use rumpsteak_aura_protocol::*;
}

/// Handler layers: tracing spans, metrics, recording, and replay of one role
/// alone.
pub mod layers {
    pub use rumpsteak_aura_layers::*;
}

/// Deploying roles on separate machines: a deployment file of role
/// addresses, identities and limits, and graceful shutdown (feature
/// `deploy`).
#[cfg(feature = "deploy")]
pub mod deploy {
    pub use rumpsteak_aura_deploy::*;
}

/// Run-time support of the typed roles that [`protocol!`](macro@protocol)
/// generates.
#[cfg(feature = "typed")]
pub mod typed {
    pub use rumpsteak_aura_typed::*;
}

#[cfg(feature = "typed")]
pub use rumpsteak_aura_macros::protocol;
