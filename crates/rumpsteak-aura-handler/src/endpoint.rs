use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::sync::Arc;

use rumpsteak_aura::{
    ChoreographyError, Operation, ProtocolMonitor, Role, Step, Transition, Violation,
};
use rumpsteak_aura_transport::RumpsteakSession;
use rumpsteak_aura_transport::wire::RawLabel;

use crate::labels::SessionLabels;
use crate::metadata::{LastKind, LastOp, MetadataCache, SessionMetadata, Traffic, short_type_name};
use crate::totals::{SessionCounters, SharedTotals, TotalsHandle};

/// One role's state: a session per peer, the metadata of each, and optionally
/// a protocol monitor.
///
/// Endpoints hold state, handlers hold none: a [`RumpsteakHandler`] performs
/// operations on an endpoint passed by `&mut`.
///
/// Peers are kept in registration order in a vector; protocols have a
/// handful of roles, for which a linear scan beats hashing. An endpoint
/// with more than 16 peers also keeps a hash index of them,
/// so that finding a peer does not grow with their number.
///
/// Dropping an endpoint closes every session, as
/// [`close_all_channels`](RumpsteakEndpoint::close_all_channels) does.
///
/// [`RumpsteakHandler`]: crate::RumpsteakHandler
// The fields every operation reads and writes come first, in the first
// cache line: the traffic total, the peers and the monitor's data pointer
// (the first word of the box, the one tested; its vtable, read only by a
// monitored step, is in the next line). `shared` is in the second line,
// with the fields written only when sessions come and go; an operation
// never reads it (it counts in its session's counters, when its peer's
// `publishes` flag says there are some).
#[repr(C, align(64))]
pub struct RumpsteakEndpoint<R> {
    /// The frames and bytes of every peer together, so that a layer can
    /// read what an operation moved without finding its peer.
    total: Traffic,
    peers: Vec<Peer<R>>,
    /// The protocol monitor, with the transitions it handed out.
    monitor: Option<Box<Monitored<dyn ProtocolMonitor>>>,
    /// Each peer's position in `peers`, once there are more than
    /// [`LINEAR_PEERS`]. Peers are never removed, so positions stay valid.
    #[expect(
        clippy::box_collection,
        reason = "boxed, the index takes 8 bytes instead of 48 in every endpoint, \
                  most of which never have one: the endpoint stays 192 bytes, \
                  three cache lines, with what every operation touches in the first"
    )]
    index: Option<Box<HashMap<R, usize>>>,
    /// How many peers have an open session: kept up to date when a session
    /// is registered or closed, so that counting costs nothing.
    open: u32,
    local_role: R,
    /// What [`TotalsHandle`]s read, once one was asked for: the list of
    /// the sessions' counters and the copy of `open`.
    shared: Option<Arc<SharedTotals>>,
    /// Short message type names recently handed to the monitor, keyed by the
    /// full `type_name` (compared by address), so that a monitored hot loop
    /// does not rescan the same type name on every step.
    type_names: TypeNameCache,
}

/// Up to this many peers, an endpoint finds a peer by scanning them.
const LINEAR_PEERS: usize = 16;

/// A protocol monitor and, for a monitor that tells its
/// [`position`](ProtocolMonitor::position), the transitions it allowed
/// lately, so that a step taken again at the same position (each round of
/// a loop) is not checked again by name.
// What every step reads comes first.
#[repr(C)]
struct Monitored<M: ?Sized> {
    /// The monitor's position, for a monitor that tells it: read when it
    /// is attached, then the state of each transition applied.
    at: Option<usize>,
    /// Whether some peer's metadata was rendered (with the monitor's
    /// position in it) since the last step: only then does a step need to
    /// invalidate every peer's.
    described: Cell<bool>,
    memo: StepMemo,
    monitor: M,
}

/// How many allowed steps [`StepMemo`] can hold: a power of two.
const MEMO_SLOTS: usize = 16;

/// The transitions of recently allowed steps, keyed without text: the
/// monitor's position, the peer's place, the kind of step and the address
/// and length of its `'static` type name or label.
///
/// A small hash table: a key hashes to one slot and goes there, or to the
/// slot after it, or, when both are taken, to any free slot. The inlined
/// lookup compares the key's two slots; only when both differ does the
/// out-of-line check scan the other entries before asking the monitor.
/// So up to [`MEMO_SLOTS`] steps are all remembered, whatever their hashes
/// and whatever order they come in, and steps in their own slots (the
/// usual case) are found with one or two compares. A step put into a full
/// memo replaces the entry in its first slot.
struct StepMemo {
    entries: [(StepKey, Transition); MEMO_SLOTS],
}

impl Default for StepMemo {
    fn default() -> Self {
        // No step has text at address 0, so an unused entry never matches.
        let unused = (StepKey::default(), Transition::new(0));
        StepMemo {
            entries: [unused; MEMO_SLOTS],
        }
    }
}

/// What identifies a step at a position, without reading its text. The
/// fields are compared in order, the one that differs most often first.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct StepKey {
    /// The address and length of the step's `'static` type name or label.
    text: (usize, usize),
    /// The peer's place in `peers`, times 8, plus the kind of step.
    peer_kind: usize,
    position: usize,
}

impl StepKey {
    /// The key's first slot: the fields mixed, then the top bits of a
    /// multiplication by an odd constant (2^64 / φ), which depend on all of
    /// them.
    #[inline]
    fn slot(&self) -> usize {
        let mixed = self.text.0 ^ self.position.wrapping_mul(0x9E37_79B9) ^ self.peer_kind;
        let spread = (mixed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (spread >> (64 - MEMO_SLOTS.trailing_zeros())) as usize
    }
}

impl StepMemo {
    /// The key in its two slots, where it usually is: the inlined lookup.
    #[inline]
    fn near(&self, key: &StepKey) -> Option<Transition> {
        let at = key.slot();
        let first = &self.entries[at];
        if first.0 == *key {
            return Some(first.1);
        }
        let second = &self.entries[(at + 1) % MEMO_SLOTS];
        (second.0 == *key).then_some(second.1)
    }

