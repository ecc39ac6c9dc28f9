//! Well-formedness checks and projection of a global type onto one role.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::global::role_of;
use crate::local::Msg;
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
        /// The message's number, unique in the tree.
        id: usize,
        then: Box<Node<'g>>,
    },
    Choice {
        at: usize,
        /// The choice's number: the address of its branches.
        id: usize,
        /// The told roles, in the protocol's role order.
        told: Vec<usize>,
        /// The roles told only if they need it: their first interaction is
        /// with the chooser only after a `continue`. Each is told if its
        /// branches do not merge (see [`Projector::project_choice`]).
        extra: Vec<usize>,
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
    /// `foreach family[index] { body }` then `then`.
    Foreach {
        family: usize,
        index: &'g str,
        body: Box<Node<'g>>,
        then: Box<Node<'g>>,
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

/// For each loop (by the address of its `rec` node), the roles its body can
/// begin with an interaction with, per role: what a `continue` to it
/// counts as when the checker works out who a choice tells.
type Unfold = HashMap<usize, BTreeMap<usize, RoleSet>>;

/// How many times the checker goes over a protocol with loops to learn what
/// the first steps after each `continue` are. Every pass gives told sets
/// that project soundly (telling a role more never harms); more passes only
/// let knowledge travel through more loops.
const UNFOLD_PASSES: usize = 3;

/// For each choice (by the address of its branches), the roles it tells
/// when no `continue` is unfolded.
type Direct = HashMap<usize, Vec<usize>>;

/// What `continue` stands for and whom each choice tells directly, learnt
/// by passes that do not fail on a choice that tells nobody (a later pass
/// may find whom it tells).
fn unfolding(roles: &[String], global: &GlobalType) -> Result<(Unfold, Direct), ProjectionError> {
    // The first pass unfolds nothing: whom it finds each choice telling is
    // whom the choice tells directly.
    let none = Unfold::new();
    let mut first = Analyser::new(roles, (), &none, None);
    first.lenient = true;
    first.visit(global, 0)?;
    let direct = std::mem::take(&mut first.told_out);
    let mut unfold = first.found;
    if !first.found_loop {
        return Ok((unfold, direct));
    }
    for _ in 1..UNFOLD_PASSES {
        let mut a = Analyser::new(roles, (), &unfold, Some(&direct));
        a.lenient = true;
        a.visit(global, 0)?;
        if a.found == unfold {
            break;
        }
        unfold = a.found;
    }
    Ok((unfold, direct))
}

/// Checks a global type against the roles of its protocol.
///
/// A protocol without loops takes one pass; with loops, passes go on until
/// what a `continue` stands for no longer changes (see [`unfolding`]).
pub(crate) fn analyse<'g>(
    roles: &'g [String],
    global: &'g GlobalType,
) -> Result<Node<'g>, ProjectionError> {
    {
        let none = Unfold::new();
        let mut a = Analyser::new(roles, (), &none, None);
        a.lenient = true;
        if let Ok((node, _)) = a.visit(global, 0)
            && !a.found_loop
            && a.tells_nobody.is_none()
        {
            return Ok(node);
        }
    }
    let (unfold, direct) = unfolding(roles, global)?;
    Analyser::new(roles, (), &unfold, Some(&direct))
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
    let (unfold, direct) = match unfolding(roles, global) {
        Ok(u) => u,
        Err(e) => {
            let none = Unfold::new();
            let mut a = Analyser::new(roles, Vec::new(), &none, None);
            a.lenient = true;
            return match a.visit(global, 0) {
                Err(found) if found == *err && e == *err => Some(a.trail),
                _ => None,
            };
        }
    };
    let mut a = Analyser::new(roles, Vec::new(), &unfold, Some(&direct));
    let node = match a.visit(global, 0) {
        Ok((node, _)) => node,
        Err(e) => return (e == *err).then_some(a.trail),
    };
    // Projection fails only where a role is not told.
    let ProjectionError::NotTold { role, .. } = err else {
        return None;
    };
    let me = roles.iter().position(|r| r == role)?;
    let mut p = Projector::new(roles, me, Vec::new());
    match p.project(&node) {
        Err(e) if e == *err => Some(p.trail),
        _ => None,
    }
}

struct Analyser<'g, 'u, T> {
    /// Each role's index in the protocol's roles.
    index: HashMap<&'g str, usize>,
    /// Open loops, with the number of interactions on the path to each,
    /// the trail's mark at each and the address of each `rec` node.
    scope: Vec<(&'g str, usize, usize, usize)>,
    trail: T,
    /// The number the next message gets.
    next_id: usize,
    /// What a `continue` to each loop counts as (from an earlier pass).
    unfold: &'u Unfold,
    /// What this pass found a `continue` to each loop counts as.
    found: Unfold,
    /// Whether any loop was seen.
    found_loop: bool,
    /// Whether a choice that tells nobody is let through (earlier passes).
    lenient: bool,
    /// The first choice that tells nobody, let through.
    tells_nobody: Option<ProjectionError>,
    /// Whom each choice tells without unfolding (from the first pass);
    /// `None` in the first pass.
    direct: Option<&'u Direct>,
    /// Whom each choice tells in this pass.
    told_out: Direct,
}

impl<'g, 'u, T: Trail> Analyser<'g, 'u, T> {
    fn new(roles: &'g [String], trail: T, unfold: &'u Unfold, direct: Option<&'u Direct>) -> Self {
        let mut index = HashMap::with_capacity(roles.len());
        for (i, r) in roles.iter().enumerate() {
            index.entry(r.as_str()).or_insert(i);
        }
        Analyser {
            index,
            scope: Vec::new(),
            trail,
            next_id: 0,
            unfold,
            found: Unfold::new(),
            found_loop: false,
            lenient: false,
            tells_nobody: None,
            direct,
            told_out: Direct::new(),
        }
    }

