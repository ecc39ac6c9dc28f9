//! Deterministic network simulation (turmoil): three roles in a ring,
//! Alice → Bob → Carol → Alice, each on a simulated host, over the net
//! crate's own TCP sessions (the same handshake and framing as over real
//! TCP: the simulated sockets go through `SessionListener::from_listen` and
//! `tcp::connect_with`; one seed in four over TLS), under partitions, host
//! crashes and restarts, and latency that each seed picks. Each fault
//! starts when the ring has passed a number of values that the seed picks
//! (so it lands while the ring forms or runs, not after it is over).
//!
//! For every seed, every role ends either complete (every value received,
//! in order, as sent) or holding one of the errors a fault can cause,
//! within a bound of simulated time, and nothing panicked, not even a task
//! the net crate spawned; a seed that breaks this is printed with the
//! command that reruns it alone:
//!
//! ```sh
//! RUMPSTEAK_SIM_SEED=<seed> cargo test -p rumpsteak-aura-reliability --test simulation -- --nocapture
//! ```
//!
//! The default run takes `SEEDS` seeds; `stress_simulation_many_seeds`
//! (`#[ignore]`) takes `STRESS_SEEDS`.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use common::sim::{
    PORT, ROLES, Rng, Role, SimConnector, SimListener, addr_of, count_panics, next_due,
    no_panics_since, panics, role, run_or_panic, seeds, simulation, step, watch,
};
use rumpsteak_aura::RefusalReason;
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_net::tls::TlsConfig;
use rumpsteak_aura_net::tls::dev::DevCa;
use rumpsteak_aura_transport::{RumpsteakSession, TransportError, TransportErrorKind};

/// Seeds in the default test run.
const SEEDS: u64 = 200;
/// Seeds in the stress run.
const STRESS_SEEDS: u64 = 5_000;
/// Values each role passes on.
const ROUNDS: u64 = 20;
/// The values that cross a link in a run of the ring: a fault starts
/// after fewer of them than this have been received.
const HOPS: u64 = 3 * ROUNDS;
/// The simulated time within which every role must have ended: a fault
/// starts while the ring runs (a few seconds at most) and lasts 3 s at
/// most, and a role's longest wait after that is bounded by its own
/// timeouts (dial retries 3 s, accept 3 s, read deadline 1 s, a restart
/// starts over), so 60 s means something hangs.
const BOUND: Duration = Duration::from_secs(60);

// The protocol.

/// How a role's run ended, short of completing.
#[derive(Debug)]
enum RoleError {
    /// A session operation, a dial or a handshake failed.
    Transport(TransportError),
    /// No predecessor connected within the accept timeout.
    NoPeer,
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleError::Transport(e) => write!(f, "{}", kind_name(e)),
            RoleError::NoPeer => write!(f, "no peer"),
        }
    }
}

impl From<TransportError> for RoleError {
    fn from(e: TransportError) -> Self {
        RoleError::Transport(e)
    }
}

impl RoleError {
    /// Whether a fault of the simulation can cause this error: a dial or
    /// a session cut, refused or gone silent, a handshake broken off, a
    /// listener gone (`ByPeer`), no peer. The roles, sessions and
    /// certificates are all right and TCP delivers the bytes sent, so a
    /// frame too large, a refused role, session, version or certificate,
    /// or another error means the transport got something wrong.
    fn caused_by_a_fault(&self) -> bool {
        match self {
            RoleError::NoPeer => true,
            RoleError::Transport(e) => match e.kind() {
                TransportErrorKind::Closed
                | TransportErrorKind::Io(_)
                | TransportErrorKind::ReadDeadline(_)
                | TransportErrorKind::Handshake(_) => true,
                TransportErrorKind::Refused(refusal) => refusal.reason() == RefusalReason::ByPeer,
                _ => false,
            },
        }
    }
}

/// A short name of an error's kind, for the seed's summary.
fn kind_name(e: &TransportError) -> String {
    match e.kind() {
        TransportErrorKind::Io(io) => format!("io {:?}", io.kind()),
        TransportErrorKind::Closed => "closed".into(),
        TransportErrorKind::ReadDeadline(_) => "read deadline".into(),
        TransportErrorKind::Handshake(_) => "handshake".into(),
        TransportErrorKind::Refused(_) => "refused".into(),
        other => format!("{other:?}"),
    }
}

