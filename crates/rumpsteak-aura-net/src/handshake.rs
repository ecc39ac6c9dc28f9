//! The role handshake that opens every network session.
//!
//! The dialing side greets, the accepting side answers, the dialing side
//! confirms; each message is one frame of the session's own framing (over
//! TLS, inside the encrypted stream):
//!
//! ```text
//! dialer   -> acceptor   hello  (from: dialer role, to: role it expects, session, wire version)
//! acceptor -> dialer     accept (from: acceptor role) | reject (why)
//! dialer   -> acceptor   accept (from: dialer role)   | reject (why)
//! ```
//!
//! A role is taken only once the acceptor has the dialer's confirmation:
//! a dialer that greets and never confirms holds nothing.
//!
//! Every handshake frame starts with the same header, and a reject frame
//! with the same two strings, which no version will change, so that a peer
//! of another version can still read why it was refused:
//!
//! | bytes | meaning |
//! |-------|---------|
//! | 0..4  | magic `RSKA` |
//! | 4     | the sender's handshake version, [`HANDSHAKE_VERSION`] |
//! | 5     | kind: `1` hello, `2` accept, `3` reject |
//! | ...   | fields: strings are a length byte then UTF-8 |
//!
//! Fields of version 2: hello `from`, `to`, `session`, then one byte, the
//! wire format version of the frames to follow; accept `from`; reject
//! `from`, `reason` (text for people), then a code byte (`0` for a
//! malformed or foreign greeting, else a [`RefusalReason`]), `expected`,
//! `presented`. Version 1 had no session and no wire byte in the hello,
//! and nothing after `reason`.

use std::fmt;
use std::future::{Future, poll_fn};

use rumpsteak_aura::{Refusal, RefusalReason, TransportError, TransportErrorKind};

use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport};

use crate::tcp::FramedTransport;

/// The first four bytes of every handshake frame.
pub(crate) const MAGIC: [u8; 4] = *b"RSKA";

/// The version of the handshake this crate speaks. Version 2 added the
/// session identifier and the typed refusal.
pub const HANDSHAKE_VERSION: u8 = 2;

/// The largest handshake frame a side accepts while the handshake runs.
pub(crate) const MAX_HANDSHAKE_FRAME: usize = 1024;

/// The longest role name or session identifier, in UTF-8 bytes.
pub(crate) const MAX_NAME_LEN: usize = 255;

const HELLO: u8 = 1;
const ACCEPT: u8 = 2;
const REJECT: u8 = 3;

/// Something that moves whole frames: a transport before it is boxed into a
/// session, or a session.
pub(crate) trait FrameIo: Send {
    fn send(&mut self, frame: Vec<u8>) -> impl Future<Output = Result<(), TransportError>> + Send;
    fn recv(&mut self) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

impl<R, W> FrameIo for FramedTransport<R, W>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.start_send(frame)?;
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    async fn recv(&mut self) -> Result<Vec<u8>, TransportError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl FrameIo for RumpsteakSession {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.send_frame(frame).await
    }

    async fn recv(&mut self) -> Result<Vec<u8>, TransportError> {
        self.recv_frame().await
    }
}

/// Text a peer controls (a role name, a refusal reason), made safe to put
/// in an error message or a log line: control characters (newlines,
/// terminal escapes) and the Unicode bidirectional overrides are written
/// as Rust escapes, everything else as is.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        Ok(())
    }
}

/// Refuses role names and session identifiers the handshake cannot carry.
pub(crate) fn check_name(name: &str) -> Result<(), TransportError> {
    if name.len() > MAX_NAME_LEN {
        return Err(TransportError::handshake(format!(
            "name `{}...` is longer than {MAX_NAME_LEN} bytes",
            Escaped(truncate(name, 32))
        )));
    }
    Ok(())
}

/// What this side of a handshake is: its role, the session it belongs to,
/// and, over TLS, the roles the peer's certificate proves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Local<'a> {
    pub(crate) role: &'a str,
    pub(crate) session: &'a str,
    /// `Some` over TLS: the roles the peer's verified certificate names.
    pub(crate) peer_proven: Option<&'a [String]>,
    /// The version of the frames after the handshake, which the hello
    /// announces and the acceptor requires.
    pub(crate) wire: u8,
}

