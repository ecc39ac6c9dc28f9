//! The bounded in-memory channel: a sender that gets `capacity` frames
//! ahead waits, and resumes as the receiver catches up.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::within;
use rumpsteak_aura_transport::{BoundedChannel, RumpsteakSession};

#[tokio::test]
async fn send_blocks_at_capacity_and_resumes_as_the_receiver_reads() {
    const CAPACITY: usize = 3;
    const TOTAL: usize = 10;
    let (a, b) = BoundedChannel::pair(CAPACITY);
    let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let sender = tokio::spawn(async move {
        for i in 0..TOTAL {
            a.send_frame(vec![i as u8]).await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        sent.load(Ordering::SeqCst),
        CAPACITY,
        "the sender should wait at capacity"
    );

    assert_eq!(b.recv_frame().await.unwrap(), vec![0]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        sent.load(Ordering::SeqCst),
        CAPACITY + 1,
        "one slot freed, one more sent"
    );

    for i in 1..TOTAL {
        assert_eq!(within(5, b.recv_frame()).await.unwrap(), vec![i as u8]);
    }
    within(5, sender).await.unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), TOTAL);
    assert!(b.recv_frame().await.unwrap_err().is_closed());
}

#[tokio::test]
async fn each_direction_is_bounded_separately() {
    let (a, b) = BoundedChannel::pair(1);
    let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
    a.send_frame(vec![1]).await.unwrap();
    // a -> b is full, b -> a is not.
    b.send_frame(vec![2]).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(20), a.send_frame(vec![3]))
            .await
            .is_err()
    );
    assert_eq!(a.recv_frame().await.unwrap(), vec![2]);
    assert_eq!(b.recv_frame().await.unwrap(), vec![1]);
}

#[tokio::test]
async fn a_sender_waiting_on_a_dropped_receiver_fails_instead_of_hanging() {
    let (a, b) = BoundedChannel::pair(1);
    let mut a = RumpsteakSession::from(a);
    a.send_frame(vec![1]).await.unwrap();
    let waiting = tokio::spawn(async move { a.send_frame(vec![2]).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(b);
    assert!(within(5, waiting).await.unwrap().unwrap_err().is_closed());
}

#[tokio::test]
async fn channel_methods_match_the_session() {
    let (mut a, mut b) = BoundedChannel::pair(2);
    a.send(b"raw".to_vec()).await.unwrap();
    assert_eq!(b.recv().await.unwrap(), b"raw");
    drop(a);
    assert!(b.recv().await.unwrap_err().is_closed());
}
