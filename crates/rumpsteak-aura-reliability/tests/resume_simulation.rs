//! Resumable sessions under the deterministic network simulation
//! (turmoil): three roles in a ring, Alice → Bob → Carol → Alice, each on
//! a simulated host, each link a `ResumableSession` over the net crate's
//! TCP sessions on the simulated sockets (the dialer redials with a
//! closure around `tcp::connect_with`, the acceptor's `ResumeListener`
//! routes what arrives at a `SessionListener::from_listen`).
//!
//! Every seed belongs to one class of faults, and each class has one
//! exact expected end:
//!
//! - *Invisible* (half of the seeds): up to three of a partition shorter
//!   than the reconnect deadline, a blip (a partition of a few
//!   milliseconds: the segments sent meanwhile are lost and the simulated
//!   TCP connection stalls for good), a hold (the link queues everything
//!   for a while, then delivers it), a reset of every connection between
//!   two hosts (a bounce of the link: it is back at once), a slow link, on
//!   top of the seed's latency. Every role completes, every value arrives
//!   exactly once and in order.
//! - *Long partition* (a quarter): one link is cut for longer than the
//!   reconnect deadline while it still has values to carry. The receiving
//!   end of that link ends with `ReconnectDeadline`; the two others then
//!   see their predecessor leave (`Closed`).
//! - *Crash* (a quarter): a host crashes while the ring runs and restarts
//!   within the reconnect deadline (or at once, for half of them: a
//!   bounce of the host), with none of its state. Its new run dials its
//!   successor afresh and meets the successor's live session, which
//!   refuses it as restarted before greeting it: the new run ends with
//!   `RefusedByPeer` of reason `PeerRestarted`, the successor with
//!   `PeerRestarted`, the predecessor sees the successor leave
//!   (`Closed`), and the new run never gets a session: nothing resumes
//!   silently.
//!
//! A seed that ends otherwise, takes more than a bound of simulated time
//! or panics anywhere (a task the resume or net crate spawned included)
//! fails, printing its schedule and the command that reruns it alone:
//!
//! ```sh
//! RUMPSTEAK_SIM_SEED=<seed> cargo test -p rumpsteak-aura-reliability --test resume_simulation -- --nocapture
//! ```
//!
//! The default run takes `SEEDS` seeds; `stress_resume_simulation_many_seeds`
//! (`#[ignore]`) takes `STRESS_SEEDS`.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use common::sim::{
    PORT, ROLES, Rng, Role, SimConnector, SimListener, addr_of, clear_resets, count_panics,
    next_due, no_panics_since, panics, read_since_reset, reset, role, run_or_panic, seeds,
    simulation, step, watch,
};
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_resume::{
    RejectReason, ResumableSession, ResumeConfig, ResumeError, ResumeListener, link_options,
};
use rumpsteak_aura_transport::{TransportError, TransportErrorKind};

/// Seeds in the default test run.
const SEEDS: u64 = 48;
/// Seeds in the stress run.
const STRESS_SEEDS: u64 = 2_000;
/// Values each role passes on.
const ROUNDS: u64 = 30;
/// The values that cross a link in a run of the ring.
const HOPS: u64 = 3 * ROUNDS;
/// The most values received when a fault that must end the ring starts.
const LATEST: u64 = HOPS - 6;
/// The session identifier of every link.
const SESSION: &str = "ring";
/// How long a resumable session waits for a new link.
const DEADLINE: Duration = Duration::from_secs(8);
/// The simulated time within which every role must have ended: the ring
/// runs a few seconds at most, a fault lasts the reconnect deadline plus
/// 6 s at most, and the longest wait after that is a reconnect deadline
/// (the others are shorter), so 60 s means something hangs.
const BOUND: Duration = Duration::from_secs(60);

/// The net crate's options of every link: handshake and connect
/// timeouts that a dial through a partition soon hits (and is retried),
/// but that a dial over the slowest link (400 ms each way) passes; no read
/// deadline (the resumable session's idle timeout watches the link).
/// `link_options` announces the resumable wire version.
fn options() -> TcpOptions {
    link_options(
        TcpOptions::new()
            .with_session_id(SESSION)
            .with_handshake_timeout(Duration::from_secs(3))
            .with_connect_timeout(Duration::from_secs(2))
            .with_linger(Duration::from_millis(100)),
    )
}

