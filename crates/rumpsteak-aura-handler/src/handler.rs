use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::poll_fn;
use std::hash::Hash;
use std::marker::PhantomData;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, Label, Operation, Result, Role, Transition, TransportError,
    Violation,
};
use rumpsteak_aura_transport::wire::{self, Frame, PayloadError, RawLabel};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::endpoint::{Act, Peer, RumpsteakEndpoint};
use crate::metadata::LastOp;

/// Performs choreographic effects on a [`RumpsteakEndpoint`].
///
/// The handler is stateless: it is a zero-sized `Copy` value, so one handler
/// can serve every operation, be copied into tasks, or be made fresh each
/// time. All state lives in the endpoint.
///
/// Besides the [`ChoreoHandler`] operations it offers
/// [`offer_among`](RumpsteakHandler::offer_among) (an offer that accepts only
/// the given labels), [`recv_timeout`](RumpsteakHandler::recv_timeout),
/// [`offer_timeout`](RumpsteakHandler::offer_timeout) and
/// [`within`](RumpsteakHandler::within) (any steps under one deadline).
///
/// Every operation is cancel safe: dropping its future (a timeout, a
/// `select!`) keeps the peer's session registered and loses no frame.
pub struct RumpsteakHandler<R, M> {
    _types: PhantomData<fn() -> (R, M)>,
}

impl<R, M> RumpsteakHandler<R, M> {
    /// Creates a handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    ///
    /// let handler = RumpsteakHandler::<u8, String>::new();
    /// let copy = handler; // handlers are Copy
    /// assert_eq!(std::mem::size_of_val(&copy), 0);
    /// ```
    pub const fn new() -> Self {
        RumpsteakHandler {
            _types: PhantomData,
        }
    }
}

impl<R, M> Clone for RumpsteakHandler<R, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, M> Copy for RumpsteakHandler<R, M> {}

impl<R, M> Default for RumpsteakHandler<R, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R, M> Debug for RumpsteakHandler<R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RumpsteakHandler")
    }
}

fn transport_error<R>(
    ep: &mut RumpsteakEndpoint<R>,
    i: usize,
    op: Operation,
    e: TransportError,
) -> ChoreographyError
where
    R: Role + Eq + Hash + Clone + Debug,
{
    if e.is_closed() {
        ep.peer_closed(i);
    }
    ChoreographyError::Transport(e.in_context(op, ep.peer_at(i).name.clone()))
}

/// The peer index and monitor transition of a step, fixed when it begins.
type Begun = (usize, Option<Transition>);

/// The state of a `recv` or `offer` future.
///
/// The step begins (peer lookup, monitor check) at the first poll and ends
/// when a frame arrives. No frame is held here: until the transport hands
/// one over, it stays in the transport, so dropping the future loses nothing.
/// Polled again after it completed, the future receives the next frame as a
/// new step.
struct Incoming<'a, R> {
    ep: &'a mut RumpsteakEndpoint<R>,
    from: R,
    op: Operation,
    begun: Option<Begun>,
}

impl<'a, R> Incoming<'a, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    fn new(ep: &'a mut RumpsteakEndpoint<R>, from: R, op: Operation) -> Self {
        Incoming {
            ep,
            from,
            op,
            begun: None,
        }
    }

    /// Polls for the step's frame; `act` is what the monitor checks before
    /// anything is read.
    #[inline(always)]
    fn poll_frame(&mut self, cx: &mut Context<'_>, act: Act<'_>) -> Poll<Result<(Begun, Vec<u8>)>> {
        let (i, next) = match self.begun {
            Some(begun) => begun,
            None => *self.begun.insert(self.ep.begin(&self.from, self.op, act)?),
        };
        let polled = ready!(self.ep.peer_at(i).session().poll_recv_frame(cx));
        self.begun = None;
        Poll::Ready(match polled {
            Ok(frame) => Ok(((i, next), frame)),
            Err(e) => Err(transport_error(self.ep, i, self.op, e)),
        })
    }
}

