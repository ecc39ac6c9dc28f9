//! Shared helpers: a generator of well-formed global types driven by a
//! tape of numbers (so proptest shrinks it toward short, simple protocols)
//! and a deterministic simulator that runs every role's monitor together.
#![allow(dead_code)]

pub(crate) mod checker;
pub(crate) mod protocols;

use std::collections::VecDeque;

use rumpsteak_aura::{ProtocolMonitor, Step, Violation};
use rumpsteak_aura_protocol::{GlobalType, Monitor, NextStep, Protocol};

/// Labels of the branches that leave a generated loop start with this.
pub(crate) const QUIT: &str = "quit";

/// Whether a simulated chooser that wants the run to end picks `label`.
fn is_exit(label: &str) -> bool {
    label.starts_with(QUIT) || label.starts_with("stop")
}

/// Reads choices from a tape; past its end every choice is 0, the simplest.
struct Tape<'a> {
    data: &'a [u32],
    at: usize,
}

impl Tape<'_> {
    fn pick(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let v = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        v as usize % n
    }
}

/// A loop open at the current point, with the roles active when it opened.
struct Loop {
    name: String,
    active: Vec<usize>,
}

/// Builds well-formed global types by construction:
///
/// - a choice at `A` tells a non-empty subset `S` of the active roles, by
///   starting its first branch with `A -> s` for each `s` in `S` (later
///   branches may leave some of these out); inside, only
///   `S` and `A` are active, so every other active role sees `end` in every
///   branch and merges trivially;
/// - optionally a told role `T` relays the choice to one untold role `R`
///   with a nested single-branch `choice at T` whose label is unique, so
///   `R`'s branches merge by label union;
/// - a loop is `rec L { choice at C { more..: {...} quit..: {...} } }` that
///   tells every active role; `continue L` appears only where all of the
///   loop's roles are active, and never inside a `quit` branch, so choosing
///   `quit` everywhere ends every run.
struct Builder<'a> {
    tape: Tape<'a>,
    roles: Vec<String>,
    fresh: usize,
    /// Whether messages may carry the tuple payload [`TUPLE`].
    tuples: bool,
}

const NAMES: [&str; 5] = ["Alice", "Bob", "Carol", "Dave", "Eve"];
const LABELS: [&str; 3] = ["Ping", "Data", "Ack"];
const PAYLOADS: [Option<&str>; 3] = [None, Some("u32"), Some("Text")];
/// The payloads of messages with labels of their own (relays by message,
/// a bystander's last message), which need one: a harness that maps
/// payload-less messages by label knows only the labels above.
const NAMED_PAYLOADS: [&str; 2] = ["u32", "Text"];
/// A tuple payload, generated only by [`well_formed_rich`].
const TUPLE: &str = "(u32, Text)";

