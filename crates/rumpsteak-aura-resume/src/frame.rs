//! The frames a resumable session puts on its underlying link (wire format
//! version 2, documented in `docs/wire-format.md`).
//!
//! Every frame starts with the version byte [`RESUME_WIRE_VERSION`] and a
//! kind byte. A peer that speaks only version 1 reads the first byte of any
//! of these frames as an unsupported version and refuses it with its own
//! typed error (`FrameError::UnsupportedVersion { found: 2, .. }`).

/// The wire format version of the frames on a resumable session's link.
/// Version 1 is the plain frame of `rumpsteak_aura_transport::wire`, which
/// a resumable session carries, whole, inside its data frames.
pub const RESUME_WIRE_VERSION: u8 = 2;

pub(crate) const HELLO: u8 = 0x10;
pub(crate) const REJECT: u8 = 0x11;
pub(crate) const DATA: u8 = 0x12;
pub(crate) const ACK: u8 = 0x13;
pub(crate) const CLOSE: u8 = 0x14;
pub(crate) const GONE: u8 = 0x15;

/// The longest header a data frame has: version, kind, two varints.
pub(crate) const MAX_DATA_HEADER: usize = 2 + 10 + 10;

/// The longest string (session identifier, role name, reason) in a frame.
pub(crate) const MAX_STR: usize = 255;

/// The resume greeting each side sends first on every new link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) session: String,
    pub(crate) from: String,
    pub(crate) to: String,
    /// The sender's incarnation: a random nonce drawn once per session.
    pub(crate) incarnation: u64,
    /// The incarnation the sender knows of the receiver; 0 at first connect.
    pub(crate) peer_incarnation: u64,
    /// The last sequence number the sender received in order.
    pub(crate) received: u64,
}

/// Why a side refused a resume greeting; the code byte of a reject frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The greeting names another session identifier.
    WrongSession,
    /// The greeting names other roles than the ones expected.
    WrongRole,
    /// The peer is a new incarnation: it restarted and lost its state.
    PeerRestarted,
    /// The peer resumes a session this side does not have (this side
    /// restarted, or the session is over).
    UnknownSession,
    /// The peer speaks another version of the resumable framing.
    Version,
    /// The peer's sequence numbers do not fit what this side holds.
    StateMismatch,
    /// The link proves another peer identity than the first one did.
    IdentityChanged,
    /// Any other reason (a code this version does not know).
    Other,
}

impl RejectReason {
    fn code(self) -> u8 {
        match self {
            RejectReason::WrongSession => 1,
            RejectReason::WrongRole => 2,
            RejectReason::PeerRestarted => 3,
            RejectReason::UnknownSession => 4,
            RejectReason::Version => 5,
            RejectReason::StateMismatch => 6,
            RejectReason::IdentityChanged => 7,
            RejectReason::Other => 255,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => RejectReason::WrongSession,
            2 => RejectReason::WrongRole,
            3 => RejectReason::PeerRestarted,
            4 => RejectReason::UnknownSession,
            5 => RejectReason::Version,
            6 => RejectReason::StateMismatch,
            7 => RejectReason::IdentityChanged,
            _ => RejectReason::Other,
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RejectReason::WrongSession => "wrong session",
            RejectReason::WrongRole => "wrong role",
            RejectReason::PeerRestarted => "peer restarted",
            RejectReason::UnknownSession => "unknown session",
            RejectReason::Version => "version mismatch",
            RejectReason::StateMismatch => "sequence state mismatch",
            RejectReason::IdentityChanged => "identity changed",
            RejectReason::Other => "other",
        })
    }
}

/// A decoded link frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LinkFrame<'a> {
    Hello(Hello),
    Reject {
        reason: RejectReason,
        text: String,
    },
    Data {
        seq: u64,
        ack: u64,
        payload: &'a [u8],
    },
    Ack {
        ack: u64,
    },
    Close {
        seq: u64,
        ack: u64,
    },
    Gone {
        ack: u64,
    },
}

/// Why a link frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The first byte is another wire version.
    Version(u8),
    /// Anything else, for people.
    Malformed(&'static str),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(MAX_STR);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn header(kind: u8, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(RESUME_WIRE_VERSION);
    out.push(kind);
    out
}

pub(crate) fn encode_hello(h: &Hello) -> Vec<u8> {
    let mut out = header(HELLO, 64 + h.session.len() + h.from.len() + h.to.len());
    put_str(&mut out, &h.session);
    put_str(&mut out, &h.from);
    put_str(&mut out, &h.to);
    out.extend_from_slice(&h.incarnation.to_le_bytes());
    out.extend_from_slice(&h.peer_incarnation.to_le_bytes());
    put_varint(&mut out, h.received);
    out
}

pub(crate) fn encode_reject(reason: RejectReason, text: &str) -> Vec<u8> {
    let mut out = header(REJECT, 4 + text.len().min(MAX_STR));
    out.push(reason.code());
    put_str(&mut out, text);
    out
}

pub(crate) fn encode_data(seq: u64, ack: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = header(DATA, MAX_DATA_HEADER + payload.len());
    put_varint(&mut out, seq);
    put_varint(&mut out, ack);
    out.extend_from_slice(payload);
    out
}

pub(crate) fn encode_ack(ack: u64) -> Vec<u8> {
    let mut out = header(ACK, 12);
    put_varint(&mut out, ack);
    out
}

pub(crate) fn encode_close(seq: u64, ack: u64) -> Vec<u8> {
    let mut out = header(CLOSE, 22);
    put_varint(&mut out, seq);
    put_varint(&mut out, ack);
    out
}

