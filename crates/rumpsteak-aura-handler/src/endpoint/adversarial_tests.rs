//! Adversarial tests of the monitor's step memo and of the rendered
//! metadata: an endpoint whose monitor tells its position (so the memo
//! answers) is driven side by side with one whose monitor does not (so
//! every step is checked by name), and rendered metadata is compared with
//! a rendering made afresh.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use rumpsteak_aura_transport::SimpleChannel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Id(u32);

impl Role for Id {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// A small deterministic generator (splitmix64), so that a failure comes
/// back with the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// A monitor whose answers are a fixed pseudo-random function of its
/// state and of the step's text: a quarter of the steps are refused in
/// each state, the others lead to a pseudo-random state.
#[derive(Debug)]
struct Table {
    seed: u64,
    states: usize,
    at: usize,
    tells_position: bool,
    checks: Arc<AtomicUsize>,
}

impl ProtocolMonitor for Table {
    fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let text = step.to_string();
        let mut h = DefaultHasher::new();
        (self.seed, self.at, &text).hash(&mut h);
        let h = h.finish();
        if h.is_multiple_of(4) {
            return Err(Violation::OutOfProtocol {
                expected: format!("not this in state {}", self.at),
                attempted: text,
            });
        }
        Ok(Transition::new((h >> 8) as usize % self.states))
    }
    fn advance(&mut self, to: Transition) {
        self.at = to.state();
    }
    fn position(&self) -> Option<usize> {
        self.tells_position.then_some(self.at)
    }
    fn is_complete(&self) -> bool {
        false
    }
    fn involves(&self, _: &str) -> bool {
        true
    }
    fn describe(&self, out: &mut String) {
        out.push_str(&self.at.to_string());
    }
}

/// What a step came to: the state it leads to, or the error's text.
type Outcome = Result<Option<usize>, String>;

fn outcome(r: Result<Option<Transition>, ChoreographyError>) -> Outcome {
    r.map(|t| t.map(|t| t.state())).map_err(|e| e.to_string())
}

/// One step as the handler takes it: `begin` (for an offer, before its
/// label), then for an offer the check of its label, then, if `done`,
/// `finish`. Returns the outcome of every check.
fn take(ep: &mut RumpsteakEndpoint<Id>, peer: Id, act: Act<'_>, done: bool) -> Vec<Outcome> {
    let (op, first, last) = match act {
        Act::Send(ty) => (Operation::Send, act, LastOp::Sent(ty)),
        Act::Recv(ty) => (Operation::Recv, act, LastOp::Received(ty)),
        Act::Choose(label) => (Operation::Choose, act, LastOp::Chose(label)),
        Act::Offered(label) => (Operation::Offer, Act::Offer(None), LastOp::Offered(label)),
        // A label that is not `'static` is never learned here: its step
        // is checked, not finished.
        Act::Offer(_) => (Operation::Offer, Act::Offer(None), LastOp::Offered("")),
    };
    let mut seen = Vec::new();
    let (i, mut to) = match ep.begin(&peer, op, first) {
        Ok(begun) => begun,
        Err(e) => {
            seen.push(Err(e.to_string()));
            return seen;
        }
    };
    seen.push(Ok(to.map(|t| t.state())));
    if op == Operation::Offer {
        let checked = outcome(ep.check(i, op, act));
        seen.push(checked.clone());
        match checked {
            Ok(t) => to = t.map(Transition::new),
            Err(_) => return seen,
        }
    }
    if done && !matches!(act, Act::Offer(_)) {
        ep.finish(i, last, 3, to);
    }
    seen
}

