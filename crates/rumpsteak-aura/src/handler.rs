use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Label, Result};

/// Interprets choreographic effects for one role.
///
/// A handler is the strategy, an endpoint is the state: the handler holds no
/// session data, so one value serves every operation of a role, and the
/// endpoint (`Self::Endpoint`) holds the sessions to the peers.
///
/// Every method returns a `Send` future, so a role can run inside
/// `tokio::spawn`, and implementations write plain `async fn`s. The methods
/// are not boxed: a call costs no allocation beyond what the implementation
/// itself does.
///
/// Implementations must be cancel safe: dropping a returned future before it
/// completes (a timeout, a `select!`) must leave the endpoint usable, with no
/// frame lost or half-read.
pub trait ChoreoHandler: Send {
    /// The roles this handler talks to.
    type Role: Send;
    /// The per-role state: sessions to the peers and their metadata.
    type Endpoint: Send;

    /// Sends a message to a role.
    fn send<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        to: Self::Role,
        msg: &Msg,
    ) -> impl Future<Output = Result<()>> + Send
    where
        Msg: Serialize + Send + Sync;

    /// Receives a message from a role.
    fn recv<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: Self::Role,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send;

    /// Makes an internal choice: tells `who` which branch this role takes.
    fn choose(
        &mut self,
        ep: &mut Self::Endpoint,
        who: Self::Role,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Offers an external choice: waits for `from` to say which branch it took.
    fn offer(
        &mut self,
        ep: &mut Self::Endpoint,
        from: Self::Role,
    ) -> impl Future<Output = Result<Label>> + Send;

    /// Runs `body` and fails with [`ChoreographyError::Timeout`] if it does not
    /// finish within `dur`.
    ///
    /// `at` names the role the timeout is about, for logs. Because `body` is
    /// built before the call, it cannot borrow the same handler and endpoint;
    /// implementations usually add forms that can (a `recv_timeout`, a
    /// closure form).
    ///
    /// [`ChoreographyError::Timeout`]: crate::ChoreographyError::Timeout
    fn with_timeout<F, T>(
        &mut self,
        ep: &mut Self::Endpoint,
        at: Self::Role,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: Future<Output = Result<T>> + Send;
}
