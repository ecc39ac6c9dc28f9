//! The `protocol!` macro: typed roles from a global protocol.
//!
//! This crate only expands. It parses, validates and projects the protocol
//! with `rumpsteak-aura-protocol`, the same code that checks protocols at
//! run time, so the compile-time and run-time views of a protocol cannot
//! disagree. Every type the expansion uses lives in `rumpsteak-aura-typed`,
//! named through `::rumpsteak_aura_choreography::typed` unless the
//! invocation says otherwise. Use the macro through the facade
//! (`rumpsteak_aura_choreography::protocol!`, feature `typed`), whose
//! documentation and the book's "Typed roles" chapter describe what it
//! generates.

mod expand;
mod input;
mod names;

use proc_macro::TokenStream;

/// Generates a module of typed roles from a global protocol.
///
/// ```text
/// protocol! {
///     /// Documentation and attributes go to the generated module.
///     #[protocol(roles = "path::To::RoleType", crate = "::rumpsteak_aura_typed")]  // both optional
///     pub mod auction = "roles Buyer, Seller; Buyer -> Seller: Bid(u32);";
/// }
/// protocol! {
///     pub mod auction = file("protocols/auction.mpst");  // relative to CARGO_MANIFEST_DIR
/// }
/// ```
///
/// A protocol that does not parse or does not project is a compile error
/// with the message that `Protocol::parse` or `Protocol::validate` gives at
/// run time, prefixed with the line and column in the protocol text.
///
/// The generated module holds the `Role` enum (or an alias of the type
/// named by `roles = ...`), `PROTOCOL` (the text), `protocol()` and
/// `monitor(role)`, a `unit` module with one type per message without a
/// payload, and one module per role (its name in snake case) with `start`,
/// one `StateN` type per point of the role's local type, `BranchN` enums for
/// external choices and `End`. See the facade's documentation for the full
/// description.
///
/// A protocol with role families (`roles Coordinator, Worker[n];`) also
/// gets `Sizes` (each family's size for one run, checked once by
/// `Sizes::new`), a `Role` whose family variants carry the member index
/// (`Role::Worker(3)`, printed `Worker[3]`), `monitor(role, sizes)`, and
/// one module per family for all its members, started with
/// `worker::Member::new(sizes, i)`. A `foreach` is a loop state whose
/// `next_member` gives each member's round in index order and the state
/// after the last round only when every round is done; a choice told to
/// the family is told to every member by one `choose_<label>`. The book's
/// "Typed roles" chapter describes it, and what is checked at run time.
#[proc_macro]
pub fn protocol(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as input::Input);
    match expand::expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
