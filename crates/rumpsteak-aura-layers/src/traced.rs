use std::any::type_name;
use std::fmt::{self, Debug};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label, Result, Role};
use rumpsteak_aura_handler::{RumpsteakEndpoint, Traffic};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, Level, Span, field};

use crate::ext::HandlerExt;
use crate::op::{OpKind, short_type_name};

/// A layer that opens a `tracing` span for every operation, inside one span
/// for the session.
///
/// Spans, their levels and their fields:
///
/// | span | level | fields |
/// |---|---|---|
/// | `rumpsteak_session` | `INFO` | `role` |
/// | `rumpsteak_op` | `DEBUG` | `role`, `peer`, `op` (`send`, `recv`, `choose`, `offer`), `msg` (the payload's short type name, for `send` and `recv`), `label` (for `choose` and `offer`), `timeout_ms` (for the timeout forms), `bytes` (the frame's size, header included), `duration_us`, `outcome` (`ok`, `error` or `cancelled`), `error` (the error's message) |
/// | `rumpsteak_with_timeout` | `DEBUG` | `at`, `timeout_ms`, `outcome`, `error` |
///
/// The session span opens at the first operation (or is given with
/// [`Traced::with_session_span`]) and closes when the layer is dropped or
/// [`Traced::new_session`] is called; the operation spans are its
/// children, and the handler's own debug events fall inside them. Nothing
/// is logged at `INFO` or above per operation, and payloads are never
/// logged: only their type names and sizes.
///
/// An operation whose future is dropped before it completes closes its span
/// with `outcome = "cancelled"` and no `bytes`.
///
/// When no subscriber wants `DEBUG` spans the operations run as they would
/// without the layer, after one check of the level filter: nothing is
/// allocated, formatted or timed, and the operation's future is the inner
/// handler's in an enum of two variants. When one does, the instrumented
/// future is boxed (one allocation per operation, beside the span's), so
/// that the future stays small when it is not.
pub struct Traced<H> {
    inner: H,
    session: Option<Span>,
}

impl<H> Traced<H> {
    /// Wraps `inner`. The session span opens at the first operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    /// use rumpsteak_aura_layers::Traced;
    ///
    /// let traced = Traced::new(RumpsteakHandler::<u8, ()>::new());
    /// assert!(traced.session_span().is_none());
    /// let _bare: RumpsteakHandler<u8, ()> = traced.into_inner();
    /// ```
    pub fn new(inner: H) -> Self {
        Traced {
            inner,
            session: None,
        }
    }

    /// Wraps `inner`, with `session` as the span every operation span sits
    /// in.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakHandler;
    /// use rumpsteak_aura_layers::Traced;
    ///
    /// let span = tracing::info_span!("purchase", order = 7);
    /// let traced = Traced::with_session_span(RumpsteakHandler::<u8, ()>::new(), span);
    /// assert!(traced.session_span().is_some());
    /// ```
    pub fn with_session_span(inner: H, session: Span) -> Self {
        Traced {
            inner,
            session: Some(session),
        }
    }

    /// Closes the session span; the next operation opens a new one.
    pub fn new_session(&mut self) {
        self.session = None;
    }

    /// The session span, once open.
    pub fn session_span(&self) -> Option<&Span> {
        self.session.as_ref()
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// Unwraps the handler, closing the session span.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<H: Clone> Clone for Traced<H> {
    /// A clone wraps a clone of the handler and shares the session span.
    fn clone(&self) -> Self {
        Traced {
            inner: self.inner.clone(),
            session: self.session.clone(),
        }
    }
}

impl<H: Debug> Debug for Traced<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("inner", &self.inner)
            .field("session", &self.session)
            .finish()
    }
}

/// What an operation span is about, fixed before the operation starts.
struct OpInfo {
    kind: OpKind,
    msg: Option<&'static str>,
    label: Option<&'static str>,
    timeout: Option<Duration>,
}

/// An open operation span. Dropped before [`Probe::end`], it marks the
/// operation cancelled.
struct Probe {
    span: Span,
    kind: OpKind,
    start: Instant,
    before: Option<Traffic>,
    ended: bool,
}

/// Opens the session span if none is open and a subscriber wants it.
fn ensure_session<R: Role + Eq + Hash + Clone + Debug>(
    session: &mut Option<Span>,
    ep: &RumpsteakEndpoint<R>,
) {
    if session.is_none() && tracing::level_enabled!(Level::INFO) {
        let span = tracing::info_span!("rumpsteak_session", role = ?ep.local_role());
        if !span.is_disabled() {
            *session = Some(span);
        }
    }
}

