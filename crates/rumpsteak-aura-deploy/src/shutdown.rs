//! Graceful shutdown: SIGTERM or ctrl-c ends the protocol, closes the
//! sessions, and says so.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::io;

use rumpsteak_aura_handler::RumpsteakEndpoint;
use rumpsteak_aura_transport::RumpsteakSession;

/// The signal that asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopSignal {
    /// SIGTERM: what `kill`, systemd, Docker and Kubernetes send.
    Terminate,
    /// SIGINT: ctrl-c in a terminal.
    Interrupt,
}

impl StopSignal {
    /// The exit status a process stopped by this signal conventionally
    /// reports: 128 plus the signal's number (143 for SIGTERM, 130 for
    /// SIGINT).
    pub fn exit_code(self) -> i32 {
        match self {
            StopSignal::Terminate => 128 + 15,
            StopSignal::Interrupt => 128 + 2,
        }
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Interrupt => "SIGINT (ctrl-c)",
        })
    }
}

/// The protocol was stopped by a signal before it finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the protocol was interrupted by {signal} before it finished; {}", Closed(*.closed))]
pub struct Interrupted {
    /// The signal.
    pub signal: StopSignal,
    /// How many open sessions were closed.
    pub closed: usize,
}

/// How many sessions an interruption closed, in words.
struct Closed(usize);

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("no session was open"),
            1 => f.write_str("closed its 1 session, so the peer sees its channel closed"),
            n => write!(
                f,
                "closed its {n} sessions, so the peers see their channels closed"
            ),
        }
    }
}

impl Interrupted {
    /// The exit status to report ([`StopSignal::exit_code`]): never 0.
    pub fn exit_code(&self) -> i32 {
        self.signal.exit_code()
    }
}

/// Listens for SIGTERM and SIGINT (ctrl-c) from the moment it is made.
///
/// Make it first thing in `main`, before wiring: from then on the signals
/// no longer kill the process outright, and [`signalled`](Self::signalled)
/// resolves at the first one (one that came before it is polled is not
/// lost). Elsewhere than Unix, only ctrl-c is listened for.
///
/// Nothing is installed until [`install`](Self::install) is called, and
/// what it installs stays for the rest of the process: tokio never puts
/// back the signals' default action, so once the `Shutdown` is dropped
/// SIGTERM and ctrl-c are noted and ignored. Keep it for as long as the
/// process should stop on them.
#[derive(Debug)]
pub struct Shutdown {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Starts listening. Needs a tokio runtime with I/O enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_deploy::Shutdown;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> std::io::Result<()> {
    /// let mut shutdown = Shutdown::install()?;
    /// // Nobody sends a signal here: the protocol finishes first.
    /// let outcome = shutdown.or_interrupted(async { 42 }).await;
    /// assert_eq!(outcome, Ok(42));
    /// # Ok(())
    /// # }
    /// ```
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Resolves when SIGTERM or SIGINT arrives.
    pub async fn signalled(&mut self) -> StopSignal {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.terminate.recv() => StopSignal::Terminate,
                Some(()) = self.interrupt.recv() => StopSignal::Interrupt,
                // Both streams ended (the runtime is shutting down): no
                // signal will come.
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => StopSignal::Interrupt,
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Runs `work` (wiring, say) unless a signal comes first; nothing is
    /// closed here, since `work` owns what it opened and drops it.
    pub async fn or_interrupted<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> Result<T, Interrupted> {
        tokio::select! {
            done = work => Ok(done),
            signal = self.signalled() => Err(Interrupted { signal, closed: 0 }),
        }
    }

    /// Runs a role's `protocol` on `endpoint` until it finishes or a
    /// signal comes. On a signal the protocol is dropped where it stands
    /// and every session of the endpoint is closed at once, so each peer's
    /// pending receive ends with a closed-channel error instead of waiting
    /// for a read deadline; the result says which signal and how many
    /// sessions were closed. When the protocol finishes, the sessions are
    /// left as they are.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_deploy::{CloseSessions, Shutdown};
    /// # use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (mine, _theirs) = SimpleChannel::pair();
    /// let mut sessions = vec![("Peer", RumpsteakSession::from(mine))];
    /// let mut shutdown = Shutdown::install()?;
    /// let sent = shutdown
    ///     .run_until_shutdown(&mut sessions, async |s: &mut Vec<(&str, RumpsteakSession)>| {
    ///         s[0].1.send_frame(b"hello".to_vec()).await
    ///     })
    ///     .await?;
    /// assert!(sent.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_until_shutdown<E, T>(
        &mut self,
        endpoint: &mut E,
        protocol: impl AsyncFnOnce(&mut E) -> T,
    ) -> Result<T, Interrupted>
    where
        E: CloseSessions,
    {
        let signal = {
            let run = protocol(endpoint);
            tokio::select! {
                done = run => return Ok(done),
                signal = self.signalled() => signal,
            }
        };
        // The protocol's future is dropped: the endpoint is free again.
        let closed = endpoint.close_sessions();
        // Let a close that could not finish at once (a full send buffer)
        // get going in the background before the caller exits.
        tokio::task::yield_now().await;
        Err(Interrupted { signal, closed })
    }
}

/// What holds a role's sessions and can close them all at once.
pub trait CloseSessions {
    /// Closes every open session; returns how many were open.
    fn close_sessions(&mut self) -> usize;
}

impl<R> CloseSessions for RumpsteakEndpoint<R>
where
    R: rumpsteak_aura::Role + Eq + Hash + Clone + fmt::Debug,
{
    fn close_sessions(&mut self) -> usize {
        self.close_all_channels()
    }
}

/// The sessions a [`Mesh`](rumpsteak_aura_net::tcp::Mesh) wired, before
/// they are registered with an endpoint.
impl<R> CloseSessions for Vec<(R, RumpsteakSession)> {
    fn close_sessions(&mut self) -> usize {
        let count = self.len();
        for (_, session) in self.iter_mut() {
            session.close();
        }
        self.clear();
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_says_what_it_closed() {
        let said = |closed| {
            Interrupted {
                signal: StopSignal::Interrupt,
                closed,
            }
            .to_string()
        };
        assert_eq!(
            said(0),
            "the protocol was interrupted by SIGINT (ctrl-c) before it finished; no session was open"
        );
        assert_eq!(
            said(2),
            "the protocol was interrupted by SIGINT (ctrl-c) before it finished; \
             closed its 2 sessions, so the peers see their channels closed"
        );
        assert_eq!(StopSignal::Interrupt.exit_code(), 130);
        assert_eq!(StopSignal::Terminate.exit_code(), 143);
    }

    #[tokio::test]
    async fn closing_a_vec_of_sessions_ends_the_peers_receive() {
        let (mine, theirs) = rumpsteak_aura_transport::SimpleChannel::pair();
        let mut sessions = vec![("Peer", RumpsteakSession::from(mine))];
        let mut peer = RumpsteakSession::from(theirs);
        assert_eq!(sessions.close_sessions(), 1);
        assert!(sessions.is_empty());
        assert!(peer.recv_frame().await.unwrap_err().is_closed());
    }
}