    /// The key in any slot: for a key that `near` did not find in its two.
    fn scan(&self, key: &StepKey) -> Option<Transition> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|&(_, to)| to)
    }

    /// The key wherever it is.
    #[cfg(test)]
    fn get(&self, key: &StepKey) -> Option<Transition> {
        self.near(key).or_else(|| self.scan(key))
    }

    fn put(&mut self, key: StepKey, to: Transition) {
        let at = key.slot();
        let free = |i: &usize| self.entries[*i].0.text.0 == 0;
        // Its own slot, the next, then any free one from there on.
        let slot = (0..MEMO_SLOTS)
            .map(|d| (at + d) % MEMO_SLOTS)
            .find(free)
            .unwrap_or(at);
        self.entries[slot] = (key, to);
    }
}

impl<M: ?Sized + Debug> Debug for Monitored<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.monitor.fmt(f)
    }
}

/// A small cache from `type_name::<M>()` to its short form.
///
/// The short form is always a tail of the full name, so an entry keeps the
/// full name and where its tail starts: 24 bytes instead of the 32 of two
/// `&str`s. A name goes into the entry its address picks (so no cursor
/// needs a word of the endpoint) and is looked for in all four.
#[derive(Default)]
struct TypeNameCache {
    entries: [Cell<Option<(&'static str, u32)>>; 4],
}

impl TypeNameCache {
    fn short(&self, full: &'static str) -> &'static str {
        for e in &self.entries {
            if let Some((f, at)) = e.get()
                && std::ptr::eq(f, full)
            {
                return f.get(at as usize..).unwrap_or(f);
            }
        }
        let short = short_type_name(full);
        let at = full.len() - short.len();
        // A type name longer than 4 GiB is not cached.
        if let Ok(at) = u32::try_from(at) {
            // Type names are byte strings of at least a few bytes each, so
            // the address's low bits say little: skip the lowest three.
            let slot = (full.as_ptr() as usize >> 3) % self.entries.len();
            self.entries[slot].set(Some((full, at)));
        }
        short
    }
}

/// A peer's slot, aligned to a cache line and laid out so that a send, a
/// receive or a choice reads and writes two lines of it, whatever the
/// transport: the session fills the first (64 bytes for the in-memory
/// channel), and the second holds everything else they touch (for a role
/// of up to four bytes). What only a reader of the metadata or an offer
/// needs (the recent labels, read by every `offer`) comes after. With many sessions, the lines an operation
/// touches are what it costs (`op_cost handler_sessions` under callgrind's
/// cache simulation).
#[repr(C, align(64))]
pub(crate) struct Peer<R> {
    session: Option<RumpsteakSession>,
    pub(crate) role: R,
    closed_by_peer: bool,
    /// The last operation, as its kind and its text (see [`LastKind`]).
    last_kind: LastKind,
    /// Whether `meta` may hold a rendering, which a change must drop: so
    /// that an operation reads `meta`, which is out of this line, only
    /// after someone read the metadata.
    shown: Cell<bool>,
    /// Whether this session has counters for a [`TotalsHandle`]: a copy
    /// of `counters.is_some()` in this line, so that an operation reads no
    /// other line when there are none.
    publishes: bool,
    last_text: &'static str,
    /// The size of the last frame sent, used as the next send buffer's size.
    pub(crate) send_hint: usize,
    /// Also the operation count: every operation that succeeds moves one
    /// frame.
    traffic: Traffic,
    meta: MetadataCache,
    /// The peer's `Debug` form, computed once, for errors, logs and monitors.
    pub(crate) name: String,
    /// Labels resolved lately, and how many more this session may teach
    /// the process.
    labels: SessionLabels,
    /// This session's counters for the [`TotalsHandle`]s, once the
    /// endpoint has one: read only when `publishes` says so, so out of the
    /// lines every operation touches.
    counters: Option<Arc<SessionCounters>>,
}

impl<R> Peer<R> {
    /// The label, if this session resolved it lately (no lock).
    pub(crate) fn recent_label(&self, label: RawLabel<'_>) -> Option<&'static str> {
        self.labels.recent(label)
    }

    /// Resolves a label received, learning it within this session's and
    /// this peer's quotas (the peer as the transport identified it).
    pub(crate) fn learn_label(&mut self, label: &str) -> Result<&'static str, Violation> {
        let identity = self.session.as_ref().and_then(|s| s.peer_identity());
        self.labels.learn(label, identity)
    }

    #[inline]
    pub(crate) fn session(&mut self) -> &mut RumpsteakSession {
        match &mut self.session {
            Some(s) => s,
            // `open_index` only hands out peers whose session is present.
            None => unreachable!("invariant: an operation reached a closed session"),
        }
    }

    fn last(&self) -> LastOp {
        LastOp::join(self.last_kind, self.last_text)
    }

    #[inline]
    fn set_last(&mut self, last: LastOp) {
        (self.last_kind, self.last_text) = last.split();
    }

    /// How many operations with this peer succeeded: each moved one frame.
    fn operation_count(&self) -> usize {
        let t = &self.traffic;
        // More frames than a `usize` counts cannot have been moved.
        usize::try_from(t.frames_sent + t.frames_received).unwrap_or(usize::MAX)
    }

    /// Drops the rendered metadata, if it was rendered since the last
    /// change; otherwise nothing out of the slot's first two lines is read.
    #[inline]
    fn invalidate(&mut self) {
        if self.shown.replace(false) {
            self.meta.invalidate();
        }
    }

    pub(crate) fn error(&self, op: Operation, violation: Violation) -> ChoreographyError {
        ChoreographyError::ProtocolViolation {
            peer: self.name.clone(),
            op,
            violation,
        }
    }
}

/// Its sessions go with it: a [`TotalsHandle`] that outlives the endpoint
/// reads its final traffic and no open session.
impl<R> Drop for RumpsteakEndpoint<R> {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.publish_open(0);
        }
    }
}

impl<R: Role + Eq + Hash + Clone + Debug> RumpsteakEndpoint<R> {
    /// Creates an endpoint for `local_role`, with no sessions yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::RumpsteakEndpoint;
    ///
    /// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    /// enum Party { Alice, Bob }
    /// impl rumpsteak_aura::Role for Party {
    ///     type Message = ();
    ///     fn seal(&mut self) {}
    ///     fn is_sealed(&self) -> bool { false }
    /// }
    ///
    /// let ep = RumpsteakEndpoint::new(Party::Alice);
    /// assert_eq!(ep.local_role(), &Party::Alice);
    /// assert_eq!(ep.active_channel_count(), 0);
    /// assert!(ep.is_all_closed());
    /// ```
    pub fn new(local_role: R) -> Self {
        RumpsteakEndpoint {
            local_role,
            peers: Vec::new(),
            index: None,
            monitor: None,
            total: Traffic::default(),
            open: 0,
            shared: None,
            type_names: TypeNameCache::default(),
        }
    }

