//! The wire format: what one frame contains.
//!
//! Every frame starts with a two-byte header:
//!
//! | byte | meaning |
//! |------|---------|
//! | 0    | wire format version, [`WIRE_VERSION`] |
//! | 1    | frame kind: `0x00` message, `0x01` choice label |
//!
//! A message frame's payload is the message in postcard encoding. A label
//! frame's payload is the label as a postcard string (a varint length, then
//! UTF-8 bytes), at most [`MAX_LABEL_LEN`] bytes. Both payloads must fill the
//! frame exactly: trailing bytes are an error. A message may nest at most
//! [`MAX_DEPTH`] levels deep. The frame's length itself is
//! the transport's business (a channel item, a length prefix on TCP, a
//! WebSocket message). `docs/wire-format.md` describes the same with
//! examples.

use postcard::ser_flavors::Flavor;
use rumpsteak_aura::FrameError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::depth::DepthLimit;

/// The version of the wire format this crate writes and reads.
pub const WIRE_VERSION: u8 = 1;

/// The length of the frame header in bytes.
pub const HEADER_LEN: usize = 2;

/// The longest label, in UTF-8 bytes, that may be sent or received.
pub const MAX_LABEL_LEN: usize = 255;

/// The deepest nesting [`decode_message`] accepts.
///
/// Each sequence, tuple, struct, map, enum, `Some` and newtype struct is one
/// level inside the one that holds it; the top-level message's own
/// container is level 1. For `enum Tree { Leaf, Node(Box<Tree>) }`, `Leaf`
/// is one level and `Node(Box::new(Leaf))` two, so a `Tree` may hold at most
/// 127 `Node`s around its `Leaf`.
///
/// Decoding a recursive type recurses once per level, so without a limit a
/// peer could overflow the receiver's stack with a small frame (a million
/// levels of `Tree` fit in a megabyte). For that `Tree`, 128 levels take
/// about 120 KiB of stack in a debug build and under 16 KiB in a release
/// build, a small part of the 2 MiB a tokio worker thread has.
///
/// [`encode_message`] does not check the depth: a deeper message encodes,
/// and its receiver refuses it with [`PayloadError::TooDeep`].
pub const MAX_DEPTH: usize = 128;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A postcard-encoded message.
    Message = 0x00,
    /// A choice label.
    Label = 0x01,
}

/// A decoded frame, borrowing its payload from the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A message payload, still postcard-encoded.
    Message(&'a [u8]),
    /// A choice label.
    Label(RawLabel<'a>),
}

/// A received label: its length is checked (at most [`MAX_LABEL_LEN`]
/// bytes, filling the frame exactly), its text not yet.
///
/// Checking that bytes are UTF-8 costs more than comparing them, and a
/// label is almost always one the receiver knows. So [`RawLabel::is`]
/// compares with a known label directly, and only a label that matched
/// nothing needs [`RawLabel::to_str`].
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_transport::wire::{self, Frame};
///
/// let frame = wire::encode_label("accept")?;
/// let Frame::Label(label) = wire::decode(&frame)? else { panic!("not a label") };
/// assert!(label.is("accept") && !label.is("reject"));
/// assert_eq!(label.to_str()?, "accept");
///
/// // Not UTF-8: decoding the frame succeeds, reading the text does not.
/// let Frame::Label(bad) = wire::decode(&[wire::WIRE_VERSION, 0x01, 1, 0xff])? else {
///     panic!("not a label")
/// };
/// assert!(bad.to_str().is_err());
/// # Ok::<(), rumpsteak_aura::FrameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLabel<'a>(&'a [u8]);

impl<'a> RawLabel<'a> {
    /// Whether this is `label`, byte for byte.
    #[inline]
    pub fn is(self, label: &str) -> bool {
        self.0 == label.as_bytes()
    }

    /// The label's bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// The label as text.
    ///
    /// # Errors
    ///
    /// [`FrameError::InvalidLabel`] if the bytes are not UTF-8.
    pub fn to_str(self) -> Result<&'a str, FrameError> {
        std::str::from_utf8(self.0).map_err(|_| FrameError::InvalidLabel("not valid UTF-8"))
    }
}

