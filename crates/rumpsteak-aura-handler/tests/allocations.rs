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

fn count(f: impl FnOnce()) -> AllocationInfo {
    measure(f)
}

#[test]
fn steady_state_send_and_recv_of_a_plain_message() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    // Warm up: channel blocks, metadata buffers, size hint.
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
    // One frame buffer per send. The in-memory channel allocates a block of
    // slots now and then when its recycled blocks run out; that is the
    // channel's cost, allowed here as at most one block per 16 messages.
    assert!(
        sends.count_total <= ROUNDS + ROUNDS / 16,
        "send allocations: {sends:?}"
    );
    assert!(sends.count_total >= ROUNDS, "each send owns its frame");
    // A `Ping` needs no heap to deserialize: receiving allocates nothing.
    assert!(
        recvs.count_total <= ROUNDS / 16,
        "recv allocations: {recvs:?}"
    );
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
    assert!(info.count_total <= ROUNDS / 16, "{info:?}");
    // No leak: whatever was allocated was given back or is the channel's.
    assert!(info.bytes_current <= 0, "{info:?}");
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
        chooses.count_total <= ROUNDS + ROUNDS / 16,
        "choose allocations: {chooses:?}"
    );
    assert!(
        offers.count_total <= ROUNDS / 16,
        "offer allocations: {offers:?}"
    );
    // Offers of a known label keep no memory: nothing grows per label.
    assert!(offers.bytes_current <= 0, "{offers:?}");
}