/// Where a role stands.
#[derive(Debug)]
enum State {
    Running,
    Complete,
    Failed(RoleError),
    /// Crashed and not (yet) restarted.
    Down,
}

/// Every role's state and how often its software started, shared by the
/// hosts, the watcher and the fault schedule (all on this thread).
#[derive(Default)]
struct Board {
    states: RefCell<BTreeMap<Role, State>>,
    starts: RefCell<BTreeMap<Role, u32>>,
    /// Values received so far, by every role and run: the ring's progress,
    /// which the faults start at.
    received: Cell<u64>,
    /// The roles whose first run has ended (returned, or crashed).
    first_run_over: RefCell<BTreeSet<Role>>,
    faults_over: Cell<bool>,
    /// For a test of the checks: Bob's first run spawns a task that panics.
    panic_in_a_task: Cell<bool>,
}

impl Board {
    fn set(&self, role: Role, state: State) {
        self.states.borrow_mut().insert(role, state);
    }

    /// Some role is still in its first run: the ring forms or runs.
    fn ring_running(&self) -> bool {
        self.first_run_over.borrow().len() < ROLES.len()
    }

    /// Every role ended and no fault is still to come.
    fn settled(&self) -> bool {
        let states = self.states.borrow();
        self.faults_over.get()
            && ROLES.iter().all(|r| {
                matches!(
                    states.get(r),
                    Some(State::Complete | State::Failed(_) | State::Down)
                )
            })
    }