impl Probe {
    /// Opens an operation span, or returns `None` when no subscriber wants
    /// it. Only called once the level filter said `DEBUG` is wanted.
    #[cold]
    #[inline(never)]
    fn begin<R>(
        session: &mut Option<Span>,
        ep: &RumpsteakEndpoint<R>,
        peer: &R,
        info: OpInfo,
    ) -> Option<Probe>
    where
        R: Role + Eq + Hash + Clone + Debug,
    {
        ensure_session(session, ep);
        macro_rules! op_span {
            ($($parent:tt)*) => {
                tracing::debug_span!(
                    $($parent)*
                    "rumpsteak_op",
                    role = ?ep.local_role(),
                    peer = ?peer,
                    op = info.kind.name(),
                    msg = info.msg,
                    label = info.label,
                    timeout_ms = info.timeout.map(|d| d.as_millis() as u64),
                    bytes = field::Empty,
                    duration_us = field::Empty,
                    outcome = field::Empty,
                    error = field::Empty,
                )
            };
        }
        let span = match session {
            Some(parent) => op_span!(parent: &*parent,),
            None => op_span!(),
        };
        if span.is_disabled() {
            return None;
        }
        Some(Probe {
            span,
            kind: info.kind,
            start: Instant::now(),
            before: ep.traffic(peer),
            ended: false,
        })
    }