/// A decoded handshake frame.
#[derive(Debug, PartialEq, Eq)]
enum Greeting<'a> {
    Hello {
        from: &'a str,
        to: &'a str,
        session: &'a str,
        wire: u8,
    },
    /// A hello of another handshake version, whose fields are not read.
    ForeignHello {
        version: u8,
    },
    Accept {
        version: u8,
        from: &'a str,
    },
    Reject {
        from: &'a str,
        reason: &'a str,
        /// Absent from a version 1 peer.
        refusal: Option<(u8, &'a str, &'a str)>,
    },
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Builds a frame: the header, then the fields.
struct Encoder(Vec<u8>);

impl Encoder {
    fn new(kind: u8) -> Self {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.push(HANDSHAKE_VERSION);
        out.push(kind);
        Encoder(out)
    }

    fn string(mut self, s: &str) -> Self {
        // Names were checked; reasons are cut to fit.
        let s = truncate(s, MAX_NAME_LEN);
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }
}

fn hello(local: &Local<'_>, to: &str) -> Vec<u8> {
    Encoder::new(HELLO)
        .string(local.role)
        .string(to)
        .string(local.session)
        .byte(local.wire)
        .0
}

fn accept_frame(me: &str) -> Vec<u8> {
    Encoder::new(ACCEPT).string(me).0
}

/// A reject frame; `refusal` is `None` for a greeting that was not
/// understood at all.
fn reject_frame(me: &str, reason: &str, refusal: Option<&Refusal>) -> Vec<u8> {
    // The frame must fit the handshake frame limit whatever the names: the
    // reason text gets what the other fields leave.
    let fixed = |s: &str| 1 + s.len().min(MAX_NAME_LEN);
    let others =
        6 + fixed(me) + 1 + 1 + refusal.map_or(2, |r| fixed(r.expected()) + fixed(r.presented()));
    let room = MAX_HANDSHAKE_FRAME.saturating_sub(others).min(MAX_NAME_LEN);
    let reason = truncate(reason, room);
    let e = Encoder::new(REJECT).string(me).string(reason);
    match refusal {
        Some(r) => {
            e.byte(code(r.reason()))
                .string(r.expected())
                .string(r.presented())
                .0
        }
        None => e.byte(0).string("").string("").0,
    }
}

const REASONS: [RefusalReason; 10] = [
    RefusalReason::WrongRole,
    RefusalReason::WrongSession,
    RefusalReason::Version,
    RefusalReason::DuplicateRole,
    RefusalReason::UntrustedCertificate,
    RefusalReason::ExpiredCertificate,
    RefusalReason::CertificateRole,
    RefusalReason::NoCertificate,
    RefusalReason::PlainTextPeer,
    RefusalReason::TlsPeer,
];

fn code(reason: RefusalReason) -> u8 {
    REASONS
        .iter()
        .position(|r| *r == reason)
        .map_or(255, |i| i as u8 + 1)
}

fn reason_of(code: u8) -> RefusalReason {
    usize::from(code)
        .checked_sub(1)
        .and_then(|i| REASONS.get(i))
        .copied()
        .unwrap_or(RefusalReason::ByPeer)
}

/// Reads one handshake frame. The error is a reason fit for both sides.
fn decode(frame: &[u8]) -> Result<Greeting<'_>, String> {
    let Some(rest) = frame.strip_prefix(&MAGIC) else {
        return Err("the peer is not a rumpsteak-aura session (unexpected greeting)".into());
    };
    let [version, kind, rest @ ..] = rest else {
        return Err("malformed handshake: truncated header".into());
    };
    let mut fields = Fields(rest);
    let greeting = match *kind {
        HELLO if *version != HANDSHAKE_VERSION => {
            return Ok(Greeting::ForeignHello { version: *version });
        }
        HELLO => Greeting::Hello {
            from: fields.string()?,
            to: fields.string()?,
            session: fields.string()?,
            wire: fields.byte()?,
        },
        ACCEPT => Greeting::Accept {
            version: *version,
            from: fields.string()?,
        },
        REJECT => {
            let from = fields.string()?;
            let reason = fields.string()?;
            let refusal = if fields.0.is_empty() {
                None
            } else {
                Some((fields.byte()?, fields.string()?, fields.string()?))
            };
            Greeting::Reject {
                from,
                reason,
                refusal,
            }
        }
        other => return Err(format!("malformed handshake: unknown kind {other}")),
    };
    if !fields.0.is_empty() {
        return Err("malformed handshake: trailing bytes".into());
    }
    Ok(greeting)
}

