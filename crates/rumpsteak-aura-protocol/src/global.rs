//! Global types and their printer.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use crate::ParseError;
use crate::local::Msg;

/// A multiparty protocol seen from above: who sends what to whom, who
/// chooses, where it loops.
///
/// There is no sequencing node: what follows a choice is part of every
/// branch, what follows a loop is part of its body (where the body does not
/// `continue`), and [`GlobalType::End`] marks the end of the whole protocol.
/// The parser builds this form from the text syntax described in the crate
/// documentation; `Display` prints it back in that syntax.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GlobalType {
    /// `from -> to: label(payload);` then `then`.
    Message {
        /// The sending role.
        from: String,
        /// The receiving role.
        to: String,
        /// The message label.
        label: String,
        /// The payload type name, if one is written.
        payload: Option<String>,
        /// What follows.
        then: Box<GlobalType>,
    },
    /// `choice at at { label: { ... } ... }`: `at` picks one branch.
    Choice {
        /// The role that chooses.
        at: String,
        /// The branches, by label, in the order written.
        branches: Vec<(String, GlobalType)>,
    },
    /// `rec name { body }`: a loop that `continue name` jumps back to.
    Rec {
        /// The loop name.
        name: String,
        /// The loop body.
        body: Box<GlobalType>,
    },
    /// `continue name;`: back to the start of the enclosing loop `name`.
    Continue {
        /// The loop name.
        name: String,
    },
    /// `foreach family[index] { body }` then `then`: `body` once for each
    /// member of the family, in index order, where `family[index]` names
    /// the member. The body ends with [`GlobalType::End`] (the end of one
    /// round) and holds no loop, `continue` or nested `foreach`.
    Foreach {
        /// The family, declared as `family[n]` in the `roles` header.
        family: String,
        /// The index name the body uses.
        index: String,
        /// One round.
        body: Box<GlobalType>,
        /// What follows the last round.
        then: Box<GlobalType>,
    },
    /// The end of the protocol.
    End,
}

/// The role a name in a global type stands for: `Worker[i]` is a member of
/// the family `Worker`, any other name is itself.
pub(crate) fn role_of(name: &str) -> &str {
    match name.find('[') {
        Some(i) if name.ends_with(']') => &name[..i],
        _ => name,
    }
}

impl GlobalType {
    /// A message, followed by `then`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::GlobalType;
    ///
    /// let g = GlobalType::message("Buyer", "Seller", "Offer", Some("Price"), GlobalType::End);
    /// assert_eq!(g.to_string(), "Buyer -> Seller: Offer(Price);");
    /// ```
    pub fn message(
        from: impl Into<String>,
        to: impl Into<String>,
        label: impl Into<String>,
        payload: Option<&str>,
        then: GlobalType,
    ) -> Self {
        GlobalType::Message {
            from: from.into(),
            to: to.into(),
            label: label.into(),
            payload: payload.map(str::to_owned),
            then: Box::new(then),
        }
    }

    /// A choice made by `at` among labelled branches.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::GlobalType;
    ///
    /// let g = GlobalType::choice("A", [
    ///     ("yes", GlobalType::message("A", "B", "Yes", None, GlobalType::End)),
    ///     ("no", GlobalType::message("A", "B", "No", None, GlobalType::End)),
    /// ]);
    /// assert_eq!(g.roles(), ["A", "B"]);
    /// ```
    pub fn choice<L: Into<String>>(
        at: impl Into<String>,
        branches: impl IntoIterator<Item = (L, GlobalType)>,
    ) -> Self {
        GlobalType::Choice {
            at: at.into(),
            branches: branches.into_iter().map(|(l, g)| (l.into(), g)).collect(),
        }
    }

    /// A loop named `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::GlobalType;
    ///
    /// let g = GlobalType::rec(
    ///     "Loop",
    ///     GlobalType::message("A", "B", "Tick", None, GlobalType::continue_loop("Loop")),
    /// );
    /// assert_eq!(g, "rec Loop { A -> B: Tick; continue Loop; }".parse()?);
    /// # Ok::<(), rumpsteak_aura_protocol::ParseError>(())
    /// ```
    pub fn rec(name: impl Into<String>, body: GlobalType) -> Self {
        GlobalType::Rec {
            name: name.into(),
            body: Box::new(body),
        }
    }

    /// A jump back to the start of the loop `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::GlobalType;
    ///
    /// assert_eq!(GlobalType::continue_loop("Loop").to_string(), "continue Loop;");
    /// ```
    pub fn continue_loop(name: impl Into<String>) -> Self {
        GlobalType::Continue { name: name.into() }
    }

