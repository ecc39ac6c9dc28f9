//! Model-based tests of the endpoint: random sequences of register, close,
//! send, receive, choose, offer, cancel (an operation polled once and
//! dropped while pending) and the drop of either side's endpoint, run
//! against real endpoints and a small reference model.
//!
//! A hub endpoint `Hub` talks to two spokes: `Near` over an unbounded
//! `SimpleChannel`, `Far` over a `BoundedChannel` of capacity 2, so that a
//! send can be pending and be cancelled too. After every step the model
//! and the endpoints agree on each operation's outcome (the value
//! received, pending, or which error), on the order of frames per peer,
//! and on `has_channel`, `active_channel_count`, `get_metadata` (present,
//! operation count, complete) and `traffic`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Role, Violation};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, register_labels};
use rumpsteak_aura_transport::{BoundedChannel, RumpsteakSession, SimpleChannel};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Node {
    Hub,
    Near,
    Far,
}

impl Role for Node {
    type Message = u64;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

const LABELS: [Label; 3] = [Label("left"), Label("right"), Label("stop")];

/// The capacity of the `Far` link, each way.
const FAR_CAPACITY: usize = 2;

/// The spoke of each link, in link order.
const SPOKES: [Node; 2] = [Node::Near, Node::Far];

/// Which end of a link acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Hub,
    Spoke,
}

#[derive(Clone, Debug)]
enum Op {
    /// A fresh channel for the link, registered at both ends (replacing
    /// what was there).
    Register(usize),
    Close(End, usize),
    /// Drops the endpoint at this end of the link (the hub: both links) and
    /// puts a fresh one in its place.
    DropEndpoint(End, usize),
    Send(End, usize, u64),
    Recv(End, usize),
    Choose(End, usize, usize),
    Offer(End, usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Msg(u64),
    Label(usize),
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Got(Item),
    /// Still pending at its first poll; the future was dropped.
    Cancelled,
    NoChannel,
    Closed,
    LabelWhereMessage,
    MessageWhereLabel,
    /// `close_channel`'s answer.
    WasOpen(bool),
}

/// One direction of a link.
#[derive(Clone, Debug, Default)]
struct Dir {
    queue: VecDeque<Item>,
    sender_closed: bool,
    receiver_gone: bool,
}

/// What one end's endpoint knows of the link.
#[derive(Clone, Debug, Default)]
struct EndState {
    registered: bool,
    open: bool,
    saw_close: bool,
    ops: usize,
    sent: u64,
    received: u64,
}

impl EndState {
    fn fresh() -> Self {
        EndState {
            registered: true,
            open: true,
            ..EndState::default()
        }
    }
}

#[derive(Clone, Debug, Default)]
struct LinkState {
    to_spoke: Dir,
    to_hub: Dir,
    hub: EndState,
    spoke: EndState,
}

#[derive(Clone, Debug)]
struct Model {
    links: [LinkState; 2],
    last: Option<Outcome>,
}

impl Model {
    /// The acting end, the direction it sends on and the one it receives on.
    fn sides(&mut self, end: End, link: usize) -> (&mut EndState, &mut Dir, &mut Dir) {
        let l = &mut self.links[link];
        match end {
            End::Hub => (&mut l.hub, &mut l.to_spoke, &mut l.to_hub),
            End::Spoke => (&mut l.spoke, &mut l.to_hub, &mut l.to_spoke),
        }
    }

    fn close(&mut self, end: End, link: usize) -> bool {
        let (me, out, inc) = self.sides(end, link);
        let was_open = me.open;
        if was_open {
            me.open = false;
            out.sender_closed = true;
            inc.receiver_gone = true;
            inc.queue.clear();
        }
        was_open
    }

    fn send(&mut self, end: End, link: usize, item: Item) -> Outcome {
        let (me, out, _) = self.sides(end, link);
        if !me.open {
            return Outcome::NoChannel;
        }
        if out.receiver_gone {
            me.saw_close = true;
            return Outcome::Closed;
        }
        if link == 1 && out.queue.len() >= FAR_CAPACITY {
            return Outcome::Cancelled;
        }
        out.queue.push_back(item);
        me.ops += 1;
        me.sent += 1;
        Outcome::Done
    }

