//! The farewell of a dropped session reaches the peer also over a link
//! whose flush takes time (a socket that is not writable at once): the
//! driver ends only once the farewell has left the link's buffers.

mod common;

use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{HANG, config, msg, num};
use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::ResumableSession;
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::sync::mpsc;
use tokio::time::{Sleep, timeout};

/// A link end that keeps sent frames in its own buffer and hands them to
/// the peer only when a flush completes, a millisecond after it began.
/// Dropped with frames still buffered, it loses them, as a socket's
/// user-space write buffer does.
#[derive(Debug)]
struct SlowFlush {
    channel: SimpleChannel,
    buffered: Vec<Vec<u8>>,
    flushing: Option<Pin<Box<Sleep>>>,
}

impl SessionTransport for SlowFlush {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.buffered.push(frame);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.buffered.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let sleep = self
            .flushing
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(1))));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.flushing = None;
        for f in self.buffered.drain(..) {
            self.channel.try_send_frame(f)?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        self.channel.poll_recv_frame(cx)
    }

    fn close(&mut self) {
        self.channel.close();
    }

    fn peer_identity(&self) -> Option<&str> {
        None
    }
}

fn slow(channel: SimpleChannel) -> RumpsteakSession {
    RumpsteakSession::from_transport(SlowFlush {
        channel,
        buffered: Vec::new(),
        flushing: None,
    })
}

#[tokio::test]
async fn a_dropped_session_ends_its_peer_orderly_over_a_slow_link() {
    // One link only: a second one is never given, so a peer that missed
    // the farewell ends at its reconnect deadline with an error.
    let (to_bob, incoming) = mpsc::unbounded_channel::<RumpsteakSession>();
    let to_bob = Arc::new(Mutex::new(Some(to_bob)));
    let dial = move || {
        let sender = to_bob.lock().unwrap().take();
        async move {
            let sender = sender.ok_or_else(TransportError::closed)?;
            let (a, b) = SimpleChannel::pair();
            sender.send(slow(b)).map_err(|_| TransportError::closed())?;
            Ok(slow(a))
        }
    };
    let incoming = Arc::new(tokio::sync::Mutex::new(incoming));
    let accept = move || {
        let incoming = incoming.clone();
        async move {
            incoming
                .lock()
                .await
                .recv()
                .await
                .ok_or_else(TransportError::closed)
        }
    };
    // The deadline is what a missed farewell costs; an orderly end does
    // not wait for it.
    let short = |l, p| config(l, p).with_reconnect_deadline(Duration::from_secs(2));
    let (a, b) = tokio::join!(
        ResumableSession::open(dial, short("Alice", "Bob")),
        ResumableSession::open(accept, short("Bob", "Alice"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    for i in 0..10 {
        a.send_frame(msg(i)).await.unwrap();
    }
    drop(a);
    for i in 0..10 {
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    assert!(timeout(HANG, b.recv_frame()).await.unwrap().is_err());
    timeout(HANG, async {
        while !(ha.is_finished() && hb.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        ha.error().map(|e| e.to_string()),
        None,
        "Alice ends orderly"
    );
    assert_eq!(
        hb.error().map(|e| e.to_string()),
        None,
        "Bob got the farewell and ends orderly"
    );
}
