//! Role families in the typed API: the scatter/gather/announce protocol of
//! the `family_scatter_gather` example with every role typed, in its own
//! task, on a monitored endpoint, for 1, 3 and 50 workers; typed roles
//! against untyped monitored peers both ways; a coordinator that gives up
//! mid-round abandons the members still waiting, and no more; the sizes
//! and members are checked once, with typed errors. Also: choices inside a
//! round (a member that chooses, a third role with its own `foreach`), a
//! family on the caller's role type (an enum, and a struct whose members an
//! associated function makes), two families of different sizes, a payload
//! type named `B`, and a dropped state that leaves alone the members whose
//! rounds have nothing more with it.

mod common;

use common::{Handler, assert_finished, within};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_handler::{RumpsteakEndpoint, SimpleChannel};
use rumpsteak_aura_typed::ProjectionError;
use serde::{Deserialize, Serialize};

/// The numbers one worker adds up in one round.
#[derive(Debug, Serialize, Deserialize)]
pub struct Task {
    numbers: Vec<u64>,
}

/// One worker's result for one round.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Sum(u64);

rumpsteak_aura_macros::protocol! {
    /// Rounds of scatter and gather, until the coordinator says stop: the
    /// protocol of the `family_scatter_gather` example.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod scatter = "
        roles Coordinator, Worker[n];
        rec Round {
            choice at Coordinator {
                work: {
                    foreach Worker[i] { Coordinator -> Worker[i]: Task(Task); }
                    foreach Worker[i] { Worker[i] -> Coordinator: Sum(Sum); }
                    continue Round;
                }
                stop: {
                    foreach Worker[i] { Coordinator -> Worker[i]: Stop; }
                }
            }
        }";
}

use scatter::{Role, Sizes};

type Endpoint = RumpsteakEndpoint<Role>;

/// A role gets this long to finish a run. The runs take milliseconds; the
/// bound only proves that none hangs, so it is generous for a loaded CI
/// machine.
const RUN_SECS: u64 = 30;

/// How many rounds of work the coordinator runs.
const ROUNDS: u64 = 3;

/// The numbers of round `round` for worker `i`.
fn numbers(round: u64, i: usize) -> Vec<u64> {
    let base = round * 1000 + i as u64 * 10;
    (base..base + 4).collect()
}

/// What the coordinator should gather in all.
fn expected_total(n: usize) -> u64 {
    (0..ROUNDS)
        .flat_map(|r| (0..n).flat_map(move |i| numbers(r, i)))
        .sum()
}

/// The coordinator's endpoint and one per worker, each connected to the
/// coordinator in memory (workers do not talk to each other). With
/// `monitored`, each carries the monitor of its concrete role.
fn star(sizes: Sizes, monitored: bool) -> (Endpoint, Vec<Endpoint>) {
    let n = sizes.worker();
    let mut coordinator = Endpoint::new(Role::Coordinator);
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let role = Role::Worker(i);
        let mut ep = Endpoint::new(role);
        let (to_worker, to_coordinator) = SimpleChannel::pair();
        coordinator.register_channel(role, to_worker);
        ep.register_channel(Role::Coordinator, to_coordinator);
        if monitored {
            ep = ep.with_protocol(scatter::monitor(role, sizes).unwrap());
        }
        workers.push(ep);
    }
    if monitored {
        coordinator =
            coordinator.with_protocol(scatter::monitor(Role::Coordinator, sizes).unwrap());
    }
    (coordinator, workers)
}

/// The typed coordinator. Even rounds go member by member through the
/// `foreach` loop states; odd rounds use the methods that run every round
/// of a one-message `foreach` at once. Gives the total of the sums.
async fn typed_coordinator(
    mut ep: Endpoint,
    sizes: Sizes,
) -> Result<(Endpoint, u64), ChoreographyError> {
    use scatter::coordinator::{Foreach1, Foreach3, start};
    let mut h = Handler::new();
    let mut total = 0;
    let mut s = start(&mut h, &mut ep, sizes)?;
    for round in 0..ROUNDS {
        // The choice is told to every member.
        let mut scatter = s.choose_work().await?;
        let gather = if round % 2 == 0 {
            loop {
                match scatter.next_member() {
                    Foreach1::Member(i, member) => {
                        assert_eq!(member.member(), i);
                        let task = Task {
                            numbers: numbers(round, i),
                        };
                        scatter = member.send_to_worker(&task).await?;
                    }
                    Foreach1::Done(gather) => break gather,
                }
            }
        } else {
            scatter
                .send_to_each_worker(|i| Task {
                    numbers: numbers(round, i),
                })
                .await?
        };
        s = if round % 2 == 0 {
            let mut gather = gather;
            loop {
                match gather.next_member() {
                    Foreach3::Member(_, member) => {
                        let (Sum(sum), next) = member.recv_from_worker().await?;
                        total += sum;
                        gather = next;
                    }
                    Foreach3::Done(next) => break next,
                }
            }
        } else {
            let (sums, next) = gather.recv_from_each_worker().await?;
            assert_eq!(sums.len(), sizes.worker());
            total += sums.iter().map(|Sum(s)| s).sum::<u64>();
            next
        };
    }
    // The end is announced to every member, then each gets its `Stop`.
    let end = s.choose_stop().await?.send_to_each_worker().await?;
    end.finish();
    Ok((ep, total))
}

