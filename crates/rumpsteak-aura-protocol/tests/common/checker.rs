//! A bounded model checker for sets of local types: it runs every role
//! together over one FIFO queue per ordered pair of roles (a choice label
//! is queued like a message) and explores every interleaving, up to a
//! bound on each queue's length and on the number of states.
//!
//! It finds three kinds of faults, each with the trace that leads to it:
//! a role that receives something other than what its type expects next
//! (an unexpected message), a message left in the queue of a role that has
//! ended (an orphan), and a state where no role can move while some have
//! not ended (a deadlock).
// A fault is the checker's answer, returned once per exploration: its size
// does not matter. Roles are indices into several tables at once.
#![allow(clippy::result_large_err, clippy::needless_range_loop)]

use std::collections::{HashMap, VecDeque};
use std::fmt;

use rumpsteak_aura_protocol::{LocalType, Protocol};

/// What travels on a queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Item {
    /// A message: its label and payload type.
    Msg(String, Option<String>),
    /// A choice label.
    Label(String),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Msg(l, Some(p)) => write!(f, "message {l}({p})"),
            Item::Msg(l, None) => write!(f, "message {l}"),
            Item::Label(l) => write!(f, "label {l}"),
        }
    }
}

/// A fault the checker found, with the steps that lead to it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `role` expected `expected` from `from` but the queue held `got`.
    Unexpected {
        role: String,
        from: String,
        expected: String,
        got: Item,
        trace: Vec<String>,
    },
    /// `role` has ended with `left` still queued for it from `from`.
    Orphan {
        role: String,
        from: String,
        left: Item,
        trace: Vec<String>,
    },
    /// No role can move; `waiting` says what each unfinished role waits for.
    Deadlock {
        waiting: Vec<String>,
        trace: Vec<String>,
    },
    /// A local type names a role that is not in the set.
    UnknownPeer { role: String, peer: String },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, trace) = match self {
            Fault::Unexpected {
                role,
                from,
                expected,
                got,
                trace,
            } => (
                format!("unexpected: {role} expected {expected} from {from}, got {got}"),
                trace,
            ),
            Fault::Orphan {
                role,
                from,
                left,
                trace,
            } => (
                format!("orphan: {role} ended with {left} from {from} left"),
                trace,
            ),
            Fault::Deadlock { waiting, trace } => {
                (format!("deadlock: {}", waiting.join("; ")), trace)
            }
            Fault::UnknownPeer { role, peer } => {
                return write!(f, "{role} names unknown peer {peer}");
            }
        };
        write!(f, "{what}\ntrace:")?;
        for s in trace {
            write!(f, "\n  {s}")?;
        }
        Ok(())
    }
}

/// How far a fault-free exploration went.
#[derive(Debug)]
pub(crate) struct Explored {
    /// The states visited.
    pub(crate) states: usize,
    /// Whether every reachable state was visited (no bound was hit).
    pub(crate) exhaustive: bool,
    /// Whether some run ends with every role done and every queue empty.
    pub(crate) can_finish: bool,
}

/// A state of the whole system: each role's type and each queue, all by
/// number (see [`Tables`]).
#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    roles: Vec<usize>,
    queues: Vec<VecDeque<usize>>,
}

/// What a role's type allows next, with peers, items and continuations by
/// number.
#[derive(Clone)]
enum Shape {
    End,
    Send {
        to: usize,
        arms: Vec<(usize, usize)>,
    },
    Recv {
        from: usize,
        arms: Vec<(usize, usize)>,
    },
    Stuck(String),
}

/// Local types and queue items, each numbered once, and the shape of each
/// type.
#[derive(Default)]
struct Tables {
    types: HashMap<LocalType, usize>,
    shapes: Vec<Option<Shape>>,
    list: Vec<LocalType>,
    items: HashMap<Item, usize>,
    item_list: Vec<Item>,
}

impl Tables {
    fn ty(&mut self, l: LocalType) -> usize {
        let l = head_normal(l);
        if let Some(i) = self.types.get(&l) {
            return *i;
        }
        self.list.push(l.clone());
        self.shapes.push(None);
        self.types.insert(l, self.list.len() - 1);
        self.list.len() - 1
    }

    fn item(&mut self, item: Item) -> usize {
        if let Some(i) = self.items.get(&item) {
            return *i;
        }
        self.item_list.push(item.clone());
        self.items.insert(item, self.item_list.len() - 1);
        self.item_list.len() - 1
    }