pub(crate) fn encode_gone(ack: u64) -> Vec<u8> {
    let mut out = header(GONE, 12);
    put_varint(&mut out, ack);
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let [b, rest @ ..] = self.0 else {
            return Err(DecodeError::Malformed("truncated frame"));
        };
        self.0 = rest;
        Ok(*b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return Err(DecodeError::Malformed("varint overflows 64 bits"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::Malformed("varint not in its shortest form"));
                }
                return Ok(v);
            }
        }
        Err(DecodeError::Malformed("varint longer than 10 bytes"))
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let Some((head, rest)) = self.0.split_first_chunk::<8>() else {
            return Err(DecodeError::Malformed("truncated frame"));
        };
        self.0 = rest;
        Ok(u64::from_le_bytes(*head))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.byte()?);
        let Some((s, rest)) = self.0.split_at_checked(len) else {
            return Err(DecodeError::Malformed("truncated string"));
        };
        self.0 = rest;
        std::str::from_utf8(s)
            .map(str::to_string)
            .map_err(|_| DecodeError::Malformed("string is not UTF-8"))
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed("trailing bytes"))
        }
    }
}

pub(crate) fn decode(frame: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let [version, rest @ ..] = frame else {
        return Err(DecodeError::Malformed("empty frame"));
    };
    if *version != RESUME_WIRE_VERSION {
        return Err(DecodeError::Version(*version));
    }
    let mut r = Reader(rest);
    let kind = r.byte()?;
    let decoded = match kind {
        HELLO => LinkFrame::Hello(Hello {
            session: r.string()?,
            from: r.string()?,
            to: r.string()?,
            incarnation: r.u64_le()?,
            peer_incarnation: r.u64_le()?,
            received: r.varint()?,
        }),
        REJECT => LinkFrame::Reject {
            reason: RejectReason::from_code(r.byte()?),
            text: r.string()?,
        },
        DATA => {
            let seq = r.varint()?;
            let ack = r.varint()?;
            let payload = r.0;
            r.0 = &[];
            LinkFrame::Data { seq, ack, payload }
        }
        ACK => LinkFrame::Ack { ack: r.varint()? },
        CLOSE => LinkFrame::Close {
            seq: r.varint()?,
            ack: r.varint()?,
        },
        GONE => LinkFrame::Gone { ack: r.varint()? },
        _ => return Err(DecodeError::Malformed("unknown frame kind")),
    };
    r.end()?;
    Ok(decoded)
}

/// The offset of a data frame's payload, for taking it out without a copy
/// of the header.
pub(crate) fn data_payload_offset(frame: &[u8]) -> usize {
    let mut offset = 2;
    for _ in 0..2 {
        while frame.get(offset).is_some_and(|b| b & 0x80 != 0) {
            offset += 1;
        }
        offset += 1;
    }
    offset.min(frame.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips() {
        let hello = Hello {
            session: "auction-7".into(),
            from: "Alice".into(),
            to: "Bob".into(),
            incarnation: 0x0102_0304_0506_0708,
            peer_incarnation: 0,
            received: 300,
        };
        assert_eq!(decode(&encode_hello(&hello)), Ok(LinkFrame::Hello(hello)));
        assert_eq!(
            decode(&encode_reject(RejectReason::PeerRestarted, "why")),
            Ok(LinkFrame::Reject {
                reason: RejectReason::PeerRestarted,
                text: "why".into()
            })
        );
        let data = encode_data(u64::MAX, 127, b"xyz");
        assert_eq!(
            decode(&data),
            Ok(LinkFrame::Data {
                seq: u64::MAX,
                ack: 127,
                payload: b"xyz"
            })
        );
        assert_eq!(&data[data_payload_offset(&data)..], b"xyz");
        assert_eq!(decode(&encode_ack(5)), Ok(LinkFrame::Ack { ack: 5 }));
        assert_eq!(
            decode(&encode_close(9, 8)),
            Ok(LinkFrame::Close { seq: 9, ack: 8 })
        );
        assert_eq!(decode(&encode_gone(1)), Ok(LinkFrame::Gone { ack: 1 }));
    }

    #[test]
    fn the_data_frame_layout_is_the_documented_one() {
        // seq 300 = ac 02, ack 1 = 01, then the payload as is.
        assert_eq!(
            encode_data(300, 1, &[0x01, 0x00, 0x2a]),
            [0x02, 0x12, 0xac, 0x02, 0x01, 0x01, 0x00, 0x2a]
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(decode(&[]), Err(DecodeError::Malformed("empty frame")));
        assert_eq!(decode(&[0x01, 0x00, 0x2a]), Err(DecodeError::Version(1)));
        assert!(decode(&[0x02]).is_err());
        assert!(decode(&[0x02, 0x99]).is_err());
        assert!(decode(&[0x02, ACK, 0x80]).is_err());
        assert!(decode(&[0x02, ACK, 0x80, 0x00]).is_err());
        assert!(
            decode(&[
                0x02, ACK, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
            ])
            .is_err()
        );
        assert!(decode(&[0x02, ACK, 1, 0]).is_err());
        assert!(decode(&[0x02, HELLO, 3, b'a']).is_err());
        for cut in 0..encode_hello(&Hello {
            session: "s".into(),
            from: "a".into(),
            to: "b".into(),
            incarnation: 1,
            peer_incarnation: 2,
            received: 3,
        })
        .len()
        {
            let full = encode_hello(&Hello {
                session: "s".into(),
                from: "a".into(),
                to: "b".into(),
                incarnation: 1,
                peer_incarnation: 2,
                received: 3,
            });
            assert!(decode(&full[..cut]).is_err(), "cut at {cut}");
        }
    }
}
