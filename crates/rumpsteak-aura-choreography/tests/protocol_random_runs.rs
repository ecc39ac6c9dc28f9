//! Random well-formed protocols run for real: every role is a tokio task
//! driving a `RumpsteakHandler` over `SimpleChannel`s with its monitor
//! attached, choosing labels at random. All roles must complete, with no
//! violation and no deadlock (a timeout fails the case).
//!
//! The generator is the protocol crate's own (`tests/common`): two to five
//! roles, messages, choices, relayed choices and loops with a `quit` exit.

#[path = "../../rumpsteak-aura-protocol/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use proptest::prelude::*;
use rumpsteak_aura_choreography::effects::handlers::rumpsteak::intern_label;
use rumpsteak_aura_choreography::protocol::{Monitor, NextStep, Protocol};
use rumpsteak_aura_choreography::{
    ChoreoHandler, ChoreographyError, Label, ProtocolMonitor, RumpsteakEndpoint, RumpsteakHandler,
    SimpleChannel, Step,
};
use serde::{Deserialize, Serialize};

/// The generator's role names, as an enum whose `Debug` form matches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Party {
    Alice,
    Bob,
    Carol,
    Dave,
    Eve,
}

impl Party {
    fn named(name: &str) -> Option<Party> {
        [
            Party::Alice,
            Party::Bob,
            Party::Carol,
            Party::Dave,
            Party::Eve,
        ]
        .into_iter()
        .find(|p| format!("{p:?}") == name)
    }
}