/// A typed worker: adds up each task until told to stop. Gives the number
/// of rounds it worked.
async fn typed_worker(
    mut ep: Endpoint,
    sizes: Sizes,
    i: usize,
) -> Result<(Endpoint, u64), ChoreographyError> {
    use scatter::worker::{Branch0, Member, start};
    let mut h = Handler::new();
    let member = Member::new(sizes, i).unwrap();
    assert_eq!(member.role(), Role::Worker(i));
    let mut s = start(&mut h, &mut ep, member)?;
    let mut rounds = 0;
    loop {
        match s.branch().await? {
            Branch0::Work(work) => {
                let (task, reply) = work.recv_from_coordinator().await?;
                s = reply
                    .send_to_coordinator(&Sum(task.numbers.iter().sum()))
                    .await?;
                rounds += 1;
            }
            Branch0::Stop(stop) => {
                let ((), end) = stop.recv_from_coordinator().await?;
                end.finish();
                break;
            }
        }
    }
    Ok((ep, rounds))
}

/// Runs the typed coordinator and `n` typed workers, each in its own task
/// on its monitored endpoint, and checks the total and that every session
/// of every role completed.
async fn typed_run(n: usize) {
    let sizes = Sizes::new(n).unwrap();
    let (coordinator_ep, worker_eps) = star(sizes, true);
    let workers: Vec<_> = worker_eps
        .into_iter()
        .enumerate()
        .map(|(i, ep)| tokio::spawn(typed_worker(ep, sizes, i)))
        .collect();
    let coordinator = tokio::spawn(typed_coordinator(coordinator_ep, sizes));
    let (ep, total) = within(RUN_SECS, coordinator).await.unwrap().unwrap();
    assert_eq!(total, expected_total(n));
    assert_eq!(ep.all_metadata().len(), n);
    assert_finished(&ep);
    for (i, w) in workers.into_iter().enumerate() {
        let (ep, rounds) = within(RUN_SECS, w).await.unwrap().unwrap();
        assert_eq!(*ep.local_role(), Role::Worker(i));
        assert_eq!(rounds, ROUNDS);
        assert_finished(&ep);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker() {
    typed_run(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers() {
    typed_run(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_workers() {
    typed_run(50).await;
}

const WORK: Label = Label("work");
const STOP: Label = Label("stop");

/// The untyped side's type for the payload-less `Stop`: a unit struct of
/// the label's name, which is what its monitor checks.
#[derive(Debug, Serialize, Deserialize)]
struct Stop;

/// An untyped coordinator, as the example writes it.
async fn untyped_coordinator(
    mut ep: Endpoint,
    n: usize,
) -> Result<(Endpoint, u64), ChoreographyError> {
    let mut h = Handler::new();
    let workers: Vec<Role> = (0..n).map(Role::Worker).collect();
    let mut total = 0;
    for round in 0..ROUNDS {
        for &w in &workers {
            h.choose(&mut ep, w, WORK).await?;
        }
        for (i, &w) in workers.iter().enumerate() {
            let task = Task {
                numbers: numbers(round, i),
            };
            h.send(&mut ep, w, &task).await?;
        }
        for &w in &workers {
            let Sum(s) = h.recv(&mut ep, w).await?;
            total += s;
        }
    }
    for &w in &workers {
        h.choose(&mut ep, w, STOP).await?;
    }
    for &w in &workers {
        h.send(&mut ep, w, &Stop).await?;
    }
    Ok((ep, total))
}

/// An untyped worker, as the example writes it.
async fn untyped_worker(mut ep: Endpoint) -> Result<(Endpoint, u64), ChoreographyError> {
    let mut h = Handler::new();
    let mut rounds = 0;
    loop {
        let label = h.offer(&mut ep, Role::Coordinator).await?;
        if label == STOP {
            let Stop = h.recv(&mut ep, Role::Coordinator).await?;
            return Ok((ep, rounds));
        }
        let task: Task = h.recv(&mut ep, Role::Coordinator).await?;
        h.send(&mut ep, Role::Coordinator, &Sum(task.numbers.iter().sum()))
            .await?;
        rounds += 1;
    }
}

/// Typed workers, each a member of the family, against an untyped
/// coordinator; every endpoint monitored, so the typed members' steps are
/// the protocol's and the untyped coordinator's are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_members_against_an_untyped_coordinator() {
    let n = 3;
    let sizes = Sizes::new(n).unwrap();
    let (coordinator_ep, worker_eps) = star(sizes, true);
    let workers: Vec<_> = worker_eps
        .into_iter()
        .enumerate()
        .map(|(i, ep)| tokio::spawn(typed_worker(ep, sizes, i)))
        .collect();
    let coordinator = tokio::spawn(untyped_coordinator(coordinator_ep, n));
    let (ep, total) = within(RUN_SECS, coordinator).await.unwrap().unwrap();
    assert_eq!(total, expected_total(n));
    assert_finished(&ep);
    for w in workers {
        let (ep, rounds) = within(RUN_SECS, w).await.unwrap().unwrap();
        assert_eq!(rounds, ROUNDS);
        assert_finished(&ep);
    }
}

/// The typed coordinator against untyped monitored workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_coordinator_against_untyped_members() {
    let n = 3;
    let sizes = Sizes::new(n).unwrap();
    let (coordinator_ep, worker_eps) = star(sizes, true);
    let workers: Vec<_> = worker_eps
        .into_iter()
        .map(|ep| tokio::spawn(untyped_worker(ep)))
        .collect();
    let coordinator = tokio::spawn(typed_coordinator(coordinator_ep, sizes));
    let (ep, total) = within(RUN_SECS, coordinator).await.unwrap().unwrap();
    assert_eq!(total, expected_total(n));
    assert_finished(&ep);
    for w in workers {
        let (ep, rounds) = within(RUN_SECS, w).await.unwrap().unwrap();
        assert_eq!(rounds, ROUNDS);
        assert_finished(&ep);
    }
}

/// A coordinator that gives up in the middle of the scatter (its loop
/// state dropped after member 1's task) abandons every member: the ones
/// still waiting for a task and, since the gather and the announcement
/// follow, the one that got its task too. Each gets an error instead of
/// hanging, and the coordinator's metadata marks every member abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_dropped_mid_round_abandons_every_member() {
    use scatter::coordinator::{Foreach1, start};
    let n = 3;
    let sizes = Sizes::new(n).unwrap();
    let (mut coordinator_ep, worker_eps) = star(sizes, false);
    let workers: Vec<_> = worker_eps
        .into_iter()
        .enumerate()
        .map(|(i, ep)| tokio::spawn(typed_worker(ep, sizes, i)))
        .collect();
    {
        let mut h = Handler::new();
        let s = start(&mut h, &mut coordinator_ep, sizes).unwrap();
        let mut scatter = s.choose_work().await.unwrap();
        for _ in 0..2 {
            match scatter.next_member() {
                Foreach1::Member(i, member) => {
                    let task = Task {
                        numbers: numbers(0, i),
                    };
                    scatter = member.send_to_worker(&task).await.unwrap();
                }
                Foreach1::Done(_) => panic!("three members, two rounds"),
            }
        }
        assert!(
            format!("{scatter:?}").ends_with("(member 2)"),
            "{scatter:?}"
        );
        // Dropped here, with member 2's round still to come.
    }
    for (i, w) in workers.into_iter().enumerate() {
        let outcome = within(RUN_SECS, w).await.unwrap();
        assert!(outcome.is_err(), "worker {i} finished: {outcome:?}");
    }
    for i in 0..n {
        let meta = coordinator_ep.get_metadata(&Role::Worker(i)).unwrap();
        assert!(meta.is_abandoned, "member {i}: {meta:?}");
    }
}

/// A run's sizes and members are checked once, with the protocol crate's
/// typed errors; a member on another member's endpoint does not start; the
/// role type prints members as the protocol names them.
#[test]
fn sizes_and_members_are_checked() {
    assert_eq!(
        Sizes::new(0),
        Err(ProjectionError::FamilySize {
            family: "Worker".into()
        })
    );
    assert!(Sizes::new(257).is_err());
    let sizes = Sizes::new(3).unwrap();
    assert_eq!(sizes.worker(), 3);
    assert_eq!(sizes.pairs(), [("Worker", 3)]);
    assert_eq!(
        sizes.roles(),
        [
            Role::Coordinator,
            Role::Worker(0),
            Role::Worker(1),
            Role::Worker(2)
        ]
    );
    assert_eq!(
        scatter::worker::Member::new(sizes, 3),
        Err(ProjectionError::NoSuchMember {
            family: "Worker".into(),
            index: 3,
            size: 3
        })
    );
    assert_eq!(format!("{:?}", Role::Worker(7)), "Worker[7]");
    assert_eq!(Role::Worker(7).name(), "Worker");
    assert_eq!(
        scatter::monitor(Role::Worker(2), sizes).unwrap().role(),
        "Worker[2]"
    );
    assert!(scatter::monitor(Role::Worker(3), sizes).is_err());

    // The states stay small: the core (two pointers), plus the sizes for a
    // role that goes over the family, plus the member index in a foreach.
    use std::mem::size_of;
    assert_eq!(size_of::<scatter::worker::State0<'_, Handler<Role>>>(), 16);
    assert_eq!(
        size_of::<scatter::coordinator::State0<'_, Handler<Role>>>(),
        24
    );
    assert_eq!(
        size_of::<scatter::coordinator::State1<'_, Handler<Role>>>(),
        32
    );
    assert_eq!(
        size_of::<scatter::coordinator::State2<'_, Handler<Role>>>(),
        32
    );

    let mut h = Handler::new();
    let mut ep = Endpoint::new(Role::Worker(1));
    let member = scatter::worker::Member::new(sizes, 2).unwrap();
    match scatter::worker::start(&mut h, &mut ep, member) {
        Err(ChoreographyError::WrongRole { expected, found }) => {
            assert_eq!(
                (expected.as_str(), found.as_str()),
                ("Worker[2]", "Worker[1]")
            );
        }
        other => panic!("started on another member's endpoint: {other:?}"),
    }
    let mut ep = Endpoint::new(Role::Worker(0));
    assert!(matches!(
        scatter::coordinator::start(&mut h, &mut ep, sizes),
        Err(ChoreographyError::WrongRole { .. })
    ));
}

rumpsteak_aura_macros::protocol! {
    /// A coordinator asks some members a question and skips the others;
    /// an asked member answers yes or no, and tells a logger what it
    /// chose; the logger hears from every member, then from the
    /// coordinator. Choices inside a round, a member that chooses, a
    /// third role with its own `foreach`, and a branch on the message
    /// received.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod survey = "
        roles C, W[n], L;
        foreach W[i] {
            choice at C {
                ask: {
                    C -> W[i]: Ask(u32);
                    choice at W[i] {
                        yes: { W[i] -> C: Yes(u32); W[i] -> L: Note(u32); }
                        no: { W[i] -> C: No; W[i] -> L: Quiet; }
                    }
                }
                skip: { C -> W[i]: Skip; W[i] -> L: Skipped; }
            }
        }
        C -> L: Done;";
}

/// What the survey's coordinator heard: each asked member's answer.
async fn survey_c(
    mut ep: RumpsteakEndpoint<survey::Role>,
    sizes: survey::Sizes,
) -> (RumpsteakEndpoint<survey::Role>, Vec<Option<u32>>) {
    use survey::c::{Branch3, Foreach0, start};
    let mut h = Handler::new();
    let mut s = start(&mut h, &mut ep, sizes).unwrap();
    let mut heard = Vec::new();
    let after = loop {
        match s.next_member() {
            // Even members are asked, odd ones skipped.
            Foreach0::Member(i, round) if i % 2 == 0 => {
                let asked = round.choose_ask().await.unwrap();
                let answer = asked.send_to_w(&(i as u32)).await.unwrap();
                s = match answer.branch().await.unwrap() {
                    Branch3::Yes(yes) => {
                        let (x, next) = yes.recv_from_w().await.unwrap();
                        heard.push(Some(x));
                        next
                    }
                    Branch3::No(no) => {
                        let ((), next) = no.recv_from_w().await.unwrap();
                        heard.push(None);
                        next
                    }
                };
            }
            Foreach0::Member(_, round) => {
                s = round
                    .choose_skip()
                    .await
                    .unwrap()
                    .send_to_w()
                    .await
                    .unwrap();
            }
            Foreach0::Done(after) => break after,
        }
    };
    after.send_to_l().await.unwrap().finish();
    (ep, heard)
}

/// A survey member: says yes with its number times ten when asked a
/// multiple of four, no otherwise.
async fn survey_w(
    mut ep: RumpsteakEndpoint<survey::Role>,
    sizes: survey::Sizes,
    i: usize,
) -> RumpsteakEndpoint<survey::Role> {
    use survey::w::{Branch0, Member, start};
    let mut h = Handler::new();
    let s = start(&mut h, &mut ep, Member::new(sizes, i).unwrap()).unwrap();
    let end = match s.branch().await.unwrap() {
        Branch0::Ask(asked) => {
            let (q, answer) = asked.recv_from_c().await.unwrap();
            assert_eq!(q as usize, i);
            if q % 4 == 0 {
                let told = answer.choose_yes().await.unwrap();
                told.send_to_c(&(q * 10))
                    .await
                    .unwrap()
                    .send_to_l(&q)
                    .await
                    .unwrap()
            } else {
                answer
                    .choose_no()
                    .await
                    .unwrap()
                    .send_to_c()
                    .await
                    .unwrap()
                    .send_to_l()
                    .await
                    .unwrap()
            }
        }
        Branch0::Skip(skipped) => {
            let ((), tell) = skipped.recv_from_c().await.unwrap();
            tell.send_to_l().await.unwrap()
        }
    };
    end.finish();
    ep
}

/// What the logger heard from each member, then `Done`.
#[derive(Debug, PartialEq)]
enum Log {
    Note(u32),
    Quiet,
    Skipped,
}

async fn survey_l(
    mut ep: RumpsteakEndpoint<survey::Role>,
    sizes: survey::Sizes,
) -> (RumpsteakEndpoint<survey::Role>, Vec<Log>) {
    use survey::l::{Branch1, Foreach0, start};
    let mut h = Handler::new();
    let mut s = start(&mut h, &mut ep, sizes).unwrap();
    let mut log = Vec::new();
    let after = loop {
        match s.next_member() {
            Foreach0::Member(_, round) => {
                s = match round.branch().await.unwrap() {
                    Branch1::Yes(yes) => {
                        let (x, next) = yes.recv_from_w().await.unwrap();
                        log.push(Log::Note(x));
                        next
                    }
                    Branch1::No(no) => {
                        let ((), next) = no.recv_from_w().await.unwrap();
                        log.push(Log::Quiet);
                        next
                    }
                    // A branch on the message received: it comes with it.
                    Branch1::Skipped(next) => {
                        log.push(Log::Skipped);
                        next
                    }
                };
            }
            Foreach0::Done(after) => break after,
        }
    };
    let ((), end) = after.recv_from_c().await.unwrap();
    end.finish();
    (ep, log)
}

/// The survey with 5 members, every role typed and monitored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choices_inside_rounds() {
    use survey::Role;
    let n = 5;
    let sizes = survey::Sizes::new(n).unwrap();
    let roles = sizes.roles();
    assert_eq!(roles.len(), n + 2);
    let mut eps: Vec<_> = common::mesh(&roles)
        .into_iter()
        .map(|ep| {
            let monitor = survey::monitor(*ep.local_role(), sizes).unwrap();
            Some(ep.with_protocol(monitor))
        })
        .collect();
    let mut take = |role: Role| {
        eps[roles.iter().position(|r| *r == role).unwrap()]
            .take()
            .unwrap()
    };
    let c = tokio::spawn(survey_c(take(Role::C), sizes));
    let l = tokio::spawn(survey_l(take(Role::L), sizes));
    let ws: Vec<_> = (0..n)
        .map(|i| tokio::spawn(survey_w(take(Role::W(i)), sizes, i)))
        .collect();
    let (ep, heard) = within(RUN_SECS, c).await.unwrap();
    // Members 0, 2 and 4 are asked; 0 and 4 are multiples of four.
    assert_eq!(heard, [Some(0), None, Some(40)]);
    assert_finished(&ep);
    let (ep, log) = within(RUN_SECS, l).await.unwrap();
    assert_eq!(
        log,
        [
            Log::Note(0),
            Log::Skipped,
            Log::Quiet,
            Log::Skipped,
            Log::Note(4)
        ]
    );
    assert_finished(&ep);
    for w in ws {
        assert_finished(&within(RUN_SECS, w).await.unwrap());
    }
}

/// A coordinator that gives up in the announcement, the last `foreach`,
/// after member 0's `Stop`: nothing after it talks to the family, so only
/// the members still to come are abandoned. Member 0 finished and is left
/// alone; members 1 and 2 get an error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_dropped_in_the_last_round_abandons_only_the_rest() {
    use scatter::coordinator::{Foreach5, start};
    let n = 3;
    let sizes = Sizes::new(n).unwrap();
    let (mut coordinator_ep, worker_eps) = star(sizes, false);
    let workers: Vec<_> = worker_eps
        .into_iter()
        .enumerate()
        .map(|(i, ep)| tokio::spawn(typed_worker(ep, sizes, i)))
        .collect();
    {
        let mut h = Handler::new();
        let s = start(&mut h, &mut coordinator_ep, sizes).unwrap();
        let announce = s.choose_stop().await.unwrap();
        match announce.next_member() {
            Foreach5::Member(0, member) => {
                let rest = member.send_to_worker().await.unwrap();
                drop(rest);
            }
            other => panic!("the first round is member 0's: {other:?}"),
        }
    }
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.push(within(RUN_SECS, w).await.unwrap());
    }
    assert_eq!(
        outcomes[0].as_ref().map(|(_, rounds)| *rounds).ok(),
        Some(0)
    );
    assert!(outcomes[1].is_err() && outcomes[2].is_err(), "{outcomes:?}");
    let abandoned: Vec<bool> = (0..n)
        .map(|i| {
            coordinator_ep
                .get_metadata(&Role::Worker(i))
                .unwrap()
                .is_abandoned
        })
        .collect();
    assert_eq!(abandoned, [false, true, true]);
}

/// The caller's own role type for a protocol with a family: a variant with
/// the member's index, printed as the protocol names members.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crew {
    /// Who hands out the jobs.
    Boss,
    /// A member, by index.
    Hand(usize),
}

