use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::Label;

/// A `Result` whose error is [`ChoreographyError`].
pub type Result<T, E = ChoreographyError> = std::result::Result<T, E>;

/// The choreographic operation that failed, as named in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Sending a message.
    Send,
    /// Receiving a message.
    Recv,
    /// Sending a choice label.
    Choose,
    /// Receiving a choice label.
    Offer,
    /// Setting up or tearing down a session.
    Connect,
}

impl Operation {
    /// A short lowercase name: `send`, `recv`, `choose`, `offer`, `connect`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(rumpsteak_aura::Operation::Offer.name(), "offer");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Operation::Send => "send",
            Operation::Recv => "recv",
            Operation::Choose => "choose",
            Operation::Offer => "offer",
            Operation::Connect => "connect",
        }
    }

    /// The preposition that joins the operation to its peer in messages.
    const fn preposition(self) -> &'static str {
        match self {
            Operation::Send | Operation::Choose => "to",
            Operation::Recv | Operation::Offer => "from",
            Operation::Connect => "with",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.preposition())
    }
}

/// The error of every choreographic operation.
///
/// Each variant names the peer and the operation where it can. An error never
/// unregisters the peer's channel: after a timeout, a bad frame or a protocol
/// violation the session is still there for the next operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChoreographyError {
    /// The transport under a session failed: closed, I/O, oversize frame.
    #[error("{0}")]
    Transport(TransportError),

    /// The operation did not finish within the given time.
    #[error("operation timed out after {0:?}")]
    Timeout(Duration),

    /// No open channel is registered for the peer.
    #[error("{op} {peer}: no open channel is registered for this peer")]
    NoChannel {
        /// The peer, in its `Debug` form.
        peer: String,
        /// The operation that needed the channel.
        op: Operation,
    },

    /// A message could not be encoded, or a received payload could not be
    /// decoded as the requested type.
    #[error("{op} {peer}: could not {} a `{type_name}`", if matches!(op, Operation::Send | Operation::Choose) { "encode" } else { "decode" })]
    Serialization {
        /// The peer, in its `Debug` form.
        peer: String,
        /// The operation that failed.
        op: Operation,
        /// The Rust type being encoded or decoded.
        type_name: &'static str,
        /// The codec's own error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// The peer, or the local role, broke the protocol: a label where a message
    /// was expected, a malformed frame, a step the session type does not allow.
    #[error("{op} {peer}: protocol violation: {violation}")]
    ProtocolViolation {
        /// The peer, in its `Debug` form.
        peer: String,
        /// The operation that detected the violation.
        op: Operation,
        /// What was violated.
        violation: Violation,
    },

    /// The peer chose a label outside the set the receiver accepts.
    #[error(
        "{op} {peer}: peer chose `{received}`, expected one of {}",
        LabelList(expected)
    )]
    UnexpectedLabel {
        /// The peer, in its `Debug` form.
        peer: String,
        /// The operation, `offer` in practice.
        op: Operation,
        /// The labels the receiver accepts.
        expected: Vec<Label>,
        /// The label the peer sent.
        received: String,
    },

    /// A role was started on the endpoint of another role, for example a
    /// typed buyer on the seller's endpoint. Nothing was sent or received.
    #[error("the endpoint of role `{found}` cannot run role `{expected}`")]
    WrongRole {
        /// The role to be run, in its `Debug` form.
        expected: String,
        /// The endpoint's own role, in its `Debug` form.
        found: String,
    },
}

impl ChoreographyError {
    /// The error for an offer that received a label outside `expected`: what
    /// a `match` on `offer`'s label returns in its fallback arm.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::{ChoreographyError, Label};
    ///
    /// fn branch(label: Label) -> Result<bool, ChoreographyError> {
    ///     match label.0 {
    ///         "accept" => Ok(true),
    ///         "reject" => Ok(false),
    ///         other => Err(ChoreographyError::unexpected_label(
    ///             "Seller",
    ///             &[Label("accept"), Label("reject")],
    ///             other,
    ///         )),
    ///     }
    /// }
    /// let e = branch(Label("maybe")).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "offer from Seller: peer chose `maybe`, expected one of [`accept`, `reject`]"
    /// );
    /// ```
    pub fn unexpected_label(
        peer: impl Into<String>,
        expected: &[Label],
        received: impl Into<String>,
    ) -> Self {
        ChoreographyError::UnexpectedLabel {
            peer: peer.into(),
            op: Operation::Offer,
            expected: expected.to_vec(),
            received: received.into(),
        }
    }

