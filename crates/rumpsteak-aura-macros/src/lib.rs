//! The `protocol!` macro.
