//! Resumption over in-memory links that the test cuts: between frames, with
//! frames in flight, during the resume exchange itself, and at seeded
//! random points. Every message arrives exactly once and in order.

mod common;

use std::time::Duration;

use common::{HANG, MemNet, Rng, config, msg, num, pair, protocol};
use tokio::time::timeout;

#[tokio::test]
async fn a_cut_between_frames_loses_nothing() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    for i in 0..10 {
        a.send_frame(msg(i)).await.unwrap();
    }
    for i in 0..10 {
        assert_eq!(num(&b.recv_frame().await.unwrap()), i);
    }
    net.cut();
    for i in 10..20 {
        a.send_frame(msg(i)).await.unwrap();
    }
    for i in 10..20 {
        let f = timeout(HANG, b.recv_frame()).await.unwrap().unwrap();
        assert_eq!(num(&f), i);
    }
    b.send_frame(msg(99)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
        99
    );
    assert_eq!(ha.stats().reconnects, 1);
    assert_eq!(hb.stats().reconnects, 1);
    assert!(ha.stats().last_cause.unwrap().contains("cut by the test"));
    assert_eq!(ha.stats().frames_sent, 20);
    assert_eq!(hb.stats().frames_received, 20);
}

#[tokio::test]
async fn frames_in_flight_at_the_cut_are_resent_once() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    // Handed to the link (the sends complete), not yet read by Bob's
    // driver when the link goes: the in-memory link then drops them, as
    // a real cut drops bytes in flight.
    net.cut_after(3);
    for i in 0..50 {
        a.send_frame(msg(i)).await.unwrap();
    }
    for i in 0..50 {
        let f = timeout(HANG, b.recv_frame()).await.unwrap().unwrap();
        assert_eq!(num(&f), i);
    }
    // Nothing more: a duplicate would be the next frame.
    a.send_frame(msg(1000)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
        1000
    );
}

#[tokio::test]
async fn cuts_during_the_resume_exchange_itself() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (ha, hb) = (a.handle(), b.handle());
    let (a, b) = (a.into_session(), b.into_session());
    // The next links cut themselves at their first frame (Alice's or
    // Bob's greeting), after one greeting, after both, after both and
    // one more frame, then one link holds.
    net.push_budgets([0, 1, 2, 3, 0, 2]);
    net.cut();
    let (a, b) = timeout(HANG, protocol(a, b, 20, 10)).await.unwrap();
    assert!(net.links.load(std::sync::atomic::Ordering::SeqCst) >= 8);
    assert!(ha.stats().reconnects >= 1 && hb.stats().reconnects >= 1);
    drop((a, b));
}

#[tokio::test]
async fn a_pending_receive_waits_across_the_cut() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let waiting = tokio::spawn(async move { (b.recv_frame().await, b) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    net.set_down(true);
    net.cut();
    // The sender hands the frame over while there is no link.
    a.send_frame(msg(7)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "the receive must wait, not fail");
    net.set_down(false);
    let (got, _b) = timeout(HANG, waiting).await.unwrap().unwrap();
    assert_eq!(num(&got.unwrap()), 7);
}

#[tokio::test]
async fn dropped_receives_lose_nothing_across_cuts() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    let mut rng = Rng::new(7);
    net.push_budgets((0..20).map(|_| rng.range(0, 40)));
    let sender = tokio::spawn(async move {
        for i in 0..2000 {
            a.send_frame(msg(i)).await.unwrap();
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        a
    });
    net.cut();
    let mut expected = 0;
    let mut dropped = 0;
    while expected < 2000 {
        // A receive cancelled by a short timeout must not take a frame
        // with it.
        match timeout(Duration::from_micros(200), b.recv_frame()).await {
            Ok(f) => {
                assert_eq!(num(&f.unwrap()), expected);
                expected += 1;
            }
            Err(_) => dropped += 1,
        }
        assert!(dropped < 1_000_000, "no progress");
    }
    let _a = timeout(HANG, sender).await.unwrap().unwrap();
}

#[tokio::test]
async fn seeded_random_cuts_deliver_every_message_once_in_order() {
    // RUMPSTEAK_RESUME_SEED reruns one seed.
    let seeds: Vec<u64> = match std::env::var("RUMPSTEAK_RESUME_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=5).collect(),
    };
    for seed in seeds {
        let net = MemNet::new();
        let mut rng = Rng::new(seed);
        // 20 cuts per seed: mostly between data frames, some at the very
        // first frames of a link (the resume exchange).
        let budgets: Vec<u64> = (0..20)
            .map(|_| {
                if rng.range(0, 3) == 0 {
                    rng.range(0, 3)
                } else {
                    rng.range(4, 400)
                }
            })
            .collect();
        net.push_budgets(budgets);
        let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
        let (ha, hb) = (a.handle(), b.handle());
        let (a, b) = timeout(HANG, protocol(a.into_session(), b.into_session(), 200, 99))
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: hung"));
        let links = net.links.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            links >= 21,
            "seed {seed}: only {links} links, so not every cut happened"
        );
        assert_eq!(ha.stats().frames_sent, 200 * 99, "seed {seed}");
        assert_eq!(hb.stats().frames_received, 200 * 99, "seed {seed}");
        assert!(ha.stats().reconnects >= 1, "seed {seed}");
        drop((a, b));
    }
}

