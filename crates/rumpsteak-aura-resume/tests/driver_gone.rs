//! A session whose driver task is gone (its runtime shut down while the
//! application holds the session in another runtime) ends with
//! `DriverGone`: a waiting receive, and every later operation, get that
//! error instead of waiting for ever.

mod common;

use std::time::Duration;

use common::{HANG, MemNet, config, msg, num, pair};
use rumpsteak_aura_resume::ResumeError;
use tokio::time::timeout;

fn driver_gone(e: &rumpsteak_aura::TransportError) -> bool {
    matches!(ResumeError::of(e), Some(ResumeError::DriverGone))
}

#[test]
fn a_session_whose_runtime_shut_down_ends_with_driver_gone() {
    let net = MemNet::new();
    // The drivers are spawned on `first`, which then shuts down.
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = first.block_on(pair(&net, config("Alice", "Bob"), config("Bob", "Alice")));
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    first.block_on(async {
        a.send_frame(msg(1)).await.unwrap();
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            1
        );
    });
    assert!(ha.error().is_none() && hb.error().is_none());

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A receive waits in `second` while `first` shuts down from another
    // thread; it must end, not wait for ever (bounded against a hang).
    let waiting = std::thread::scope(|scope| {
        let shutdown = scope.spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(first);
        });
        let waited = second.block_on(async { timeout(HANG, b.recv_frame()).await });
        shutdown.join().unwrap();
        waited
    });
    let e = waiting.expect("the receive ends").unwrap_err();
    assert!(driver_gone(&e), "{e}");
    // Later operations fail the same way, on both sides, and the handles
    // say so.
    second.block_on(async {
        let e = timeout(HANG, a.send_frame(msg(2)))
            .await
            .unwrap()
            .unwrap_err();
        assert!(driver_gone(&e), "{e}");
        let e = timeout(HANG, a.recv_frame()).await.unwrap().unwrap_err();
        assert!(driver_gone(&e), "{e}");
    });
    assert!(matches!(ha.error(), Some(ResumeError::DriverGone)));
    assert!(matches!(hb.error(), Some(ResumeError::DriverGone)));
}
