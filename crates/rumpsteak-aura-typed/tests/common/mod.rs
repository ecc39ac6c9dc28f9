//! Helpers shared by the integration tests: wiring endpoints, bounded
//! waits, and the end-of-run checks.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
use rumpsteak_aura_typed::RoleBounds;

/// The handler every test runs its roles on.
pub type Handler<R> = RumpsteakHandler<R, ()>;

/// One endpoint per role of `roles`, in that order, each with an in-memory
/// channel to every other.
pub fn mesh<R: RoleBounds + Copy>(roles: &[R]) -> Vec<RumpsteakEndpoint<R>> {
    let mut eps: Vec<_> = roles.iter().map(|&r| RumpsteakEndpoint::new(r)).collect();
    for i in 0..roles.len() {
        for j in i + 1..roles.len() {
            let (x, y) = SimpleChannel::pair();
            eps[i].register_channel(roles[j], x);
            eps[j].register_channel(roles[i], y);
        }
    }
    eps
}

/// Fails the test if `f` takes longer than `secs` seconds, rather than
/// hanging the run. Every bound given is many times what the step needs on
/// a loaded machine: it only proves that the step finishes.
pub async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("step did not finish within {secs}s"),
    }
}

/// Every session of `ep` is complete and none was abandoned.
pub fn assert_finished<R: RoleBounds + Debug>(ep: &RumpsteakEndpoint<R>) {
    let all = ep.all_metadata();
    assert!(!all.is_empty(), "{:?} has no sessions", ep.local_role());
    for (peer, meta) in all {
        assert!(
            meta.is_complete && !meta.is_abandoned,
            "{:?} with {peer:?}: {meta:?}",
            ep.local_role()
        );
    }
}