    /// The transport error inside, if this is a [`ChoreographyError::Transport`].
    pub fn as_transport(&self) -> Option<&TransportError> {
        match self {
            ChoreographyError::Transport(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the peer closed its side of the session.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::{ChoreographyError, TransportError};
    /// let e = ChoreographyError::Transport(TransportError::closed());
    /// assert!(e.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.as_transport()
            .is_some_and(|e| matches!(e.kind(), TransportErrorKind::Closed))
    }
}

impl From<TransportError> for ChoreographyError {
    fn from(e: TransportError) -> Self {
        ChoreographyError::Transport(e)
    }
}

struct LabelList<'a>(&'a [Label]);

impl fmt::Display for LabelList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{l}`")?;
        }
        f.write_str("]")
    }
}

/// A broken rule of the wire format or of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A choice label arrived where a message was expected.
    #[error("received a choice label where a message was expected")]
    LabelWhereMessageExpected,
    /// A message arrived where a choice label was expected.
    #[error("received a message where a choice label was expected")]
    MessageWhereLabelExpected,
    /// The frame does not follow the wire format.
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer sent a label that is neither registered nor known, and a
    /// limit on learning new labels was reached.
    #[error(
        "label `{label}` refused: the limit of {limit} new labels is reached \
         (register the labels you expect, or use offer_among)"
    )]
    TooManyLabels {
        /// The label that did not fit.
        label: String,
        /// The limit that was reached: new labels per session, or learned
        /// labels per process.
        limit: usize,
    },
    /// The step does not match the session type at this point.
    #[error("expected {expected}, attempted {attempted}")]
    OutOfProtocol {
        /// What the session type allows next, for example `send Offer to Seller`.
        expected: String,
        /// What was attempted, for example `recv from Seller`.
        attempted: String,
    },
}

/// Why a received frame could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame has no bytes at all.
    #[error("empty frame")]
    Empty,
    /// The frame ends inside its header or payload.
    #[error("truncated frame")]
    Truncated,
    /// The frame was written by another version of the wire format.
    #[error("unsupported wire format version {found} (this side speaks {supported})")]
    UnsupportedVersion {
        /// The version byte received.
        found: u8,
        /// The version this side speaks.
        supported: u8,
    },
    /// The frame kind byte is not one this version defines.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// Bytes remain after the payload was decoded.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// A label that is not valid UTF-8 or is too long.
    #[error("invalid label: {0}")]
    InvalidLabel(&'static str),
}

/// What went wrong in a transport, without the peer or operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The peer closed its sending side, or went away, and every frame it
    /// sent before has been received.
    #[error("channel closed by peer")]
    Closed,
    /// A frame is larger than the session's limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The session's limit in bytes.
        limit: usize,
    },
    /// An I/O error from the operating system.
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
    /// The peer did not answer within the session's read deadline.
    #[error("peer silent for longer than the read deadline of {0:?}")]
    ReadDeadline(Duration),
    /// Session setup failed: a malformed greeting, a peer that is not a
    /// rumpsteak-aura session, a broken connection during setup.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// Session setup refused a peer, or a peer refused this side, because
    /// an identity did not match: the role, the session, the wire version,
    /// a certificate, plain text against TLS. The refusal names what was
    /// expected and what was presented.
    #[error("{0}")]
    Refused(Refusal),
    /// Any other cause, from a custom transport.
    #[error("{0}")]
    Other(#[source] Box<dyn StdError + Send + Sync>),
}

/// Why session setup refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The peer is another role than the one expected.
    WrongRole,
    /// The peer belongs to another session (another instance of the
    /// protocol between the same roles).
    WrongSession,
    /// The peer speaks another version of the handshake or wire format.
    Version,
    /// The role is already connected; a second connection claiming it is
    /// refused.
    DuplicateRole,
    /// The peer's certificate does not chain to a trusted anchor, or its
    /// key is not the one pinned for its role.
    UntrustedCertificate,
    /// The peer's certificate is expired or not valid yet.
    ExpiredCertificate,
    /// The peer's certificate names another role than the one expected or
    /// claimed, or no role at all.
    CertificateRole,
    /// The peer presented no certificate where one is required.
    NoCertificate,
    /// The peer speaks plain text where TLS is required.
    PlainTextPeer,
    /// The peer speaks TLS where plain text is expected.
    TlsPeer,
    /// The peer refused this side for a reason of its own (its message is
    /// in [`Refusal::detail`]).
    ByPeer,
}

impl RefusalReason {
    /// A short description, as in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            RefusalReason::WrongRole => "wrong role",
            RefusalReason::WrongSession => "wrong session",
            RefusalReason::Version => "version mismatch",
            RefusalReason::DuplicateRole => "role already connected",
            RefusalReason::UntrustedCertificate => "untrusted certificate",
            RefusalReason::ExpiredCertificate => "expired or not yet valid certificate",
            RefusalReason::CertificateRole => "certificate of another role",
            RefusalReason::NoCertificate => "no certificate",
            RefusalReason::PlainTextPeer => "plain-text peer",
            RefusalReason::TlsPeer => "TLS peer",
            RefusalReason::ByPeer => "refused by the peer",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A refused session setup: why, what this side expected, what the peer
/// presented, and who refused.
///
/// Both sides of a refused connection see one where the transport lets the
/// refusal reach them: the side that decided builds it, and the other side
/// receives the same reason, expected and presented identity in the
/// refusal message.
///
/// Text in it may come from a peer; its `Display` form escapes control
/// characters, so that it is safe to log.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura::{Refusal, RefusalReason, TransportError, TransportErrorKind};
///
/// let e = TransportError::refused(Refusal::new(RefusalReason::WrongRole, "Seller", "Mallory\n"));
/// let TransportErrorKind::Refused(r) = e.kind() else { unreachable!() };
/// assert_eq!(r.reason(), RefusalReason::WrongRole);
/// assert_eq!(r.expected(), "Seller");
/// assert_eq!(e.to_string(), r"session refused (wrong role): expected `Seller`, presented `Mallory\u{a}`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    reason: RefusalReason,
    expected: String,
    presented: String,
    by_peer: bool,
    detail: Option<String>,
}

impl Refusal {
    /// A refusal decided by this side.
    pub fn new(
        reason: RefusalReason,
        expected: impl Into<String>,
        presented: impl Into<String>,
    ) -> Self {
        Refusal {
            reason,
            expected: expected.into(),
            presented: presented.into(),
            by_peer: false,
            detail: None,
        }
    }

    /// Adds a detail (an address, the underlying TLS error).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Marks the refusal as decided by the peer, not by this side.
    pub fn from_peer(mut self) -> Self {
        self.by_peer = true;
        self
    }

    /// Why the connection was refused.
    pub fn reason(&self) -> RefusalReason {
        self.reason
    }

    /// The identity the refusing side expected.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// The identity the refused side presented.
    pub fn presented(&self) -> &str {
        &self.presented
    }

    /// Whether the peer decided the refusal (this side was refused).
    pub fn is_from_peer(&self) -> bool {
        self.by_peer
    }

    /// More about the refusal, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.by_peer {
            "refused by the peer"
        } else {
            "session refused"
        };
        write!(
            f,
            "{who} ({}): expected `{}`, presented `{}`",
            self.reason,
            Escaped(&self.expected),
            Escaped(&self.presented)
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; {}", Escaped(detail))?;
        }
        Ok(())
    }
}

/// Text that may come from a peer, written with control characters and the
/// Unicode bidirectional overrides as Rust escapes.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let bidi = matches!(
                c,
                '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            );
            if c.is_control() || bidi {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// A typed transport failure, with the peer and operation once known.
///
/// Transports create these with [`TransportError::closed`],
/// [`TransportError::io`] and friends; the handler adds the peer and the
/// operation before returning it inside [`ChoreographyError::Transport`].
///
/// # Examples
///
/// ```
/// use rumpsteak_aura::{Operation, TransportError, TransportErrorKind};
///
/// let e = TransportError::closed().in_context(Operation::Recv, "Bob");
/// assert!(matches!(e.kind(), TransportErrorKind::Closed));
/// assert_eq!(e.peer(), Some("Bob"));
/// assert_eq!(e.to_string(), "recv from Bob: channel closed by peer");
/// ```
///
/// The error is one pointer wide, so that the `Result`s of the hot path stay
/// small; the allocation happens only when an error does.
#[derive(Debug)]
pub struct TransportError(Box<TransportErrorInner>);

#[derive(Debug)]
struct TransportErrorInner {
    kind: TransportErrorKind,
    context: Option<(Operation, String)>,
}

impl TransportError {
    /// An error of the given kind, with no peer yet.
    pub fn new(kind: TransportErrorKind) -> Self {
        TransportError(Box::new(TransportErrorInner {
            kind,
            context: None,
        }))
    }

