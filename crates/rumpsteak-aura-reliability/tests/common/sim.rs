//! What the turmoil simulations share: the simulated sockets behind the
//! net crate's socket traits, the schedules' random numbers, and the
//! count of panics on the simulation's thread.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

use rumpsteak_aura_net::tcp::{Connect, Listen, Stream, TcpOptions};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

// The simulated sockets, wrapped so that the net crate's socket traits can
// be implemented for them (neither the traits nor turmoil's types are this
// crate's).

/// A simulated TCP connection.
pub struct SimStream(turmoil::net::TcpStream);

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Stream for SimStream {
    type Read = turmoil::net::tcp::OwnedReadHalf;
    type Write = turmoil::net::tcp::OwnedWriteHalf;

    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send {
        self.0.peek(buf)
    }

    fn into_split(self) -> (Self::Read, Self::Write) {
        self.0.into_split()
    }
}

/// A simulated TCP listener.
pub struct SimListener(pub turmoil::net::TcpListener);

impl Listen for SimListener {
    type Conn = SimStream;

    async fn accept(&self) -> io::Result<(SimStream, SocketAddr)> {
        let (stream, addr) = self.0.accept().await?;
        Ok((SimStream(stream), addr))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Dials simulated TCP connections.
pub struct SimConnector;

impl Connect for SimConnector {
    type Stream = SimStream;

    async fn connect(&self, addr: SocketAddr, _options: &TcpOptions) -> io::Result<SimStream> {
        Ok(SimStream(turmoil::net::TcpStream::connect(addr).await?))
    }
}

// The roles of a ring, Alice -> Bob -> Carol -> Alice, one per host.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Alice,
    Bob,
    Carol,
}

pub const ROLES: [Role; 3] = [Role::Alice, Role::Bob, Role::Carol];

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Alice => "Alice",
            Role::Bob => "Bob",
            Role::Carol => "Carol",
        }
    }

    pub fn host(self) -> &'static str {
        match self {
            Role::Alice => "alice",
            Role::Bob => "bob",
            Role::Carol => "carol",
        }
    }

    /// The role this one sends to.
    pub fn next(self) -> Role {
        match self {
            Role::Alice => Role::Bob,
            Role::Bob => Role::Carol,
            Role::Carol => Role::Alice,
        }
    }

    /// The role this one receives from.
    pub fn prev(self) -> Role {
        self.next().next()
    }
}

/// The port every role listens on.
pub const PORT: u16 = 7000;

/// Where `role` listens.
pub fn addr_of(role: Role) -> SocketAddr {
    SocketAddr::new(turmoil::lookup(role.host()), PORT)
}

/// One of the roles, picked by `rng`.
pub fn role(rng: &mut Rng) -> Role {
    ROLES[rng.below(3) as usize]
}

/// SplitMix64: a schedule's own random numbers, from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `from..=to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

thread_local! {
    /// Panics on this thread so far. A panic in a task that a library
    /// spawns (a handshake, a session's writer or driver) ends only that
    /// task, which its peers see as a closed connection: counted here, it
    /// fails the seed instead of passing as a typed error.
    static PANICS: Cell<u64> = const { Cell::new(0) };
}

/// Counts every panic on the thread it happens on (a simulation runs all
/// its hosts on the test's thread), then reports it as before.
pub fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|n| n.set(n.get() + 1));
            report(info);
        }));
    });
}

/// The panics counted on this thread so far.
pub fn panics() -> u64 {
    PANICS.with(Cell::get)
}

/// The seeds to run: the one in `RUMPSTEAK_SIM_SEED` alone, or `0..count`.
pub fn seeds(count: u64) -> Vec<u64> {
    match std::env::var("RUMPSTEAK_SIM_SEED") {
        Ok(seed) => vec![
            seed.trim()
                .parse()
                .unwrap_or_else(|_| panic!("RUMPSTEAK_SIM_SEED={seed} is not a number")),
        ],
        Err(_) => (0..count).collect(),
    }
}
