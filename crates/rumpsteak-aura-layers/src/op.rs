use std::fmt;

use rumpsteak_aura::{ChoreographyError, Operation, TransportErrorKind};
use serde::{Deserialize, Serialize};

/// The kind of a choreographic operation, as layers count and record it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpKind {
    /// `send`.
    Send,
    /// `recv` and `recv_timeout`.
    Recv,
    /// `choose`.
    Choose,
    /// `offer`, `offer_among` and `offer_timeout`.
    Offer,
}

impl OpKind {
    /// Every kind, in the order snapshots list them.
    pub const ALL: [OpKind; 4] = [OpKind::Send, OpKind::Recv, OpKind::Choose, OpKind::Offer];

    /// A short lowercase name, used as a span field and a metric label:
    /// `send`, `recv`, `choose`, `offer`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(rumpsteak_aura_layers::OpKind::Choose.name(), "choose");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Send => "send",
            OpKind::Recv => "recv",
            OpKind::Choose => "choose",
            OpKind::Offer => "offer",
        }
    }

    /// The core crate's name for the operation, for errors.
    pub const fn operation(self) -> Operation {
        match self {
            OpKind::Send => Operation::Send,
            OpKind::Recv => Operation::Recv,
            OpKind::Choose => Operation::Choose,
            OpKind::Offer => Operation::Offer,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// Whether the operation sends a frame (`send`, `choose`).
    pub const fn is_outgoing(self) -> bool {
        matches!(self, OpKind::Send | OpKind::Choose)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A coarse class of [`ChoreographyError`], low-cardinality enough to be a
/// metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// [`ChoreographyError::Timeout`].
    Timeout,
    /// The peer closed the session.
    Closed,
    /// Any other transport failure: I/O, frame too large, handshake.
    Transport,
    /// [`ChoreographyError::NoChannel`].
    NoChannel,
    /// [`ChoreographyError::Serialization`].
    Serialization,
    /// [`ChoreographyError::ProtocolViolation`], including replay divergences.
    Protocol,
    /// [`ChoreographyError::UnexpectedLabel`].
    UnexpectedLabel,
    /// An error variant added to the core crate after this one was written.
    Other,
}

impl ErrorClass {
    /// Every class, in the order snapshots list them.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Timeout,
        ErrorClass::Closed,
        ErrorClass::Transport,
        ErrorClass::NoChannel,
        ErrorClass::Serialization,
        ErrorClass::Protocol,
        ErrorClass::UnexpectedLabel,
        ErrorClass::Other,
    ];

    /// The class of an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rumpsteak_aura::ChoreographyError;
    /// use rumpsteak_aura_layers::ErrorClass;
    ///
    /// let e = ChoreographyError::Timeout(Duration::from_millis(5));
    /// assert_eq!(ErrorClass::of(&e), ErrorClass::Timeout);
    /// assert_eq!(ErrorClass::of(&e).name(), "timeout");
    /// ```
    pub fn of(e: &ChoreographyError) -> Self {
        match e {
            ChoreographyError::Timeout(_) => ErrorClass::Timeout,
            ChoreographyError::Transport(t) => match t.kind() {
                TransportErrorKind::Closed => ErrorClass::Closed,
                TransportErrorKind::Other(source) if source.is::<crate::RecordedError>() => {
                    match source.downcast_ref::<crate::RecordedError>() {
                        Some(r) => r.class,
                        None => ErrorClass::Transport,
                    }
                }
                _ => ErrorClass::Transport,
            },
            ChoreographyError::NoChannel { .. } => ErrorClass::NoChannel,
            ChoreographyError::Serialization { .. } => ErrorClass::Serialization,
            ChoreographyError::ProtocolViolation { .. } => ErrorClass::Protocol,
            ChoreographyError::UnexpectedLabel { .. } => ErrorClass::UnexpectedLabel,
            _ => ErrorClass::Other,
        }
    }

    /// A short lowercase name, used as a metric label: `timeout`, `closed`,
    /// `transport`, `no_channel`, `serialization`, `protocol`,
    /// `unexpected_label`, `other`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Closed => "closed",
            ErrorClass::Transport => "transport",
            ErrorClass::NoChannel => "no_channel",
            ErrorClass::Serialization => "serialization",
            ErrorClass::Protocol => "protocol",
            ErrorClass::UnexpectedLabel => "unexpected_label",
            ErrorClass::Other => "other",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `my_crate::msgs::Offer` becomes `Offer`, `alloc::vec::Vec<my::Item>`
/// becomes `Vec<my::Item>`; tuples, arrays and references stay as they are.
/// The same short form the handler's metadata and monitors use.
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

/// The most bytes of text an entry keeps of a peer's name or an error's
/// message; longer text is cut at a character boundary and ends in `…`.
pub const MAX_ENTRY_TEXT: usize = 512;

/// `text`, cut to at most [`MAX_ENTRY_TEXT`] bytes.
pub(crate) fn bounded(mut text: String) -> String {
    if text.len() > MAX_ENTRY_TEXT {
        let mut end = MAX_ENTRY_TEXT - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let cut = bounded("é".repeat(MAX_ENTRY_TEXT));
        assert!(cut.len() <= MAX_ENTRY_TEXT, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("a::b::Offer"), "Offer");
        assert_eq!(short_type_name("u32"), "u32");
        assert_eq!(short_type_name("alloc::vec::Vec<a::Item>"), "Vec<a::Item>");
        assert_eq!(short_type_name("(u8, a::B)"), "(u8, a::B)");
    }

    #[test]
    fn indices_follow_all() {
        for (i, k) in OpKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        for (i, c) in ErrorClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