impl<'a> From<&'a str> for RawLabel<'a> {
    fn from(label: &'a str) -> Self {
        RawLabel(label.as_bytes())
    }
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The codec failed.
    #[error("postcard: {0}")]
    Codec(#[source] postcard::Error),
    /// The payload decoded, but bytes were left over.
    #[error("{0} unexpected trailing bytes")]
    Trailing(usize),
    /// The payload nests deeper than [`MAX_DEPTH`] levels.
    #[error("nesting deeper than {} levels", MAX_DEPTH)]
    TooDeep,
}

/// A postcard output that writes into a `Vec<u8>`, copying slices in one go.
struct VecFlavor(Vec<u8>);

impl Flavor for VecFlavor {
    type Output = Vec<u8>;

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Most calls carry a varint of a few bytes; pushing those directly is
        // cheaper than a call to `memcpy`.
        if data.len() <= 16 {
            for &b in data {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

#[inline]
fn header(kind: FrameKind, capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity.max(HEADER_LEN));
    buf.extend_from_slice(&[WIRE_VERSION, kind as u8]);
    buf
}

/// Encodes a message frame.
///
/// `capacity` is the buffer size to start with: passing the size of the
/// previous frame to the same peer makes a steady stream of similar messages
/// cost exactly one allocation each.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_transport::wire::{self, Frame};
///
/// let frame = wire::encode_message(&(7u8, "hi"), 0).unwrap();
/// assert_eq!(frame, [wire::WIRE_VERSION, 0x00, 7, 2, b'h', b'i']);
/// let Frame::Message(payload) = wire::decode(&frame)? else { panic!("not a message") };
/// let (n, s): (u8, String) = wire::decode_message(payload).unwrap();
/// assert_eq!((n, s.as_str()), (7, "hi"));
/// # Ok::<(), rumpsteak_aura::FrameError>(())
/// ```
#[inline]
pub fn encode_message<M: Serialize + ?Sized>(
    msg: &M,
    capacity: usize,
) -> Result<Vec<u8>, PayloadError> {
    let buf = VecFlavor(header(FrameKind::Message, capacity));
    postcard::serialize_with_flavor(msg, buf).map_err(PayloadError::Codec)
}

/// Encodes a label frame.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_transport::wire::{self, Frame};
///
/// let frame = wire::encode_label("accept")?;
/// assert_eq!(wire::decode(&frame)?, Frame::Label("accept".into()));
/// # Ok::<(), rumpsteak_aura::FrameError>(())
/// ```
pub fn encode_label(label: &str) -> Result<Vec<u8>, FrameError> {
    if label.len() > MAX_LABEL_LEN {
        return Err(FrameError::InvalidLabel("longer than 255 bytes"));
    }
    let buf = VecFlavor(header(FrameKind::Label, HEADER_LEN + 1 + label.len()));
    // Serializing a short `str` into a growable buffer cannot fail.
    postcard::serialize_with_flavor(label, buf)
        .map_err(|_| FrameError::InvalidLabel("could not be encoded"))
}

/// Reads a frame's header and, for a label, the label's length (see
/// [`RawLabel`] for its text).
///
/// Never panics, whatever the bytes.
#[inline]
pub fn decode(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (&version, rest) = frame.split_first().ok_or(FrameError::Empty)?;
    if version != WIRE_VERSION {
        return Err(FrameError::UnsupportedVersion {
            found: version,
            supported: WIRE_VERSION,
        });
    }
    let (&kind, payload) = rest.split_first().ok_or(FrameError::Truncated)?;
    match kind {
        k if k == FrameKind::Message as u8 => Ok(Frame::Message(payload)),
        k if k == FrameKind::Label as u8 => decode_label(payload).map(Frame::Label),
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// A label payload is a postcard string: a varint length, then the bytes.
/// Labels are at most 255 bytes, so the length takes one or two bytes.
fn decode_label(payload: &[u8]) -> Result<RawLabel<'_>, FrameError> {
    let (len, text) = match payload {
        [] => return Err(FrameError::Truncated),
        [short @ 0..=0x7f, text @ ..] => (usize::from(*short), text),
        // A second byte of 0 would say the same as one byte: only the
        // shortest form, the one `encode_label` writes, is accepted.
        [_, 0, ..] => return Err(FrameError::InvalidLabel("length not in its shortest form")),
        [low, high @ 1..=0x7f, text @ ..] => {
            (usize::from(low & 0x7f) | usize::from(*high) << 7, text)
        }
        [_, _, ..] => return Err(FrameError::InvalidLabel("longer than 255 bytes")),
        [_] => return Err(FrameError::Truncated),
    };
    if len > MAX_LABEL_LEN {
        return Err(FrameError::InvalidLabel("longer than 255 bytes"));
    }
    match text.len().checked_sub(len) {
        None => Err(FrameError::Truncated),
        Some(0) => Ok(RawLabel(text)),
        Some(extra) => Err(FrameError::TrailingBytes(extra)),
    }
}

/// Decodes a message payload, requiring it to fill the frame exactly.
///
/// Never panics and never recurses more than [`MAX_DEPTH`] levels, whatever
/// the bytes.
///
/// # Errors
///
/// - [`PayloadError::Codec`]: the bytes are not a postcard encoding of `M`;
/// - [`PayloadError::TooDeep`]: they nest deeper than [`MAX_DEPTH`] levels;
/// - [`PayloadError::Trailing`]: `M` decoded, but bytes were left over.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_transport::wire::{self, PayloadError};
///
/// #[derive(serde::Deserialize)]
/// enum Tree {
///     Leaf,
///     Node(Box<Tree>),
/// }
///
/// // `Node` is variant 1 and `Leaf` variant 0: a million `Node`s, then a `Leaf`.
/// let mut hostile = vec![1u8; 1_000_000];
/// hostile.push(0);
/// assert!(matches!(
///     wire::decode_message::<Tree>(&hostile),
///     Err(PayloadError::TooDeep)
/// ));
/// assert!(wire::decode_message::<Tree>(&[1, 1, 0]).is_ok());
/// ```
#[inline]
pub fn decode_message<M: DeserializeOwned>(payload: &[u8]) -> Result<M, PayloadError> {
    let limit = DepthLimit::new(MAX_DEPTH);
    let mut de = postcard::Deserializer::from_bytes(payload);
    let msg = M::deserialize(limit.wrap(&mut de)).map_err(|e| {
        // postcard drops the text of custom errors, so ask the limit.
        if limit.exceeded() {
            PayloadError::TooDeep
        } else {
            PayloadError::Codec(e)
        }
    })?;
    let rest = de.finalize().map_err(PayloadError::Codec)?;
    if rest.is_empty() {
        Ok(msg)
    } else {
        Err(PayloadError::Trailing(rest.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Named {
        name: String,
        n: u32,
    }

    #[test]
    fn message_and_label_frames_differ_in_kind() {
        // A message whose first field is a string has the same payload bytes as
        // a label frame would; only the kind byte tells them apart.
        let msg = wire_msg();
        let label = encode_label("accept").unwrap();
        assert_eq!(&msg[HEADER_LEN..HEADER_LEN + 7], &label[HEADER_LEN..]);
        assert!(matches!(decode(&msg), Ok(Frame::Message(_))));
        assert_eq!(decode(&label), Ok(Frame::Label("accept".into())));
    }

    fn wire_msg() -> Vec<u8> {
        encode_message(
            &Named {
                name: "accept".into(),
                n: 1,
            },
            0,
        )
        .unwrap()
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(decode(&[]), Err(FrameError::Empty));
        assert_eq!(decode(&[WIRE_VERSION]), Err(FrameError::Truncated));
        assert_eq!(
            decode(&[9, 0]),
            Err(FrameError::UnsupportedVersion {
                found: 9,
                supported: WIRE_VERSION
            })
        );
        assert_eq!(decode(&[WIRE_VERSION, 7]), Err(FrameError::UnknownKind(7)));
        assert_eq!(decode(&[WIRE_VERSION, 1]), Err(FrameError::Truncated));
        assert_eq!(
            decode(&[WIRE_VERSION, 1, 3, b'a']),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            decode(&[WIRE_VERSION, 1, 1, b'a', b'b']),
            Err(FrameError::TrailingBytes(1))
        );
        // Its text is checked when read.
        let Ok(Frame::Label(not_text)) = decode(&[WIRE_VERSION, 1, 1, 0xff]) else {
            panic!("a label frame of the right length decodes");
        };
        assert_eq!(
            not_text.to_str(),
            Err(FrameError::InvalidLabel("not valid UTF-8"))
        );
        assert!(!not_text.is("\u{ff}"));
    }

    #[test]
    fn label_lengths_take_one_or_two_varint_bytes() {
        for len in [0, 1, 127, 128, 200, MAX_LABEL_LEN] {
            let text = "x".repeat(len);
            let frame = encode_label(&text).unwrap();
            let Ok(Frame::Label(label)) = decode(&frame) else {
                panic!("label of {len} bytes");
            };
            assert!(label.is(&text), "{len}");
            // One byte short, one byte over.
            assert_eq!(
                decode(&frame[..frame.len() - 1]),
                Err(FrameError::Truncated)
            );
            let mut padded = frame.clone();
            padded.push(b'x');
            assert_eq!(decode(&padded), Err(FrameError::TrailingBytes(1)));
        }
        let too_long = |len: u16| {
            let mut frame = vec![WIRE_VERSION, 1, (len as u8) | 0x80, (len >> 7) as u8];
            frame.resize(frame.len() + usize::from(len), b'x');
            decode(&frame).map(|_| ())
        };
        assert_eq!(too_long(255), Ok(()));
        assert_eq!(
            too_long(256),
            Err(FrameError::InvalidLabel("longer than 255 bytes"))
        );
        // A length whose varint runs past two bytes, and one cut short.
        assert_eq!(
            decode(&[WIRE_VERSION, 1, 0x80, 0x80, 0x01]),
            Err(FrameError::InvalidLabel("longer than 255 bytes"))
        );
        assert_eq!(decode(&[WIRE_VERSION, 1, 0x80]), Err(FrameError::Truncated));
        // "hello" with its length 5 written in two bytes.
        assert_eq!(
            decode(&[WIRE_VERSION, 1, 0x85, 0x00, b'h', b'e', b'l', b'l', b'o']),
            Err(FrameError::InvalidLabel("length not in its shortest form"))
        );
    }

    #[test]
    fn truncated_or_padded_payloads_are_errors() {
        let frame = wire_msg();
        let Ok(Frame::Message(payload)) = decode(&frame) else {
            panic!("expected a message frame");
        };
        assert_eq!(decode_message::<Named>(payload).unwrap().n, 1);
        assert!(matches!(
            decode_message::<Named>(&payload[..payload.len() - 1]),
            Err(PayloadError::Codec(_))
        ));
        let mut padded = payload.to_vec();
        padded.push(0);
        assert!(matches!(
            decode_message::<Named>(&padded),
            Err(PayloadError::Trailing(1))
        ));
    }

    #[test]
    fn long_labels_are_refused() {
        let long = "x".repeat(MAX_LABEL_LEN + 1);
        assert!(encode_label(&long).is_err());
        assert!(encode_label(&long[1..]).is_ok());
    }

    #[test]
    fn capacity_hint_gives_one_exact_buffer() {
        let first = wire_msg();
        let second = encode_message(
            &Named {
                name: "accept".into(),
                n: 1,
            },
            first.len(),
        )
        .unwrap();
        assert_eq!(second.capacity(), first.len());
    }
}