    /// The role this endpoint plays.
    pub fn local_role(&self) -> &R {
        &self.local_role
    }

    /// Registers a channel with a peer role: a [`SimpleChannel`] or anything
    /// else that converts into a [`RumpsteakSession`].
    ///
    /// Registering a peer that already has a session replaces it: the old
    /// session is closed (its peer sees the channel closed after everything
    /// sent before) and the metadata starts afresh.
    ///
    /// [`SimpleChannel`]: rumpsteak_aura_transport::SimpleChannel
    pub fn register_channel<T>(&mut self, peer: R, channel: T)
    where
        T: Into<RumpsteakSession>,
    {
        self.register_session(peer, channel.into());
    }

    /// Registers a session with a peer role, for sessions built with
    /// [`RumpsteakSession::from_simple_channel`],
    /// [`RumpsteakSession::from_sink_stream`] or a network transport.
    /// Replaces an existing session as
    /// [`register_channel`](RumpsteakEndpoint::register_channel) does.
    pub fn register_session(&mut self, peer: R, session: RumpsteakSession) {
        let mut fresh = Peer {
            name: format!("{peer:?}"),
            role: peer,
            session: Some(session),
            last_kind: LastKind::Registered,
            last_text: "",
            shown: Cell::new(false),
            publishes: self.shared.is_some(),
            closed_by_peer: false,
            send_hint: 0,
            labels: SessionLabels::default(),
            traffic: Traffic::default(),
            meta: MetadataCache::default(),
            counters: None,
        };
        if let Some(shared) = &self.shared {
            fresh.counters = Some(shared.add_session(&fresh.name));
        }
        match self.position(&fresh.role) {
            // Dropping the old peer closes its session.
            Some(i) => {
                if self.peers[i].session.is_none() {
                    self.open += 1;
                    self.publish_open();
                }
                // The memo knows a peer by its place, the monitor by its
                // name: a role equal to the old one may have another name.
                if let Some(m) = &mut self.monitor
                    && self.peers[i].name != fresh.name
                {
                    m.memo = StepMemo::default();
                }
                self.peers[i] = fresh;
            }
            None => {
                self.open += 1;
                self.publish_open();
                if let Some(index) = &mut self.index {
                    index.insert(fresh.role.clone(), self.peers.len());
                }
                self.peers.push(fresh);
                if self.index.is_none() && self.peers.len() > LINEAR_PEERS {
                    let index = self.peers.iter().enumerate();
                    let index = index.map(|(i, p)| (p.role.clone(), i)).collect();
                    self.index = Some(Box::new(index));
                }
            }
        }
    }

    /// The position of `role` in `peers`, if it was ever registered.
    #[inline]
    fn position(&self, role: &R) -> Option<usize> {
        match &self.index {
            None => self.peers.iter().position(|p| &p.role == role),
            Some(index) => index.get(role).copied(),
        }
    }

    /// The position of `role` if its session is open, for endpoints with
    /// more than [`LINEAR_PEERS`] peers, which have an index. Kept out of line: hashing inlined into every operation costs the
    /// endpoints without an index too.
    #[inline(never)]
    fn indexed(&self, role: &R) -> Option<usize> {
        self.position(role)
            .filter(|&i| self.peers[i].session.is_some())
    }

    /// Whether an open channel exists for `peer`.
    ///
    /// A channel counts as open until this side closes it (or replaces it).
    /// When the *peer* closes, the channel stays registered here, so that
    /// frames already received can still be read; its metadata then says
    /// `closed by <peer>` and is complete.
    pub fn has_channel(&self, peer: &R) -> bool {
        self.peer(peer).is_some_and(|p| p.session.is_some())
    }

    /// Closes the channel with `peer`. Returns whether an open channel was
    /// closed.
    ///
    /// The peer receives every frame sent before, then a closed-channel
    /// error. The peer's metadata stays readable, marked complete.
    pub fn close_channel(&mut self, peer: &R) -> bool {
        let closed = match self.position(peer) {
            Some(i) => close(&mut self.peers[i]),
            None => false,
        };
        self.open -= u32::from(closed);
        self.publish_open();
        closed
    }

