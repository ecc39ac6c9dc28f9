//! The rumpsteak-aura book, compiled.
//!
//! `docs/` is an mdBook (`mdbook build docs`). This crate exists so that
//! every Rust snippet of the book is compiled and run as a doctest:
//! `cargo test -p rumpsteak-aura-docs`. Each chapter is included below as
//! the documentation of an empty module. The wire format and performance
//! chapters are included from `docs/wire-format.md` and
//! `docs/performance.md`, their canonical paths; the book pulls the same
//! files in through `docs/src/`.
//!
#![doc = include_str!("src/introduction.md")]

#[doc = include_str!("src/quick-start.md")]
pub mod quick_start {}

#[doc = include_str!("src/concepts.md")]
pub mod concepts {}

#[doc = include_str!("src/api.md")]
pub mod api {}

#[doc = include_str!("src/patterns.md")]
pub mod patterns {}

#[doc = include_str!("src/errors.md")]
pub mod errors {}

#[doc = include_str!("src/transports.md")]
pub mod transports {}

#[doc = include_str!("src/security.md")]
pub mod security {}

#[doc = include_str!("src/deployment.md")]
pub mod deployment {}

#[doc = include_str!("src/protocols.md")]
pub mod protocols {}

#[doc = include_str!("src/typed-roles.md")]
pub mod typed_roles {}

#[doc = include_str!("src/layers.md")]
pub mod layers {}

#[doc = include_str!("performance.md")]
pub mod performance {}

#[doc = include_str!("reliability.md")]
pub mod reliability {}

#[doc = include_str!("wire-format.md")]
pub mod wire_format {}
