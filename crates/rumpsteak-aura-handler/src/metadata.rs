use std::cell::{Cell, OnceCell};
use std::fmt::Write;

/// What an endpoint knows about its session with one peer.
///
/// Read it with [`RumpsteakEndpoint::get_metadata`] or
/// [`RumpsteakEndpoint::all_metadata`]. It exists from registration on and
/// stays readable after the channel is closed.
///
/// [`RumpsteakEndpoint::get_metadata`]: crate::RumpsteakEndpoint::get_metadata
/// [`RumpsteakEndpoint::all_metadata`]: crate::RumpsteakEndpoint::all_metadata
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionMetadata {
    /// Human-readable current state, for logs: `registered`,
    /// `sent Offer to Bob`, `chose accept for Bob`, `closed`. With a protocol
    /// attached it also shows the protocol position, after ` | `.
    pub state_description: String,
    /// Whether the session is over: the channel was closed by either side,
    /// or, with a protocol attached, the role's session type reached its end.
    pub is_complete: bool,
    /// How many operations with this peer succeeded.
    pub operation_count: usize,
    /// Whether this side gave up on the protocol with the peer before its
    /// end (see [`RumpsteakEndpoint::abandon`]); the channel is then closed.
    ///
    /// [`RumpsteakEndpoint::abandon`]: crate::RumpsteakEndpoint::abandon
    pub is_abandoned: bool,
}

/// Frames and bytes exchanged with one peer, whole frames as they travel
/// (header included), counted when an operation succeeds. Read it with
/// [`RumpsteakEndpoint::traffic`](crate::RumpsteakEndpoint::traffic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Frames sent: messages and choice labels.
    pub frames_sent: u64,
    /// Bytes of the frames sent.
    pub bytes_sent: u64,
    /// Frames received: messages and choice labels.
    pub frames_received: u64,
    /// Bytes of the frames received.
    pub bytes_received: u64,
}

impl Traffic {
    #[inline]
    pub(crate) fn count(&mut self, op: LastOp, bytes: usize) {
        let bytes = bytes as u64;
        match op {
            LastOp::Sent(_) | LastOp::Chose(_) => {
                self.frames_sent += 1;
                self.bytes_sent += bytes;
            }
            LastOp::Received(_) | LastOp::Offered(_) => {
                self.frames_received += 1;
                self.bytes_received += bytes;
            }
            _ => {}
        }
    }
}

