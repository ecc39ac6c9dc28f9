//! The memory of an endpoint, of a registered peer and of an in-memory
//! channel pair, counted with a thread-local counting allocator (heap
//! bytes still held when the measured code returns) and asserted exactly:
//! counts are deterministic for a given toolchain and target. The inline
//! sizes (`size_of`) are asserted for 64-bit targets. A tokio mpsc pair is
//! measured beside them for the performance report.
//!
//! Run with `--nocapture` to see the figures:
//! `cargo test -p rumpsteak-aura-handler --test memory -- --nocapture`.

mod common;

use std::fmt;
use std::hint::black_box;
use std::mem::size_of;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use allocation_counter::{AllocationInfo, measure};
use common::{Handler, Msg, Party};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_handler::{RumpsteakEndpoint, SimpleChannel};

/// A numbered role whose name is always five bytes (`p0000` to `p9999`),
/// so that every peer's name takes the same heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Id(u16);

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{:04}", self.0)
    }
}

impl rumpsteak_aura::Role for Id {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// Heap bytes that `make` allocated and that its result still holds.
fn held<T>(make: impl FnOnce() -> T) -> (T, AllocationInfo) {
    let mut out = None;
    let info = measure(|| out = Some(make()));
    match out {
        Some(v) => (v, info),
        None => unreachable!("measure runs its closure"),
    }
}

fn report(what: &str, bytes: i64) {
    eprintln!("memory: {what}: {bytes} bytes");
}

#[test]
fn an_idle_endpoint_holds_no_heap() {
    let (ep, info) = held(|| RumpsteakEndpoint::new(Party::Alice));
    assert_eq!(info.count_total, 0, "{info:?}");
    assert_eq!(info.bytes_current, 0, "{info:?}");
    assert!(ep.is_all_closed());
    report(
        "idle endpoint, inline",
        size_of::<RumpsteakEndpoint<Party>>() as i64,
    );
    #[cfg(target_pointer_width = "64")]
    assert_eq!(size_of::<RumpsteakEndpoint<Party>>(), 200);
}

#[test]
fn an_in_memory_channel_pair_holds_two_lanes() {
    let (pair, info) = held(SimpleChannel::pair);
    // One shared lane per direction: its two reference counts, its lock
    // and its empty queue.
    assert_eq!(info.count_current, 2, "{info:?}");
    assert_eq!(info.bytes_current, 2 * 80, "{info:?}");
    report("SimpleChannel pair, heap", info.bytes_current);
    report(
        "SimpleChannel pair, inline (both ends)",
        2 * size_of::<SimpleChannel>() as i64,
    );
    #[cfg(target_pointer_width = "64")]
    assert_eq!(size_of::<SimpleChannel>(), 56);
    drop(pair);
}

/// Registers peers `Id(0)` to `Id(n - 1)` on a fresh endpoint and returns
/// the heap the registrations hold. The channels are made before.
fn register(n: u16) -> AllocationInfo {
    let mut channels: Vec<_> = (0..n).map(|_| SimpleChannel::pair()).collect();
    let mut ep = RumpsteakEndpoint::new(Id(n));
    let mut far = Vec::with_capacity(channels.len());
    let ((), info) = held(|| {
        // `drain` keeps the list's buffer, which was allocated before.
        for (i, (near, other)) in channels.drain(..).enumerate() {
            ep.register_channel(Id(i as u16), near);
            far.push(other);
        }
    });
    assert_eq!(ep.active_channel_count(), usize::from(n));
    info
}

#[test]
fn a_registered_peer_holds_its_slot_and_its_name() {
    // 16 peers, the most an endpoint scans without an index: the vector of
    // peers, which doubles from four slots, then has exactly 16 slots.
    let info = register(16);
    // Per peer: its slot, 384 bytes (a multiple of the cache line) with the session inline, and its name
    // ("p0000", in the smallest string buffer, 8 bytes).
    assert_eq!(info.bytes_current, 16 * (384 + 8), "{info:?}");
    report("registered peer, heap", info.bytes_current / 16);
}

#[test]
fn many_peers_add_an_index() {
    // Past 16 peers the endpoint also keeps a hash index from role to
    // position: 1,024 peers, 1,024 slots, 1,024 names and the index.
    let info = register(1024);
    let index = info.bytes_current - 1024 * (384 + 8);
    // The boxed map (48 bytes), and 2,048 buckets of a role and a position
    // (16 bytes) with one control byte each, plus 16 trailing ones.
    assert_eq!(index, 48 + 2048 * 16 + 2048 + 16, "{info:?}");
    report("index of 1,024 peers, heap", index);
}

#[test]
fn a_two_party_session_in_memory() {
    // Both endpoints, the pair and both registrations, as `alice_bob` does.
    let ((a, b), info) = held(common::alice_bob);
    let idle = info.bytes_current;
    // Two lanes, two peer vectors of four slots (the least a vector of
    // them allocates), two names of 8 bytes.
    assert_eq!(idle, 2 * 80 + 2 * (4 * 384) + 2 * 8, "{info:?}");
    report("two-party session, idle, heap", idle);

    // After a round trip each direction's queue has held a frame once and
    // keeps its buffer of four slots (4 x 24 bytes); the frames themselves
    // were freed.
    let (mut a, mut b) = (a, b);
    let mut h = Handler::new();
    let msg = Msg::new("hi", 1);
    let ((), used) = held(|| {
        now(h.send(&mut a, Party::Bob, &msg)).unwrap();
        let m: Msg = now(h.recv(&mut b, Party::Alice)).unwrap();
        now(h.send(&mut b, Party::Alice, &m)).unwrap();
        let _: Msg = now(h.recv(&mut a, Party::Bob)).unwrap();
    });
    report(
        "two-party session, after one round trip, heap",
        idle + used.bytes_current,
    );
    black_box((&a, &b));
    assert_eq!(used.bytes_current, 2 * 4 * 24, "{used:?}");
}

/// A tokio mpsc pair of byte frames, the raw baseline of the benches: what
/// it holds is reported, not asserted, since it is tokio's to change.
#[test]
fn a_tokio_mpsc_pair_for_comparison() {
    let (pair, info) = held(|| {
        let (tx_a, rx_b) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let (tx_b, rx_a) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        ((tx_a, rx_a), (tx_b, rx_b))
    });
    assert!(info.bytes_current > 0, "{info:?}");
    report(
        "tokio unbounded mpsc pair (two channels), heap",
        info.bytes_current,
    );
    report(
        "tokio unbounded mpsc pair, inline (both ends)",
        2 * size_of::<(
            tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
            tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
        )>() as i64,
    );
    drop(pair);
}

/// Runs an operation that must complete without waiting (the in-memory
/// channel is unbounded and, for receives, the frame is already there).
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("operation did not complete at once"),
    }
}
