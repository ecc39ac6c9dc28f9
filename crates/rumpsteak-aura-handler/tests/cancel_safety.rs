//! Dropping an in-flight operation never loses the peer's channel nor a frame.

mod common;

use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Duration;

use common::{Handler, Msg, Party, alice_bob};
use futures::{SinkExt, StreamExt, channel::mpsc};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakSession};

#[tokio::test]
async fn timed_out_recv_keeps_the_channel_and_the_next_message() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();

    let r = h
        .recv_timeout::<Msg>(&mut b, Party::Alice, Duration::from_millis(5))
        .await;
    assert!(matches!(r, Err(ChoreographyError::Timeout(d)) if d == Duration::from_millis(5)));
    assert!(b.has_channel(&Party::Alice));

    h.send(&mut a, Party::Bob, &Msg::new("after timeout", 1))
        .await
        .unwrap();
    let m: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(m, Msg::new("after timeout", 1));
}

#[tokio::test]
async fn select_losing_branch_loses_nothing() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    let mut hb = h;
    for round in 0..20u64 {
        // The receive loses the race against a ready future, repeatedly.
        tokio::select! {
            biased;
            _ = std::future::ready(()) => {}
            _ = hb.recv::<Msg>(&mut b, Party::Alice) => panic!("nothing was sent yet"),
        }
        h.send(&mut a, Party::Bob, &Msg::new("m", round))
            .await
            .unwrap();
    }
    for round in 0..20u64 {
        let m: Msg = hb.recv(&mut b, Party::Alice).await.unwrap();
        assert_eq!(m.n, round);
    }
}

#[tokio::test]
async fn cancelled_offer_then_offer_gets_the_label() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    let r = h
        .offer_timeout(&mut b, Party::Alice, Duration::from_millis(1))
        .await;
    assert!(matches!(r, Err(ChoreographyError::Timeout(_))));
    h.choose(&mut a, Party::Bob, Label("left")).await.unwrap();
    assert_eq!(h.offer(&mut b, Party::Alice).await.unwrap(), Label("left"));
    assert_eq!(b.get_metadata(&Party::Alice).unwrap().operation_count, 1);
}

/// A receive polled while nothing has arrived, then dropped, takes nothing
/// from the custom transport: the frame sent later reaches the next receive.
#[tokio::test]
async fn recv_dropped_while_pending_on_a_custom_transport() {
    let (mut to_b, from_a) = mpsc::channel::<Vec<u8>>(8);
    let (to_a, _from_b) = mpsc::channel::<Vec<u8>>(8);
    let mut b = RumpsteakEndpoint::new(Party::Bob);
    b.register_session(
        Party::Alice,
        RumpsteakSession::from_sink_stream(to_a, from_a),
    );
    let mut h = Handler::new();

    // Poll the receive once with nothing available, then drop it.
    {
        let fut = pin!(h.recv::<Msg>(&mut b, Party::Alice));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.poll(&mut cx).is_pending());
    }
    // Encode a real frame by sending through a second endpoint.
    let (mut a_ep, mut sink_side) = {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(8);
        let (_tx2, rx2) = mpsc::channel::<Vec<u8>>(8);
        let mut a_ep = RumpsteakEndpoint::new(Party::Alice);
        a_ep.register_session(Party::Bob, RumpsteakSession::from_sink_stream(tx, rx2));
        (a_ep, rx)
    };
    h.send(&mut a_ep, Party::Bob, &Msg::new("whole", 7))
        .await
        .unwrap();
    let frame = sink_side.next().await.unwrap();
    to_b.send(frame).await.unwrap();

    let m: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(m, Msg::new("whole", 7));
}

#[tokio::test]
async fn with_timeout_guide_signature_reports_timeout() {
    let (_a, mut b) = alice_bob();
    let mut h = Handler::new();
    let mut other = Handler::new();
    let mut other_ep = RumpsteakEndpoint::new(Party::Carol);
    let (c, _keep) = rumpsteak_aura_handler::SimpleChannel::pair();
    other_ep.register_channel(Party::Alice, c);
    let r = h
        .with_timeout(
            &mut b,
            Party::Alice,
            Duration::from_millis(5),
            other.recv::<Msg>(&mut other_ep, Party::Alice),
        )
        .await;
    assert!(matches!(r, Err(ChoreographyError::Timeout(_))));
    assert!(other_ep.has_channel(&Party::Alice));
}

#[tokio::test]
async fn within_runs_several_steps_under_one_deadline() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.send(&mut a, Party::Bob, &Msg::new("q", 41))
        .await
        .unwrap();
    let echoed = h
        .within(&mut b, Duration::from_secs(5), async |h, ep| {
            let m: Msg = h.recv(ep, Party::Alice).await?;
            h.send(ep, Party::Alice, &Msg::new("a", m.n + 1)).await?;
            Ok(m.n)
        })
        .await
        .unwrap();
    assert_eq!(echoed, 41);
    let reply: Msg = h.recv(&mut a, Party::Bob).await.unwrap();
    assert_eq!(reply.n, 42);
}

