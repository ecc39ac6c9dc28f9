//! Real sockets under faults: an in-test TCP proxy sits between two roles
//! and, once armed, delays, cuts mid-frame, resets (linger 0) or
//! blackholes their connection. Over TCP and over WebSocket, the pending
//! operation on each side ends with a typed error within a bound (a delay
//! only slows the exchange, which still completes), and afterwards no task
//! and no file descriptor is left behind.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Handler, Msg, Party, endpoint, msg, open_fds, within};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, TransportErrorKind};
use rumpsteak_aura_handler::RumpsteakSession;
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_net::websocket::{self, WebSocketListener};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NetFault {
    /// Every chunk waits this long before it is forwarded.
    Delay(Duration),
    /// Forwards this many more bytes, then closes both connections.
    CutAfter(usize),
    /// Closes both connections with linger 0: the peers see a reset.
    Reset,
    /// Reads and discards everything, forwards nothing, closes nothing.
    Blackhole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    WebSocket,
}

/// A proxy for one connection; dropping it ends its task.
struct Proxy {
    addr: SocketAddr,
    arm: watch::Sender<Option<NetFault>>,
    task: tokio::task::JoinHandle<()>,
}

async fn proxy(upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arm, fault) = watch::channel(None);
    let task = tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        pump(client, server, fault).await;
    });
    Proxy { addr, arm, task }
}