    fn summary(&self) -> String {
        let states = self.states.borrow();
        let starts = self.starts.borrow();
        ROLES
            .iter()
            .map(|r| {
                let state = match states.get(r) {
                    Some(State::Failed(e)) => format!("failed ({e})"),
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

fn options(tls: Option<TlsConfig>) -> TcpOptions {
    let options = match tls {
        Some(tls) => TcpOptions::new().with_tls(tls),
        None => TcpOptions::new(),
    };
    options
        .with_handshake_timeout(Duration::from_secs(1))
        .with_connect_timeout(Duration::from_millis(500))
        .with_read_deadline(Duration::from_millis(1000))
        .with_linger(Duration::from_millis(100))
}

/// Dials the next role, retrying for up to 3 s (it may not listen yet, or
/// be restarting); the last error if it never answers.
async fn dial(me: Role, options: &TcpOptions) -> Result<RumpsteakSession, RoleError> {
    let peer = me.next();
    let mut last = None;
    for _ in 0..12 {
        match tcp::connect_with(
            &SimConnector,
            addr_of(peer),
            me.name(),
            peer.name(),
            options,
        )
        .await
        {
            Ok(session) => return Ok(session),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(RoleError::Transport(
        last.unwrap_or_else(TransportError::closed),
    ))
}

/// Accepts the previous role within 3 s.
async fn accept(
    me: Role,
    listener: &SessionListener<SimListener>,
) -> Result<RumpsteakSession, RoleError> {
    let peer = me.prev();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, listener.accept(peer.name())).await {
            Ok(Ok(session)) => return Ok(session),
            // A handshake that failed (a restarting peer's old dial, say):
            // keep waiting for one that succeeds.
            Ok(Err(_)) => continue,
            Err(_) => return Err(RoleError::NoPeer),
        }
    }
}

fn value(frame: &[u8]) -> u64 {
    let bytes: [u8; 8] = frame
        .try_into()
        .unwrap_or_else(|_| panic!("a frame of {} bytes where 8 were sent", frame.len()));
    u64::from_be_bytes(bytes)
}

/// One run of a role's software: listen, connect both ways, then pass
/// `ROUNDS` values along the ring. Alice starts each round and checks what
/// comes back; Bob and Carol check what arrives and add 1000.
async fn run_role(me: Role, options: TcpOptions, board: &Board) -> Result<(), RoleError> {
    let bound = turmoil::net::TcpListener::bind(("0.0.0.0", PORT))
        .await
        .map_err(TransportError::io)?;
    let listener = SessionListener::from_listen(SimListener(bound), me.name(), &options)?;
    let (outgoing, incoming) = tokio::join!(dial(me, &options), accept(me, &listener));
    let (mut out, mut inc) = (outgoing?, incoming?);
    for round in 0..ROUNDS {
        if me == Role::Alice {
            out.send_frame(round.to_be_bytes().to_vec()).await?;
            let back = value(&inc.recv_frame().await?);
            board.received.set(board.received.get() + 1);
            assert_eq!(
                back,
                round + 2000,
                "Alice got a wrong value in round {round}"
            );
        } else {
            let offset = if me == Role::Bob { 0 } else { 1000 };
            let got = value(&inc.recv_frame().await?);
            board.received.set(board.received.get() + 1);
            assert_eq!(
                got,
                round + offset,
                "{me:?} got a wrong value in round {round}"
            );
            out.send_frame((got + 1000).to_be_bytes().to_vec()).await?;
        }
    }
    out.close();
    inc.close();
    Ok(())
}

/// A role's host software: one run, its outcome on the board, then idle
/// (so that its closing sessions can still tell their peers).
async fn host(me: Role, options: TcpOptions, board: Rc<Board>) -> turmoil::Result {
    let starts = {
        let mut starts = board.starts.borrow_mut();
        let n = starts.entry(me).or_insert(0);
        *n += 1;
        *n
    };
    board.set(me, State::Running);
    if me == Role::Bob && starts == 1 && board.panic_in_a_task.get() {
        tokio::spawn(async { panic!("a spawned task panicked (as the test asked)") });
    }
    let state = match run_role(me, options, &board).await {
        Ok(()) => State::Complete,
        Err(e) => State::Failed(e),
    };
    board.first_run_over.borrow_mut().insert(me);
    board.set(me, state);
    std::future::pending::<()>().await;
    Ok(())
}

// The faults.

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The link between two hosts drops everything for a while.
    Partition(Role, Role, Duration),
    /// A host crashes, and restarts after a while.
    Crash(Role, Duration),
    /// A host restarts at once.
    Bounce(Role),
    /// One link gets slow for the rest of the run.
    SlowLink(Role, Role, Duration),
}

/// What one seed does: the network's latency and up to three faults, each
/// starting once the ring has received a number of values (0 to
/// `HOPS - 1`: while the ring forms or runs), or at once if every role's
/// first run is over by then.
#[derive(Debug)]
struct Schedule {
    /// Sessions over TLS (every fourth seed).
    tls: bool,
    max_latency: Duration,
    /// Each fault after how many values received.
    faults: Vec<(u64, Fault)>,
}

impl Schedule {
    fn of(seed: u64) -> Schedule {
        let mut rng = Rng(seed);
        let max_latency = rng.millis(1, 40);
        let count = rng.below(4);
        let mut faults: Vec<(u64, Fault)> = (0..count)
            .map(|_| {
                // One fault in four while the ring forms (handshakes,
                // TLS), the others while it runs.
                let after = match rng.below(4) {
                    0 => 0,
                    _ => rng.below(HOPS),
                };
                let (a, b) = (role(&mut rng), role(&mut rng));
                let b = if a == b { a.next() } else { b };
                let fault = match rng.below(4) {
                    0 => Fault::Partition(a, b, rng.millis(100, 3000)),
                    1 => Fault::Crash(a, rng.millis(100, 3000)),
                    2 => Fault::Bounce(a),
                    _ => Fault::SlowLink(a, b, rng.millis(50, 400)),
                };
                (after, fault)
            })
            .collect();
        faults.sort_by_key(|(after, _)| *after);
        Schedule {
            tls: seed % 4 == 3,
            max_latency,
            faults,
        }
    }
}

/// The end of a fault, at a time.
enum Action {
    Repair(Role, Role),
    Restart(Role),
}

/// What a seed's run ended with.
#[derive(Debug)]
struct Run {
    /// One line: every role's end, for comparing two runs of a seed.
    summary: String,
    complete: usize,
    faults: usize,
    /// Faults that started while the ring formed or ran.
    faults_in_run: usize,
    /// Simulated time until every role had ended.
    elapsed: Duration,
    tls: bool,
}

/// Runs one seed; panics (after printing the seed) if a role neither
/// completes nor holds a typed error within the bound.
fn run_seed(seed: u64) -> Run {
    run_or_panic(|| simulate(seed), |why| failed(seed, why))
}

fn failed(seed: u64, why: &str) -> String {
    format!(
        "simulation seed {seed} failed: {why}\n  schedule: {:?}\n  rerun: RUMPSTEAK_SIM_SEED={seed} cargo test -p rumpsteak-aura-reliability --test simulation -- --nocapture",
        Schedule::of(seed)
    )
}

fn simulate(seed: u64) -> Result<Run, String> {
    simulate_with(seed, false)
}

/// Runs one seed; with `panic_in_a_task`, Bob's first run spawns a task
/// that panics (for the test of that check).
fn simulate_with(seed: u64, panic_in_a_task: bool) -> Result<Run, String> {
    count_panics();
    let panics_before = panics();
    let schedule = Schedule::of(seed);
    let mut sim = simulation(seed, BOUND, schedule.max_latency);
    let board = Rc::new(Board::default());
    board.panic_in_a_task.set(panic_in_a_task);
    // One seed in four runs its sessions over TLS, each role with a
    // certificate of one CA for its own role.
    let identities = schedule.tls.then(|| {
        let ca = DevCa::new("simulation CA").unwrap();
        ROLES
            .iter()
            .map(|&r| (r, ca.identity(r.name()).unwrap()))
            .collect::<BTreeMap<_, _>>()
    });
    for role in ROLES {
        let board = Rc::clone(&board);
        let options = options(identities.as_ref().map(|ids| ids[&role].clone()));
        sim.host(role.host(), move || {
            host(role, options.clone(), Rc::clone(&board))
        });
    }
    let watched = Rc::clone(&board);
    watch(&mut sim, move || watched.settled());

    let mut to_start: VecDeque<(u64, Fault)> = schedule.faults.iter().copied().collect();
    // The ends of the faults that started, by time (and order of start).
    let mut ends: BTreeMap<(Duration, usize), Action> = BTreeMap::new();
    let mut faults_in_run = 0;
    let mut started_faults = 0;

    loop {
        while let Some(&(after, fault)) = to_start.front() {
            let running = board.ring_running();
            // Not before every role has started (a bounce of a host whose
            // software has not run yet would do nothing), nor before the
            // ring has received `after` values.
            let started = board.starts.borrow().len() == ROLES.len();
            if running && (!started || board.received.get() < after) {
                break;
            }
            to_start.pop_front();
            if running {
                faults_in_run += 1;
            }
            let (now, n) = (sim.elapsed(), started_faults);
            started_faults += 1;
            match fault {
                Fault::Partition(a, b, lasts) => {
                    sim.partition(a.host(), b.host());
                    ends.insert((now + lasts, n), Action::Repair(a, b));
                }
                Fault::Crash(r, down) => {
                    sim.crash(r.host());
                    board.first_run_over.borrow_mut().insert(r);
                    board.set(r, State::Down);
                    ends.insert((now + down, n), Action::Restart(r));
                }
                Fault::Bounce(r) => {
                    board.first_run_over.borrow_mut().insert(r);
                    sim.bounce(r.host());
                }
                Fault::SlowLink(a, b, latency) => sim.set_link_latency(a.host(), b.host(), latency),
            }
        }
        while let Some(action) = next_due(&mut ends, sim.elapsed()) {
            match action {
                Action::Repair(a, b) => sim.repair(a.host(), b.host()),
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

    no_panics_since(panics_before, || board.summary())?;
    let states = board.states.borrow();
    let mut complete = 0;
    for role in ROLES {
        match states.get(&role) {
            Some(State::Complete) => complete += 1,
            Some(State::Failed(e)) if e.caused_by_a_fault() => {}
            other => return Err(format!("{role:?} ended {other:?}")),
        }
    }
    // A schedule whose faults all come after the ring is over tests
    // nothing but restarts of finished roles.
    if !schedule.faults.is_empty() && faults_in_run == 0 {
        return Err(format!(
            "no fault started while the ring ran; roles: {}",
            board.summary()
        ));
    }
    if schedule.faults.is_empty() && complete != 3 {
        return Err(format!(
            "without faults every role must complete; roles: {}",
            board.summary()
        ));
    }
    Ok(Run {
        summary: format!("{} at {:?}", board.summary(), sim.elapsed()),
        complete,
        faults: schedule.faults.len(),
        faults_in_run,
        elapsed: sim.elapsed(),
        tls: schedule.tls,
    })
}

fn run_all(count: u64) {
    let seeds = seeds(count);
    let mut all_complete = 0;
    let mut some_failed = 0;
    let mut with_faults = 0;
    let mut complete_despite_faults = 0;
    let (mut faults, mut faults_in_run) = (0, 0);
    let mut longest = (Duration::ZERO, 0);
    let (mut tls, mut tls_complete) = (0, 0);
    for &seed in &seeds {
        let run = run_seed(seed);
        if seeds.len() == 1 {
            println!("seed {seed}: {:?}\n  {}", Schedule::of(seed), run.summary);
        }
        if run.faults > 0 {
            with_faults += 1;
        }
        faults += run.faults;
        faults_in_run += run.faults_in_run;
        longest = longest.max((run.elapsed, seed));
        if run.tls {
            tls += 1;
            if run.complete == 3 {
                tls_complete += 1;
            }
        }
        if run.complete == 3 {
            all_complete += 1;
            if run.faults > 0 {
                complete_despite_faults += 1;
            }
        } else {
            some_failed += 1;
        }
    }
    println!(
        "{} seeds: {all_complete} with every role complete ({complete_despite_faults} of them despite faults), {some_failed} with a typed error somewhere, {with_faults} with faults ({faults} faults, {faults_in_run} of them while the ring ran), {tls} over TLS ({tls_complete} of them complete); the longest, seed {}, ended after {:?} of simulated time (bound {BOUND:?})",
        seeds.len(),
        longest.1,
        longest.0,
    );
    if seeds.len() > 1 {
        // The faults must bite, and some runs must get through them (a
        // slow link, a partition healed in time): otherwise the schedule
        // tests nothing.
        assert!(some_failed > 0, "no seed's faults caused an error");
        assert!(complete_despite_faults > 0, "no seed with faults completed");
        assert!(tls_complete > 0, "no seed over TLS completed");
    }
}

#[test]
fn every_role_completes_or_holds_a_typed_error_for_every_seed() {
    run_all(SEEDS);
}

#[test]
fn a_seed_runs_the_same_every_time() {
    // For each kind of fault, the first seed with one over plain TCP and
    // the first over TLS, compared over two runs.
    let kind = |f: &Fault| std::mem::discriminant(f);
    let mut picked: Vec<(bool, std::mem::Discriminant<Fault>)> = Vec::new();
    let mut seeds = Vec::new();
    for seed in 0..SEEDS {
        let schedule = Schedule::of(seed);
        for (_, fault) in &schedule.faults {
            let key = (schedule.tls, kind(fault));
            if !picked.contains(&key) {
                picked.push(key);
                seeds.push(seed);
            }
        }
    }
    assert_eq!(picked.len(), 8, "a kind of fault is missing: {picked:?}");
    seeds.dedup();
    for seed in seeds {
        let first = run_seed(seed);
        let second = run_seed(seed);
        assert_eq!(
            first.summary, second.summary,
            "seed {seed} is not deterministic"
        );
    }
}

#[test]
fn a_panic_in_a_spawned_task_fails_the_seed() {
    // Seed 0 has no faults and completes; a task that panics (as one of
    // the net crate's handshake or writer tasks might on a peer's input)
    // ends only itself, so the roles still end well: the seed must fail
    // all the same.
    let run = simulate(0).unwrap();
    assert_eq!(run.complete, 3);
    let err = simulate_with(0, true).unwrap_err();
    assert!(err.contains("panicked"), "{err}");
}

#[test]
fn only_the_errors_a_fault_can_cause_pass() {
    let io = TransportError::io(io::Error::from(io::ErrorKind::ConnectionReset));
    assert!(RoleError::Transport(io).caused_by_a_fault());
    assert!(RoleError::Transport(TransportError::closed()).caused_by_a_fault());
    assert!(RoleError::NoPeer.caused_by_a_fault());
    // A frame larger than the limit over a link that loses nothing is a
    // framing bug, not a fault.
    let too_large = TransportError::from(TransportErrorKind::FrameTooLarge {
        size: 1 << 20,
        limit: 1 << 16,
    });
    assert!(!RoleError::Transport(too_large).caused_by_a_fault());
    let other = TransportError::other(io::Error::other("a custom transport's error"));
    assert!(!RoleError::Transport(other).caused_by_a_fault());
}

#[test]
#[ignore = "stress: many seeds; run with --ignored"]
fn stress_simulation_many_seeds() {
    run_all(STRESS_SEEDS);
}
