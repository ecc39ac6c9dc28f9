//! Well-formedness checks and projection of a global type onto one role.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::roleset::RoleSet;
use crate::{GlobalType, LocalType, ProjectionError};

/// A checked global type, with role names resolved to indices and, for each
/// choice, the roles it tells; for each loop, the roles that occur in it
/// and the outer loops it can jump to.
#[derive(Debug)]
pub(crate) enum Node<'g> {
    Message {
        from: usize,
        to: usize,
        label: &'g str,
        payload: Option<&'g str>,
        then: Box<Node<'g>>,
    },
    Choice {
        at: usize,
        /// The told roles, in the protocol's role order.
        told: Vec<usize>,
        branches: Vec<(&'g str, Node<'g>)>,
    },
    Rec {
        name: &'g str,
        /// Roles that occur anywhere in the body.
        occurs: RoleSet,
        /// Loops of which the body contains a free `continue`.
        free: Vec<&'g str>,
        body: Box<Node<'g>>,
    },
    Continue {
        name: &'g str,
    },
    End,
}

/// What the checker learns about a subtree. It is sparse, so that its size
/// is bounded by the subtree's, not by the number of roles.
#[derive(Default)]
struct Summary<'g> {
    /// For each role that occurs in the subtree, the roles its first
    /// interaction in the subtree can be with (a message in either
    /// direction, or a choice it makes or is told); absent means none.
    first: BTreeMap<usize, RoleSet>,
    /// The roles that occur in the subtree.
    occurs: RoleSet,
    /// The loops of which the subtree contains a free `continue`.
    free: Vec<&'g str>,
}

impl<'g> Summary<'g> {
    fn empty() -> Self {
        Summary::default()
    }

    /// Adds what `other` knows: the union of first interactions, of
    /// occurring roles and of free loops.
    fn absorb(&mut self, other: Summary<'g>) {
        for (r, first) in other.first {
            match self.first.entry(r) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(first);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    e.get_mut().union_with(&first);
                }
            }
        }
        self.occurs.union_with(&other.occurs);
        for v in other.free {
            if !self.free.contains(&v) {
                self.free.push(v);
            }
        }
    }
}

/// Where the checker or the projector is in the global type: the path of
/// child indices from the root to the node it is at (the `then` of a
/// message and the body of a loop are child 0, the branches of a choice
/// are numbered in order). When either fails, the path is left at the node
/// the error is about.
///
/// [`analyse`] and [`project`] keep no path, at no cost; [`locate`] runs
/// them again keeping one.
trait Trail {
    /// Steps down to child `child` of the current node.
    fn enter(&mut self, child: usize);
    /// A mark to come back to with [`Trail::back_to`].
    fn mark(&self) -> usize;
    /// Steps back up to where [`Trail::mark`] was taken.
    fn back_to(&mut self, mark: usize);
}

impl Trail for () {
    fn enter(&mut self, _: usize) {}

    fn mark(&self) -> usize {
        0
    }

    fn back_to(&mut self, _: usize) {}
}

impl Trail for Vec<usize> {
    fn enter(&mut self, child: usize) {
        self.push(child);
    }

    fn mark(&self) -> usize {
        self.len()
    }

    fn back_to(&mut self, mark: usize) {
        self.truncate(mark);
    }
}

/// Checks a global type against the roles of its protocol.
pub(crate) fn analyse<'g>(
    roles: &'g [String],
    global: &'g GlobalType,
) -> Result<Node<'g>, ProjectionError> {
    Analyser::new(roles, ())
        .visit(global, 0)
        .map(|(node, _)| node)
}

/// The path (child indices from the root, see [`Trail`]) of the node of
/// `global` that `err` is about, if [`analyse`], or [`project`] onto the
/// role it names, fails on it with exactly `err`. `None` for an error
/// about no node (an unknown or duplicate role) and for one that checking
/// and projecting `global` do not give.
pub(crate) fn locate(
    roles: &[String],
    global: &GlobalType,
    err: &ProjectionError,
) -> Option<Vec<usize>> {
    if matches!(
        err,
        ProjectionError::UnknownRole { .. } | ProjectionError::DuplicateRole { .. }
    ) {
        return None;
    }
    let mut a = Analyser::new(roles, Vec::new());
    let node = match a.visit(global, 0) {
        Ok((node, _)) => node,
        Err(e) => return (e == *err).then_some(a.trail),
    };
    // Projection fails only where a role is not told.
    let ProjectionError::NotTold { role, .. } = err else {
        return None;
    };
    let me = roles.iter().position(|r| r == role)?;
    let mut p = Projector {
        roles,
        me,
        loops: Vec::new(),
        trail: Vec::new(),
    };
    match p.project(&node) {
        Err(e) if e == *err => Some(p.trail),
        _ => None,
    }
}

