//! The `metrics` crate export of [`Metered`](super::Metered).

use metrics::{Counter, Gauge, Histogram, Unit};
use rumpsteak_aura_handler::SessionCounts;

use crate::op::{ErrorClass, OpKind};

pub(super) const OPERATIONS: &str = "rumpsteak_operations_total";
pub(super) const CANCELLED: &str = "rumpsteak_operations_cancelled_total";
pub(super) const BYTES_SENT: &str = "rumpsteak_bytes_sent_total";
pub(super) const BYTES_RECEIVED: &str = "rumpsteak_bytes_received_total";
pub(super) const ERRORS: &str = "rumpsteak_errors_total";
pub(super) const DURATION: &str = "rumpsteak_operation_duration_seconds";
pub(super) const SESSIONS_OPEN: &str = "rumpsteak_sessions_open";

/// The registered handles of one peer.
pub(super) struct PeerExport {
    role: String,
    peer: String,
    pub(super) ops: [Counter; 4],
    pub(super) latency: [Histogram; 4],
    pub(super) cancelled: Counter,
    pub(super) bytes_sent: Counter,
    pub(super) bytes_received: Counter,
}

impl PeerExport {
    pub(super) fn register(role: &str, peer: &str) -> Self {
        let op_counter = |kind: OpKind| metrics::counter!(OPERATIONS, "role" => role.to_owned(), "peer" => peer.to_owned(), "op" => kind.name());
        let op_histogram = |kind: OpKind| metrics::histogram!(DURATION, "role" => role.to_owned(), "peer" => peer.to_owned(), "op" => kind.name());
        PeerExport {
            ops: OpKind::ALL.map(op_counter),
            latency: OpKind::ALL.map(op_histogram),
            cancelled: metrics::counter!(CANCELLED, "role" => role.to_owned(), "peer" => peer.to_owned()),
            bytes_sent: metrics::counter!(BYTES_SENT, "role" => role.to_owned(), "peer" => peer.to_owned()),
            bytes_received: metrics::counter!(BYTES_RECEIVED, "role" => role.to_owned(), "peer" => peer.to_owned()),
            role: role.to_owned(),
            peer: peer.to_owned(),
        }
    }

    /// Adds what a session moved since the last call for it: its frames
    /// as operations by kind (labels are choices and offers, the other
    /// frames messages), and their bytes.
    #[inline]
    pub(super) fn moved(&self, d: &SessionCounts) {
        let add = |counter: &Counter, n: u64| {
            if n > 0 {
                counter.increment(n);
            }
        };
        add(
            &self.ops[OpKind::Send.index()],
            d.frames_sent - d.labels_sent,
        );
        add(&self.ops[OpKind::Choose.index()], d.labels_sent);
        add(
            &self.ops[OpKind::Recv.index()],
            d.frames_received - d.labels_received,
        );
        add(&self.ops[OpKind::Offer.index()], d.labels_received);
        add(&self.bytes_sent, d.bytes_sent);
        add(&self.bytes_received, d.bytes_received);
    }

    /// Counts a failed operation, in the operations and the errors (which
    /// the endpoint, counting only what succeeded, does not know). Errors
    /// are rare, so their handles are looked up when they happen rather
    /// than registered for every class.
    pub(super) fn error(&self, kind: OpKind, class: ErrorClass) {
        self.ops[kind.index()].increment(1);
        metrics::counter!(
            ERRORS,
            "role" => self.role.clone(),
            "peer" => self.peer.clone(),
            "op" => kind.name(),
            "class" => class.name()
        )
        .increment(1);
    }
}

/// One layer's share of the open-session gauge: what it added, taken out
/// again when the layer is dropped.
#[derive(Default)]
pub(super) struct SessionsShare {
    gauge: Option<Gauge>,
    reported: usize,
}

impl SessionsShare {
    /// Whether this layer's share is `open` already.
    #[inline]
    pub(super) fn reports(&self, open: usize) -> bool {
        self.gauge.is_some() && self.reported == open
    }

    /// Moves this layer's share to `open`, registering the gauge (labelled
    /// with `role`) the first time.
    #[cold]
    pub(super) fn report(&mut self, open: usize, role: &str) {
        if self.gauge.is_some() && self.reported == open {
            return;
        }
        let gauge = self
            .gauge
            .get_or_insert_with(|| metrics::gauge!(SESSIONS_OPEN, "role" => role.to_owned()));
        if open >= self.reported {
            gauge.increment((open - self.reported) as f64);
        } else {
            gauge.decrement((self.reported - open) as f64);
        }
        self.reported = open;
    }
}

impl Drop for SessionsShare {
    fn drop(&mut self) {
        if let Some(gauge) = &self.gauge
            && self.reported > 0
        {
            gauge.decrement(self.reported as f64);
        }
    }
}

pub(super) fn describe() {
    metrics::describe_counter!(
        OPERATIONS,
        Unit::Count,
        "choreographic operations completed, by kind"
    );
    metrics::describe_counter!(
        CANCELLED,
        Unit::Count,
        "operations whose future was dropped before completing"
    );
    metrics::describe_counter!(
        BYTES_SENT,
        Unit::Bytes,
        "bytes of the frames sent, header included"
    );
    metrics::describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "bytes of the frames received, header included"
    );
    metrics::describe_counter!(
        ERRORS,
        Unit::Count,
        "failed operations, by kind and error class"
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "time from an operation's start to its completion"
    );
    metrics::describe_gauge!(
        SESSIONS_OPEN,
        Unit::Count,
        "open peer sessions of the role, over every metered endpoint of it"
    );
}