/// The fields of a frame, read in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let [b, tail @ ..] = self.0 else {
            return Err("malformed handshake: missing field".to_string());
        };
        self.0 = tail;
        Ok(*b)
    }

    fn string(&mut self) -> Result<&'a str, String> {
        let len = usize::from(self.byte()?);
        if self.0.len() < len {
            return Err("malformed handshake: truncated field".to_string());
        }
        let (s, tail) = self.0.split_at(len);
        self.0 = tail;
        std::str::from_utf8(s).map_err(|_| "malformed handshake: field is not UTF-8".to_string())
    }
}

fn version_refusal(found: u8, what: &str, ours: u8) -> Refusal {
    Refusal::new(
        RefusalReason::Version,
        format!("{what} version {ours}"),
        format!("{what} version {found}"),
    )
}

/// Why a handshake failed, before it becomes the error of this side and
/// the reject frame for the other.
enum Failure {
    /// The greeting was not understood.
    Garbled(String),
    /// The greeting was understood and refused.
    Refused(Refusal),
}

impl Failure {
    fn text(&self) -> String {
        match self {
            Failure::Garbled(reason) => reason.clone(),
            Failure::Refused(r) => format!(
                "{}: expected `{}`, presented `{}`",
                r.reason(),
                Escaped(r.expected()),
                Escaped(r.presented())
            ),
        }
    }

    fn into_error(self, addr: impl fmt::Display) -> TransportError {
        match self {
            Failure::Garbled(reason) => {
                TransportError::handshake(format!("refused {addr}: {reason}"))
            }
            Failure::Refused(r) => {
                TransportError::refused(r.with_detail(format!("refused {addr}")))
            }
        }
    }
}

/// Sends a refusal, ignoring failures: the connection is dropped next anyway.
async fn refuse<T: FrameIo>(io: &mut T, me: &str, failure: &Failure) {
    let refusal = match failure {
        Failure::Refused(r) => Some(r),
        Failure::Garbled(_) => None,
    };
    let _ = io.send(reject_frame(me, &failure.text(), refusal)).await;
}

/// Refuses a connection before its hello is read (a plain-text dialer at
/// a TLS listener, a TLS dialer at a plain one), telling the peer why.
pub(crate) async fn refuse_plainly<T: FrameIo>(
    io: &mut T,
    me: &str,
    refusal: Refusal,
) -> Result<(), TransportError> {
    refuse(io, me, &Failure::Refused(refusal)).await;
    Ok(())
}

/// Reads a reject frame that a plain listener sent a TLS dialer, from the
/// bytes the dialer's TLS layer could not parse: the 4-byte length prefix,
/// then the frame.
#[cfg(feature = "tls")]
pub(crate) fn plain_refusal(bytes: &[u8], addr: impl fmt::Display) -> Option<TransportError> {
    let (head, rest) = bytes.split_at_checked(4)?;
    let len = usize::try_from(u32::from_be_bytes(head.try_into().ok()?)).ok()?;
    // Nothing authenticates these bytes, so only the one refusal a plain
    // listener sends a TLS dialer is believed; anything else is reported
    // as the handshake failure it is.
    match decode(rest.get(..len)?) {
        Ok(Greeting::Reject {
            from,
            reason,
            refusal: Some((code, expected, presented)),
        }) if reason_of(code) == RefusalReason::TlsPeer => Some(rejected(
            addr,
            from,
            reason,
            Some((code, expected, presented)),
        )),
        _ => None,
    }
}

/// The error for a reject frame the peer sent.
fn rejected(
    addr: impl fmt::Display,
    from: &str,
    reason: &str,
    refusal: Option<(u8, &str, &str)>,
) -> TransportError {
    let detail = format!("by {addr} (`{}`): {}", Escaped(from), Escaped(reason));
    match refusal {
        Some((code, expected, presented)) if code != 0 => TransportError::refused(
            Refusal::new(reason_of(code), expected, presented)
                .from_peer()
                .with_detail(detail),
        ),
        _ => TransportError::handshake(format!(
            "{addr} (`{}`) refused the session: {}",
            Escaped(from),
            Escaped(reason)
        )),
    }
}