    /// Every role that sends, receives or chooses, in order of first
    /// appearance; a family counts once, by its name (`Worker` for
    /// `Worker[i]`).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::GlobalType;
    ///
    /// let g: GlobalType = "B -> C: Hi; choice at A { x: { A -> B: X; } }".parse()?;
    /// assert_eq!(g.roles(), ["B", "C", "A"]);
    /// # Ok::<(), rumpsteak_aura_protocol::ParseError>(())
    /// ```
    pub fn roles(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |r: &String| {
            let r = role_of(r);
            if seen.insert(r.to_owned()) {
                out.push(r.to_owned());
            }
        };
        let mut stack = vec![self];
        while let Some(g) = stack.pop() {
            match g {
                GlobalType::Message { from, to, then, .. } => {
                    add(from);
                    add(to);
                    stack.push(then);
                }
                GlobalType::Choice { at, branches } => {
                    add(at);
                    stack.extend(branches.iter().rev().map(|(_, b)| b));
                }
                GlobalType::Rec { body, .. } => stack.push(body),
                GlobalType::Foreach { body, then, .. } => {
                    stack.push(then);
                    stack.push(body);
                }
                GlobalType::Continue { .. } | GlobalType::End => {}
            }
        }
        out
    }
}

impl FromStr for GlobalType {
    type Err = ParseError;

    /// Parses the text syntax; a `roles` header is checked, then dropped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::parse::parse(s).map(|(_, _, g, _)| g)
    }
}

/// Prints the text syntax, four spaces per level, one statement a line.
/// [`GlobalType::End`] prints as nothing, except for a protocol that is
/// nothing but its end, which prints as `end;`. The output parses back to an
/// equal value as long as every name is an identifier and not a keyword.
impl fmt::Display for GlobalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if matches!(self, GlobalType::End) {
            return f.write_str("end;");
        }
        Printer { f, first: true }.global(self, 0)
    }
}

/// Writes one statement a line, with indentation.
struct Printer<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Printer<'_, '_> {
    fn line(&mut self, indent: usize, args: fmt::Arguments<'_>) -> fmt::Result {
        if !self.first {
            self.f.write_char('\n')?;
        }
        self.first = false;
        for _ in 0..indent {
            self.f.write_str("    ")?;
        }
        self.f.write_fmt(args)
    }

    fn global(&mut self, mut g: &GlobalType, indent: usize) -> fmt::Result {
        loop {
            match g {
                GlobalType::Message {
                    from,
                    to,
                    label,
                    payload,
                    then,
                } => {
                    match payload {
                        Some(p) => self.line(
                            indent,
                            format_args!("{from} -> {to}: {};", Msg(label, Some(p))),
                        )?,
                        None => self.line(indent, format_args!("{from} -> {to}: {label};"))?,
                    }
                    g = then;
                }
                GlobalType::Choice { at, branches } => {
                    self.line(indent, format_args!("choice at {at} {{"))?;
                    for (label, body) in branches {
                        if matches!(body, GlobalType::End) {
                            self.line(indent + 1, format_args!("{label}: {{}}"))?;
                        } else {
                            self.line(indent + 1, format_args!("{label}: {{"))?;
                            self.global(body, indent + 2)?;
                            self.line(indent + 1, format_args!("}}"))?;
                        }
                    }
                    return self.line(indent, format_args!("}}"));
                }
                GlobalType::Rec { name, body } => {
                    self.line(indent, format_args!("rec {name} {{"))?;
                    self.global(body, indent + 1)?;
                    return self.line(indent, format_args!("}}"));
                }
                GlobalType::Continue { name } => {
                    return self.line(indent, format_args!("continue {name};"));
                }
                GlobalType::Foreach {
                    family,
                    index,
                    body,
                    then,
                } => {
                    self.line(indent, format_args!("foreach {family}[{index}] {{"))?;
                    self.global(body, indent + 1)?;
                    self.line(indent, format_args!("}}"))?;
                    g = then;
                }
                GlobalType::End => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_nested_blocks_with_indentation() {
        let g = GlobalType::rec(
            "Loop",
            GlobalType::choice(
                "A",
                [
                    (
                        "ping",
                        GlobalType::message(
                            "A",
                            "B",
                            "Ping",
                            Some("u32"),
                            GlobalType::continue_loop("Loop"),
                        ),
                    ),
                    ("stop", GlobalType::End),
                ],
            ),
        );
        assert_eq!(
            g.to_string(),
            "rec Loop {\n    choice at A {\n        ping: {\n            A -> B: Ping(u32);\n            continue Loop;\n        }\n        stop: {}\n    }\n}"
        );
        assert_eq!(GlobalType::End.to_string(), "end;");
    }

    #[test]
    fn roles_in_order_of_first_appearance() {
        let g = GlobalType::message(
            "C",
            "A",
            "m",
            None,
            GlobalType::choice(
                "B",
                [(
                    "x",
                    GlobalType::message("B", "D", "n", None, GlobalType::End),
                )],
            ),
        );
        assert_eq!(g.roles(), ["C", "A", "B", "D"]);
    }
}
