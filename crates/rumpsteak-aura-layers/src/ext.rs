use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};
use serde::de::DeserializeOwned;

/// The operations of [`RumpsteakHandler`] beyond [`ChoreoHandler`], for
/// every handler of a stack: each layer forwards them to the handler it
/// wraps, instrumented as it instruments the trait's own operations.
///
/// Code generic over `H: HandlerExt` keeps `offer_among` and the timeout
/// forms whatever layers sit around the handler.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rumpsteak_aura::{ChoreographyError, Label};
/// use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
/// use rumpsteak_aura_layers::{HandlerExt, Metered, Traced};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum R { A, B }
/// impl rumpsteak_aura::Role for R {
///     type Message = ();
///     fn seal(&mut self) {}
///     fn is_sealed(&self) -> bool { false }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let (a, _b) = SimpleChannel::pair();
/// let mut ep = RumpsteakEndpoint::new(R::A);
/// ep.register_channel(R::B, a);
/// let mut h = Traced::new(Metered::new(RumpsteakHandler::<R, ()>::new()));
/// let r = h.offer_timeout(&mut ep, R::B, Duration::from_millis(5)).await;
/// assert!(matches!(r, Err(ChoreographyError::Timeout(_))));
/// assert_eq!(h.inner().snapshot().peers[0].errors.timeout, 1);
/// # });
/// ```
pub trait HandlerExt: ChoreoHandler {
    /// Offers a choice, accepting only the labels in `expected` (see
    /// [`RumpsteakHandler::offer_among`]).
    fn offer_among(
        &mut self,
        ep: &mut Self::Endpoint,
        from: Self::Role,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send;

    /// Receives a message, failing with [`ChoreographyError::Timeout`] after
    /// `dur` (see [`RumpsteakHandler::recv_timeout`]).
    fn recv_timeout<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: Self::Role,
        dur: Duration,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send;

    /// Offers a choice, failing with [`ChoreographyError::Timeout`] after
    /// `dur` (see [`RumpsteakHandler::offer_timeout`]).
    fn offer_timeout(
        &mut self,
        ep: &mut Self::Endpoint,
        from: Self::Role,
        dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send;

    /// Runs several steps of this handler under one deadline (see
    /// [`RumpsteakHandler::within`]). The steps inside go through the
    /// whole stack, so each layer sees them as it sees any other.
    ///
    /// The returned future is `Send` whenever `body`'s is; the bound cannot
    /// be written for an async closure, so it is not promised here.
    fn within<T, F>(
        &mut self,
        ep: &mut Self::Endpoint,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>>
    where
        Self: Sized,
        F: AsyncFnOnce(&mut Self, &mut Self::Endpoint) -> Result<T>,
    {
        deadline(dur, body(self, ep))
    }
}

/// Runs `fut` under a deadline, as the handler does.
pub(crate) async fn deadline<T>(dur: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(dur, fut).await {
        Ok(result) => result,
        Err(_) => Err(ChoreographyError::Timeout(dur)),
    }
}

impl<R, M> HandlerExt for RumpsteakHandler<R, M>
where
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    fn offer_among(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send {
        RumpsteakHandler::offer_among(self, ep, from, expected)
    }

    fn recv_timeout<Msg>(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        RumpsteakHandler::recv_timeout(self, ep, from, dur)
    }

    fn offer_timeout(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send {
        RumpsteakHandler::offer_timeout(self, ep, from, dur)
    }
}