#[test]
fn the_memo_answers_as_the_monitor_does_on_random_steps() {
    // Type names and labels that share text at other addresses, or an
    // address with another length: only the same address and length may
    // share an entry.
    let long = leak("m::Ping::tail");
    let types: Vec<&'static str> = vec![
        "m::Ping",
        "n::Ping",
        leak("m::Ping"),
        &long[..7],
        long,
        &long[3..7],
        "u8",
        leak("u8"),
        "m::Pong",
    ];
    let wide = leak("acceptance");
    let labels: Vec<&'static str> = vec!["accept", leak("accept"), &wide[..6], wide, "reject"];
    let dynamic = String::from("accept");
    let peers = [Id(1), Id(2), Id(3), Id(4)];

    let checks = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let monitor = |seed, tells_position: bool| Table {
        seed,
        states: 24,
        at: 0,
        tells_position,
        checks: checks[usize::from(tells_position)].clone(),
    };
    let mut far = Vec::new();
    let mut eps = [false, true].map(|tells| {
        let mut ep = RumpsteakEndpoint::new(Id(0)).with_protocol(monitor(1, tells));
        // Id(4) is never registered.
        for &p in &peers[..3] {
            let (near, other) = SimpleChannel::pair();
            ep.register_channel(p, near);
            far.push(other);
        }
        ep
    });

    let mut rng = Rng(0x5EED);
    for n in 0..20_000 {
        let among = if rng.below(50) == 0 { 4 } else { 3 };
        let peer = peers[rng.below(among)];
        // Mostly a few steps, so that they come again in the same state.
        let pick = |rng: &mut Rng, of: usize| {
            if rng.below(4) == 0 {
                rng.below(of)
            } else {
                rng.below(2)
            }
        };
        let act = match rng.below(6) {
            0 => Act::Send(types[pick(&mut rng, types.len())]),
            1 => Act::Recv(types[pick(&mut rng, types.len())]),
            2 => Act::Choose(labels[pick(&mut rng, labels.len())]),
            3 | 4 => Act::Offered(labels[pick(&mut rng, labels.len())]),
            _ => Act::Offer(Some(&dynamic)),
        };
        // Some steps are checked and then never happen (a future dropped).
        let done = rng.below(8) != 0;
        let [plain, memo] = &mut eps;
        let expected = take(plain, peer, act, done);
        let got = take(memo, peer, act, done);
        assert_eq!(got, expected, "step {n}: {act:?} with {peer:?}");

        match rng.below(400) {
            // A new monitor; the memo side's may not tell its position.
            0 => {
                let seed = rng.next();
                let tells = rng.below(3) != 0;
                eps[0].set_protocol(monitor(seed, false));
                eps[1].set_protocol(monitor(seed, tells));
            }
            // A session replaced.
            1 => {
                for ep in &mut eps {
                    let (near, other) = SimpleChannel::pair();
                    ep.register_channel(peer, near);
                    far.push(other);
                }
            }
            _ => {}
        }
    }
    let by_name = checks[0].load(Ordering::Relaxed);
    let with_memo = checks[1].load(Ordering::Relaxed);
    // The memo answered for some steps, or the comparison proved nothing.
    assert!(with_memo < by_name * 3 / 4, "{with_memo} of {by_name}");
}

