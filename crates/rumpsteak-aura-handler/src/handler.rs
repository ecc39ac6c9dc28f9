use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::poll_fn;
use std::hash::Hash;
use std::marker::PhantomData;
use std::task::Poll;
use std::time::Duration;

use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, Label, Operation, Result, Role, Transition, TransportError,
    Violation,
};
use rumpsteak_aura_transport::wire::{self, Frame, PayloadError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::endpoint::{Act, RumpsteakEndpoint};
use crate::labels::resolve;
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

impl<R, M> RumpsteakHandler<R, M>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    /// Receives a frame from the peer at index `i`.
    ///
    /// This is the hot path: it is one `poll_fn` over the session rather than
    /// nested `async fn`s, since every level of future costs on each poll.
    fn recv_frame(
        ep: &mut RumpsteakEndpoint<R>,
        i: usize,
        op: Operation,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send + '_ {
        poll_fn(
            move |cx| match ep.peer_at(i).session().poll_recv_frame(cx) {
                Poll::Ready(Ok(frame)) => Poll::Ready(Ok(frame)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(transport_error(ep, i, op, e))),
                Poll::Pending => Poll::Pending,
            },
        )
    }

    /// Receives the next label from `from`, checks it with the monitor if
    /// any, and turns it into a `&'static str` with `resolve`, which gets the
    /// label, the peer's name and the session's label quota.
    async fn offer_with<F>(
        &self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        resolve_label: F,
    ) -> Result<Label>
    where
        F: FnOnce(&str, &str, &mut u32) -> Result<&'static str>,
    {
        let op = Operation::Offer;
        let (i, _) = ep.begin(&from, op, Act::Offer(None))?;
        let frame = Self::recv_frame(ep, i, op).await?;
        let peer = ep.peer_at(i);
        let label = match wire::decode(&frame) {
            Ok(Frame::Label(label)) => label,
            Ok(Frame::Message(_)) => {
                return Err(peer.error(op, Violation::MessageWhereLabelExpected));
            }
            Err(e) => return Err(peer.error(op, e.into())),
        };
        ep.trace(i, op, frame.len(), label);
        let next = ep.check(i, op, Act::Offer(Some(label)))?;
        let peer = ep.peer_at(i);
        let label = resolve_label(label, &peer.name, &mut peer.label_quota)?;
        ep.finish(i, LastOp::Offered(label), next);
        Ok(Label(label))
    }

    /// Offers a choice, accepting only the labels in `expected`.
    ///
    /// A label outside the set is an [`ChoreographyError::UnexpectedLabel`]
    /// that names both the label received and the ones expected. The label
    /// is consumed; the session stays usable. Because the returned label is
    /// one of `expected`, nothing is added to the process-wide label table.
    pub async fn offer_among(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> Result<Label> {
        self.offer_with(ep, from, |received, peer, _| {
            match expected.iter().find(|l| l.0 == received) {
                Some(label) => Ok(label.0),
                None => Err(ChoreographyError::UnexpectedLabel {
                    peer: peer.to_owned(),
                    op: Operation::Offer,
                    expected: expected.to_vec(),
                    received: received.to_owned(),
                }),
            }
        })
        .await
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

/// Sends one frame to the peer at index `i` and records the step.
///
/// The step counts as done from the moment the transport has accepted the
/// whole frame. If the future is dropped after that, while the transport is
/// still flushing (a timeout around a send on a slow network), the frame
/// reaches the peer with the next flush, so the step is recorded on drop:
/// the count, the metadata and the monitor agree with what the peer will
/// see, and a retry is not mistaken for the first attempt. Dropped before
/// the transport took the frame, nothing was sent and nothing is recorded.
struct SendFrame<'a, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    ep: &'a mut RumpsteakEndpoint<R>,
    i: usize,
    op: Operation,
    len: usize,
    /// The frame until the transport accepts it.
    slot: Option<Vec<u8>>,
    /// What to record once the frame is accepted; `None` once recorded or
    /// after a failure.
    record: Option<(LastOp, Option<Transition>, &'static str)>,
}

impl<'a, R> SendFrame<'a, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    fn new(
        ep: &'a mut RumpsteakEndpoint<R>,
        i: usize,
        op: Operation,
        frame: Vec<u8>,
        last: LastOp,
        next: Option<Transition>,
        what: &'static str,
    ) -> Self {
        SendFrame {
            ep,
            i,
            op,
            len: frame.len(),
            slot: Some(frame),
            record: Some((last, next, what)),
        }
    }

    fn record(&mut self) {
        if let Some((last, next, what)) = self.record.take() {
            if self.op == Operation::Send {
                self.ep.peer_at(self.i).send_hint = self.len;
            }
            self.ep.finish(self.i, last, next);
            self.ep.trace(self.i, self.op, self.len, what);
        }
    }
}

impl<R> Future for SendFrame<'_, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    type Output = Result<()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let polled = this
            .ep
            .peer_at(this.i)
            .session()
            .poll_send_frame(cx, &mut this.slot);
        match polled {
            Poll::Ready(Ok(())) => {
                this.record();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.record = None;
                Poll::Ready(Err(transport_error(this.ep, this.i, this.op, e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R> Drop for SendFrame<'_, R>
where
    R: Role + Eq + Hash + Clone + Debug,
{
    fn drop(&mut self) {
        if self.slot.is_none() {
            self.record();
        }
    }
}

async fn deadline<T>(dur: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(dur, fut).await {
        Ok(result) => result,
        Err(_) => Err(ChoreographyError::Timeout(dur)),
    }
}

impl<R, M> ChoreoHandler for RumpsteakHandler<R, M>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    type Role = R;
    type Endpoint = RumpsteakEndpoint<R>;

    async fn send<Msg>(&mut self, ep: &mut Self::Endpoint, to: R, msg: &Msg) -> Result<()>
    where
        Msg: Serialize + Send + Sync,
    {
        let op = Operation::Send;
        let ty = type_name::<Msg>();
        let (i, next) = ep.begin(&to, op, Act::Send(ty))?;
        let peer = ep.peer_at(i);
        let frame = wire::encode_message(msg, peer.send_hint).map_err(|e| {
            ChoreographyError::Serialization {
                peer: peer.name.clone(),
                op,
                type_name: ty,
                source: Box::new(e),
            }
        })?;
        SendFrame::new(ep, i, op, frame, LastOp::Sent(ty), next, ty).await
    }

    async fn recv<Msg>(&mut self, ep: &mut Self::Endpoint, from: R) -> Result<Msg>
    where
        Msg: DeserializeOwned + Send,
    {
        let op = Operation::Recv;
        let ty = type_name::<Msg>();
        let (i, next) = ep.begin(&from, op, Act::Recv(ty))?;
        let frame = Self::recv_frame(ep, i, op).await?;
        let peer = ep.peer_at(i);
        let payload = match wire::decode(&frame) {
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
        ep.finish(i, LastOp::Received(ty), next);
        ep.trace(i, op, frame.len(), ty);
        Ok(msg)
    }

    async fn choose(&mut self, ep: &mut Self::Endpoint, who: R, label: Label) -> Result<()> {
        let op = Operation::Choose;
        let (i, next) = ep.begin(&who, op, Act::Choose(label.0))?;
        let peer = ep.peer_at(i);
        let frame = wire::encode_label(label.0).map_err(|e| peer.error(op, e.into()))?;
        SendFrame::new(ep, i, op, frame, LastOp::Chose(label.0), next, label.0).await
    }

    async fn offer(&mut self, ep: &mut Self::Endpoint, from: R) -> Result<Label> {
        self.offer_with(ep, from, |received, peer, quota| {
            resolve(received, quota).map_err(|violation| ChoreographyError::ProtocolViolation {
                peer: peer.to_owned(),
                op: Operation::Offer,
                violation,
            })
        })
        .await
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
