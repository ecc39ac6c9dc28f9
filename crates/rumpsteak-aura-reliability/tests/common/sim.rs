//! What the turmoil simulations share: the simulated sockets behind the
//! net crate's socket traits, the schedules' random numbers, and the
//! count of panics on the simulation's thread.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rumpsteak_aura_net::tcp::{Connect, Listen, Stream, TcpOptions};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

// The simulated sockets, wrapped so that the net crate's socket traits can
// be implemented for them (neither the traits nor turmoil's types are this
// crate's).

/// A simulated socket (`T`) of one connection, which a test can reset
/// (see [`reset`]).
pub struct Linked<T> {
    inner: T,
    link: Link,
}

/// A simulated TCP connection.
pub type SimStream = Linked<turmoil::net::TcpStream>;
/// The reading half of a [`SimStream`].
pub type SimRead = Linked<turmoil::net::tcp::OwnedReadHalf>;
/// The writing half of a [`SimStream`].
pub type SimWrite = Linked<turmoil::net::tcp::OwnedWriteHalf>;

impl SimStream {
    fn new(stream: turmoil::net::TcpStream) -> Self {
        let link = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(local), Ok(peer)) => Link::of(local.ip(), peer.ip()),
            // Not connected after all: nothing to reset.
            _ => Link::none(),
        };
        Linked {
            inner: stream,
            link,
        }
    }
}

/// Which pair of hosts a connection joins, and the number of resets of
/// that pair when it was made: a later reset ends it.
#[derive(Clone, Copy)]
struct Link {
    pair: Option<(IpAddr, IpAddr)>,
    born: u64,
}

/// Resets so far of one pair of hosts, and the wakers of the reads that
/// wait on a connection between them.
type Resets = (u64, Vec<Waker>);

thread_local! {
    /// Every pair's resets. A simulation runs on one thread.
    static RESETS: RefCell<HashMap<(IpAddr, IpAddr), Resets>> = RefCell::new(HashMap::new());
}

impl Link {
    fn of(a: IpAddr, b: IpAddr) -> Link {
        let pair = if a <= b { (a, b) } else { (b, a) };
        let born = RESETS.with(|r| r.borrow().get(&pair).map_or(0, |(n, _)| *n));
        Link {
            pair: Some(pair),
            born,
        }
    }

    fn none() -> Link {
        Link {
            pair: None,
            born: 0,
        }
    }

    /// The error of a connection that a reset ended, if it did; else the
    /// waker is kept for a reset to come.
    fn check(&self, cx: Option<&Context<'_>>) -> io::Result<()> {
        let Some(pair) = self.pair else {
            return Ok(());
        };
        RESETS.with(|r| {
            let mut resets = r.borrow_mut();
            let (n, wakers) = resets.entry(pair).or_default();
            if *n > self.born {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "reset by the simulation",
                ));
            }
            if let Some(cx) = cx
                && !wakers.iter().any(|w| w.will_wake(cx.waker()))
            {
                wakers.push(cx.waker().clone());
            }
            Ok(())
        })
    }
}

/// Resets every connection between the hosts at `a` and `b` made so far:
/// their reads and writes fail with `ConnectionReset` from now on, what
/// they still carried is lost, and new connections are not affected.
pub fn reset(a: IpAddr, b: IpAddr) {
    let pair = if a <= b { (a, b) } else { (b, a) };
    let wakers = RESETS.with(|r| {
        let mut resets = r.borrow_mut();
        let (n, wakers) = resets.entry(pair).or_default();
        *n += 1;
        std::mem::take(wakers)
    });
    for w in wakers {
        w.wake();
    }
}

/// Whether a read on a connection between the hosts at `a` and `b` has
/// waited for data since the pair's last reset: a connection between them
/// was up, and read, so a reset now has something to end.
pub fn read_since_reset(a: IpAddr, b: IpAddr) -> bool {
    let pair = if a <= b { (a, b) } else { (b, a) };
    RESETS.with(|r| r.borrow().get(&pair).is_some_and(|(_, w)| !w.is_empty()))
}