    /// Closes every open channel and returns how many were open.
    pub fn close_all_channels(&mut self) -> usize {
        self.open = 0;
        self.publish_open();
        self.peers
            .iter_mut()
            .map(close)
            .filter(|&closed| closed)
            .count()
    }

    /// Gives up on the protocol with `peers`: closes their channels, so that
    /// each of them gets a closed-channel error instead of waiting for a step
    /// that will never come, and marks their metadata abandoned
    /// ([`SessionMetadata::is_abandoned`]). Returns how many open channels
    /// were closed; peers without an open channel are left as they are.
    ///
    /// The typed roles of `rumpsteak-aura-typed` call this when a role's
    /// state is dropped before its end, with the peers that still expect
    /// something of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::{RumpsteakEndpoint, SimpleChannel};
    ///
    /// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    /// enum Party { Alice, Bob, Carol }
    /// impl rumpsteak_aura::Role for Party {
    ///     type Message = ();
    ///     fn seal(&mut self) {}
    ///     fn is_sealed(&self) -> bool { false }
    /// }
    ///
    /// let (to_bob, _bob) = SimpleChannel::pair();
    /// let (to_carol, _carol) = SimpleChannel::pair();
    /// let mut ep = RumpsteakEndpoint::new(Party::Alice);
    /// ep.register_channel(Party::Bob, to_bob);
    /// ep.register_channel(Party::Carol, to_carol);
    /// assert_eq!(ep.abandon(&[Party::Bob]), 1);
    /// assert!(!ep.has_channel(&Party::Bob));
    /// assert!(ep.get_metadata(&Party::Bob).unwrap().is_abandoned);
    /// assert!(ep.has_channel(&Party::Carol));
    /// assert!(!ep.get_metadata(&Party::Carol).unwrap().is_abandoned);
    /// ```
    pub fn abandon(&mut self, peers: &[R]) -> usize {
        let mut closed = 0;
        for p in self.peers.iter_mut().filter(|p| peers.contains(&p.role)) {
            if close(p) {
                p.set_last(LastOp::Abandoned);
                closed += 1;
                self.open -= 1;
            }
        }
        if closed > 0 {
            self.publish_open();
            tracing::debug!(local = ?self.local_role, closed, "protocol abandoned");
        }
        closed
    }

    /// The frames and bytes exchanged with `peer` so far, if it was ever
    /// registered. Cheap enough to read around every operation: it is a
    /// copy of four counters, nothing is rendered.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_handler::{RumpsteakEndpoint, SimpleChannel};
    ///
    /// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    /// enum Party { Alice, Bob }
    /// impl rumpsteak_aura::Role for Party {
    ///     type Message = ();
    ///     fn seal(&mut self) {}
    ///     fn is_sealed(&self) -> bool { false }
    /// }
    ///
    /// let (a, _b) = SimpleChannel::pair();
    /// let mut ep = RumpsteakEndpoint::new(Party::Alice);
    /// ep.register_channel(Party::Bob, a);
    /// assert_eq!(ep.traffic(&Party::Bob).unwrap().frames_sent, 0);
    /// assert!(ep.traffic(&Party::Alice).is_none());
    /// ```
    pub fn traffic(&self, peer: &R) -> Option<Traffic> {
        self.peer(peer).map(|p| p.traffic)
    }

    /// The frames and bytes exchanged with every peer together, since the
    /// endpoint was made (sessions replaced or closed included). Reading it
    /// is a copy of four counters, with no peer to find, so a layer can read
    /// it before and after an operation and learn what the operation moved.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::ChoreoHandler;
    /// use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
    ///
    /// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    /// enum Party { Alice, Bob }
    /// impl rumpsteak_aura::Role for Party {
    ///     type Message = ();
    ///     fn seal(&mut self) {}
    ///     fn is_sealed(&self) -> bool { false }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (a, _b) = SimpleChannel::pair();
    /// let mut ep = RumpsteakEndpoint::new(Party::Alice);
    /// ep.register_channel(Party::Bob, a);
    /// RumpsteakHandler::<Party, ()>::new().send(&mut ep, Party::Bob, &7u8).await?;
    /// assert_eq!(ep.total_traffic().frames_sent, 1);
    /// assert_eq!(ep.total_traffic(), ep.traffic(&Party::Bob).unwrap());
    /// # Ok::<(), rumpsteak_aura::ChoreographyError>(())
    /// # }).unwrap();
    /// ```
    #[inline]
    pub fn total_traffic(&self) -> Traffic {
        self.total
    }

    /// A handle that reads each session's traffic,
    /// [`total_traffic`](Self::total_traffic)'s totals and
    /// [`active_channel_count`](Self::active_channel_count) without
    /// borrowing the endpoint, for a layer that reads them after an
    /// operation that borrows the endpoint. The first call makes it, with
    /// counters for every open session; from then on each completed
    /// operation also counts its frame in its session's counters, and each
    /// session registered gets counters of its own. Until then the
    /// endpoint pays one test of a flag per operation. See
    /// [`TotalsHandle`].
    pub fn totals_handle(&mut self) -> TotalsHandle {
        if let Some(shared) = &self.shared {
            return TotalsHandle::new(Arc::clone(shared));
        }
        let shared = Arc::new(SharedTotals::new(self.total, self.open));
        for p in &mut self.peers {
            // A closed session moves nothing more: it needs no counters.
            if p.session.is_some() {
                p.counters = Some(shared.add_session(&p.name));
                p.publishes = true;
            }
        }
        self.shared = Some(Arc::clone(&shared));
        TotalsHandle::new(shared)
    }

    /// Whether `shared` is this endpoint's: one compare of two addresses
    /// (an endpoint without a handle has none, which is no handle's).
    #[inline]
    pub(crate) fn shares_totals(&self, shared: &Arc<SharedTotals>) -> bool {
        let ours = self.shared.as_ref().map_or(std::ptr::null(), Arc::as_ptr);
        std::ptr::eq(ours, Arc::as_ptr(shared))
    }