impl std::fmt::Debug for Crew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Crew::Boss => f.write_str("Boss"),
            Crew::Hand(i) => write!(f, "Hand[{i}]"),
        }
    }
}

impl rumpsteak_aura::Role for Crew {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

rumpsteak_aura_macros::protocol! {
    /// A job for every hand, and its answer.
    #[protocol(roles = "crate::Crew", crate = "::rumpsteak_aura_typed")]
    pub mod jobs = "
        roles Boss, Hand[n];
        foreach Hand[i] { Boss -> Hand[i]: Job(u32); Hand[i] -> Boss: Done(u32); }";
}

/// A family on the caller's role type: states, `Sizes::roles` and the
/// monitors all speak it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_runs_on_the_callers_role_type() {
    let sizes = jobs::Sizes::new(2).unwrap();
    let roles: Vec<Crew> = sizes.roles();
    assert_eq!(roles, [Crew::Boss, Crew::Hand(0), Crew::Hand(1)]);
    let mut eps: Vec<_> = common::mesh(&roles)
        .into_iter()
        .map(|ep| {
            let monitor = jobs::monitor(*ep.local_role(), sizes).unwrap();
            ep.with_protocol(monitor)
        })
        .collect();
    let hands: Vec<_> = eps
        .drain(1..)
        .enumerate()
        .map(|(i, mut ep)| {
            tokio::spawn(async move {
                let mut h = Handler::new();
                let member = jobs::hand::Member::new(sizes, i).unwrap();
                let s = jobs::hand::start(&mut h, &mut ep, member).unwrap();
                let (job, s) = s.recv_from_boss().await.unwrap();
                s.send_to_boss(&(job + 1)).await.unwrap().finish();
                ep
            })
        })
        .collect();
    let mut ep = eps.pop().unwrap();
    let mut h = Handler::new();
    let mut s = jobs::boss::start(&mut h, &mut ep, sizes).unwrap();
    let mut answers = Vec::new();
    let end = loop {
        match s.next_member() {
            jobs::boss::Foreach0::Member(i, round) => {
                let round = round.send_to_hand(&(10 * i as u32)).await.unwrap();
                let (answer, next) = round.recv_from_hand().await.unwrap();
                answers.push(answer);
                s = next;
            }
            jobs::boss::Foreach0::Done(end) => break end,
        }
    };
    end.finish();
    assert_eq!(answers, [1, 11]);
    assert_finished(&ep);
    for hand in hands {
        assert_finished(&within(RUN_SECS, hand).await.unwrap());
    }
}

