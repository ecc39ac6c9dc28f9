//! [`Monitor`]: a local type compiled for run-time checks.

use std::fmt::{self, Write as _};

use rumpsteak_aura::{ProtocolMonitor, Step, Transition, Violation};

use crate::local::Msg;
use crate::roleset::RoleSet;
use crate::{LocalType, ProjectionError};

/// How many steps [`ProtocolMonitor::describe`] writes before `…`.
const DESCRIBE_STEPS: usize = 3;

/// Checks one role's steps against its local type at run time.
///
/// [`Monitor::new`] compiles the local type into an arena of nodes in which
/// `continue` is a jump back to the loop's first node, so
/// [`check`](ProtocolMonitor::check) and [`advance`](ProtocolMonitor::advance)
/// allocate nothing and cost a few string comparisons, once per step, and
/// [`involves`](ProtocolMonitor::involves) reads a bit precomputed per node.
///
/// Steps match nodes as follows (peers are role names: the handler passes
/// each role's `Debug` form, so the enum variant `Seller` is `"Seller"`):
///
/// - `Step::Send { to, message }` matches `send Label(Type) to R` when
///   `to == R` and `message == Type`, or `message == Label` when no payload
///   type is written; `Step::Recv` likewise matches `recv`;
/// - `Step::Choose { to, label }` matches `select to R` when `to == R` and
///   `label` is one of its labels;
/// - `Step::Offer { from, label: None }` matches `branch from R` when
///   `from == R` (and [`advance`](ProtocolMonitor::advance) does not move);
///   with `label: Some(l)`, `l` must also be one of its labels.
///
/// A mismatch is [`Violation::OutOfProtocol`], whose `expected` says what
/// the type allows next: `send Offer(Price) to Seller`,
/// `recv Ack from Seller`, `choose accept|reject for Seller`,
/// `offer accept|reject from Seller`, or `end of protocol`.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura::{ProtocolMonitor, Step, Transition, Violation};
/// use rumpsteak_aura_protocol::{Monitor, Protocol};
///
/// let p = Protocol::parse("Buyer -> Seller: Offer(Price); Seller -> Buyer: Ack;")?;
/// let mut m = Monitor::new("Buyer", &p.project("Buyer")?)?;
/// let wrong = Step::Send { to: "Seller", message: "Offer" };
/// assert_eq!(
///     m.check(&wrong),
///     Err(Violation::OutOfProtocol {
///         expected: "send Offer(Price) to Seller".into(),
///         attempted: "send Offer to Seller".into(),
///     })
/// );
/// let right = Step::Send { to: "Seller", message: "Price" };
/// m.step(&right)?;
/// let mut at = String::new();
/// m.describe(&mut at);
/// assert_eq!(at, "next: recv Ack from Seller; end");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Monitor {
    role: Box<str>,
    peers: Box<[Box<str>]>,
    nodes: Box<[Node]>,
    /// For each node, the peers of every step reachable from it.
    reach: Box<[RoleSet]>,
    cursor: usize,
}

#[derive(Clone, Debug)]
enum Node {
    Send {
        peer: usize,
        label: Box<str>,
        payload: Option<Box<str>>,
        next: usize,
    },
    Recv {
        peer: usize,
        label: Box<str>,
        payload: Option<Box<str>>,
        next: usize,
    },
    Select {
        peer: usize,
        arms: Box<[Arm]>,
    },
    Branch {
        peer: usize,
        arms: Box<[Arm]>,
    },
    End,
}

/// One label of a choice and the node it leads to.
#[derive(Clone, Debug)]
struct Arm {
    label: Box<str>,
    next: usize,
}

/// The name a message goes by at run time: its payload type, or its label
/// when it has none.
fn message_name<'a>(label: &'a str, payload: Option<&'a str>) -> &'a str {
    payload.unwrap_or(label)
}

/// Whether the type name a handler passed, `got`, is the message named
/// `want`. Handlers shorten a type's path (`app::Price` is `Price`) but
/// pass a tuple whole (`(u32, alloc::string::String)`), so for a tuple
/// payload such as `(u32, String)` every path inside is shortened first.
fn is_message(want: &str, got: &str) -> bool {
    want == got || (want.starts_with('(') && got.starts_with('(') && short_paths(got) == want)
}