impl Builder<'_> {
    fn fresh(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn message(&mut self, from: usize, to: usize, then: GlobalType) -> GlobalType {
        let label = LABELS[self.tape.pick(LABELS.len())];
        let payload = if self.tuples && self.tape.pick(4) == 0 {
            Some(TUPLE)
        } else {
            PAYLOADS[self.tape.pick(PAYLOADS.len())]
        };
        GlobalType::message(&self.roles[from], &self.roles[to], label, payload, then)
    }

    fn global(&mut self, active: &[usize], loops: &[Loop], depth: u32) -> GlobalType {
        let kind = if depth == 0 || active.len() < 2 {
            0
        } else {
            self.tape.pick(6)
        };
        self.node(kind, active, loops, depth)
    }

    /// Builds a node of the given kind: 0 a leaf, 1 and 2 a message, 3 and
    /// 4 a choice, 5 a loop.
    fn node(&mut self, kind: usize, active: &[usize], loops: &[Loop], depth: u32) -> GlobalType {
        match kind {
            1 | 2 => {
                let from = active[self.tape.pick(active.len())];
                let others: Vec<usize> = active.iter().copied().filter(|r| *r != from).collect();
                let to = others[self.tape.pick(others.len())];
                let then = self.global(active, loops, depth - 1);
                self.message(from, to, then)
            }
            3 | 4 => self.choice(active, loops, depth),
            5 => self.rec(active, loops, depth),
            _ => {
                let open: Vec<&Loop> = loops
                    .iter()
                    .filter(|l| l.active.iter().all(|r| active.contains(r)))
                    .collect();
                match self.tape.pick(open.len() + 1) {
                    0 => GlobalType::End,
                    k => GlobalType::continue_loop(&open[k - 1].name),
                }
            }
        }
    }

    /// `at -> t` for every told role, then `rest`. In every branch but the
    /// first some of these messages may be left out: a told role learns the
    /// branch from the label, so it need not hear from `at` in every branch.
    fn tell(&mut self, at: usize, told: &[usize], first: bool, rest: GlobalType) -> GlobalType {
        told.iter().rev().fold(rest, |then, t| {
            if !first && self.tape.pick(3) == 0 {
                then
            } else {
                self.message(at, *t, then)
            }
        })
    }

    fn choice(&mut self, active: &[usize], loops: &[Loop], depth: u32) -> GlobalType {
        let at = active[self.tape.pick(active.len())];
        let others: Vec<usize> = active.iter().copied().filter(|r| *r != at).collect();
        let mut told: Vec<usize> = others
            .iter()
            .copied()
            .filter(|_| self.tape.pick(2) == 1)
            .collect();
        if told.is_empty() {
            told.push(others[self.tape.pick(others.len())]);
        }
        let outside: Vec<usize> = others
            .iter()
            .copied()
            .filter(|r| !told.contains(r))
            .collect();
        // 1: relayed by a choice of the told role; 2: by a message whose
        // label differs in every branch, which the untold role branches on.
        let mode = self.tape.pick(3);
        let relay = if !outside.is_empty() && mode != 0 {
            Some((
                told[self.tape.pick(told.len())],
                outside[self.tape.pick(outside.len())],
            ))
        } else {
            None
        };
        let mut inner: Vec<usize> = told.clone();
        inner.push(at);
        let n = 1 + self.tape.pick(3);
        let mut branches = Vec::with_capacity(n);
        for i in 0..n {
            let label = self.fresh("c");
            let body = match relay {
                Some((t, r)) => {
                    let mut wider = inner.clone();
                    wider.push(r);
                    let rest = self.global(&wider, loops, depth - 1);
                    if mode == 2 {
                        let label = self.fresh("m");
                        let payload = NAMED_PAYLOADS[self.tape.pick(NAMED_PAYLOADS.len())];
                        GlobalType::message(
                            &self.roles[t],
                            &self.roles[r],
                            label,
                            Some(payload),
                            rest,
                        )
                    } else {
                        let told_r = self.message(t, r, rest);
                        let relay_label = self.fresh("r");
                        GlobalType::choice(&self.roles[t], [(relay_label, told_r)])
                    }
                }
                None => self.global(&inner, loops, depth - 1),
            };
            branches.push((label, self.tell(at, &told, i == 0, body)));
        }
        GlobalType::choice(&self.roles[at], branches)
    }

    fn rec(&mut self, active: &[usize], loops: &[Loop], depth: u32) -> GlobalType {
        let at = active[self.tape.pick(active.len())];
        let mut told: Vec<usize> = active.iter().copied().filter(|r| *r != at).collect();
        // Sometimes a bystander takes no part in the rounds and hears from a
        // told role only once the loop is left.
        let bystander = if told.len() >= 2 && self.tape.pick(3) == 0 {
            let by = told.remove(self.tape.pick(told.len()));
            Some((told[self.tape.pick(told.len())], by))
        } else {
            None
        };
        let all = active;
        let inner: Vec<usize> = active
            .iter()
            .copied()
            .filter(|r| bystander.is_none_or(|(_, by)| *r != by))
            .collect();
        let active = &inner[..];
        let name = self.fresh("L");
        let mut inside: Vec<Loop> = loops
            .iter()
            .map(|l| Loop {
                name: l.name.clone(),
                active: l.active.clone(),
            })
            .collect();
        inside.push(Loop {
            name: name.clone(),
            active: active.to_vec(),
        });
        let mut branches = Vec::new();
        for i in 0..1 + self.tape.pick(2) {
            let label = self.fresh("more");
            let body = if bystander.is_some() {
                // Every round goes round again, or the bystander would wait
                // for ever: one message, then `continue`.
                let from = active[self.tape.pick(active.len())];
                let others: Vec<usize> = active.iter().copied().filter(|r| *r != from).collect();
                let to = others[self.tape.pick(others.len())];
                self.message(from, to, GlobalType::continue_loop(&name))
            } else {
                self.global(active, &inside, depth - 1)
            };
            branches.push((label, self.tell(at, &told, i == 0, body)));
        }
        let label = self.fresh(QUIT);
        let body = self.global(all, &[], depth - 1);
        let body = match bystander {
            Some((t, by)) => {
                let label = self.fresh("Over");
                GlobalType::message(&self.roles[t], &self.roles[by], label, Some("u32"), body)
            }
            None => body,
        };
        branches.push((label, self.tell(at, &told, false, body)));
        GlobalType::rec(name, GlobalType::choice(&self.roles[at], branches))
    }
}