/// A key for the memo tests: `n` picks the text, the peer, the kind and
/// the position.
fn key(texts: &[&'static str], n: usize) -> StepKey {
    let text = texts[n % texts.len()];
    StepKey {
        text: (text.as_ptr() as usize, text.len()),
        peer_kind: ((n / 3) % 5) * 8 + n % 5,
        position: (n / 7) % 11,
    }
}

#[test]
fn the_memo_holds_only_what_was_put_last_under_each_key() {
    let texts: Vec<&'static str> = (0..13).map(|n| leak(&format!("t{n}"))).collect();
    let mut memo = StepMemo::default();
    let mut model = HashMap::new();
    let mut rng = Rng(7);
    let mut hits = 0;
    for _ in 0..50_000 {
        // Several numbers give the same key; a key is put only after it
        // was missed, so what the memo answers must be its last value.
        let k = key(&texts, rng.below(400));
        let id = (k.text, k.peer_kind, k.position);
        // The inlined lookup finds a part of what the full one does.
        if let Some(to) = memo.near(&k) {
            assert_eq!(memo.get(&k), Some(to));
        }
        match memo.get(&k) {
            Some(to) => {
                hits += 1;
                assert_eq!(Some(&to.state()), model.get(&id), "{id:?}");
            }
            None => {
                let v = rng.below(1_000_000) + 1;
                memo.put(k, Transition::new(v));
                model.insert(id, v);
                assert_eq!(memo.get(&k), Some(Transition::new(v)));
            }
        }
        // A key never put is never found.
        let never = StepKey {
            position: 11 + rng.below(5),
            ..k
        };
        assert_eq!(memo.get(&never), None);
    }
    assert!(hits > 1_000, "{hits}");
}

/// A role equal to another of the same number whatever its name, as a
/// role carrying an address may be; the monitor knows roles by their
/// `Debug` name.
#[derive(Clone, Copy)]
struct Named(u32, &'static str);

impl PartialEq for Named {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Named {}
impl Hash for Named {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}
impl Debug for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
}
impl Role for Named {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// Allows `send u8 to alice` and nothing else, forever.
#[derive(Debug)]
struct OnlyAlice;

impl ProtocolMonitor for OnlyAlice {
    fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
        match step {
            Step::Send {
                to: "alice",
                message: "u8",
            } => Ok(Transition::new(0)),
            other => Err(Violation::OutOfProtocol {
                expected: "send u8 to alice".into(),
                attempted: other.to_string(),
            }),
        }
    }
    fn advance(&mut self, _: Transition) {}
    fn position(&self) -> Option<usize> {
        Some(0)
    }
    fn is_complete(&self) -> bool {
        false
    }
    fn involves(&self, peer: &str) -> bool {
        peer == "alice"
    }
    fn describe(&self, _: &mut String) {}
}

#[test]
fn a_session_replaced_under_another_name_is_checked_again() {
    let (near, _far) = SimpleChannel::pair();
    let mut ep = RumpsteakEndpoint::new(Named(0, "me")).with_protocol(OnlyAlice);
    ep.register_channel(Named(1, "alice"), near);
    let send = Act::Send("u8");
    let (i, to) = ep.begin(&Named(1, "alice"), Operation::Send, send).unwrap();
    ep.finish(i, LastOp::Sent("u8"), 3, to);
    // The same place now holds a peer the monitor knows nothing of.
    let (near, _far2) = SimpleChannel::pair();
    ep.register_channel(Named(1, "mallory"), near);
    let refused = ep.begin(&Named(1, "mallory"), Operation::Send, send);
    assert!(
        matches!(&refused, Err(ChoreographyError::ProtocolViolation { peer, .. }) if peer == "mallory"),
        "{refused:?}"
    );
}

/// Allows every step but `send m::Bad`, moving round five states; the
/// role is complete in the last. Describes its state.
#[derive(Debug)]
struct Cycle {
    at: usize,
}

impl ProtocolMonitor for Cycle {
    fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
        match step {
            Step::Send { message: "Bad", .. } => Err(Violation::OutOfProtocol {
                expected: "anything else".into(),
                attempted: step.to_string(),
            }),
            _ => Ok(Transition::new((self.at + 1) % 5)),
        }
    }
    fn advance(&mut self, to: Transition) {
        self.at = to.state();
    }
    fn position(&self) -> Option<usize> {
        Some(self.at)
    }
    fn is_complete(&self) -> bool {
        self.at == 4
    }
    fn involves(&self, _: &str) -> bool {
        true
    }
    fn describe(&self, out: &mut String) {
        out.push_str("at ");
        out.push_str(&self.at.to_string());
    }
}

/// What the metadata of a peer should say, kept apart from the endpoint.
#[derive(Clone, Copy)]
struct Model {
    last: LastOp,
    count: usize,
}

/// Reads the metadata of `peer` as any caller would (perhaps a rendering
/// kept from before), then renders it afresh and compares.
fn compare(ep: &mut RumpsteakEndpoint<Id>, peer: Id, model: Model, at: &str) {
    let kept = ep.get_metadata(&peer).cloned();
    let i = ep.position(&peer).unwrap();
    ep.peers[i].meta.invalidate();
    let fresh = ep.get_metadata(&peer).cloned();
    assert_eq!(kept, fresh, "{at}: kept against fresh, {peer:?}");
    let kept = kept.unwrap();
    assert_eq!(kept.operation_count, model.count, "{at}: {peer:?}");
    let mut text = String::new();
    model.last.write(&format!("{peer:?}"), &mut text);
    assert!(
        kept.state_description.starts_with(&text),
        "{at}: {:?} against {text:?}",
        kept.state_description
    );
    assert_eq!(kept.is_abandoned, model.last == LastOp::Abandoned, "{at}");
}

fn metadata_stays_fresh(monitored: bool, seed: u64) {
    let peers = [Id(1), Id(2), Id(3)];
    let mut ep = RumpsteakEndpoint::new(Id(0));
    if monitored {
        ep.set_protocol(Cycle { at: 0 });
    }
    let mut far = Vec::new();
    let mut models = HashMap::new();
    for p in peers {
        let (near, other) = SimpleChannel::pair();
        ep.register_channel(p, near);
        far.push(other);
        models.insert(
            p,
            Model {
                last: LastOp::Registered,
                count: 0,
            },
        );
    }
    let mut rng = Rng(seed);
    for n in 0..3_000 {
        let peer = peers[rng.below(3)];
        let at = format!("step {n}");
        let model = models.get_mut(&peer).unwrap();
        let open = ep.has_channel(&peer);
        match rng.below(12) {
            k @ 0..=4 => {
                let act = match k {
                    0 => Act::Send("m::Ping"),
                    1 => Act::Recv("m::Pong"),
                    2 => Act::Choose("accept"),
                    3 => Act::Offered("reject"),
                    _ => Act::Send("m::Bad"),
                };
                let allowed = open && !(monitored && k == 4);
                let checked = take(&mut ep, peer, act, true);
                assert_eq!(checked.iter().all(Result::is_ok), allowed, "{at}");
                if allowed {
                    model.count += 1;
                    model.last = match act {
                        Act::Send(t) => LastOp::Sent(t),
                        Act::Recv(t) => LastOp::Received(t),
                        Act::Choose(l) => LastOp::Chose(l),
                        Act::Offered(l) => LastOp::Offered(l),
                        Act::Offer(_) => unreachable!("not drawn"),
                    };
                }
            }
            5 | 6 => compare(&mut ep, peer, *model, &at),
            7 => {
                assert_eq!(ep.close_channel(&peer), open);
                if open {
                    model.last = LastOp::Closed;
                }
            }
            8 => {
                assert_eq!(ep.abandon(&[peer]), usize::from(open));
                if open {
                    model.last = LastOp::Abandoned;
                }
            }
            9 if open => {
                let i = ep.position(&peer).unwrap();
                ep.peer_closed(i);
                model.last = LastOp::ClosedByPeer;
            }
            10 => {
                let (near, other) = SimpleChannel::pair();
                ep.register_channel(peer, near);
                far.push(other);
                *model = Model {
                    last: LastOp::Registered,
                    count: 0,
                };
            }
            11 if monitored && rng.below(10) == 0 => {
                ep.set_protocol(Cycle { at: rng.below(5) });
            }
            _ => {}
        }
    }
    for p in peers {
        compare(&mut ep, p, models[&p], "the end");
    }
}

#[test]
fn metadata_read_after_any_change_is_fresh() {
    for seed in 1..=4 {
        metadata_stays_fresh(false, seed);
        metadata_stays_fresh(true, seed);
    }
}

/// Allows a choice of any label, in its one state; counts its checks.
#[derive(Debug)]
struct AnyChoice(Arc<AtomicUsize>);

impl ProtocolMonitor for AnyChoice {
    fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
        self.0.fetch_add(1, Ordering::Relaxed);
        match step {
            Step::Choose { .. } => Ok(Transition::new(0)),
            other => Err(Violation::OutOfProtocol {
                expected: "a choice".into(),
                attempted: other.to_string(),
            }),
        }
    }
    fn advance(&mut self, _: Transition) {}
    fn position(&self) -> Option<usize> {
        Some(0)
    }
    fn is_complete(&self) -> bool {
        false
    }
    fn involves(&self, _: &str) -> bool {
        true
    }
    fn describe(&self, _: &mut String) {}
}

