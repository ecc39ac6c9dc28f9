//! The role handshake that opens every network session.
//!
//! The dialing side greets, the accepting side answers, the dialing side
//! confirms; each message is one frame of the session's own framing:
//!
//! ```text
//! dialer   -> acceptor   hello  (from: dialer role, to: role it expects)
//! acceptor -> dialer     accept (from: acceptor role) | reject (reason)
//! dialer   -> acceptor   accept (from: dialer role)   | reject (reason)
//! ```
//!
//! Every handshake frame has the same layout, which no wire version will
//! change, so that a peer of another version can still read why it was
//! refused:
//!
//! | bytes | meaning |
//! |-------|---------|
//! | 0..4  | magic `RSKA` |
//! | 4     | the sender's wire format version |
//! | 5     | kind: `1` hello, `2` accept, `3` reject |
//! | ...   | strings, each a length byte then UTF-8: hello `from`, `to`; accept `from`; reject `from`, `reason` |

use std::fmt;
use std::future::{Future, poll_fn};

use rumpsteak_aura::{TransportError, TransportErrorKind};

use rumpsteak_aura_transport::{RumpsteakSession, SessionTransport};

use crate::tcp::TcpTransport;

/// The first four bytes of every handshake frame.
pub(crate) const MAGIC: [u8; 4] = *b"RSKA";

/// The largest handshake frame a side accepts while the handshake runs.
pub(crate) const MAX_HANDSHAKE_FRAME: usize = 1024;

/// The longest role name, in UTF-8 bytes.
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

