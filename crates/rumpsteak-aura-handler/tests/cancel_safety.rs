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