/// `got` with every `path::` before a name left out.
fn short_paths(got: &str) -> String {
    let mut out = String::with_capacity(got.len());
    let mut word = String::new();
    let mut chars = got.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

impl Monitor {
    /// Compiles `local`, the local type of `role`.
    ///
    /// Fails if `local` has a `continue` outside its loop, a loop that can
    /// repeat without a step, or a choice with no or repeated labels.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::ProtocolMonitor;
    /// use rumpsteak_aura_protocol::{LocalType, Monitor, ProjectionError};
    ///
    /// let m = Monitor::new("A", &LocalType::End)?;
    /// assert!(m.is_complete());
    ///
    /// let spin = LocalType::Rec { name: "X".into(), body: Box::new(LocalType::Continue { name: "X".into() }) };
    /// assert_eq!(
    ///     Monitor::new("A", &spin).unwrap_err(),
    ///     ProjectionError::UnguardedLoop { name: "X".into() }
    /// );
    /// # Ok::<(), ProjectionError>(())
    /// ```
    pub fn new(role: &str, local: &LocalType) -> Result<Self, ProjectionError> {
        let mut c = Compiler {
            role,
            peers: Vec::new(),
            nodes: Vec::new(),
            loops: Vec::new(),
        };
        let start = c.compile(local)?;
        let reach = reachable_peers(&c.nodes);
        Ok(Monitor {
            role: role.into(),
            peers: c.peers.into_iter().map(Into::into).collect(),
            nodes: c.nodes.into(),
            reach: reach.into(),
            cursor: start,
        })
    }

    /// The role this monitor watches.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// What the local type allows next.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::{NextStep, Protocol};
    ///
    /// let p = Protocol::parse("choice at A { yes: { A -> B: Y; } no: { A -> B: N; } }")?;
    /// let m = p.monitor_for("A")?;
    /// match m.next_step() {
    ///     NextStep::Choose { to, labels } => {
    ///         assert_eq!(to, "B");
    ///         assert_eq!(labels.collect::<Vec<_>>(), ["yes", "no"]);
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_step(&self) -> NextStep<'_> {
        match &self.nodes[self.cursor] {
            Node::Send {
                peer,
                label,
                payload,
                ..
            } => NextStep::Send {
                to: &self.peers[*peer],
                label,
                message: message_name(label, payload.as_deref()),
            },
            Node::Recv {
                peer,
                label,
                payload,
                ..
            } => NextStep::Recv {
                from: &self.peers[*peer],
                label,
                message: message_name(label, payload.as_deref()),
            },
            Node::Select { peer, arms } => NextStep::Choose {
                to: &self.peers[*peer],
                labels: Labels { arms: arms.iter() },
            },
            Node::Branch { peer, arms } => NextStep::Offer {
                from: &self.peers[*peer],
                labels: Labels { arms: arms.iter() },
            },
            Node::End => NextStep::End,
        }
    }

    /// The node `step` leads to, if the current node allows it.
    fn target(&self, step: &Step<'_>) -> Option<usize> {
        let node = &self.nodes[self.cursor];
        let find =
            |arms: &[Arm], label: &str| arms.iter().find(|a| &*a.label == label).map(|a| a.next);
        match (node, *step) {
            (
                Node::Send {
                    peer,
                    label,
                    payload,
                    next,
                },
                Step::Send { to, message },
            ) if *self.peers[*peer] == *to
                && is_message(message_name(label, payload.as_deref()), message) =>
            {
                Some(*next)
            }
            (
                Node::Recv {
                    peer,
                    label,
                    payload,
                    next,
                },
                Step::Recv { from, message },
            ) if *self.peers[*peer] == *from
                && is_message(message_name(label, payload.as_deref()), message) =>
            {
                Some(*next)
            }
            (Node::Select { peer, arms }, Step::Choose { to, label })
                if *self.peers[*peer] == *to =>
            {
                find(arms, label)
            }
            (Node::Branch { peer, .. }, Step::Offer { from, label: None })
                if *self.peers[*peer] == *from =>
            {
                Some(self.cursor)
            }
            (
                Node::Branch { peer, arms },
                Step::Offer {
                    from,
                    label: Some(l),
                },
            ) if *self.peers[*peer] == *from => find(arms, l),
            _ => None,
        }
    }

    /// Writes what the node allows, in the words of `Step`'s `Display`.
    fn write_node(&self, i: usize, out: &mut String) {
        let labels = |out: &mut String, arms: &[Arm]| {
            for (n, a) in arms.iter().enumerate() {
                if n > 0 {
                    out.push('|');
                }
                out.push_str(&a.label);
            }
        };
        // Writing into a `String` cannot fail.
        let _ = match &self.nodes[i] {
            Node::Send {
                peer,
                label,
                payload,
                ..
            } => write!(
                out,
                "send {} to {}",
                Msg(label, payload.as_deref()),
                self.peers[*peer]
            ),
            Node::Recv {
                peer,
                label,
                payload,
                ..
            } => write!(
                out,
                "recv {} from {}",
                Msg(label, payload.as_deref()),
                self.peers[*peer]
            ),
            Node::Select { peer, arms } => {
                out.push_str("choose ");
                labels(out, arms);
                write!(out, " for {}", self.peers[*peer])
            }
            Node::Branch { peer, arms } => {
                out.push_str("offer ");
                labels(out, arms);
                write!(out, " from {}", self.peers[*peer])
            }
            Node::End => {
                out.push_str("end of protocol");
                Ok(())
            }
        };
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut at = String::new();
        self.describe(&mut at);
        f.debug_struct("Monitor")
            .field("role", &self.role)
            .field("at", &at)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl ProtocolMonitor for Monitor {
    fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
        if let Some(next) = self.target(step) {
            return Ok(Transition::new(next));
        }
        let mut expected = String::new();
        self.write_node(self.cursor, &mut expected);
        Err(Violation::OutOfProtocol {
            expected,
            attempted: step.to_string(),
        })
    }

    /// Moves to the node `to` leads to. The transition of
    /// `Step::Offer { label: None, .. }` stays where it is; a transition
    /// that names no node of this monitor is ignored.
    fn advance(&mut self, to: Transition) {
        if to.state() < self.nodes.len() {
            self.cursor = to.state();
        }
    }

    /// The node the monitor is at, the number its transitions carry:
    /// `check` reads only that node and the compiled protocol, which never
    /// changes, and `advance` moves to the node a transition names.
    fn position(&self) -> Option<usize> {
        Some(self.cursor)
    }

    fn labels(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        let mut labels = Vec::new();
        for node in self.nodes.iter() {
            if let Node::Select { arms, .. } | Node::Branch { arms, .. } = node {
                for a in arms.iter() {
                    if seen.insert(&*a.label) {
                        labels.push(&*a.label);
                    }
                }
            }
        }
        labels
    }

    fn is_complete(&self) -> bool {
        matches!(self.nodes[self.cursor], Node::End)
    }

    fn involves(&self, peer: &str) -> bool {
        self.peers
            .iter()
            .position(|p| **p == *peer)
            .is_some_and(|i| self.reach[self.cursor].contains(i))
    }

    /// Writes `end` at the end, else `next: ` and up to three steps joined
    /// by `; `, stopping after a choice; `…` marks that more follows.
    /// For example `next: send Offer(Price) to Seller; recv Ack from Seller; end`
    /// or `next: recv Quote(u32) from Seller; offer accept|reject from Buyer; …`.
    fn describe(&self, out: &mut String) {
        let mut at = self.cursor;
        if matches!(self.nodes[at], Node::End) {
            out.push_str("end");
            return;
        }
        out.push_str("next: ");
        for n in 0.. {
            if n > 0 {
                out.push_str("; ");
            }
            match &self.nodes[at] {
                Node::End => {
                    out.push_str("end");
                    return;
                }
                _ if n == DESCRIBE_STEPS => break,
                Node::Send { next, .. } | Node::Recv { next, .. } => {
                    self.write_node(at, out);
                    at = *next;
                }
                Node::Select { .. } | Node::Branch { .. } => {
                    self.write_node(at, out);
                    out.push_str("; ");
                    break;
                }
            }
        }
        out.push('…');
    }
}

/// What a [`Monitor`] allows next; see [`Monitor::next_step`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NextStep<'a> {
    /// Send a message to `to`.
    Send {
        /// The receiving role.
        to: &'a str,
        /// The message label.
        label: &'a str,
        /// The name the message goes by in a `Step`: its payload type, or
        /// its label when it has none.
        message: &'a str,
    },
    /// Receive a message from `from`.
    Recv {
        /// The sending role.
        from: &'a str,
        /// The message label.
        label: &'a str,
        /// The name the message goes by in a `Step`.
        message: &'a str,
    },
    /// Choose one of `labels` and tell `to`.
    Choose {
        /// The role told of the choice.
        to: &'a str,
        /// The labels allowed.
        labels: Labels<'a>,
    },
    /// Learn which of `labels` `from` chose.
    Offer {
        /// The role that chooses.
        from: &'a str,
        /// The labels `from` may choose.
        labels: Labels<'a>,
    },
    /// Nothing more: the protocol is complete.
    End,
}