impl FrameIo for TcpTransport {
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

/// Refuses role names the handshake cannot carry.
pub(crate) fn check_name(name: &str) -> Result<(), TransportError> {
    if name.len() > MAX_NAME_LEN {
        return Err(TransportError::handshake(format!(
            "role name `{}...` is longer than {MAX_NAME_LEN} bytes",
            truncate(name, 32)
        )));
    }
    Ok(())
}

/// A decoded handshake frame.
#[derive(Debug, PartialEq, Eq)]
enum Greeting<'a> {
    Hello {
        version: u8,
        from: &'a str,
        to: &'a str,
    },
    Accept {
        version: u8,
        from: &'a str,
    },
    Reject {
        from: &'a str,
        reason: &'a str,
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

fn encode(version: u8, kind: u8, strings: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + strings.iter().map(|s| 1 + s.len()).sum::<usize>());
    out.extend_from_slice(&MAGIC);
    out.push(version);
    out.push(kind);
    for s in strings {
        // Names were checked; reasons are cut to fit.
        let s = truncate(s, MAX_NAME_LEN);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// Reads one handshake frame. The error is a reason fit for both sides.
fn decode(frame: &[u8]) -> Result<Greeting<'_>, String> {
    let Some(rest) = frame.strip_prefix(&MAGIC) else {
        return Err("the peer is not a rumpsteak-aura session (unexpected greeting)".into());
    };
    let [version, kind, rest @ ..] = rest else {
        return Err("malformed handshake: truncated header".into());
    };
    let mut rest = rest;
    let mut string = || -> Result<&str, String> {
        let [len, tail @ ..] = rest else {
            return Err("malformed handshake: missing field".to_string());
        };
        let len = usize::from(*len);
        if tail.len() < len {
            return Err("malformed handshake: truncated field".to_string());
        }
        let (s, tail) = tail.split_at(len);
        rest = tail;
        std::str::from_utf8(s).map_err(|_| "malformed handshake: field is not UTF-8".to_string())
    };
    let greeting = match *kind {
        HELLO => Greeting::Hello {
            version: *version,
            from: string()?,
            to: string()?,
        },
        ACCEPT => Greeting::Accept {
            version: *version,
            from: string()?,
        },
        REJECT => Greeting::Reject {
            from: string()?,
            reason: string()?,
        },
        other => return Err(format!("malformed handshake: unknown kind {other}")),
    };
    if !rest.is_empty() {
        return Err("malformed handshake: trailing bytes".into());
    }
    Ok(greeting)
}

fn version_reason(found: u8, ours: u8) -> String {
    format!("wire format version {found} is not supported (this side speaks version {ours})")
}

/// Sends a refusal, ignoring failures: the connection is dropped next anyway.
async fn refuse<T: FrameIo>(io: &mut T, version: u8, me: &str, reason: &str) {
    let _ = io.send(encode(version, REJECT, &[me, reason])).await;
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

/// The dialing side: greets as `me`, expecting the acceptor to be `peer`.
pub(crate) async fn dial<T: FrameIo>(
    io: &mut T,
    me: &str,
    peer: &str,
    addr: impl fmt::Display,
    version: u8,
) -> Result<(), TransportError> {
    io.send(encode(version, HELLO, &[me, peer])).await?;
    let reply = recv_greeting(io).await?;
    let problem = match reply.as_deref().map_err(Clone::clone).and_then(decode) {
        Ok(Greeting::Reject { from, reason }) => {
            return Err(TransportError::handshake(format!(
                "{addr} (`{}`) refused the session: {}",
                Escaped(from),
                Escaped(reason)
            )));
        }
        Ok(Greeting::Accept { version: v, .. }) if v != version => version_reason(v, version),
        Ok(Greeting::Accept { from, .. }) if from != peer => {
            format!(
                "expected peer role `{peer}`, the peer is `{}`",
                Escaped(from)
            )
        }
        Ok(Greeting::Accept { .. }) => {
            io.send(encode(version, ACCEPT, &[me])).await?;
            return Ok(());
        }
        Ok(Greeting::Hello { .. }) => "the peer greeted instead of answering".to_string(),
        Err(reason) => reason,
    };
    refuse(io, version, me, &problem).await;
    Err(TransportError::handshake(format!(
        "refused {addr}: {problem}"
    )))
}

/// The accepting side: waits for a greeting addressed to `me` from a role
/// that `allow` accepts, and returns that role's name.
pub(crate) async fn accept<T: FrameIo>(
    io: &mut T,
    me: &str,
    allow: &mut (dyn FnMut(&str) -> Result<(), String> + Send),
    addr: impl fmt::Display,
    version: u8,
) -> Result<String, TransportError> {
    let hello = recv_greeting(io).await?;
    let checked = match hello.as_deref().map_err(Clone::clone).and_then(decode) {
        Ok(Greeting::Hello { version: v, .. }) if v != version => Err(version_reason(v, version)),
        Ok(Greeting::Hello { to, .. }) if to != me => Err(format!(
            "the peer expected role `{}`, this side is `{me}`",
            Escaped(to)
        )),
        Ok(Greeting::Hello { from, .. }) => allow(from).map(|()| from.to_string()),
        Ok(_) => Err("the peer answered instead of greeting".to_string()),
        Err(reason) => Err(reason),
    };
    let from = match checked {
        Ok(from) => from,
        Err(reason) => {
            refuse(io, version, me, &reason).await;
            return Err(TransportError::handshake(format!(
                "refused {addr}: {reason}"
            )));
        }
    };
    io.send(encode(version, ACCEPT, &[me])).await?;
    let confirm = io.recv().await?;
    match decode(&confirm) {
        Ok(Greeting::Accept { .. }) => Ok(from),
        Ok(Greeting::Reject { reason, .. }) => Err(TransportError::handshake(format!(
            "{addr} (`{}`) refused the session: {}",
            Escaped(&from),
            Escaped(reason)
        ))),
        Ok(Greeting::Hello { .. }) => Err(TransportError::handshake(format!(
            "{addr} (`{}`): malformed handshake: a second greeting",
            Escaped(&from)
        ))),
        Err(reason) => Err(TransportError::handshake(format!(
            "{addr} (`{}`): {reason}",
            Escaped(&from)
        ))),
    }
}

/// The usual check: exactly one expected role.
pub(crate) fn expect_role(expected: &str) -> impl FnMut(&str) -> Result<(), String> + Send + '_ {
    move |from| {
        if from == expected {
            Ok(())
        } else {
            Err(format!(
                "unexpected peer role `{}` (expected `{expected}`)",
                Escaped(from)
            ))
        }
    }
}

/// A check against a set of roles.
pub(crate) fn expect_one_of<'a>(
    expected: &'a [&'a str],
) -> impl FnMut(&str) -> Result<(), String> + Send + 'a {
    move |from| {
        if expected.contains(&from) {
            Ok(())
        } else {
            Err(format!(
                "unexpected peer role `{}` (expected one of {expected:?})",
                Escaped(from)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumpsteak_aura::TransportErrorKind;
    use rumpsteak_aura_transport::SimpleChannel;

    fn reason(e: &TransportError) -> &str {
        match e.kind() {
            TransportErrorKind::Handshake(r) => r,
            other => panic!("expected a handshake error, got {other:?}"),
        }
    }

    #[test]
    fn frames_roundtrip_and_garbage_is_refused() {
        let hello = encode(1, HELLO, &["Alice", "Bob"]);
        assert_eq!(
            decode(&hello),
            Ok(Greeting::Hello {
                version: 1,
                from: "Alice",
                to: "Bob"
            })
        );
        assert!(
            decode(b"GET / HTTP/1.1")
                .unwrap_err()
                .contains("not a rumpsteak-aura")
        );
        assert!(
            decode(&hello[..hello.len() - 1])
                .unwrap_err()
                .contains("truncated field")
        );
        let mut padded = hello.clone();
        padded.push(0);
        assert!(decode(&padded).unwrap_err().contains("trailing"));
        assert!(
            decode(&encode(1, 9, &[]))
                .unwrap_err()
                .contains("unknown kind")
        );
        assert!(
            decode(b"RSKA\x01")
                .unwrap_err()
                .contains("truncated header")
        );
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let long = "é".repeat(200);
        let frame = encode(1, REJECT, &["A", &long]);
        let Ok(Greeting::Reject { reason, .. }) = decode(&frame) else {
            panic!("not a reject frame");
        };
        assert_eq!(reason.len(), 254);
        assert!(check_name(&long).is_err());
        assert!(check_name("Buyer").is_ok());
    }

    async fn run(
        dial_as: (&str, &str, u8),
        accept_as: (&'static str, &'static str, u8),
    ) -> (Result<(), TransportError>, Result<String, TransportError>) {
        let (a, b) = SimpleChannel::pair();
        let (mut a, mut b) = (RumpsteakSession::from(a), RumpsteakSession::from(b));
        let (me, peer, version) = accept_as;
        let acceptor = tokio::spawn(async move {
            let mut allow = expect_role(peer);
            accept(&mut b, me, &mut allow, "dialer", version).await
        });
        let dialed = dial(&mut a, dial_as.0, dial_as.1, "acceptor", dial_as.2).await;
        (dialed, acceptor.await.unwrap())
    }

    #[tokio::test]
    async fn matching_roles_and_versions_agree() {
        let (d, a) = run(("Alice", "Bob", 1), ("Bob", "Alice", 1)).await;
        d.unwrap();
        assert_eq!(a.unwrap(), "Alice");
    }

    #[tokio::test]
    async fn other_version_fails_on_both_sides() {
        let (d, a) = run(("Alice", "Bob", 2), ("Bob", "Alice", 1)).await;
        let (d, a) = (d.unwrap_err(), a.unwrap_err());
        assert!(
            reason(&d).contains("wire format version 2 is not supported"),
            "{d}"
        );
        assert!(
            reason(&a).contains("wire format version 2 is not supported"),
            "{a}"
        );
    }

    #[tokio::test]
    async fn unexpected_role_fails_on_both_sides() {
        let (d, a) = run(("Mallory", "Bob", 1), ("Bob", "Alice", 1)).await;
        let (d, a) = (d.unwrap_err(), a.unwrap_err());
        assert!(
            reason(&d).contains("unexpected peer role `Mallory` (expected `Alice`)"),
            "{d}"
        );
        assert!(reason(&a).contains("unexpected peer role `Mallory`"), "{a}");

        let (d, a) = run(("Alice", "Carol", 1), ("Bob", "Alice", 1)).await;
        let (d, a) = (d.unwrap_err(), a.unwrap_err());
        assert!(
            reason(&d).contains("the peer expected role `Carol`, this side is `Bob`"),
            "{d}"
        );
        assert!(reason(&a).contains("expected role `Carol`"), "{a}");
    }

    #[tokio::test]
    async fn peer_text_is_escaped_in_errors() {
        let evil = "Mallory\n\u{1b}[31mroot\u{202e}";
        let (d, a) = run((evil, "Bob", 1), ("Bob", "Alice", 1)).await;
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

    #[tokio::test]
    async fn one_of_names_the_set() {
        let mut allow = expect_one_of(&["Bob", "Carol"]);
        assert!(allow("Carol").is_ok());
        assert_eq!(
            allow("Dave").unwrap_err(),
            r#"unexpected peer role `Dave` (expected one of ["Bob", "Carol"])"#
        );
    }
}