/// Forgets every reset (at the start of a simulation).
pub fn clear_resets() {
    RESETS.with(|r| r.borrow_mut().clear());
}

// A read on the whole connection (the handshake's) checks for a reset
// only before it reads; one on the reading half also leaves its waker for
// a reset to come, since a reset must wake a read that waits for data.

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.link.check(None)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncRead for SimRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.link.check(None)?;
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_pending() {
            self.link.check(Some(cx))?;
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Linked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.link.check(None)?;
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.link.check(None)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Stream for SimStream {
    type Read = SimRead;
    type Write = SimWrite;

    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send {
        self.inner.peek(buf)
    }

    fn into_split(self) -> (SimRead, SimWrite) {
        let (read, write) = self.inner.into_split();
        let link = self.link;
        (Linked { inner: read, link }, Linked { inner: write, link })
    }
}

/// A simulated TCP listener.
pub struct SimListener(pub turmoil::net::TcpListener);

impl Listen for SimListener {
    type Conn = SimStream;

    async fn accept(&self) -> io::Result<(SimStream, SocketAddr)> {
        let (stream, addr) = self.0.accept().await?;
        Ok((SimStream::new(stream), addr))
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
        Ok(SimStream::new(
            turmoil::net::TcpStream::connect(addr).await?,
        ))
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

// The frame of a simulation run, as both simulations drive one.

/// A simulation of `seed`: ticks of 5 ms, message latencies from 1 ms to
/// `max_latency`, and an error once `bound` of simulated time has passed.
pub fn simulation<'a>(seed: u64, bound: Duration, max_latency: Duration) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(bound)
        .tick_duration(Duration::from_millis(5))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(max_latency)
        .build()
}

/// Adds the client host `watcher`, which ends (and so lets the
/// simulation end) once `settled` says so, asking every 20 ms.
pub fn watch(sim: &mut turmoil::Sim<'_>, settled: impl Fn() -> bool + 'static) {
    sim.client("watcher", async move {
        while !settled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    });
}

/// One step of `sim`: whether it is over, or its error with the
/// simulated time and the roles' `summary`.
pub fn step(sim: &mut turmoil::Sim<'_>, summary: impl FnOnce() -> String) -> Result<bool, String> {
    sim.step().map_err(|e| {
        format!(
            "{e} at {:?} of simulated time; roles: {}",
            sim.elapsed(),
            summary()
        )
    })
}

/// The first of `ends` (keyed by time, then order of start) due by
/// `now`, taken out.
pub fn next_due<A>(ends: &mut BTreeMap<(Duration, usize), A>, now: Duration) -> Option<A> {
    let entry = ends.first_entry()?;
    (entry.key().0 <= now).then(|| entry.remove())
}

/// An error if a panic was counted since `before` (see [`panics`]), with
/// the roles' `summary`.
pub fn no_panics_since(before: u64, summary: impl FnOnce() -> String) -> Result<(), String> {
    let panics = panics() - before;
    if panics > 0 {
        return Err(format!(
            "{panics} task(s) panicked (above); roles: {}",
            summary()
        ));
    }
    Ok(())
}

/// The run `simulate` returns; panics with `failed(why)` if it returns an
/// error, and prints `failed` before passing a panic inside it on.
pub fn run_or_panic<T>(
    simulate: impl FnOnce() -> Result<T, String>,
    failed: impl Fn(&str) -> String,
) -> T {
    match catch_unwind(AssertUnwindSafe(simulate)) {
        Ok(Ok(run)) => run,
        Ok(Err(why)) => panic!("{}", failed(&why)),
        Err(panic) => {
            eprintln!("{}", failed("a panic (above)"));
            resume_unwind(panic)
        }
    }
}