    fn index(&self, role: &str) -> Result<usize, ProjectionError> {
        self.index
            .get(role_of(role))
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
            self.next_id += 1;
            node = Node::Message {
                from: f,
                to: t,
                label,
                payload,
                id: self.next_id,
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
                let key = match self.scope.iter().rev().find(|(n, ..)| n == name) {
                    None => return Err(ProjectionError::UnboundLoop { name: name.clone() }),
                    Some(&(_, at, mark, _)) if at == guards => {
                        // The error is about the loop, not the `continue`.
                        self.trail.back_to(mark);
                        return Err(ProjectionError::UnguardedLoop { name: name.clone() });
                    }
                    Some(&(.., key)) => key,
                };
                let mut s = Summary::empty();
                // What follows a `continue` is the loop's body again: its
                // first interactions count as the first ones here.
                if let Some(first) = self.unfold.get(&key) {
                    s.first = first.clone();
                }
                s.free.push(name);
                Ok((Node::Continue { name }, s))
            }
            GlobalType::Foreach {
                family,
                index,
                body,
                then,
            } => self.visit_foreach(family, index, body, then, guards),
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
            let e = ProjectionError::ChoiceTellsNobody {
                chooser: at.to_owned(),
                labels: branches.iter().map(|(l, _)| l.clone()).collect(),
            };
            if !self.lenient {
                return Err(e);
            }
            self.tells_nobody.get_or_insert(e);
        }
        // The chooser's first interactions are with the told roles, theirs
        // with the chooser; every other role keeps the union over the
        // branches.
        s.occurs.insert(a);
        for t in &told {
            s.first.insert(*t, RoleSet::single(a));
        }
        s.first.insert(a, told_set);
        let id = branches.as_ptr() as usize;
        self.told_out.insert(id, told.clone());
        // Roles told only thanks to unfolding a `continue` are told only if
        // they need it, so that protocols that merged before keep their
        // wire.
        let (told, extra) = match self.direct.and_then(|d| d.get(&id)) {
            Some(direct) if !direct.is_empty() => {
                let extra = told
                    .iter()
                    .copied()
                    .filter(|r| !direct.contains(r))
                    .collect();
                (direct.clone(), extra)
            }
            _ => (told, Vec::new()),
        };
        let node = Node::Choice {
            at: a,
            id,
            told,
            extra,
            branches: nodes,
        };
        Ok((node, s))
    }