    /// The peer closed the session.
    pub fn closed() -> Self {
        Self::new(TransportErrorKind::Closed)
    }

    /// An I/O failure.
    pub fn io(e: io::Error) -> Self {
        Self::new(TransportErrorKind::Io(e))
    }

    /// A frame over the size limit.
    pub fn frame_too_large(size: usize, limit: usize) -> Self {
        Self::new(TransportErrorKind::FrameTooLarge { size, limit })
    }

    /// A failed handshake, with a human-readable reason.
    pub fn handshake(reason: impl Into<String>) -> Self {
        Self::new(TransportErrorKind::Handshake(reason.into()))
    }

    /// A refused session setup.
    pub fn refused(refusal: Refusal) -> Self {
        Self::new(TransportErrorKind::Refused(refusal))
    }

    /// The refusal, if session setup was refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.0.kind {
            TransportErrorKind::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// Any other cause.
    pub fn other(e: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(TransportErrorKind::Other(e.into()))
    }

    /// Adds the operation and the peer's name.
    pub fn in_context(mut self, op: Operation, peer: impl Into<String>) -> Self {
        self.0.context = Some((op, peer.into()));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &TransportErrorKind {
        &self.0.kind
    }

    /// Consumes the error, returning its kind.
    pub fn into_kind(self) -> TransportErrorKind {
        self.0.kind
    }

    /// The peer, once the handler has named it.
    pub fn peer(&self) -> Option<&str> {
        self.0.context.as_ref().map(|(_, p)| p.as_str())
    }

    /// The operation, once the handler has named it.
    pub fn operation(&self) -> Option<Operation> {
        self.0.context.as_ref().map(|(op, _)| *op)
    }

    /// Whether the peer closed the session.
    pub fn is_closed(&self) -> bool {
        matches!(self.0.kind, TransportErrorKind::Closed)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((op, peer)) = &self.0.context {
            write!(f, "{op} {peer}: ")?;
        }
        fmt::Display::fmt(&self.0.kind, f)
    }
}

impl StdError for TransportError {
    // The kind's text is already part of `Display`, so the chain continues
    // with the kind's own cause (the `io::Error`, the custom error).
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.kind.source()
    }
}

impl From<TransportErrorKind> for TransportError {
    fn from(kind: TransportErrorKind) -> Self {
        Self::new(kind)
    }
}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        Self::io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_peer_and_operation() {
        let e = ChoreographyError::NoChannel {
            peer: "Bob".into(),
            op: Operation::Send,
        };
        assert_eq!(
            e.to_string(),
            "send to Bob: no open channel is registered for this peer"
        );

        let e = ChoreographyError::UnexpectedLabel {
            peer: "Seller".into(),
            op: Operation::Offer,
            expected: vec![Label("accept"), Label("reject")],
            received: "maybe".into(),
        };
        assert_eq!(
            e.to_string(),
            "offer from Seller: peer chose `maybe`, expected one of [`accept`, `reject`]"
        );

        let e = ChoreographyError::ProtocolViolation {
            peer: "Alice".into(),
            op: Operation::Recv,
            violation: Violation::LabelWhereMessageExpected,
        };
        assert_eq!(
            e.to_string(),
            "recv from Alice: protocol violation: received a choice label where a message was expected"
        );
    }

    #[test]
    fn transport_error_keeps_io_cause_in_chain() {
        let io = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        let e = TransportError::io(io).in_context(Operation::Send, "Carol");
        assert_eq!(e.to_string(), "send to Carol: i/o error: reset");
        let source = e.source().map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("reset"));
        assert_eq!(e.operation(), Some(Operation::Send));
    }

    #[test]
    fn serialization_says_encode_or_decode() {
        let e = ChoreographyError::Serialization {
            peer: "Bob".into(),
            op: Operation::Recv,
            type_name: "Offer",
            source: "bad varint".into(),
        };
        assert_eq!(e.to_string(), "recv from Bob: could not decode a `Offer`");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("bad varint")
        );
    }
}
