//! A layered role cancelled mid-operation (a timeout around `recv`) loses
//! nothing, as without layers; the layers count and record what completed
//! apart from what was cancelled.

mod common;

use std::time::Duration;

use common::*;
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_layers::{HandlerExt, Metered, Recording, Traced};

#[test]
fn cancelled_receives_lose_nothing_through_every_layer() {
    cancelled_receives();
}

#[test]
fn recv_timeout_through_the_stack_loses_nothing() {
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Metered::new(Traced::new(Recording::new(Handler::new())));
    rt.block_on(async {
        let e = h
            .recv_timeout::<u32>(&mut b, Role::A, Duration::from_millis(2))
            .await;
        assert!(matches!(
            e,
            Err(rumpsteak_aura::ChoreographyError::Timeout(_))
        ));
        Handler::new()
            .send(&mut a, Role::B, &5u32)
            .await
            .expect("send");
        let n: u32 = h
            .recv_timeout(&mut b, Role::A, DEADLINE)
            .await
            .expect("recv");
        assert_eq!(n, 5);
    });
    let p = h.snapshot().peers.remove(0);
    assert_eq!(p.operations.recv, 2);
    assert_eq!(p.errors.timeout, 1);
    assert_eq!(
        p.cancelled, 0,
        "a timeout inside the layer is an error, not a cancellation"
    );
    let t = h.inner().inner().transcript();
    assert_eq!(t.entries.len(), 2);
    assert!(t.entries[0].error.is_some() && t.entries[1].error.is_none());
}