rumpsteak_aura_macros::protocol! {
    /// Two families of different sizes: the hub hands out to one and
    /// collects from the other, then tells the first the total.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod two = "
        roles Hub, Out[n], In[m];
        foreach Out[i] { Hub -> Out[i]: Give(u32); }
        foreach In[j] { In[j] -> Hub: Take(u32); }
        choice at Hub {
            total: { foreach Out[i] { Hub -> Out[i]: Total(u32); } }
            none: { foreach Out[i] { Hub -> Out[i]: Nothing; } }
        }";
}

/// Two families, each with its own size, every role typed and monitored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_families_of_different_sizes() {
    use two::Role;
    let sizes = two::Sizes::new(2, 3).unwrap();
    assert_eq!((sizes.out(), sizes.r#in()), (2, 3));
    assert_eq!(sizes.pairs(), [("Out", 2), ("In", 3)]);
    assert!(matches!(
        two::Sizes::new(2, 0),
        Err(ProjectionError::FamilySize { family }) if family == "In"
    ));
    let roles = sizes.roles();
    let mut eps: Vec<_> = common::mesh(&roles)
        .into_iter()
        .map(|ep| {
            let monitor = two::monitor(*ep.local_role(), sizes).unwrap();
            Some(ep.with_protocol(monitor))
        })
        .collect();
    let mut take = |role: Role| {
        eps[roles.iter().position(|r| *r == role).unwrap()]
            .take()
            .unwrap()
    };
    let outs: Vec<_> = (0..2)
        .map(|i| {
            let mut ep = take(Role::Out(i));
            tokio::spawn(async move {
                let mut h = Handler::new();
                let member = two::out::Member::new(sizes, i).unwrap();
                let s = two::out::start(&mut h, &mut ep, member).unwrap();
                let (give, s) = s.recv_from_hub().await.unwrap();
                let total = match s.branch().await.unwrap() {
                    two::out::Branch1::Total(s) => {
                        let (total, end) = s.recv_from_hub().await.unwrap();
                        end.finish();
                        Some(total)
                    }
                    two::out::Branch1::None(s) => {
                        s.recv_from_hub().await.unwrap().1.finish();
                        None
                    }
                };
                (ep, give, total)
            })
        })
        .collect();
    let ins: Vec<_> = (0..3)
        .map(|j| {
            let mut ep = take(Role::In(j));
            tokio::spawn(async move {
                let mut h = Handler::new();
                let member = two::r#in::Member::new(sizes, j).unwrap();
                let s = two::r#in::start(&mut h, &mut ep, member).unwrap();
                s.send_to_hub(&(100 + j as u32)).await.unwrap().finish();
                ep
            })
        })
        .collect();
    let mut ep = take(Role::Hub);
    let mut h = Handler::new();
    let s = two::hub::start(&mut h, &mut ep, sizes).unwrap();
    let s = s.send_to_each_out(|i| i as u32).await.unwrap();
    let (takes, s) = s.recv_from_each_in().await.unwrap();
    assert_eq!(takes, [100, 101, 102]);
    let total = takes.iter().sum::<u32>();
    let s = s.choose_total().await.unwrap();
    s.send_to_each_out(|_| &total).await.unwrap().finish();
    assert_finished(&ep);
    for (i, out) in outs.into_iter().enumerate() {
        let (ep, give, got) = within(RUN_SECS, out).await.unwrap();
        assert_eq!((give, got), (i as u32, Some(303)));
        assert_finished(&ep);
    }
    for i in ins {
        assert_finished(&within(RUN_SECS, i).await.unwrap());
    }
}

rumpsteak_aura_macros::protocol! {
    /// A coordinator hands each worker a task and logs it to an auditor in
    /// the same round, then tells the auditor a tally per worker, in rounds
    /// that do not talk to the workers at all. The auditor goes over the
    /// family too, without ever talking to a member.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod audit = "
        roles C, W[n], Auditor;
        foreach W[i] { C -> W[i]: Job(u32); C -> Auditor: Log(u32); }
        foreach W[i] { C -> Auditor: Tally(u32); }";
}

/// Every role of `audit` for `n` workers, each connected to every other
/// (so the auditor has sessions with the workers it never talks to), and
/// each worker typed in its own task: `Ok` with its job once it got it.
#[allow(clippy::type_complexity)]
fn audit_run(
    n: usize,
) -> (
    audit::Sizes,
    RumpsteakEndpoint<audit::Role>,
    RumpsteakEndpoint<audit::Role>,
    Vec<tokio::task::JoinHandle<Result<u32, ChoreographyError>>>,
) {
    let sizes = audit::Sizes::new(n).unwrap();
    let roles = sizes.roles();
    let mut eps: Vec<_> = common::mesh(&roles).into_iter().map(Some).collect();
    let mut take = |role: audit::Role| {
        eps[roles.iter().position(|r| *r == role).unwrap()]
            .take()
            .unwrap()
    };
    let c = take(audit::Role::C);
    let auditor = take(audit::Role::Auditor);
    let workers = (0..n)
        .map(|i| {
            let mut ep = take(audit::Role::W(i));
            tokio::spawn(async move {
                let mut h = Handler::new();
                let member = audit::w::Member::new(sizes, i).unwrap();
                let s = audit::w::start(&mut h, &mut ep, member)?;
                let (job, end) = s.recv_from_c().await?;
                end.finish();
                Ok(job)
            })
        })
        .collect();
    (sizes, c, auditor, workers)
}

/// Whether `ep` marks each worker abandoned.
fn workers_abandoned(ep: &RumpsteakEndpoint<audit::Role>, n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| ep.get_metadata(&audit::Role::W(i)).unwrap().is_abandoned)
        .collect()
}