struct Analyser<'g, T> {
    /// Each role's index in the protocol's roles.
    index: HashMap<&'g str, usize>,
    /// Open loops, with the number of interactions on the path to each and
    /// the trail's mark at each.
    scope: Vec<(&'g str, usize, usize)>,
    trail: T,
}

impl<'g, T: Trail> Analyser<'g, T> {
    fn new(roles: &'g [String], trail: T) -> Self {
        let mut index = HashMap::with_capacity(roles.len());
        for (i, r) in roles.iter().enumerate() {
            index.entry(r.as_str()).or_insert(i);
        }
        Analyser {
            index,
            scope: Vec::new(),
            trail,
        }
    }

    fn index(&self, role: &str) -> Result<usize, ProjectionError> {
        self.index
            .get(role)
            .copied()
            .ok_or_else(|| ProjectionError::UnknownRole {
                role: role.to_owned(),
            })
    }

    /// A run of messages, walked in a loop so that long sequences do not
    /// deepen the recursion; then what follows them.
    fn visit_messages(
        &mut self,
        g: &'g GlobalType,
        guards: usize,
    ) -> Result<(Node<'g>, Summary<'g>), ProjectionError> {
        let mark = self.trail.mark();
        let mut run = Vec::new();
        let mut rest = g;
        while let GlobalType::Message {
            from,
            to,
            label,
            payload,
            then,
        } = rest
        {
            let (f, t) = (self.index(from)?, self.index(to)?);
            if f == t {
                return Err(ProjectionError::SelfMessage {
                    role: from.clone(),
                    label: label.clone(),
                });
            }
            run.push((f, t, label.as_str(), payload.as_deref()));
            self.trail.enter(0);
            rest = then;
        }
        let (mut node, mut s) = self.visit(rest, guards + run.len())?;
        self.trail.back_to(mark);
        for (f, t, label, payload) in run.into_iter().rev() {
            s.first.insert(f, RoleSet::single(t));
            s.first.insert(t, RoleSet::single(f));
            s.occurs.insert(f);
            s.occurs.insert(t);
            node = Node::Message {
                from: f,
                to: t,
                label,
                payload,
                then: Box::new(node),
            };
        }
        Ok((node, s))
    }

    /// `guards`: how many interactions lie on the path from the root.
    ///
    /// Each kind of block is checked by a function of its own, so that a
    /// frame of the recursion holds the locals of one kind only.
    fn visit(
        &mut self,
        g: &'g GlobalType,
        guards: usize,
    ) -> Result<(Node<'g>, Summary<'g>), ProjectionError> {
        match g {
            GlobalType::Message { .. } => self.visit_messages(g, guards),
            GlobalType::Choice { at, branches } => self.visit_choice(at, branches, guards),
            GlobalType::Rec { name, body } => self.visit_rec(name, body, guards),
            GlobalType::Continue { name } => {
                match self.scope.iter().rev().find(|(n, ..)| n == name) {
                    None => return Err(ProjectionError::UnboundLoop { name: name.clone() }),
                    Some(&(_, at, mark)) if at == guards => {
                        // The error is about the loop, not the `continue`.
                        self.trail.back_to(mark);
                        return Err(ProjectionError::UnguardedLoop { name: name.clone() });
                    }
                    Some(_) => {}
                }
                let mut s = Summary::empty();
                s.free.push(name);
                Ok((Node::Continue { name }, s))
            }
            GlobalType::End => Ok((Node::End, Summary::empty())),
        }
    }