/// The resume settings: a heartbeat every 200 ms and a link silent for
/// 2 s given up (a stalled simulated connection says nothing; the
/// slowest link takes 800 ms for a round trip), backoff up to 500 ms, and
/// the reconnect deadline.
fn settings(config: ResumeConfig) -> ResumeConfig {
    config
        .with_heartbeat(Duration::from_millis(200), Duration::from_secs(2))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(500))
        .with_exchange_timeout(Duration::from_secs(3))
        .with_reconnect_deadline(DEADLINE)
}

/// How one run of a role's software ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Every value received, in order, and passed on.
    Complete,
    /// A session ended with this bound.
    Bound(Bound),
    /// The predecessor left orderly before sending everything.
    Closed,
    /// Anything else: no fault of the simulation causes it.
    Other(String),
}

/// The bounds a fault of the simulation may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// `ResumeError::ReconnectDeadline`.
    ReconnectDeadline,
    /// `ResumeError::PeerRestarted`: this side refused a restarted peer.
    PeerRestarted,
    /// `ResumeError::UnknownSession`: the peer resumes a session this
    /// side does not have (this side restarted).
    UnknownSession,
    /// `ResumeError::RefusedByPeer` of reason `PeerRestarted`: the peer
    /// refused this side as restarted.
    RefusedAsRestarted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Complete => write!(f, "complete"),
            Outcome::Bound(b) => write!(f, "{b:?}"),
            Outcome::Closed => write!(f, "closed"),
            Outcome::Other(e) => write!(f, "other error ({e})"),
        }
    }
}

impl Outcome {
    fn of_resume(e: &ResumeError) -> Outcome {
        match e {
            ResumeError::ReconnectDeadline { .. } => Outcome::Bound(Bound::ReconnectDeadline),
            ResumeError::PeerRestarted { .. } => Outcome::Bound(Bound::PeerRestarted),
            ResumeError::UnknownSession { .. } => Outcome::Bound(Bound::UnknownSession),
            ResumeError::RefusedByPeer {
                reason: RejectReason::PeerRestarted,
                ..
            } => Outcome::Bound(Bound::RefusedAsRestarted),
            other => Outcome::Other(other.to_string()),
        }
    }

    fn of(e: &TransportError) -> Outcome {
        if let Some(resume) = ResumeError::of(e) {
            return Outcome::of_resume(resume);
        }
        match e.kind() {
            TransportErrorKind::Closed => Outcome::Closed,
            _ => Outcome::Other(e.to_string()),
        }
    }
}

/// Where a role stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Running,
    Ended(Outcome),
    /// Crashed and not (yet) restarted.
    Down,
}

/// Every role's state, shared by the hosts, the watcher and the fault
/// schedule (all on this thread).
#[derive(Default)]
struct Board {
    states: RefCell<BTreeMap<Role, State>>,
    starts: RefCell<BTreeMap<Role, u32>>,
    /// Sessions each role's latest run got (both at most).
    sessions: RefCell<BTreeMap<Role, u32>>,
    /// Resumptions of every session of the roles that completed.
    resumptions: Cell<u64>,
    /// Values received so far, by every role and run: the ring's progress,
    /// which the faults start at.
    received: Cell<u64>,
    faults_over: Cell<bool>,
    /// For a test of the checks: Bob's first run spawns a task that panics.
    panic_in_a_task: Cell<bool>,
}

impl Board {
    fn set(&self, role: Role, state: State) {
        self.states.borrow_mut().insert(role, state);
    }

    /// Every role ended and no fault is still to come.
    fn settled(&self) -> bool {
        self.faults_over.get() && self.all_ended()
    }

    /// Every role ended (faults still to come or not).
    fn all_ended(&self) -> bool {
        let states = self.states.borrow();
        ROLES
            .iter()
            .all(|r| matches!(states.get(r), Some(State::Ended(_))))
    }

    fn outcome(&self, role: Role) -> Option<Outcome> {
        match self.states.borrow().get(&role) {
            Some(State::Ended(o)) => Some(o.clone()),
            _ => None,
        }
    }