/// Receives a handshake frame; an oversize one means the peer speaks
/// something else entirely (an HTTP request read as a length prefix, say).
async fn recv_greeting<T: FrameIo>(io: &mut T) -> Result<Result<Vec<u8>, String>, TransportError> {
    match io.recv().await {
        Ok(frame) => Ok(Ok(frame)),
        Err(e) => match e.kind() {
            TransportErrorKind::FrameTooLarge { size, .. } => Ok(Err(format!(
                "the peer is not a rumpsteak-aura session (a greeting of {size} bytes)"
            ))),
            _ => Err(e),
        },
    }
}

/// The dialing side: greets as `local.role`, expecting the acceptor to be
/// `peer`.
pub(crate) async fn dial<T: FrameIo>(
    io: &mut T,
    local: Local<'_>,
    peer: &str,
    addr: impl fmt::Display,
) -> Result<(), TransportError> {
    io.send(hello(&local, peer)).await?;
    let reply = recv_greeting(io).await?;
    let failure = match reply.as_deref().map_err(Clone::clone).and_then(decode) {
        Ok(Greeting::Reject {
            from,
            reason,
            refusal,
        }) => return Err(rejected(addr, from, reason, refusal)),
        Ok(Greeting::Accept { version: v, .. }) if v != HANDSHAKE_VERSION => {
            Failure::Refused(version_refusal(v, "handshake", HANDSHAKE_VERSION))
        }
        Ok(Greeting::Accept { from, .. }) if from != peer => {
            Failure::Refused(Refusal::new(RefusalReason::WrongRole, peer, from))
        }
        Ok(Greeting::Accept { .. }) => {
            io.send(accept_frame(local.role)).await?;
            return Ok(());
        }
        Ok(Greeting::Hello { .. } | Greeting::ForeignHello { .. }) => {
            Failure::Garbled("the peer greeted instead of answering".to_string())
        }
        Err(reason) => Failure::Garbled(reason),
    };
    refuse(io, local.role, &failure).await;
    Err(failure.into_error(addr))
}

/// The accepting side, first half: reads the dialer's hello and checks
/// everything that does not depend on which roles the caller expects (the
/// versions, the role the dialer wants, the session, and over TLS the
/// roles its certificate proves). Returns the role the dialer claims.
pub(crate) async fn read_hello<T: FrameIo>(
    io: &mut T,
    local: Local<'_>,
    addr: impl fmt::Display,
) -> Result<String, TransportError> {
    let hello = recv_greeting(io).await?;
    let checked = match hello.as_deref().map_err(Clone::clone).and_then(decode) {
        Ok(Greeting::ForeignHello { version }) => Err(Failure::Refused(version_refusal(
            version,
            "handshake",
            HANDSHAKE_VERSION,
        ))),
        Ok(Greeting::Hello { wire, .. }) if wire != local.wire => Err(Failure::Refused(
            version_refusal(wire, "wire format", local.wire),
        )),
        Ok(Greeting::Hello { to, .. }) if to != local.role => Err(Failure::Refused(Refusal::new(
            RefusalReason::WrongRole,
            local.role,
            to,
        ))),
        Ok(Greeting::Hello { session, .. }) if session != local.session => Err(Failure::Refused(
            Refusal::new(RefusalReason::WrongSession, local.session, session),
        )),
        Ok(Greeting::Hello { from, .. }) => match local.peer_proven {
            Some(proven) if !proven.iter().any(|r| r == from) => {
                Err(Failure::Refused(Refusal::new(
                    RefusalReason::CertificateRole,
                    from,
                    format!("certificate of {}", Names(proven)),
                )))
            }
            _ => Ok(from.to_string()),
        },
        Ok(Greeting::Reject {
            from,
            reason,
            refusal,
        }) => {
            // The dialer refused this side before greeting (over TLS, it
            // did not believe this side's certificate).
            return Err(rejected(addr, from, reason, refusal));
        }
        Ok(Greeting::Accept { .. }) => Err(Failure::Garbled(
            "the peer answered instead of greeting".to_string(),
        )),
        Err(reason) => Err(Failure::Garbled(reason)),
    };
    match checked {
        Ok(from) => Ok(from),
        Err(failure) => {
            refuse(io, local.role, &failure).await;
            Err(failure.into_error(addr))
        }
    }
}

