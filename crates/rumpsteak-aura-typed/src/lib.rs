//! Run-time support for typed roles.