/// The state of a `send` or `choose` future.
///
/// The step begins and its frame is encoded at the first poll. On the
/// in-memory channel the transport takes the frame at once and nothing is
/// stored here; a transport that is not ready keeps the frame in
/// [`Flight`] until it is.
///
/// The step counts as done from the moment the transport has accepted the
/// whole frame. If the future is dropped after that, while the transport is
/// still flushing (a timeout around a send on a slow network), the frame
/// reaches the peer with the next flush, so the step is recorded on drop:
/// the count, the metadata and the monitor agree with what the peer will
/// see, and a retry is not mistaken for the first attempt. Dropped before
/// the transport took the frame, nothing was sent and nothing is recorded.
/// Polled again after it completed, the future sends again as a new step.
struct Outgoing<'a, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    ep: &'a mut RumpsteakEndpoint<R>,
    to: R,
    op: Operation,
    flight: Option<Flight>,
}

/// A begun step whose frame the transport has not finished with.
struct Flight {
    i: usize,
    next: Option<Transition>,
    last: LastOp,
    len: usize,
    /// The frame until the transport accepts it whole.
    frame: Option<Vec<u8>>,
}

impl<'a, R> Outgoing<'a, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    fn new(ep: &'a mut RumpsteakEndpoint<R>, to: R, op: Operation) -> Self {
        Outgoing {
            ep,
            to,
            op,
            flight: None,
        }
    }

    /// Polls the step: `act` is what the monitor checks, `last` what the
    /// metadata records, and `encode` makes the frame for the peer found.
    #[inline(always)]
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        act: Act<'_>,
        last: LastOp,
        encode: impl FnOnce(&Peer<R>) -> Result<Vec<u8>>,
    ) -> Poll<Result<()>> {
        match self.flight.take() {
            Some(flight) => self.drive(cx, flight),
            None => {
                let (i, next) = self.ep.begin(&self.to, self.op, act)?;
                let frame = encode(self.ep.peer_at(i))?;
                // A flight of its own, apart from the one resumed above: in
                // this copy of `drive` the operation is the constant `last`,
                // so the matches on it in `record` fold.
                let flight = Flight {
                    i,
                    next,
                    last,
                    len: frame.len(),
                    frame: Some(frame),
                };
                self.drive(cx, flight)
            }
        }
    }

    /// Hands the flight's frame to the transport and records the step once
    /// the transport took it; keeps the flight while it is not ready.
    #[inline(always)]
    fn drive(&mut self, cx: &mut Context<'_>, mut flight: Flight) -> Poll<Result<()>> {
        let session = self.ep.peer_at(flight.i).session();
        match session.poll_send_frame(cx, &mut flight.frame) {
            Poll::Ready(Ok(())) => {
                self.record(&flight);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(transport_error(self.ep, flight.i, self.op, e))),
            Poll::Pending => {
                self.flight = Some(flight);
                Poll::Pending
            }
        }
    }

    /// Inlined into the poll, where the operation (`Flight::last`) is
    /// known, so that the matches on it here and in `finish` fold away.
    #[inline(always)]
    fn record(&mut self, flight: &Flight) {
        let (what, hint) = match flight.last {
            LastOp::Sent(ty) => (ty, Some(flight.len)),
            LastOp::Chose(label) => (label, None),
            // `send` and `choose` record nothing else.
            _ => ("", None),
        };
        let peer = self.ep.peer_at(flight.i);
        if let Some(hint) = hint {
            peer.send_hint = hint;
        }
        self.ep
            .finish(flight.i, flight.last, flight.len, flight.next);
        self.ep.trace(flight.i, self.op, flight.len, what);
    }
}

impl<R> Drop for Outgoing<'_, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    // Inlined: after a send completed there is no flight, which the
    // caller's code knows, so the drop folds away.
    #[inline]
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take()
            && flight.frame.is_none()
        {
            self.record(&flight);
        }
    }
}

/// Decodes a received message frame and records the step.
fn received<R, Msg>(ep: &mut RumpsteakEndpoint<R>, (i, next): Begun, frame: &[u8]) -> Result<Msg>
where
    R: Role + Eq + Hash + Clone + Debug,
    Msg: DeserializeOwned,
{
    let op = Operation::Recv;
    let ty = type_name::<Msg>();
    let peer = ep.peer_at(i);
    let payload = match wire::decode(frame) {
        Ok(Frame::Message(payload)) => payload,
        Ok(Frame::Label(_)) => return Err(peer.error(op, Violation::LabelWhereMessageExpected)),
        Err(e) => return Err(peer.error(op, e.into())),
    };
    let msg = wire::decode_message(payload).map_err(|e| match e {
        PayloadError::Trailing(n) => {
            peer.error(op, rumpsteak_aura::FrameError::TrailingBytes(n).into())
        }
        other => ChoreographyError::Serialization {
            peer: peer.name.clone(),
            op,
            type_name: ty,
            source: Box::new(other),
        },
    })?;
    ep.finish(i, LastOp::Received(ty), frame.len(), next);
    ep.trace(i, op, frame.len(), ty);
    Ok(msg)
}

