//! The in-memory channel across threads: the two ends on different worker
//! threads, both directions busy at once, nothing lost, duplicated or
//! reordered, and a clean end when each side closes.

use futures::FutureExt;
use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};

const FRAMES: u32 = 50_000;

fn frame(tag: u8, seq: u32) -> Vec<u8> {
    let mut frame = vec![tag];
    frame.extend_from_slice(&seq.to_le_bytes());
    frame
}

fn parse(frame: &[u8]) -> Result<(u8, u32), String> {
    match frame {
        [tag, a, b, c, d] => Ok((*tag, u32::from_le_bytes([*a, *b, *c, *d]))),
        other => Err(format!("malformed frame {other:?}")),
    }
}

/// Sends `FRAMES` numbered frames tagged `tag` while receiving the peer's,
/// interleaved, checking that they arrive in order; then closes and expects
/// the peer's close after its last frame. Returns how many it received.
async fn side(mut session: RumpsteakSession, tag: u8, peer_tag: u8) -> Result<u32, String> {
    let mut sent = 0u32;
    let mut received = 0u32;
    while sent < FRAMES || received < FRAMES {
        if sent < FRAMES {
            session
                .send_frame(frame(tag, sent))
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        // Receive every few sends, and every time once all are sent, so
        // that both queues hold frames while the other thread works on them.
        if received < FRAMES && (sent == FRAMES || sent.is_multiple_of(7)) {
            let got = session.recv_frame().await.map_err(|e| e.to_string())?;
            let expected = (peer_tag, received);
            if parse(&got)? != expected {
                return Err(format!("got {got:?}, expected {expected:?}"));
            }
            received += 1;
        }
    }
    session.close();
    match session.recv_frame().await {
        Err(e) if e.is_closed() => Ok(received),
        other => Err(format!("after the peer's last frame: {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_across_threads_keep_order() {
    let (a, b) = SimpleChannel::pair();
    let left = tokio::spawn(side(a.into(), 1, 2));
    let right = tokio::spawn(side(b.into(), 2, 1));
    assert_eq!(left.await.unwrap(), Ok(FRAMES));
    assert_eq!(right.await.unwrap(), Ok(FRAMES));
}

/// Plain threads, no runtime at all: a blocking receiver on one OS thread,
/// a sender on another.
#[test]
fn works_without_a_runtime_across_os_threads() {
    let (mut a, mut b) = SimpleChannel::pair();
    let sender = std::thread::spawn(move || {
        for seq in 0..FRAMES {
            a.try_send_frame(frame(9, seq)).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    });
    let receiver = std::thread::spawn(move || {
        futures::executor::block_on(async {
            for seq in 0..FRAMES {
                let got = b.recv().await?;
                if parse(&got)? != (9, seq) {
                    return Err(format!("got {got:?} at {seq}"));
                }
            }
            // The sender dropped its end after the last frame.
            match b.recv().await {
                Err(_) => Ok(()),
                Ok(extra) => Err(format!("unexpected frame {extra:?}")),
            }
        })
    });
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(receiver.join().unwrap(), Ok(()));
}

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Receives cancelled at random points (polled once and dropped if no frame
/// is there, or cut short by a timeout), and receives moved to a fresh task
/// (a new waker each time), while a sender on another thread sends in
/// batches of random size, each once the receiver has taken the one before,
/// so that the receiver finds frames waiting and also finds none: every
/// frame arrives once, in order, and the close comes after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_moved_receives_lose_nothing() {
    cancelled_and_moved(20_000, 0x9e37_79b9_7f4a_7c15).await;
}

/// The same with ten times the frames, for each of twenty seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stress test: run with --ignored"]
async fn stress_cancelled_and_moved_receives() {
    for k in 1..=20u64 {
        cancelled_and_moved(200_000, k.wrapping_mul(0x9e37_79b9_7f4a_7c15)).await;
    }
}

async fn cancelled_and_moved(n: u32, seed: u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::sync::Notify;

    let (mut a, mut b) = SimpleChannel::pair();
    let received = Arc::new(AtomicU32::new(0));
    let progress = Arc::new(Notify::new());
    let sender = {
        let (received, progress) = (received.clone(), progress.clone());
        tokio::spawn(async move {
            let mut rng = XorShift(seed ^ 0x2545_f491_4f6c_dd1d);
            let mut sent = 0;
            while sent < n {
                let batch = (1 + rng.next() % 64) as u32;
                for _ in 0..batch.min(n - sent) {
                    a.try_send_frame(frame(3, sent))
                        .map_err(|e| e.to_string())?;
                    sent += 1;
                }
                loop {
                    let notified = progress.notified();
                    if received.load(Ordering::SeqCst) >= sent {
                        break;
                    }
                    notified.await;
                }
            }
            Ok::<_, String>(())
            // `a` is dropped here: the receiver sees the close after the
            // last frame.
        })
    };
    let mut rng = XorShift(seed);
    let (mut expected, mut cancelled, mut moved) = (0u32, 0u32, 0u32);
    loop {
        let got = match rng.next() % 3 {
            // A receive in a task of its own: the channel moves there and back.
            0 => {
                moved += 1;
                let (back, got) = tokio::spawn(async move {
                    let got = b.recv().await;
                    (b, got)
                })
                .await
                .unwrap();
                b = back;
                got
            }
            // A receive polled once, dropped if it would wait.
            1 => match b.recv().now_or_never() {
                Some(got) => got,
                None => {
                    cancelled += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
            },
            // A receive under a timeout short enough to expire now and then.
            _ => match tokio::time::timeout(std::time::Duration::from_micros(50), b.recv()).await {
                Ok(got) => got,
                Err(_) => {
                    cancelled += 1;
                    continue;
                }
            },
        };
        match got {
            Ok(bytes) => {
                assert_eq!(parse(&bytes), Ok((3, expected)));
                expected += 1;
                received.store(expected, Ordering::SeqCst);
                progress.notify_one();
            }
            Err(_) => break,
        }
    }
    assert_eq!(sender.await.unwrap(), Ok(()));
    assert_eq!(
        expected, n,
        "every frame, once, before the close (seed {seed})"
    );
    assert!(
        moved > 0 && cancelled > 0,
        "moved {moved}, cancelled {cancelled}"
    );
}