/// A coordinator dropped in member 0's round after member 0's job, at the
/// log to the auditor: member 0 expects nothing more of it and is left
/// alone (it finishes with its job); members 1 and 2, whose jobs are still
/// to come, and the auditor are abandoned and get an error instead of
/// hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_done_with_its_member_does_not_abandon_it() {
    use audit::c::{Foreach0, start};
    let n = 3;
    let (sizes, mut c_ep, mut auditor_ep, workers) = audit_run(n);
    {
        let mut h = Handler::new();
        let s = start(&mut h, &mut c_ep, sizes).unwrap();
        match s.next_member() {
            Foreach0::Member(0, round) => {
                let log = round.send_to_w(&7).await.unwrap();
                assert_eq!(log.member(), 0);
                drop(log);
            }
            other => panic!("the first round is member 0's: {other:?}"),
        }
    }
    assert_eq!(workers_abandoned(&c_ep, n), [false, true, true]);
    assert!(
        c_ep.get_metadata(&audit::Role::Auditor)
            .unwrap()
            .is_abandoned
    );
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.push(within(RUN_SECS, w).await.unwrap().ok());
    }
    assert_eq!(outcomes, [Some(7), None, None]);
    let mut h = Handler::new();
    let s = audit::auditor::start(&mut h, &mut auditor_ep, sizes).unwrap();
    let audit::auditor::Foreach0::Member(0, round) = s.next_member() else {
        panic!("the auditor's first round is member 0's");
    };
    assert!(within(RUN_SECS, round.recv_from_c()).await.is_err());
}