/// The last thing that happened on a session, kept as data so that the hot
/// path never formats text; [`MetadataCache`] renders it when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LastOp {
    Registered,
    Sent(&'static str),
    Received(&'static str),
    Chose(&'static str),
    Offered(&'static str),
    Closed,
    ClosedByPeer,
    Abandoned,
}

/// The kind of a [`LastOp`], one byte: a peer keeps it beside its flags and
/// the text apart, in 17 bytes instead of the enum's 24, so that what an
/// operation writes fits in one cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum LastKind {
    Registered,
    Sent,
    Received,
    Chose,
    Offered,
    Closed,
    ClosedByPeer,
    Abandoned,
}

impl LastOp {
    /// The kind and the text (empty for the kinds without one).
    #[inline]
    pub(crate) fn split(self) -> (LastKind, &'static str) {
        match self {
            LastOp::Registered => (LastKind::Registered, ""),
            LastOp::Sent(t) => (LastKind::Sent, t),
            LastOp::Received(t) => (LastKind::Received, t),
            LastOp::Chose(t) => (LastKind::Chose, t),
            LastOp::Offered(t) => (LastKind::Offered, t),
            LastOp::Closed => (LastKind::Closed, ""),
            LastOp::ClosedByPeer => (LastKind::ClosedByPeer, ""),
            LastOp::Abandoned => (LastKind::Abandoned, ""),
        }
    }

    /// The operation [`split`](LastOp::split) took apart.
    pub(crate) fn join(kind: LastKind, text: &'static str) -> LastOp {
        match kind {
            LastKind::Registered => LastOp::Registered,
            LastKind::Sent => LastOp::Sent(text),
            LastKind::Received => LastOp::Received(text),
            LastKind::Chose => LastOp::Chose(text),
            LastKind::Offered => LastOp::Offered(text),
            LastKind::Closed => LastOp::Closed,
            LastKind::ClosedByPeer => LastOp::ClosedByPeer,
            LastKind::Abandoned => LastOp::Abandoned,
        }
    }

    pub(crate) fn write(self, peer: &str, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = match self {
            LastOp::Registered => write!(out, "registered with {peer}"),
            LastOp::Sent(ty) => write!(out, "sent {} to {peer}", short_type_name(ty)),
            LastOp::Received(ty) => write!(out, "received {} from {peer}", short_type_name(ty)),
            LastOp::Chose(label) => write!(out, "chose {label} for {peer}"),
            LastOp::Offered(label) => write!(out, "{peer} chose {label}"),
            LastOp::Closed => write!(out, "closed"),
            LastOp::ClosedByPeer => write!(out, "closed by {peer}"),
            LastOp::Abandoned => write!(out, "abandoned, closed"),
        };
    }
}

/// A rendered [`SessionMetadata`], built on first read after a change.
///
/// `get_metadata` takes `&self` and returns a reference, so the rendered
/// value lives in a `OnceCell`. When an operation invalidates it, its string
/// buffer is kept in `spare` and reused by the next rendering: after warm-up
/// neither operations nor reads allocate.
#[derive(Default)]
pub(crate) struct MetadataCache {
    rendered: OnceCell<SessionMetadata>,
    spare: Cell<String>,
}

impl MetadataCache {
    #[inline]
    pub(crate) fn invalidate(&mut self) {
        if let Some(old) = self.rendered.take() {
            *self.spare.get_mut() = old.state_description;
        }
    }

    pub(crate) fn get_or_render(
        &self,
        render: impl FnOnce(&mut String) -> (bool, usize, bool),
    ) -> &SessionMetadata {
        self.rendered.get_or_init(|| {
            let mut state_description = self.spare.take();
            state_description.clear();
            let (is_complete, operation_count, is_abandoned) = render(&mut state_description);
            SessionMetadata {
                state_description,
                is_complete,
                operation_count,
                is_abandoned,
            }
        })
    }
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataCache")
            .field("rendered", &self.rendered)
            .finish_non_exhaustive()
    }
}

/// `my_crate::msgs::Offer` becomes `Offer`, `alloc::vec::Vec<my::Item>`
/// becomes `Vec<my::Item>`; tuples, arrays and references stay as they are.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    if full.starts_with(['(', '[', '&', '*']) {
        return full;
    }
    let head_end = full.find('<').unwrap_or(full.len());
    match full[..head_end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("a::b::Offer"), "Offer");
        assert_eq!(short_type_name("Offer"), "Offer");
        assert_eq!(short_type_name("alloc::vec::Vec<a::Item>"), "Vec<a::Item>");
        assert_eq!(short_type_name("(u8, a::B)"), "(u8, a::B)");
    }

    #[test]
    fn descriptions_read_well() {
        let mut s = String::new();
        LastOp::Sent("app::Offer").write("Bob", &mut s);
        assert_eq!(s, "sent Offer to Bob");
        s.clear();
        LastOp::Chose("accept").write("Bob", &mut s);
        assert_eq!(s, "chose accept for Bob");
        s.clear();
        LastOp::Offered("reject").write("Seller", &mut s);
        assert_eq!(s, "Seller chose reject");
    }

    #[test]
    fn a_split_operation_joins_back() {
        let ops = [
            LastOp::Registered,
            LastOp::Sent("a::Ping"),
            LastOp::Received("a::Pong"),
            LastOp::Chose("accept"),
            LastOp::Offered("reject"),
            LastOp::Closed,
            LastOp::ClosedByPeer,
            LastOp::Abandoned,
        ];
        for op in ops {
            let (kind, text) = op.split();
            assert_eq!(LastOp::join(kind, text), op);
        }
    }

    #[test]
    fn cache_reuses_its_buffer() {
        let mut cache = MetadataCache::default();
        let first = cache.get_or_render(|s| {
            s.push_str("one");
            (false, 1, false)
        });
        assert_eq!(first.state_description, "one");
        let ptr = first.state_description.as_ptr();
        cache.invalidate();
        let second = cache.get_or_render(|s| {
            s.push_str("two");
            (true, 2, false)
        });
        assert_eq!(second.state_description, "two");
        assert!(second.is_complete);
        assert_eq!(second.state_description.as_ptr(), ptr);
    }
}
