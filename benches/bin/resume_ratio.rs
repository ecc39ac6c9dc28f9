//! Times the resumable TCP session (`rumpsteak-aura-resume`) against the
//! plain TCP session it runs on, in alternating samples, as `net_ratio`
//! does for TLS and QUIC, and then the time a resumable session takes to
//! resume after its connection is cut:
//!
//! ```sh
//! cargo run --release -p rumpsteak-aura-benches --bin resume_ratio
//! ```
//!
//! **Ping-pong.** A round trip is: A sends a frame of 16 B or 1 KiB, B
//! echoes it, A reads the echo. Each resumable sample is taken right after
//! a plain sample of the same size on the same runtime, 41 times, and the
//! best and median of each are compared, by the wall clock and by the
//! process's CPU time (every thread, user and system). Each runtime keeps
//! one plain pair and one resumable pair for all its samples (connection
//! setup is outside every sample); the resumable pair runs with the
//! default `ResumeConfig` of its redialer, so acknowledgements ride on the
//! data frames (no standalone acknowledgement or heartbeat is sent within
//! a sample; each side's driver timer still fires about once per
//! acknowledgement delay, 20 ms, and finds nothing due).
//!
//! **Time to resume.** A resumable pair runs through a proxy on the
//! loopback that drops both of its TCP connections on demand. Each of
//! [`CUTS`] cuts is taken between two round trips: the proxy drops both
//! connections and says when, A then sends the next frame, and the time
//! from the drop to B receiving that frame is recorded (with the time
//! until A has the echo); at the end, A's reconnection count must equal
//! the number of cuts, or the bench stops. Both sides notice the cut from
//! the closed connection; A redials
//! at once and then with the backoff printed, B waits for the proxy to
//! route the reconnection. The median, 90th percentile and maximum are
//! printed per runtime.
//!
//! An argument keeps only the rows whose name contains it:
//! `resume_ratio "16 B, current_thread"` times those rows alone;
//! `resume_ratio cuts` only the cuts.
//!
//! For instruction counts, `resume_ratio --rounds plain|resumable N` runs
//! `N` round trips of 16 B on the current-thread runtime and exits, for
//! `valgrind --tool=callgrind` (or `strace -f -c`, for system calls); the
//! difference between two values of `N` divided by their difference is the
//! count per round trip, without the setup. `--rounds plain|resumable N
//! multi_thread` does the same on the multi-thread runtime.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rumpsteak_aura_benches::net::{loopback, session_pair};
use rumpsteak_aura_benches::{Clock, Flavor, alternate_rounds, ok, run_pair_on};
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::tcp::{SessionListener, TcpOptions};
use rumpsteak_aura_resume::{
    ResumableSession, ResumeConfig, ResumeHandle, ResumeListener, TcpRedial, link_options,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

/// Round trips per sample: a loopback TCP round trip takes some tens of
/// microseconds, so a sample is a few tenths of a second.
const ROUNDS: u64 = 5_000;

/// The frame sizes of the ping-pong rows.
const SIZES: [(&str, usize); 2] = [("16 B", 16), ("1 KiB", 1024)];

/// Cuts per runtime for the time to resume.
const CUTS: usize = 100;

/// Round trips between two cuts, so every cut finds a settled session.
const BETWEEN_CUTS: u64 = 20;

/// A pair of sessions kept for every sample of a runtime: each sample
/// takes both ends out and puts them back when it is done.
struct Kept(Arc<Mutex<Option<(RumpsteakSession, RumpsteakSession)>>>);

impl Kept {
    fn new(pair: (RumpsteakSession, RumpsteakSession)) -> Kept {
        Kept(Arc::new(Mutex::new(Some(pair))))
    }

    /// `iters` round trips of `size` bytes from A to B and back, measured
    /// by `clock`: the loop of `net::session_pingpong`, on kept sessions.
    fn pingpong(
        &self,
        clock: Clock,
        rt: &Runtime,
        flavor: Flavor,
        size: usize,
        iters: u64,
    ) -> Duration {
        let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some((mut a, mut b)) = taken else {
            panic!("bench setup: a sample did not give its sessions back");
        };
        let (back_a, back_b) = (self.0.clone(), mpsc::unbounded_channel());
        let (b_tx, mut b_rx) = back_b;
        let first = async move {
            for _ in 0..iters {
                ok(a.send_frame(vec![7; size]).await);
                black_box(ok(a.recv_frame().await));
            }
            let b = b_rx.recv().await;
            let b = b.unwrap_or_else(|| panic!("bench: B's side did not come back"));
            *back_a.lock().unwrap_or_else(PoisonError::into_inner) = Some((a, b));
        };
        let second = async move {
            for _ in 0..iters {
                let frame = ok(b.recv_frame().await);
                ok(b.send_frame(frame).await);
            }
            let _ = b_tx.send(b);
        };
        run_pair_on(clock, rt, flavor, first, second)
    }
}

/// A plain TCP session pair, A to B.
async fn plain_pair() -> (RumpsteakSession, RumpsteakSession) {
    let listener = ok(SessionListener::bind(loopback(), "B", &TcpOptions::new()).await);
    session_pair(&listener, &TcpOptions::new()).await
}

/// The backoff of every resumable session here: the defaults of
/// `ResumeConfig`, stated so that the report can print them.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A resumable TCP session pair, A (dialing) to B (accepting), with the
/// default settings of A's redialer, through a [`cutting_proxy`] if `cut`
/// is given; B's listener routes B's reconnections, so it must be kept as
/// long as the pair.
async fn resumable_pair(
    session: &str,
    cut: Option<CutSignal>,
) -> (
    RumpsteakSession,
    RumpsteakSession,
    ResumeListener,
    ResumeHandle,
) {
    let options = TcpOptions::new().with_session_id(session);
    let bound = ok(SessionListener::bind(loopback(), "B", &link_options(options.clone())).await);
    let addr = match cut {
        Some(cut) => cutting_proxy(bound.local_addr(), cut).await,
        None => bound.local_addr(),
    };
    let redial = TcpRedial::new(addr, "A", "B", options);
    let config = redial.config().with_backoff(BACKOFF.0, BACKOFF.1);
    let listener = ResumeListener::new(
        bound,
        ResumeConfig::new(session, "B", "").with_backoff(BACKOFF.0, BACKOFF.1),
        &["A"],
    );
    let (a, b) = tokio::join!(ResumableSession::open(redial, config), listener.accept("A"));
    let a = ok(a);
    let handle = a.handle();
    (a.into_session(), ok(b).into_session(), listener, handle)
}

/// How a bench cuts a [`cutting_proxy`]'s connection: it bumps `cut`,
/// and the proxy says on `done` when it has dropped both of its TCP
/// connections.
struct Cutter {
    cut: watch::Sender<u64>,
    done: mpsc::UnboundedReceiver<Instant>,
}

impl Cutter {
    /// Cuts the connection and returns when it was dropped.
    async fn cut(&mut self) -> Instant {
        self.cut.send_modify(|n| *n += 1);
        match self.done.recv().await {
            Some(at) => at,
            None => panic!("bench: the proxy stopped"),
        }
    }
}

/// The proxy's side of a [`Cutter`].
struct CutSignal {
    cut: watch::Receiver<u64>,
    done: mpsc::UnboundedSender<Instant>,
}

fn cutter() -> (Cutter, CutSignal) {
    let (cut, cut_rx) = watch::channel(0);
    let (done_tx, done) = mpsc::unbounded_channel();
    (
        Cutter { cut, done },
        CutSignal {
            cut: cut_rx,
            done: done_tx,
        },
    )
}

/// A proxy on the loopback to `upstream` that drops its current pair of
/// connections each time the [`Cutter`] cuts, and accepts new ones
/// meanwhile; returns its address.
async fn cutting_proxy(upstream: SocketAddr, signal: CutSignal) -> SocketAddr {
    let listener = ok(TcpListener::bind(loopback()).await);
    let addr = ok(listener.local_addr());
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = TcpStream::connect(upstream).await else {
                continue;
            };
            let mut cut = signal.cut.clone();
            cut.borrow_and_update();
            let done = signal.done.clone();
            tokio::spawn(async move {
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let (mut down_r, mut down_w) = down.into_split();
                let (mut up_r, mut up_w) = up.into_split();
                let there = async {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n @ 1..) = down_r.read(&mut buf).await {
                        if up_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let back = async {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n @ 1..) = up_r.read(&mut buf).await {
                        if down_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let was_cut = tokio::select! {
                    () = there => false,
                    () = back => false,
                    _ = cut.changed() => true,
                };
                if was_cut {
                    drop((down_r, down_w, up_r, up_w));
                    let _ = done.send(Instant::now());
                }
            });
        }
    });
    addr
}

