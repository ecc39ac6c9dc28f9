//! The allocation budget of the hot path, counted (not timed) with a
//! thread-local counting allocator: counts are deterministic.
//!
//! - a steady-state `send` allocates its one frame buffer and nothing else;
//! - a steady-state `recv` allocates only what the message's own
//!   `Deserialize` needs;
//! - metadata updates allocate nothing after warm-up, reads included;
//! - `choose` allocates the frame; `offer` of a known label allocates nothing.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use allocation_counter::{AllocationInfo, measure};
use common::{Handler, Msg, Party, alice_bob};
use rumpsteak_aura::{ChoreoHandler, Label};
use serde::{Deserialize, Serialize};

/// Runs an operation that must complete without waiting (the in-memory
/// channel is unbounded and, for receives, the frame is already there).
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("operation did not complete at once"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Ping {
    seq: u64,
    stamp: u32,
}

const ROUNDS: u64 = 1_000;

/// A burst of `ROUNDS` frames waits in the in-memory channel's queue, which
/// doubles as it grows: from one slot, ten doublings hold 1,024 frames.
const QUEUE_GROWTH: u64 = 10;

fn count(f: impl FnOnce()) -> AllocationInfo {
    measure(f)
}

#[test]
fn steady_state_send_and_recv_of_a_plain_message() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    // Warm up: metadata buffers, size hint.
    for seq in 0..ROUNDS {
        now(h.send(&mut a, Party::Bob, &Ping { seq, stamp: 1 })).unwrap();
        let _: Ping = now(h.recv(&mut b, Party::Alice)).unwrap();
        let _ = a.get_metadata(&Party::Bob);
        let _ = b.get_metadata(&Party::Alice);
    }

    let sends = count(|| {
        for seq in 0..ROUNDS {
            now(h.send(&mut a, Party::Bob, &Ping { seq, stamp: 2 })).unwrap();
        }
    });
    let recvs = count(|| {
        for seq in 0..ROUNDS {
            let p: Ping = now(h.recv(&mut b, Party::Alice)).unwrap();
            assert_eq!(p.seq, seq);
        }
    });
    // One frame buffer per send, plus the growth of the channel's queue,
    // which holds the whole burst here.
    assert!(
        sends.count_total <= ROUNDS + QUEUE_GROWTH,
        "send allocations: {sends:?}"
    );
    assert!(sends.count_total >= ROUNDS, "each send owns its frame");
    // A `Ping` needs no heap to deserialize: receiving allocates nothing.
    assert_eq!(recvs.count_total, 0, "recv allocations: {recvs:?}");
}

/// Send and receive in turn, as a request-reply protocol does: the queue
/// never grows, so each round costs exactly the one frame buffer. (The
/// sequence numbers all take two bytes, so that every frame has the size of
/// the one before, which the send buffer is sized from.)
#[test]
fn alternating_send_and_recv_allocate_exactly_one_frame_per_round() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    for seq in 1000..1100 {
        now(h.send(&mut a, Party::Bob, &Ping { seq, stamp: 1 })).unwrap();
        let _: Ping = now(h.recv(&mut b, Party::Alice)).unwrap();
    }
    let rounds = count(|| {
        for seq in 1000..1000 + ROUNDS {
            now(h.send(&mut a, Party::Bob, &Ping { seq, stamp: 1 })).unwrap();
            let p: Ping = now(h.recv(&mut b, Party::Alice)).unwrap();
            assert_eq!(p.seq, seq);
        }
    });
    assert_eq!(rounds.count_total, ROUNDS, "{rounds:?}");
    assert_eq!(rounds.bytes_current, 0, "every frame was freed: {rounds:?}");
}

#[test]
fn recv_allocates_only_what_deserialize_needs() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    for n in 0..ROUNDS {
        now(h.send(&mut a, Party::Bob, &Msg::new("warm", n))).unwrap();
        let _: Msg = now(h.recv(&mut b, Party::Alice)).unwrap();
    }
    for n in 0..ROUNDS {
        now(h.send(&mut a, Party::Bob, &Msg::new("text", n))).unwrap();
    }
    let recvs = count(|| {
        for n in 0..ROUNDS {
            let m: Msg = now(h.recv(&mut b, Party::Alice)).unwrap();
            assert_eq!(m.n, n);
        }
    });
    // Exactly the String inside each Msg.
    assert_eq!(recvs.count_total, ROUNDS, "{recvs:?}");
}

#[test]
fn metadata_updates_and_reads_allocate_nothing_after_warm_up() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    for seq in 0..100 {
        now(h.send(&mut a, Party::Bob, &Ping { seq, stamp: 0 })).unwrap();
        let _: Ping = now(h.recv(&mut b, Party::Alice)).unwrap();
        let _ = a.get_metadata(&Party::Bob);
        let _ = b.get_metadata(&Party::Alice);
    }
    // Frames are sent outside the measurement; only the receive side, whose
    // message needs no heap, is measured, together with metadata reads.
    for seq in 0..ROUNDS {
        now(h.send(&mut a, Party::Bob, &Ping { seq, stamp: 0 })).unwrap();
    }
    let info = count(|| {
        for _ in 0..ROUNDS {
            let _: Ping = now(h.recv(&mut b, Party::Alice)).unwrap();
            let meta = b.get_metadata(&Party::Alice).unwrap();
            assert!(meta.state_description.starts_with("received Ping"));
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn choose_allocates_the_frame_offer_of_a_known_label_nothing() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    for _ in 0..100 {
        now(h.choose(&mut a, Party::Bob, Label("accept"))).unwrap();
        now(h.offer(&mut b, Party::Alice)).unwrap();
    }
    let chooses = count(|| {
        for _ in 0..ROUNDS {
            now(h.choose(&mut a, Party::Bob, Label("accept"))).unwrap();
        }
    });
    let offers = count(|| {
        for _ in 0..ROUNDS {
            assert_eq!(now(h.offer(&mut b, Party::Alice)).unwrap(), Label("accept"));
        }
    });
    assert!(
        chooses.count_total <= ROUNDS + QUEUE_GROWTH,
        "choose allocations: {chooses:?}"
    );
    assert_eq!(offers.count_total, 0, "offer allocations: {offers:?}");
    // Offers of a known label keep no memory: nothing grows per label.
    assert!(offers.bytes_current <= 0, "{offers:?}");
}
