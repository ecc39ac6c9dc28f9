//! A peer *process* killed mid-protocol: the surviving side's pending
//! receive ends with a transport error in bounded time, never a hang or a
//! panic.
//!
//! The peer is this test binary run again as a child process, selected by
//! an environment variable: `child_peer` does nothing in a normal run and
//! plays the seller when the variable names the address to dial.
#![cfg(feature = "tcp")]

mod network;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use network::{Endpoint, Error, Handler, Offer, Role, any_port};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError};
use rumpsteak_aura_choreography::transport::tcp::{self, SessionListener, TcpOptions};

/// Set in the child's environment to the address it dials.
const CHILD_ADDR: &str = "RUMPSTEAK_PEER_DEATH_ADDR";

/// How long the child waits for being killed before it gives up and exits,
/// so that a failed run leaves no process behind for long.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

#[test]
#[ignore = "the child process of `a_killed_peer_process_ends_the_pending_receive`"]
fn child_peer() {
    let Ok(addr) = std::env::var(CHILD_ADDR) else {
        return;
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        panic!("bad {CHILD_ADDR}: {addr}");
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("child: no runtime: {e}"),
    };
    rt.block_on(async move {
        let session = match tcp::connect(addr, "Seller", "Coordinator", &TcpOptions::new()).await {
            Ok(s) => s,
            Err(e) => panic!("child: connect: {e}"),
        };
        let mut ep = Endpoint::new(Role::Seller);
        ep.register_session(Role::Coordinator, session);
        let mut handler = Handler::new();
        let offer = Offer {
            item: "lamp".into(),
            price: 40,
        };
        if let Err(e) = handler.send(&mut ep, Role::Coordinator, &offer).await {
            panic!("child: send: {e}");
        }
        // Mid-protocol: the coordinator now waits for the next step, which
        // never comes. The parent kills this process here.
        tokio::time::sleep(CHILD_LIFETIME).await;
    });
}

/// Kills the child however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(addr: SocketAddr) -> Result<KillOnDrop, Error> {
    let child = Command::new(std::env::current_exe()?)
        .args(["--exact", "child_peer", "--nocapture", "--ignored"])
        .env(CHILD_ADDR, addr.to_string())
        .stdout(Stdio::null())
        .spawn()?;
    Ok(KillOnDrop(child))
}

/// How the child is taken out mid-protocol.
#[derive(Clone, Copy)]
enum Fate {
    /// SIGKILL: the process is gone, its kernel closes the connection.
    Killed,
    /// SIGSTOP: the process hangs, its connection stays open and silent,
    /// as with a frozen machine.
    #[cfg(unix)]
    Frozen,
}

fn take_out(child: &mut KillOnDrop, fate: Fate) -> Result<(), Error> {
    match fate {
        Fate::Killed => child.0.kill()?,
        #[cfg(unix)]
        Fate::Frozen => {
            let status = Command::new("kill")
                .args(["-STOP", &child.0.id().to_string()])
                .status()?;
            if !status.success() {
                return Err("kill -STOP failed".into());
            }
        }
    }
    Ok(())
}

async fn run_until(
    options: TcpOptions,
    fate: Fate,
) -> Result<(ChoreographyError, Duration), Error> {
    let listener = SessionListener::bind(any_port(), "Coordinator", &options).await?;
    let mut child = spawn_child(listener.local_addr())?;
    let session = tokio::time::timeout(Duration::from_secs(30), listener.accept("Seller"))
        .await
        .map_err(|_| "the child did not connect within 30 s")??;
    let mut ep = Endpoint::new(Role::Coordinator);
    ep.register_session(Role::Seller, session);

    let mut handler = Handler::new();
    let offer: Offer = handler.recv(&mut ep, Role::Seller).await?;
    assert_eq!(offer.price, 40);

    let pending = tokio::spawn(async move {
        let result = handler.recv::<Offer>(&mut ep, Role::Seller).await;
        (result, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !pending.is_finished(),
        "the receive should be waiting for the peer"
    );

    take_out(&mut child, fate)?;
    let killed_at = Instant::now();
    let (result, ended_at) = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .map_err(|_| "the pending receive did not end within 10 s of the kill")??;
    let err = match result {
        Ok(offer) => return Err(format!("received {offer:?} from a killed peer").into()),
        Err(e) => e,
    };
    Ok((err, ended_at.saturating_duration_since(killed_at)))
}

#[tokio::test]
async fn a_killed_peer_process_ends_the_pending_receive() -> Result<(), Error> {
    let (err, after) = run_until(TcpOptions::new(), Fate::Killed).await?;
    println!("after the kill: {err} ({after:?})");
    // The kernel closes a killed process's sockets: the survivor sees the
    // connection end (closed, or reset) at once.
    let ChoreographyError::Transport(transport) = &err else {
        return Err(format!("expected a transport error, got {err}").into());
    };
    assert_eq!(transport.peer(), Some("Seller"), "{err}");
    assert!(after < Duration::from_secs(2), "took {after:?}");
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_frozen_peer_process_hits_the_read_deadline() -> Result<(), Error> {
    let deadline = Duration::from_millis(300);
    let options = TcpOptions::new().with_read_deadline(deadline);
    let (err, after) = run_until(options, Fate::Frozen).await?;
    println!("after the freeze: {err} ({after:?})");
    let ChoreographyError::Transport(transport) = &err else {
        return Err(format!("expected a transport error, got {err}").into());
    };
    assert!(
        matches!(
            transport.kind(),
            rumpsteak_aura_choreography::TransportErrorKind::ReadDeadline(d) if *d == deadline
        ),
        "{err}"
    );
    assert!(after < Duration::from_secs(2), "took {after:?}");
    Ok(())
}
