//! `ResumeMesh`: a three-role protocol wired by a `Mesh` with a resume
//! policy, every pair of roles through its own proxy that cuts the
//! connection at seeded random byte offsets (inside frames, between them,
//! inside the handshakes and the resume exchanges). Every message arrives
//! exactly once and in order, every role completes, and the handles count
//! the reconnections. Then the mesh's errors (a role not in the table, a
//! peer that never shows, a name that never resolves), TLS identities
//! through cuts, and WebSocket and QUIC runs with those features.

mod common;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::{ProxyCounts, proxy};
use common::{Rng, msg, num, token_ring};
use rumpsteak_aura_net::tcp::{
    Mesh, MeshAddress, MeshEntry, MeshError, Resolve, ResolveFuture, TcpOptions,
};
use rumpsteak_aura_resume::{MeshSessions, ResumeMesh, ResumePolicy};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout};

/// A generous bound that only a hang reaches (the longest test here takes
/// about a second).
const HANG: Duration = Duration::from_secs(120);

const ROLES: [&str; 3] = ["Buyer", "Seller", "Coordinator"];

/// A role that never listens: the last of a table, whose address nobody
/// dials.
fn unused() -> MeshEntry {
    MeshEntry::from("127.0.0.1:9".parse::<SocketAddr>().unwrap())
}

/// Host names served from a table the test fills, counting the lookups of
/// each name.
#[derive(Debug, Default)]
struct Names {
    table: Mutex<HashMap<String, SocketAddr>>,
    lookups: Mutex<HashMap<String, usize>>,
}

#[derive(Debug, Clone, Default)]
struct Resolver(Arc<Names>);

impl Resolver {
    fn set(&self, host: &str, addr: SocketAddr) {
        self.0.table.lock().unwrap().insert(host.into(), addr);
    }

    fn lookups(&self, host: &str) -> usize {
        self.0
            .lookups
            .lock()
            .unwrap()
            .get(host)
            .copied()
            .unwrap_or(0)
    }
}

impl Resolve for Resolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> ResolveFuture<'a> {
        *self
            .0
            .lookups
            .lock()
            .unwrap()
            .entry(host.into())
            .or_default() += 1;
        let found = self.0.table.lock().unwrap().get(host).copied();
        Box::pin(async move {
            found.map(|a| vec![a]).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no such host `{host}`"))
            })
        })
    }
}

/// Quick reconnections, heartbeats and a reconnect deadline no slow
/// machine reaches.
fn policy() -> ResumePolicy {
    ResumePolicy::new()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(50))
        .with_heartbeat(Duration::from_millis(100), Duration::from_secs(5))
        .with_reconnect_deadline(Duration::from_secs(30))
}