    fn summary(&self) -> String {
        let states = self.states.borrow();
        let starts = self.starts.borrow();
        ROLES
            .iter()
            .map(|r| {
                let state = match states.get(r) {
                    Some(State::Ended(o)) => o.to_string(),
                    Some(s) => format!("{s:?}").to_lowercase(),
                    None => "never started".into(),
                };
                let n = starts.get(r).copied().unwrap_or(0);
                format!("{}: {state}, {n} start(s)", r.name())
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn value(frame: &[u8]) -> Result<u64, Outcome> {
    let bytes: [u8; 8] = frame.try_into().map_err(|_| {
        Outcome::Other(format!(
            "a frame of {} bytes where 8 were sent",
            frame.len()
        ))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// One run of a role's software: a resumable session to the next role
/// (dialed) and one from the previous role (accepted at `listener`), then
/// `ROUNDS` values along the ring. Alice starts each round and checks
/// what comes back; Bob and Carol check what arrives and add 1000.
async fn run_role(me: Role, listener: &ResumeListener, board: &Board) -> Result<(), Outcome> {
    let next = me.next();
    let redial = move || async move {
        tcp::connect_with(
            &SimConnector,
            addr_of(next),
            me.name(),
            next.name(),
            &options(),
        )
        .await
    };
    let config = settings(ResumeConfig::new(SESSION, me.name(), next.name()));
    let (out, inc) = tokio::try_join!(
        async {
            ResumableSession::open(redial, config)
                .await
                .map_err(|e| Outcome::of_resume(&e))
        },
        async {
            listener
                .accept(me.prev().name())
                .await
                .map_err(|e| Outcome::of_resume(&e))
        },
    )?;
    board.sessions.borrow_mut().insert(me, 2);
    let handles = [out.handle(), inc.handle()];
    let (mut out, mut inc) = (out.into_session(), inc.into_session());
    for round in 0..ROUNDS {
        let (expected, pass_on) = match me {
            Role::Alice => {
                out.send_frame(round.to_be_bytes().to_vec())
                    .await
                    .map_err(|e| Outcome::of(&e))?;
                (round + 2000, None)
            }
            Role::Bob => (round, Some(round + 1000)),
            Role::Carol => (round + 1000, Some(round + 2000)),
        };
        let got = value(&inc.recv_frame().await.map_err(|e| Outcome::of(&e))?)?;
        board.received.set(board.received.get() + 1);
        if got != expected {
            return Err(Outcome::Other(format!(
                "{me:?} got {got} in round {round}, expected {expected}"
            )));
        }
        if let Some(v) = pass_on {
            out.send_frame(v.to_be_bytes().to_vec())
                .await
                .map_err(|e| Outcome::of(&e))?;
        }
    }
    // Exactly once: nothing more arrived than the values checked above,
    // and every value sent was counted once.
    let [sent, received] = [handles[0].stats(), handles[1].stats()];
    if received.frames_received != ROUNDS || sent.frames_sent != ROUNDS {
        return Err(Outcome::Other(format!(
            "{me:?} counts {} frames received and {} sent, expected {ROUNDS}",
            received.frames_received, sent.frames_sent
        )));
    }
    board
        .resumptions
        .set(board.resumptions.get() + sent.reconnects + received.reconnects);
    Ok(())
}

/// A host's software: binds, routes, runs the role once, then stays up
/// (its sessions deliver what is left, its listener keeps routing) until
/// the simulation ends.
async fn host(me: Role, board: Rc<Board>) -> turmoil::Result {
    *board.starts.borrow_mut().entry(me).or_default() += 1;
    board.sessions.borrow_mut().insert(me, 0);
    board.set(me, State::Running);
    let first_run = board.starts.borrow()[&me] == 1;
    if me == Role::Bob && first_run && board.panic_in_a_task.get() {
        tokio::spawn(async { panic!("a spawned task panics (test of the checks)") });
    }
    let outcome = async {
        let bound = turmoil::net::TcpListener::bind(("0.0.0.0", PORT))
            .await
            .map_err(|e| Outcome::Other(format!("bind: {e}")))?;
        let sessions = SessionListener::from_listen(SimListener(bound), me.name(), &options())
            .map_err(|e| Outcome::Other(format!("listen: {e}")))?;
        let listener = ResumeListener::new(
            sessions,
            settings(ResumeConfig::new(SESSION, me.name(), "")),
            &[me.prev().name()],
        );
        let ran = run_role(me, &listener, &board).await;
        Ok::<_, Outcome>((ran, listener))
    }
    .await;
    let (state, _listener) = match outcome {
        Ok((Ok(()), listener)) => (State::Ended(Outcome::Complete), Some(listener)),
        Ok((Err(o), listener)) => (State::Ended(o), Some(listener)),
        Err(o) => (State::Ended(o), None),
    };
    board.set(me, state);
    std::future::pending::<()>().await;
    Ok(())
}

// The faults.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The link between two hosts drops everything for a while, shorter
    /// than the reconnect deadline.
    Partition(Role, Role, Duration),
    /// The link drops everything for a few milliseconds.
    Blip(Role, Role, Duration),
    /// The link holds everything for a while, then delivers it.
    Hold(Role, Role, Duration),
    /// Every connection between two hosts is reset at once (what it
    /// still carried is lost); new ones work.
    Reset(Role, Role),
    /// One link gets slow for the rest of the run.
    SlowLink(Role, Role, Duration),
    /// The link drops everything for longer than the reconnect deadline.
    LongPartition(Role, Role, Duration),
    /// A host crashes, and restarts after a while (within the deadline).
    Crash(Role, Duration),
    /// A host restarts at once.
    Bounce(Role),
}

/// What a seed's faults must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Invisible,
    LongPartition,
    Crash,
}

/// What one seed does: the network's latency and its faults, each
/// starting once the ring has received a number of values.
#[derive(Debug)]
struct Schedule {
    class: Class,
    max_latency: Duration,
    /// Each fault after how many values received.
    faults: Vec<(u64, Fault)>,
}

/// Two distinct roles (every two are neighbours in a ring of three).
fn pair(rng: &mut Rng) -> (Role, Role) {
    let a = role(rng);
    let b = role(rng);
    (a, if a == b { a.next() } else { b })
}

impl Schedule {
    fn of(seed: u64) -> Schedule {
        let mut rng = Rng(seed);
        let max_latency = rng.millis(1, 40);
        let class = match seed % 4 {
            0 | 1 => Class::Invisible,
            2 => Class::LongPartition,
            _ => Class::Crash,
        };
        // A fault that must end the ring starts once every session is up
        // (two values received: each role's sessions are up before it
        // first sends or receives) and early enough that every role still
        // has a value to receive that the fault holds up: after the fault
        // starts, at most the next three values cross (one already in
        // flight on the cut link, two on the others), and the three after
        // them must be left.
        let late = 2 + rng.below(LATEST - 1);
        let faults = match class {
            Class::Invisible => {
                let count = 1 + rng.below(3);
                let mut faults: Vec<(u64, Fault)> = (0..count)
                    .map(|_| {
                        // One fault in four while the ring forms (the
                        // handshakes and first resume exchanges).
                        let after = match rng.below(4) {
                            0 => 0,
                            _ => rng.below(HOPS),
                        };
                        let (a, b) = pair(&mut rng);
                        let fault = match rng.below(5) {
                            0 => Fault::Partition(a, b, rng.millis(100, 3000)),
                            1 => Fault::Blip(a, b, rng.millis(1, 30)),
                            2 => Fault::Hold(a, b, rng.millis(100, 2000)),
                            3 => Fault::Reset(a, b),
                            _ => Fault::SlowLink(a, b, rng.millis(50, 400)),
                        };
                        (after, fault)
                    })
                    .collect();
                faults.sort_by_key(|(after, _)| *after);
                faults
            }
            Class::LongPartition => {
                let (a, b) = pair(&mut rng);
                let lasts = DEADLINE + rng.millis(2000, 6000);
                vec![(late, Fault::LongPartition(a, b, lasts))]
            }
            Class::Crash => {
                // A crash in seeds 3 modulo 8, a bounce in seeds 7.
                let r = role(&mut rng);
                let fault = match seed % 8 {
                    3 => Fault::Crash(r, rng.millis(100, 4000)),
                    _ => Fault::Bounce(r),
                };
                vec![(late, fault)]
            }
        };
        Schedule {
            class,
            max_latency,
            faults,
        }
    }

    /// Every role's expected end.
    fn expected(&self) -> BTreeMap<Role, Outcome> {
        let mut expected: BTreeMap<Role, Outcome> =
            ROLES.iter().map(|&r| (r, Outcome::Complete)).collect();
        match self.faults.first() {
            Some((_, Fault::LongPartition(a, b, _))) => {
                // The link runs from `from` to `to`; `to` waits on it
                // until the deadline, then leaves, and so does the next.
                let (from, to) = if a.next() == *b { (*a, *b) } else { (*b, *a) };
                expected.insert(to, Outcome::Bound(Bound::ReconnectDeadline));
                expected.insert(to.next(), Outcome::Closed);
                expected.insert(from, Outcome::Closed);
            }
            Some((_, Fault::Crash(r, _) | Fault::Bounce(r))) => {
                // The restarted role dials its successor afresh; the
                // successor's live session gets the reconnection and
                // refuses it as restarted before greeting it. So the
                // restarted role ends refused as restarted, the successor
                // with `PeerRestarted`, and the predecessor sees the
                // successor leave.
                expected.insert(*r, Outcome::Bound(Bound::RefusedAsRestarted));
                expected.insert(r.next(), Outcome::Bound(Bound::PeerRestarted));
                expected.insert(r.prev(), Outcome::Closed);
            }
            _ => {}
        }
        expected
    }
}

/// The end of a fault, at a time.
enum Action {
    Repair(Role, Role),
    Release(Role, Role),
    Restart(Role),
}

/// What a seed's run ended with.
#[derive(Debug)]
struct Run {
    /// One line: every role's end, for comparing two runs of a seed.
    summary: String,
    class: Class,
    /// Resumptions counted by the roles that completed.
    resumptions: u64,
}

/// Runs one seed; panics (after printing the seed) if it does not end as
/// expected.
fn run_seed(seed: u64) -> Run {
    run_or_panic(|| simulate(seed, false), |why| failed(seed, why))
}

fn failed(seed: u64, why: &str) -> String {
    format!(
        "resume simulation seed {seed} failed: {why}\n  schedule: {:?}\n  rerun: RUMPSTEAK_SIM_SEED={seed} cargo test -p rumpsteak-aura-reliability --test resume_simulation -- --nocapture",
        Schedule::of(seed)
    )
}

/// Runs one seed; with `panic_in_a_task`, Bob's first run spawns a task
/// that panics (for the test of that check).
fn simulate(seed: u64, panic_in_a_task: bool) -> Result<Run, String> {
    count_panics();
    clear_resets();
    let panics_before = panics();
    let schedule = Schedule::of(seed);
    let mut sim = simulation(seed, BOUND, schedule.max_latency);
    let board = Rc::new(Board::default());
    board.panic_in_a_task.set(panic_in_a_task);
    for role in ROLES {
        let board = Rc::clone(&board);
        sim.host(role.host(), move || host(role, Rc::clone(&board)));
    }
    let watched = Rc::clone(&board);
    watch(&mut sim, move || watched.settled());

    let mut to_start: VecDeque<(u64, Fault)> = schedule.faults.iter().copied().collect();
    // The ends of the faults that started, by time (and order of start).
    let mut ends: BTreeMap<(Duration, usize), Action> = BTreeMap::new();
    let mut started = 0;
    loop {
        while let Some(&(after, fault)) = to_start.front() {
            // Not before every role has started, nor before the ring has
            // received `after` values.
            let all_started = board.starts.borrow().len() == ROLES.len();
            if !all_started || board.received.get() < after {
                break;
            }
            // A reset ends the connections made so far: one due while the
            // ring forms waits for the pair's first link to be up and read,
            // else it would find nothing to end.
            if let Fault::Reset(a, b) = fault
                && !read_since_reset(sim.lookup(a.host()), sim.lookup(b.host()))
            {
                if board.all_ended() {
                    return Err(format!(
                        "the reset of {a:?} and {b:?} found no connection before every role ended"
                    ));
                }
                break;
            }
            to_start.pop_front();
            let received = board.received.get();
            if schedule.class != Class::Invisible && received > LATEST {
                return Err(format!(
                    "the fault started after {received} values, too late to end the ring"
                ));
            }
            let (now, n) = (sim.elapsed(), started);
            started += 1;
            match fault {
                Fault::Partition(a, b, lasts)
                | Fault::Blip(a, b, lasts)
                | Fault::LongPartition(a, b, lasts) => {
                    sim.partition(a.host(), b.host());
                    ends.insert((now + lasts, n), Action::Repair(a, b));
                }
                Fault::Hold(a, b, lasts) => {
                    sim.hold(a.host(), b.host());
                    ends.insert((now + lasts, n), Action::Release(a, b));
                }
                Fault::SlowLink(a, b, latency) => sim.set_link_latency(a.host(), b.host(), latency),
                Fault::Reset(a, b) => reset(sim.lookup(a.host()), sim.lookup(b.host())),
                Fault::Crash(r, down) => {
                    sim.crash(r.host());
                    board.set(r, State::Down);
                    ends.insert((now + down, n), Action::Restart(r));
                }
                Fault::Bounce(r) => sim.bounce(r.host()),
            }
        }
        while let Some(action) = next_due(&mut ends, sim.elapsed()) {
            match action {
                Action::Repair(a, b) => sim.repair(a.host(), b.host()),
                Action::Release(a, b) => sim.release(a.host(), b.host()),
                Action::Restart(r) => sim.bounce(r.host()),
            }
        }
        if to_start.is_empty() && ends.is_empty() {
            board.faults_over.set(true);
        }
        if step(&mut sim, || board.summary())? {
            break;
        }
    }

    // The sessions' driver tasks outlive the roles' runs: end every host
    // here, inside the simulation (a runtime dropped with the simulation
    // drops their simulated sockets outside it, which turmoil cannot do),
    // so that a panic in that teardown counts too.
    for role in ROLES {
        if sim.is_host_running(role.host()) {
            sim.crash(role.host());
        }
    }
    no_panics_since(panics_before, || board.summary())?;
    for (role, expected) in schedule.expected() {
        let got = board.outcome(role);
        if got.as_ref() != Some(&expected) {
            return Err(format!(
                "{role:?} ended {got:?}, expected {expected}; roles: {}",
                board.summary()
            ));
        }
    }
    if let Some((_, Fault::Crash(r, _) | Fault::Bounce(r))) = schedule.faults.first() {
        // The restarted run resumed nothing: it got no session at all.
        let sessions = board.sessions.borrow()[r];
        let starts = board.starts.borrow()[r];
        if sessions != 0 || starts != 2 {
            return Err(format!(
                "{r:?} restarted ({starts} starts) and got {sessions} session(s)"
            ));
        }
    }
    Ok(Run {
        summary: format!("{} at {:?}", board.summary(), sim.elapsed()),
        class: schedule.class,
        resumptions: board.resumptions.get(),
    })
}

fn run_all(count: u64) {
    let seeds = seeds(count);
    let mut by_class: BTreeMap<&str, u64> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut resumptions = 0;
    for &seed in &seeds {
        let run = run_seed(seed);
        if seeds.len() == 1 {
            println!(
                "seed {seed}: {:?}\n  {}; {} resumptions",
                Schedule::of(seed),
                run.summary,
                run.resumptions
            );
        }
        *by_class.entry(class_name(run.class)).or_default() += 1;
        for (_, fault) in Schedule::of(seed).faults {
            *kinds.entry(kind_name(&fault)).or_default() += 1;
        }
        if run.class == Class::Invisible {
            resumptions += run.resumptions;
        }
    }
    println!(
        "{} seeds, each ended as expected: {by_class:?}; faults: {kinds:?}; {resumptions} resumptions in the seeds whose faults are invisible",
        seeds.len()
    );
    if seeds.len() > 1 {
        // The invisible faults must bite: sessions resumed under them.
        assert!(resumptions > 0, "no session resumed");
        // Every kind of fault, several times.
        assert_eq!(kinds.len(), 8, "a kind of fault is missing: {kinds:?}");
        assert!(kinds.values().all(|&n| n >= 3), "{kinds:?}");
    }
}

fn class_name(class: Class) -> &'static str {
    match class {
        Class::Invisible => "invisible",
        Class::LongPartition => "long partition",
        Class::Crash => "crash",
    }
}

fn kind_name(fault: &Fault) -> &'static str {
    match fault {
        Fault::Partition(..) => "partition",
        Fault::Blip(..) => "blip",
        Fault::Hold(..) => "hold",
        Fault::SlowLink(..) => "slow link",
        Fault::Reset(..) => "reset",
        Fault::LongPartition(..) => "long partition",
        Fault::Crash(..) => "crash",
        Fault::Bounce(..) => "bounce",
    }
}

#[test]
fn every_seed_ends_as_its_faults_require() {
    run_all(SEEDS);
}

#[test]
fn a_seed_runs_the_same_every_time() {
    // The first seed with each kind of fault, run twice.
    let mut picked = Vec::new();
    let mut seeds = Vec::new();
    for seed in 0..SEEDS {
        for (_, fault) in Schedule::of(seed).faults {
            let kind = kind_name(&fault);
            if !picked.contains(&kind) {
                picked.push(kind);
                seeds.push(seed);
            }
        }
    }
    assert_eq!(picked.len(), 8, "a kind of fault is missing: {picked:?}");
    seeds.dedup();
    for seed in seeds {
        let first = run_seed(seed);
        let second = run_seed(seed);
        // Every role's end, the simulated time it took, and how many times
        // the sessions of the roles that completed resumed.
        assert_eq!(
            (&first.summary, first.resumptions),
            (&second.summary, second.resumptions),
            "seed {seed} is not deterministic"
        );
    }
}

#[test]
fn a_panic_in_a_spawned_task_fails_the_seed() {
    // Seed 0's faults are invisible: every role completes. A task that
    // panics ends only itself, so the roles still complete: the seed must
    // fail all the same.
    let run = simulate(0, false).unwrap();
    assert_eq!(run.class, Class::Invisible);
    let err = simulate(0, true).unwrap_err();
    assert!(err.contains("panicked"), "{err}");
}

#[test]
fn the_expected_ends_name_the_bound() {
    // A long partition of Alice → Bob: Bob hits the deadline, Carol and
    // Alice see their predecessor leave.
    let partition = Schedule {
        class: Class::LongPartition,
        max_latency: Duration::from_millis(1),
        faults: vec![(
            5,
            Fault::LongPartition(Role::Bob, Role::Alice, Duration::from_secs(12)),
        )],
    };
    let expected = partition.expected();
    assert_eq!(
        expected[&Role::Bob],
        Outcome::Bound(Bound::ReconnectDeadline)
    );
    assert_eq!(expected[&Role::Carol], Outcome::Closed);
    assert_eq!(expected[&Role::Alice], Outcome::Closed);
    // A crash of Carol: Alice refuses the new Carol as restarted, Bob sees
    // Alice leave.
    let crash = Schedule {
        class: Class::Crash,
        max_latency: Duration::from_millis(1),
        faults: vec![(5, Fault::Crash(Role::Carol, Duration::from_secs(1)))],
    };
    let expected = crash.expected();
    assert_eq!(
        expected[&Role::Carol],
        Outcome::Bound(Bound::RefusedAsRestarted)
    );
    assert_eq!(expected[&Role::Alice], Outcome::Bound(Bound::PeerRestarted));
    assert_eq!(expected[&Role::Bob], Outcome::Closed);
    // Another error than the bound is never taken for it.
    let other = ResumeError::ReplayOverflow {
        limit: rumpsteak_aura_resume::ReplayLimit::Frames(1),
    };
    assert!(matches!(Outcome::of_resume(&other), Outcome::Other(_)));
    let refused = |reason| ResumeError::RefusedByPeer {
        reason,
        detail: String::new(),
    };
    assert!(matches!(
        Outcome::of_resume(&refused(RejectReason::UnknownSession)),
        Outcome::Other(_)
    ));
    assert_eq!(
        Outcome::of_resume(&refused(RejectReason::PeerRestarted)),
        Outcome::Bound(Bound::RefusedAsRestarted)
    );
    assert_eq!(Outcome::of(&TransportError::closed()), Outcome::Closed);
}

#[test]
#[ignore = "stress: many seeds; run with --ignored"]
fn stress_resume_simulation_many_seeds() {
    run_all(STRESS_SEEDS);
}