/// A send cancelled after the transport accepted its frame, while the
/// transport was still flushing, is recorded: the frame reaches the peer, and
/// the count and metadata say so.
#[tokio::test]
async fn a_send_cancelled_while_flushing_is_recorded() {
    // A rendezvous channel: flushing waits until the peer takes the frame.
    let (to_b, mut from_a) = mpsc::channel::<Vec<u8>>(0);
    let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(0);
    let mut a = RumpsteakEndpoint::new(Party::Alice);
    a.register_session(Party::Bob, RumpsteakSession::from_sink_stream(to_b, from_b));
    let mut h = Handler::new();

    let r = tokio::time::timeout(
        Duration::from_millis(20),
        h.send(&mut a, Party::Bob, &Msg::new("once", 1)),
    )
    .await;
    assert!(r.is_err(), "the flush cannot finish before Bob reads");
    let meta = a.get_metadata(&Party::Bob).unwrap();
    assert_eq!(meta.operation_count, 1);
    assert_eq!(meta.state_description, "sent Msg to Bob");

    // The frame arrives exactly once.
    let frame = from_a.next().await.unwrap();
    let mut b = RumpsteakEndpoint::new(Party::Bob);
    let (mut raw, ch) = rumpsteak_aura_handler::SimpleChannel::pair();
    b.register_channel(Party::Alice, ch);
    raw.send(frame).await.unwrap();
    let m: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(m, Msg::new("once", 1));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), from_a.next())
            .await
            .is_err(),
        "no second copy"
    );
}

/// A send cancelled before the transport took its frame sent nothing and is
/// not recorded.
#[tokio::test]
async fn a_send_cancelled_before_acceptance_is_not_recorded() {
    // Every sender of a rendezvous channel has one slot; with both slots
    // taken, the session's sender waits until Bob reads.
    let (mut filler, mut from_a) = mpsc::channel::<Vec<u8>>(0);
    let mut session_tx = filler.clone();
    filler.try_send(vec![0]).unwrap();
    session_tx.try_send(vec![1]).unwrap();
    let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(0);
    let mut a = RumpsteakEndpoint::new(Party::Alice);
    a.register_session(
        Party::Bob,
        RumpsteakSession::from_sink_stream(session_tx, from_b),
    );
    let mut h = Handler::new();
    let r = tokio::time::timeout(
        Duration::from_millis(20),
        h.send(&mut a, Party::Bob, &Msg::new("never", 2)),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(a.get_metadata(&Party::Bob).unwrap().operation_count, 0);
    // Only the two frames put there by hand are in the channel.
    assert_eq!(from_a.next().await, Some(vec![0]));
    assert_eq!(from_a.next().await, Some(vec![1]));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), from_a.next())
            .await
            .is_err()
    );
}

/// A send or choice whose transport was not ready at the first poll
/// resumes its flight on a later poll and is recorded once, as what it is,
/// when the transport takes the frame.
#[tokio::test]
async fn a_resumed_send_and_choice_are_recorded_once() {
    // A rendezvous channel: a frame is only taken once the last one was
    // read, so each step below waits for Bob.
    let (to_b, mut from_a) = mpsc::channel::<Vec<u8>>(0);
    let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(0);
    let mut a = RumpsteakEndpoint::new(Party::Alice);
    a.register_session(Party::Bob, RumpsteakSession::from_sink_stream(to_b, from_b));
    let mut h = Handler::new();
    let mut lens = 0;
    let msg = Msg::new("resumed", 7);
    for step in 0..2 {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut fut = if step == 0 {
            Box::pin(h.send(&mut a, Party::Bob, &msg)) as std::pin::Pin<Box<dyn Future<Output = _>>>
        } else {
            Box::pin(h.choose(&mut a, Party::Bob, Label("accept")))
        };
        // The frame is taken, the flush waits for Bob: the flight is kept.
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        let frame = from_a.next().await.unwrap();
        lens += frame.len();
        let done = loop {
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => break r,
                std::task::Poll::Pending => tokio::task::yield_now().await,
            }
        };
        done.unwrap();
        drop(fut);
        let meta = a.get_metadata(&Party::Bob).unwrap();
        assert_eq!(meta.operation_count, step + 1, "recorded once");
        let want = ["sent Msg to Bob", "chose accept for Bob"][step];
        assert_eq!(meta.state_description, want);
    }
    // Every frame the peer got is counted, and no more.
    assert_eq!(a.total_traffic().bytes_sent as usize, lens);
    assert!(
        tokio::time::timeout(Duration::from_millis(20), from_a.next())
            .await
            .is_err(),
        "no second copy"
    );
}