    fn shape(
        &mut self,
        t: usize,
        peer: &dyn Fn(&str) -> Result<usize, Fault>,
    ) -> Result<Shape, Fault> {
        if let Some(s) = &self.shapes[t] {
            return Ok(s.clone());
        }
        let shape = match self.list[t].clone() {
            LocalType::End => Shape::End,
            LocalType::Send {
                to,
                label,
                payload,
                then,
            } => Shape::Send {
                to: peer(&to)?,
                arms: vec![(self.item(Item::Msg(label, payload)), self.ty(*then))],
            },
            LocalType::Recv {
                from,
                label,
                payload,
                then,
            } => Shape::Recv {
                from: peer(&from)?,
                arms: vec![(self.item(Item::Msg(label, payload)), self.ty(*then))],
            },
            LocalType::Select { to, branches } => Shape::Send {
                to: peer(&to)?,
                arms: branches
                    .into_iter()
                    .map(|(l, c)| (self.item(Item::Label(l)), self.ty(c)))
                    .collect(),
            },
            LocalType::Branch { from, branches } => Shape::Recv {
                from: peer(&from)?,
                arms: branches
                    .into_iter()
                    .map(|(l, c)| (self.item(Item::Label(l)), self.ty(c)))
                    .collect(),
            },
            // `head_normal` unfolds loops; a `continue` at the head is a
            // loop with no step, which projection never gives.
            other => Shape::Stuck(other.to_string()),
        };
        self.shapes[t] = Some(shape.clone());
        Ok(shape)
    }
}

/// One step of a run: the role, what it did (send or receive) and the
/// item, for traces.
type Move = (usize, bool, usize, usize);

/// `l` with every free `continue name` replaced by `with`.
fn substitute(l: &LocalType, name: &str, with: &LocalType) -> LocalType {
    let sub = |b: &LocalType| Box::new(substitute(b, name, with));
    match l {
        LocalType::Send {
            to,
            label,
            payload,
            then,
        } => LocalType::Send {
            to: to.clone(),
            label: label.clone(),
            payload: payload.clone(),
            then: sub(then),
        },
        LocalType::Recv {
            from,
            label,
            payload,
            then,
        } => LocalType::Recv {
            from: from.clone(),
            label: label.clone(),
            payload: payload.clone(),
            then: sub(then),
        },
        LocalType::Select { to, branches } => LocalType::Select {
            to: to.clone(),
            branches: branches
                .iter()
                .map(|(l, b)| (l.clone(), substitute(b, name, with)))
                .collect(),
        },
        LocalType::Branch { from, branches } => LocalType::Branch {
            from: from.clone(),
            branches: branches
                .iter()
                .map(|(l, b)| (l.clone(), substitute(b, name, with)))
                .collect(),
        },
        LocalType::Rec { name: n, .. } if n == name => l.clone(),
        LocalType::Rec { name: n, body } => LocalType::Rec {
            name: n.clone(),
            body: sub(body),
        },
        LocalType::Continue { name: n } if n == name => with.clone(),
        other => other.clone(),
    }
}

/// Unfolds loops at the head of `l` until it starts with a step or ends.
fn head_normal(mut l: LocalType) -> LocalType {
    // Each unfolding exposes the loop's body; a guarded loop reaches a step
    // after as many unfoldings as loops are nested at its head.
    for _ in 0..1000 {
        match &l {
            LocalType::Rec { name, body } => l = substitute(body, name, &l.clone()),
            _ => return l,
        }
    }
    l
}

/// Explores every run of the roles of `protocol`, projected.
pub(crate) fn check_protocol(protocol: &Protocol) -> Result<Explored, Fault> {
    let roles: Vec<(String, LocalType)> = protocol
        .roles()
        .iter()
        .map(|r| {
            let l = protocol
                .project(r)
                .unwrap_or_else(|e| panic!("{r} does not project: {e}"));
            (r.clone(), l)
        })
        .collect();
    check(&roles, 3, 200_000)
}