/// The median, 90th percentile and maximum of `v`, in milliseconds.
fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.2} ms, median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(v[0]),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(v[v.len() - 1])
    )
}

/// [`CUTS`] cuts on `flavor`'s runtime, each timed from the cut to B
/// receiving the next frame and to A receiving its echo.
fn cuts(flavor: Flavor) {
    let rt = flavor.runtime();
    let (mut cutter, signal) = cutter();
    let (mut a, mut b, listener, handle) = rt.block_on(resumable_pair("cuts", Some(signal)));
    let (delivered_tx, mut delivered) = mpsc::unbounded_channel::<Instant>();
    let echo = rt.spawn(async move {
        while let Ok(frame) = b.recv_frame().await {
            let _ = delivered_tx.send(Instant::now());
            if b.send_frame(frame).await.is_err() {
                return;
            }
        }
    });
    let (to_b, round) = rt.block_on(async move {
        let (mut to_b, mut round) = (Vec::new(), Vec::new());
        for _ in 0..CUTS {
            for _ in 0..BETWEEN_CUTS {
                ok(a.send_frame(vec![7; 16]).await);
                black_box(ok(a.recv_frame().await));
                black_box(delivered.recv().await);
            }
            let at = cutter.cut().await;
            ok(a.send_frame(vec![7; 16]).await);
            black_box(ok(a.recv_frame().await));
            let back = at.elapsed();
            let Some(arrived) = delivered.recv().await else {
                panic!("bench: B stopped");
            };
            to_b.push(arrived - at);
            round.push(back);
        }
        (to_b, round)
    });
    echo.abort();
    drop(listener);
    // Every cut must have cost a resumption, or the times above are not
    // times to resume.
    let reconnects = handle.stats().reconnects;
    if reconnects != CUTS as u64 {
        panic!("bench: {CUTS} cuts but {reconnects} reconnections");
    }
    println!(
        "time to resume, {}, {CUTS} cuts, backoff {:?} doubling to {:?}: \
         cut to B receiving the next frame: {}; cut to A receiving its echo: {}",
        flavor.name(),
        BACKOFF.0,
        BACKOFF.1,
        spread(to_b),
        spread(round)
    );
}