    fn receive(&mut self, end: End, link: usize, label: bool) -> Outcome {
        let (me, _, inc) = self.sides(end, link);
        if !me.open {
            return Outcome::NoChannel;
        }
        match inc.queue.pop_front() {
            Some(item @ Item::Msg(_)) if !label => {
                me.ops += 1;
                me.received += 1;
                Outcome::Got(item)
            }
            Some(item @ Item::Label(_)) if label => {
                me.ops += 1;
                me.received += 1;
                Outcome::Got(item)
            }
            Some(Item::Label(_)) => Outcome::LabelWhereMessage,
            Some(Item::Msg(_)) => Outcome::MessageWhereLabel,
            None if inc.sender_closed => {
                me.saw_close = true;
                Outcome::Closed
            }
            None => Outcome::Cancelled,
        }
    }
}

struct Reference;

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Hub), Just(End::Spoke)]
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            links: Default::default(),
            last: None,
        })
        .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Op> {
        let link = 0usize..2;
        prop_oneof![
            2 => link.clone().prop_map(Op::Register),
            1 => (end(), link.clone()).prop_map(|(e, l)| Op::Close(e, l)),
            1 => (end(), link.clone()).prop_map(|(e, l)| Op::DropEndpoint(e, l)),
            5 => (end(), link.clone(), 0u64..1000).prop_map(|(e, l, n)| Op::Send(e, l, n)),
            5 => (end(), link.clone()).prop_map(|(e, l)| Op::Recv(e, l)),
            3 => (end(), link.clone(), 0..LABELS.len()).prop_map(|(e, l, i)| Op::Choose(e, l, i)),
            3 => (end(), link).prop_map(|(e, l)| Op::Offer(e, l)),
        ]
        .boxed()
    }

    fn apply(mut m: Model, op: &Op) -> Model {
        let outcome = match *op {
            Op::Register(link) => {
                // Both ends replace their session: the old channel is gone.
                m.links[link] = LinkState {
                    hub: EndState::fresh(),
                    spoke: EndState::fresh(),
                    ..LinkState::default()
                };
                Outcome::Done
            }
            Op::Close(end, link) => Outcome::WasOpen(m.close(end, link)),
            Op::DropEndpoint(end, link) => {
                let links: &[usize] = match end {
                    End::Hub => &[0, 1],
                    End::Spoke => &[link],
                };
                for &l in links {
                    m.close(end, l);
                    let (me, _, _) = m.sides(end, l);
                    *me = EndState::default();
                }
                Outcome::Done
            }
            Op::Send(end, link, n) => m.send(end, link, Item::Msg(n)),
            Op::Choose(end, link, i) => m.send(end, link, Item::Label(i)),
            Op::Recv(end, link) => m.receive(end, link, false),
            Op::Offer(end, link) => m.receive(end, link, true),
        };
        m.last = Some(outcome);
        m
    }
}

/// The real endpoints.
struct System {
    hub: RumpsteakEndpoint<Node>,
    spokes: [RumpsteakEndpoint<Node>; 2],
}

/// Polls `fut` once and drops it: `None` if it was pending (a cancel).
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

fn outcome<T>(
    polled: Option<Result<T, ChoreographyError>>,
    got: impl FnOnce(T) -> Outcome,
) -> Outcome {
    match polled {
        None => Outcome::Cancelled,
        Some(Ok(v)) => got(v),
        Some(Err(e)) if e.is_closed() => Outcome::Closed,
        Some(Err(ChoreographyError::NoChannel { .. })) => Outcome::NoChannel,
        Some(Err(ChoreographyError::ProtocolViolation { violation, .. })) => match violation {
            Violation::LabelWhereMessageExpected => Outcome::LabelWhereMessage,
            Violation::MessageWhereLabelExpected => Outcome::MessageWhereLabel,
            other => panic!("unexpected violation {other}"),
        },
        Some(Err(e)) => panic!("unexpected error {e}"),
    }
}

impl System {
    /// The acting endpoint and the peer it names.
    fn at(&mut self, end: End, link: usize) -> (&mut RumpsteakEndpoint<Node>, Node) {
        match end {
            End::Hub => (&mut self.hub, SPOKES[link]),
            End::Spoke => (&mut self.spokes[link], Node::Hub),
        }
    }
}