/// A coordinator dropped in the tallies, rounds that talk to the auditor
/// only: every worker got its job and is done, so none is abandoned (each
/// finishes); the auditor is. An auditor dropped in its own loop over the
/// family abandons the coordinator and none of the workers, though it has
/// a session with each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_without_their_member_abandon_no_member() {
    use audit::c::{Foreach0, Foreach3, start};
    let n = 3;
    let (sizes, mut c_ep, mut auditor_ep, workers) = audit_run(n);
    {
        let mut h = Handler::new();
        let mut jobs = start(&mut h, &mut c_ep, sizes).unwrap();
        let tallies = loop {
            match jobs.next_member() {
                Foreach0::Member(i, round) => {
                    let job = 10 + i as u32;
                    let log = round.send_to_w(&job).await.unwrap();
                    jobs = log.send_to_auditor(&job).await.unwrap();
                }
                Foreach0::Done(tallies) => break tallies,
            }
        };
        match tallies.next_member() {
            Foreach3::Member(0, round) => drop(round.send_to_auditor(&1).await.unwrap()),
            other => panic!("the first tally is member 0's: {other:?}"),
        }
    }
    assert_eq!(workers_abandoned(&c_ep, n), [false, false, false]);
    assert!(
        c_ep.get_metadata(&audit::Role::Auditor)
            .unwrap()
            .is_abandoned
    );
    let mut jobs = Vec::new();
    for w in workers {
        jobs.push(within(RUN_SECS, w).await.unwrap().unwrap());
    }
    assert_eq!(jobs, [10, 11, 12]);
    {
        let mut h = Handler::new();
        let s = audit::auditor::start(&mut h, &mut auditor_ep, sizes).unwrap();
        let audit::auditor::Foreach0::Member(0, round) = s.next_member() else {
            panic!("the auditor's first round is member 0's");
        };
        let (log, rest) = round.recv_from_c().await.unwrap();
        assert_eq!(log, 10);
        drop(rest);
    }
    assert_eq!(workers_abandoned(&auditor_ep, n), [false, false, false]);
    assert!(
        auditor_ep
            .get_metadata(&audit::Role::C)
            .unwrap()
            .is_abandoned
    );
}