    /// Stores the count of open sessions for the handles, if any.
    fn publish_open(&self) {
        if let Some(shared) = &self.shared {
            shared.publish_open(self.open);
        }
    }

    /// How many channels are open. The endpoint keeps the count as sessions
    /// are registered and closed, so reading it costs nothing.
    #[inline]
    pub fn active_channel_count(&self) -> usize {
        self.open as usize
    }

    /// Whether no channel is open (also true before any registration).
    pub fn is_all_closed(&self) -> bool {
        self.active_channel_count() == 0
    }

    /// The metadata of the session with `peer`, if one was ever registered.
    pub fn get_metadata(&self, peer: &R) -> Option<&SessionMetadata> {
        self.peer(peer).map(|p| self.render(p))
    }

    /// The metadata of every session ever registered, in registration order.
    pub fn all_metadata(&self) -> Vec<(R, &SessionMetadata)> {
        self.peers
            .iter()
            .map(|p| (p.role.clone(), self.render(p)))
            .collect()
    }

    /// Attaches a protocol monitor, which checks every later operation against
    /// the role's session type before it reaches the wire. The protocol's
    /// labels are registered (see `register_labels`), so offers of them never
    /// count against the limits on labels learned from peers.
    ///
    /// A monitor is usually built from a global protocol by the
    /// `rumpsteak-aura-protocol` crate. Roles are matched by their `Debug`
    /// names.
    pub fn with_protocol(mut self, monitor: impl ProtocolMonitor) -> Self {
        self.set_protocol(monitor);
        self
    }

    /// Attaches a protocol monitor to an existing endpoint, replacing any
    /// earlier one.
    pub fn set_protocol(&mut self, monitor: impl ProtocolMonitor) {
        crate::labels::register_label_names(monitor.labels());
        let monitored: Box<Monitored<dyn ProtocolMonitor>> = Box::new(Monitored {
            memo: StepMemo::default(),
            at: monitor.position(),
            described: Cell::new(false),
            monitor,
        });
        self.monitor = Some(monitored);
        self.invalidate_all();
    }

    /// The attached protocol monitor, if any.
    pub fn protocol(&self) -> Option<&dyn ProtocolMonitor> {
        self.monitor.as_deref().map(|m| &m.monitor)
    }

    fn peer(&self, role: &R) -> Option<&Peer<R>> {
        self.position(role).map(|i| &self.peers[i])
    }

    fn render<'a>(&'a self, p: &'a Peer<R>) -> &'a SessionMetadata {
        p.shown.set(true);
        p.meta.get_or_render(|out| {
            p.last().write(&p.name, out);
            let closed = p.session.is_none() || p.closed_by_peer;
            let abandoned = p.last_kind == LastKind::Abandoned;
            match self.monitor.as_deref() {
                Some(m) => {
                    m.described.set(true);
                    let m = &m.monitor;
                    out.push_str(" | ");
                    m.describe(out);
                    (closed || m.is_complete(), p.operation_count(), abandoned)
                }
                None => (closed, p.operation_count(), abandoned),
            }
        })
    }

    fn invalidate_all(&mut self) {
        for p in &mut self.peers {
            p.invalidate();
        }
    }

    /// Finds the open session with `role` and, with a monitor attached,
    /// checks the step about to be taken. Nothing touches the wire before
    /// this succeeds.
    #[inline(always)]
    pub(crate) fn begin(
        &mut self,
        role: &R,
        op: Operation,
        act: Act<'_>,
    ) -> Result<(usize, Option<Transition>), ChoreographyError> {
        // The scan is written out rather than shared with `position`: this
        // is the hot path, and the fused test is cheaper.
        let is_open = |p: &Peer<R>| &p.role == role && p.session.is_some();
        // The first peer is tested before the scan: a two-party session's
        // only peer, found without setting up a loop.
        let open = if self.peers.first().is_some_and(is_open) {
            Some(0)
        } else if self.peers.len() <= LINEAR_PEERS {
            self.peers.iter().position(is_open)
        } else {
            self.indexed(role)
        };
        let Some(i) = open else {
            return Err(no_channel(role, op));
        };
        Ok((i, self.check(i, op, act)?))
    }

    /// Checks a step with the monitor, if any, without advancing it; returns
    /// the transition to apply once the step has happened. Without a monitor
    /// this is one inlined test.
    #[inline(always)]
    pub(crate) fn check(
        &mut self,
        i: usize,
        op: Operation,
        act: Act<'_>,
    ) -> Result<Option<Transition>, ChoreographyError> {
        let Some(m) = &mut self.monitor else {
            return Ok(None);
        };
        let key = m.at.and_then(|at| act.key(at, i));
        if let Some(key) = &key
            && let Some(to) = m.memo.near(key)
        {
            return Ok(Some(to));
        }
        check_with(m, &self.peers[i], key, &self.type_names, op, act).map(Some)
    }

    /// Records a successful step: the monitor advances, the count grows.
    #[inline(always)]
    pub(crate) fn finish(&mut self, i: usize, last: LastOp, bytes: usize, to: Option<Transition>) {
        // `to` first: it is in a register, and without a monitor it is
        // `None`, so the monitor's pointer is not read again.
        if let Some(to) = to
            && let Some(m) = &mut self.monitor
        {
            m.monitor.advance(to);
            if m.at.is_some() {
                m.at = Some(to.state());
            }
            // The protocol position shows in every peer's description that
            // was rendered since the last step.
            if m.described.replace(false) {
                self.invalidate_all();
            }
        }
        let p = &mut self.peers[i];
        p.traffic.count(last, bytes);
        self.total.count(last, bytes);
        // The session's counters, out of the lines an operation touches,
        // are read only when the peer's flag says there are some.
        if p.publishes
            && let Some(counters) = &p.counters
        {
            counters.count(last, bytes);
        }
        p.set_last(last);
        p.invalidate();
    }

