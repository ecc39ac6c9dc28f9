//! A restarted dialer (a new incarnation, none of the old state) whose
//! reconnection a `ResumeListener` routes to the live session of its old
//! incarnation is refused before it is told anything of that session: the
//! first frame it gets is the reject (reason `PeerRestarted`), not the
//! session's greeting with the old incarnations and the received count,
//! and the reject's text does not name the old incarnation either.

mod common;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use common::{HANG, config, msg, num};
use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{
    AcceptFuture, AcceptLinks, RejectReason, ResumableSession, ResumeError, ResumeListener,
};
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// An in-memory listener: every link is from Alice.
struct MemListener(tokio::sync::Mutex<mpsc::UnboundedReceiver<RumpsteakSession>>);

impl AcceptLinks for MemListener {
    fn accept_link<'a>(&'a self, _roles: &'a [&'a str]) -> AcceptFuture<'a> {
        Box::pin(async move {
            let link = self.0.lock().await.recv().await;
            link.map(|l| ("Alice".to_string(), l))
                .ok_or_else(TransportError::closed)
        })
    }
}

/// A dialer's link end that records every frame it receives.
#[derive(Debug)]
struct Heard {
    channel: SimpleChannel,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SessionTransport for Heard {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let polled = self.channel.poll_recv_frame(cx);
        if let Poll::Ready(Ok(f)) = &polled {
            self.frames.lock().unwrap().push(f.clone());
        }
        polled
    }

    fn close(&mut self) {
        self.channel.close();
    }

    fn peer_identity(&self) -> Option<&str> {
        None
    }
}

/// Dials the listener; what the dialer receives is recorded in `heard`.
fn dial(
    to_listener: mpsc::UnboundedSender<RumpsteakSession>,
    heard: Arc<Mutex<Vec<Vec<u8>>>>,
) -> impl rumpsteak_aura_resume::Redial {
    move || {
        let (a, b) = SimpleChannel::pair();
        let sent = to_listener.send(b.into());
        let frames = heard.clone();
        async move {
            sent.map_err(|_| TransportError::closed())?;
            Ok(RumpsteakSession::from_transport(Heard {
                channel: a,
                frames,
            }))
        }
    }
}

#[tokio::test]
async fn a_restarted_dialer_is_refused_before_it_learns_the_session() {
    let (to_listener, incoming) = mpsc::unbounded_channel::<RumpsteakSession>();
    let listener = ResumeListener::new(
        MemListener(tokio::sync::Mutex::new(incoming)),
        config("Bob", ""),
        &["Alice"],
    );
    let old_heard = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = tokio::join!(
        ResumableSession::open(
            dial(to_listener.clone(), old_heard.clone()),
            config("Alice", "Bob")
        ),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let hb = b.handle();
    let (mut a, mut b) = (a.into_session(), b.into_session());
    a.send_frame(msg(7)).await.unwrap();
    assert_eq!(
        num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
        7
    );
    // The old Alice got Bob's greeting (wire version 2, frame type 0x10:
    // docs/wire-format.md) on her first link: the recorder sees greetings.
    assert_eq!(old_heard.lock().unwrap()[0][..2], [2, 0x10]);

    // A new Alice, without the old state, dials while Bob's session lives.
    let heard = Arc::new(Mutex::new(Vec::new()));
    let reborn = timeout(
        HANG,
        ResumableSession::open(dial(to_listener, heard.clone()), config("Alice", "Bob")),
    )
    .await
    .unwrap()
    .unwrap_err();
    // Bob refuses the new incarnation ...
    let bob_end = timeout(HANG, b.recv_frame()).await.unwrap().unwrap_err();
    let old_incarnation = match ResumeError::of(&bob_end) {
        Some(ResumeError::PeerRestarted { expected, .. }) => *expected,
        other => panic!("expected a restarted peer, got {other:?}"),
    };
    assert!(hb.is_finished());
    // ... before greeting it: the first frame the new Alice got is the
    // reject (type 0x11) of reason 3, peer restarted, and she ends with
    // that refusal.
    let first = heard.lock().unwrap().first().cloned();
    let first = first.expect("the new Alice heard nothing");
    assert_eq!(first[..3], [2, 0x11, 3], "first frame {first:?}");
    match &reborn {
        ResumeError::RefusedByPeer { reason, detail } => {
            assert_eq!(*reason, RejectReason::PeerRestarted);
            // The reject's text names the reason, not the incarnation Bob
            // expected (the old Alice's).
            let hex = format!("{old_incarnation:016x}");
            assert!(!detail.contains(&hex), "{detail}");
            let raw = old_incarnation.to_be_bytes();
            assert!(!first.windows(8).any(|w| w == raw), "first frame {first:?}");
        }
        other => panic!("expected a refusal as restarted, got {other}"),
    }
}
