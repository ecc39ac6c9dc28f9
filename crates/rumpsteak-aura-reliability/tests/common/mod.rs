//! Roles, messages and measurements shared by the reliability tests.
#![allow(dead_code, unreachable_pub)]

pub mod sim;

use std::future::Future;
use std::time::Duration;

use rumpsteak_aura::{ChoreographyError, TransportErrorKind};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, RumpsteakSession};
use rumpsteak_aura_transport::SimpleChannel;
use rumpsteak_aura_transport::fault::{self, FaultHandle, Faults};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    Alice,
    Bob,
}

impl rumpsteak_aura::Role for Party {
    type Message = Msg;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Msg {
    pub text: String,
    pub n: u64,
}

pub fn msg(n: u64) -> Msg {
    Msg {
        text: format!("message {n}"),
        n,
    }
}

pub type Handler = RumpsteakHandler<Party, Msg>;

/// Alice and Bob over an in-memory pair, with `alice` and `bob` faults on
/// each side's session.
pub fn faulty_pair(
    alice: Faults,
    bob: Faults,
) -> (
    RumpsteakEndpoint<Party>,
    RumpsteakEndpoint<Party>,
    FaultHandle,
    FaultHandle,
) {
    let (a, b) = SimpleChannel::pair();
    let (a, ha) = fault::inject(a, alice);
    let (b, hb) = fault::inject(b, bob);
    (
        endpoint(Party::Alice, Party::Bob, a),
        endpoint(Party::Bob, Party::Alice, b),
        ha,
        hb,
    )
}

pub fn endpoint(me: Party, peer: Party, session: RumpsteakSession) -> RumpsteakEndpoint<Party> {
    let mut ep = RumpsteakEndpoint::new(me);
    ep.register_session(peer, session);
    ep
}

/// Fails the test if `f` takes longer than `secs` seconds: the bound only
/// proves that nothing hangs, it measures nothing.
pub async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("did not finish in time: something hangs")
}

/// The `io::ErrorKind` inside a transport error of an operation.
pub fn io_kind(e: &ChoreographyError) -> Option<std::io::ErrorKind> {
    match e.as_transport()?.kind() {
        TransportErrorKind::Io(io) => Some(io.kind()),
        _ => None,
    }
}

/// Resident memory of this process in bytes, from `/proc/self/statm`.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * 4096
}

/// Open file descriptors of this process, from `/proc/self/fd`.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}
