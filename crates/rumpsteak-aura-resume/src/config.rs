use std::time::Duration;

/// The shortest wait between two failed attempts at a link that
/// [`ResumeConfig::with_backoff`] accepts.
pub const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// The shortest heartbeat interval [`ResumeConfig::with_heartbeat`]
/// accepts; the idle timeout is at least twice as long.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(1);

/// What a send does when the replay buffer is full while the link is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnFull {
    /// Wait for room: acknowledgements come once the peer is back, and
    /// the reconnect deadline bounds the wait. The default.
    #[default]
    Wait,
    /// End the session with
    /// [`ResumeError::ReplayOverflow`](crate::ResumeError::ReplayOverflow).
    Fail,
}

/// How a resumable session numbers, buffers, acknowledges and reconnects.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rumpsteak_aura_resume::ResumeConfig;
///
/// let config = ResumeConfig::new("auction-7", "Alice", "Bob")
///     .with_replay_limits(256, 1 << 20)
///     .with_reconnect_deadline(Duration::from_secs(5));
/// assert_eq!(config.session_id(), "auction-7");
/// assert_eq!(config.replay_frames(), 256);
/// ```
#[derive(Debug, Clone)]
pub struct ResumeConfig {
    pub(crate) session_id: String,
    pub(crate) local_role: String,
    pub(crate) peer_role: String,
    pub(crate) replay_frames: usize,
    pub(crate) replay_bytes: usize,
    pub(crate) on_full: OnFull,
    pub(crate) receive_window: usize,
    pub(crate) ack_every: u64,
    pub(crate) ack_delay: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) reconnect_deadline: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) exchange_timeout: Duration,
    pub(crate) check_identity: bool,
}

impl ResumeConfig {
    /// The defaults for the session `session_id` between `local_role`
    /// (this side) and `peer_role`: a replay buffer of 1024 frames and
    /// 16 MiB, an acknowledgement every 64 frames or 20 ms, a heartbeat
    /// every second, a link silent for 10 s given up, and a reconnect
    /// deadline of 30 s.
    pub fn new(
        session_id: impl Into<String>,
        local_role: impl Into<String>,
        peer_role: impl Into<String>,
    ) -> Self {
        ResumeConfig {
            session_id: session_id.into(),
            local_role: local_role.into(),
            peer_role: peer_role.into(),
            replay_frames: 1024,
            replay_bytes: 16 << 20,
            on_full: OnFull::Wait,
            receive_window: 1024,
            ack_every: 64,
            ack_delay: Duration::from_millis(20),
            heartbeat: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
            reconnect_deadline: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            exchange_timeout: Duration::from_secs(10),
            check_identity: true,
        }
    }

    /// The replay buffer's bounds: at most `frames` unacknowledged frames
    /// and `bytes` of them (a frame is accepted while fewer than `bytes`
    /// are held, so the buffer may pass `bytes` by one frame). A single
    /// frame larger than `bytes` is refused with `FrameTooLarge`. Both are
    /// at least 1.
    pub fn with_replay_limits(mut self, frames: usize, bytes: usize) -> Self {
        self.replay_frames = frames.max(1);
        self.replay_bytes = bytes.max(1);
        self
    }

    /// What a send does when the buffer is full while the link is down.
    pub fn with_on_full(mut self, on_full: OnFull) -> Self {
        self.on_full = on_full;
        self
    }

    /// How many received frames wait for the application before this side
    /// stops reading the link (the peer then waits, as over TCP).
    pub fn with_receive_window(mut self, frames: usize) -> Self {
        self.receive_window = frames.max(1);
        self
    }

    /// A standalone acknowledgement goes out once `frames` frames were
    /// received without one, or at most `delay` after the first of them,
    /// whichever comes first; acknowledgements also ride on every data
    /// frame. (The timer is armed by a frame that found none armed and is
    /// not moved by those after it: in a steady flow it fires about once
    /// per `delay`, and may then acknowledge a frame received just before.)
    pub fn with_ack_policy(mut self, frames: u64, delay: Duration) -> Self {
        self.ack_every = frames.max(1);
        self.ack_delay = delay;
        self
    }

    /// An idle link carries a heartbeat (an acknowledgement) every
    /// `heartbeat`; a link on which nothing arrives for `idle_timeout` is
    /// given up and replaced. Keep `idle_timeout` several heartbeats long.
    ///
    /// A heartbeat longer than half the idle timeout is cut to half of it:
    /// with a heartbeat as long as the timeout, a quiet peer's link would
    /// be given up between two heartbeats, and replaced again and again.
    /// Both are at least [`MIN_HEARTBEAT`] (a zero heartbeat would be due
    /// at once, every time).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_resume::ResumeConfig;
    ///
    /// let config = ResumeConfig::new("s", "A", "B")
    ///     .with_heartbeat(Duration::from_secs(10), Duration::from_secs(4));
    /// assert_eq!(config.heartbeat(), (Duration::from_secs(2), Duration::from_secs(4)));
    /// ```
    pub fn with_heartbeat(mut self, heartbeat: Duration, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout.max(MIN_HEARTBEAT * 2);
        self.heartbeat = heartbeat.clamp(MIN_HEARTBEAT, self.idle_timeout / 2);
        self
    }

