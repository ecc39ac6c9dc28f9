//! Mesh tables of host names, bind addresses apart from advertised ones,
//! IPv6, and names whose address changes between retries.
#![cfg(feature = "tcp")]

mod common;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::within;
use rumpsteak_aura_net::tcp::{
    Mesh, MeshAddress, MeshEntry, MeshError, Resolve, ResolveFuture, SystemResolver,
};
use rumpsteak_aura_transport::RumpsteakSession;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    A,
    B,
    C,
    D,
}

/// A free TCP port on `ip`, found by binding port 0 and letting go.
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn addr(text: &str) -> MeshAddress {
    text.parse().unwrap()
}

/// Every pair greets over its session, both ways.
async fn greet_all(me: Role, sessions: &mut [(Role, RumpsteakSession)]) {
    for (_, session) in sessions.iter_mut() {
        session
            .send_frame(format!("{me:?}").into_bytes())
            .await
            .unwrap();
    }
    for (peer, session) in sessions.iter_mut() {
        let greeting = within(5, session.recv_frame()).await.unwrap();
        assert_eq!(
            greeting,
            format!("{peer:?}").into_bytes(),
            "{me:?} from {peer:?}"
        );
    }
}

/// A table of `localhost` names and distinct loopback addresses (Linux
/// routes all of 127/8 to `lo`), each role listening on a wildcard
/// address (`0.0.0.0` or `[::]`) apart from the address its peers dial,
/// and one role reached over IPv6 (`[::1]`).
#[tokio::test]
async fn names_loopback_addresses_and_wildcard_binds_wire_every_pair() {
    let (pa, pb, pc) = (free_port("0.0.0.0"), free_port("0.0.0.0"), free_port("::"));
    let table = [
        // Reached by name (the system resolver: /etc/hosts), listening on
        // every IPv6 and (dual-stack) IPv4 address.
        (
            Role::A,
            MeshEntry::new(addr(&format!("localhost:{pa}"))).with_bind(addr(&format!("[::]:{pa}"))),
        ),
        (
            Role::B,
            MeshEntry::new(addr(&format!("127.0.0.2:{pb}")))
                .with_bind(addr(&format!("0.0.0.0:{pb}"))),
        ),
        // Reached over IPv6 loopback.
        (
            Role::C,
            MeshEntry::new(addr(&format!("[::1]:{pc}"))).with_bind(addr(&format!("[::]:{pc}"))),
        ),
        // The last role only dials; its address is never used.
        (Role::D, MeshEntry::new(addr("127.0.0.3:9"))),
    ];
    let mesh = Mesh::from_entries(table).with_deadline(Duration::from_secs(10));
    let roles = [Role::A, Role::B, Role::C, Role::D];
    let tasks = roles.map(|role| {
        let mesh = &mesh;
        async move {
            let mut sessions = mesh.connect(&role).await.unwrap();
            let peers: Vec<Role> = sessions.iter().map(|(p, _)| *p).collect();
            let expected: Vec<Role> = roles.into_iter().filter(|r| *r != role).collect();
            assert_eq!(peers, expected);
            greet_all(role, &mut sessions).await;
        }
    });
    // Generous: wiring on loopback takes milliseconds; the bound only
    // turns a hang into a failure on a loaded machine.
    within(20, futures::future::join_all(tasks)).await;
}

/// The wildcard bind is what listens: a peer can dial the role at another
/// loopback address than the advertised one.
#[tokio::test]
async fn the_bind_address_is_what_listens() {
    let port = free_port("0.0.0.0");
    let table = [
        (
            Role::A,
            MeshEntry::new(addr(&format!("127.0.0.5:{port}")))
                .with_bind(addr(&format!("0.0.0.0:{port}"))),
        ),
        (Role::B, MeshEntry::new(addr("127.0.0.1:9"))),
    ];
    // B's copy of the table points at another address of the same
    // listener.
    let other = [
        (Role::A, MeshEntry::new(addr(&format!("127.0.0.7:{port}")))),
        (Role::B, MeshEntry::new(addr("127.0.0.1:9"))),
    ];
    let a = Mesh::from_entries(table).with_deadline(Duration::from_secs(10));
    let b = Mesh::from_entries(other).with_deadline(Duration::from_secs(10));
    let (ra, rb) = within(20, async {
        tokio::join!(a.connect(&Role::A), b.connect(&Role::B))
    })
    .await;
    let (mut ra, mut rb) = (ra.unwrap(), rb.unwrap());
    rb[0].1.send_frame(b"via .7".to_vec()).await.unwrap();
    assert_eq!(within(5, ra[0].1.recv_frame()).await.unwrap(), b"via .7");
}