/// Explores every run of `roles`, with at most `bound` items in a queue
/// and `max_states` states.
pub(crate) fn check(
    roles: &[(String, LocalType)],
    bound: usize,
    max_states: usize,
) -> Result<Explored, Fault> {
    let n = roles.len();
    let index: HashMap<&str, usize> = roles
        .iter()
        .enumerate()
        .map(|(i, (r, _))| (r.as_str(), i))
        .collect();
    let mut tables = Tables::default();
    let start = State {
        roles: roles.iter().map(|(_, l)| tables.ty(l.clone())).collect(),
        queues: vec![VecDeque::new(); n * n],
    };
    // Every state seen, with the state it was reached from and the step.
    let mut seen: HashMap<State, Option<(usize, Move)>> = HashMap::new();
    let mut order: Vec<State> = vec![start.clone()];
    seen.insert(start, None);
    let trace_to = |seen: &HashMap<State, Option<(usize, Move)>>,
                    order: &[State],
                    tables: &Tables,
                    mut at: usize| {
        let mut steps = Vec::new();
        while let Some(Some((prev, (r, send, peer, item)))) = seen.get(&order[at]) {
            let (verb, dir) = match (send, &tables.item_list[*item]) {
                (true, Item::Label(_)) => ("choose", "for"),
                (true, _) => ("send", "to"),
                (false, Item::Label(_)) => ("offer", "from"),
                (false, _) => ("recv", "from"),
            };
            let what = match &tables.item_list[*item] {
                Item::Msg(l, _) | Item::Label(l) => l,
            };
            steps.push(format!(
                "{}: {verb} {what} {dir} {}",
                roles[*r].0, roles[*peer].0
            ));
            at = *prev;
        }
        steps.reverse();
        steps
    };
    let (mut exhaustive, mut can_finish) = (true, false);
    let mut next = 0;
    while next < order.len() {
        let at = next;
        next += 1;
        let state = order[at].clone();
        let mut moves: Vec<(State, Move)> = Vec::new();
        let mut waiting = Vec::new();
        // Whether a send waits only for the bound on queues.
        let mut bounded = false;
        for r in 0..n {
            let name = &roles[r].0;
            let peer = |p: &str| {
                index.get(p).copied().ok_or_else(|| Fault::UnknownPeer {
                    role: name.clone(),
                    peer: p.to_owned(),
                })
            };
            match tables.shape(state.roles[r], &peer)? {
                Shape::End => {
                    for f in 0..n {
                        if let Some(left) = state.queues[f * n + r].front() {
                            return Err(Fault::Orphan {
                                role: name.clone(),
                                from: roles[f].0.clone(),
                                left: tables.item_list[*left].clone(),
                                trace: trace_to(&seen, &order, &tables, at),
                            });
                        }
                    }
                }
                Shape::Send { to, arms } => {
                    if state.queues[r * n + to].len() >= bound {
                        (exhaustive, bounded) = (false, true);
                        continue;
                    }
                    for (item, cont) in arms {
                        let mut s = state.clone();
                        s.queues[r * n + to].push_back(item);
                        s.roles[r] = cont;
                        moves.push((s, (r, true, to, item)));
                    }
                }
                Shape::Recv { from, arms } => {
                    let expected = || {
                        let items: Vec<String> = arms
                            .iter()
                            .map(|(i, _)| tables.item_list[*i].to_string())
                            .collect();
                        items.join(" or ")
                    };
                    match state.queues[from * n + r].front() {
                        None => waiting.push(format!(
                            "{name} waits for {} from {}",
                            expected(),
                            roles[from].0
                        )),
                        Some(got) => match arms.iter().find(|(i, _)| i == got) {
                            Some(&(item, cont)) => {
                                let mut s = state.clone();
                                s.queues[from * n + r].pop_front();
                                s.roles[r] = cont;
                                moves.push((s, (r, false, from, item)));
                            }
                            None => {
                                return Err(Fault::Unexpected {
                                    role: name.clone(),
                                    from: roles[from].0.clone(),
                                    expected: expected(),
                                    got: tables.item_list[*got].clone(),
                                    trace: trace_to(&seen, &order, &tables, at),
                                });
                            }
                        },
                    }
                }
                Shape::Stuck(what) => waiting.push(format!("{name} is stuck at {what}")),
            }
        }
        if moves.is_empty() {
            if bounded {
                continue;
            }
            if state
                .roles
                .iter()
                .all(|t| tables.list[*t] == LocalType::End)
            {
                can_finish = true;
                continue;
            }
            return Err(Fault::Deadlock {
                waiting,
                trace: trace_to(&seen, &order, &tables, at),
            });
        }
        for (s, step) in moves {
            if seen.contains_key(&s) {
                continue;
            }
            if order.len() >= max_states {
                exhaustive = false;
                break;
            }
            seen.insert(s.clone(), Some((at, step)));
            order.push(s);
        }
    }
    Ok(Explored {
        states: order.len(),
        exhaustive,
        can_finish,
    })
}