/// The labels of a choice, in the order written.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    arms: std::slice::Iter<'a, Arm>,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.arms.next().map(|a| &*a.label)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.arms.size_hint()
    }
}

impl ExactSizeIterator for Labels<'_> {}

struct Compiler<'l> {
    role: &'l str,
    peers: Vec<&'l str>,
    nodes: Vec<Node>,
    /// Open loops and the node their body starts at.
    loops: Vec<(&'l str, usize)>,
}

impl<'l> Compiler<'l> {
    fn peer(&mut self, name: &'l str) -> usize {
        match self.peers.iter().position(|p| *p == name) {
            Some(i) => i,
            None => {
                self.peers.push(name);
                self.peers.len() - 1
            }
        }
    }

    fn arms(
        &mut self,
        chooser: &str,
        branches: &'l [(String, LocalType)],
    ) -> Result<Box<[Arm]>, ProjectionError> {
        if branches.is_empty() {
            return Err(ProjectionError::EmptyChoice {
                chooser: chooser.to_owned(),
            });
        }
        let mut arms = Vec::with_capacity(branches.len());
        for (i, (label, body)) in branches.iter().enumerate() {
            if branches[..i].iter().any(|(l, _)| l == label) {
                return Err(ProjectionError::DuplicateLabel {
                    chooser: chooser.to_owned(),
                    label: label.clone(),
                });
            }
            arms.push(Arm {
                label: label.as_str().into(),
                next: self.compile(body)?,
            });
        }
        Ok(arms.into())
    }

