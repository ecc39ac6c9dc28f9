//! The errors of this crate: [`ParseError`] for the text syntax and
//! [`ProjectionError`] for protocols that cannot be projected or monitored.

use std::fmt;

/// Why a protocol text could not be parsed, with the 1-based line and column
/// of the offending token.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_protocol::{ParseErrorKind, Protocol};
///
/// let err = Protocol::parse("A -> B: Ping;\nB : A").unwrap_err();
/// assert_eq!((err.line(), err.column()), (2, 3));
/// assert!(matches!(err.kind(), ParseErrorKind::Unexpected { .. }));
/// assert_eq!(err.to_string(), "line 2, column 3: expected `->`, found `:`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    line: usize,
    column: usize,
    kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, column: usize, kind: ParseErrorKind) -> Self {
        ParseError { line, column, kind }
    }

    /// The 1-based line of the offending token.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column, in characters, of the offending token.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong there.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }
}

/// What is wrong at the position a [`ParseError`] points to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A token other than the grammar allows here.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows, for example ``"`->`"`` or `"a role name"`.
        expected: String,
        /// What is there, for example ``"`:`"`` or `"end of input"`.
        found: String,
    },
    /// A keyword of the syntax where a name is due, such as a message
    /// labelled `end`.
    #[error("`{keyword}` is a keyword and cannot be {expected}: rename it")]
    Keyword {
        /// The keyword.
        keyword: String,
        /// The kind of name due there, for example `"a message label"`.
        expected: String,
    },
    /// A role written with an index (`Worker[i]`) that is not declared as
    /// a family in the `roles` header (`roles Worker[n];`), or a `foreach`
    /// over such a role.
    #[error("role `{role}` is not a family: declare it as `{role}[n]` in the `roles` header")]
    NotAFamily {
        /// The role.
        role: String,
    },
    /// A member of a family used outside a `foreach` over it, or with
    /// another index than the one `foreach` binds.
    #[error(
        "`{role}[{index}]` is not bound here: members of `{role}` are used inside `foreach {role}[{index}] {{ ... }}`"
    )]
    IndexNotBound {
        /// The family.
        role: String,
        /// The index written.
        index: String,
    },
    /// A family written without an index.
    #[error(
        "role `{role}` is a family: name one member, as `{role}[i]` inside `foreach {role}[i] {{ ... }}`"
    )]
    FamilyWithoutIndex {
        /// The family.
        role: String,
    },
    /// `rec`, `continue`, `end` or a nested `foreach` inside a `foreach`.
    #[error("`{keyword}` cannot be used inside a `foreach` body")]
    InForeach {
        /// The keyword found.
        keyword: String,
    },
    /// A role used in a statement is missing from the `roles` header.
    #[error("role `{role}` is not declared in the `roles` header")]
    UndeclaredRole {
        /// The undeclared role.
        role: String,
    },
    /// A role is declared twice in the `roles` header.
    #[error("role `{role}` is declared twice")]
    DuplicateRole {
        /// The role declared twice.
        role: String,
    },
    /// `continue X` outside every `rec X { ... }` block.
    #[error("`continue {name}` is not inside a `rec {name}` block")]
    UnboundLoop {
        /// The loop name.
        name: String,
    },
    /// A loop declared inside a loop of the same name, counting the
    /// statements after a `rec` block as inside it.
    #[error(
        "loop `{name}` is declared inside a loop of the same name (statements after a `rec` block belong to it): rename one of them"
    )]
    ShadowedLoop {
        /// The loop name.
        name: String,
    },
    /// A statement after `continue`, `end`, or a block every path of which
    /// ends with one of them.
    #[error("statement can never run: every path before it ends with `continue` or `end`")]
    Unreachable,
    /// Blocks (`choice`, `rec`) nested deeper than the parser accepts,
    /// counting a block that follows another as inside it.
    #[error("blocks nest more than {limit} deep (a block after a block is inside it)")]
    TooNested {
        /// The limit.
        limit: usize,
    },
    /// A protocol more steps deep than the parser accepts.
    #[error("protocol is more than {limit} steps deep")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The protocol expands to more steps than the parser accepts.
    #[error(
        "protocol expands to more than {limit} steps (statements after a choice are copied into every branch)"
    )]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// More roles than [`MAX_ROLES`](crate::MAX_ROLES), in the `roles`
    /// header or, without one, in the statements; the position is that of
    /// the first role too many.
    #[error("protocol has more than {limit} roles")]
    TooManyRoles {
        /// The limit.
        limit: usize,
    },
    /// A `choice` with more branches than
    /// [`MAX_BRANCHES`](crate::MAX_BRANCHES); the position is that of the
    /// label of the first branch too many.
    #[error("choice has more than {limit} branches")]
    TooManyBranches {
        /// The limit.
        limit: usize,
    },
}

