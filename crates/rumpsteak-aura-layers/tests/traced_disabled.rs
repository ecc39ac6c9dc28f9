//! Traced with no subscriber at all: the operation runs bare and the
//! session span is never opened, and it allocates nothing beyond what the
//! bare handler allocates (counted with a thread-local counting
//! allocator). Alone in its binary, because a subscriber set for another
//! test's thread changes the process-wide callsite interest that
//! `tracing` caches.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use allocation_counter::measure;
use common::*;
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_layers::{HandlerExt, Recording, Traced};

/// Polls an operation that completes at once on the in-memory channel.
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("operation did not complete at once"),
    }
}

const ROUNDS: u32 = 200;

/// Allocations of `ROUNDS` rounds of send, recv, choose and offer_among by
/// A's handler `h`, B answering with a bare handler, after as many rounds
/// of warm-up.
fn allocations<H>(h: &mut H) -> u64
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut hb = Handler::new();
    let mut round = |h: &mut H, i: u32| {
        now(h.send(&mut a, Role::B, &i)).expect("send");
        let n: u32 = now(hb.recv(&mut b, Role::A)).expect("recv");
        now(hb.send(&mut b, Role::A, &(n + 1))).expect("send");
        now(hb.choose(&mut b, Role::A, ACCEPT)).expect("choose");
        let m: u32 = now(h.recv(&mut a, Role::B)).expect("recv");
        assert_eq!(m, i + 1);
        now(h.choose(&mut a, Role::B, OFFER)).expect("choose");
        let l = now(h.offer_among(&mut a, Role::B, &[ACCEPT, REJECT])).expect("offer");
        assert_eq!(l, ACCEPT);
        let _ = now(hb.offer(&mut b, Role::A)).expect("offer");
    };
    for i in 0..ROUNDS {
        round(h, i);
    }
    // B's bare operations are counted too, the same in every run.
    let info = measure(|| {
        for i in 0..ROUNDS {
            round(h, i);
        }
    });
    info.count_total
}

#[test]
fn without_a_subscriber_nothing_more_is_allocated() {
    let bare = allocations(&mut Handler::new());
    let traced = allocations(&mut Traced::new(Handler::new()));
    assert_eq!(
        traced, bare,
        "Traced without a subscriber allocates as the bare handler does"
    );
    // The counter counts: the bare handler allocates each frame it sends,
    // and a layer that allocates per operation shows.
    assert!(bare >= u64::from(ROUNDS) * 2, "{bare}");
    let recording = allocations(&mut Recording::new(Handler::new()));
    assert!(recording > bare, "{recording} > {bare}");
}

#[test]
fn without_a_subscriber_nothing_is_built() {
    runtime().block_on(async {
        let (mut a, mut b) = pair(Role::A, Role::B);
        let mut h = Traced::new(Handler::new());
        h.send(&mut a, Role::B, &1u8).await.expect("send");
        Handler::new()
            .choose(&mut b, Role::A, ACCEPT)
            .await
            .expect("choose");
        assert_eq!(
            h.offer_among(&mut a, Role::B, &[ACCEPT])
                .await
                .expect("offer"),
            ACCEPT
        );
        let n: u8 = Handler::new().recv(&mut b, Role::A).await.expect("recv");
        assert_eq!(n, 1);
        assert!(h.session_span().is_none());
    });
}