    /// A run of messages, laid out in a loop: each node's successor is the
    /// next one, the last one's is what follows the run.
    fn compile_messages(&mut self, l: &'l LocalType) -> Result<usize, ProjectionError> {
        let first = self.nodes.len();
        let mut rest = l;
        loop {
            let (send, peer, label, payload, then) = match rest {
                LocalType::Send {
                    to,
                    label,
                    payload,
                    then,
                } => (true, to, label, payload, then),
                LocalType::Recv {
                    from,
                    label,
                    payload,
                    then,
                } => (false, from, label, payload, then),
                _ => break,
            };
            let (peer, next) = (self.peer(peer), self.nodes.len() + 1);
            let (label, payload) = (label.as_str().into(), payload.as_deref().map(Into::into));
            self.nodes.push(if send {
                Node::Send {
                    peer,
                    label,
                    payload,
                    next,
                }
            } else {
                Node::Recv {
                    peer,
                    label,
                    payload,
                    next,
                }
            });
            rest = then;
        }
        let last = self.nodes.len() - 1;
        let after = self.compile(rest)?;
        if let Node::Send { next, .. } | Node::Recv { next, .. } = &mut self.nodes[last] {
            *next = after;
        }
        Ok(first)
    }

    /// Compiles `l` and returns the index of its first node. Nodes are laid
    /// out in pre-order, so a loop's body starts at the next free index.
    fn compile(&mut self, l: &'l LocalType) -> Result<usize, ProjectionError> {
        match l {
            LocalType::Send { .. } | LocalType::Recv { .. } => self.compile_messages(l),
            LocalType::Select { to, .. } if to.ends_with("[*]") => {
                Err(ProjectionError::NotInstantiated {
                    family: to.trim_end_matches("[*]").to_owned(),
                })
            }
            LocalType::Select { to, branches } => {
                let peer = self.peer(to);
                let at = self.nodes.len();
                self.nodes.push(Node::End);
                let arms = self.arms(self.role, branches)?;
                self.nodes[at] = Node::Select { peer, arms };
                Ok(at)
            }
            LocalType::Branch { from, branches } => {
                let peer = self.peer(from);
                let at = self.nodes.len();
                self.nodes.push(Node::End);
                let arms = self.arms(from, branches)?;
                self.nodes[at] = Node::Branch { peer, arms };
                Ok(at)
            }
            LocalType::Rec { name, body } => {
                self.loops.push((name, self.nodes.len()));
                let start = self.compile(body);
                self.loops.pop();
                start
            }
            LocalType::Continue { name } => {
                match self.loops.iter().rev().find(|(n, _)| n == name) {
                    None => Err(ProjectionError::UnboundLoop { name: name.clone() }),
                    // No node was laid out since the loop opened: nothing
                    // happens between its start and this jump.
                    Some((_, start)) if *start == self.nodes.len() => {
                        Err(ProjectionError::UnguardedLoop { name: name.clone() })
                    }
                    Some((_, start)) => Ok(*start),
                }
            }
            LocalType::End => {
                self.nodes.push(Node::End);
                Ok(self.nodes.len() - 1)
            }
            LocalType::Foreach { family, .. } => Err(ProjectionError::NotInstantiated {
                family: family.clone(),
            }),
        }
    }
}

