//! Soak and scale. Every test is `#[ignore]` and named `stress_*`; run them
//! with the one command of `docs/reliability.md`:
//!
//! ```text
//! cargo test -p rumpsteak-aura-reliability --release --test stress -- --ignored --test-threads=1
//! ```
//!
//! Memory is resident memory from `/proc/self/statm`, file descriptors are
//! counted in `/proc/self/fd`, and cost is counted in allocations and role
//! comparisons, never timed. The tests also take a lock, so that one test's
//! memory never shows in another's figures even without `--test-threads=1`.

mod common;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use allocation_counter::measure;
use common::{Handler, Msg, Party, msg, open_fds, resident_bytes};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Role, Violation};
use rumpsteak_aura_handler::{
    MAX_INTERNED_LABELS, MAX_LABELS_PER_SESSION, RumpsteakEndpoint, RumpsteakHandler,
    RumpsteakSession, register_labels,
};
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_transport::SimpleChannel;
use rumpsteak_aura_transport::wire;

const MIB: u64 = 1024 * 1024;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls an in-memory operation whose frame is there (or that never waits).
fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-memory operation did not complete at once"),
    }
}

fn alice_bob() -> (RumpsteakEndpoint<Party>, RumpsteakEndpoint<Party>) {
    let (a, b) = SimpleChannel::pair();
    (
        common::endpoint(Party::Alice, Party::Bob, a.into()),
        common::endpoint(Party::Bob, Party::Alice, b.into()),
    )
}

#[test]
#[ignore = "stress: ten million messages; run with --release, see docs/reliability.md"]
fn stress_ten_million_messages_through_one_pair_with_flat_resident_memory() {
    let _serial = serial();
    const TOTAL: u64 = 10_000_000;
    const BATCH: u64 = 1_000;
    const SAMPLE_EVERY: u64 = 1_000_000;
    // What may be added after the first million: allocator noise, not a
    // leak (a leak of even one byte a message would be 9 MiB).
    const FLAT: u64 = 4 * MIB;

    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    let mut after_first_million = 0;
    let mut highest = 0;
    let mut sent = 0;
    while sent < TOTAL {
        for n in sent..sent + BATCH {
            now(h.send(&mut a, Party::Bob, &msg(n))).unwrap();
        }
        for n in sent..sent + BATCH {
            let got: Msg = now(h.recv(&mut b, Party::Alice)).unwrap();
            assert_eq!(got.n, n, "order");
        }
        sent += BATCH;
        if sent.is_multiple_of(SAMPLE_EVERY) {
            let rss = resident_bytes();
            eprintln!("after {sent} messages: resident {} KiB", rss / 1024);
            if sent == SAMPLE_EVERY {
                after_first_million = rss;
            }
            highest = highest.max(rss);
        }
    }
    assert_eq!(
        b.get_metadata(&Party::Alice).unwrap().operation_count as u64,
        TOTAL
    );
    assert_eq!(a.traffic(&Party::Bob).unwrap().frames_sent, TOTAL);
    let growth = highest.saturating_sub(after_first_million);
    assert!(
        growth <= FLAT,
        "resident memory grew by {} KiB after the first million",
        growth / 1024
    );
}

/// A small deterministic generator for the hostile labels.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn label(&mut self) -> String {
        let len = 1 + (self.next() % 32) as usize;
        (0..len)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }
}

