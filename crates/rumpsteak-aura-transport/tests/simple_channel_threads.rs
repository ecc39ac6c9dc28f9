//! The in-memory channel across threads: the two ends on different worker
//! threads, both directions busy at once, nothing lost, duplicated or
//! reordered, and a clean end when each side closes.

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
