//! A reconnection that a listener routes late (its link given up by the
//! peer, its greeting older than acknowledgements the session holds since)
//! must not end the session: the live link stays.

mod common;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{HANG, config, msg, num};
use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{AcceptFuture, AcceptLinks, ResumableSession, ResumeListener};
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

/// A link end that records the first frame sent on it (the greeting).
#[derive(Debug)]
struct Recorder {
    channel: SimpleChannel,
    greetings: Arc<Mutex<Vec<Vec<u8>>>>,
    recorded: bool,
}

impl SessionTransport for Recorder {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if !self.recorded {
            self.recorded = true;
            self.greetings.lock().unwrap().push(frame.clone());
        }
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
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

#[tokio::test]
async fn a_late_routed_old_greeting_leaves_the_session_alone() {
    let (to_listener, incoming) = mpsc::unbounded_channel::<RumpsteakSession>();
    let listener = ResumeListener::new(
        MemListener(tokio::sync::Mutex::new(incoming)),
        config("Bob", ""),
        &["Alice"],
    );
    let greetings = Arc::new(Mutex::new(Vec::new()));
    let dial = {
        let to_listener = to_listener.clone();
        let greetings = greetings.clone();
        move || {
            let (a, b) = SimpleChannel::pair();
            let sent = to_listener.send(b.into());
            let greetings = greetings.clone();
            async move {
                sent.map_err(|_| TransportError::closed())?;
                Ok(RumpsteakSession::from_transport(Recorder {
                    channel: a,
                    greetings,
                    recorded: false,
                }))
            }
        }
    };
    let (a, b) = tokio::join!(
        ResumableSession::open(dial, config("Alice", "Bob")),
        listener.accept("Alice")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ha, hb) = (a.handle(), b.handle());
    let (mut a, mut b) = (a.into_session(), b.into_session());
    // Bob sends, Alice receives and acknowledges: Bob's acknowledged count
    // passes the `received` of Alice's first greeting (0).
    for i in 0..5 {
        b.send_frame(msg(i)).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(
            num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
            i
        );
    }
    timeout(HANG, async {
        while hb.stats().unacked_frames > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    // Alice's first greeting arrives again on a link of its own, late.
    let old = greetings.lock().unwrap()[0].clone();
    let (ours, theirs) = SimpleChannel::pair();
    to_listener.send(theirs.into()).unwrap();
    let mut ours = RumpsteakSession::from(ours);
    ours.send_frame(old).await.unwrap();
    // The session goes on, both ways.
    for i in 5..10 {
        b.send_frame(msg(i)).await.unwrap();
        a.send_frame(msg(100 + i)).await.unwrap();
    }
    for i in 5..10 {
        assert_eq!(
            num(&timeout(HANG, a.recv_frame()).await.unwrap().unwrap()),
            i
        );
        assert_eq!(
            num(&timeout(HANG, b.recv_frame()).await.unwrap().unwrap()),
            100 + i
        );
    }
    assert_eq!(hb.error().map(|e| e.to_string()), None);
    assert_eq!(ha.error().map(|e| e.to_string()), None);
    drop(ours);
}
