//! Local types: one role's view of a protocol.

use std::fmt;

/// What one role does in a protocol: the projection of a
/// [`GlobalType`](crate::GlobalType) onto that role.
///
/// `Display` prints it on one line:
///
/// | value | printed as |
/// | --- | --- |
/// | `Send` | `send Label(Type) to R; ...` (`send Label to R; ...` without payload) |
/// | `Recv` | `recv Label(Type) from R; ...` |
/// | `Select` | `select to R { a: { ... } b: { ... } }` (this role picks) |
/// | `Branch` | `branch from R { a: { ... } b: { ... } }` (`R` picks) |
/// | `Rec` | `rec X { ... }` |
/// | `Continue` | `continue X` |
/// | `Foreach` | `foreach Worker[i] { ... }; ...` (each member's round, then what follows) |
/// | `End` | `end` |
///
/// ```
/// use rumpsteak_aura_protocol::Protocol;
///
/// let p = Protocol::parse(
///     "Buyer -> Seller: Offer(Price);
///      choice at Seller { accept: { Seller -> Buyer: Receipt; } reject: {} }",
/// )?;
/// assert_eq!(
///     p.project("Buyer")?.to_string(),
///     "send Offer(Price) to Seller; branch from Seller { accept: { recv Receipt from Seller; end } reject: { end } }"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LocalType {
    /// Send a message to `to`, then go on with `then`.
    Send {
        /// The receiving role.
        to: String,
        /// The message label.
        label: String,
        /// The payload type name, if one is written.
        payload: Option<String>,
        /// What follows.
        then: Box<LocalType>,
    },
    /// Receive a message from `from`, then go on with `then`.
    Recv {
        /// The sending role.
        from: String,
        /// The message label.
        label: String,
        /// The payload type name, if one is written.
        payload: Option<String>,
        /// What follows.
        then: Box<LocalType>,
    },
    /// Internal choice: this role picks a label and tells `to` with `choose`.
    Select {
        /// The role told of the choice.
        to: String,
        /// The labels this role may pick, each with what follows it.
        branches: Vec<(String, LocalType)>,
    },
    /// External choice: `from` picks, this role learns the label with `offer`.
    Branch {
        /// The role that picks.
        from: String,
        /// The labels `from` may pick, each with what follows it.
        branches: Vec<(String, LocalType)>,
    },
    /// A loop that `continue name` jumps back to.
    Rec {
        /// The loop name.
        name: String,
        /// The loop body.
        body: Box<LocalType>,
    },
    /// Back to the start of the enclosing loop `name`.
    Continue {
        /// The loop name.
        name: String,
    },
    /// What this role does in each round of a `foreach` over `family`
    /// (whose member is named `family[index]` in `body`), then `then`.
    /// Printed `foreach Worker[i] { ... }; ...`;
    /// [`Protocol::instantiate`](crate::Protocol::instantiate) unrolls it
    /// for a family's size.
    Foreach {
        /// The family.
        family: String,
        /// The index name `body` uses.
        index: String,
        /// One round.
        body: Box<LocalType>,
        /// What follows the last round.
        then: Box<LocalType>,
    },
    /// Nothing more to do.
    End,
}

impl LocalType {
    /// The first step, as in error messages: `send Offer(Price) to Seller`,
    /// `branch from Seller`, `continue Loop`, `end`.
    pub(crate) fn head(&self) -> String {
        match self {
            LocalType::Send {
                to, label, payload, ..
            } => format!("send {} to {to}", Msg(label, payload.as_deref())),
            LocalType::Recv {
                from,
                label,
                payload,
                ..
            } => format!("recv {} from {from}", Msg(label, payload.as_deref())),
            LocalType::Select { to, .. } => format!("select to {to}"),
            LocalType::Branch { from, .. } => format!("branch from {from}"),
            LocalType::Rec { name, .. } => format!("rec {name}"),
            LocalType::Continue { name } => format!("continue {name}"),
            LocalType::Foreach { family, index, .. } => format!("foreach {family}[{index}]"),
            LocalType::End => "end".to_owned(),
        }
    }
}

/// A message as written: `Label(Type)`, `Label(A, B)` for the tuple
/// payload `(A, B)`, or `Label`.
pub(crate) struct Msg<'a>(pub(crate) &'a str, pub(crate) Option<&'a str>);

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(p) if p.starts_with('(') => write!(f, "{}{p}", self.0),
            Some(p) => write!(f, "{}({p})", self.0),
            None => f.write_str(self.0),
        }
    }
}

impl fmt::Display for LocalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = self;
        loop {
            match l {
                LocalType::Send { then, .. } | LocalType::Recv { then, .. } => {
                    write!(f, "{}; ", l.head())?;
                    l = then;
                }
                LocalType::Select { branches, .. } | LocalType::Branch { branches, .. } => {
                    write!(f, "{} {{ ", l.head())?;
                    for (label, body) in branches {
                        write!(f, "{label}: {{ {body} }} ")?;
                    }
                    return f.write_str("}");
                }
                LocalType::Rec { name, body } => return write!(f, "rec {name} {{ {body} }}"),
                LocalType::Foreach { body, then, .. } => {
                    write!(f, "{} {{ {body} }}; ", l.head())?;
                    l = then;
                }
                LocalType::Continue { .. } | LocalType::End => return f.write_str(&l.head()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(to: &str, label: &str, then: LocalType) -> LocalType {
        LocalType::Send {
            to: to.into(),
            label: label.into(),
            payload: None,
            then: Box::new(then),
        }
    }

    #[test]
    fn prints_on_one_line() {
        let l = LocalType::Rec {
            name: "Loop".into(),
            body: Box::new(LocalType::Select {
                to: "B".into(),
                branches: vec![
                    (
                        "ping".into(),
                        send(
                            "B",
                            "Ping",
                            LocalType::Recv {
                                from: "B".into(),
                                label: "Pong".into(),
                                payload: Some("u32".into()),
                                then: Box::new(LocalType::Continue {
                                    name: "Loop".into(),
                                }),
                            },
                        ),
                    ),
                    ("stop".into(), LocalType::End),
                ],
            }),
        };
        assert_eq!(
            l.to_string(),
            "rec Loop { select to B { ping: { send Ping to B; recv Pong(u32) from B; continue Loop } stop: { end } } }"
        );
    }
}
