//! The driver task: reads the link, writes numbered frames and
//! acknowledgements (the front writes one itself when it finds the link's
//! sending side free, see [`Wire`]), and gets a new link after a loss.

use std::fmt;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rumpsteak_aura::{TransportError, TransportErrorKind};
use rumpsteak_aura_transport::RumpsteakSession;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::config::ResumeConfig;
use crate::error::{ResumeError, escaped};
use crate::frame::{self, DecodeError, Hello, LinkFrame, RESUME_WIRE_VERSION, RejectReason};
use crate::session::{Inner, Redial, State, wake};

/// A link a listener routed to a session, with the greeting it read.
#[derive(Debug)]
pub(crate) struct RoutedLink {
    pub(crate) link: RumpsteakSession,
    pub(crate) hello: Hello,
}

/// Where the driver's links come from.
pub(crate) enum Source {
    Redial(Box<dyn Redial>),
    Routed {
        links: mpsc::Receiver<RoutedLink>,
        /// Keeps the session registered at its listener while it lives.
        _registration: Box<dyn Send + Sync>,
    },
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Redial(_) => f.write_str("Redial"),
            Source::Routed { .. } => f.write_str("Routed"),
        }
    }
}

/// Why an attempt at a link failed.
enum Attempt {
    /// Worth another try, for this reason.
    Retry(String),
    /// Ends the session.
    Fatal(ResumeError),
}

/// Why serving a link stopped.
enum End {
    /// The link broke, for this reason.
    Lost(String),
    /// A listener routed a newer link to this session.
    Replaced(Box<RoutedLink>),
    /// The session ended orderly.
    Done,
    /// The session ended with a bound.
    Fail(ResumeError),
}

/// A fresh random incarnation nonce, never 0. Not secret: it tells a
/// restarted peer from the same one, the certificate proves who it is.
pub(crate) fn fresh_incarnation() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        let v = h.finish();
        if v != 0 {
            return v;
        }
    }
}

fn describe(e: &TransportError) -> String {
    match e.kind() {
        TransportErrorKind::Closed => "the link closed".to_string(),
        _ => e.to_string(),
    }
}

/// What the sending side of the current link needs, shared by the driver
/// and the front (which writes a frame on the link itself when it holds
/// this uncontended, saving a wake of the driver task), behind its own
/// mutex. Whoever holds it may take the state lock, never the reverse.
#[derive(Debug)]
pub(crate) struct Wire {
    /// The current link; `None` while there is none (or the driver is
    /// getting a new one).
    pub(crate) link: Option<RumpsteakSession>,
    /// A frame being handed to the link.
    slot: Option<Vec<u8>>,
    pub(crate) seq: Sending,
    /// Why the link broke under a write or read by the front: the driver
    /// gives it up on its next poll.
    lost: Option<String>,
    /// A frame the front read off the link and left to the driver (one
    /// that is not the next data frame or an acknowledgement): the driver
    /// handles it before it reads on, and the front reads nothing until it
    /// has.
    unread: Option<Vec<u8>>,
    /// Whether the link's sending side holds nothing unwritten: only then
    /// does the front read (a read flushes first, with the reader's waker).
    flushed: bool,
    /// The driver task's waker: a write by the front that cannot finish
    /// leaves the rest to the driver, woken when the link has room.
    waker: Option<Waker>,
}

/// The sequence state of the sending side of the current link.
#[derive(Debug)]
pub(crate) struct Sending {
    /// The last sequence number written on the current link.
    pub(crate) sent: u64,
    /// The last acknowledgement written on the current link.
    ack_sent: u64,
    ack_due: bool,
    ack_armed: bool,
    heartbeat_due: bool,
    gone_sent: bool,
    /// When a frame last left for the link: a heartbeat is due
    /// `heartbeat` after it.
    last_send: Instant,
    /// When a frame last came from the link, read by the driver or the
    /// front (or the driver chose not to read): the link is given up
    /// `idle_timeout` after it.
    last_recv: Instant,
    /// When the timer armed by `ack_armed` comes back, to send a standalone
    /// acknowledgement of whatever is unacknowledged by then.
    ack_deadline: Instant,
}

impl Sending {
    /// The next frame to write, if any is due: an unsent numbered frame
    /// (carrying an acknowledgement), a standalone acknowledgement or
    /// heartbeat, or the farewell once everything is acknowledged and the
    /// application is gone.
    fn next_frame(&mut self, inner: &Inner) -> Option<Vec<u8>> {
        let s = inner.lock();
        let ack = s.received;
        if self.sent + 1 < s.next_seq {
            let index = usize::try_from(self.sent - s.acked).ok()?;
            let out = s.replay.get(index)?;
            let f = if out.close {
                frame::encode_close(out.seq, ack)
            } else {
                frame::encode_data(out.seq, ack, &out.payload)
            };
            self.sent = out.seq;
            drop(s);
            self.acked_on_link(ack);
            return Some(f);
        }
        let pending = ack - self.ack_sent;
        if self.heartbeat_due || (pending > 0 && (pending >= inner.ack_every || self.ack_due)) {
            drop(s);
            self.acked_on_link(ack);
            return Some(frame::encode_ack(ack));
        }
        if s.front_gone && s.replay.is_empty() && !self.gone_sent {
            self.gone_sent = true;
            return Some(frame::encode_gone(ack));
        }
        None
    }

