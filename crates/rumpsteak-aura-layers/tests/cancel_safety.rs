//! A layered role cancelled mid-operation (a timeout around `recv`) loses
//! nothing, as without layers; the layers count and record what completed
//! apart from what was cancelled.

mod common;

use std::time::Duration;

use common::*;
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_layers::{HandlerExt, Metered, Recording, Traced};

#[test]
fn cancelled_receives_lose_nothing_through_every_layer() {
    cancelled_receives();
}

#[test]
fn recv_timeout_through_the_stack_loses_nothing() {
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Metered::new(Traced::new(Recording::new(Handler::new())));
    rt.block_on(async {
        let e = h
            .recv_timeout::<u32>(&mut b, Role::A, Duration::from_millis(2))
            .await;
        assert!(matches!(
            e,
            Err(rumpsteak_aura::ChoreographyError::Timeout(_))
        ));
        Handler::new()
            .send(&mut a, Role::B, &5u32)
            .await
            .expect("send");
        let n: u32 = h
            .recv_timeout(&mut b, Role::A, DEADLINE)
            .await
            .expect("recv");
        assert_eq!(n, 5);
    });
    let p = h.snapshot().peers.remove(0);
    assert_eq!(p.operations.recv, 2);
    assert_eq!(p.errors.timeout, 1);
    assert_eq!(
        p.cancelled, 0,
        "a timeout inside the layer is an error, not a cancellation"
    );
    let t = h.inner().inner().transcript();
    assert_eq!(t.entries.len(), 2);
    assert!(t.entries[0].error.is_some() && t.entries[1].error.is_none());
}

/// A send dropped after the transport took its frame, while the transport
/// was still flushing, is a completed step for the endpoint (the peer gets
/// the frame, the endpoint counts it and its bytes): `Metered` counts it the
/// same, as a send with its bytes, not as a cancellation. A send dropped
/// before the transport took its frame is a cancellation and moves nothing.
#[test]
fn metered_counts_a_send_dropped_while_flushing_as_sent() {
    use std::pin::pin;
    use std::task::{Context, Waker};

    use futures::channel::mpsc;
    use rumpsteak_aura_handler::RumpsteakSession;

    // A rendezvous channel: the flush waits until B takes the frame.
    let (to_b, mut from_a) = mpsc::channel::<Vec<u8>>(0);
    let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(0);
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, RumpsteakSession::from_sink_stream(to_b, from_b));
    let mut h = Metered::new(Handler::new());
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut f = pin!(h.send(&mut a, Role::B, &7u32));
        assert!(f.as_mut().poll(&mut cx).is_pending(), "B has not read");
    }
    assert_eq!(a.get_metadata(&Role::B).expect("B").operation_count, 1);
    let s = h.snapshot();
    let b = s.peer("B").expect("B");
    assert_eq!(b.operations.send, 1);
    assert_eq!(b.cancelled, 0);
    assert!(b.bytes_sent > 0);
    assert_eq!(b.bytes_sent, a.total_traffic().bytes_sent);
    assert!(from_a.try_recv().is_ok(), "the frame is in the channel");
    let sent = b.bytes_sent;

    // Both slots of the rendezvous channel taken: the next frame is not
    // even accepted.
    let (mut filler, _from_a) = mpsc::channel::<Vec<u8>>(0);
    let mut session_tx = filler.clone();
    filler.try_send(vec![0]).expect("slot");
    session_tx.try_send(vec![1]).expect("slot");
    let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(0);
    let mut a = Endpoint::new(Role::A);
    a.register_session(
        Role::B,
        RumpsteakSession::from_sink_stream(session_tx, from_b),
    );
    {
        let mut f = pin!(h.send(&mut a, Role::B, &8u32));
        assert!(f.as_mut().poll(&mut cx).is_pending(), "no slot");
    }
    assert_eq!(a.get_metadata(&Role::B).expect("B").operation_count, 0);
    let s = h.snapshot();
    let b = s.peer("B").expect("B");
    assert_eq!(b.operations.send, 1);
    assert_eq!(b.cancelled, 1);
    assert_eq!(b.bytes_sent, sent);
}

/// Sends through `h` on a rendezvous channel and drops the send while the
/// transport flushes the frame it took; returns the endpoint.
fn send_dropped_while_flushing<H>(h: &mut H) -> Endpoint
where
    H: ChoreoHandler<Role = Role, Endpoint = Endpoint>,
{
    use std::pin::pin;
    use std::task::{Context, Waker};

    use futures::channel::mpsc;
    use rumpsteak_aura_handler::RumpsteakSession;

    let (to_b, from_a) = mpsc::channel::<Vec<u8>>(0);
    let (_to_a, from_b) = mpsc::channel::<Vec<u8>>(0);
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, RumpsteakSession::from_sink_stream(to_b, from_b));
    {
        let mut f = pin!(h.send(&mut a, Role::B, &7u32));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(f.as_mut().poll(&mut cx).is_pending(), "B has not read");
    }
    drop(from_a);
    a
}

/// The same through `Traced` on either side of `Metered`.
#[test]
fn metered_counts_a_send_dropped_while_flushing_through_traced() {
    let mut outer = Metered::new(Traced::new(Handler::new()));
    let a = send_dropped_while_flushing(&mut outer);
    let s = outer.snapshot();
    let b = s.peer("B").expect("B");
    assert_eq!((b.operations.send, b.cancelled), (1, 0));
    assert_eq!(b.bytes_sent, a.total_traffic().bytes_sent);

    let mut under = Traced::new(Metered::new(Handler::new()));
    let a = send_dropped_while_flushing(&mut under);
    let s = under.inner().snapshot();
    let b = s.peer("B").expect("B");
    assert_eq!((b.operations.send, b.cancelled), (1, 0));
    assert_eq!(b.bytes_sent, a.total_traffic().bytes_sent);
}