    /// Records that the peer closed its side.
    pub(crate) fn peer_closed(&mut self, i: usize) {
        let p = &mut self.peers[i];
        p.closed_by_peer = true;
        p.set_last(LastOp::ClosedByPeer);
        p.invalidate();
    }

    /// Emits the debug event of a completed operation. Without a subscriber
    /// at debug level this is one inlined check; the event itself is built
    /// out of line.
    #[inline]
    pub(crate) fn trace(&self, i: usize, op: Operation, bytes: usize, what: &str) {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            self.emit(i, op, bytes, what);
        }
    }

    #[cold]
    #[inline(never)]
    fn emit(&self, i: usize, op: Operation, bytes: usize, what: &str) {
        tracing::debug!(
            local = ?self.local_role,
            peer = %self.peers[i].name,
            op = op.name(),
            bytes,
            what,
            "rumpsteak operation"
        );
    }

    #[inline]
    pub(crate) fn peer_at(&mut self, i: usize) -> &mut Peer<R> {
        &mut self.peers[i]
    }
}

/// Checks `act` on `peer` with the monitor, by name, and remembers an
/// allowed step under `key`, if it has one.
#[inline(never)]
fn check_with<R>(
    m: &mut Monitored<dyn ProtocolMonitor>,
    peer: &Peer<R>,
    key: Option<StepKey>,
    names: &TypeNameCache,
    op: Operation,
    act: Act<'_>,
) -> Result<Transition, ChoreographyError> {
    // A step whose two slots hold others may sit in another.
    if let Some(to) = key.as_ref().and_then(|k| m.memo.scan(k)) {
        return Ok(to);
    }
    let to = m
        .monitor
        .check(&act.step(&peer.name, names))
        .map_err(|v| peer.error(op, v))?;
    if let Some(key) = key {
        m.memo.put(key, to);
    }
    Ok(to)
}

#[cold]
#[inline(never)]
fn no_channel<R: Debug>(role: &R, op: Operation) -> ChoreographyError {
    ChoreographyError::NoChannel {
        peer: format!("{role:?}"),
        op,
    }
}