#[tokio::test]
async fn close_reaches_the_peer_after_every_frame_across_a_cut() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    net.cut_after(2);
    for i in 0..5 {
        a.send_frame(msg(i)).await.unwrap();
    }
    a.close();
    for i in 0..5 {
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    let end = timeout(HANG, b.recv_frame()).await.unwrap().unwrap_err();
    assert!(end.is_closed(), "{end}");
    // Alice closed her sending side only: she still receives.
    b.send_frame(msg(42)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
        42
    );
    assert!(a.send_frame(msg(1)).await.unwrap_err().is_closed());
}

#[tokio::test]
async fn a_dropped_session_ends_its_peer_orderly() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let hb = b.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    for i in 0..3 {
        a.send_frame(msg(i)).await.unwrap();
    }
    drop(a);
    for i in 0..3 {
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    assert!(
        timeout(HANG, b.recv_frame())
            .await
            .unwrap()
            .unwrap_err()
            .is_closed()
    );
    // Alice is gone: her farewell ends Bob's session without an error.
    timeout(HANG, async {
        while !hb.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(hb.error().is_none());
    assert!(b.send_frame(msg(1)).await.unwrap_err().is_closed());
}

#[tokio::test]
async fn an_idle_session_survives_a_cut_and_acknowledges_on_its_own() {
    let net = MemNet::new();
    let (a, b) = pair(&net, config("Alice", "Bob"), config("Bob", "Alice")).await;
    let ha = a.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    for i in 0..5 {
        a.send_frame(msg(i)).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(num(&b.recv_frame().await.unwrap()), i);
    }
    // Bob sends nothing: his standalone acknowledgement empties Alice's
    // replay buffer.
    timeout(HANG, async {
        while ha.stats().unacked_frames > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    net.cut();
    // Waits for the reconnection rather than sleeping a fixed time: on a
    // loaded 2-core VM 100 ms are not always enough; HANG only proves that
    // it cannot hang.
    timeout(HANG, async {
        while !(ha.stats().connected && ha.stats().reconnects >= 1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(ha.stats().reconnects, 1);
    a.send_frame(msg(5)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
        5
    );
}

#[tokio::test]
async fn a_full_replay_buffer_makes_the_sender_wait_not_fail() {
    let net = MemNet::new();
    let small = |l, p| config(l, p).with_replay_limits(4, 1 << 20);
    let (a, b) = pair(&net, small("Alice", "Bob"), small("Bob", "Alice")).await;
    let ha = a.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    net.set_down(true);
    net.cut();
    let sender = tokio::spawn(async move {
        for i in 0..20 {
            a.send_frame(msg(i)).await.unwrap();
        }
        a
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sender.is_finished(), "the fifth send must wait for room");
    assert_eq!(ha.stats().unacked_frames, 4);
    net.set_down(false);
    for i in 0..20 {
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    let _a = timeout(HANG, sender).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_receiver_that_does_not_read_keeps_its_link() {
    let net = MemNet::new();
    // A window of 4 frames and a link given up after 1 s of silence. The
    // idle timeout is twenty heartbeats: a stall of the whole (noisy, 2-core)
    // machine shorter than that cannot make the link look silent, so only
    // the window counted as silence can fail this test.
    let cfg = |l, p| {
        config(l, p)
            .with_receive_window(4)
            .with_heartbeat(Duration::from_millis(50), Duration::from_secs(1))
    };
    let (a, b) = pair(&net, cfg("Alice", "Bob"), cfg("Bob", "Alice")).await;
    let hb = b.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    for i in 0..20 {
        a.send_frame(msg(i)).await.unwrap();
    }
    // Bob reads nothing for twice the idle timeout: his driver stops
    // reading at a full window, which is not the peer's silence.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(hb.stats().reconnects, 0, "{:?}", hb.stats());
    for i in 0..20 {
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    assert_eq!(hb.stats().reconnects, 0);
}

#[tokio::test]
async fn a_dropped_send_hands_over_all_or_nothing_across_a_reconnection() {
    let net = MemNet::new();
    let small = |l, p| config(l, p).with_replay_limits(3, 1 << 20);
    let (a, b) = pair(&net, small("Alice", "Bob"), small("Bob", "Alice")).await;
    let (mut a, mut b) = (a.into_session(), b.into_session());
    net.set_down(true);
    net.cut();
    for i in 0..3 {
        a.send_frame(msg(i)).await.unwrap();
    }
    // The buffer is full and there is no link: this send waits, and is
    // dropped while it waits. Its frame was never handed over.
    assert!(
        timeout(Duration::from_millis(50), a.send_frame(msg(100)))
            .await
            .is_err()
    );
    net.set_down(false);
    a.send_frame(msg(3)).await.unwrap();
    for i in 0..4 {
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    // Nothing else: not the dropped frame, no duplicate.
    a.send_frame(msg(4)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
        4
    );
}