/// A resolver whose answers the test changes, counting its lookups.
#[derive(Debug, Default)]
struct Registry {
    names: Mutex<HashMap<String, Vec<SocketAddr>>>,
    lookups: AtomicUsize,
}

impl Registry {
    fn set(&self, host: &str, addrs: Vec<SocketAddr>) {
        self.names.lock().unwrap().insert(host.to_string(), addrs);
    }
}

#[derive(Debug, Clone)]
struct Shared(Arc<Registry>);

impl Resolve for Shared {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            self.0.lookups.fetch_add(1, Ordering::SeqCst);
            match self.0.names.lock().unwrap().get(host) {
                // The registry gives full socket addresses: a service moved
                // to another port keeps its name.
                Some(addrs) => Ok(addrs.clone()),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no such name `{host}` (port {port})"),
                )),
            }
        })
    }
}

/// A peer restarted under another address and port of the same name is
/// found on a retry: the dialer looks the name up again before every
/// attempt.
#[tokio::test]
async fn a_peer_restarted_on_another_port_is_found_on_retry() {
    let registry = Arc::new(Registry::default());
    // The first instance of A was at .2:old; it is gone (nothing listens
    // there), so dials to it are refused.
    let old: SocketAddr = format!("127.0.0.2:{}", free_port("127.0.0.2"))
        .parse()
        .unwrap();
    registry.set("a.test", vec![old]);
    let table = [
        (Role::A, MeshEntry::new(addr("a.test:7000"))),
        (Role::B, MeshEntry::new(addr("b.test:7000"))),
    ];
    let mesh_b = Mesh::from_entries(table.clone())
        .with_resolver(Shared(Arc::clone(&registry)))
        .with_deadline(Duration::from_secs(10))
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(50));
    let b = tokio::spawn(async move { mesh_b.connect(&Role::B).await });

    // Let B fail against the old address a few times.
    let started = Instant::now();
    while registry.lookups.load(Ordering::SeqCst) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B did not retry"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A comes back at .3 on another port, and the name follows it.
    let new: SocketAddr = format!("127.0.0.3:{}", free_port("127.0.0.3"))
        .parse()
        .unwrap();
    assert_ne!(new.port(), old.port());
    registry.set("a.test", vec![new]);
    let restarted = [
        (
            Role::A,
            MeshEntry::new(addr("a.test:7000")).with_bind(new.into()),
        ),
        (Role::B, MeshEntry::new(addr("b.test:7000"))),
    ];
    let mesh_a = Mesh::from_entries(restarted).with_deadline(Duration::from_secs(10));
    let mut a = within(15, mesh_a.connect(&Role::A)).await.unwrap();
    let mut b = within(15, b).await.unwrap().unwrap();
    b[0].1.send_frame(b"found you".to_vec()).await.unwrap();
    assert_eq!(within(5, a[0].1.recv_frame()).await.unwrap(), b"found you");
    assert!(registry.lookups.load(Ordering::SeqCst) >= 4);
}

/// A name that never resolves ends the wiring at the deadline with an
/// error naming the role, the peer and the name.
#[tokio::test]
async fn a_name_that_never_resolves_is_named_at_the_deadline() {
    let registry = Arc::new(Registry::default());
    let table = [
        (Role::A, MeshEntry::new(addr("seller.shop.internal:7000"))),
        (Role::B, MeshEntry::new(addr("127.0.0.1:9"))),
    ];
    let deadline = Duration::from_millis(300);
    let mesh = Mesh::from_entries(table)
        .with_resolver(Shared(Arc::clone(&registry)))
        .with_deadline(deadline)
        .with_retry_backoff(Duration::from_millis(5), Duration::from_millis(20));
    let started = Instant::now();
    let err = within(5, mesh.connect(&Role::B)).await.unwrap_err();
    // Generous: the deadline is 300 ms; a second of slack for a loaded
    // machine still shows it did not wait for anything else.
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    assert!(registry.lookups.load(Ordering::SeqCst) >= 2, "retried");
    assert!(
        matches!(&err, MeshError::Unresolved { peer, .. } if peer == "A"),
        "{err:?}"
    );
    assert_eq!(err.missing_roles(), ["A"]);
    assert_eq!(
        err.to_string(),
        "role `B` could not resolve `seller.shop.internal:7000`, the address of `A`, \
         within 300ms: no such name `seller.shop.internal` (port 7000)"
    );
}