    /// An acknowledgement of `ack` left on the link. An armed timer stays
    /// armed: it finds nothing to acknowledge, or what came since, when it
    /// fires; so a steady flow arms it once per acknowledgement delay, not
    /// once per frame.
    fn acked_on_link(&mut self, ack: u64) {
        self.ack_sent = ack;
        self.ack_due = false;
        self.heartbeat_due = false;
    }
}

impl Wire {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Wire {
            link: None,
            slot: None,
            seq: Sending {
                sent: 0,
                ack_sent: 0,
                ack_due: false,
                ack_armed: false,
                heartbeat_due: false,
                gone_sent: false,
                last_send: now,
                last_recv: now,
                ack_deadline: now,
            },
            lost: None,
            unread: None,
            flushed: true,
            waker: None,
        }
    }

    /// Writes every frame due on the link, as far as it takes them, with
    /// `cx` told when it has room again. `Ok(true)`: everything is written
    /// and flushed; `Err`: the link broke, for this reason.
    fn send_due(&mut self, inner: &Inner, cx: &mut Context<'_>) -> Result<bool, String> {
        let Wire {
            link, slot, seq, ..
        } = self;
        let Some(link) = link.as_mut() else {
            return Ok(false);
        };
        let mut sent_any = false;
        loop {
            if slot.is_none() {
                match seq.next_frame(inner) {
                    Some(f) => *slot = Some(f),
                    None => break,
                }
            }
            match link.poll_send_frame(cx, slot) {
                Poll::Ready(Ok(())) => sent_any = true,
                Poll::Ready(Err(e)) => return Err(describe(&e)),
                Poll::Pending => break,
            }
        }
        if sent_any {
            seq.last_send = Instant::now();
        }
        if slot.is_some() {
            self.flushed = false;
            return Ok(false);
        }
        // Flushes what the link still buffers.
        let done = match link.poll_send_frame(cx, &mut None) {
            Poll::Ready(Err(e)) => return Err(describe(&e)),
            Poll::Ready(Ok(())) => true,
            Poll::Pending => false,
        };
        self.flushed = done;
        Ok(done)
    }

    /// The front's read, under the state lock `s`, while the application
    /// waits for a frame and none was received: reads the link (with the
    /// dispatching waker in `read_cx`) until the next data frame, taking
    /// acknowledgements on the way. Anything else, and a broken link, is
    /// left to the driver ([`FrontRead::Handover`]); so is the read when
    /// the link is not the front's to read now.
    ///
    /// It stops at the data frame: the link's readiness was used up by the
    /// wake that brought the application here, so until the application
    /// reads again, what comes waits in the link (the driver reads it when
    /// a send finds the replay buffer full, when the session is dropped,
    /// and at the latest when the acknowledgement timer the frame armed, or
    /// found armed, fires: see [`arm_ack`](Self::arm_ack)). Reading on until the link holds a waker again
    /// cost a poll of the link per frame, and on the multi-thread runtime
    /// sent the peer's next frame to the driver task about every time.
    pub(crate) fn read_for_front(
        &mut self,
        inner: &Inner,
        s: &mut State,
        read_cx: &mut Context<'_>,
    ) -> FrontRead {
        let mut sender = None;
        if self.unread.is_some() || self.lost.is_some() || !self.flushed || self.slot.is_some() {
            return FrontRead::Handover(sender);
        }
        let frame = loop {
            match self.read_one(s, read_cx, &mut sender) {
                Read::Data(f) => break f,
                Read::Taken => {}
                Read::Pending => return FrontRead::Pending(sender),
                Read::Left => return FrontRead::Handover(sender),
            }
        };
        let wake_driver = self.arm_ack(inner);
        FrontRead::Frame {
            frame,
            sender,
            wake_driver,
            ack_now: s.received - self.seq.ack_sent >= inner.ack_every,
        }
    }

    /// One frame off the link for the front: the next data frame's
    /// payload, an acknowledgement taken, or anything else left to the
    /// driver in `unread` (a broken link in `lost`).
    fn read_one(
        &mut self,
        s: &mut State,
        read_cx: &mut Context<'_>,
        sender: &mut Option<Waker>,
    ) -> Read {
        let Some(link) = self.link.as_mut() else {
            return Read::Left;
        };
        let mut f = match link.poll_recv_frame(read_cx) {
            Poll::Pending => return Read::Pending,
            Poll::Ready(Err(e)) => {
                self.lost = Some(describe(&e));
                return Read::Left;
            }
            Poll::Ready(Ok(f)) => f,
        };
        self.seq.last_recv = Instant::now();
        let sent = self.seq.sent;
        let (data, ack) = match frame::decode(&f) {
            Ok(LinkFrame::Ack { ack }) if ack <= sent => (None, ack),
            Ok(LinkFrame::Data { seq, ack, .. }) if ack <= sent && seq == s.received + 1 => {
                (Some(seq), ack)
            }
            _ => {
                self.unread = Some(f);
                return Read::Left;
            }
        };
        // Cannot fail: `ack <= sent` was checked.
        if let Ok(w) = ack_locked(s, sent, ack) {
            *sender = sender.take().or(w);
        }
        let Some(seq) = data else {
            return Read::Taken;
        };
        s.received = seq;
        let offset = frame::data_payload_offset(&f);
        f.drain(..offset);
        Read::Data(f)
    }

    /// Arms the acknowledgement timer for a data frame the front took, if
    /// no timer is armed: `true` when it did, and the driver must be woken
    /// to set its timer. The acknowledgement rides on the next frame sent
    /// (or leaves at once, by the count); the timer sends it alone if none
    /// leaves in time.
    ///
    /// It is armed even when the count sends the acknowledgement at once:
    /// the frame taken used up the link's read readiness, and the link
    /// holds no waker until someone reads it again. Should the application
    /// not come back to the link (it works on the frame, or only sends),
    /// the timer brings the driver to it within the acknowledgement delay,
    /// and the driver's read leaves the link's next readiness with the
    /// driver. Without it, what arrives meanwhile (the peer's frames, which
    /// its replay buffer holds until they are acknowledged) would wait in
    /// the link for a heartbeat.
    fn arm_ack(&mut self, inner: &Inner) -> bool {
        let q = &mut self.seq;
        if q.ack_armed {
            return false;
        }
        q.ack_armed = true;
        q.ack_deadline = q.last_recv + inner.ack_delay;
        true
    }

    /// The front's write: the frames due (the one just accepted, with the
    /// acknowledgement of what was received), on the link if there is one
    /// and nothing is in the way. `false`: the driver must finish the job.
    pub(crate) fn send_from_front(&mut self, inner: &Inner) -> bool {
        if self.link.is_none() || self.lost.is_some() {
            return false;
        }
        let Some(waker) = self.waker.clone() else {
            return false;
        };
        let mut cx = Context::from_waker(&waker);
        match self.send_due(inner, &mut cx) {
            Ok(done) => done,
            Err(cause) => {
                self.lost = Some(cause);
                false
            }
        }
    }
}