/// A well-formed global type built from `tape`, with two to five roles,
/// whose payloads are `u32` and `Text` only.
pub(crate) fn well_formed(tape: &[u32]) -> GlobalType {
    build(tape, false)
}

/// [`well_formed`], with tuple payloads too.
pub(crate) fn well_formed_rich(tape: &[u32]) -> GlobalType {
    build(tape, true)
}

fn build(tape: &[u32], tuples: bool) -> GlobalType {
    let mut b = Builder {
        tape: Tape { data: tape, at: 0 },
        roles: Vec::new(),
        fresh: 0,
        tuples,
    };
    let n = 2 + b.tape.pick(4);
    b.roles = NAMES[..n].iter().map(|s| s.to_string()).collect();
    let depth = 2 + b.tape.pick(5) as u32;
    let active: Vec<usize> = (0..n).collect();
    // The root is never a bare leaf: an empty tape gives one message.
    let kind = 1 + b.tape.pick(5);
    b.node(kind, &active, &[], depth)
}

/// What travels on a queue from one role to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A message, by the name a `Step` gives it.
    Msg(String),
    /// A choice label.
    Label(String),
}

/// A small deterministic random source (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// How a simulated run went.
#[derive(Debug)]
pub(crate) struct Run {
    /// Steps taken by all roles together.
    pub(crate) steps: usize,
    /// Every step, as `Role: step`.
    pub(crate) trace: Vec<String>,
}