/// A lookup that never answers is cut by the deadline too, and said so.
#[tokio::test]
async fn a_lookup_that_hangs_ends_at_the_deadline() {
    #[derive(Debug)]
    struct Silent;
    impl Resolve for Silent {
        fn resolve<'a>(&'a self, _: &'a str, _: u16) -> ResolveFuture<'a> {
            Box::pin(std::future::pending())
        }
    }
    let table = [
        (Role::A, MeshEntry::new(addr("a.test:7000"))),
        (Role::B, MeshEntry::new(addr("b.test:7000"))),
    ];
    let mesh = Mesh::from_entries(table)
        .with_resolver(Silent)
        .with_deadline(Duration::from_millis(200));
    let err = within(5, mesh.connect(&Role::B)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "role `B` could not resolve `a.test:7000`, the address of `A`, within 200ms \
         (no lookup answered in time)"
    );
    // The listening side cannot resolve its own name either: a listen
    // error naming it.
    let err = within(5, mesh.connect(&Role::A)).await.unwrap_err();
    assert!(matches!(err, MeshError::Listen { .. }), "{err:?}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("a.test:7000"), "{source}");
}

/// Tables made of socket addresses keep working as before, and list
/// their rows both ways.
#[tokio::test]
async fn socket_address_tables_are_unchanged() {
    let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let mesh = Mesh::new([(Role::A, a), (Role::B, a)]);
    assert_eq!(mesh.table(), [(Role::A, a), (Role::B, a)]);
    let named = Mesh::from_entries([
        (Role::A, MeshEntry::from(a)),
        (Role::B, MeshEntry::new(addr("localhost:7002"))),
    ]);
    // `table` holds the socket-address rows; `entries` every row.
    assert_eq!(named.table(), [(Role::A, a)]);
    let rows: Vec<String> = named
        .entries()
        .map(|(_, e)| e.address().to_string())
        .collect();
    assert_eq!(rows, ["127.0.0.1:7001", "localhost:7002"]);
}

/// The system resolver answers `localhost` from the hosts file.
#[tokio::test]
async fn the_system_resolver_resolves_localhost() {
    let addrs = within(10, addr("localhost:7000").resolve(&SystemResolver))
        .await
        .unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 7000),
        "{addrs:?}"
    );
}

#[test]
fn malformed_addresses_are_refused_with_the_reason() {
    for (text, message) in [
        ("seller", "`seller` has no port (write `host:port`)"),
        (
            "seller:70000",
            "`seller:70000`: the port `70000` is not a number from 0 to 65535",
        ),
        (
            "seller:http",
            "`seller:http`: the port `http` is not a number from 0 to 65535",
        ),
        (":7000", "`:7000`: the host name is empty"),
        (
            "::1:7000",
            "`::1:7000`: an IPv6 address needs brackets, as in `[::1]:7000`",
        ),
        (
            "[::g]:7000",
            "`[::g]:7000`: not an IPv6 address in brackets",
        ),
        ("300.1.1.1:7000", "`300.1.1.1:7000`: not an IPv4 address"),
        (
            "sel ler:7000",
            "`sel ler:7000`: not a host name (dot-separated labels of letters, digits, `-` and `_`)",
        ),
    ] {
        let err = text.parse::<MeshAddress>().unwrap_err();
        assert_eq!(err.to_string(), message, "{text}");
    }
    assert_eq!(
        addr("seller.shop.internal.:7000"),
        MeshAddress::name("seller.shop.internal.", 7000)
    );
    assert_eq!(addr("[::1]:7000").to_string(), "[::1]:7000");
}

/// Bracketed IPv6 addresses and ports: the error names what is really
/// wrong (the port, a missing port, an interface name as the zone), and
/// a numeric zone is kept.
#[test]
fn ipv6_and_port_errors_name_the_part_at_fault() {
    for (text, message) in [
        (
            "[::1]:70000",
            "`[::1]:70000`: the port `70000` is not a number from 0 to 65535",
        ),
        ("[::1]", "`[::1]` has no port (write `host:port`)"),
        ("[::1]:", "`[::1]:` has no port (write `host:port`)"),
        (
            "[::1]:7000]",
            "`[::1]:7000]`: the port `7000]` is not a number from 0 to 65535",
        ),
        ("seller:", "`seller:` has no port (write `host:port`)"),
        (
            "seller:+7000",
            "`seller:+7000`: the port `+7000` is not a number from 0 to 65535",
        ),
        (
            "127.0.0.1:+7000",
            "`127.0.0.1:+7000`: the port `+7000` is not a number from 0 to 65535",
        ),
        (
            "[fe80::1%eth0]:7000",
            "`[fe80::1%eth0]:7000`: the zone of a scoped IPv6 address must be a number \
             (the interface index, as in `[fe80::1%2]:7000`), not an interface name",
        ),
        (
            "[fe80::1%99999999999]:7000",
            "`[fe80::1%99999999999]:7000`: the zone of a scoped IPv6 address is not an \
             interface index (below 2^32)",
        ),
    ] {
        let err = text.parse::<MeshAddress>().unwrap_err();
        assert_eq!(err.to_string(), message, "{text}");
    }
    let scoped = addr("[fe80::1%2]:7000");
    let MeshAddress::Socket(SocketAddr::V6(v6)) = scoped else {
        panic!("{scoped:?}");
    };
    assert_eq!((v6.scope_id(), v6.port()), (2, 7000));
    assert_eq!(scoped.to_string(), "[fe80::1%2]:7000");
}