/// What [`Wire::read_for_front`] did. Each carries the waker of a sender
/// an acknowledgement made room for, to wake once the locks are let go.
pub(crate) enum FrontRead {
    /// The next data frame, its payload only. `wake_driver`: the driver
    /// must run (to set its timer for the acknowledgement timer armed, or
    /// for a frame left to it); `ack_now`: enough is unacknowledged for an
    /// acknowledgement to leave now.
    Frame {
        frame: Vec<u8>,
        sender: Option<Waker>,
        wake_driver: bool,
        ack_now: bool,
    },
    /// Nothing to read now; the link wakes the dispatcher when there is.
    Pending(Option<Waker>),
    /// The driver must read on (and be woken).
    Handover(Option<Waker>),
}

/// One frame read by [`Wire::read_one`].
enum Read {
    Data(Vec<u8>),
    Taken,
    Pending,
    Left,
}

pub(crate) struct Driver {
    inner: Arc<Inner>,
    source: Source,
    config: ResumeConfig,
    incarnation: u64,
    peer_incarnation: Option<u64>,
    /// The identity the first link proved (`Some(None)`: it proved none).
    first_identity: Option<Option<String>>,
    /// The one timer of the three deadlines above (idle, heartbeat,
    /// acknowledgement while armed). It never runs past the earliest of
    /// them: the idle and heartbeat deadlines only move later (a heartbeat
    /// made due sets it to a heartbeat from then, the earliest the next
    /// one can be due), and arming an acknowledgement pulls it earlier
    /// where needed. It may fire before the deadlines, which are checked
    /// when it does; so a frame costs no timer update, and in a steady
    /// flow the timer fires about once per acknowledgement delay.
    timer: Pin<Box<Sleep>>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("source", &self.source)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

impl Drop for Driver {
    /// A driver dropped before its session ended (its task aborted, or its
    /// runtime shut down while the application holds the session in
    /// another) ends the session with [`ResumeError::DriverGone`]: nothing
    /// else would ever move a frame or wake a waiting operation; the link
    /// is closed with it. After
    /// [`run`](Self::run) ends the session itself, this does nothing.
    fn drop(&mut self) {
        let mut s = self.inner.lock();
        if s.done || s.failed.is_some() {
            return;
        }
        s.link_up = false;
        let wakers = self.inner.fail(&mut s, ResumeError::DriverGone);
        drop(s);
        wake(wakers);
        // The link closes now, so the peer learns of it, rather than when
        // the application lets the session go. Taken once the state lock
        // is let go: where both are held, the wire lock comes first.
        drop(self.inner.wire().link.take());
    }
}

impl Driver {
    pub(crate) fn new(inner: Arc<Inner>, source: Source, config: ResumeConfig) -> Self {
        Self::with_incarnation(inner, source, config, fresh_incarnation())
    }