    fn visit_choice(
        &mut self,
        at: &'g str,
        branches: &'g [(String, GlobalType)],
        guards: usize,
    ) -> Result<(Node<'g>, Summary<'g>), ProjectionError> {
        let a = self.index(at)?;
        if branches.is_empty() {
            return Err(ProjectionError::EmptyChoice {
                chooser: at.to_owned(),
            });
        }
        let mut labels = HashSet::with_capacity(branches.len());
        for (l, _) in branches {
            if !labels.insert(l.as_str()) {
                return Err(ProjectionError::DuplicateLabel {
                    chooser: at.to_owned(),
                    label: l.clone(),
                });
            }
        }
        // Each branch's summary is folded in as soon as it is made, so that
        // only one is held at a time.
        let mut nodes = Vec::with_capacity(branches.len());
        let mut told_set = RoleSet::new();
        let mut s = Summary::empty();
        let mark = self.trail.mark();
        for (i, (l, b)) in branches.iter().enumerate() {
            self.trail.enter(i);
            let (n, bs) = self.visit(b, guards + 1)?;
            self.trail.back_to(mark);
            nodes.push((l.as_str(), n));
            for (r, first) in &bs.first {
                if *r != a && first.contains(a) {
                    told_set.insert(*r);
                }
            }
            s.absorb(bs);
        }
        let told: Vec<usize> = told_set.iter().collect();
        if told.is_empty() {
            return Err(ProjectionError::ChoiceTellsNobody {
                chooser: at.to_owned(),
                labels: branches.iter().map(|(l, _)| l.clone()).collect(),
            });
        }
        // The chooser's first interactions are with the told roles, theirs
        // with the chooser; every other role keeps the union over the
        // branches.
        s.occurs.insert(a);
        for t in &told {
            s.first.insert(*t, RoleSet::single(a));
        }
        s.first.insert(a, told_set);
        let node = Node::Choice {
            at: a,
            told,
            branches: nodes,
        };
        Ok((node, s))
    }

    fn visit_rec(
        &mut self,
        name: &'g str,
        body: &'g GlobalType,
        guards: usize,
    ) -> Result<(Node<'g>, Summary<'g>), ProjectionError> {
        if self.scope.iter().any(|(n, ..)| *n == name) {
            return Err(ProjectionError::ShadowedLoop {
                name: name.to_owned(),
            });
        }
        let mark = self.trail.mark();
        self.scope.push((name, guards, mark));
        self.trail.enter(0);
        let visited = self.visit(body, guards);
        self.scope.pop();
        let (body, mut s) = visited?;
        self.trail.back_to(mark);
        s.free.retain(|v| *v != name);
        let node = Node::Rec {
            name,
            occurs: s.occurs.clone(),
            free: s.free.clone(),
            body: Box::new(body),
        };
        Ok((node, s))
    }
}

/// Projects a checked global type onto the role with index `me`.
pub(crate) fn project(
    roles: &[String],
    node: &Node<'_>,
    me: usize,
) -> Result<LocalType, ProjectionError> {
    Projector {
        roles,
        me,
        loops: Vec::new(),
        trail: (),
    }
    .project(node)
}

struct Projector<'a, 'g, T> {
    roles: &'a [String],
    me: usize,
    /// The enclosing loops, all of which this role takes part in.
    loops: Vec<&'g str>,
    trail: T,
}