/// For each node, the set of peers of every step reachable from it,
/// by iterating to a fixed point over the jumps.
fn reachable_peers(nodes: &[Node]) -> Vec<RoleSet> {
    let mut reach: Vec<RoleSet> = nodes
        .iter()
        .map(|n| match n {
            Node::Send { peer, .. }
            | Node::Recv { peer, .. }
            | Node::Select { peer, .. }
            | Node::Branch { peer, .. } => RoleSet::single(*peer),
            Node::End => RoleSet::new(),
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        // Successors mostly have higher indices: go backwards.
        for i in (0..nodes.len()).rev() {
            let mut add = |succ: usize, reach: &mut [RoleSet]| {
                // Borrow the node and its successor from the two halves.
                changed |= if succ > i {
                    let (low, high) = reach.split_at_mut(succ);
                    low[i].union_with(&high[0])
                } else if succ < i {
                    let (low, high) = reach.split_at_mut(i);
                    high[0].union_with(&low[succ])
                } else {
                    false
                };
            };
            match &nodes[i] {
                Node::Send { next, .. } | Node::Recv { next, .. } => add(*next, &mut reach),
                Node::Select { arms, .. } | Node::Branch { arms, .. } => {
                    arms.iter().for_each(|a| add(a.next, &mut reach));
                }
                Node::End => {}
            }
        }
    }
    reach
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;

    #[test]
    fn loops_compile_to_jumps() {
        let p = Protocol::parse("rec L { A -> B: Ping; B -> A: Pong; continue L; }").unwrap();
        let m = p.monitor_for("A").unwrap();
        assert_eq!(m.nodes.len(), 2);
        match &m.nodes[1] {
            Node::Recv { next, .. } => assert_eq!(*next, 0),
            other => panic!("expected a recv node, got {other:?}"),
        }
        assert!(m.involves("B"));
        let mut s = String::new();
        m.describe(&mut s);
        assert_eq!(
            s,
            "next: send Ping to B; recv Pong from B; send Ping to B; …"
        );
    }

    #[test]
    fn local_types_with_bad_loops_or_choices_are_refused() {
        let unbound = LocalType::Continue { name: "X".into() };
        assert_eq!(
            Monitor::new("A", &unbound).unwrap_err(),
            ProjectionError::UnboundLoop { name: "X".into() }
        );
        let nested = LocalType::Rec {
            name: "X".into(),
            body: Box::new(LocalType::Rec {
                name: "Y".into(),
                body: Box::new(LocalType::Continue { name: "X".into() }),
            }),
        };
        assert_eq!(
            Monitor::new("A", &nested).unwrap_err(),
            ProjectionError::UnguardedLoop { name: "X".into() }
        );
        let empty = LocalType::Branch {
            from: "B".into(),
            branches: vec![],
        };
        assert_eq!(
            Monitor::new("A", &empty).unwrap_err(),
            ProjectionError::EmptyChoice {
                chooser: "B".into()
            }
        );
        let twice = LocalType::Select {
            to: "B".into(),
            branches: vec![("x".into(), LocalType::End), ("x".into(), LocalType::End)],
        };
        assert_eq!(
            Monitor::new("A", &twice).unwrap_err(),
            ProjectionError::DuplicateLabel {
                chooser: "A".into(),
                label: "x".into()
            }
        );
    }

    #[test]
    fn tuple_payloads_match_the_handlers_full_tuple_names() {
        assert!(is_message("(u32, String)", "(u32, alloc::string::String)"));
        assert!(is_message(
            "(u32, Vec<Item>)",
            "(u32, alloc::vec::Vec<app::Item>)"
        ));
        assert!(!is_message("(u32, String)", "(u64, alloc::string::String)"));
        assert!(
            !is_message("Price", "app::Price"),
            "the handler shortens plain names itself"
        );
        let p = Protocol::parse("A -> B: Pair(u32, String);").unwrap();
        let mut b = p.monitor_for("B").unwrap();
        let step = Step::Recv {
            from: "A",
            message: "(u32, alloc::string::String)",
        };
        b.step(&step).unwrap();
        assert!(b.is_complete());
    }

    #[test]
    fn reach_follows_back_jumps() {
        // C (peer 1) is only met after the loop exits, which every node can reach.
        let p = Protocol::parse(
            "rec L { choice at A { more: { A -> B: M; continue L; } stop: { A -> B: S; A -> C: Bye; } } }",
        )
        .unwrap();
        let m = p.monitor_for("A").unwrap();
        let reach = reachable_peers(&m.nodes);
        assert!(
            reach
                .iter()
                .filter(|r| **r != RoleSet::new())
                .all(|r| r.contains(1))
        );
        assert!(m.involves("C"));
    }
}