/// The accepting side, second half: the caller's verdict on the role the
/// dialer claimed. Accepted, it answers and waits for the confirmation;
/// refused, it tells the dialer why and fails with the refusal.
pub(crate) async fn finish_accept<T: FrameIo>(
    io: &mut T,
    me: &str,
    from: &str,
    verdict: Result<(), Refusal>,
    addr: impl fmt::Display,
) -> Result<(), TransportError> {
    if let Err(refusal) = verdict {
        let failure = Failure::Refused(refusal);
        refuse(io, me, &failure).await;
        return Err(failure.into_error(addr));
    }
    io.send(accept_frame(me)).await?;
    let confirm = io.recv().await?;
    match decode(&confirm) {
        Ok(Greeting::Accept { .. }) => Ok(()),
        Ok(Greeting::Reject {
            from: by,
            reason,
            refusal,
        }) => Err(rejected(addr, by, reason, refusal)),
        Ok(Greeting::Hello { .. } | Greeting::ForeignHello { .. }) => {
            Err(TransportError::handshake(format!(
                "{addr} (`{}`): malformed handshake: a second greeting",
                Escaped(from)
            )))
        }
        Err(reason) => Err(TransportError::handshake(format!(
            "{addr} (`{}`): {reason}",
            Escaped(from)
        ))),
    }
}

/// A check of the role a dialer claims, made by the caller of `accept`.
pub(crate) type Allow<'a> = dyn FnMut(&str) -> Result<(), Refusal> + Send + 'a;

/// The usual check: exactly one expected role.
pub(crate) fn expect_role(expected: &str) -> impl FnMut(&str) -> Result<(), Refusal> + Send + '_ {
    move |from| {
        if from == expected {
            Ok(())
        } else {
            Err(Refusal::new(RefusalReason::WrongRole, expected, from))
        }
    }
}

/// A check against a set of roles.
pub(crate) fn expect_one_of<'a, S: AsRef<str> + Sync>(
    expected: &'a [S],
) -> impl FnMut(&str) -> Result<(), Refusal> + Send + 'a {
    move |from| {
        if expected.iter().any(|e| e.as_ref() == from) {
            Ok(())
        } else {
            Err(Refusal::new(
                RefusalReason::WrongRole,
                format!("one of {}", Names(expected)),
                from,
            ))
        }
    }
}

/// Role names as `` `A`, `B` ``.
pub(crate) struct Names<'a, S>(pub(crate) &'a [S]);