    fn visit_foreach(
        &mut self,
        family: &'g str,
        index: &'g str,
        body: &'g GlobalType,
        then: &'g GlobalType,
        guards: usize,
    ) -> Result<(Node<'g>, Summary<'g>), ProjectionError> {
        let f = self.index(family)?;
        let mark = self.trail.mark();
        self.trail.enter(0);
        let (body, inner) = self.visit(body, guards)?;
        self.trail.back_to(mark);
        // A family has at least one member, so a round that has a
        // step guards what follows.
        let guarded = guards + usize::from(inner.occurs.iter().next().is_some());
        self.trail.enter(1);
        let (then, mut s) = self.visit(then, guarded)?;
        self.trail.back_to(mark);
        // The rounds come first: their first interactions win.
        for (r, first) in inner.first {
            s.first.insert(r, first);
        }
        s.occurs.union_with(&inner.occurs);
        let node = Node::Foreach {
            family: f,
            index,
            body: Box::new(body),
            then: Box::new(then),
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
        let key = std::ptr::from_ref(body) as usize;
        self.found_loop = true;
        self.scope.push((name, guards, mark, key));
        self.trail.enter(0);
        let visited = self.visit(body, guards);
        self.scope.pop();
        let (body, mut s) = visited?;
        self.trail.back_to(mark);
        self.found.insert(key, s.first.clone());
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

/// A local type under construction: roles by index, and for each message
/// the class of the global messages it stands for (several once the
/// branches of a choice are merged; see [`Classes`]). [`finish`] turns it into a
/// [`LocalType`] once every role's merges are known.
#[derive(Clone, Debug)]
enum Loc<'g> {
    Send {
        to: usize,
        label: &'g str,
        payload: Option<&'g str>,
        class: usize,
        then: Box<Loc<'g>>,
    },
    Recv {
        from: usize,
        label: &'g str,
        payload: Option<&'g str>,
        class: usize,
        then: Box<Loc<'g>>,
    },
    Select {
        to: usize,
        branches: Vec<(&'g str, Loc<'g>)>,
    },
    /// A choice `from` tells this role of, or the messages it may send
    /// next, each preceded by its label (a branch on the message received).
    Branch {
        from: usize,
        branches: Vec<(&'g str, Loc<'g>)>,
    },
    Rec {
        name: &'g str,
        body: Box<Loc<'g>>,
    },
    /// `idle` is the depth of the loop (0 the outermost open one) when the
    /// role did nothing on the way from the loop's start to here: it then
    /// stands for the role's whole view of the loop again, and merging it
    /// with another branch gives that branch.
    Continue {
        name: &'g str,
        idle: Option<usize>,
    },
    /// What a role other than the family does in each round, then `then`.
    Foreach {
        family: usize,
        index: &'g str,
        body: Box<Loc<'g>>,
        then: Box<Loc<'g>>,
    },
    End,
}

impl Loc<'_> {
    /// The first step, as in error messages (see [`LocalType::head`]).
    fn head(&self, roles: &[String]) -> String {
        match self {
            Loc::Send {
                to, label, payload, ..
            } => format!("send {} to {}", Msg(label, *payload), roles[*to]),
            Loc::Recv {
                from,
                label,
                payload,
                ..
            } => format!("recv {} from {}", Msg(label, *payload), roles[*from]),
            Loc::Select { to, branches } => {
                format!("select to {} {{ {} }}", roles[*to], labels_of(branches))
            }
            Loc::Branch { from, branches } => {
                format!("branch from {} {{ {} }}", roles[*from], labels_of(branches))
            }
            Loc::Rec { name, .. } => format!("rec {name}"),
            Loc::Continue { name, .. } => format!("continue {name}"),
            Loc::Foreach { family, index, .. } => format!("foreach {}[{index}]", roles[*family]),
            Loc::End => "end".to_owned(),
        }
    }
}

/// `first` followed by `then`: every end of `first` goes on with `then`.
/// `first` is one round of a `foreach`, which holds no loop.
fn sequence<'g>(first: Loc<'g>, then: &Loc<'g>) -> Loc<'g> {
    match first {
        Loc::End => then.clone(),
        Loc::Send {
            to,
            label,
            payload,
            class,
            then: t,
        } => Loc::Send {
            to,
            label,
            payload,
            class,
            then: Box::new(sequence(*t, then)),
        },
        Loc::Recv {
            from,
            label,
            payload,
            class,
            then: t,
        } => Loc::Recv {
            from,
            label,
            payload,
            class,
            then: Box::new(sequence(*t, then)),
        },
        Loc::Select { to, branches } => Loc::Select {
            to,
            branches: branches
                .into_iter()
                .map(|(l, b)| (l, sequence(b, then)))
                .collect(),
        },
        Loc::Branch { from, branches } => Loc::Branch {
            from,
            branches: branches
                .into_iter()
                .map(|(l, b)| (l, sequence(b, then)))
                .collect(),
        },
        Loc::Foreach {
            family,
            index,
            body,
            then: t,
        } => Loc::Foreach {
            family,
            index,
            body,
            then: Box::new(sequence(*t, then)),
        },
        other @ (Loc::Rec { .. } | Loc::Continue { .. }) => other,
    }
}

/// `a, b, c`.
fn labels_of(branches: &[(&str, Loc<'_>)]) -> String {
    branches
        .iter()
        .map(|(l, _)| *l)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Classes of global messages that merging made one step of a role's local
/// type (a union-find over message numbers), and the messages the role
/// branches on, which are sent after their label. Labels belong to
/// messages, not classes: at the head of an arm, a message sent after its
/// label may be merged with one that follows the same label chosen by the
/// sender, which is not sent again.
#[derive(Clone, Default)]
struct Classes {
    parent: Vec<usize>,
    /// The members of each class of more than one message, by root.
    members: HashMap<usize, Vec<usize>>,
    labelled: HashSet<usize>,
}

impl Classes {
    fn root(&self, mut x: usize) -> usize {
        while let Some(&p) = self.parent.get(x) {
            if p == x {
                break;
            }
            x = p;
        }
        x
    }

    fn grow(&mut self, x: usize) {
        while self.parent.len() <= x {
            self.parent.push(self.parent.len());
        }
    }

    /// The messages of the class of `x`.
    fn class(&self, x: usize) -> Vec<usize> {
        let r = self.root(x);
        self.members.get(&r).cloned().unwrap_or_else(|| vec![r])
    }

    /// Makes one class of the classes of `a` and `b`.
    fn union(&mut self, a: usize, b: usize) -> usize {
        self.grow(a.max(b));
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent[rb] = ra;
            let moved = self.members.remove(&rb).unwrap_or_else(|| vec![rb]);
            self.members
                .entry(ra)
                .or_insert_with(|| vec![ra])
                .extend(moved);
        }
        ra
    }

    /// Marks every message of the class of `x` as sent after its label.
    fn mark(&mut self, x: usize) {
        self.grow(x);
        for y in self.class(x) {
            self.labelled.insert(y);
        }
    }

    /// Whether a message of the class of `x` is sent after its label.
    fn any_labelled(&self, x: usize) -> bool {
        self.class(x).iter().any(|y| self.labelled.contains(y))
    }

    /// Every message this role branches on.
    fn labelled(&self) -> impl Iterator<Item = usize> + '_ {
        self.labelled.iter().copied()
    }
}

/// The projections of a checked global type onto every role.
pub(crate) fn project_all(
    roles: &[String],
    node: &Node<'_>,
) -> Result<Vec<LocalType>, ProjectionError> {
    let mut labelled = HashSet::new();
    let mut promoted = Promoted::new();
    let mut locs = Vec::with_capacity(roles.len());
    for me in 0..roles.len() {
        let mut p = Projector::new(roles, me, ());
        let loc = p.project(node)?;
        labelled.extend(p.classes.labelled());
        for id in p.promoted {
            promoted.entry(id).or_default().push(me);
        }
        locs.push((loc, p.classes));
    }
    // A chooser tells the roles that turned out to need it.
    if !promoted.is_empty() {
        let mut choosers = RoleSet::new();
        choosers_of(node, &promoted, &mut choosers);
        for me in choosers.iter() {
            let mut p = Projector::new(roles, me, ());
            p.promoted_in = &promoted;
            let loc = p.project(node)?;
            locs[me] = (loc, p.classes);
        }
    }
    locs.iter()
        .enumerate()
        .map(|(me, (l, classes))| finish(roles, node, me, l, classes, &labelled))
        .collect()
}

/// Projects a checked global type onto the role with index `me`.
///
/// Whether a message `me` sends travels with its label depends on how its
/// receiver merges the branches it is in, so the roles `me` sends to are
/// projected too (their errors are theirs, and left to
/// [`project_all`]).
pub(crate) fn project(
    roles: &[String],
    node: &Node<'_>,
    me: usize,
) -> Result<LocalType, ProjectionError> {
    // The roles whose projection can change this one's: those it sends to
    // (do they branch on its messages?) and those its choices may tell.
    let mut peers = RoleSet::new();
    receivers_of(node, me, &mut peers);
    extras_of(node, me, &mut peers);
    let mut labelled: HashSet<usize> = HashSet::new();
    let mut promoted = Promoted::new();
    for peer in peers.iter().filter(|r| *r != me) {
        let mut q = Projector::new(roles, peer, ());
        if q.project(node).is_ok() {
            labelled.extend(q.classes.labelled());
            for id in q.promoted {
                promoted.entry(id).or_default().push(peer);
            }
        }
    }
    let mut p = Projector::new(roles, me, ());
    p.promoted_in = &promoted;
    let loc = p.project(node)?;
    labelled.extend(p.classes.labelled());
    finish(roles, node, me, &loc, &p.classes, &labelled)
}

/// The roles that choices in `node` promoted, by chooser.
fn choosers_of(node: &Node<'_>, promoted: &Promoted, out: &mut RoleSet) {
    walk_choices(node, &mut |at, id, _| {
        if promoted.contains_key(&id) {
            out.insert(at);
        }
    });
}

/// The `extra` roles of the choices `me` makes in `node`.
fn extras_of(node: &Node<'_>, me: usize, out: &mut RoleSet) {
    walk_choices(node, &mut |at, _, extra| {
        if at == me {
            for r in extra {
                out.insert(*r);
            }
        }
    });
}

/// Calls `f` with the chooser, number and `extra` roles of every choice.
fn walk_choices(node: &Node<'_>, f: &mut dyn FnMut(usize, usize, &[usize])) {
    let mut n = node;
    loop {
        match n {
            Node::Message { then, .. } => n = then,
            Node::Choice {
                at,
                id,
                extra,
                branches,
                ..
            } => {
                f(*at, *id, extra);
                for (_, b) in branches {
                    walk_choices(b, f);
                }
                return;
            }
            Node::Rec { body, .. } => n = body,
            Node::Foreach { body, then, .. } => {
                walk_choices(body, f);
                n = then;
            }
            Node::Continue { .. } | Node::End => return,
        }
    }
}

/// The roles `me` sends a message to somewhere in `node`.
fn receivers_of(node: &Node<'_>, me: usize, out: &mut RoleSet) {
    let mut n = node;
    loop {
        match n {
            Node::Message { from, to, then, .. } => {
                if *from == me {
                    out.insert(*to);
                }
                n = then;
            }
            Node::Choice { branches, .. } => {
                for (_, b) in branches {
                    receivers_of(b, me, out);
                }
                return;
            }
            Node::Rec { body, .. } => n = body,
            Node::Foreach { body, then, .. } => {
                receivers_of(body, me, out);
                n = then;
            }
            Node::Continue { .. } | Node::End => return,
        }
    }
}

/// The families of a checked global type: the roles some `foreach` goes
/// over.
fn families_of(node: &Node<'_>, out: &mut RoleSet) {
    let mut n = node;
    loop {
        match n {
            Node::Message { then, .. } => n = then,
            Node::Choice { branches, .. } => {
                for (_, b) in branches {
                    families_of(b, out);
                }
                return;
            }
            Node::Rec { body, .. } => n = body,
            Node::Foreach {
                family, body, then, ..
            } => {
                out.insert(*family);
                families_of(body, out);
                n = then;
            }
            Node::Continue { .. } | Node::End => return,
        }
    }
}

/// Turns a role's [`Loc`] into its local type: a message whose receiver
/// branches on it is sent after its label (a one-label `select`), and a
/// receive of such a message outside a branch on it is preceded by one.
/// A member of a family is named `Worker[i]` inside a `foreach` over it,
/// and the whole family `Worker[*]` elsewhere (a choice it is told of).
fn finish(
    roles: &[String],
    node: &Node<'_>,
    me: usize,
    loc: &Loc<'_>,
    classes: &Classes,
    labelled: &HashSet<usize>,
) -> Result<LocalType, ProjectionError> {
    let mut families = RoleSet::new();
    families_of(node, &mut families);
    // For each class of this role's messages: how many messages, and how
    // many of them are sent after their label.
    let mut counts: HashMap<usize, (usize, usize)> = HashMap::new();
    for x in 0..classes.parent.len() {
        let c = counts.entry(classes.root(x)).or_default();
        c.0 += 1;
        c.1 += usize::from(labelled.contains(&x) || classes.labelled.contains(&x));
    }
    Finisher {
        roles,
        families,
        me,
        classes,
        counts,
    }
    .finish(loc, None)
}

struct Finisher<'a> {
    roles: &'a [String],
    families: RoleSet,
    me: usize,
    classes: &'a Classes,
    counts: HashMap<usize, (usize, usize)>,
}

impl Finisher<'_> {
    fn name(&self, peer: usize, foreach: Option<(usize, &str)>) -> String {
        if !self.families.contains(peer) {
            return self.roles[peer].clone();
        }
        match foreach {
            Some((f, index)) if f == peer => format!("{}[{index}]", self.roles[peer]),
            _ => format!("{}[*]", self.roles[peer]),
        }
    }