/// Names and wildcard binds over the other transports: WebSocket (TCP
/// ports) and QUIC (UDP ports, TLS identities made now).
#[cfg(all(feature = "websocket", feature = "quic", feature = "dev-certs"))]
#[tokio::test]
async fn names_and_wildcard_binds_over_websocket_and_quic() {
    use rumpsteak_aura_net::tcp::{MeshTransport, TcpOptions};
    use rumpsteak_aura_net::tls::dev::DevCa;

    let ca = DevCa::new("mesh addresses CA").unwrap();
    let udp_port = |ip: &str| {
        std::net::UdpSocket::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    for transport in [MeshTransport::WebSocket, MeshTransport::Quic] {
        let (pa, pb) = match transport {
            MeshTransport::Quic => (udp_port("::"), udp_port("0.0.0.0")),
            _ => (free_port("::"), free_port("0.0.0.0")),
        };
        let table = [
            (
                Role::A,
                MeshEntry::new(addr(&format!("localhost:{pa}")))
                    .with_bind(addr(&format!("[::]:{pa}"))),
            ),
            (
                Role::B,
                MeshEntry::new(addr(&format!("127.0.0.2:{pb}")))
                    .with_bind(addr(&format!("0.0.0.0:{pb}"))),
            ),
            (Role::C, MeshEntry::new(addr("127.0.0.3:9"))),
        ];
        let roles = [Role::A, Role::B, Role::C];
        let tasks = roles.map(|role| {
            let options = TcpOptions::new().with_tls(ca.identity(&format!("{role:?}")).unwrap());
            let mesh = Mesh::from_entries(table.clone())
                .with_transport(transport)
                .with_options(options)
                .with_deadline(Duration::from_secs(10));
            async move {
                let mut sessions = mesh.connect(&role).await.unwrap();
                assert_eq!(sessions.len(), 2, "{transport:?}");
                greet_all(role, &mut sessions).await;
            }
        });
        // Generous: loopback wiring takes milliseconds.
        within(20, futures::future::join_all(tasks)).await;
    }
}

/// A lookup that hangs is one failed attempt, not the end of retrying:
/// it is cut at the connect timeout and the name is looked up afresh, so
/// a resolver that recovers is used long before the deadline.
#[tokio::test]
async fn a_hung_lookup_is_cut_and_the_name_looked_up_again() {
    /// Hangs at its first lookup; answers `addr` from then on.
    #[derive(Debug)]
    struct HangsOnce {
        calls: AtomicUsize,
        addr: SocketAddr,
    }
    impl Resolve for HangsOnce {
        fn resolve<'a>(&'a self, _: &'a str, _: u16) -> ResolveFuture<'a> {
            let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                if first {
                    std::future::pending::<()>().await;
                }
                Ok(vec![self.addr])
            })
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let table = [
        (Role::A, MeshEntry::new(addr("a.test:7000"))),
        (Role::B, MeshEntry::new(addr("127.0.0.1:9"))),
    ];
    let deadline = Duration::from_secs(5);
    let options =
        rumpsteak_aura_net::tcp::TcpOptions::new().with_connect_timeout(Duration::from_millis(100));
    let a = Mesh::from_entries(table.clone()).with_deadline(deadline);
    let b = Mesh::from_entries(table)
        .with_resolver(HangsOnce {
            calls: AtomicUsize::new(0),
            addr: at,
        })
        .with_options(options)
        .with_deadline(deadline)
        .with_retry_backoff(Duration::from_millis(5), Duration::from_millis(20));
    let started = Instant::now();
    let (ra, rb) = within(20, async {
        tokio::join!(
            a.connect_with_listener(&Role::A, listener),
            b.connect(&Role::B)
        )
    })
    .await;
    let (mut ra, mut rb) = (ra.unwrap(), rb.unwrap());
    // Well before the 5 s deadline (the cut is at 100 ms): the second
    // lookup found A, not the end of wiring.
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    rb[0].1.send_frame(b"second lookup".to_vec()).await.unwrap();
    assert_eq!(
        within(5, ra[0].1.recv_frame()).await.unwrap(),
        b"second lookup"
    );
}