/// Runs every role of `protocol` together, each with its own monitor, over
/// FIFO queues (one per ordered pair of roles), choosing which role moves
/// and which label a chooser picks with `seed`. After `quit_after` steps a
/// chooser picks a label starting with `quit` or `stop` when it has one.
///
/// Every step is checked, then advanced. The run fails on a violation, on a
/// label where a message is due or the reverse, on a deadlock (no role can
/// move while some role is incomplete), on messages left in a queue at the
/// end, and after `max_steps` steps.
pub(crate) fn simulate(
    protocol: &Protocol,
    seed: u64,
    quit_after: usize,
    max_steps: usize,
) -> Result<Run, String> {
    let roles = protocol.roles();
    let n = roles.len();
    let index = |name: &str| roles.iter().position(|r| r == name);
    let mut monitors: Vec<Monitor> = roles
        .iter()
        .map(|r| protocol.monitor_for(r))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no monitor: {e}"))?;
    let mut queues: Vec<VecDeque<Item>> = vec![VecDeque::new(); n * n];
    let mut rng = Rng::new(seed);
    let mut trace = Vec::new();
    let mut steps = 0;
    loop {
        if monitors.iter().all(|m| m.is_complete()) {
            if let Some(q) = queues.iter().position(|q| !q.is_empty()) {
                return Err(format!(
                    "left in queue {} -> {}: {:?}",
                    roles[q / n],
                    roles[q % n],
                    queues[q]
                ));
            }
            return Ok(Run { steps, trace });
        }
        if steps >= max_steps {
            return Err(format!("no end after {max_steps} steps"));
        }
        let ready: Vec<usize> = (0..n)
            .filter(|&r| match monitors[r].next_step() {
                NextStep::Send { .. } | NextStep::Choose { .. } => true,
                NextStep::Recv { from, .. } | NextStep::Offer { from, .. } => {
                    index(from).is_some_and(|f| !queues[f * n + r].is_empty())
                }
                _ => false,
            })
            .collect();
        if ready.is_empty() {
            let mut state = String::new();
            for m in &monitors {
                state.push_str(&format!("\n  {}: ", m.role()));
                m.describe(&mut state);
            }
            return Err(format!("deadlock after {steps} steps:{state}"));
        }
        let r = ready[rng.below(ready.len())];
        let m = &mut monitors[r];
        match m.next_step() {
            NextStep::Send { to, message, .. } => {
                let (to, message) = (to.to_owned(), message.to_owned());
                let t = index(&to).ok_or_else(|| format!("unknown peer {to}"))?;
                checked(
                    m,
                    Step::Send {
                        to: &to,
                        message: &message,
                    },
                    &mut trace,
                )?;
                queues[r * n + t].push_back(Item::Msg(message));
            }
            NextStep::Choose { to, labels } => {
                let labels: Vec<String> = labels.map(str::to_owned).collect();
                let to = to.to_owned();
                let quitting = steps >= quit_after;
                let label = match labels.iter().find(|l| quitting && is_exit(l)) {
                    Some(l) => l.clone(),
                    None => labels[rng.below(labels.len())].clone(),
                };
                let t = index(&to).ok_or_else(|| format!("unknown peer {to}"))?;
                checked(
                    m,
                    Step::Choose {
                        to: &to,
                        label: &label,
                    },
                    &mut trace,
                )?;
                queues[r * n + t].push_back(Item::Label(label));
            }
            NextStep::Recv { from, .. } => {
                let from = from.to_owned();
                let f = index(&from).ok_or_else(|| format!("unknown peer {from}"))?;
                match queues[f * n + r].pop_front() {
                    Some(Item::Msg(message)) => checked(
                        m,
                        Step::Recv {
                            from: &from,
                            message: &message,
                        },
                        &mut trace,
                    )?,
                    other => {
                        return Err(format!(
                            "{}: got {other:?} from {from}, expected a message",
                            roles[r]
                        ));
                    }
                }
            }
            NextStep::Offer { from, .. } => {
                let from = from.to_owned();
                let f = index(&from).ok_or_else(|| format!("unknown peer {from}"))?;
                m.check(&Step::Offer {
                    from: &from,
                    label: None,
                })
                .map_err(|v| format!("{}: {v}", roles[r]))?;
                match queues[f * n + r].pop_front() {
                    Some(Item::Label(label)) => checked(
                        m,
                        Step::Offer {
                            from: &from,
                            label: Some(&label),
                        },
                        &mut trace,
                    )?,
                    other => {
                        return Err(format!(
                            "{}: got {other:?} from {from}, expected a label",
                            roles[r]
                        ));
                    }
                }
            }
            _ => return Err(format!("{} stepped past its end", roles[r])),
        }
        steps += 1;
    }
}

/// Checks `step` with `m`, then advances `m` and records the step.
fn checked(m: &mut Monitor, step: Step<'_>, trace: &mut Vec<String>) -> Result<(), String> {
    let verdict: Result<(), Violation> = m.step(&step);
    verdict.map_err(|v| format!("{}: {v}", m.role()))?;
    trace.push(format!("{}: {step}", m.role()));
    Ok(())
}