    fn finish(
        &self,
        loc: &Loc<'_>,
        foreach: Option<(usize, &str)>,
    ) -> Result<LocalType, ProjectionError> {
        // Runs of messages are walked in a loop, then built back.
        enum Wrap {
            Plain,
            Select(String),
            Branch(String),
        }
        let mut run = Vec::new();
        let mut l = loc;
        loop {
            match l {
                Loc::Send {
                    to,
                    label,
                    payload,
                    class,
                    then,
                } => {
                    let (total, tagged) = self
                        .counts
                        .get(&self.classes.root(*class))
                        .copied()
                        .unwrap_or((1, 0));
                    if tagged != 0 && tagged != total {
                        return Err(ProjectionError::LabelledInPart {
                            role: self.roles[self.me].clone(),
                            to: self.name(*to, foreach),
                            label: (*label).to_owned(),
                        });
                    }
                    let wrap = if tagged == 0 {
                        Wrap::Plain
                    } else {
                        Wrap::Select((*label).to_owned())
                    };
                    run.push((true, *to, *label, *payload, wrap));
                    l = then;
                }
                Loc::Recv {
                    from,
                    label,
                    payload,
                    class,
                    then,
                } => {
                    let tagged = self
                        .counts
                        .get(&self.classes.root(*class))
                        .map_or(0, |c| c.1);
                    let wrap = if tagged > 0 {
                        Wrap::Branch((*label).to_owned())
                    } else {
                        Wrap::Plain
                    };
                    run.push((false, *from, *label, *payload, wrap));
                    l = then;
                }
                _ => break,
            }
        }
        let mut local = match l {
            Loc::Send { .. } | Loc::Recv { .. } => {
                unreachable!("invariant: the loop above walks past messages")
            }
            Loc::Select { to, branches } => LocalType::Select {
                to: self.name(*to, foreach),
                branches: self.arms(*to, branches, foreach)?,
            },
            Loc::Branch { from, branches } => LocalType::Branch {
                from: self.name(*from, foreach),
                branches: self.arms(*from, branches, foreach)?,
            },
            Loc::Rec { name, body } => LocalType::Rec {
                name: (*name).to_owned(),
                body: Box::new(self.finish(body, foreach)?),
            },
            Loc::Continue { name, .. } => LocalType::Continue {
                name: (*name).to_owned(),
            },
            Loc::Foreach {
                family,
                index,
                body,
                then,
            } => LocalType::Foreach {
                family: self.roles[*family].clone(),
                index: (*index).to_owned(),
                body: Box::new(self.finish(body, Some((*family, index)))?),
                then: Box::new(self.finish(then, foreach)?),
            },
            Loc::End => LocalType::End,
        };
        for (send, peer, label, payload, wrap) in run.into_iter().rev() {
            let (peer, label, payload) = (
                self.name(peer, foreach),
                label.to_owned(),
                payload.map(str::to_owned),
            );
            local = if send {
                LocalType::Send {
                    to: peer.clone(),
                    label,
                    payload,
                    then: Box::new(local),
                }
            } else {
                LocalType::Recv {
                    from: peer.clone(),
                    label,
                    payload,
                    then: Box::new(local),
                }
            };
            local = match wrap {
                Wrap::Plain => local,
                Wrap::Select(l) => LocalType::Select {
                    to: peer,
                    branches: vec![(l, local)],
                },
                Wrap::Branch(l) => LocalType::Branch {
                    from: peer,
                    branches: vec![(l, local)],
                },
            };
        }
        Ok(local)
    }

