//! A role family: a coordinator scatters work to `n` workers, where `n` is
//! chosen at run time, gathers their results, and announces to every
//! worker whether another round comes.
//!
//! The protocol declares the family once (`roles Coordinator, Worker[n];`)
//! and says what each member does with `foreach Worker[i] { ... }`. It is
//! projected once for the family (every worker's local type is the same)
//! and once for the coordinator, whose local type has `foreach` rounds.
//! For each run, `Protocol::monitor_instance` unrolls the coordinator's
//! local type for the chosen `n`, and gives each worker the monitor of its
//! own member, `Worker[i]`: every step of every role is checked before it
//! reaches the channel. The example runs with 1, 3 and 50 workers in
//! memory, then with 3 workers over loopback TCP sessions wired by
//! `tcp::Mesh` (a member's address is the table entry of its member name,
//! `Worker[i]`), and checks every time that every role reached its end.
//!
//! Run it with `cargo run --example family_scatter_gather`.

mod common;

use std::fmt;

use common::{BoxError, finish};
use rumpsteak_aura_choreography::effects::handlers::rumpsteak::{
    RumpsteakEndpoint, RumpsteakHandler, SimpleChannel,
};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_choreography::protocol::Protocol;
use rumpsteak_aura_choreography::transport::tcp::Mesh;
use serde::{Deserialize, Serialize};

// ANCHOR: protocol
/// Rounds of scatter and gather, until the coordinator says stop.
const SCATTER_GATHER: &str = "
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
// ANCHOR_END: protocol

/// The coordinator, or one worker by its index.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Coordinator,
    Worker(usize),
}

// ANCHOR: role_names
/// A monitor knows a role by its `Debug` form, which for a member of a
/// family is the protocol's member name, `Worker[3]`.
impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Coordinator => f.write_str("Coordinator"),
            Role::Worker(i) => f.write_str(&rumpsteak_aura_choreography::protocol::member_name(
                "Worker", *i,
            )),
        }
    }
}
// ANCHOR_END: role_names

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

type Handler = RumpsteakHandler<Role, ()>;
type Endpoint = RumpsteakEndpoint<Role>;

const WORK: Label = Label("work");
const STOP: Label = Label("stop");

/// The numbers one worker adds up in one round.
#[derive(Debug, Serialize, Deserialize)]
struct Task {
    numbers: Vec<u64>,
}

/// One worker's result for one round.
#[derive(Debug, Serialize, Deserialize)]
struct Sum(u64);

/// The end: no payload, so the message goes by its label.
#[derive(Debug, Serialize, Deserialize)]
struct Stop;

/// How many rounds the coordinator runs.
const ROUNDS: u64 = 2;

/// The numbers of round `round` for worker `i`.
fn numbers(round: u64, i: usize) -> Vec<u64> {
    let base = round * 1000 + i as u64 * 10;
    (base..base + 4).collect()
}