impl<'g, T: Trail> Projector<'_, 'g, T> {
    fn project(&mut self, node: &Node<'g>) -> Result<LocalType, ProjectionError> {
        match node {
            Node::Message { .. } => self.project_messages(node),
            Node::Choice { at, told, branches } => {
                let mut conts = Vec::with_capacity(branches.len());
                let mark = self.trail.mark();
                for (i, (l, b)) in branches.iter().enumerate() {
                    self.trail.enter(i);
                    conts.push((*l, self.project(b)?));
                    self.trail.back_to(mark);
                }
                if *at == self.me {
                    Ok(self.select_chain(told, conts))
                } else if told.contains(&self.me) {
                    Ok(LocalType::Branch {
                        from: self.roles[*at].clone(),
                        branches: conts.into_iter().map(|(l, c)| (l.to_owned(), c)).collect(),
                    })
                } else {
                    self.merge_all(*at, conts)
                }
            }
            Node::Rec {
                name,
                occurs,
                free,
                body,
            } => {
                let takes_part =
                    occurs.contains(self.me) || free.iter().any(|v| self.loops.contains(v));
                if !takes_part {
                    return Ok(LocalType::End);
                }
                let mark = self.trail.mark();
                self.loops.push(name);
                self.trail.enter(0);
                let body = self.project(body);
                self.loops.pop();
                let body = body?;
                self.trail.back_to(mark);
                Ok(if body.mentions(name) {
                    LocalType::Rec {
                        name: (*name).to_owned(),
                        body: Box::new(body),
                    }
                } else {
                    body
                })
            }
            Node::Continue { name } => Ok(LocalType::Continue {
                name: (*name).to_owned(),
            }),
            Node::End => Ok(LocalType::End),
        }
    }

    /// A run of messages, walked in a loop; the role keeps those it sends or
    /// receives.
    fn project_messages(&mut self, node: &Node<'g>) -> Result<LocalType, ProjectionError> {
        let mark = self.trail.mark();
        let mut run = Vec::new();
        let mut rest = node;
        while let Node::Message {
            from,
            to,
            label,
            payload,
            then,
        } = rest
        {
            if *from == self.me || *to == self.me {
                run.push((*from, *to, *label, *payload));
            }
            self.trail.enter(0);
            rest = then;
        }
        let mut local = self.project(rest)?;
        self.trail.back_to(mark);
        for (from, to, label, payload) in run.into_iter().rev() {
            let (label, payload) = (label.to_owned(), payload.map(str::to_owned));
            local = if from == self.me {
                LocalType::Send {
                    to: self.roles[to].clone(),
                    label,
                    payload,
                    then: Box::new(local),
                }
            } else {
                LocalType::Recv {
                    from: self.roles[from].clone(),
                    label,
                    payload,
                    then: Box::new(local),
                }
            };
        }
        Ok(local)
    }

    /// The chooser's side: one `select` per told role, in role order; the
    /// first offers every label, each later one only the label already taken.
    fn select_chain(&self, told: &[usize], conts: Vec<(&str, LocalType)>) -> LocalType {
        let Some((first, rest)) = told.split_first() else {
            // The checker rejects choices that tell nobody; with no one to
            // tell, a single branch is all that could be taken.
            return conts.into_iter().next().map_or(LocalType::End, |(_, c)| c);
        };
        let branches = conts
            .into_iter()
            .map(|(label, cont)| {
                let inner = rest.iter().rev().fold(cont, |acc, r| LocalType::Select {
                    to: self.roles[*r].clone(),
                    branches: vec![(label.to_owned(), acc)],
                });
                (label.to_owned(), inner)
            })
            .collect();
        LocalType::Select {
            to: self.roles[*first].clone(),
            branches,
        }
    }

    /// A role that is not told: the merge of its views of every branch.
    fn merge_all(
        &self,
        at: usize,
        conts: Vec<(&str, LocalType)>,
    ) -> Result<LocalType, ProjectionError> {
        let mut iter = conts.iter();
        let Some((_, first)) = iter.next() else {
            return Ok(LocalType::End);
        };
        let mut acc = first.clone();
        for (i, (right, cont)) in iter.enumerate() {
            match merge(&acc, cont) {
                Ok(m) => acc = m,
                Err(detail) => {
                    // Name the first earlier branch that alone clashes with
                    // this one, or else the first branch.
                    let (left, detail) = conts[..=i]
                        .iter()
                        .find_map(|(l, c)| merge(c, cont).err().map(|d| (*l, d)))
                        .unwrap_or((conts[0].0, detail));
                    return Err(ProjectionError::NotTold {
                        role: self.roles[self.me].clone(),
                        chooser: self.roles[at].clone(),
                        left: left.to_owned(),
                        right: (*right).to_owned(),
                        detail,
                    });
                }
            }
        }
        Ok(acc)
    }
}

/// The full merge of two local types: equal heads merge their
/// continuations, two `branch from` the same role merge by the union of
/// their labels (merging the continuations of shared labels), two `select`
/// to the same role need the same labels. Anything else does not merge; the
/// error says where, as `` `a` against `b` ``.
pub(crate) fn merge(a: &LocalType, b: &LocalType) -> Result<LocalType, String> {
    // Equal sends and receives, walked in a loop: (is a send, peer, label,
    // payload).
    let mut run: Vec<(bool, &String, &String, &Option<String>)> = Vec::new();
    let (mut x, mut y) = (a, b);
    loop {
        match (x, y) {
            (
                LocalType::Send {
                    to: p,
                    label,
                    payload,
                    then,
                },
                LocalType::Send {
                    to: p2,
                    label: label2,
                    payload: payload2,
                    then: then2,
                },
            )
            | (
                LocalType::Recv {
                    from: p,
                    label,
                    payload,
                    then,
                },
                LocalType::Recv {
                    from: p2,
                    label: label2,
                    payload: payload2,
                    then: then2,
                },
            ) if p == p2 && label == label2 && payload == payload2 => {
                run.push((matches!(x, LocalType::Send { .. }), p, label, payload));
                (x, y) = (then, then2);
            }
            _ => break,
        }
    }
    let mut merged = merge_step(x, y)?;
    for (send, peer, label, payload) in run.into_iter().rev() {
        let (peer, label, payload, then) = (
            peer.clone(),
            label.clone(),
            payload.clone(),
            Box::new(merged),
        );
        merged = if send {
            LocalType::Send {
                to: peer,
                label,
                payload,
                then,
            }
        } else {
            LocalType::Recv {
                from: peer,
                label,
                payload,
                then,
            }
        };
    }
    Ok(merged)
}