/// Forwards both ways, applying the armed fault; returns (closing both
/// connections) when either side closes, the fault says so, or the proxy
/// is dropped.
async fn pump(mut a: TcpStream, mut b: TcpStream, mut fault: watch::Receiver<Option<NetFault>>) {
    let (mut from_a, mut from_b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut budget = None;
    loop {
        let now = *fault.borrow_and_update();
        match now {
            Some(NetFault::Reset) => {
                for s in [&a, &b] {
                    let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
                }
                return;
            }
            Some(NetFault::CutAfter(n)) if budget.is_none() => budget = Some(n),
            _ => {}
        }
        let forward = tokio::select! {
            r = a.read(&mut from_a) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => (true, n),
            },
            r = b.read(&mut from_b) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => (false, n),
            },
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let (to, chunk) = match forward {
            (true, n) => (&mut b, &from_a[..n]),
            (false, n) => (&mut a, &from_b[..n]),
        };
        let chunk = match now {
            None | Some(NetFault::Reset) => chunk,
            Some(NetFault::Delay(d)) => {
                tokio::time::sleep(d).await;
                chunk
            }
            Some(NetFault::Blackhole) => continue,
            Some(NetFault::CutAfter(_)) => {
                let left = budget.unwrap_or(0);
                let take = left.min(chunk.len());
                budget = Some(left - take);
                if take < chunk.len() || left == take {
                    let _ = to.write_all(&chunk[..take]).await;
                    return;
                }
                chunk
            }
        };
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}

fn options(fault: NetFault) -> TcpOptions {
    let options = TcpOptions::new().with_linger(Duration::from_millis(100));
    match fault {
        // Only a read deadline notices a silent network soon; keepalive
        // would, after minutes.
        NetFault::Blackhole => options.with_read_deadline(Duration::from_millis(300)),
        _ => options,
    }
}

/// Alice dials through the proxy, Bob listens behind it.
async fn sessions(kind: Kind, options: &TcpOptions) -> (RumpsteakSession, RumpsteakSession, Proxy) {
    let loopback = "127.0.0.1:0".parse().unwrap();
    match kind {
        Kind::Tcp => {
            let listener = SessionListener::bind(loopback, "Bob", options)
                .await
                .unwrap();
            let proxy = proxy(listener.local_addr()).await;
            let (a, b) = tokio::join!(
                tcp::connect(proxy.addr, "Alice", "Bob", options),
                listener.accept("Alice")
            );
            (a.unwrap(), b.unwrap(), proxy)
        }
        Kind::WebSocket => {
            let listener = WebSocketListener::bind(loopback, "Bob", options)
                .await
                .unwrap();
            let proxy = proxy(listener.local_addr()).await;
            let (a, b) = tokio::join!(
                websocket::connect(proxy.addr, "Alice", "Bob", options),
                listener.accept("Alice")
            );
            (a.unwrap(), b.unwrap(), proxy)
        }
    }
}

fn assert_typed(kind: Kind, fault: NetFault, who: &str, e: &ChoreographyError) {
    let t = e
        .as_transport()
        .unwrap_or_else(|| panic!("{kind:?} {fault:?} {who}: not a transport error: {e}"));
    if fault == NetFault::Blackhole {
        assert!(
            matches!(t.kind(), TransportErrorKind::ReadDeadline(_)),
            "{kind:?} {who}: {e}"
        );
    }
}

async fn scenario(kind: Kind, fault: NetFault) {
    let rt = tokio::runtime::Handle::current();
    let (fds, tasks) = (open_fds(), rt.metrics().num_alive_tasks());
    let options = options(fault);
    let (a, b, proxy) = sessions(kind, &options).await;
    let mut alice = endpoint(Party::Alice, Party::Bob, a);
    let mut bob = endpoint(Party::Bob, Party::Alice, b);
    let mut h = Handler::new();

    // Through the proxy, before the fault.
    h.send(&mut alice, Party::Bob, &msg(0)).await.unwrap();
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(0));

    // Both sides have an operation pending when the fault strikes.
    let bob_task = tokio::spawn(async move {
        let mut h = Handler::new();
        let got = h.recv::<Msg>(&mut bob, Party::Alice).await;
        if let Ok(m) = &got {
            h.send(&mut bob, Party::Alice, &msg(m.n + 1)).await.unwrap();
        }
        (got, bob)
    });
    proxy.arm.send_replace(Some(fault));
    let alice_task = tokio::spawn(async move {
        let mut h = Handler::new();
        let outgoing = match fault {
            // Big enough to be cut in the middle.
            NetFault::CutAfter(_) => Msg {
                text: "x".repeat(1 << 20),
                n: 1,
            },
            _ => msg(1),
        };
        let sent = h.send(&mut alice, Party::Bob, &outgoing).await;
        let got = h.recv::<Msg>(&mut alice, Party::Bob).await;
        (sent, got, alice)
    });

    let (bob_got, bob) = within(10, bob_task).await.unwrap();
    let (alice_sent, alice_got, alice) = within(10, alice_task).await.unwrap();
    match fault {
        NetFault::Delay(_) => {
            assert_eq!(bob_got.unwrap(), msg(1), "{kind:?}");
            alice_sent.unwrap();
            assert_eq!(alice_got.unwrap(), msg(2), "{kind:?}");
        }
        _ => {
            assert_typed(kind, fault, "Bob", &bob_got.unwrap_err());
            assert_typed(kind, fault, "Alice", &alice_got.unwrap_err());
            // The send may have reached the kernel before the fault did.
            if let Err(e) = alice_sent {
                assert_typed(kind, fault, "Alice's send", &e);
            }
        }
    }

    drop((alice, bob, proxy.arm));
    within(10, proxy.task).await.unwrap();
    // Closed sockets linger at most their linger time: wait for them, a
    // bounded number of times.
    // (Fewer than at the start is fine: another test's sockets may have
    // been closing when the count was taken.)
    for _ in 0..50 {
        if open_fds() <= fds && rt.metrics().num_alive_tasks() == tasks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = open_fds();
    assert!(
        open <= fds,
        "{kind:?} {fault:?}: descriptors left open ({open}, {fds} at the start)"
    );
    assert_eq!(
        rt.metrics().num_alive_tasks(),
        tasks,
        "{kind:?} {fault:?}: tasks left"
    );
}

const FAULTS: [NetFault; 4] = [
    NetFault::Delay(Duration::from_millis(30)),
    NetFault::CutAfter(1000),
    NetFault::Reset,
    NetFault::Blackhole,
];

// One test for all the faults (and the check of a reset's error kind), so
// that no other test's runtime opens descriptors while these are counted.
#[tokio::test]
async fn tcp_and_websocket_faults_end_pending_operations_with_typed_errors_and_leak_nothing() {
    for kind in [Kind::Tcp, Kind::WebSocket] {
        for fault in FAULTS {
            scenario(kind, fault).await;
        }
    }
    // In the same test, after the counting: its sockets would change the
    // counts.
    a_reset_websocket_send_is_an_io_error_as_over_tcp().await;
}

/// A reset reaches the caller of a send as `TransportErrorKind::Io` over
/// WebSocket as over TCP (it used to arrive as `Other` wrapping
/// tungstenite's error, so code matching `Io` to detect a dead peer missed
/// it on WebSocket).
async fn a_reset_websocket_send_is_an_io_error_as_over_tcp() {
    let options = options(NetFault::Reset);
    let (a, b, proxy) = sessions(Kind::WebSocket, &options).await;
    let mut alice = endpoint(Party::Alice, Party::Bob, a);
    let _bob = endpoint(Party::Bob, Party::Alice, b);
    proxy.arm.send_replace(Some(NetFault::Reset));
    within(10, proxy.task).await.unwrap();
    let mut h = Handler::new();
    let e = within(10, async {
        loop {
            if let Err(e) = h.send(&mut alice, Party::Bob, &msg(1)).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let kind = e.as_transport().map(|t| t.kind());
    assert!(
        matches!(kind, Some(TransportErrorKind::Io(_))),
        "{e}: {kind:?}"
    );
}
