//! Traced with no subscriber at all: the operation runs bare and the
//! session span is never opened. Alone in its binary, because a
//! subscriber set for another test's thread changes the process-wide
//! callsite interest that `tracing` caches.

mod common;

use common::*;
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_layers::{HandlerExt, Traced};

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
