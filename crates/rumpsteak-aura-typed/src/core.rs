//! [`Core`]: what every generated state holds.

use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
use std::sync::Once;
use std::time::Duration;

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role};
use rumpsteak_aura_handler::{RumpsteakEndpoint, register_labels};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a role type needs to run typed: what [`RumpsteakEndpoint`] needs,
/// plus `Send + Sync + 'static`, so that the states' lists of peers can be
/// `static` and the states can cross threads. Implemented for every such
/// type; the enum that `protocol!` generates is one.
pub trait RoleBounds: Role + Eq + Hash + Clone + Debug + Send + Sync + 'static {}

impl<T: Role + Eq + Hash + Clone + Debug + Send + Sync + 'static> RoleBounds for T {}

/// The handler and endpoint a typed role runs on, and the peers that still
/// expect something of it at the current state.
///
/// Each generated state wraps one `Core`; moving to the next state moves
/// the core and replaces its list of peers. Both the handler and the
/// endpoint are borrowed for the whole run, so once the role has finished,
/// or given up, the endpoint and its metadata are the caller's again.
///
/// # Dropped before the end
///
/// Dropping a core whose list of peers is not empty (a state dropped by an
/// early `return`, a `?`, a panic, a cancelled future, or an operation that
/// failed) abandons the protocol: [`RumpsteakEndpoint::abandon`] closes the
/// channels to those peers and marks their metadata abandoned. Each of them
/// then gets a closed-channel error (after every frame sent before) instead
/// of waiting for a step that will never come. Channels to peers that expect
/// nothing more stay open. The end state's core has no peers left, so
/// finishing never closes anything.
pub struct Core<'a, R: RoleBounds, H> {
    handler: &'a mut H,
    /// Always `Some` until [`Core::finish`] takes it; `Option` only because
    /// `Core` has a `Drop` impl, out of which a field cannot be moved.
    ep: Option<&'a mut RumpsteakEndpoint<R>>,
    pending: &'static [R],
}

impl<'a, R: RoleBounds, H> Core<'a, R, H>
where
    H: ChoreoHandler<Role = R, Endpoint = RumpsteakEndpoint<R>>,
{
    /// Starts `role` on `ep`, with `pending` the peers of its whole local
    /// type. Fails with [`ChoreographyError::WrongRole`], having touched
    /// nothing, if `ep` is another role's endpoint.
    pub fn start(
        handler: &'a mut H,
        ep: &'a mut RumpsteakEndpoint<R>,
        role: R,
        pending: &'static [R],
    ) -> Result<Self> {
        if *ep.local_role() != role {
            return Err(ChoreographyError::WrongRole {
                expected: format!("{role:?}"),
                found: format!("{:?}", ep.local_role()),
            });
        }
        Ok(Core {
            handler,
            ep: Some(ep),
            pending,
        })
    }

    /// The same core at the next state, whose peers are `pending`.
    #[inline(always)]
    pub fn next(mut self, pending: &'static [R]) -> Self {
        self.pending = pending;
        self
    }

    /// The peers that still expect something of the role.
    pub fn pending(&self) -> &'static [R] {
        self.pending
    }

    /// The endpoint, to read its metadata between steps.
    pub fn endpoint(&self) -> &RumpsteakEndpoint<R> {
        match &self.ep {
            Some(ep) => ep,
            None => unreachable!("invariant: only `finish` takes the endpoint, and it consumes the core"),
        }
    }

    #[inline(always)]
    fn parts(&mut self) -> (&mut H, &mut RumpsteakEndpoint<R>) {
        match &mut self.ep {
            Some(ep) => (&mut *self.handler, &mut **ep),
            None => unreachable!("invariant: only `finish` takes the endpoint, and it consumes the core"),
        }
    }

    /// Sends `msg` to `to` with the handler.
    #[inline(always)]
    pub fn send<'s, M>(
        &'s mut self,
        to: R,
        msg: &'s M,
    ) -> impl Future<Output = Result<()>> + Send
    where
        M: Serialize + Send + Sync,
    {
        let (h, ep) = self.parts();
        h.send(ep, to, msg)
    }

    /// Receives a message from `from` with the handler.
    #[inline(always)]
    pub fn recv<M>(&mut self, from: R) -> impl Future<Output = Result<M>> + Send
    where
        M: DeserializeOwned + Send,
    {
        let (h, ep) = self.parts();
        h.recv(ep, from)
    }

    /// Tells `to` the choice `label` with the handler.
    #[inline(always)]
    pub fn choose(&mut self, to: R, label: Label) -> impl Future<Output = Result<()>> + Send {
        let (h, ep) = self.parts();
        h.choose(ep, to, label)
    }

    /// Receives the choice of `from` with the handler.
    #[inline(always)]
    pub fn offer(&mut self, from: R) -> impl Future<Output = Result<Label>> + Send {
        let (h, ep) = self.parts();
        h.offer(ep, from)
    }

    /// [`recv`](Core::recv) under a deadline: `None` if `dur` passed first.
    /// The handler's receive is cancel safe, so a message that arrives
    /// later is still there for the next receive.
    pub async fn recv_within<M>(&mut self, from: R, dur: Duration) -> Option<Result<M>>
    where
        M: DeserializeOwned + Send,
    {
        tokio::time::timeout(dur, self.recv(from)).await.ok()
    }

    /// [`offer`](Core::offer) under a deadline: `None` if `dur` passed
    /// first, with nothing consumed.
    pub async fn offer_within(&mut self, from: R, dur: Duration) -> Option<Result<Label>> {
        tokio::time::timeout(dur, self.offer(from)).await.ok()
    }

    /// The error for a label outside `expected` received from `from`.
    #[cold]
    pub fn unexpected(&self, from: &R, label: Label, expected: &[Label]) -> ChoreographyError {
        ChoreographyError::unexpected_label(format!("{from:?}"), expected, label.as_str())
    }

    /// Ends the run and gives the endpoint back. Called by the end state,
    /// whose list of peers is empty.
    pub fn finish(mut self) -> &'a mut RumpsteakEndpoint<R> {
        self.pending = &[];
        match self.ep.take() {
            Some(ep) => ep,
            None => unreachable!("invariant: only `finish` takes the endpoint, and it consumes the core"),
        }
    }
}

impl<R: RoleBounds, H> Drop for Core<'_, R, H> {
    fn drop(&mut self) {
        if let Some(ep) = self.ep.take()
            && !self.pending.is_empty()
        {
            ep.abandon(self.pending);
        }
    }
}

impl<R: RoleBounds, H> Debug for Core<'_, R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("role", &self.ep.as_ref().map(|ep| ep.local_role()))
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// Registers a protocol's choice labels once per process (see
/// [`register_labels`]), so that offers of them never count against the
/// limits on labels learned from peers. Each generated role calls it with
/// its own `Once` when it starts.
pub fn register_once(once: &'static Once, labels: &'static [Label]) {
    once.call_once(|| register_labels(labels));
}

/// Serde support for the unit types that stand for messages without a
/// payload: they travel as `()` does (no bytes in postcard), and keep the
/// message's label as their type name, which is what a monitor checks.
pub mod unit_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes a payload-less message as `()`.
    pub fn serialize<S: Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
        ().serialize(serializer)
    }

    /// Deserializes a payload-less message as `()`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        <()>::deserialize(deserializer)
    }
}