    /// How long after losing its link the session may take to get a new
    /// one and resume; past it the session ends with
    /// [`ResumeError::ReconnectDeadline`](crate::ResumeError::ReconnectDeadline).
    /// The same bound holds for the first link.
    pub fn with_reconnect_deadline(mut self, deadline: Duration) -> Self {
        self.reconnect_deadline = deadline;
        self
    }

    /// The wait between failed attempts, doubling from `initial` to `max`.
    ///
    /// `initial` is at least [`MIN_BACKOFF`] (a zero wait would stay zero
    /// when doubled, and the attempts would follow each other with no pause
    /// until the deadline), and `max` at least `initial`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura_resume::{MIN_BACKOFF, ResumeConfig};
    ///
    /// let config = ResumeConfig::new("s", "A", "B").with_backoff(Duration::ZERO, Duration::ZERO);
    /// assert_eq!(config.backoff(), (MIN_BACKOFF, MIN_BACKOFF));
    /// ```
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial.max(MIN_BACKOFF);
        self.backoff_max = max.max(self.backoff_initial);
        self
    }

    /// How long the resume greeting on a new link may take.
    pub fn with_exchange_timeout(mut self, timeout: Duration) -> Self {
        self.exchange_timeout = timeout;
        self
    }

    /// Whether a new link must prove the peer identity the first one did
    /// (on by default). Over plain TCP the identity is the peer's address,
    /// so a peer that may come back from another address needs this off;
    /// the incarnation check still refuses a restarted peer.
    pub fn with_identity_check(mut self, check: bool) -> Self {
        self.check_identity = check;
        self
    }

    /// The session identifier both sides must present.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// This side's role.
    pub fn local_role(&self) -> &str {
        &self.local_role
    }

    /// The peer's role.
    pub fn peer_role(&self) -> &str {
        &self.peer_role
    }

    /// The replay buffer's frame bound.
    pub fn replay_frames(&self) -> usize {
        self.replay_frames
    }

    /// The replay buffer's byte bound.
    pub fn replay_bytes(&self) -> usize {
        self.replay_bytes
    }

    /// The reconnect deadline.
    pub fn reconnect_deadline(&self) -> Duration {
        self.reconnect_deadline
    }

    /// What a send does when the buffer is full while the link is down.
    pub fn on_full(&self) -> OnFull {
        self.on_full
    }

    /// How many received frames may wait for the application.
    pub fn receive_window(&self) -> usize {
        self.receive_window
    }

    /// The acknowledgement policy: after how many frames, and how long
    /// after the first unacknowledged one.
    pub fn ack_policy(&self) -> (u64, Duration) {
        (self.ack_every, self.ack_delay)
    }

    /// The heartbeat interval and the idle timeout.
    pub fn heartbeat(&self) -> (Duration, Duration) {
        (self.heartbeat, self.idle_timeout)
    }

    /// The reconnection backoff: the first wait and the longest.
    pub fn backoff(&self) -> (Duration, Duration) {
        (self.backoff_initial, self.backoff_max)
    }

    /// How long the resume greeting on a new link may take.
    pub fn exchange_timeout(&self) -> Duration {
        self.exchange_timeout
    }

    /// Whether a new link must prove the first link's peer identity.
    pub fn identity_check(&self) -> bool {
        self.check_identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(h: Duration, idle: Duration) -> (Duration, Duration) {
        ResumeConfig::new("s", "A", "B")
            .with_heartbeat(h, idle)
            .heartbeat()
    }

    #[test]
    fn a_heartbeat_fits_twice_in_the_idle_timeout() {
        let ms = Duration::from_millis;
        // As given when it fits.
        assert_eq!(heartbeat(ms(50), ms(5000)), (ms(50), ms(5000)));
        assert_eq!(heartbeat(ms(500), ms(1000)), (ms(500), ms(1000)));
        // As long as the timeout, or longer: cut to half of it.
        assert_eq!(heartbeat(ms(1000), ms(1000)), (ms(500), ms(1000)));
        assert_eq!(heartbeat(ms(9000), ms(1000)), (ms(500), ms(1000)));
        // Zero: the floors.
        assert_eq!(heartbeat(ms(0), ms(1000)), (MIN_HEARTBEAT, ms(1000)));
        assert_eq!(heartbeat(ms(0), ms(0)), (MIN_HEARTBEAT, MIN_HEARTBEAT * 2));
        assert_eq!(heartbeat(ms(7), ms(0)), (MIN_HEARTBEAT, MIN_HEARTBEAT * 2));
    }
}