struct EndpointsUnderTest;

impl StateMachineTest for EndpointsUnderTest {
    type SystemUnderTest = System;
    type Reference = Reference;

    fn init_test(_: &Model) -> System {
        register_labels(&LABELS);
        System {
            hub: RumpsteakEndpoint::new(Node::Hub),
            spokes: SPOKES.map(RumpsteakEndpoint::new),
        }
    }

    fn apply(mut sys: System, model: &Model, op: Op) -> System {
        let mut h = RumpsteakHandler::<Node, u64>::new();
        let actual = match op {
            Op::Register(link) => {
                let (to_spoke, to_hub): (RumpsteakSession, RumpsteakSession) = if link == 0 {
                    let (a, b) = SimpleChannel::pair();
                    (a.into(), b.into())
                } else {
                    let (a, b) = BoundedChannel::pair(FAR_CAPACITY);
                    (a.into(), b.into())
                };
                sys.hub.register_session(SPOKES[link], to_spoke);
                sys.spokes[link].register_session(Node::Hub, to_hub);
                Outcome::Done
            }
            Op::Close(end, link) => {
                let (ep, peer) = sys.at(end, link);
                Outcome::WasOpen(ep.close_channel(&peer))
            }
            Op::DropEndpoint(end, link) => {
                match end {
                    End::Hub => sys.hub = RumpsteakEndpoint::new(Node::Hub),
                    End::Spoke => sys.spokes[link] = RumpsteakEndpoint::new(SPOKES[link]),
                }
                Outcome::Done
            }
            Op::Send(end, link, n) => {
                let (ep, peer) = sys.at(end, link);
                outcome(poll_once(h.send(ep, peer, &n)), |()| Outcome::Done)
            }
            Op::Choose(end, link, i) => {
                let (ep, peer) = sys.at(end, link);
                outcome(poll_once(h.choose(ep, peer, LABELS[i])), |()| Outcome::Done)
            }
            Op::Recv(end, link) => {
                let (ep, peer) = sys.at(end, link);
                outcome(poll_once(h.recv::<u64>(ep, peer)), |n| {
                    Outcome::Got(Item::Msg(n))
                })
            }
            Op::Offer(end, link) => {
                let (ep, peer) = sys.at(end, link);
                outcome(poll_once(h.offer(ep, peer)), |l| {
                    let i = LABELS
                        .iter()
                        .position(|k| *k == l)
                        .expect("a label of ours");
                    Outcome::Got(Item::Label(i))
                })
            }
        };
        assert_eq!(Some(&actual), model.last.as_ref(), "outcome of {op:?}");
        sys
    }

    fn check_invariants(sys: &System, model: &Model) {
        let check = |ep: &RumpsteakEndpoint<Node>, peer: Node, e: &EndState| {
            let who = format!("{:?} about {peer:?}", ep.local_role());
            assert_eq!(ep.has_channel(&peer), e.open, "has_channel: {who}");
            let meta = ep.get_metadata(&peer);
            assert_eq!(meta.is_some(), e.registered, "metadata present: {who}");
            if let Some(meta) = meta {
                assert_eq!(meta.operation_count, e.ops, "operation_count: {who}");
                assert_eq!(
                    meta.is_complete,
                    !e.open || e.saw_close,
                    "is_complete: {who}: {meta:?}"
                );
                let t = ep.traffic(&peer).expect("traffic of a registered peer");
                assert_eq!(
                    (t.frames_sent, t.frames_received),
                    (e.sent, e.received),
                    "traffic: {who}"
                );
            }
        };
        for (link, l) in model.links.iter().enumerate() {
            check(&sys.hub, SPOKES[link], &l.hub);
            check(&sys.spokes[link], Node::Hub, &l.spoke);
            assert_eq!(
                sys.spokes[link].active_channel_count(),
                usize::from(l.spoke.open)
            );
        }
        let open = model.links.iter().filter(|l| l.hub.open).count();
        assert_eq!(sys.hub.active_channel_count(), open);
        assert_eq!(sys.hub.is_all_closed(), open == 0);
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn endpoints_agree_with_the_model(sequential 1..80 => EndpointsUnderTest);
}