    pub(crate) fn with_incarnation(
        inner: Arc<Inner>,
        source: Source,
        config: ResumeConfig,
        incarnation: u64,
    ) -> Self {
        let now = Instant::now();
        Driver {
            inner,
            source,
            incarnation,
            peer_incarnation: None,
            first_identity: None,
            timer: Box::pin(tokio::time::sleep_until(
                now + config.heartbeat.min(config.idle_timeout),
            )),
            config,
        }
    }

    /// Serves links until the session ends.
    pub(crate) async fn run(mut self, link: RumpsteakSession) {
        let inner = self.inner.clone();
        inner.wire().link = Some(link);
        loop {
            let end = poll_fn(|cx| self.poll_serve(cx, &mut inner.wire())).await;
            // The link goes (closed when dropped) before anything else.
            drop(inner.wire().link.take());
            let next = match end {
                End::Done => {
                    tracing::debug!(session = %self.config.session_id, "resumable session finished");
                    self.finish();
                    return;
                }
                End::Fail(error) => {
                    tracing::debug!(session = %self.config.session_id, %error, "resumable session ends");
                    self.fail(error);
                    return;
                }
                End::Lost(cause) => {
                    self.link_lost(&cause);
                    self.connect(Some(cause), None).await
                }
                End::Replaced(routed) => {
                    let cause = "a reconnection replaced the link".to_string();
                    self.link_lost(&cause);
                    self.connect(Some(cause), Some(*routed)).await
                }
            };
            match next {
                Ok(Some(new)) => inner.wire().link = Some(new),
                Ok(None) => {
                    self.finish();
                    return;
                }
                Err(error) => {
                    tracing::debug!(session = %self.config.session_id, %error, "resumable session ends");
                    self.fail(error);
                    return;
                }
            }
        }
    }

    fn finish(&mut self) {
        let mut s = self.inner.lock();
        s.done = true;
        s.link_up = false;
        let wakers = s.wake_all();
        drop(s);
        wake(wakers);
    }

    fn fail(&mut self, error: ResumeError) {
        let mut s = self.inner.lock();
        s.link_up = false;
        let wakers = self.inner.fail(&mut s, error);
        drop(s);
        wake(wakers);
    }

    fn link_lost(&mut self, cause: &str) {
        tracing::debug!(session = %self.config.session_id, role = %self.config.local_role, cause, "link lost");
        let mut s = self.inner.lock();
        s.link_up = false;
        s.last_cause = Some(cause.to_string());
        // A sender waiting for room may now have to fail (`OnFull::Fail`).
        let w = s.send_waker.take();
        drop(s);
        wake(w);
    }

    /// Whether nothing is left to do without a link: the application is
    /// gone and the peer has acknowledged everything, or the peer is gone.
    fn nothing_left(&self) -> bool {
        let s = self.inner.lock();
        s.peer_gone || (s.front_gone && s.replay.is_empty())
    }