/// `--rounds plain|resumable N [multi_thread]`: `N` round trips of 16 B
/// on the current-thread runtime (or the multi-thread one), for callgrind
/// and `strace -f -c`.
fn rounds_only(kind: &str, n: u64, flavor: Flavor) {
    let rt = flavor.runtime();
    let pair = match kind {
        "plain" => (rt.block_on(plain_pair()), None),
        "resumable" => {
            let (a, b, listener, _) = rt.block_on(resumable_pair("rounds", None));
            ((a, b), Some(listener))
        }
        other => panic!("--rounds takes plain or resumable, not {other}"),
    };
    let (pair, _listener) = pair;
    let kept = Kept::new(pair);
    black_box(kept.pingpong(Clock::Wall, &rt, flavor, 16, n));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, kind, n, rest @ ..] = args.as_slice()
        && flag == "--rounds"
    {
        let n = n
            .parse()
            .unwrap_or_else(|e| panic!("--rounds {kind} N: N is a count: {e}"));
        let flavor = match rest {
            [] => Flavor::CurrentThread,
            [f] if f == Flavor::MultiThread.name() => Flavor::MultiThread,
            other => panic!("--rounds {kind} N takes no flavor or multi_thread, not {other:?}"),
        };
        rounds_only(kind, n, flavor);
        return;
    }
    let only = args.first().cloned().unwrap_or_default();
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let plain = Kept::new(rt.block_on(plain_pair()));
        let (a, b, _listener, _) = rt.block_on(resumable_pair("ratio", None));
        let resumable = Kept::new((a, b));
        for (name, size) in SIZES {
            for clock in [Clock::Wall, Clock::Cpu] {
                let row = format!("TCP {name}, {}, {}", flavor.name(), clock.name());
                if row.contains(&only) {
                    alternate_rounds(
                        &row,
                        ("plain", "resumable"),
                        ROUNDS,
                        || plain.pingpong(clock, &rt, flavor, size, ROUNDS),
                        || resumable.pingpong(clock, &rt, flavor, size, ROUNDS),
                    );
                }
            }
        }
    }
    for flavor in Flavor::ALL {
        if format!("cuts, {}", flavor.name()).contains(&only) {
            cuts(flavor);
        }
    }
}