/// A payload type named as a one-letter type parameter would be.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct B(u32);

rumpsteak_aura_macros::protocol! {
    /// A scatter and a gather of `B`: `send_to_each_w`'s own type
    /// parameter must not hide the payload type.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod letters = "
        roles C, W[n];
        foreach W[i] { C -> W[i]: Job(B); }
        foreach W[i] { W[i] -> C: Done(B); }";
}

/// The scatter of `B` to every member at once, by reference, and the
/// gather back, every role on its monitored endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_named_b_scatters_in_one_call() {
    let sizes = letters::Sizes::new(2).unwrap();
    let roles = sizes.roles();
    let mut eps: Vec<_> = common::mesh(&roles)
        .into_iter()
        .map(|ep| {
            let monitor = letters::monitor(*ep.local_role(), sizes).unwrap();
            ep.with_protocol(monitor)
        })
        .collect();
    let mut c_ep = eps.remove(0);
    let workers: Vec<_> = eps
        .into_iter()
        .enumerate()
        .map(|(i, mut ep)| {
            tokio::spawn(async move {
                let mut h = Handler::new();
                let member = letters::w::Member::new(sizes, i).unwrap();
                let s = letters::w::start(&mut h, &mut ep, member).unwrap();
                let (B(job), s) = s.recv_from_c().await.unwrap();
                s.send_to_c(&B(job + 1)).await.unwrap().finish();
                assert_finished(&ep);
                job
            })
        })
        .collect();
    let mut h = Handler::new();
    let s = letters::c::start(&mut h, &mut c_ep, sizes).unwrap();
    let jobs = [B(10), B(20)];
    let s = s.send_to_each_w(|i| &jobs[i]).await.unwrap();
    let (back, end) = s.recv_from_each_w().await.unwrap();
    end.finish();
    assert_eq!(back, [B(11), B(21)]);
    assert_finished(&c_ep);
    for (i, w) in workers.into_iter().enumerate() {
        assert_eq!(within(RUN_SECS, w).await.unwrap(), [10, 20][i]);
    }
}