/// How an offer turns the label received into a `&'static str`.
trait Labels<R> {
    /// The label, if it is one known without looking anywhere that has side
    /// effects; compared byte for byte, before any UTF-8 check.
    fn known(&self, label: RawLabel<'_>, peer: &Peer<R>) -> Option<&'static str>;

    /// Any other label, once it is known to be text.
    fn other(&self, label: &str, peer: &mut Peer<R>) -> Result<&'static str>;
}

/// `offer`: any label, through the session's recent labels and then the
/// process-wide table.
struct AnyLabel;

impl<R> Labels<R> for AnyLabel {
    fn known(&self, label: RawLabel<'_>, peer: &Peer<R>) -> Option<&'static str> {
        peer.recent_label(label)
    }

    fn other(&self, label: &str, peer: &mut Peer<R>) -> Result<&'static str> {
        peer.learn_label(label)
            .map_err(|violation| peer.error(Operation::Offer, violation))
    }
}

/// `offer_among`: one of the given labels.
struct OneOf<'l>(&'l [Label]);

impl<R> Labels<R> for OneOf<'_> {
    fn known(&self, label: RawLabel<'_>, _: &Peer<R>) -> Option<&'static str> {
        self.0.iter().find(|l| label.is(l.0)).map(|l| l.0)
    }

    fn other(&self, label: &str, peer: &mut Peer<R>) -> Result<&'static str> {
        Err(ChoreographyError::UnexpectedLabel {
            peer: peer.name.clone(),
            op: Operation::Offer,
            expected: self.0.to_vec(),
            received: label.to_owned(),
        })
    }
}

/// Decodes a received label frame, checks the label with the monitor if
/// any, turns it into a `&'static str`, and records the step. A label the
/// monitor refuses is never learned.
fn offered<R>(
    ep: &mut RumpsteakEndpoint<R>,
    (i, _): Begun,
    frame: &[u8],
    labels: &impl Labels<R>,
) -> Result<Label>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    let op = Operation::Offer;
    let peer = ep.peer_at(i);
    let raw = match wire::decode(frame) {
        Ok(Frame::Label(raw)) => raw,
        Ok(Frame::Message(_)) => return Err(peer.error(op, Violation::MessageWhereLabelExpected)),
        Err(e) => return Err(peer.error(op, e.into())),
    };
    let known = labels.known(raw, peer);
    let text = match known {
        Some(label) => label,
        None => raw.to_str().map_err(|e| peer.error(op, e.into()))?,
    };
    ep.trace(i, op, frame.len(), text);
    let act = match known {
        Some(label) => Act::Offered(label),
        None => Act::Offer(Some(text)),
    };
    let next = ep.check(i, op, act)?;
    let label = match known {
        Some(label) => label,
        None => labels.other(text, ep.peer_at(i))?,
    };
    ep.finish(i, LastOp::Offered(label), frame.len(), next);
    Ok(Label(label))
}

