//! A tapped transport keeps its send readiness: a send cancelled while the
//! transport was not ready is not delivered, as with the bare handler.

mod common;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::*;
use rumpsteak_aura::{ChoreoHandler, TransportError};
use rumpsteak_aura_handler::RumpsteakSession;
use rumpsteak_aura_layers::Recording;
use rumpsteak_aura_transport::SessionTransport;

#[derive(Debug, Default)]
struct Gate {
    open: bool,
    waker: Option<Waker>,
    delivered: Vec<Vec<u8>>,
}

/// A transport that accepts frames only once its gate is open.
#[derive(Debug, Clone, Default)]
struct Gated(Arc<Mutex<Gate>>);

impl Gated {
    fn open(&self) {
        let mut g = self.0.lock().unwrap();
        g.open = true;
        if let Some(w) = g.waker.take() {
            w.wake();
        }
    }
    fn delivered(&self) -> usize {
        self.0.lock().unwrap().delivered.len()
    }
}

impl SessionTransport for Gated {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        let mut g = self.0.lock().unwrap();
        if g.open {
            Poll::Ready(Ok(()))
        } else {
            g.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.0.lock().unwrap().delivered.push(frame);
        Ok(())
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        Poll::Pending
    }
    fn close(&mut self) {}
}

/// A send cancelled while the gate is shut, then another once it opened:
/// how many frames the transport was given.
fn cancelled_then_sent<H>(h: &mut H, session: RumpsteakSession, gate: &Gated) -> usize
where
    H: ChoreoHandler<Role = Role, Endpoint = Endpoint>,
{
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, session);
    runtime().block_on(async {
        let r =
            tokio::time::timeout(Duration::from_millis(5), h.send(&mut a, Role::B, &1u32)).await;
        assert!(r.is_err(), "the gate was shut");
        gate.open();
        h.send(&mut a, Role::B, &2u32).await.expect("send");
    });
    gate.delivered()
}

#[test]
fn a_send_cancelled_while_not_ready_is_not_delivered() {
    let bare = Gated::default();
    let session = RumpsteakSession::from_transport(bare.clone());
    assert_eq!(cancelled_then_sent(&mut Handler::new(), session, &bare), 1);

    let tapped = Gated::default();
    let rec = Recording::new(Handler::new());
    let session = rec.tap_transport(&Role::B, tapped.clone());
    assert_eq!(
        cancelled_then_sent(&mut rec.clone(), session, &tapped),
        1,
        "only the send that completed, as with the bare handler"
    );
    let t = rec.transcript();
    assert_eq!(t.entries.len(), 2);
    assert!(t.entries[0].cancelled.is_some(), "{}", t.entries[0]);
    assert_eq!(t.entries[0].payload.as_deref(), Some(&[1][..]));
    assert!(t.entries[1].cancelled.is_none());
    assert_eq!(t.entries[1].payload.as_deref(), Some(&[2][..]));
}
