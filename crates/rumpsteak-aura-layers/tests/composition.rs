//! Layers compose in any order, keep the handler's `Send` futures (each
//! role runs in `tokio::spawn`) and drive the same generic role code.

mod common;

use common::*;
use rumpsteak_aura_layers::{Metered, Recording, Traced};

#[test]
fn traced_over_metered_over_recording() {
    let recs = [(); 3].map(|_| Recording::new(Handler::new()));
    let endpoints = purchase_endpoints(Some(&recs));
    let handlers = recs.clone().map(|r| Traced::new(Metered::new(r)));
    let (results, handlers) = runtime().block_on(run_flagship(handlers, endpoints));
    assert_eq!(results, expected_results());
    let coordinator = handlers[1].inner().snapshot();
    assert_eq!(
        coordinator.peer("Buyer").map(|p| p.operations.offer),
        Some(4)
    );
    assert_eq!(
        coordinator.peer("Seller").map(|p| p.operations.send),
        Some(3)
    );
    assert_eq!(
        recs[1].transcript().entries.len() as u64,
        coordinator.total_operations().total()
    );
}

#[test]
fn metered_over_traced_and_bare() {
    let handlers = [(); 3].map(|_| Metered::new(Traced::new(Handler::new())));
    let (results, handlers) = runtime().block_on(run_flagship(handlers, purchase_endpoints(None)));
    assert_eq!(results, expected_results());
    assert_eq!(handlers[0].snapshot().total_operations().total(), 3 * 4 + 1);
    let (results, _) =
        runtime().block_on(run_flagship([Handler::new(); 3], purchase_endpoints(None)));
    assert_eq!(results, expected_results());
}