impl rumpsteak_aura::Role for Party {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

// The generator's messages go by these names: the labels `Ping`, `Data`,
// `Ack` when there is no payload type, else the payload types `u32` and
// `Text`.
#[derive(Debug, Serialize, Deserialize)]
struct Ping;
#[derive(Debug, Serialize, Deserialize)]
struct Data;
#[derive(Debug, Serialize, Deserialize)]
struct Ack;
#[derive(Debug, Serialize, Deserialize)]
struct Text;

type Handler = RumpsteakHandler<Party, ()>;
type Endpoint = RumpsteakEndpoint<Party>;

/// After this many of its own steps, a chooser leaves loops when it can.
const QUIT_AFTER: usize = 40;
/// A run that takes longer than this has deadlocked.
const DEADLINE: Duration = Duration::from_secs(5);

/// An owned copy of what the monitor allows next.
enum Next {
    Send(Party, String),
    Recv(Party, String),
    Choose(Party, Vec<String>),
    Offer(Party),
    End,
}

fn party(name: &str) -> Result<Party, String> {
    Party::named(name).ok_or_else(|| format!("unknown role {name}"))
}

fn next(m: &Monitor) -> Result<Next, String> {
    Ok(match m.next_step() {
        NextStep::Send { to, message, .. } => Next::Send(party(to)?, message.to_owned()),
        NextStep::Recv { from, message, .. } => Next::Recv(party(from)?, message.to_owned()),
        NextStep::Choose { to, labels } => {
            Next::Choose(party(to)?, labels.map(str::to_owned).collect())
        }
        NextStep::Offer { from, .. } => Next::Offer(party(from)?),
        NextStep::End => Next::End,
        other => return Err(format!("unknown next step {other:?}")),
    })
}

async fn send(h: &mut Handler, ep: &mut Endpoint, to: Party, msg: &str) -> Result<(), String> {
    let r = match msg {
        "Ping" => h.send(ep, to, &Ping).await,
        "Data" => h.send(ep, to, &Data).await,
        "Ack" => h.send(ep, to, &Ack).await,
        "Text" => h.send(ep, to, &Text).await,
        "u32" => h.send(ep, to, &7u32).await,
        other => return Err(format!("no message type for {other}")),
    };
    r.map_err(|e| e.to_string())
}

async fn recv(h: &mut Handler, ep: &mut Endpoint, from: Party, msg: &str) -> Result<(), String> {
    let r: Result<(), ChoreographyError> = match msg {
        "Ping" => h.recv::<Ping>(ep, from).await.map(drop),
        "Data" => h.recv::<Data>(ep, from).await.map(drop),
        "Ack" => h.recv::<Ack>(ep, from).await.map(drop),
        "Text" => h.recv::<Text>(ep, from).await.map(drop),
        "u32" => h.recv::<u32>(ep, from).await.map(drop),
        other => return Err(format!("no message type for {other}")),
    };
    r.map_err(|e| e.to_string())
}

/// Runs one role to its end. `shadow` is a copy of the endpoint's monitor,
/// advanced in step with it, that says what to do next.
async fn run_role(mut ep: Endpoint, mut shadow: Monitor, seed: u64) -> Result<usize, String> {
    let me = *ep.local_role();
    let mut h = Handler::new();
    let mut rng = common::Rng::new(seed);
    let mut steps = 0;
    loop {
        let name = |p: Party| format!("{p:?}");
        match next(&shadow)? {
            Next::End => break,
            Next::Send(to, msg) => {
                send(&mut h, &mut ep, to, &msg).await?;
                shadow
                    .step(&Step::Send {
                        to: &name(to),
                        message: &msg,
                    })
                    .map_err(|v| v.to_string())?;
            }
            Next::Recv(from, msg) => {
                recv(&mut h, &mut ep, from, &msg).await?;
                shadow
                    .step(&Step::Recv {
                        from: &name(from),
                        message: &msg,
                    })
                    .map_err(|v| v.to_string())?;
            }
            Next::Choose(to, labels) => {
                let exits: Vec<&String> = labels
                    .iter()
                    .filter(|l| l.starts_with(common::QUIT) || l.starts_with("stop"))
                    .collect();
                let label = if steps >= QUIT_AFTER && !exits.is_empty() {
                    exits[rng.below(exits.len())]
                } else {
                    &labels[rng.below(labels.len())]
                };
                let label = intern_label(label).map_err(|e| e.to_string())?;
                h.choose(&mut ep, to, Label(label))
                    .await
                    .map_err(|e| e.to_string())?;
                shadow
                    .step(&Step::Choose {
                        to: &name(to),
                        label,
                    })
                    .map_err(|v| v.to_string())?;
            }
            Next::Offer(from) => {
                let Label(label) = h.offer(&mut ep, from).await.map_err(|e| e.to_string())?;
                shadow
                    .step(&Step::Offer {
                        from: &name(from),
                        label: Some(label),
                    })
                    .map_err(|v| v.to_string())?;
            }
        }
        steps += 1;
    }
    // The endpoint's own monitor agrees, and so does every session's
    // metadata.
    let complete = ep.protocol().is_some_and(|m| m.is_complete());
    if !complete {
        return Err(format!("{me:?}: shadow ended but the endpoint did not"));
    }
    for (peer, meta) in ep.all_metadata() {
        if !meta.is_complete {
            return Err(format!(
                "{me:?}: session with {peer:?} not complete: {}",
                meta.state_description
            ));
        }
    }
    Ok(steps)
}

/// Runs every role of `p` as its own task; returns the total steps.
async fn run_all(p: &Protocol, seed: u64) -> Result<usize, String> {
    let roles: Vec<Party> = p
        .roles()
        .iter()
        .map(|r| party(r))
        .collect::<Result<_, _>>()?;
    let mut eps: Vec<Endpoint> = roles.iter().map(|r| RumpsteakEndpoint::new(*r)).collect();
    for i in 0..roles.len() {
        for j in i + 1..roles.len() {
            let (a, b) = SimpleChannel::pair();
            eps[i].register_channel(roles[j], a);
            eps[j].register_channel(roles[i], b);
        }
    }
    let mut tasks = Vec::new();
    for (i, ep) in eps.into_iter().enumerate() {
        let name = &p.roles()[i];
        let monitor = p.monitor_for(name).map_err(|e| e.to_string())?;
        let ep = ep.with_protocol(monitor.clone());
        let role_seed = seed.wrapping_add(i as u64 * 0x9e37_79b9);
        tasks.push((name.clone(), tokio::spawn(run_role(ep, monitor, role_seed))));
    }
    let joined = async {
        let mut total = 0;
        let mut errors = Vec::new();
        for (name, t) in tasks {
            match t.await {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => errors.push(format!("{name}: {e}")),
                Err(e) => errors.push(format!("{name}: task failed: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(total)
        } else {
            Err(errors.join("\n"))
        }
    };
    match tokio::time::timeout(DEADLINE, joined).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "deadlock: not all roles finished within {DEADLINE:?}"
        )),
    }
}

fn run(p: &Protocol, seed: u64) -> Result<usize, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| format!("cannot build a runtime: {e}"))?;
    rt.block_on(run_all(p, seed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn every_role_of_a_random_protocol_completes_through_the_handler(
        tape in prop::collection::vec(any::<u32>(), 0..256),
        seed in any::<u64>(),
    ) {
        let p = Protocol::new(common::well_formed(&tape));
        prop_assert_eq!(p.validate(), Ok(()), "protocol:\n{}", p);
        if let Err(e) = run(&p, seed) {
            return Err(TestCaseError::fail(format!("{e}\nprotocol:\n{p}")));
        }
    }
}

#[test]
fn random_runs_exercise_loops_and_several_roles() {
    // Guards against a vacuous property: on fixed tapes the runs must take
    // many steps and involve more than two roles.
    let mut rng = common::Rng::new(11);
    let (mut long, mut many) = (0, 0);
    for seed in 0..16 {
        let tape: Vec<u32> = (0..200).map(|_| rng.below(1 << 16) as u32).collect();
        let p = Protocol::new(common::well_formed(&tape));
        let steps = run(&p, seed).unwrap_or_else(|e| panic!("{e}\nprotocol:\n{p}"));
        long += usize::from(steps >= 20);
        many += usize::from(p.roles().len() >= 3);
    }
    assert!(long >= 4, "only {long} of 16 runs took 20 steps or more");
    assert!(
        many >= 4,
        "only {many} of 16 protocols have three roles or more"
    );
}
