//! Multiparty session types at run time.
//!
//! A [`Protocol`] is a [`GlobalType`] (who sends what to whom, who chooses,
//! where it loops) with its ordered roles. It is written in a small text
//! syntax, projected onto each role's [`LocalType`], and each local type is
//! compiled into a [`Monitor`], an implementation of
//! [`rumpsteak_aura::ProtocolMonitor`] that a handler consults before every
//! step.
//!
//! ```
//! use rumpsteak_aura::{ProtocolMonitor, Step};
//! use rumpsteak_aura_protocol::Protocol;
//!
//! let p = Protocol::parse(
//!     "roles Buyer, Seller;
//!      Buyer -> Seller: Offer(Price);
//!      choice at Seller {
//!          accept: { Seller -> Buyer: Receipt; }
//!          reject: {}
//!      }",
//! )?;
//! p.validate()?;
//! assert_eq!(
//!     p.project("Buyer")?.to_string(),
//!     "send Offer(Price) to Seller; branch from Seller { accept: { recv Receipt from Seller; end } reject: { end } }"
//! );
//!
//! let mut seller = p.monitor_for("Seller")?;
//! for step in [
//!     Step::Recv { from: "Buyer", message: "Price" },
//!     Step::Choose { to: "Buyer", label: "accept" },
//!     Step::Send { to: "Buyer", message: "Receipt" },
//! ] {
//!     seller.step(&step)?;
//! }
//! assert!(seller.is_complete());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Syntax
//!
//! ```text
//! protocol  := header? stmt*
//! header    := "roles" decl ("," decl)* ";"
//! decl      := Ident ("[" Ident "]")?                  a role, or a family and its size
//! stmt      := role "->" role ":" Ident payload? ";"                message
//!            | "choice" "at" Ident "{" (Ident ":" "{" stmt* "}")* "}"
//!            | "rec" Ident "{" stmt* "}"
//!            | "continue" Ident ";"
//!            | "end" ";"
//!            | "foreach" Ident "[" Ident "]" "{" stmt* "}"         each member's round
//! role      := Ident ("[" Ident "]")?                  a member inside a `foreach`
//! payload   := "(" (Ident ("," Ident)*)? ")"
//! Ident     := [A-Za-z_][A-Za-z0-9_]*, except the keywords
//!              roles, choice, at, rec, continue, end, foreach
//! ```
//!
//! - `A -> B: Offer(Price);` is a message from `A` to `B` with label `Offer`
//!   and payload type `Price`; `A -> B: Ping;` and `A -> B: Ping();` have
//!   label `Ping` and no payload type; `A -> B: Pair(u32, Text);` carries
//!   the tuple `(u32, Text)`. A keyword where a name is due is refused with
//!   [`ParseErrorKind::Keyword`], which names it.
//! - With a `roles` header every role used must be declared, and the roles
//!   are in declaration order; without one they are in order of first
//!   appearance.
//! - `//` starts a comment that runs to the end of the line.
//! - The end of the text is the end of the protocol; `end;` ends it
//!   explicitly, also inside a branch.
//! - Statements after a `choice` block continue every branch that does not
//!   end with `continue` or `end;`. Statements after a `rec` block run when
//!   its body does not `continue`: they become part of the loop body, so a
//!   loop declared after a loop must not reuse its name. The global type has
//!   no sequencing node, so such statements are copied into each place they
//!   continue.
//! - `continue X;` must be inside `rec X { ... }`, and nothing may follow
//!   `continue` or `end;` in the same block (nor a block every path of which
//!   ends that way).
//!
//! Errors are [`ParseError`]s with 1-based line and column, such as
//! ``line 3, column 14: expected `->`, found `:` ``.
//!
//! The parser bounds what it builds, so that no input can exhaust the stack
//! or the memory: blocks nest at most 128 deep (counting a block that
//! follows another as inside it), the global type is at most 1000 steps
//! deep, and building it may create at most 100 000 nodes (the copies above
//! count). A protocol has at most [`MAX_ROLES`] (256) roles and a choice at
//! most [`MAX_BRANCHES`] (256) branches. The parser checks these limits as
//! it reads, so oversize text is refused at the first statement (or role, or
//! branch) past a limit, in time linear in the text read so far. Every
//! function of this crate loops over runs of messages and recurses once per
//! block; checking and projecting a protocol takes memory linear in its
//! nodes (each holding a set of at most [`MAX_ROLES`] bits), and projecting
//! it onto every role, as [`Protocol::validate`] does, takes time
//! proportional to nodes × roles. A [`GlobalType`] built by hand should stay
//! within the same bounds.
//!
//! # Choices
//!
//! In `choice at A { l1: { G1 } ... ln: { Gn } }` the role `A` picks a
//! label. It tells its choice directly, with the handler's `choose`, to the
//! set of **told** roles: every role `R` other than `A` such that, in at
//! least one branch, `R`'s first interaction is with `A`. An interaction is
//! a message in either direction, or a nested choice that `R` makes or is
//! told of. A role that hears first from the chooser only after a
//! `continue` (the loop's next round, unfolded) is told too, but only if
//! its branches do not merge without it, so that protocols that merged
//! keep their wire.
//!
//! - `A` performs its `choose` steps at the choice point, one per told role,
//!   in the protocol's role order. Its local type is a chain of selects:
//!   `select to R1 { li: { select to R2 { li: { ... proj(Gi) } } } }`, where
//!   every select after the first offers only the label already picked.
//! - Each told role `R` gets `branch from A { l1: { proj(G1) } ... }`.
//! - Every other role gets the **merge** of its projections of all
//!   branches (the full merge):
//!   - equal steps merge their continuations;
//!   - receives from the same sender with **distinct labels** merge into a
//!     branch on the message received, `branch from B { Foo: { recv Foo
//!     from B; ... } Bar: { recv Bar from B; ... } }`. A message frame
//!     carries no type, so the sender sends such a message's label first
//!     (its local type has `select to C { Foo: { send Foo to C; ... } }`),
//!     and the receiver learns the branch from it;
//!   - such a receive also merges with a `branch from` the same sender
//!     (its label joins the others), and two `branch from` the same role
//!     merge into one with the union of their labels, merging the
//!     continuations of shared labels;
//!   - sends must be identical, and two `select to` the same role need
//!     the same labels;
//!   - anything else does not merge and the protocol is rejected with
//!     [`ProjectionError::NotTold`], naming the role, the chooser, two
//!     branches and the steps that differ: the same label received in both
//!     branches and then different steps (``after `recv Same from B` in
//!     both, `send Thanks to B` against `end` ``), one label with two
//!     payloads, sends that differ, or selects with different labels
//!     (``select to B { p, q }` against `select to B { p, r }``).
//!
//! A choice with no branches, two branches with one label, or nobody to
//! tell is rejected.
//!
//! # Loops
//!
//! `rec X { G }` projects onto `rec X { proj(G) }`. A role that does
//! nothing between the start of a round and a `continue` (a bystander of
//! that round) does not follow the loop: for it, such a branch is the loop
//! again, so merging leaves it out, and what it does when the loop is left
//! is its continuation. `rec X { choice at A { more: { A -> B: M; continue
//! X; } stop: { A -> B: S; } } } B -> C: Done;` projects onto `C` as `recv
//! Done from B; end`. A role that occurs nowhere in the loop has nothing to
//! do in it, and a `rec` whose projection never continues is dropped.
//! Every path from `rec X` to `continue X` must pass through a message or a
//! choice, `continue` must be bound, and a loop may not be declared inside a
//! loop of the same name.
//!
//! # Role families
//!
//! `roles Coordinator, Worker[n];` declares a family `Worker` whose size
//! `n` is known only at run time. `foreach Worker[i] { ... }` runs its body
//! once per member, in index order, with `Worker[i]` naming the member; the
//! body may use the member and roles that are not families, and holds no
//! `rec`, `continue`, `end;` or nested `foreach`. A choice whose told roles
//! include a family is told to every member.
//!
//! The family is projected once: [`Protocol::project`]`("Worker")` is every
//! member's local type (a member takes part in its own round only), and
//! the other roles' local types hold `foreach Worker[i] { ... }` rounds and
//! `select to Worker[*]` for a choice told to the whole family.
//! [`Protocol::instantiate`] unrolls them for a size and a member given at
//! run time, [`Protocol::monitor_instance`] monitors one concrete role
//! (`"Worker[3]"`, see [`member_name`]), and [`Protocol::instance_roles`]
//! lists the concrete roles, the table a transport's addresses are keyed
//! by.
//!
//! # Local types
//!
//! [`LocalType`]'s `Display` prints one line, for example
//! `send Offer(Price) to Seller; branch from Seller { accept: { recv Receipt from Seller; end } reject: { end } }`;
//! its documentation lists each form.
//!
//! # Monitors
//!
//! A [`Monitor`] matches each `Step` against the next node of its local
//! type, by role name and by message name: a message goes by its payload
//! type name, or by its label when it has no payload type. Roles are
//! compared as strings; the handler passes each role's `Debug` form, so a
//! role enum's variant `Buyer` is the role `"Buyer"` of the protocol. Type
//! names are the short names the handler passes (`Price`, not
//! `my_crate::Price`). See [`Monitor`] for the exact rules and messages.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod family;
mod global;
mod local;
mod monitor;
mod parse;
mod project;
mod protocol;
mod roleset;

pub use error::{ParseError, ParseErrorKind, ProjectionError};
pub use family::{MAX_MEMBERS, member_name};
pub use global::GlobalType;
pub use local::LocalType;
pub use monitor::{Labels, Monitor, NextStep};
pub use parse::{MAX_BRANCHES, MAX_ROLES};
pub use protocol::Protocol;