/// [`merge`] of two types that do not both start with the same message.
fn merge_step(a: &LocalType, b: &LocalType) -> Result<LocalType, String> {
    let clash = || Err(format!("`{}` against `{}`", a.head(), b.head()));
    match (a, b) {
        (LocalType::End, LocalType::End) => Ok(LocalType::End),
        (LocalType::Continue { name: x }, LocalType::Continue { name: y }) if x == y => {
            Ok(a.clone())
        }
        (
            LocalType::Select { to, branches },
            LocalType::Select {
                to: to2,
                branches: branches2,
            },
        ) if to == to2
            && branches.len() == branches2.len()
            && branches
                .iter()
                .all(|(l, _)| branches2.iter().any(|(m, _)| l == m)) =>
        {
            let mut out = Vec::with_capacity(branches.len());
            for (l, x) in branches {
                let y = branches2.iter().find(|(m, _)| m == l).map(|(_, y)| y);
                let merged = match y {
                    Some(y) => merge(x, y)?,
                    None => return clash(),
                };
                out.push((l.clone(), merged));
            }
            Ok(LocalType::Select {
                to: to.clone(),
                branches: out,
            })
        }
        (
            LocalType::Branch { from, branches },
            LocalType::Branch {
                from: from2,
                branches: branches2,
            },
        ) if from == from2 => {
            let mut out = Vec::with_capacity(branches.len() + branches2.len());
            for (l, x) in branches {
                let merged = match branches2.iter().find(|(m, _)| m == l) {
                    Some((_, y)) => merge(x, y)?,
                    None => x.clone(),
                };
                out.push((l.clone(), merged));
            }
            for (l, y) in branches2 {
                if !branches.iter().any(|(m, _)| m == l) {
                    out.push((l.clone(), y.clone()));
                }
            }
            Ok(LocalType::Branch {
                from: from.clone(),
                branches: out,
            })
        }
        (LocalType::Rec { name, body }, LocalType::Rec { name: n2, body: b2 }) if name == n2 => {
            Ok(LocalType::Rec {
                name: name.clone(),
                body: Box::new(merge(body, b2)?),
            })
        }
        _ => clash(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(from: &str, label: &str, then: LocalType) -> LocalType {
        LocalType::Recv {
            from: from.into(),
            label: label.into(),
            payload: None,
            then: Box::new(then),
        }
    }

    fn branch(from: &str, arms: Vec<(&str, LocalType)>) -> LocalType {
        LocalType::Branch {
            from: from.into(),
            branches: arms.into_iter().map(|(l, t)| (l.into(), t)).collect(),
        }
    }

    #[test]
    fn merge_unites_branch_labels_and_merges_shared_ones() {
        let a = branch(
            "B",
            vec![
                ("x", recv("B", "X", LocalType::End)),
                ("s", branch("C", vec![("p", LocalType::End)])),
            ],
        );
        let b = branch(
            "B",
            vec![
                ("s", branch("C", vec![("q", LocalType::End)])),
                ("y", LocalType::End),
            ],
        );
        let m = merge(&a, &b).unwrap();
        assert_eq!(
            m.to_string(),
            "branch from B { x: { recv X from B; end } s: { branch from C { p: { end } q: { end } } } y: { end } }"
        );
    }

    #[test]
    fn merge_refuses_different_heads() {
        let a = recv("B", "X", LocalType::End);
        let b = recv("B", "Y", LocalType::End);
        assert_eq!(
            merge(&a, &b).unwrap_err(),
            "`recv X from B` against `recv Y from B`"
        );
        let c = branch("B", vec![("x", recv("B", "X", LocalType::End))]);
        let d = branch("B", vec![("x", LocalType::End)]);
        assert_eq!(merge(&c, &d).unwrap_err(), "`recv X from B` against `end`");
        assert!(merge(&a, &a).is_ok());
    }

    #[test]
    fn chooser_selects_in_role_order() {
        let roles: Vec<String> = ["A", "B", "C"].iter().map(|s| s.to_string()).collect();
        let g: GlobalType =
            "choice at A { x: { A -> C: X; A -> B: X; } y: { A -> B: Y; A -> C: Y; } }"
                .parse()
                .unwrap();
        let node = analyse(&roles, &g).unwrap();
        assert_eq!(
            project(&roles, &node, 0).unwrap().to_string(),
            "select to B { x: { select to C { x: { send X to C; send X to B; end } } } y: { select to C { y: { send Y to B; send Y to C; end } } } }"
        );
    }
}