#[test]
fn steps_that_hash_to_one_slot_are_all_remembered() {
    // Twelve labels, three of whose keys (a choice at position 0, the
    // peer at place 0) hash to the same slot: a loop over them fits the
    // memo's sixteen entries, so each is checked by name once.
    let slot = |l: &'static str| Act::Choose(l).key(0, 0).map(|k| k.slot());
    let mut labels = vec![leak("l0")];
    let home = slot(labels[0]);
    for n in 1.. {
        let l = leak(&format!("l{n}"));
        if slot(l) == home {
            labels.push(l);
            if labels.len() == 3 {
                break;
            }
        }
    }
    labels.extend((0..9).map(|n| leak(&format!("x{n}"))));
    let checks = Arc::new(AtomicUsize::new(0));
    let (near, _far) = SimpleChannel::pair();
    let mut ep = RumpsteakEndpoint::new(Id(0)).with_protocol(AnyChoice(checks.clone()));
    ep.register_channel(Id(1), near);
    for _ in 0..10 {
        for &l in &labels {
            let (i, to) = ep.begin(&Id(1), Operation::Choose, Act::Choose(l)).unwrap();
            ep.finish(i, LastOp::Chose(l), 3, to);
        }
    }
    assert_eq!(checks.load(Ordering::Relaxed), labels.len());
}
