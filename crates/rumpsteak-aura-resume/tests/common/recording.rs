//! An in-memory `ResumeListener` whose links all come from Alice, and a
//! redialer whose link ends record what goes over them.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rumpsteak_aura::TransportError;
use rumpsteak_aura_resume::{AcceptFuture, AcceptLinks, Redial};
use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport, SimpleChannel};
use tokio::sync::mpsc;

/// An in-memory listener: every link is from Alice.
pub struct AliceListener(tokio::sync::Mutex<mpsc::UnboundedReceiver<RumpsteakSession>>);

impl AliceListener {
    /// The listener, and the sender that hands it links.
    pub fn new() -> (mpsc::UnboundedSender<RumpsteakSession>, Self) {
        let (to_listener, incoming) = mpsc::unbounded_channel();
        (
            to_listener,
            AliceListener(tokio::sync::Mutex::new(incoming)),
        )
    }
}

impl AcceptLinks for AliceListener {
    fn accept_link<'a>(&'a self, _roles: &'a [&'a str]) -> AcceptFuture<'a> {
        Box::pin(async move {
            let link = self.0.lock().await.recv().await;
            link.map(|l| ("Alice".to_string(), l))
                .ok_or_else(TransportError::closed)
        })
    }
}

/// What the link ends of one [`recording_dialer`] recorded.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The first frame sent on each link (the greeting), in link order.
    pub first_sent: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Every frame received, on any link, in order.
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// A link end that records into a [`Recorded`].
#[derive(Debug)]
struct Recorder {
    channel: SimpleChannel,
    recorded: Recorded,
    sent_any: bool,
}

impl SessionTransport for Recorder {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if !self.sent_any {
            self.sent_any = true;
            self.recorded.first_sent.lock().unwrap().push(frame.clone());
        }
        self.channel.try_send_frame(frame)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransportError>> {
        let polled = self.channel.poll_recv_frame(cx);
        if let Poll::Ready(Ok(f)) = &polled {
            self.recorded.received.lock().unwrap().push(f.clone());
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

/// Dials by handing the other end of a fresh in-memory link to
/// `to_listener`; each link end records into `recorded`.
pub fn recording_dialer(
    to_listener: mpsc::UnboundedSender<RumpsteakSession>,
    recorded: Recorded,
) -> impl Redial {
    move || {
        let (a, b) = SimpleChannel::pair();
        let sent = to_listener.send(b.into());
        let recorded = recorded.clone();
        async move {
            sent.map_err(|_| TransportError::closed())?;
            Ok(RumpsteakSession::from_transport(Recorder {
                channel: a,
                recorded,
                sent_any: false,
            }))
        }
    }
}