    /// Records the outcome of a completed operation.
    fn end<R, T>(
        mut self,
        ep: &RumpsteakEndpoint<R>,
        peer: &R,
        result: &Result<T>,
        label: Option<&'static str>,
    ) where
        R: Role + Eq + Hash + Clone + Debug,
    {
        self.ended = true;
        let span = &self.span;
        span.record("duration_us", self.start.elapsed().as_micros() as u64);
        if let Some(l) = label {
            span.record("label", l);
        }
        match result {
            Ok(_) => {
                if let (Some(before), Some(after)) = (self.before, ep.traffic(peer)) {
                    let bytes = if self.kind.is_outgoing() {
                        after.bytes_sent - before.bytes_sent
                    } else {
                        after.bytes_received - before.bytes_received
                    };
                    span.record("bytes", bytes);
                }
                span.record("outcome", "ok");
            }
            Err(e) => {
                span.record("outcome", "error");
                span.record("error", field::display(e));
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !self.ended {
            self.span.record("outcome", "cancelled");
            self.span
                .record("duration_us", self.start.elapsed().as_micros() as u64);
        }
    }
}

/// One instrumented operation: `$call` is the inner handler's future, built
/// from `$inner` and `$ep` reborrowed, so that the endpoint can be read
/// again once it has completed.
macro_rules! traced_op {
    ($self:ident, $ep:ident, $peer:ident, $info:expr, |$inner:ident, $e:ident| $call:expr, $label:expr) => {{
        let Traced {
            inner: $inner,
            session,
        } = $self;
        // Decided when the future is made: without a subscriber that wants
        // debug spans, the inner future is returned as it is, and nothing
        // of the operation (not even its type name) is looked at.
        if !tracing::level_enabled!(Level::DEBUG) {
            let $e = $ep;
            return Branch::Bare { fut: $call };
        }
        // Boxed: the instrumented future is several times the size of the
        // inner one, and only a subscriber that wants spans pays for it.
        Branch::Spanned { fut: Box::pin(async move {
            let probe = Probe::begin(session, $ep, &$peer, $info);
            let Some(probe) = probe else {
                let $e = $ep;
                return $call.await;
            };
            let span = probe.span.clone();
            let peer = $peer.clone();
            let result = {
                let $e = &mut *$ep;
                $call.instrument(span).await
            };
            let label: fn(&_) -> Option<&'static str> = $label;
            probe.end($ep, &peer, &result, label(&result));
            result
        }) }
    }};
}

pin_project_lite::pin_project! {
    /// The future of a traced operation: the inner handler's own future
    /// when no subscriber wants operation spans, or the instrumented one.
    /// Unlike `futures`' `Either`, its `poll` is always inlined, so that
    /// the bare branch costs one test of the discriminant and nothing more.
    #[project = BranchProj]
    enum Branch<A, B> {
        Bare { #[pin] fut: A },
        Spanned { #[pin] fut: B },
    }
}

impl<A, B> Future for Branch<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    type Output = A::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<A::Output> {
        match self.project() {
            BranchProj::Bare { fut } => fut.poll(cx),
            BranchProj::Spanned { fut } => fut.poll(cx),
        }
    }
}

fn no_label<T>(_: &Result<T>) -> Option<&'static str> {
    None
}

fn offered(r: &Result<Label>) -> Option<&'static str> {
    r.as_ref().ok().map(|l| l.0)
}

impl<H, R> ChoreoHandler for Traced<H>
where
    H: ChoreoHandler<Role = R, Endpoint = RumpsteakEndpoint<R>>,
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
        traced_op!(
            self,
            ep,
            to,
            OpInfo {
                kind: OpKind::Send,
                msg: Some(short_type_name(type_name::<Msg>())),
                label: None,
                timeout: None,
            },
            |inner, e| inner.send(e, to.clone(), msg),
            no_label
        )
    }

    fn recv<Msg>(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Msg>> + Send
    where
        Msg: DeserializeOwned + Send,
    {
        traced_op!(
            self,
            ep,
            from,
            OpInfo {
                kind: OpKind::Recv,
                msg: Some(short_type_name(type_name::<Msg>())),
                label: None,
                timeout: None,
            },
            |inner, e| inner.recv(e, from.clone()),
            no_label
        )
    }

    fn choose(
        &mut self,
        ep: &mut Self::Endpoint,
        who: R,
        label: Label,
    ) -> impl Future<Output = Result<()>> + Send {
        traced_op!(
            self,
            ep,
            who,
            OpInfo {
                kind: OpKind::Choose,
                msg: None,
                label: Some(label.0),
                timeout: None,
            },
            |inner, e| inner.choose(e, who.clone(), label),
            no_label
        )
    }

    fn offer(
        &mut self,
        ep: &mut Self::Endpoint,
        from: R,
    ) -> impl Future<Output = Result<Label>> + Send {
        traced_op!(
            self,
            ep,
            from,
            OpInfo {
                kind: OpKind::Offer,
                msg: None,
                label: None,
                timeout: None,
            },
            |inner, e| inner.offer(e, from.clone()),
            offered
        )
    }

    fn with_timeout<F, T>(
        &mut self,
        ep: &mut Self::Endpoint,
        at: R,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: Future<Output = Result<T>> + Send,
    {
        let Traced { inner, session } = self;
        async move {
            if !tracing::level_enabled!(Level::DEBUG) {
                return inner.with_timeout(ep, at, dur, body).await;
            }
            ensure_session(session, ep);
            let span = match session {
                Some(parent) => {
                    tracing::debug_span!(parent: &*parent, "rumpsteak_with_timeout", at = ?at, timeout_ms = dur.as_millis() as u64, outcome = field::Empty, error = field::Empty)
                }
                None => {
                    tracing::debug_span!("rumpsteak_with_timeout", at = ?at, timeout_ms = dur.as_millis() as u64, outcome = field::Empty, error = field::Empty)
                }
            };
            let result = inner
                .with_timeout(ep, at, dur, body)
                .instrument(span.clone())
                .await;
            record_outcome(&span, &result);
            result
        }
    }
}

fn record_outcome<T>(span: &Span, result: &Result<T, ChoreographyError>) {
    match result {
        Ok(_) => {
            span.record("outcome", "ok");
        }
        Err(e) => {
            span.record("outcome", "error");
            span.record("error", field::display(e));
        }
    }
}

impl<H, R> HandlerExt for Traced<H>
where
    H: HandlerExt<Role = R, Endpoint = RumpsteakEndpoint<R>>,
    R: Role + Eq + Hash + Clone + Debug + Send,
{
    fn offer_among(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        expected: &[Label],
    ) -> impl Future<Output = Result<Label>> + Send {
        traced_op!(
            self,
            ep,
            from,
            OpInfo {
                kind: OpKind::Offer,
                msg: None,
                label: None,
                timeout: None,
            },
            |inner, e| inner.offer_among(e, from.clone(), expected),
            offered
        )
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
        traced_op!(
            self,
            ep,
            from,
            OpInfo {
                kind: OpKind::Recv,
                msg: Some(short_type_name(type_name::<Msg>())),
                label: None,
                timeout: Some(dur),
            },
            |inner, e| inner.recv_timeout(e, from.clone(), dur),
            no_label
        )
    }

    fn offer_timeout(
        &mut self,
        ep: &mut RumpsteakEndpoint<R>,
        from: R,
        dur: Duration,
    ) -> impl Future<Output = Result<Label>> + Send {
        traced_op!(
            self,
            ep,
            from,
            OpInfo {
                kind: OpKind::Offer,
                msg: None,
                label: None,
                timeout: Some(dur),
            },
            |inner, e| inner.offer_timeout(e, from.clone(), dur),
            offered
        )
    }
}