    /// The arms of a `select` or `branch` with `peer`: an arm that begins by
    /// receiving the message of its own label from `peer` has that label
    /// already, so the message is a plain receive.
    fn arms(
        &self,
        peer: usize,
        branches: &[(&str, Loc<'_>)],
        foreach: Option<(usize, &str)>,
    ) -> Result<Vec<(String, LocalType)>, ProjectionError> {
        let mut out = Vec::with_capacity(branches.len());
        for (label, body) in branches {
            let local = match body {
                Loc::Recv {
                    from,
                    label: l,
                    payload,
                    then,
                    ..
                } if *from == peer && l == label => LocalType::Recv {
                    from: self.name(peer, foreach),
                    label: (*l).to_owned(),
                    payload: payload.map(str::to_owned),
                    then: Box::new(self.finish(then, foreach)?),
                },
                _ => self.finish(body, foreach)?,
            };
            out.push(((*label).to_owned(), local));
        }
        Ok(out)
    }
}

/// For each choice, the roles told only because their branches do not
/// merge without it.
type Promoted = HashMap<usize, Vec<usize>>;

/// No choice tells a role that needs it.
static NONE_PROMOTED: std::sync::LazyLock<Promoted> = std::sync::LazyLock::new(Promoted::new);

struct Projector<'a, 'g, T> {
    roles: &'a [String],
    me: usize,
    /// The enclosing loops, each with the number of this role's steps on
    /// the path from the root to its start.
    loops: Vec<(&'g str, usize)>,
    /// The number of this role's steps on the path from the root to here.
    acts: usize,
    /// The classes of this role's messages, and those it branches on
    /// (their senders send the label first).
    classes: Classes,
    /// The choices this role is told of only because its branches do not
    /// merge (it is among their `extra` roles).
    promoted: HashSet<usize>,
    /// For the choices this role makes, the `extra` roles told.
    promoted_in: &'a Promoted,
    trail: T,
}

impl<'a, 'g, T: Trail> Projector<'a, 'g, T> {
    fn new(roles: &'a [String], me: usize, trail: T) -> Self {
        Projector {
            roles,
            me,
            loops: Vec::new(),
            acts: 0,
            classes: Classes::default(),
            promoted: HashSet::new(),
            promoted_in: &NONE_PROMOTED,
            trail,
        }
    }

    fn project(&mut self, node: &Node<'g>) -> Result<Loc<'g>, ProjectionError> {
        match node {
            Node::Message { .. } => self.project_messages(node),
            Node::Choice { .. } => self.project_choice(node),
            Node::Rec {
                name,
                occurs,
                free,
                body,
            } => {
                if !occurs.contains(self.me) && free.is_empty() {
                    return Ok(Loc::End);
                }
                let mark = self.trail.mark();
                let depth = self.loops.len();
                self.loops.push((name, self.acts));
                self.trail.enter(0);
                let body = self.project(body);
                self.loops.pop();
                let body = body?;
                self.trail.back_to(mark);
                Ok(match body {
                    // The role does nothing in this loop: what follows it
                    // (in the branches that leave it) is all it does.
                    Loc::Continue { idle: Some(d), .. } if d >= depth => Loc::End,
                    body if mentions(&body, name) => Loc::Rec {
                        name,
                        body: Box::new(body),
                    },
                    body => body,
                })
            }
            Node::Continue { name } => {
                let found = self.loops.iter().rposition(|(n, _)| n == name);
                let idle = found.filter(|&d| self.loops[d].1 == self.acts);
                Ok(Loc::Continue { name, idle })
            }
            Node::Foreach {
                family,
                index,
                body,
                then,
            } => self.project_foreach(*family, index, body, then),
            Node::End => Ok(Loc::End),
        }
    }

    /// The branches of a choice, each projected; with `acts` counting the
    /// choice as a step of this role when `involved`.
    fn project_branches(
        &mut self,
        branches: &[(&'g str, Node<'g>)],
        involved: bool,
    ) -> Result<Vec<(&'g str, Loc<'g>)>, ProjectionError> {
        let step = usize::from(involved);
        self.acts += step;
        let mut conts = Vec::with_capacity(branches.len());
        let mark = self.trail.mark();
        for (i, (l, b)) in branches.iter().enumerate() {
            self.trail.enter(i);
            let c = self.project(b);
            if c.is_err() {
                self.acts -= step;
            }
            conts.push((*l, c?));
            self.trail.back_to(mark);
        }
        self.acts -= step;
        Ok(conts)
    }

    /// A choice: the chooser's selects, a told role's branch, or the merge
    /// of the branches. A role told only by unfolding (`extra`) keeps the
    /// merge when its branches merge, and is told otherwise; the chooser
    /// tells it then (see [`project_all`]).
    fn project_choice(&mut self, node: &Node<'g>) -> Result<Loc<'g>, ProjectionError> {
        let Node::Choice {
            at,
            id,
            told,
            extra,
            branches,
        } = node
        else {
            unreachable!("invariant: project_choice is called on a choice")
        };
        if *at == self.me {
            let conts = self.project_branches(branches, true)?;
            let mut all = told.clone();
            if let Some(more) = self.promoted_in.get(id) {
                all.extend(more.iter().copied());
                all.sort_unstable();
                all.dedup();
            }
            return Ok(self.select_chain(&all, conts));
        }
        if told.contains(&self.me) {
            let conts = self.project_branches(branches, true)?;
            return Ok(Loc::Branch {
                from: *at,
                branches: conts,
            });
        }
        let conts = self.project_branches(branches, false)?;
        if !extra.contains(&self.me) {
            return self.merge_all(*at, conts);
        }
        let before = self.classes.clone();
        match self.merge_all(*at, conts) {
            Ok(merged) => Ok(merged),
            Err(_) => {
                self.classes = before;
                self.promoted.insert(*id);
                let conts = self.project_branches(branches, true)?;
                Ok(Loc::Branch {
                    from: *at,
                    branches: conts,
                })
            }
        }
    }

    /// A `foreach`, in a function of its own so that the frames of
    /// [`Projector::project`] stay small.
    fn project_foreach(
        &mut self,
        family: usize,
        index: &'g str,
        body: &Node<'g>,
        then: &Node<'g>,
    ) -> Result<Loc<'g>, ProjectionError> {
        let mark = self.trail.mark();
        self.trail.enter(0);
        let round = self.project(body)?;
        self.trail.back_to(mark);
        let acted = usize::from(!matches!(round, Loc::End));
        self.acts += acted;
        self.trail.enter(1);
        let after = self.project(then);
        self.acts -= acted;
        let after = after?;
        self.trail.back_to(mark);
        Ok(if family == self.me {
            // A member takes part in its own round only.
            sequence(round, &after)
        } else if acted == 0 {
            after
        } else {
            Loc::Foreach {
                family,
                index,
                body: Box::new(round),
                then: Box::new(after),
            }
        })
    }

    /// A run of messages, walked in a loop; the role keeps those it sends or
    /// receives.
    fn project_messages(&mut self, node: &Node<'g>) -> Result<Loc<'g>, ProjectionError> {
        let mark = self.trail.mark();
        let mut run = Vec::new();
        let mut rest = node;
        while let Node::Message {
            from,
            to,
            label,
            payload,
            id,
            then,
        } = rest
        {
            if *from == self.me || *to == self.me {
                self.classes.grow(*id);
                run.push((*from, *to, *label, *payload, *id));
            }
            self.trail.enter(0);
            rest = then;
        }
        self.acts += run.len();
        let local = self.project(rest);
        self.acts -= run.len();
        let mut local = local?;
        self.trail.back_to(mark);
        for (from, to, label, payload, id) in run.into_iter().rev() {
            let then = Box::new(local);
            local = if from == self.me {
                Loc::Send {
                    to,
                    label,
                    payload,
                    class: id,
                    then,
                }
            } else {
                Loc::Recv {
                    from,
                    label,
                    payload,
                    class: id,
                    then,
                }
            };
        }
        Ok(local)
    }

    /// The chooser's side: one `select` per told role, in role order; the
    /// first offers every label, each later one only the label already taken.
    fn select_chain(&self, told: &[usize], conts: Vec<(&'g str, Loc<'g>)>) -> Loc<'g> {
        let Some((first, rest)) = told.split_first() else {
            // The checker rejects choices that tell nobody; with no one to
            // tell, a single branch is all that could be taken.
            return conts.into_iter().next().map_or(Loc::End, |(_, c)| c);
        };
        let branches = conts
            .into_iter()
            .map(|(label, cont)| {
                let inner = rest.iter().rev().fold(cont, |acc, r| Loc::Select {
                    to: *r,
                    branches: vec![(label, acc)],
                });
                (label, inner)
            })
            .collect();
        Loc::Select {
            to: *first,
            branches,
        }
    }

    /// A role that is not told: the merge of its views of every branch.
    /// Branches in which it does nothing before the loop starts again are
    /// left out: there it is simply waiting for the loop's next round.
    fn merge_all(
        &mut self,
        at: usize,
        conts: Vec<(&'g str, Loc<'g>)>,
    ) -> Result<Loc<'g>, ProjectionError> {
        let mut idle: Option<Loc<'g>> = None;
        let mut busy = Vec::with_capacity(conts.len());
        for (l, c) in conts {
            match c {
                Loc::Continue { idle: Some(d), .. } => {
                    let outer = match &idle {
                        Some(Loc::Continue { idle: Some(e), .. }) => d < *e,
                        _ => true,
                    };
                    if outer {
                        idle = Some(c);
                    }
                }
                c => busy.push((l, c)),
            }
        }
        let mut iter = busy.iter();
        let Some((_, first)) = iter.next() else {
            return Ok(idle.unwrap_or(Loc::End));
        };
        let mut acc = first.clone();
        for (i, (right, cont)) in iter.enumerate() {
            let mut m = Merger {
                roles: self.roles,
                classes: &mut self.classes,
            };
            match m.merge(&acc, cont) {
                Ok(merged) => acc = merged,
                Err(detail) => {
                    // Name the first earlier branch that alone clashes with
                    // this one, or else the first branch.
                    let mut scratch = self.classes.clone();
                    let mut probe = Merger {
                        roles: self.roles,
                        classes: &mut scratch,
                    };
                    let (left, detail) = busy[..=i]
                        .iter()
                        .find_map(|(l, c)| probe.merge(c, cont).err().map(|d| (*l, d)))
                        .unwrap_or((busy[0].0, detail));
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

/// Whether `continue name` occurs free in `l`.
fn mentions(l: &Loc<'_>, name: &str) -> bool {
    let mut l = l;
    while let Loc::Send { then, .. } | Loc::Recv { then, .. } = l {
        l = then;
    }
    match l {
        Loc::Send { .. } | Loc::Recv { .. } => false,
        Loc::Select { branches, .. } | Loc::Branch { branches, .. } => {
            branches.iter().any(|(_, l)| mentions(l, name))
        }
        Loc::Rec { name: n, body } => *n != name && mentions(body, name),
        Loc::Continue { name: n, .. } => *n == name,
        Loc::Foreach { body, then, .. } => mentions(body, name) || mentions(then, name),
        Loc::End => false,
    }
}

/// A message both sides of a merge begin with: whether it is a send, the
/// peer, label and payload, and the class of global messages it stands for.
type MergedMessage<'g> = (bool, usize, &'g str, Option<&'g str>, usize);

/// The full merge of two views of a role that is not told of a choice, and
/// the messages it branches on.
struct Merger<'a, 'm> {
    roles: &'a [String],
    classes: &'m mut Classes,
}

impl<'g> Merger<'_, '_> {
    /// Equal heads merge their continuations; receives from one sender with
    /// distinct labels merge into a branch on the message received (its
    /// label travels first); two `branch from` the same role merge by the
    /// union of their labels; two `select` to the same role need the same
    /// labels. Anything else does not merge; the error says where.
    fn merge(&mut self, a: &Loc<'g>, b: &Loc<'g>) -> Result<Loc<'g>, String> {
        // Equal sends and receives, walked in a loop.
        let mut run: Vec<MergedMessage<'g>> = Vec::new();
        let (mut x, mut y) = (a, b);
        loop {
            match (x, y) {
                (
                    Loc::Send {
                        to: p,
                        label,
                        payload,
                        class,
                        then,
                    },
                    Loc::Send {
                        to: p2,
                        label: label2,
                        payload: payload2,
                        class: class2,
                        then: then2,
                    },
                )
                | (
                    Loc::Recv {
                        from: p,
                        label,
                        payload,
                        class,
                        then,
                    },
                    Loc::Recv {
                        from: p2,
                        label: label2,
                        payload: payload2,
                        class: class2,
                        then: then2,
                    },
                ) if p == p2 && label == label2 && payload == payload2 => {
                    let both = self.classes.union(*class, *class2);
                    run.push((matches!(x, Loc::Send { .. }), *p, label, *payload, both));
                    (x, y) = (then, then2);
                }
                _ => break,
            }
        }
        let mut merged = match self.merge_step(x, y) {
            Ok(m) => m,
            Err(e) if run.is_empty() => return Err(e),
            Err(e) => {
                let (send, peer, label, payload, _) = &run[run.len() - 1];
                let verb = if *send { "send" } else { "recv" };
                let dir = if *send { "to" } else { "from" };
                return Err(format!(
                    "after `{verb} {} {dir} {}` in both, {e}",
                    Msg(label, *payload),
                    self.roles[*peer]
                ));
            }
        };
        for (send, peer, label, payload, class) in run.into_iter().rev() {
            let then = Box::new(merged);
            merged = if send {
                Loc::Send {
                    to: peer,
                    label,
                    payload,
                    class,
                    then,
                }
            } else {
                Loc::Recv {
                    from: peer,
                    label,
                    payload,
                    class,
                    then,
                }
            };
        }
        Ok(merged)
    }

    /// Marks the messages `recv` stands for as sent with their label.
    fn tag(&mut self, recv: &Loc<'g>) {
        if let Loc::Recv { class, .. } = recv {
            self.classes.mark(*class);
        }
    }

    /// Whether `l` is a receive of the message labelled `label` from `peer`
    /// whose label travels before it: the first step of a branch on that
    /// message.
    fn message_arm(&self, l: &Loc<'g>, peer: usize, label: &str) -> bool {
        matches!(l, Loc::Recv { from, label: m, class, .. }
            if *from == peer && *m == label && self.classes.any_labelled(*class))
    }

    /// Merges the continuations of label `label` of two branches from
    /// `peer`. Where one of them is a branch on the message received, the
    /// label stands for that message, so the other must receive it too.
    fn merge_arm(
        &mut self,
        peer: usize,
        label: &str,
        x: &Loc<'g>,
        y: &Loc<'g>,
    ) -> Result<Loc<'g>, String> {
        if self.message_arm(x, peer, label) || self.message_arm(y, peer, label) {
            let same = match (x, y) {
                (
                    Loc::Recv {
                        from,
                        label: l,
                        payload,
                        ..
                    },
                    Loc::Recv {
                        from: f2,
                        label: l2,
                        payload: p2,
                        ..
                    },
                ) => from == f2 && l == l2 && payload == p2,
                _ => false,
            };
            if !same {
                return Err(format!(
                    "label `{label}` from {} is a message in one branch, `{}` against `{}`",
                    self.roles[peer],
                    x.head(self.roles),
                    y.head(self.roles)
                ));
            }
        }
        self.merge(x, y)
    }

    /// Adds `recv` (a receive from `peer`) to the arms of a branch from
    /// `peer` as a branch on the message received.
    fn add_message_arm(
        &mut self,
        peer: usize,
        arms: &[(&'g str, Loc<'g>)],
        recv: &Loc<'g>,
    ) -> Result<Loc<'g>, String> {
        let Loc::Recv { label, .. } = recv else {
            return Err("internal: not a receive".to_owned());
        };
        self.tag(recv);
        let mut out = Vec::with_capacity(arms.len() + 1);
        let mut found = false;
        for (l, c) in arms {
            if l == label {
                found = true;
                out.push((*l, self.merge_arm(peer, l, c, recv)?));
            } else {
                out.push((*l, c.clone()));
            }
        }
        if !found {
            out.push((*label, recv.clone()));
        }
        Ok(Loc::Branch {
            from: peer,
            branches: out,
        })
    }

    /// [`Merger::merge`] of two types that do not both start with the same
    /// message.
    fn merge_step(&mut self, a: &Loc<'g>, b: &Loc<'g>) -> Result<Loc<'g>, String> {
        let clash =
            |roles: &[String]| Err(format!("`{}` against `{}`", a.head(roles), b.head(roles)));
        match (a, b) {
            // Doing nothing until the loop's next round: see `merge_all`.
            (Loc::Continue { idle: Some(_), .. }, other)
            | (other, Loc::Continue { idle: Some(_), .. }) => Ok(other.clone()),
            (Loc::End, Loc::End) => Ok(Loc::End),
            (Loc::Continue { name: x, .. }, Loc::Continue { name: y, .. }) if x == y => {
                Ok(a.clone())
            }
            (
                Loc::Recv {
                    from,
                    label,
                    payload,
                    ..
                },
                Loc::Recv {
                    from: f2,
                    label: l2,
                    payload: p2,
                    ..
                },
            ) if from == f2 => {
                if label == l2 {
                    return Err(format!(
                        "`recv {} from {r}` against `recv {} from {r}`: one label, two payloads",
                        Msg(label, *payload),
                        Msg(l2, *p2),
                        r = self.roles[*from]
                    ));
                }
                self.tag(a);
                self.tag(b);
                Ok(Loc::Branch {
                    from: *from,
                    branches: vec![(label, a.clone()), (l2, b.clone())],
                })
            }
            (Loc::Recv { from, .. }, Loc::Branch { from: f2, branches })
            | (Loc::Branch { from: f2, branches }, Loc::Recv { from, .. })
                if from == f2 =>
            {
                let recv = if matches!(a, Loc::Recv { .. }) { a } else { b };
                self.add_message_arm(*from, branches, recv)
            }
            (
                Loc::Select { to, branches },
                Loc::Select {
                    to: to2,
                    branches: branches2,
                },
            ) if to == to2 => {
                let same = branches.len() == branches2.len()
                    && branches
                        .iter()
                        .all(|(l, _)| branches2.iter().any(|(m, _)| l == m));
                if !same {
                    return Err(format!(
                        "`{}` against `{}`: a role that is not told must offer the same labels",
                        a.head(self.roles),
                        b.head(self.roles)
                    ));
                }
                let mut out = Vec::with_capacity(branches.len());
                for (l, x) in branches {
                    let y = branches2.iter().find(|(m, _)| m == l).map(|(_, y)| y);
                    let merged = match y {
                        Some(y) => self.merge(x, y)?,
                        None => return clash(self.roles),
                    };
                    out.push((*l, merged));
                }
                Ok(Loc::Select {
                    to: *to,
                    branches: out,
                })
            }
            (
                Loc::Branch { from, branches },
                Loc::Branch {
                    from: from2,
                    branches: branches2,
                },
            ) if from == from2 => {
                let mut out = Vec::with_capacity(branches.len() + branches2.len());
                for (l, x) in branches {
                    let merged = match branches2.iter().find(|(m, _)| m == l) {
                        Some((_, y)) => self.merge_arm(*from, l, x, y)?,
                        None => x.clone(),
                    };
                    out.push((*l, merged));
                }
                for (l, y) in branches2 {
                    if !branches.iter().any(|(m, _)| m == l) {
                        out.push((*l, y.clone()));
                    }
                }
                Ok(Loc::Branch {
                    from: *from,
                    branches: out,
                })
            }
            (
                Loc::Foreach {
                    family,
                    index,
                    body,
                    then,
                },
                Loc::Foreach {
                    family: f2,
                    body: b2,
                    then: t2,
                    ..
                },
            ) if family == f2 => Ok(Loc::Foreach {
                family: *family,
                index,
                body: Box::new(self.merge(body, b2)?),
                then: Box::new(self.merge(then, t2)?),
            }),
            (Loc::Rec { name, body }, Loc::Rec { name: n2, body: b2 }) if name == n2 => {
                Ok(Loc::Rec {
                    name,
                    body: Box::new(self.merge(body, b2)?),
                })
            }
            _ => clash(self.roles),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn projections(src: &str) -> Result<Vec<String>, ProjectionError> {
        let p = crate::Protocol::parse(src).unwrap();
        let node = analyse(p.roles(), p.global())?;
        Ok(project_all(p.roles(), &node)?
            .iter()
            .map(|l| l.to_string())
            .collect())
    }

    #[test]
    fn receives_with_distinct_labels_merge_into_a_branch_and_the_sender_sends_the_label() {
        let got = projections(
            "roles A, B, C; choice at A { Foo: { A -> B: Foo; B -> C: Foo; } Bar: { A -> B: Bar; B -> C: Bar; } }",
        )
        .unwrap();
        assert_eq!(
            got[1],
            "branch from A { Foo: { recv Foo from A; select to C { Foo: { send Foo to C; end } } } Bar: { recv Bar from A; select to C { Bar: { send Bar to C; end } } } }"
        );
        assert_eq!(
            got[2],
            "branch from B { Foo: { recv Foo from B; end } Bar: { recv Bar from B; end } }"
        );
    }

    #[test]
    fn equal_receives_merge_without_a_label() {
        let got = projections(
            "roles A, B, C; choice at A { x: { A -> B: X; B -> C: Go; } y: { A -> B: Y; B -> C: Go; } }",
        )
        .unwrap();
        assert_eq!(got[2], "recv Go from B; end");
        assert!(!got[1].contains("select"), "{}", got[1]);
    }

    #[test]
    fn chooser_selects_in_role_order() {
        let roles = roles(&["A", "B", "C"]);
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

    #[test]
    fn a_bystander_of_a_loop_waits_for_what_follows_it() {
        let got = projections(
            "roles A, B, C; rec X { choice at A { more: { A -> B: More; continue X; } stop: { A -> B: Stop; } } } B -> C: Done;",
        )
        .unwrap();
        assert_eq!(got[2], "recv Done from B; end");
        assert_eq!(
            got[1],
            "rec X { branch from A { more: { recv More from A; continue X } stop: { recv Stop from A; send Done to C; end } } }"
        );
    }

    #[test]
    fn a_continue_tells_what_the_next_round_begins_with() {
        // `C` hears from `A` first in the next round, so `A` tells it.
        let got = projections(
            "roles A, B, C; rec X { A -> C: Tick; choice at A { more: { A -> B: More; continue X; } stop: { A -> B: Stop; } } }",
        )
        .unwrap();
        assert_eq!(
            got[2],
            "rec X { recv Tick from A; branch from A { more: { continue X } stop: { end } } }"
        );
    }
}