    /// Gets a link and resumes on it, retrying with backoff until the
    /// reconnect deadline. `Ok(None)`: nothing left to do.
    pub(crate) async fn connect(
        &mut self,
        cause: Option<String>,
        mut routed: Option<RoutedLink>,
    ) -> Result<Option<RumpsteakSession>, ResumeError> {
        let first = cause.is_none();
        let deadline_len = self.config.reconnect_deadline;
        let deadline = Instant::now() + deadline_len;
        let mut last = cause.unwrap_or_else(|| "first connect".to_string());
        let mut backoff = self.config.backoff_initial;
        let mut attempts = 0u32;
        let inner = self.inner.clone();
        loop {
            if self.nothing_left() {
                return Ok(None);
            }
            // An attempt that fails at once would never let the timeout
            // below fire: the deadline is checked before each one.
            if attempts > 0 && Instant::now() >= deadline {
                return Err(ResumeError::ReconnectDeadline {
                    deadline: deadline_len,
                    attempts,
                    last_cause: last,
                });
            }
            attempts += 1;
            let candidate = routed.take();
            let outcome = tokio::select! {
                r = tokio::time::timeout_at(deadline, self.attempt(candidate)) => r,
                stop = stopped(&inner) => return stop.map(|()| None),
            };
            match outcome {
                Err(_) => {
                    return Err(ResumeError::ReconnectDeadline {
                        deadline: deadline_len,
                        attempts,
                        last_cause: last,
                    });
                }
                Ok(Ok(link)) => {
                    let sent = self.inner.wire().seq.sent;
                    let mut s = self.inner.lock();
                    if !first {
                        s.reconnects += 1;
                    }
                    let resent = s.next_seq - 1 - sent;
                    let w = s.send_waker.take();
                    drop(s);
                    wake(w);
                    tracing::debug!(
                        session = %self.config.session_id,
                        role = %self.config.local_role,
                        attempts,
                        resent,
                        first,
                        "link up, session resumed"
                    );
                    return Ok(Some(link));
                }
                Ok(Err(Attempt::Fatal(e))) => return Err(e),
                Ok(Err(Attempt::Retry(why))) => {
                    tracing::debug!(session = %self.config.session_id, attempt = attempts, cause = %why, "reconnect attempt failed");
                    last = why;
                    let wake_at = (Instant::now() + backoff).min(deadline);
                    tokio::select! {
                        () = tokio::time::sleep_until(wake_at) => {}
                        stop = stopped(&inner) => return stop.map(|()| None),
                    }
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
    }

    /// One attempt: a link (routed already, or from the source), then the
    /// resume exchange on it.
    async fn attempt(&mut self, routed: Option<RoutedLink>) -> Result<RumpsteakSession, Attempt> {
        let (link, hello) = match routed {
            Some(r) => (r.link, Some(r.hello)),
            None => match &mut self.source {
                Source::Redial(redial) => match redial.redial().await {
                    Ok(link) => (link, None),
                    Err(e) if e.refusal().is_some() => {
                        return Err(Attempt::Fatal(ResumeError::Link(Arc::new(e))));
                    }
                    Err(e) => return Err(Attempt::Retry(format!("redial failed: {e}"))),
                },
                Source::Routed { links, .. } => match links.recv().await {
                    Some(r) => (r.link, Some(r.hello)),
                    None => {
                        return Err(Attempt::Fatal(ResumeError::Link(Arc::new(
                            TransportError::other("the listener that routes this session is gone"),
                        ))));
                    }
                },
            },
        };
        self.resume_on(link, hello).await
    }

    /// The resume exchange on a new link: greet, read the peer's greeting
    /// (or take the one a listener read), check it is the same session and
    /// peer, and take up the sequence where the peer left it.
    async fn resume_on(
        &mut self,
        mut link: RumpsteakSession,
        hello: Option<Hello>,
    ) -> Result<RumpsteakSession, Attempt> {
        // Who the link proves the peer to be is known before any greeting:
        // another identity is refused before it learns anything of the
        // session's state.
        if let Err((reason, error)) = self.check_identity(link.peer_identity()) {
            return Err(refuse(&mut link, reason, error).await);
        }
        // A listener read the greeting of a routed link already: it is
        // checked before this side greets, so that a peer refused here (a
        // restarted one, say) learns nothing of the session's state either.
        if let Some(theirs) = &hello
            && let Err((reason, error)) = self.check(theirs)
        {
            // One with less received than the peer acknowledged since is an
            // old link's (read when it arrived, routed late), not a peer out
            // of step. That link is given up, not the session.
            if reason == RejectReason::StateMismatch && theirs.received < self.inner.lock().acked {
                return Err(Attempt::Retry(format!("a stale reconnection: {error}")));
            }
            return Err(refuse(&mut link, reason, error).await);
        }
        let received = self.inner.lock().received;
        let mine = Hello {
            session: self.config.session_id.clone(),
            from: self.config.local_role.clone(),
            to: self.config.peer_role.clone(),
            incarnation: self.incarnation,
            peer_incarnation: self.peer_incarnation.unwrap_or(0),
            received,
        };
        let timeout = self.config.exchange_timeout;
        let broke =
            |e: String| Attempt::Retry(format!("the link broke during the resume exchange: {e}"));
        match tokio::time::timeout(timeout, link.send_frame(frame::encode_hello(&mine))).await {
            Ok(Ok(())) => {}
            // A peer that refused this link before greeting (another
            // identity) may be gone already; its reject frame still waits.
            Ok(Err(e)) => return Err(left_reject(&mut link).await.unwrap_or(broke(describe(&e)))),
            Err(_) => return Err(broke(format!("no progress within {timeout:?}"))),
        }
        let theirs = match hello {
            // Checked above.
            Some(h) => h,
            None => {
                let f = match tokio::time::timeout(timeout, link.recv_frame()).await {
                    Ok(Ok(f)) => f,
                    Ok(Err(e)) => return Err(broke(describe(&e))),
                    Err(_) => return Err(broke(format!("no greeting within {timeout:?}"))),
                };
                match frame::decode(&f) {
                    Ok(LinkFrame::Hello(h)) => h,
                    Ok(LinkFrame::Reject { reason, text }) => {
                        return Err(Attempt::Fatal(ResumeError::RefusedByPeer {
                            reason,
                            detail: escaped(&text),
                        }));
                    }
                    Ok(_) => {
                        return Err(Attempt::Fatal(ResumeError::Protocol(
                            "the peer sent a frame before its resume greeting".into(),
                        )));
                    }
                    Err(DecodeError::Version(found)) => {
                        let error = ResumeError::Version {
                            found,
                            supported: RESUME_WIRE_VERSION,
                        };
                        return Err(refuse(&mut link, RejectReason::Version, error).await);
                    }
                    Err(DecodeError::Malformed(m)) => {
                        return Err(Attempt::Fatal(ResumeError::Protocol(format!(
                            "malformed resume greeting: {m}"
                        ))));
                    }
                }
            }
        };
        if let Err((reason, error)) = self.check(&theirs) {
            return Err(refuse(&mut link, reason, error).await);
        }
        // Same session, same peer: take up the sequence where it left it.
        let mut s = self.inner.lock();
        let drop_upto = theirs.received;
        while s.replay.front().is_some_and(|o| o.seq <= drop_upto) {
            if let Some(o) = s.replay.pop_front() {
                s.replay_bytes -= o.payload.len();
            }
        }
        s.acked = s.acked.max(drop_upto);
        s.link_max_frame = link.max_frame_len();
        drop(s);
        let now = Instant::now();
        {
            let mut w = self.inner.wire();
            w.slot = None;
            w.lost = None;
            w.unread = None;
            w.flushed = true;
            let q = &mut w.seq;
            q.sent = drop_upto;
            q.ack_sent = received;
            q.ack_due = false;
            q.ack_armed = false;
            q.heartbeat_due = false;
            q.last_send = now;
            q.last_recv = now;
        }
        // Up once the sending state fits the new link.
        self.inner.lock().link_up = true;
        self.peer_incarnation = Some(theirs.incarnation);
        if self.first_identity.is_none() {
            self.first_identity = Some(link.peer_identity().map(str::to_string));
        }
        self.timer
            .as_mut()
            .reset(now + self.config.heartbeat.min(self.config.idle_timeout));
        Ok(link)
    }

    /// Checks that a new link proves the identity the first one did.
    fn check_identity(&self, identity: Option<&str>) -> Result<(), (RejectReason, ResumeError)> {
        if self.config.check_identity
            && let Some(Some(expected)) = &self.first_identity
            && identity != Some(expected.as_str())
        {
            return Err((
                RejectReason::IdentityChanged,
                ResumeError::IdentityChanged {
                    expected: expected.clone(),
                    presented: identity.map(str::to_string),
                },
            ));
        }
        Ok(())
    }

    /// Checks the peer's greeting against what this side knows.
    fn check(&self, theirs: &Hello) -> Result<(), (RejectReason, ResumeError)> {
        let c = &self.config;
        if theirs.session != c.session_id {
            return Err((
                RejectReason::WrongSession,
                ResumeError::WrongSession {
                    expected: c.session_id.clone(),
                    presented: escaped(&theirs.session),
                },
            ));
        }
        if theirs.from != c.peer_role || theirs.to != c.local_role {
            return Err((
                RejectReason::WrongRole,
                ResumeError::WrongRole {
                    expected: format!("{} -> {}", c.peer_role, c.local_role),
                    presented: format!("{} -> {}", escaped(&theirs.from), escaped(&theirs.to)),
                },
            ));
        }
        if let Some(known) = self.peer_incarnation
            && theirs.incarnation != known
        {
            return Err((
                RejectReason::PeerRestarted,
                ResumeError::PeerRestarted {
                    expected: known,
                    presented: theirs.incarnation,
                },
            ));
        }
        // 0: the peer never finished a first exchange with this side
        // (its incarnation, checked above, says it is the same peer).
        if theirs.peer_incarnation != 0 && theirs.peer_incarnation != self.incarnation {
            return Err((
                RejectReason::UnknownSession,
                ResumeError::UnknownSession {
                    presented: theirs.peer_incarnation,
                },
            ));
        }
        let s = self.inner.lock();
        let last = s.next_seq - 1;
        if theirs.received < s.acked || theirs.received > last {
            return Err((
                RejectReason::StateMismatch,
                ResumeError::StateMismatch(format!(
                    "the peer says it received up to frame {}, but it acknowledged {} and {} were sent",
                    theirs.received, s.acked, last
                )),
            ));
        }
        Ok(())
    }

    /// Serves one link: reads into the received queue, writes numbered
    /// frames and acknowledgements, keeps the timer.
    ///
    /// One pass reads until the link has nothing more, then writes
    /// everything due: a write never makes a read possible, and the read
    /// that returned `Pending` left the waker with the link. Another pass
    /// follows only when the timer made a frame due.
    fn poll_serve(&mut self, cx: &mut Context<'_>, w: &mut Wire) -> Poll<End> {
        {
            let mut s = self.inner.lock();
            if let Some(e) = &s.failed {
                return Poll::Ready(End::Fail(e.clone()));
            }
            if !s
                .driver_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                s.driver_waker = Some(cx.waker().clone());
            }
        }
        if !w.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            w.waker = Some(cx.waker().clone());
        }
        self.inner.reads.driver_is(cx.waker());
        if let Some(cause) = w.lost.take() {
            return Poll::Ready(End::Lost(cause));
        }
        // The link is read with the dispatching waker, which the front
        // reads with too: see `reads`.
        let read_waker = self.inner.read_waker.clone();
        let mut read_cx = Context::from_waker(&read_waker);
        loop {
            while let Source::Routed { links, .. } = &mut self.source {
                let Poll::Ready(Some(routed)) = links.poll_recv(cx) else {
                    break;
                };
                // The same peer's greeting with less received than it
                // acknowledged since is an old one (a link the peer gave
                // up, routed late): the live link stays.
                if Some(routed.hello.incarnation) == self.peer_incarnation
                    && routed.hello.received < self.inner.lock().acked
                {
                    tracing::debug!(session = %self.config.session_id, "a stale reconnection dropped");
                    continue;
                }
                // A newcomer that proves another identity than the live
                // link's peer is refused before the live link is touched:
                // passing the role handshake with another key of the role
                // does not end a working session.
                if let Err((reason, error)) = self.check_identity(routed.link.peer_identity()) {
                    tracing::debug!(session = %self.config.session_id, %error, "a reconnection with another identity refused; the live link stays");
                    let mut link = routed.link;
                    tokio::spawn(async move {
                        refuse(&mut link, reason, error).await;
                    });
                    continue;
                }
                return Poll::Ready(End::Replaced(Box::new(routed)));
            }
            let Some(link) = w.link.as_mut() else {
                return Poll::Ready(End::Lost("the link is gone".into()));
            };
            // A frame the front read and left here comes before any other.
            let mut received_any = false;
            if let Some(f) = w.unread.take() {
                received_any = true;
                if let Some(end) = self.on_frame(w.seq.sent, f) {
                    return Poll::Ready(end);
                }
            }
            // Receive while the window has room.
            loop {
                if self.inner.lock().inbox.len() >= self.inner.receive_window {
                    // Not reading is this side's choice, not the peer's
                    // silence: the idle timeout counts from here.
                    received_any = true;
                    break;
                }
                match link.poll_recv_frame(&mut read_cx) {
                    Poll::Ready(Ok(f)) => {
                        received_any = true;
                        if let Some(end) = self.on_frame(w.seq.sent, f) {
                            return Poll::Ready(end);
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(End::Lost(describe(&e))),
                    Poll::Pending => break,
                }
            }
            // One reading of the clock for every frame of this pass: they
            // all came within it.
            let now = received_any.then(Instant::now);
            if let Some(now) = now {
                w.seq.last_recv = now;
            }
            // Send what is due.
            let flushed = match w.send_due(&self.inner, cx) {
                Ok(flushed) => flushed,
                Err(cause) => return Poll::Ready(End::Lost(cause)),
            };
            let unacked = {
                let s = self.inner.lock();
                // The farewell must have left the link's buffers: a link
                // dropped with it still buffered loses it, and the peer then
                // waits for a reconnection instead of ending orderly.
                if s.peer_gone || (w.seq.gone_sent && flushed) {
                    return Poll::Ready(End::Done);
                }
                s.received > w.seq.ack_sent
            };
            if unacked && !w.seq.ack_armed {
                w.seq.ack_armed = true;
                w.seq.ack_deadline = now.unwrap_or_else(Instant::now) + self.config.ack_delay;
            }
            // Armed here or by the front, which wakes the driver to get here.
            if w.seq.ack_armed && w.seq.ack_deadline < self.timer.deadline() {
                self.timer.as_mut().reset(w.seq.ack_deadline);
            }
            match self.poll_timer(cx, &mut w.seq) {
                Err(end) => return Poll::Ready(end),
                Ok(true) => {}
                Ok(false) => return Poll::Pending,
            }
        }
    }

    /// Polls the timer; when it fires, checks the deadlines and sets it to
    /// the next one. `Ok(true)`: a heartbeat or acknowledgement is due now.
    fn poll_timer(&mut self, cx: &mut Context<'_>, q: &mut Sending) -> Result<bool, End> {
        let mut due = false;
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let c = &self.config;
            if now - q.last_recv >= c.idle_timeout {
                return Err(End::Lost(format!(
                    "nothing received for {:?}",
                    c.idle_timeout
                )));
            }
            let mut next = q.last_recv + c.idle_timeout;
            if q.heartbeat_due || now - q.last_send >= c.heartbeat {
                if !q.heartbeat_due {
                    q.heartbeat_due = true;
                    due = true;
                }
                // The heartbeat leaves now (or when the link takes it),
                // which moves the next one to a heartbeat from then: the
                // timer must come back by then, not only at the idle
                // deadline, or a peer with a shorter idle timeout than
                // this side's gives the link up.
                next = next.min(now + c.heartbeat);
            } else {
                next = next.min(q.last_send + c.heartbeat);
            }
            // Armed at a frame that was not acknowledged at once; that frame
            // may have been acknowledged since on a frame sent, and others
            // received, so what is unacknowledged now is what counts.
            if q.ack_armed {
                if now >= q.ack_deadline {
                    q.ack_armed = false;
                    if self.inner.lock().received > q.ack_sent {
                        q.ack_due = true;
                        due = true;
                    }
                } else {
                    next = next.min(q.ack_deadline);
                }
            }
            self.timer.as_mut().reset(next);
        }
        Ok(due)
    }

    /// Handles one frame from the link; `Some` ends serving the link.
    fn on_frame(&mut self, sent: u64, mut f: Vec<u8>) -> Option<End> {
        enum Parsed {
            Data { seq: u64, ack: u64 },
            Ack(u64),
            Close { seq: u64, ack: u64 },
            Gone(u64),
        }
        let parsed = match frame::decode(&f) {
            Ok(LinkFrame::Data { seq, ack, .. }) => Parsed::Data { seq, ack },
            Ok(LinkFrame::Ack { ack }) => Parsed::Ack(ack),
            Ok(LinkFrame::Close { seq, ack }) => Parsed::Close { seq, ack },
            Ok(LinkFrame::Gone { ack }) => Parsed::Gone(ack),
            Ok(LinkFrame::Reject { reason, text }) => {
                return Some(End::Fail(ResumeError::RefusedByPeer {
                    reason,
                    detail: escaped(&text),
                }));
            }
            Ok(LinkFrame::Hello(_)) => {
                return Some(End::Fail(ResumeError::Protocol(
                    "a resume greeting in the middle of a link".into(),
                )));
            }
            Err(DecodeError::Version(v)) => {
                return Some(End::Fail(ResumeError::Protocol(format!(
                    "a frame of wire version {v} on a resumable link"
                ))));
            }
            Err(DecodeError::Malformed(m)) => {
                return Some(End::Fail(ResumeError::Protocol(m.to_string())));
            }
        };
        let (seq, ack, close) = match parsed {
            Parsed::Ack(ack) => return self.apply_ack(sent, ack).err(),
            Parsed::Gone(ack) => {
                if let Err(end) = self.apply_ack(sent, ack) {
                    return Some(end);
                }
                let mut s = self.inner.lock();
                s.peer_gone = true;
                let wakers = s.wake_all();
                drop(s);
                wake(wakers);
                return Some(End::Done);
            }
            Parsed::Data { seq, ack } => (seq, ack, false),
            Parsed::Close { seq, ack } => (seq, ack, true),
        };
        // One lock for the acknowledgement and the frame.
        let mut s = self.inner.lock();
        let sender = match ack_locked(&mut s, sent, ack) {
            Ok(sender) => sender,
            Err(end) => return Some(end),
        };
        if seq <= s.received {
            // Resent by a peer that had not seen this side's ack; the
            // exchange makes this not happen, but it is harmless.
            tracing::debug!(seq, received = s.received, "duplicate frame dropped");
            drop(s);
            wake(sender);
            return None;
        }
        if seq != s.received + 1 {
            let received = s.received;
            drop(s);
            wake(sender);
            return Some(End::Fail(ResumeError::Protocol(format!(
                "frame {seq} arrived after frame {received}"
            ))));
        }
        s.received = seq;
        if close {
            s.peer_closed = true;
        } else if !s.front_gone {
            let offset = frame::data_payload_offset(&f);
            f.drain(..offset);
            s.inbox.push_back(f);
        }
        let receiver = s.recv_waker.take();
        drop(s);
        wake(sender);
        wake(receiver);
        None
    }

    /// The peer received every frame up to `ack`: they leave the replay
    /// buffer. `sent`: the last frame written on the link.
    fn apply_ack(&mut self, sent: u64, ack: u64) -> Result<(), End> {
        let mut s = self.inner.lock();
        let sender = ack_locked(&mut s, sent, ack)?;
        drop(s);
        wake(sender);
        Ok(())
    }
}

/// [`Driver::apply_ack`] under the lock the caller holds; gives the
/// sender's waker to wake once the lock is released.
fn ack_locked(s: &mut State, sent: u64, ack: u64) -> Result<Option<Waker>, End> {
    if ack > sent {
        return Err(End::Fail(ResumeError::StateMismatch(format!(
            "the peer acknowledges frame {ack}, only {sent} were sent"
        ))));
    }
    if ack <= s.acked {
        return Ok(None);
    }
    while s.replay.front().is_some_and(|o| o.seq <= ack) {
        if let Some(o) = s.replay.pop_front() {
            s.replay_bytes -= o.payload.len();
        }
    }
    s.acked = ack;
    Ok(s.send_waker.take())
}

/// Resolves when the session must stop trying: `Err` with the error the
/// front set (a replay overflow), `Ok` when nothing is left to do.
async fn stopped(inner: &Inner) -> Result<(), ResumeError> {
    poll_fn(|cx| {
        let mut s = inner.lock();
        if let Some(e) = &s.failed {
            return Poll::Ready(Err(e.clone()));
        }
        if s.peer_gone || (s.front_gone && s.replay.is_empty()) {
            return Poll::Ready(Ok(()));
        }
        s.driver_waker = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// The refusal a peer left on a link it closed, if any.
async fn left_reject(link: &mut RumpsteakSession) -> Option<Attempt> {
    let f = tokio::time::timeout(Duration::from_millis(200), link.recv_frame())
        .await
        .ok()?
        .ok()?;
    match frame::decode(&f) {
        Ok(LinkFrame::Reject { reason, text }) => {
            Some(Attempt::Fatal(ResumeError::RefusedByPeer {
                reason,
                detail: escaped(&text),
            }))
        }
        _ => None,
    }
}

/// Tells the peer why this side refuses it (best effort), and gives the
/// error this side ends with.
async fn refuse(link: &mut RumpsteakSession, reason: RejectReason, error: ResumeError) -> Attempt {
    // The text names the reason, not what this side expected (a session,
    // roles, an identity, an incarnation, counts): those are the session's,
    // and the refused peer is not told them. Versions are no secret.
    let text = match &error {
        ResumeError::Version { .. } => error.to_string(),
        _ => reason.to_string(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        link.send_frame(frame::encode_reject(reason, &text)),
    )
    .await;
    tracing::debug!(%error, "resume greeting refused");
    Attempt::Fatal(error)
}