// ANCHOR: coordinator
async fn coordinator(mut ep: Endpoint, n: usize) -> Result<(Endpoint, u64), ChoreographyError> {
    let mut h = Handler::new();
    let workers: Vec<Role> = (0..n).map(Role::Worker).collect();
    let mut total = 0;
    for round in 0..ROUNDS {
        // The choice is told to every member, then the rounds go member by
        // member, as the unrolled local type says.
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
// ANCHOR_END: coordinator

// ANCHOR: worker
async fn worker(mut ep: Endpoint) -> Result<(Endpoint, usize), ChoreographyError> {
    let mut h = Handler::new();
    let mut rounds = 0;
    loop {
        let label = h.offer(&mut ep, Role::Coordinator).await?;
        if label == STOP {
            let Stop = h.recv(&mut ep, Role::Coordinator).await?;
            return Ok((ep, rounds));
        }
        let task: Task = h.recv(&mut ep, Role::Coordinator).await?;
        let sum = Sum(task.numbers.iter().sum());
        h.send(&mut ep, Role::Coordinator, &sum).await?;
        rounds += 1;
    }
}
// ANCHOR_END: worker

// ANCHOR: endpoints
/// The coordinator's endpoint and one per worker, each connected to the
/// coordinator in memory and carrying the monitor of its concrete role
/// for a family of `n`.
fn endpoints(protocol: &Protocol, n: usize) -> Result<(Endpoint, Vec<Endpoint>), BoxError> {
    let sizes = [("Worker", n)];
    let mut coordinator = Endpoint::new(Role::Coordinator);
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let role = Role::Worker(i);
        let mut ep = Endpoint::new(role);
        let (to_worker, to_coordinator) = SimpleChannel::pair();
        coordinator.register_channel(role, to_worker);
        ep.register_channel(Role::Coordinator, to_coordinator);
        let monitor = protocol.monitor_instance(&format!("{role:?}"), &sizes)?;
        workers.push(ep.with_protocol(monitor));
    }
    let monitor = protocol.monitor_instance("Coordinator", &sizes)?;
    Ok((coordinator.with_protocol(monitor), workers))
}
// ANCHOR_END: endpoints

/// The same endpoints as [`endpoints`], over loopback TCP: one table for
/// the coordinator and the `n` members, each role wired by its own
/// `Mesh::connect_with_listener`, as separate processes would. The mesh
/// wires every pair of roles; a worker keeps only its session with the
/// coordinator, the only peer the protocol gives it.
async fn tcp_endpoints(
    protocol: &Protocol,
    n: usize,
) -> Result<(Endpoint, Vec<Endpoint>), BoxError> {
    let sizes = [("Worker", n)];
    let roles: Vec<Role> = std::iter::once(Role::Coordinator)
        .chain((0..n).map(Role::Worker))
        .collect();
    let mut listeners = Vec::new();
    let mut table = Vec::new();
    for &role in &roles {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        table.push((role, listener.local_addr()?));
        listeners.push(listener);
    }
    let mesh = Mesh::new(table);
    let wiring = roles
        .iter()
        .zip(listeners)
        .map(|(role, listener)| mesh.connect_with_listener(role, listener));
    let wired = futures::future::join_all(wiring).await;
    let mut coordinator = None;
    let mut workers = Vec::with_capacity(n);
    for (&role, sessions) in roles.iter().zip(wired) {
        let mut ep = Endpoint::new(role);
        for (peer, session) in sessions? {
            if role == Role::Coordinator || peer == Role::Coordinator {
                ep.register_session(peer, session);
            }
        }
        let monitor = protocol.monitor_instance(&format!("{role:?}"), &sizes)?;
        let ep = ep.with_protocol(monitor);
        match role {
            Role::Coordinator => coordinator = Some(ep),
            Role::Worker(_) => workers.push(ep),
        }
    }
    Ok((coordinator.ok_or("no coordinator")?, workers))
}

/// Runs the protocol with `n` workers and checks the outcome.
async fn run(protocol: &Protocol, n: usize) -> Result<(), BoxError> {
    let (coordinator_ep, worker_eps) = endpoints(protocol, n)?;
    check(n, coordinator_ep, worker_eps, "in memory").await
}

/// Runs the protocol with `n` workers over TCP and checks the outcome.
async fn run_over_tcp(protocol: &Protocol, n: usize) -> Result<(), BoxError> {
    let (coordinator_ep, worker_eps) = tcp_endpoints(protocol, n).await?;
    check(n, coordinator_ep, worker_eps, "over TCP").await
}

/// Runs every role and checks the totals and that every role completed.
async fn check(
    n: usize,
    coordinator_ep: Endpoint,
    worker_eps: Vec<Endpoint>,
    how: &str,
) -> Result<(), BoxError> {
    let workers: Vec<_> = worker_eps
        .into_iter()
        .map(|ep| tokio::spawn(worker(ep)))
        .collect();
    let coordinator = tokio::spawn(coordinator(coordinator_ep, n));
    let (coordinator_ep, total) = finish(coordinator).await?;
    let mut complete = coordinator_ep
        .all_metadata()
        .iter()
        .all(|(_, m)| m.is_complete);
    for task in workers {
        let (ep, rounds) = finish(task).await?;
        if rounds != ROUNDS as usize {
            return Err(format!("{:?} worked {rounds} rounds", ep.local_role()).into());
        }
        complete &= ep.all_metadata().iter().all(|(_, m)| m.is_complete);
    }
    let expected: u64 = (0..ROUNDS)
        .flat_map(|r| (0..n).flat_map(move |i| numbers(r, i)))
        .sum();
    println!(
        "  {n:>2} workers {how}: total {total} (expected {expected}), every role complete: {complete}"
    );
    if total != expected || !complete {
        return Err(format!("the run with {n} workers went wrong").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let protocol = Protocol::parse(SCATTER_GATHER)?;
    protocol.validate()?;
    println!("Local types, projected once per role and once for the family");
    println!("  Coordinator: {}", protocol.project("Coordinator")?);
    println!("  Worker[i]:   {}", protocol.project("Worker")?);
    println!("The coordinator's local type for 2 workers");
    println!(
        "  {}",
        protocol.instantiate("Coordinator", &[("Worker", 2)])?
    );
    println!("Runs");
    for n in [1, 3, 50] {
        run(&protocol, n).await?;
    }
    run_over_tcp(&protocol, 3).await?;
    Ok(())
}