fn mesh(table: Vec<(&'static str, MeshEntry)>, options: TcpOptions) -> Mesh<&'static str> {
    Mesh::from_entries(table)
        .with_role_names(|r: &&str| r.to_string())
        .with_options(options)
        .with_deadline(Duration::from_secs(30))
        .with_retry_backoff(Duration::from_millis(5), Duration::from_millis(50))
}

fn take(wired: &mut MeshSessions<&'static str>, peer: &str) -> RumpsteakSession {
    let i = wired.sessions.iter().position(|(p, _)| *p == peer).unwrap();
    wired.sessions.remove(i).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_mesh_of_three_roles_survives_cuts_on_every_pair() {
    ring(11, 15, 3000).await;
}

/// Many more cuts and messages: 100 cuts per pair, 99,000 messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a stress test: run with --ignored"]
async fn stress_a_resume_mesh_survives_many_cuts_on_every_pair() {
    ring(12, 100, 30_000).await;
}

/// The ring protocol over a `ResumeMesh` of three roles, `cuts` cuts per
/// pair at byte offsets drawn from `seed`, for `rounds` rounds.
async fn ring(seed: u64, cuts: usize, rounds: u64) {
    if std::env::var("RESUME_TRACE").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
    }
    let options = TcpOptions::new()
        .with_session_id("mesh-cuts")
        .with_linger(Duration::from_millis(50));
    // Buyer and Seller listen (a later role dials each); Coordinator,
    // last, only dials.
    let buyer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let seller_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let buyer_at = buyer_listener.local_addr().unwrap();
    let seller_at = seller_listener.local_addr().unwrap();

    // One cutting proxy per pair: each process's table gives its peers'
    // addresses as it reaches them (through its proxy).
    let mut rng = Rng::new(seed);
    let mut budgets = || {
        (0..cuts)
            .map(|_| rng.range(0, 4000) as usize)
            .collect::<Vec<_>>()
    };
    let (seller_to_buyer, sb) = proxy(buyer_at, budgets()).await;
    let (coordinator_to_buyer, cb) = proxy(buyer_at, budgets()).await;
    let (coordinator_to_seller, cs) = proxy(seller_at, budgets()).await;

    // Coordinator reaches its peers by name, looked up on every dial.
    let resolver = Resolver::default();
    resolver.set("buyer.test", coordinator_to_buyer);
    resolver.set("seller.test", coordinator_to_seller);

    let buyer = ResumeMesh::new(
        mesh(
            vec![
                ("Buyer", buyer_at.into()),
                ("Seller", unused()),
                ("Coordinator", unused()),
            ],
            options.clone(),
        ),
        policy(),
    );
    let seller = ResumeMesh::new(
        mesh(
            vec![
                ("Buyer", seller_to_buyer.into()),
                ("Seller", seller_at.into()),
                ("Coordinator", unused()),
            ],
            options.clone(),
        ),
        policy(),
    );
    let coordinator = ResumeMesh::new(
        mesh(
            vec![
                ("Buyer", MeshAddress::name("buyer.test", 1).into()),
                ("Seller", MeshAddress::name("seller.test", 1).into()),
                ("Coordinator", unused()),
            ],
            options,
        )
        .with_resolver(resolver.clone()),
        policy(),
    );
    let (b, s, c) = timeout(HANG, async {
        tokio::join!(
            buyer.connect_with_listener(&"Buyer", buyer_listener),
            seller.connect_with_listener(&"Seller", seller_listener),
            coordinator.connect(&"Coordinator"),
        )
    })
    .await
    .unwrap();
    // Nothing but the sessions is kept: the meshes go now (the listeners
    // that route reconnections live in the sessions' drivers).
    drop((buyer, seller, coordinator));
    let wired = [b.unwrap(), s.unwrap(), c.unwrap()];
    for (i, w) in wired.iter().enumerate() {
        let others: Vec<&str> = ROLES.iter().copied().filter(|r| *r != ROLES[i]).collect();
        assert_eq!(w.peers(), others, "{}: the peers in table order", ROLES[i]);
    }

    // The ring: Buyer -> Seller -> Coordinator -> Buyer, a token per
    // round, and against the ring a report every 10 rounds (so every
    // session carries traffic both ways).
    let reports = rounds / 10;
    let mut tasks = Vec::new();
    for (i, mut w) in wired.into_iter().enumerate() {
        let next = ROLES[(i + 1) % 3];
        let prev = ROLES[(i + 2) % 3];
        let mut to_next = take(&mut w, next);
        let mut from_prev = take(&mut w, prev);
        tasks.push(tokio::spawn(async move {
            token_ring(ROLES[i], i == 0, rounds, &mut to_next, &mut from_prev).await;
            (w, next, prev, to_next, from_prev)
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(timeout(HANG, t).await.unwrap().unwrap());
    }
    // Every frame was handed over and received exactly once: the
    // sessions' own counts, beside the order the roles checked.
    let mut reconnects: HashMap<(&str, &str), u64> = HashMap::new();
    for (i, (w, next, prev, _, _)) in done.iter().enumerate() {
        for (peer, h) in &w.handles {
            let stats = h.stats();
            assert!(
                h.error().is_none(),
                "{} with {peer}: {:?}",
                ROLES[i],
                h.error()
            );
            let (sent, received) = if peer == next {
                (rounds, reports)
            } else {
                assert_eq!(peer, prev);
                (reports, rounds)
            };
            assert_eq!(stats.frames_sent, sent, "{} to {peer}", ROLES[i]);
            assert_eq!(stats.frames_received, received, "{} from {peer}", ROLES[i]);
            reconnects.insert((ROLES[i], peer), stats.reconnects);
        }
    }
    let pairs: [(&str, &str, &ProxyCounts); 3] = [
        ("Seller", "Buyer", &sb),
        ("Coordinator", "Buyer", &cb),
        ("Coordinator", "Seller", &cs),
    ];
    for (dialer, listener, counts) in pairs {
        assert_eq!(
            counts.cuts(),
            cuts,
            "{dialer}-{listener}: every cut happened"
        );
        // Each cut ends one link; a cut inside a handshake or a resume
        // exchange ends an attempt before it counts as a reconnection,
        // so each side counts at most one reconnection per cut, and at
        // least one: the protocol went on past the cuts.
        for (me, peer) in [(dialer, listener), (listener, dialer)] {
            let n = reconnects[&(me, peer)];
            assert!(
                (1..=cuts as u64).contains(&n),
                "{me} with {peer}: {n} reconnections for {cuts} cuts"
            );
        }
        // Every link but the last was cut, and each came from a dial.
        assert!(counts.connections() > cuts, "{dialer}-{listener}");
    }
    eprintln!(
        "reconnections {reconnects:?}; connections {} {} {}; lookups {} {}",
        sb.connections(),
        cb.connections(),
        cs.connections(),
        resolver.lookups("buyer.test"),
        resolver.lookups("seller.test")
    );
    // Every redial looked the name up afresh: the first dial, and one
    // lookup per link after it at least.
    let coordinator_buyer = reconnects[&("Coordinator", "Buyer")] as usize;
    assert!(resolver.lookups("buyer.test") > coordinator_buyer);
    assert!(resolver.lookups("buyer.test") >= cb.connections());
    assert!(resolver.lookups("seller.test") >= cs.connections());
}

#[tokio::test]
async fn a_role_missing_from_the_table_is_a_typed_error() {
    let mesh = ResumeMesh::new(
        mesh(
            vec![("Buyer", unused()), ("Seller", unused())],
            TcpOptions::new(),
        ),
        policy(),
    );
    let err = mesh.connect(&"Auditor").await.unwrap_err();
    assert!(
        matches!(&err, MeshError::NotInTable(r) if r == "Auditor"),
        "{err:?}"
    );

    let same = ResumeMesh::new(
        Mesh::from_entries([("Buyer", unused()), ("Seller", unused())])
            .with_role_names(|_| "Same".into()),
        policy(),
    );
    let err = same.connect(&"Buyer").await.unwrap_err();
    assert!(
        matches!(&err, MeshError::DuplicateRole(r) if r == "Same"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_peer_that_never_shows_ends_at_the_mesh_deadline() {
    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let short = |m: Mesh<&'static str>| {
        ResumeMesh::new(
            m.with_deadline(Duration::from_millis(300))
                .with_retry_backoff(Duration::from_millis(5), Duration::from_millis(20)),
            policy(),
        )
    };
    // The dialing side: Seller dials Buyer, refused until the deadline.
    let seller = short(mesh(
        vec![("Buyer", free.into()), ("Seller", unused())],
        TcpOptions::new(),
    ));
    let started = Instant::now();
    let err = timeout(HANG, seller.connect(&"Seller"))
        .await
        .unwrap()
        .unwrap_err();
    // Only a hang or a lost deadline takes this long.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(err.missing_roles(), ["Buyer"]);
    let MeshError::Incomplete {
        role,
        deadline,
        last_error: Some(last),
        ..
    } = &err
    else {
        panic!("expected Incomplete with the last error, got {err:?}");
    };
    assert_eq!(
        (role.as_str(), *deadline),
        ("Seller", Duration::from_millis(300))
    );
    assert!(last.to_string().contains(&free.to_string()), "{last}");

    // The listening side: Buyer waits for a Seller that never dials.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let buyer = short(mesh(
        vec![("Buyer", at.into()), ("Seller", unused())],
        TcpOptions::new(),
    ));
    let err = timeout(HANG, buyer.connect_with_listener(&"Buyer", listener))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, MeshError::Incomplete { role, missing, .. } if role == "Buyer" && missing == &["Seller"]),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_name_that_never_resolves_is_unresolved() {
    let mesh = ResumeMesh::new(
        mesh(
            vec![
                ("Buyer", MeshAddress::name("nowhere.test", 7000).into()),
                ("Seller", unused()),
            ],
            TcpOptions::new(),
        )
        .with_resolver(Resolver::default())
        .with_deadline(Duration::from_millis(200)),
        policy(),
    );
    let err = timeout(HANG, mesh.connect(&"Seller"))
        .await
        .unwrap()
        .unwrap_err();
    let MeshError::Unresolved {
        peer,
        address,
        source: Some(source),
        ..
    } = &err
    else {
        panic!("expected Unresolved, got {err:?}");
    };
    assert_eq!(
        (peer.as_str(), address.as_str()),
        ("Buyer", "nowhere.test:7000")
    );
    assert!(source.to_string().contains("no such host"), "{source}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_keep_the_listener_until_the_last_one_ends() {
    let options = TcpOptions::new().with_session_id("mesh-keep");
    let (b, s, counts) = two_roles(
        rumpsteak_aura_net::tcp::MeshTransport::Tcp,
        options.clone(),
        options,
        vec![2000],
        Duration::from_secs(30),
    )
    .await;
    let (mut b, mut s) = (b.unwrap(), s.unwrap());
    let at = counts.upstream;
    let (buyer, mut seller) = (take(&mut b, "Seller"), take(&mut s, "Buyer"));
    // Only the sessions are left: the meshes, the handles and the wiring
    // are gone. The listener still routes the reconnection after the cut.
    drop((b, s));
    let buyer = tokio::spawn(async move {
        let mut buyer = buyer;
        for i in 0..1000 {
            buyer.send_frame(msg(i)).await.unwrap();
        }
        buyer.close();
        buyer
    });
    for i in 0..1000 {
        assert_eq!(
            num(&timeout(HANG, seller.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    assert_eq!(counts.cuts(), 1);
    assert!(
        TcpListener::bind(at).await.is_err(),
        "the port is still bound while a session runs"
    );
    drop(timeout(HANG, buyer).await.unwrap().unwrap());
    drop(seller);
    // Once both sessions ended, their drivers let the listener go and the
    // port is free again (polled, bounded by HANG against a hang).
    let freed = timeout(HANG, async {
        loop {
            if let Ok(l) = TcpListener::bind(at).await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "the listener outlived its sessions");
}

/// Two roles exchange `n` numbers each way over `buyer` and `seller`.
async fn exchange(mut buyer: RumpsteakSession, mut seller: RumpsteakSession, n: u64) {
    let b = tokio::spawn(async move {
        for i in 0..n {
            buyer.send_frame(msg(i)).await.unwrap();
            assert_eq!(num(&buyer.recv_frame().await.unwrap()), i + n);
        }
        buyer
    });
    let s = tokio::spawn(async move {
        for i in 0..n {
            assert_eq!(num(&seller.recv_frame().await.unwrap()), i);
            seller.send_frame(msg(i + n)).await.unwrap();
        }
        seller
    });
    let (b, s) = timeout(HANG, async { tokio::join!(b, s) }).await.unwrap();
    drop((b.unwrap(), s.unwrap()));
}

/// Wires Buyer (listening) and Seller (dialing through a proxy with
/// `budgets`) over `transport`, each with its own options.
async fn two_roles(
    transport: rumpsteak_aura_net::tcp::MeshTransport,
    buyer_options: TcpOptions,
    seller_options: TcpOptions,
    budgets: Vec<usize>,
    deadline: Duration,
) -> (
    Result<MeshSessions<&'static str>, MeshError>,
    Result<MeshSessions<&'static str>, MeshError>,
    ProxyCounts,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let (via, counts) = proxy(at, budgets).await;
    let buyer = ResumeMesh::new(
        mesh(
            vec![("Buyer", at.into()), ("Seller", unused())],
            buyer_options,
        )
        .with_transport(transport)
        .with_deadline(deadline),
        policy(),
    );
    let seller = ResumeMesh::new(
        mesh(
            vec![("Buyer", via.into()), ("Seller", unused())],
            seller_options,
        )
        .with_transport(transport)
        .with_deadline(deadline),
        policy(),
    );
    let (b, s) = timeout(HANG, async {
        tokio::join!(
            buyer.connect_with_listener(&"Buyer", listener),
            seller.connect(&"Seller")
        )
    })
    .await
    .unwrap();
    (b, s, counts)
}

/// What two roles wired with the [`PAST_HANDSHAKE`] budgets must do: wire,
/// exchange 2000 numbers each way across every cut, and resume at least
/// once each without an error.
async fn exchange_past_cuts(
    b: Result<MeshSessions<&'static str>, MeshError>,
    s: Result<MeshSessions<&'static str>, MeshError>,
    counts: &ProxyCounts,
) {
    let (mut b, mut s) = (b.unwrap(), s.unwrap());
    let (bh, sh) = (b.handles[0].1.clone(), s.handles[0].1.clone());
    exchange(take(&mut b, "Seller"), take(&mut s, "Buyer"), 2000).await;
    assert_eq!(counts.cuts(), PAST_HANDSHAKE.len());
    for h in [&bh, &sh] {
        assert!(h.error().is_none(), "{:?}", h.error());
        assert!(h.stats().reconnects >= 1, "{:?}", h.stats());
    }
}

/// Budgets past the handshakes, so each link carries frames before its cut.
const PAST_HANDSHAKE: [usize; 3] = [3000, 5000, 4000];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_every_pair_resumes_with_the_same_identities() {
    use rumpsteak_aura_net::tls::dev::DevCa;
    let ca = DevCa::new("mesh CA").unwrap();
    let options = |role: &str| {
        TcpOptions::new()
            .with_session_id("mesh-tls")
            .with_tls(ca.identity(role).unwrap())
    };
    let (b, s, counts) = two_roles(
        rumpsteak_aura_net::tcp::MeshTransport::Tcp,
        options("Buyer"),
        options("Seller"),
        PAST_HANDSHAKE.to_vec(),
        Duration::from_secs(30),
    )
    .await;
    exchange_past_cuts(b, s, &counts).await;

    // A Seller whose certificate comes from another CA is refused in the
    // handshake: neither side wires, and the dialer's error names the
    // refusal.
    let stranger = DevCa::new("another CA").unwrap();
    let (b, s, _) = two_roles(
        rumpsteak_aura_net::tcp::MeshTransport::Tcp,
        options("Buyer"),
        TcpOptions::new()
            .with_session_id("mesh-tls")
            .with_tls(stranger.identity("Seller").unwrap()),
        Vec::new(),
        Duration::from_millis(500),
    )
    .await;
    let Err(MeshError::Incomplete {
        last_error: Some(last),
        ..
    }) = &s
    else {
        panic!("expected Incomplete, got {s:?}");
    };
    assert_eq!(
        last.refusal().map(|r| r.reason()),
        Some(rumpsteak_aura::RefusalReason::UntrustedCertificate),
        "{last}"
    );
    assert!(
        matches!(&b, Err(MeshError::Incomplete { missing, .. }) if missing == &["Seller"]),
        "{b:?}"
    );
}

#[cfg(feature = "websocket")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_websocket_a_mesh_pair_resumes_after_cuts() {
    let options = TcpOptions::new().with_session_id("mesh-ws");
    let (b, s, counts) = two_roles(
        rumpsteak_aura_net::tcp::MeshTransport::WebSocket,
        options.clone(),
        options,
        PAST_HANDSHAKE.to_vec(),
        Duration::from_secs(30),
    )
    .await;
    exchange_past_cuts(b, s, &counts).await;
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_a_three_role_mesh_wires_and_talks() {
    use rumpsteak_aura_net::tcp::MeshTransport;
    use rumpsteak_aura_net::tls::dev::DevCa;
    let ca = DevCa::new("mesh CA").unwrap();
    let mut sockets = Vec::new();
    let mut table = Vec::new();
    for role in ROLES {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        table.push((role, MeshEntry::from(socket.local_addr().unwrap())));
        sockets.push(socket);
    }
    let runs = ROLES.into_iter().zip(sockets).map(|(role, socket)| {
        let options = TcpOptions::new()
            .with_session_id("mesh-quic")
            .with_tls(ca.identity(role).unwrap());
        let mesh = ResumeMesh::new(
            mesh(table.clone(), options).with_transport(MeshTransport::Quic),
            policy(),
        );
        async move {
            let mut wired = mesh.connect_with_socket(&role, socket).await.unwrap();
            for (_, s) in wired.sessions.iter_mut() {
                s.send_frame(role.as_bytes().to_vec()).await.unwrap();
            }
            for (peer, s) in wired.sessions.iter_mut() {
                assert_eq!(s.recv_frame().await.unwrap(), peer.as_bytes());
            }
            wired
        }
    });
    // Every role keeps its sessions until all are done.
    let done = timeout(HANG, futures_join_all(runs)).await.unwrap();
    for w in &done {
        assert_eq!(w.sessions.len(), 2);
        for (_, h) in &w.handles {
            assert_eq!(h.stats().frames_received, 1);
            assert!(h.error().is_none());
        }
    }
}

/// Runs every future to its end, concurrently (as `join_all`, without a
/// dependency for it).
#[cfg(feature = "quic")]
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The resume error a mesh error carries as its last error.
fn last_resume_error(err: &MeshError) -> Option<rumpsteak_aura_resume::ResumeError> {
    let MeshError::Incomplete {
        last_error: Some(last),
        ..
    } = err
    else {
        return None;
    };
    rumpsteak_aura_resume::ResumeError::of(last).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_whose_session_ended_is_refused_at_once() {
    use rumpsteak_aura_resume::{RejectReason, ResumeError};
    // Buyer listens for Seller and Coordinator; Seller listens for
    // Coordinator.
    let options = TcpOptions::new().with_session_id("mesh-restart");
    let buyer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let seller_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let buyer_at = buyer_listener.local_addr().unwrap();
    let table = vec![
        ("Buyer", MeshEntry::from(buyer_at)),
        ("Seller", seller_listener.local_addr().unwrap().into()),
        ("Coordinator", unused()),
    ];
    let wiring = ResumeMesh::new(mesh(table.clone(), options.clone()), policy());
    let (b, s, c) = timeout(HANG, async {
        tokio::join!(
            wiring.connect_with_listener(&"Buyer", buyer_listener),
            wiring.connect_with_listener(&"Seller", seller_listener),
            wiring.connect(&"Coordinator"),
        )
    })
    .await
    .unwrap();
    let (mut b, mut s, mut c) = (b.unwrap(), s.unwrap(), c.unwrap());

    // Seller and Buyer end their session orderly; Buyer's session with
    // Coordinator goes on, and with it Buyer's listener.
    let seller_handle = b.handle(&"Seller").unwrap().clone();
    drop(take(&mut s, "Buyer"));
    let mut buyer_seller = take(&mut b, "Seller");
    assert!(
        timeout(HANG, buyer_seller.recv_frame())
            .await
            .unwrap()
            .is_err()
    );
    drop(buyer_seller);
    timeout(HANG, async {
        while !seller_handle.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();

    // Seller restarts: a new process of the same role, with no state,
    // wires itself to Buyer again. Nothing at Buyer will ever accept it:
    // it is refused at once with a typed error, not left to wait for its
    // deadline (5 s here) with nothing said.
    let restarted = ResumeMesh::new(
        mesh(table[..2].to_vec(), options.clone()).with_deadline(Duration::from_secs(5)),
        policy(),
    );
    let err = timeout(HANG, restarted.connect(&"Seller"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.missing_roles(), ["Buyer"]);
    assert!(
        matches!(
            last_resume_error(&err),
            Some(ResumeError::RefusedByPeer {
                reason: RejectReason::UnknownSession,
                ..
            })
        ),
        "{err:?}"
    );

    // Buyer's other session is untouched.
    let mut buyer_coordinator = take(&mut b, "Coordinator");
    let mut coordinator_buyer = take(&mut c, "Buyer");
    coordinator_buyer.send_frame(msg(7)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, buyer_coordinator.recv_frame())
            .await
            .unwrap()
            .unwrap()),
        7
    );

    // Coordinator restarts while its sessions run: the sessions refuse the
    // new process and end, and its wiring ends too (it sees a peer that
    // resumes a session it does not have, or the refusal, whichever comes
    // first).
    // (Its table names Buyer alone, so that it surely reaches Buyer: with
    // Seller too, the first refusal would end its wiring, maybe before its
    // greeting reached Buyer.)
    let coordinator_handle = b.handle(&"Coordinator").unwrap().clone();
    let restarted = ResumeMesh::new(
        mesh(
            vec![table[0].clone(), ("Coordinator", unused())],
            options.clone(),
        )
        .with_deadline(Duration::from_secs(5)),
        policy(),
    );
    let err = timeout(HANG, restarted.connect(&"Coordinator"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            last_resume_error(&err),
            Some(
                ResumeError::UnknownSession { .. }
                    | ResumeError::RefusedByPeer {
                        reason: RejectReason::PeerRestarted,
                        ..
                    }
            )
        ),
        "{err:?}"
    );
    let ended = timeout(HANG, async {
        loop {
            if let Some(e) = coordinator_handle.error() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(ended, ResumeError::PeerRestarted { .. }),
        "{ended}"
    );
    drop((coordinator_buyer, c));
}

#[tokio::test]
async fn a_listening_role_names_the_handshake_it_refused() {
    // Seller presents another session identifier: Buyer refuses it in the
    // handshake, and Buyer's Incomplete says so, as a plain Mesh's does.
    let (b, s, _) = two_roles(
        rumpsteak_aura_net::tcp::MeshTransport::Tcp,
        TcpOptions::new().with_session_id("mesh-ours"),
        TcpOptions::new().with_session_id("mesh-theirs"),
        Vec::new(),
        Duration::from_millis(500),
    )
    .await;
    // (Seller's own last error may be its dial after Buyer's deadline
    // closed the listener; the test below covers the dialing side.)
    drop(s);
    let Err(MeshError::Incomplete {
        last_error: Some(last),
        ..
    }) = &b
    else {
        panic!("Buyer: expected Incomplete with its last error, got {b:?}");
    };
    assert_eq!(
        last.refusal().map(|r| r.reason()),
        Some(rumpsteak_aura::RefusalReason::WrongSession),
        "Buyer: {last}"
    );
}

/// Buyer listens on every loopback address; Seller reaches it by a name
/// that, after the first link, resolves to another address of Buyer
/// (127.0.0.2) while a cut ends that first link. Seller sends 1000
/// frames; gives Seller's handle and what Buyer received.
async fn peer_back_at_another_address(
    identity_check: bool,
) -> (rumpsteak_aura_resume::ResumeHandle, Vec<u64>) {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first: SocketAddr = ([127, 0, 0, 1], port).into();
    let later: SocketAddr = ([127, 0, 0, 2], port).into();
    let (via, counts) = proxy(first, vec![3000]).await;
    let resolver = Resolver::default();
    resolver.set("buyer.test", via);
    let options = TcpOptions::new().with_session_id("mesh-moved");
    let buyer = ResumeMesh::new(
        mesh(
            vec![("Buyer", first.into()), ("Seller", unused())],
            options.clone(),
        ),
        policy().with_identity_check(identity_check),
    );
    let seller = ResumeMesh::new(
        mesh(
            vec![
                ("Buyer", MeshAddress::name("buyer.test", 1).into()),
                ("Seller", unused()),
            ],
            options,
        )
        .with_resolver(resolver.clone()),
        policy().with_identity_check(identity_check),
    );
    let (b, s) = timeout(HANG, async {
        tokio::join!(
            buyer.connect_with_listener(&"Buyer", listener),
            seller.connect(&"Seller")
        )
    })
    .await
    .unwrap();
    let (mut b, mut s) = (b.unwrap(), s.unwrap());
    resolver.set("buyer.test", later);
    let handle = s.handles[0].1.clone();
    let mut to_buyer = take(&mut s, "Buyer");
    let mut from_seller = take(&mut b, "Seller");
    let sending = tokio::spawn(async move {
        for i in 0..1000 {
            if to_buyer.send_frame(msg(i)).await.is_err() {
                break;
            }
        }
        to_buyer
    });
    // Until all arrived or Seller's session ended (Buyer's own would wait
    // out its reconnect deadline: the refusal comes before any greeting).
    let seller_ended = || async {
        while handle.error().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let mut got = Vec::new();
    while got.len() < 1000 {
        let f = tokio::select! {
            f = timeout(HANG, from_seller.recv_frame()) => f.unwrap().unwrap(),
            () = seller_ended() => break,
        };
        got.push(num(&f));
    }
    drop(timeout(HANG, sending).await.unwrap().unwrap());
    assert_eq!(counts.cuts(), 1, "the first link was cut");
    (handle, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_plain_tcp_a_peer_back_at_another_address_needs_the_identity_check_off() {
    use rumpsteak_aura_resume::ResumeError;
    // Over plain TCP a link's identity is its peer's address: with the
    // check on (the default), the new address is another identity.
    let (handle, got) = peer_back_at_another_address(true).await;
    assert!(got.len() < 1000, "{} frames arrived", got.len());
    let error = handle.error();
    assert!(
        matches!(
            &error,
            Some(ResumeError::IdentityChanged { expected, presented })
                if expected == "address:127.0.0.1"
                    && presented.as_deref() == Some("address:127.0.0.2")
        ),
        "{error:?}"
    );
    // With the check off, the session resumes at the new address.
    let (handle, got) = peer_back_at_another_address(false).await;
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert!(handle.error().is_none(), "{:?}", handle.error());
    assert!(handle.stats().reconnects >= 1, "{:?}", handle.stats());
}

#[tokio::test]
async fn a_plain_mesh_peer_is_refused_for_its_version_on_both_sides() {
    use rumpsteak_aura::RefusalReason;
    let version = |result: &Result<_, MeshError>| match result {
        Err(MeshError::Incomplete {
            last_error: Some(last),
            ..
        }) => last.refusal().map(|r| r.reason()),
        _ => None,
    };
    let options = TcpOptions::new().with_session_id("mesh-versions");
    // The listening side waits longer, so that every dial meets its
    // listener: a dial after the listener closed would be the dialer's
    // last error.
    let (dialing_deadline, listening_deadline) =
        (Duration::from_millis(400), Duration::from_millis(1200));
    // A resumable Buyer listens, a plain Seller dials; then the other way.
    for resumable_listens in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let table = vec![
            ("Buyer", listener.local_addr().unwrap().into()),
            ("Seller", unused()),
        ];
        let (plain_deadline, resumable_deadline) = if resumable_listens {
            (dialing_deadline, listening_deadline)
        } else {
            (listening_deadline, dialing_deadline)
        };
        let plain = mesh(table.clone(), options.clone()).with_deadline(plain_deadline);
        let resumable = ResumeMesh::new(
            mesh(table, options.clone()).with_deadline(resumable_deadline),
            policy(),
        );
        let (listening, dialing) = if resumable_listens {
            let (l, d) = tokio::join!(
                resumable.connect_with_listener(&"Buyer", listener),
                plain.connect(&"Seller")
            );
            (version(&l.map(|_| ())), version(&d.map(|_| ())))
        } else {
            let (l, d) = tokio::join!(
                plain.connect_with_listener(&"Buyer", listener),
                resumable.connect(&"Seller")
            );
            (version(&l.map(|_| ())), version(&d.map(|_| ())))
        };
        assert_eq!(
            (listening, dialing),
            (Some(RefusalReason::Version), Some(RefusalReason::Version)),
            "the resumable side listens: {resumable_listens}"
        );
    }
}