/// A step without its peer; the endpoint fills in the peer's name. Messages
/// carry their full type name, shortened only when a monitor looks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Act<'l> {
    Send(&'static str),
    Recv(&'static str),
    Choose(&'static str),
    /// An offer, before its label is read (`None`) or with a label that is
    /// not (yet) one of the process's.
    Offer(Option<&'l str>),
    /// An offer whose label is a known `'static` one.
    Offered(&'static str),
}

impl<'l> Act<'l> {
    fn step<'a>(self, peer: &'a str, names: &TypeNameCache) -> Step<'a>
    where
        'l: 'a,
    {
        match self {
            Act::Send(ty) => Step::Send {
                to: peer,
                message: names.short(ty),
            },
            Act::Recv(ty) => Step::Recv {
                from: peer,
                message: names.short(ty),
            },
            Act::Choose(label) => Step::Choose { to: peer, label },
            Act::Offer(label) => Step::Offer { from: peer, label },
            Act::Offered(label) => Step::Offer {
                from: peer,
                label: Some(label),
            },
        }
    }

    /// The memo key of this step at `position` on the peer at place `i`;
    /// `None` for a label that is not `'static`, whose address says
    /// nothing.
    #[inline]
    fn key(self, position: usize, i: usize) -> Option<StepKey> {
        let (kind, text): (usize, &'static str) = match self {
            Act::Send(ty) => (0, ty),
            Act::Recv(ty) => (1, ty),
            Act::Choose(label) => (2, label),
            Act::Offer(None) => (3, ""),
            Act::Offer(Some(_)) => return None,
            Act::Offered(label) => (4, label),
        };
        Some(StepKey {
            position,
            text: (text.as_ptr() as usize, text.len()),
            // A peer takes more than 8 bytes, so no place times 8 wraps.
            peer_kind: i.wrapping_mul(8) | kind,
        })
    }
}

fn close<R>(p: &mut Peer<R>) -> bool {
    match p.session.take() {
        Some(mut session) => {
            session.close();
            p.set_last(LastOp::Closed);
            p.invalidate();
            true
        }
        None => false,
    }
}

impl<R: Debug> Debug for RumpsteakEndpoint<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RumpsteakEndpoint")
            .field("local_role", &self.local_role)
            .field(
                "peers",
                &self
                    .peers
                    .iter()
                    .map(|p| (&p.name, p.session.is_some()))
                    .collect::<Vec<_>>(),
            )
            .field("monitor", &self.monitor)
            .finish()
    }
}

#[cfg(test)]
mod adversarial_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use rumpsteak_aura_transport::SimpleChannel;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    struct Id(u32);

    impl Role for Id {
        type Message = ();
        fn seal(&mut self) {}
        fn is_sealed(&self) -> bool {
            false
        }
    }

    /// The open count the endpoint keeps, against a count of the peers.
    fn counted<R>(ep: &RumpsteakEndpoint<R>) -> usize {
        ep.peers.iter().filter(|p| p.session.is_some()).count()
    }

    #[test]
    fn the_open_count_follows_registrations_and_closes() {
        let mut ep = RumpsteakEndpoint::new(Id(0));
        let mut far = Vec::new();
        let check = |ep: &RumpsteakEndpoint<Id>, open: usize| {
            assert_eq!(ep.active_channel_count(), open);
            assert_eq!(counted(ep), open);
        };
        for i in 1..=3 {
            let (near, other) = SimpleChannel::pair();
            ep.register_channel(Id(i), near);
            far.push(other);
        }
        check(&ep, 3);
        // Replacing an open session keeps the count; reopening a closed
        // one adds to it.
        let (near, _other) = SimpleChannel::pair();
        ep.register_channel(Id(1), near);
        check(&ep, 3);
        assert!(ep.close_channel(&Id(2)));
        assert!(!ep.close_channel(&Id(2)));
        assert!(!ep.close_channel(&Id(9)));
        check(&ep, 2);
        let (near, _again) = SimpleChannel::pair();
        ep.register_channel(Id(2), near);
        check(&ep, 3);
        assert_eq!(ep.abandon(&[Id(1), Id(3), Id(9)]), 2);
        check(&ep, 1);
        assert_eq!(ep.abandon(&[Id(1)]), 0);
        check(&ep, 1);
        assert_eq!(ep.close_all_channels(), 1);
        check(&ep, 0);
        assert!(ep.is_all_closed());
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_operation_touches_one_line_of_the_endpoint_and_two_of_a_peer() {
        use std::mem::{offset_of, size_of};
        // The in-memory session fills the peer's first line, the rest of
        // what an operation touches its second, the cold part follows.
        assert_eq!(size_of::<Option<RumpsteakSession>>(), 64);
        assert_eq!(offset_of!(Peer<Id>, session), 0);
        assert_eq!(offset_of!(Peer<Id>, role), 64);
        assert_eq!(offset_of!(Peer<Id>, traffic) + size_of::<Traffic>(), 128);
        assert_eq!(offset_of!(Peer<Id>, meta), 128);
        assert_eq!(std::mem::align_of::<Peer<Id>>(), 64);
        // The endpoint's total, peers and the monitor's data pointer are in
        // its first line.
        type Ep = RumpsteakEndpoint<Id>;
        assert_eq!(std::mem::align_of::<Ep>(), 64);
        assert_eq!(offset_of!(Ep, total), 0);
        assert_eq!(offset_of!(Ep, peers) + size_of::<Vec<Peer<Id>>>(), 56);
        assert_eq!(offset_of!(Ep, monitor), 56);
        // The handle's list, in the second line, is never read by an
        // operation; the session's counters are read only when its peer's
        // flag (in the peer's second line) says there are some.
        assert!(offset_of!(Ep, shared) >= 64 && offset_of!(Ep, shared) < 128);
        assert!(offset_of!(Peer<Id>, publishes) >= 64 && offset_of!(Peer<Id>, publishes) < 128);
        assert_eq!(size_of::<Ep>(), 192);
        // A monitored endpoint's memo: 16 entries of 40 bytes, in the
        // monitor's allocation.
        assert_eq!(size_of::<StepMemo>(), 640);
    }

    /// Alternates `send Ping to Id(1)` (state 0) and `recv Ping from Id(1)`
    /// (state 1), counting the checks it is asked.
    #[derive(Debug)]
    struct Alternating {
        at: usize,
        tells_position: bool,
        checks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl ProtocolMonitor for Alternating {
        fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
            self.checks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match (self.at, step) {
                (
                    0,
                    Step::Send {
                        to: "Id(1)",
                        message: "u8",
                    },
                ) => Ok(Transition::new(1)),
                (
                    1,
                    Step::Recv {
                        from: "Id(1)",
                        message: "u8",
                    },
                ) => Ok(Transition::new(0)),
                _ => Err(Violation::OutOfProtocol {
                    expected: format!("state {}", self.at),
                    attempted: step.to_string(),
                }),
            }
        }
        fn advance(&mut self, to: Transition) {
            self.at = to.state();
        }
        fn position(&self) -> Option<usize> {
            self.tells_position.then_some(self.at)
        }
        fn is_complete(&self) -> bool {
            false
        }
        fn involves(&self, peer: &str) -> bool {
            peer == "Id(1)"
        }
        fn describe(&self, out: &mut String) {
            out.push_str(if self.at == 0 { "send" } else { "recv" });
        }
    }

    /// Runs ten rounds of the alternating steps, with a wrong step tried in
    /// each state, and returns how many checks the monitor was asked.
    fn checks_asked(tells_position: bool) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let checks = std::sync::Arc::new(AtomicUsize::new(0));
        let (near, _far) = SimpleChannel::pair();
        let mut ep = RumpsteakEndpoint::new(Id(0)).with_protocol(Alternating {
            at: 0,
            tells_position,
            checks: checks.clone(),
        });
        ep.register_channel(Id(1), near);
        let (send, recv) = (Operation::Send, Operation::Recv);
        for _ in 0..10 {
            // Wrong in state 0: refused by the monitor itself every time.
            let wrong = ep.begin(&Id(1), recv, Act::Recv("u8"));
            assert!(matches!(
                wrong,
                Err(ChoreographyError::ProtocolViolation { .. })
            ));
            let (i, to) = ep.begin(&Id(1), send, Act::Send("u8")).unwrap();
            assert_eq!(to, Some(Transition::new(1)));
            ep.finish(i, LastOp::Sent("u8"), 3, to);
            assert!(
                ep.get_metadata(&Id(1))
                    .unwrap()
                    .state_description
                    .ends_with("| recv")
            );
            let wrong = ep.begin(&Id(1), send, Act::Send("u8"));
            assert!(
                wrong.is_err(),
                "a step allowed in state 0 is not in state 1"
            );
            let (i, to) = ep.begin(&Id(1), recv, Act::Recv("u8")).unwrap();
            assert_eq!(to, Some(Transition::new(0)));
            ep.finish(i, LastOp::Received("u8"), 3, to);
            assert!(
                ep.get_metadata(&Id(1))
                    .unwrap()
                    .state_description
                    .ends_with("| send")
            );
        }
        checks.load(Ordering::Relaxed)
    }

    #[test]
    fn a_monitor_that_tells_its_position_is_asked_each_step_once() {
        // Without a position: 4 checks a round. With one: the two allowed
        // steps once each, the two refused ones every round.
        assert_eq!(checks_asked(false), 40);
        assert_eq!(checks_asked(true), 2 + 20);
    }

    /// State 0: an offer from Id(1) of `accept` (to 1) or `reject` (to
    /// 2); states 1 and 2: `send u8 to Id(1)`, back to 0. Counts checks.
    #[derive(Debug)]
    struct Branching {
        at: usize,
        checks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl ProtocolMonitor for Branching {
        fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
            self.checks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let to = match (self.at, step) {
                (
                    0,
                    Step::Offer {
                        from: "Id(1)",
                        label,
                    },
                ) => match label {
                    None => Some(0),
                    Some("accept") => Some(1),
                    Some("reject") => Some(2),
                    Some(_) => None,
                },
                (
                    1 | 2,
                    Step::Send {
                        to: "Id(1)",
                        message: "u8",
                    },
                ) => Some(0),
                _ => None,
            };
            to.map(Transition::new)
                .ok_or_else(|| Violation::OutOfProtocol {
                    expected: format!("state {}", self.at),
                    attempted: step.to_string(),
                })
        }
        fn advance(&mut self, to: Transition) {
            self.at = to.state();
        }
        fn position(&self) -> Option<usize> {
            Some(self.at)
        }
        fn is_complete(&self) -> bool {
            false
        }
        fn involves(&self, peer: &str) -> bool {
            peer == "Id(1)"
        }
        fn describe(&self, _: &mut String) {}
    }

    #[test]
    fn a_choice_s_branches_are_checked_once_each_in_any_order() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let checks = std::sync::Arc::new(AtomicUsize::new(0));
        let (near, _far) = SimpleChannel::pair();
        let mut ep = RumpsteakEndpoint::new(Id(0)).with_protocol(Branching {
            at: 0,
            checks: checks.clone(),
        });
        ep.register_channel(Id(1), near);
        // accept, reject, reject, accept, ...: each branch right after
        // either one.
        for round in 0..12 {
            let (label, state) = if (round / 2) % 2 == round % 2 {
                ("accept", 1)
            } else {
                ("reject", 2)
            };
            let (i, _) = ep
                .begin(&Id(1), Operation::Offer, Act::Offer(None))
                .unwrap();
            let to = ep.check(i, Operation::Offer, Act::Offered(label)).unwrap();
            assert_eq!(to, Some(Transition::new(state)), "round {round}");
            ep.finish(i, LastOp::Offered(label), 3, to);
            let (i, to) = ep.begin(&Id(1), Operation::Send, Act::Send("u8")).unwrap();
            assert_eq!(to, Some(Transition::new(0)), "round {round}");
            ep.finish(i, LastOp::Sent("u8"), 3, to);
        }
        // The offer before its label, each label and the send after each:
        // five steps, each checked by name once.
        assert_eq!(checks.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn the_memo_never_answers_for_another_step() {
        let mut memo = StepMemo::default();
        let texts: Vec<&'static str> = (0..40)
            .map(|n| &*Box::leak(format!("text{n}").into_boxed_str()))
            .collect();
        let key = |n: usize| StepKey {
            text: (texts[n % 40].as_ptr() as usize, texts[n % 40].len()),
            peer_kind: (n % 3) * 8 + 1,
            position: n / 7,
        };
        // More keys than slots: some are forgotten, none is mistaken.
        for n in 0..120 {
            memo.put(key(n), Transition::new(n));
            assert_eq!(memo.get(&key(n)), Some(Transition::new(n)));
        }
        let mut kept = 0;
        for n in 0..120 {
            if let Some(to) = memo.get(&key(n)) {
                assert_eq!(to, Transition::new(n));
                kept += 1;
            }
        }
        assert!((1..=MEMO_SLOTS).contains(&kept), "{kept}");
        // Never a hit for a key that was not put.
        let other = StepKey {
            position: 1_000,
            ..key(0)
        };
        assert_eq!(memo.get(&other), None);
    }

    #[test]
    fn peers_past_the_scan_are_found_through_the_index() {
        let n = LINEAR_PEERS as u32 + 8;
        let mut ep = RumpsteakEndpoint::new(Id(n));
        let mut far = Vec::new();
        for i in 0..n {
            let (near, other) = SimpleChannel::pair();
            ep.register_channel(Id(i), near);
            far.push(other);
        }
        assert!(ep.index.is_some());
        assert_eq!(ep.active_channel_count(), n as usize);
        assert_eq!(counted(&ep), n as usize);
        // Replacing a peer keeps its place and adds no peer.
        let (near, _other) = SimpleChannel::pair();
        ep.register_channel(Id(n - 1), near);
        assert_eq!(ep.peers.len(), n as usize);
        assert!(ep.close_channel(&Id(n - 2)));
        assert!(!ep.has_channel(&Id(n - 2)));
        assert!(ep.has_channel(&Id(n - 1)));
        assert!(ep.get_metadata(&Id(n - 2)).is_some_and(|m| m.is_complete));
        let op = Operation::Send;
        assert!(ep.begin(&Id(n - 2), op, Act::Send("u8")).is_err());
        assert!(ep.begin(&Id(n), op, Act::Send("u8")).is_err());
        assert!(matches!(
            ep.begin(&Id(3), op, Act::Send("u8")),
            Ok((3, None))
        ));
        assert!(
            matches!(ep.begin(&Id(n - 1), op, Act::Send("u8")), Ok((i, None)) if i == n as usize - 1)
        );
    }
}