/// Why a protocol cannot be projected, or a local type cannot be monitored.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_protocol::{Protocol, ProjectionError};
///
/// let p = Protocol::parse("A -> A: Ping;")?;
/// let err = p.validate().unwrap_err();
/// assert_eq!(err, ProjectionError::SelfMessage { role: "A".into(), label: "Ping".into() });
/// assert_eq!(err.to_string(), "role `A` sends `Ping` to itself");
/// # Ok::<(), rumpsteak_aura_protocol::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// A role that is not one of the protocol's roles.
    #[error("role `{role}` is not a role of this protocol")]
    UnknownRole {
        /// The unknown role.
        role: String,
    },
    /// A role listed twice in the protocol's roles.
    #[error("role `{role}` is listed twice")]
    DuplicateRole {
        /// The role listed twice.
        role: String,
    },
    /// A message from a role to itself.
    #[error("role `{role}` sends `{label}` to itself")]
    SelfMessage {
        /// The role.
        role: String,
        /// The message label.
        label: String,
    },
    /// A choice without branches.
    #[error("the choice at `{chooser}` has no branches")]
    EmptyChoice {
        /// The role that makes the choice (for a local `branch`, the peer).
        chooser: String,
    },
    /// Two branches of one choice with the same label.
    #[error("the choice at `{chooser}` has two branches labelled `{label}`")]
    DuplicateLabel {
        /// The role that makes the choice (for a local `branch`, the peer).
        chooser: String,
        /// The repeated label.
        label: String,
    },
    /// A choice that no role is told of: in no branch does any other role
    /// begin with an interaction with the chooser.
    #[error(
        "the choice at `{chooser}` between {} tells nobody: no branch begins with an interaction between `{chooser}` and another role",
        Quoted(labels)
    )]
    ChoiceTellsNobody {
        /// The role that makes the choice.
        chooser: String,
        /// The branch labels.
        labels: Vec<String>,
    },
    /// A role that is not told of a choice but must behave differently in
    /// two of its branches: the projections of the branches do not merge.
    #[error(
        "role `{role}` behaves differently in branches `{left}` and `{right}` of the choice at `{chooser}` but is never told which was taken ({detail})"
    )]
    NotTold {
        /// The role that cannot know the branch.
        role: String,
        /// The role that makes the choice.
        chooser: String,
        /// The first of two branches that the role cannot tell apart.
        left: String,
        /// The second of two branches that the role cannot tell apart.
        right: String,
        /// Where the role's behaviour differs, for example
        /// ``"`recv Confirm from C` against `recv Cancel from C`"``.
        detail: String,
    },
    /// A role that is not told of a choice sends a message that its
    /// receiver branches on in some of the choice's branches but not in
    /// others: it cannot know whether to send the message's label first.
    #[error(
        "role `{role}` sends `{label}` to `{to}` in branches it cannot tell apart, but `{to}` branches on that message in only some of them"
    )]
    LabelledInPart {
        /// The sending role.
        role: String,
        /// The receiving role.
        to: String,
        /// The message label.
        label: String,
    },
    /// A local type with a `foreach` (or a choice told to a whole family)
    /// given to a monitor: it must be instantiated for the family's size
    /// first.
    #[error(
        "the local type goes over the family `{family}`: instantiate it for the family's size first (Protocol::instantiate)"
    )]
    NotInstantiated {
        /// The family.
        family: String,
    },
    /// No size was given for a family, or the size is 0 or more than
    /// [`MAX_MEMBERS`](crate::MAX_MEMBERS).
    #[error("the family `{family}` needs a size from 1 to 256")]
    FamilySize {
        /// The family.
        family: String,
    },
    /// A member index at or past the family's size.
    #[error("`{family}[{index}]` is not a member: the family has {size} members")]
    NoSuchMember {
        /// The family.
        family: String,
        /// The index asked for.
        index: usize,
        /// The family's size.
        size: usize,
    },
    /// `continue X` outside every loop named `X`.
    #[error("`continue {name}` is outside every loop named `{name}`")]
    UnboundLoop {
        /// The loop name.
        name: String,
    },
    /// A loop that can come back to its start without any interaction, such
    /// as `rec X { continue X; }`.
    #[error("loop `{name}` can repeat without any interaction")]
    UnguardedLoop {
        /// The loop name.
        name: String,
    },
    /// A loop declared inside a loop of the same name.
    #[error("loop `{name}` is declared inside a loop of the same name")]
    ShadowedLoop {
        /// The loop name.
        name: String,
    },
}

/// Formats labels as `` `a`, `b` ``.
struct Quoted<'a>(&'a [String]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{l}`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_roles_and_branches() {
        let e = ProjectionError::ChoiceTellsNobody {
            chooser: "A".into(),
            labels: vec!["x".into(), "y".into()],
        };
        assert_eq!(
            e.to_string(),
            "the choice at `A` between `x`, `y` tells nobody: no branch begins with an interaction between `A` and another role"
        );
        let e = ParseError::new(
            3,
            14,
            ParseErrorKind::Unexpected {
                expected: "`->`".into(),
                found: "`:`".into(),
            },
        );
        assert_eq!(e.to_string(), "line 3, column 14: expected `->`, found `:`");
    }
}