/// A caller's role type that is no enum: the roles are an associated
/// constant and, for the family, an associated function (which the
/// typed-roles chapter allows for a family).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Staff(Option<usize>);

#[allow(non_snake_case, non_upper_case_globals)]
impl Staff {
    /// The one who hands out jobs.
    pub const Lead: Staff = Staff(None);

    /// Member `i` of the family.
    pub fn Temp(i: usize) -> Staff {
        Staff(Some(i))
    }
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("Lead"),
            Some(i) => write!(f, "Temp[{i}]"),
        }
    }
}

impl rumpsteak_aura::Role for Staff {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

rumpsteak_aura_macros::protocol! {
    /// A job for every temp, then every temp's answer.
    #[protocol(roles = "crate::Staff", crate = "::rumpsteak_aura_typed")]
    pub mod temps = "
        roles Lead, Temp[n];
        foreach Temp[i] { Lead -> Temp[i]: Job(u32); }
        foreach Temp[i] { Temp[i] -> Lead: Done(u32); }";
}

/// A family whose members the caller's role type makes with an associated
/// function: it compiles (`Member::role` calls the function) and runs,
/// every role monitored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_made_by_an_associated_function() {
    let sizes = temps::Sizes::new(2).unwrap();
    let roles = sizes.roles();
    assert_eq!(roles, [Staff::Lead, Staff::Temp(0), Staff::Temp(1)]);
    let mut eps: Vec<_> = common::mesh(&roles)
        .into_iter()
        .map(|ep| {
            let monitor = temps::monitor(*ep.local_role(), sizes).unwrap();
            ep.with_protocol(monitor)
        })
        .collect();
    let members: Vec<_> = eps
        .drain(1..)
        .enumerate()
        .map(|(i, mut ep)| {
            tokio::spawn(async move {
                let mut h = Handler::new();
                let member = temps::temp::Member::new(sizes, i).unwrap();
                assert_eq!(member.role(), Staff::Temp(i));
                let s = temps::temp::start(&mut h, &mut ep, member).unwrap();
                let (job, s) = s.recv_from_lead().await.unwrap();
                s.send_to_lead(&(job + 1)).await.unwrap().finish();
                ep
            })
        })
        .collect();
    let mut ep = eps.pop().unwrap();
    let mut h = Handler::new();
    let s = temps::lead::start(&mut h, &mut ep, sizes).unwrap();
    let s = s.send_to_each_temp(|i| 10 * i as u32).await.unwrap();
    let (answers, end) = s.recv_from_each_temp().await.unwrap();
    end.finish();
    assert_eq!(answers, [1, 11]);
    assert_finished(&ep);
    for member in members {
        assert_finished(&within(RUN_SECS, member).await.unwrap());
    }
}