impl<S: AsRef<str>> fmt::Display for Names<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{}`", Escaped(name.as_ref()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumpsteak_aura_transport::SimpleChannel;
    use rumpsteak_aura_transport::wire::WIRE_VERSION;

    fn refusal(e: &TransportError) -> &Refusal {
        e.refusal()
            .unwrap_or_else(|| panic!("expected a refusal, got {e}"))
    }

    fn local<'a>(role: &'a str, session: &'a str) -> Local<'a> {
        Local {
            role,
            session,
            peer_proven: None,
            wire: WIRE_VERSION,
        }
    }

    #[test]
    fn frames_roundtrip_and_garbage_is_refused() {
        let frame = hello(&local("Alice", "s1"), "Bob");
        assert_eq!(
            decode(&frame),
            Ok(Greeting::Hello {
                from: "Alice",
                to: "Bob",
                session: "s1",
                wire: WIRE_VERSION,
            })
        );
        let r = Refusal::new(RefusalReason::WrongSession, "s1", "s2");
        assert_eq!(
            decode(&reject_frame("Bob", "why", Some(&r))),
            Ok(Greeting::Reject {
                from: "Bob",
                reason: "why",
                refusal: Some((2, "s1", "s2")),
            })
        );
        // A version 1 reject: no refusal fields.
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&[1, REJECT, 1, b'B', 2, b'n', b'o']);
        assert_eq!(
            decode(&v1),
            Ok(Greeting::Reject {
                from: "B",
                reason: "no",
                refusal: None
            })
        );
        // A hello of another version is recognised without reading it.
        let mut v9 = MAGIC.to_vec();
        v9.extend_from_slice(&[9, HELLO, 0xff]);
        assert_eq!(decode(&v9), Ok(Greeting::ForeignHello { version: 9 }));

        assert!(
            decode(b"GET / HTTP/1.1")
                .unwrap_err()
                .contains("not a rumpsteak-aura")
        );
        assert!(
            decode(&frame[..frame.len() - 1])
                .unwrap_err()
                .contains("missing field")
        );
        assert!(
            decode(&frame[..frame.len() - 2])
                .unwrap_err()
                .contains("truncated field")
        );
        let mut padded = frame.clone();
        padded.push(0);
        assert!(decode(&padded).unwrap_err().contains("trailing"));
        assert!(
            decode(&Encoder::new(9).0)
                .unwrap_err()
                .contains("unknown kind")
        );
        assert!(
            decode(b"RSKA\x02")
                .unwrap_err()
                .contains("truncated header")
        );
    }

    #[test]
    fn refusal_codes_roundtrip_and_unknown_codes_are_the_peers_own() {
        for r in REASONS {
            assert_eq!(reason_of(code(r)), r);
        }
        assert_eq!(reason_of(200), RefusalReason::ByPeer);
        assert_eq!(code(RefusalReason::ByPeer), 255);
    }

    #[test]
    fn a_reject_frame_fits_the_handshake_limit_whatever_the_names() {
        let long = "n".repeat(MAX_NAME_LEN);
        let r = Refusal::new(RefusalReason::WrongRole, long.as_str(), long.as_str());
        let frame = reject_frame(&long, &"why ".repeat(100), Some(&r));
        assert!(frame.len() <= MAX_HANDSHAKE_FRAME, "{} bytes", frame.len());
        let Ok(Greeting::Reject {
            refusal: Some((_, expected, presented)),
            ..
        }) = decode(&frame)
        else {
            panic!("not a reject frame with a refusal");
        };
        assert_eq!((expected, presented), (long.as_str(), long.as_str()));
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let long = "é".repeat(200);
        let frame = reject_frame("A", &long, None);
        let Ok(Greeting::Reject { reason, .. }) = decode(&frame) else {
            panic!("not a reject frame");
        };
        assert_eq!(reason.len(), 254);
        assert!(check_name(&long).is_err());
        assert!(check_name("Buyer").is_ok());
    }

    /// The accepting side in one go, as a listener does it in two halves.
    async fn accept_direct<T: FrameIo>(
        io: &mut T,
        me: Local<'_>,
        allow: &mut Allow<'_>,
    ) -> Result<String, TransportError> {
        let from = read_hello(io, me, "dialer").await?;
        let verdict = allow(&from);
        finish_accept(io, me.role, &from, verdict, "dialer").await?;
        Ok(from)
    }

    async fn run(
        dialer: (&str, &str, &str),
        acceptor: (&'static str, &'static str, &'static str),
    ) -> (Result<(), TransportError>, Result<String, TransportError>) {
        let (a, b) = SimpleChannel::pair();
        let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
        let (me, peer, session) = acceptor;
        let accepting = tokio::spawn(async move {
            let mut allow = expect_role(peer);
            accept_direct(&mut b, local(me, session), &mut allow).await
        });
        let (me, peer, session) = dialer;
        let dialed = dial(&mut a, local(me, session), peer, "acceptor").await;
        (dialed, accepting.await.unwrap())
    }

    #[tokio::test]
    async fn matching_roles_and_sessions_agree() {
        let (d, a) = run(("Alice", "Bob", "s"), ("Bob", "Alice", "s")).await;
        d.unwrap();
        assert_eq!(a.unwrap(), "Alice");
    }

    #[tokio::test]
    async fn an_unexpected_role_is_refused_on_both_sides() {
        let (d, a) = run(("Mallory", "Bob", ""), ("Bob", "Alice", "")).await;
        let (d, a) = (d.unwrap_err(), a.unwrap_err());
        for (e, by_peer) in [(&d, true), (&a, false)] {
            let r = refusal(e);
            assert_eq!(r.reason(), RefusalReason::WrongRole, "{e}");
            assert_eq!((r.expected(), r.presented()), ("Alice", "Mallory"));
            assert_eq!(r.is_from_peer(), by_peer);
        }
        assert!(d.to_string().contains("by acceptor (`Bob`)"), "{d}");
    }

    #[tokio::test]
    async fn dialing_the_wrong_role_is_refused_on_both_sides() {
        let (d, a) = run(("Alice", "Carol", ""), ("Bob", "Alice", "")).await;
        for e in [d.unwrap_err(), a.unwrap_err()] {
            let r = refusal(&e);
            assert_eq!(r.reason(), RefusalReason::WrongRole, "{e}");
            assert_eq!((r.expected(), r.presented()), ("Bob", "Carol"));
        }
    }

    #[tokio::test]
    async fn another_session_is_refused_on_both_sides() {
        let (d, a) = run(("Alice", "Bob", "order-7"), ("Bob", "Alice", "order-8")).await;
        for e in [d.unwrap_err(), a.unwrap_err()] {
            let r = refusal(&e);
            assert_eq!(r.reason(), RefusalReason::WrongSession, "{e}");
            assert_eq!((r.expected(), r.presented()), ("order-8", "order-7"));
        }
    }

    #[tokio::test]
    async fn another_handshake_version_is_refused_on_both_sides() {
        let (a, b) = SimpleChannel::pair();
        let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
        let accepting = tokio::spawn(async move {
            let mut allow = expect_role("Alice");
            accept_direct(&mut b, local("Bob", ""), &mut allow).await
        });
        // A future dialer: version 3, fields this side cannot know.
        let mut future = MAGIC.to_vec();
        future.extend_from_slice(&[3, HELLO, 7, 7, 7]);
        a.send_frame(future).await.unwrap();
        let reply = a.recv_frame().await.unwrap();
        let Ok(Greeting::Reject {
            refusal: Some((code, expected, presented)),
            ..
        }) = decode(&reply)
        else {
            panic!("not a refusal: {reply:?}");
        };
        assert_eq!(reason_of(code), RefusalReason::Version);
        assert_eq!(expected, "handshake version 2");
        assert_eq!(presented, "handshake version 3");
        let e = accepting.await.unwrap().unwrap_err();
        assert_eq!(refusal(&e).reason(), RefusalReason::Version);
    }

    #[tokio::test]
    async fn a_certificate_of_another_role_is_refused() {
        let (a, b) = SimpleChannel::pair();
        let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
        let accepting = tokio::spawn(async move {
            let proven = vec!["Alice".to_string()];
            let me = Local {
                role: "Bob",
                session: "",
                peer_proven: Some(&proven),
                wire: WIRE_VERSION,
            };
            let mut allow = expect_one_of(&["Alice", "Carol"]);
            accept_direct(&mut b, me, &mut allow).await
        });
        let d = dial(&mut a, local("Carol", ""), "Bob", "acceptor").await;
        let a = accepting.await.unwrap();
        for e in [d.unwrap_err(), a.unwrap_err()] {
            let r = refusal(&e);
            assert_eq!(r.reason(), RefusalReason::CertificateRole, "{e}");
            assert_eq!(r.expected(), "Carol");
            assert_eq!(r.presented(), "certificate of `Alice`");
        }
    }

    #[tokio::test]
    async fn a_dialer_may_refuse_before_greeting() {
        let (a, b) = SimpleChannel::pair();
        let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
        let accepting = tokio::spawn(async move {
            let mut allow = expect_role("Alice");
            accept_direct(&mut b, local("Bob", ""), &mut allow).await
        });
        let r = Refusal::new(
            RefusalReason::UntrustedCertificate,
            "a trusted CA",
            "another CA",
        );
        refuse_plainly(&mut a, "Alice", r).await.unwrap();
        let e = accepting.await.unwrap().unwrap_err();
        let got = refusal(&e);
        assert_eq!(got.reason(), RefusalReason::UntrustedCertificate);
        assert!(got.is_from_peer());
        assert_eq!(got.presented(), "another CA");
    }

    #[tokio::test]
    async fn peer_text_is_escaped_in_errors() {
        let evil = "Mallory\n\u{1b}[31mroot\u{202e}";
        let (d, a) = run((evil, "Bob", ""), ("Bob", "Alice", "")).await;
        for e in [d.unwrap_err(), a.unwrap_err()] {
            let text = e.to_string();
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{text:?}"
            );
            assert!(
                text.contains(r"Mallory\u{a}\u{1b}[31mroot\u{202e}"),
                "{text}"
            );
        }
    }

    #[test]
    fn one_of_names_the_set() {
        let mut allow = expect_one_of(&["Bob", "Carol"]);
        assert!(allow("Carol").is_ok());
        let r = allow("Dave").unwrap_err();
        assert_eq!(r.expected(), "one of `Bob`, `Carol`");
        assert_eq!(r.presented(), "Dave");
    }
}
