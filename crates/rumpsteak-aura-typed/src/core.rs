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

/// The handler and endpoint a typed role runs on, borrowed for the whole
/// run.
///
/// Each generated state wraps one `Core`; moving to the next state moves
/// the two borrows into the next state's core with [`Core::take`]. Once the
/// role has finished, or given up, the endpoint and its metadata are the
/// caller's again.
///
/// # Dropped before the end
///
/// Every generated state but the end one implements `Drop` by calling
/// [`Core::abandon`] with the peers that still expect something of the role
/// at that state. So a state dropped by an early `return`, a `?`, a panic,
/// a cancelled future or an operation that failed abandons the protocol:
/// [`RumpsteakEndpoint::abandon`] closes the channels to those peers and
/// marks their metadata abandoned. Each of them then gets a closed-channel
/// error (after every frame sent before) instead of waiting for a step that
/// will never come. Channels to peers that expect nothing more stay open.
/// A state that moved on has an empty core, whose `abandon` does nothing.
///
/// The core is two pointers: a state is 16 bytes, and the futures of its
/// methods are as small as they can be.
pub struct Core<'a, R: RoleBounds, H> {
    /// Both `Some` until [`Core::take`] moves them on, or
    /// [`Core::finish`] or [`Core::abandon`] ends the run.
    handler: Option<&'a mut H>,
    ep: Option<&'a mut RumpsteakEndpoint<R>>,
}

/// The invariant every state method relies on.
const MOVED: &str = "invariant: a state's core is emptied only when the state is consumed";

impl<'a, R: RoleBounds, H> Core<'a, R, H>
where
    H: ChoreoHandler<Role = R, Endpoint = RumpsteakEndpoint<R>>,
{
    /// Starts `role` on `ep`. Fails with [`ChoreographyError::WrongRole`],
    /// having touched nothing, if `ep` is another role's endpoint.
    pub fn start(handler: &'a mut H, ep: &'a mut RumpsteakEndpoint<R>, role: R) -> Result<Self> {
        if *ep.local_role() != role {
            return Err(ChoreographyError::WrongRole {
                expected: format!("{role:?}"),
                found: format!("{:?}", ep.local_role()),
            });
        }
        Ok(Core {
            handler: Some(handler),
            ep: Some(ep),
        })
    }

    /// The endpoint, to read its metadata between steps.
    pub fn endpoint(&self) -> &RumpsteakEndpoint<R> {
        match &self.ep {
            Some(ep) => ep,
            None => unreachable!("{MOVED}"),
        }
    }

    #[inline(always)]
    fn parts(&mut self) -> (&mut H, &mut RumpsteakEndpoint<R>) {
        match (&mut self.handler, &mut self.ep) {
            (Some(h), Some(ep)) => (&mut **h, &mut **ep),
            _ => unreachable!("{MOVED}"),
        }
    }

    /// Sends `msg` to `to` with the handler.
    #[inline(always)]
    pub fn send<'s, M>(&'s mut self, to: R, msg: &'s M) -> impl Future<Output = Result<()>> + Send
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

    /// Ends the run and gives the endpoint back. Called by the end state.
    pub fn finish(&mut self) -> &'a mut RumpsteakEndpoint<R> {
        self.handler = None;
        match self.ep.take() {
            Some(ep) => ep,
            None => unreachable!("{MOVED}"),
        }
    }
}

impl<'a, R: RoleBounds, H> Core<'a, R, H> {
    /// Moves the borrows on, for the next state, leaving this core empty.
    #[inline(always)]
    pub fn take(&mut self) -> Self {
        Core {
            handler: self.handler.take(),
            ep: self.ep.take(),
        }
    }

    /// Abandons the protocol with `pending`, the peers that still expect
    /// something, unless the core was moved on or finished: what a state's
    /// `Drop` does.
    #[inline]
    pub fn abandon(&mut self, pending: &[R]) {
        self.handler = None;
        if let Some(ep) = self.ep.take()
            && !pending.is_empty()
        {
            ep.abandon(pending);
        }
    }

    /// [`abandon`](Core::abandon) for a state whose pending peers are known
    /// only at run time (the members of a role family, whose size is a
    /// run's): `pending` lists them, and is called only if the core was
    /// neither moved on nor finished, so a state that moved on allocates
    /// nothing when it is dropped.
    #[inline]
    pub fn abandon_with(&mut self, pending: impl FnOnce() -> Vec<R>) {
        self.handler = None;
        if let Some(ep) = self.ep.take() {
            let pending = pending();
            if !pending.is_empty() {
                ep.abandon(&pending);
            }
        }
    }
}

impl<R: RoleBounds, H> Debug for Core<'_, R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("role", &self.ep.as_ref().map(|ep| ep.local_role()))
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