impl<R, M> RumpsteakHandler<R, M>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    /// Receives the next label from `from`, resolved by `labels`.
    fn offer_with(
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        labels: impl Labels<R> + Send,
    ) -> impl Future<Output = Result<Label>> + Send {
        let mut incoming = Incoming::new(ep, from, Operation::Offer);
        poll_fn(move |cx| {
            let (begun, frame) = ready!(incoming.poll_frame(cx, Act::Offer(None)))?;
            Poll::Ready(offered(incoming.ep, begun, &frame, &labels))
        })
    }

    /// Offers a choice, accepting only the labels in `expected`.
    ///
    /// A label outside the set is an [`ChoreographyError::UnexpectedLabel`]
    /// that names both the label received and the ones expected. The label
    /// is consumed; the session stays usable. Because the returned label is
    /// one of `expected`, nothing is added to the process-wide label table.
    pub fn offer_among(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send {
        Self::offer_with(ep, from, OneOf(expected))
    }

    /// Receives a message from `from`, failing with
    /// [`ChoreographyError::Timeout`] after `dur`. The session stays usable
    /// after a timeout: the next receive gets the next message.
    pub async fn recv_timeout<Msg>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> Result<Msg>
    where
        Msg: DeserializeOwned + Send,
    {
        deadline(dur, self.recv(ep, from)).await
    }

    /// Offers a choice, failing with [`ChoreographyError::Timeout`] after
    /// `dur`.
    pub async fn offer_timeout(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> Result<Label> {
        deadline(dur, self.offer(ep, from)).await
    }

    /// Runs several steps under one deadline. The closure gets the handler
    /// and the endpoint, so it may use both (which
    /// [`with_timeout`](ChoreoHandler::with_timeout) cannot allow, since its
    /// body is built before the call).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
    /// # use rumpsteak_aura::{ChoreoHandler, ChoreographyError};
    /// # #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)] enum R { A, B }
    /// # impl rumpsteak_aura::Role for R { type Message = (); fn seal(&mut self) {} fn is_sealed(&self) -> bool { false } }
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// # let (a, _b) = SimpleChannel::pair();
    /// # let mut ep = RumpsteakEndpoint::new(R::A);
    /// # ep.register_channel(R::B, a);
    /// let mut handler = RumpsteakHandler::<R, ()>::new();
    /// let result = handler
    ///     .within(&mut ep, Duration::from_millis(10), async |h, ep| {
    ///         let n: u32 = h.recv(ep, R::B).await?;
    ///         h.send(ep, R::B, &(n + 1)).await
    ///     })
    ///     .await;
    /// assert!(matches!(result, Err(ChoreographyError::Timeout(_))));
    /// # });
    /// ```
    pub async fn within<T, F>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        dur: Duration,
        body: F,
    ) -> Result<T>
    where
        F: AsyncFnOnce(&mut Self, &mut RumpsteakEndpoint<R>) -> Result<T>,
    {
        deadline(dur, body(self, ep)).await
    }
}

async fn deadline<T>(dur: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(dur, fut).await {
        Ok(result) => result,
        Err(_) => Err(ChoreographyError::Timeout(dur)),
    }
}

/// Every operation is one hand-written state machine polled through
/// `poll_fn`, not an `async fn`: this is the hot path, and each level of
/// `async fn` costs on every poll.
impl<R, M> ChoreoHandler for RumpsteakHandler<R, M>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    type Role = R;
    type Endpoint = RumpsteakEndpoint<R>;

    fn send<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        to: R,
        msg: &Msg,
    ) -> impl Future<Output = Result<()>> + Send
    where
        Msg: Serialize + Send + Sync,
    {
        let ty = type_name::<Msg>();
        let mut outgoing = Outgoing::new(ep, to, Operation::Send);
        poll_fn(move |cx| {
            outgoing.poll_send(cx, Act::Send(ty), LastOp::Sent(ty), |peer| {
                wire::encode_message(msg, peer.send_hint).map_err(|e| {
                    ChoreographyError::Serialization {
                        peer: peer.name.clone(),
                        op: Operation::Send,
                        type_name: ty,
                        source: Box::new(e),
                    }
                })
            })
        })
    }

    fn recv<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        let ty = type_name::<Msg>();
        let mut incoming = Incoming::new(ep, from, Operation::Recv);
        poll_fn(move |cx| {
            let (begun, frame) = ready!(incoming.poll_frame(cx, Act::Recv(ty)))?;
            Poll::Ready(received(incoming.ep, begun, &frame))
        })
    }

    fn choose(
        &mut self,
        ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        let mut outgoing = Outgoing::new(ep, who, Operation::Choose);
        poll_fn(move |cx| {
            outgoing.poll_send(cx, Act::Choose(label.0), LastOp::Chose(label.0), |peer| {
                wire::encode_label(label.0).map_err(|e| peer.error(Operation::Choose, e.into()))
            })
        })
    }

    fn offer(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        Self::offer_with(ep, from, AnyLabel)
    }

    async fn with_timeout<F, T>(
        &mut self,
        _ep: &mut Self::Endpoint,
        at: R,
        dur: Duration,
        body: F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send,
    {
        let result = deadline(dur, body).await;
        if result.is_err() {
            tracing::debug!(at = ?at, timeout = ?dur, "operation under with_timeout failed");
        }
        result
    }
}