#[test]
#[ignore = "stress: a million hostile choices; run with --release, see docs/reliability.md"]
fn stress_a_hostile_peer_sending_a_million_random_labels_meets_the_cap_with_bounded_memory() {
    let _serial = serial();
    const CHOICES: u64 = 1_000_000;
    const BATCH: u64 = 1_000;
    // Learned labels are at most 1024 × 255 bytes; the rest is noise.
    const BOUND: u64 = 4 * MIB;
    const OURS: Label = Label("stress-registered");
    register_labels(&[OURS]);

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut h = Handler::new();
    let mut ep = RumpsteakEndpoint::new(Party::Bob);
    let connect = |ep: &mut RumpsteakEndpoint<Party>| {
        let (near, far) = SimpleChannel::pair();
        ep.register_channel(Party::Alice, near);
        RumpsteakSession::from(far)
    };
    let mut hostile = connect(&mut ep);
    let (mut learned, mut refused_session, mut refused_process, mut reconnects) = (0, 0, 0, 0);
    let mut before = 0;
    let mut sent = 0;
    while sent < CHOICES {
        for _ in 0..BATCH {
            let frame = wire::encode_label(&rng.label()).unwrap();
            now(hostile.send_frame(frame)).unwrap();
        }
        let mut reconnect = false;
        for _ in 0..BATCH {
            match now(h.offer(&mut ep, Party::Alice)) {
                Ok(_) => learned += 1,
                Err(ChoreographyError::ProtocolViolation {
                    violation: Violation::TooManyLabels { limit, .. },
                    ..
                }) => {
                    if limit == MAX_INTERNED_LABELS {
                        refused_process += 1;
                    } else {
                        assert_eq!(limit, MAX_LABELS_PER_SESSION as usize);
                        refused_session += 1;
                        reconnect = true;
                    }
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        // The peer comes back with a fresh session, and a fresh quota.
        if reconnect {
            hostile = connect(&mut ep);
            reconnects += 1;
        }
        sent += BATCH;
        if sent == 100 * BATCH {
            before = resident_bytes();
        }
    }
    let after = resident_bytes();
    eprintln!(
        "learned or known {learned}, refused per session {refused_session}, per process \
         {refused_process}, reconnects {reconnects}, resident {} KiB -> {} KiB",
        before / 1024,
        after / 1024
    );
    assert_eq!(learned + refused_session + refused_process, CHOICES);
    // The process-wide cap was reached and held from then on.
    assert!(refused_process > CHOICES / 2, "{refused_process}");
    assert!(reconnects as usize >= MAX_INTERNED_LABELS / MAX_LABELS_PER_SESSION as usize);
    assert!(
        after.saturating_sub(before) <= BOUND,
        "resident memory grew by {} KiB",
        after.saturating_sub(before) / 1024
    );
    // The application's own label still goes through, on the same session.
    now(hostile.send_frame(wire::encode_label(OURS.0).unwrap())).unwrap();
    assert_eq!(now(h.offer(&mut ep, Party::Alice)).unwrap(), OURS);
}

#[test]
#[ignore = "stress: ten thousand sessions; run with --release, see docs/reliability.md"]
fn stress_ten_thousand_concurrent_two_party_sessions_all_complete() {
    let _serial = serial();
    const SESSIONS: u64 = 10_000;
    const YES: Label = Label("yes");
    const NO: Label = Label("no");
    register_labels(&[YES, NO]);

    runtime().block_on(async {
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..SESSIONS {
            let (client, mut server) = alice_bob();
            // Every server is waiting before any client starts, so all
            // ten thousand sessions are open at once.
            servers.push(tokio::spawn(async move {
                let mut h = Handler::new();
                let m: Msg = h.recv(&mut server, Party::Alice).await?;
                let label = if m.n.is_multiple_of(2) { YES } else { NO };
                h.choose(&mut server, Party::Alice, label).await?;
                h.send(&mut server, Party::Alice, &msg(m.n * 2)).await?;
                Ok::<_, ChoreographyError>(server)
            }));
            clients.push(client);
        }
        let mut running = Vec::new();
        for (n, mut client) in clients.into_iter().enumerate() {
            running.push(tokio::spawn(async move {
                let mut h = Handler::new();
                let n = n as u64;
                h.send(&mut client, Party::Bob, &msg(n)).await?;
                let label = h.offer(&mut client, Party::Bob).await?;
                let reply: Msg = h.recv(&mut client, Party::Bob).await?;
                Ok::<_, ChoreographyError>((n, label, reply.n))
            }));
        }
        let mut completed = 0;
        for task in running {
            let (n, label, reply) = task.await.unwrap().unwrap();
            assert_eq!(label, if n.is_multiple_of(2) { YES } else { NO });
            assert_eq!(reply, n * 2);
            completed += 1;
        }
        for task in servers {
            let server = task.await.unwrap().unwrap();
            assert_eq!(
                server.get_metadata(&Party::Alice).unwrap().operation_count,
                3
            );
        }
        assert_eq!(completed, SESSIONS);
    });
}

thread_local! {
    static COMPARISONS: Cell<u64> = const { Cell::new(0) };
}

/// A numbered role that counts how often it is compared or hashed: the
/// work an endpoint does to find a peer.
#[derive(Clone, Copy)]
struct Peer(u32);

impl PartialEq for Peer {
    fn eq(&self, other: &Self) -> bool {
        COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0 == other.0
    }
}

impl Eq for Peer {}

impl Hash for Peer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0.hash(state);
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every name the same length, so every peer costs the same heap.
        write!(f, "p{:05}", self.0)
    }
}

impl Role for Peer {
    type Message = u64;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// Allocations and role comparisons of one send to `peer` and one receive
/// from it, measured after a warm-up round.
fn cost_of_one_round(
    ep: &mut RumpsteakEndpoint<Peer>,
    far: &mut [RumpsteakSession],
    peer: u32,
) -> (u64, u64) {
    let mut h = RumpsteakHandler::<Peer, u64>::new();
    let frame = wire::encode_message(&7u64, 0).unwrap();
    let far = &mut far[peer as usize];
    let mut round = |ep: &mut RumpsteakEndpoint<Peer>| {
        now(h.send(ep, Peer(peer), &1u64)).unwrap();
        now(far.send_frame(frame.clone())).unwrap();
        assert_eq!(now(h.recv::<u64>(ep, Peer(peer))).unwrap(), 7);
    };
    round(ep);
    let before = COMPARISONS.with(Cell::get);
    let info = measure(|| {
        // The frame the far side sends is made outside the count below.
        round(ep);
    });
    let comparisons = COMPARISONS.with(Cell::get) - before;
    // The far side's clone of its frame is one allocation of the round.
    (info.count_total - 1, comparisons)
}

fn endpoint_with_peers(n: u32) -> (RumpsteakEndpoint<Peer>, Vec<RumpsteakSession>) {
    let mut ep = RumpsteakEndpoint::new(Peer(u32::MAX));
    let mut far = Vec::new();
    for i in 0..n {
        let (near, other) = SimpleChannel::pair();
        ep.register_channel(Peer(i), near);
        far.push(RumpsteakSession::from(other));
    }
    (ep, far)
}

#[test]
#[ignore = "stress: ten thousand peers; run with --release, see docs/reliability.md"]
fn stress_one_endpoint_with_ten_thousand_peers_keeps_operations_constant_cost() {
    let _serial = serial();
    const PEERS: u32 = 10_000;
    // Past the linear scan (16 peers), so both endpoints find peers through
    // their index: the question is whether the cost grows with the count.
    let (mut small, mut small_far) = endpoint_with_peers(20);
    let reference = cost_of_one_round(&mut small, &mut small_far, 19);

    let (mut big, mut big_far) = endpoint_with_peers(PEERS);
    assert_eq!(big.active_channel_count(), PEERS as usize);
    for peer in [0, 17, PEERS / 2, PEERS - 1] {
        let cost = cost_of_one_round(&mut big, &mut big_far, peer);
        eprintln!(
            "peer {peer}: {} allocations, {} role comparisons",
            cost.0, cost.1
        );
        assert_eq!(
            cost, reference,
            "peer {peer} of {PEERS} against peer 19 of 20"
        );
    }
    // A handful of comparisons per operation: a lookup is a hash and an
    // equality, never a scan.
    assert!(
        reference.1 <= 8,
        "{} comparisons for two operations",
        reference.1
    );
}

#[test]
#[ignore = "stress: ten thousand TCP connections; run with --release, see docs/reliability.md"]
fn stress_ten_thousand_tcp_connect_handshake_close_cycles_leave_the_fd_count_where_it_was() {
    let _serial = serial();
    const CYCLES: usize = 10_000;
    let options = TcpOptions::new().with_linger(Duration::from_millis(20));
    runtime().block_on(async {
        let listener = SessionListener::bind("127.0.0.1:0".parse().unwrap(), "Server", &options)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let cycle = || async {
            let (dialed, accepted) = tokio::join!(
                tcp::connect(addr, "Client", "Server", &options),
                listener.accept("Client")
            );
            let (mut client, mut server) = (dialed.unwrap(), accepted.unwrap());
            client.send_frame(vec![1]).await.unwrap();
            assert_eq!(server.recv_frame().await.unwrap(), vec![1]);
            drop(client);
            assert!(server.recv_frame().await.unwrap_err().is_closed());
        };
        // Warm up: the runtime's own descriptors are open before the count.
        for _ in 0..10 {
            cycle().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = open_fds();
        for _ in 0..CYCLES {
            cycle().await;
        }
        // Lingering halves close within their linger time; wait for them,
        // a bounded number of times.
        let mut after = open_fds();
        for _ in 0..50 {
            if after == before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = open_fds();
        }
        eprintln!("{CYCLES} cycles: {before} descriptors before, {after} after");
        assert_eq!(after, before);
    });
}
