//! The fuzz entry functions. Each panics only when an invariant that must
//! hold for every input is broken, and says which.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rumpsteak_aura::{ChoreoHandler, Label, ProtocolMonitor, Role, Step, Transition, Violation};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, register_labels};
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};
use rumpsteak_aura_net::websocket::WebSocketListener;
use rumpsteak_aura_protocol::{Monitor, NextStep, Protocol};
use rumpsteak_aura_transport::wire::{self, Frame, HEADER_LEN, MAX_DEPTH, MAX_LABEL_LEN};
use rumpsteak_aura_transport::{RumpsteakSession, SimpleChannel};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The two roles of the in-memory targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Local,
    Remote,
}

impl Role for Side {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

/// A message with text, numbers, bytes and a recursive tail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Probe {
    text: String,
    n: u64,
    bytes: Vec<u8>,
    next: Option<Box<Probe>>,
}

/// A label the application registered, so that offering it never depends
/// on what earlier inputs taught the label table.
const KNOWN: Label = Label("fuzz-known");

/// Polls `fut` once. Every in-memory operation the targets run has its
/// frame waiting already, so it must complete at the first poll.
fn at_once<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory operation whose frame was waiting did not complete"),
    }
}

/// Decodes `data` as a frame and checks what the decoder says against the
/// wire format.
fn check_decode(data: &[u8]) {
    match wire::decode(data) {
        Ok(Frame::Message(payload)) => {
            assert_eq!(&data[..HEADER_LEN], [wire::WIRE_VERSION, 0x00]);
            assert_eq!(payload, &data[HEADER_LEN..]);
        }
        Ok(Frame::Label(raw)) => {
            assert_eq!(&data[..HEADER_LEN], [wire::WIRE_VERSION, 0x01]);
            assert!(raw.as_bytes().len() <= MAX_LABEL_LEN);
            match raw.to_str() {
                // Only the shortest form is accepted, so encoding the label
                // again gives the very same frame.
                Ok(text) => assert_eq!(wire::encode_label(text).as_deref(), Ok(data)),
                Err(_) => assert!(std::str::from_utf8(raw.as_bytes()).is_err()),
            }
        }
        Err(_) => {}
    }
}

/// The frame decoder, then an endpoint receiving the frame as a message,
/// as a label, and as one of a set of labels, each time followed by a good
/// frame that must still arrive.
pub fn fuzz_frame(data: &[u8]) {
    check_decode(data);
    register_labels(&[KNOWN]);

    let (near, far) = SimpleChannel::pair();
    let mut ep = RumpsteakEndpoint::new(Side::Local);
    ep.register_channel(Side::Remote, near);
    let mut far = RumpsteakSession::from(far);
    let mut h = RumpsteakHandler::<Side, ()>::new();
    let good = Probe {
        text: "after".into(),
        n: 7,
        bytes: vec![1, 2],
        next: None,
    };
    let good_frame = match wire::encode_message(&good, 0) {
        Ok(frame) => frame,
        Err(e) => panic!("a fixed message does not encode: {e}"),
    };
    let known_frame = match wire::encode_label(KNOWN.0) {
        Ok(frame) => frame,
        Err(e) => panic!("a fixed label does not encode: {e}"),
    };
    let mut succeeded = 0;

    // As a message: it decodes exactly when the wire format says it is a
    // message frame whose payload is a `Probe`.
    send_now(&mut far, data.to_vec());
    let got = at_once(h.recv::<Probe>(&mut ep, Side::Remote));
    let expected = match wire::decode(data) {
        Ok(Frame::Message(payload)) => wire::decode_message::<Probe>(payload).ok(),
        _ => None,
    };
    match got {
        Ok(msg) => {
            assert_eq!(Some(&msg), expected.as_ref());
            succeeded += 1;
        }
        Err(e) => {
            assert!(expected.is_none(), "a good frame was refused: {e}");
            assert!(
                e.as_transport().is_none(),
                "a bad frame broke the session: {e}"
            );
        }
    }
    send_now(&mut far, good_frame.clone());
    assert_eq!(
        at_once(h.recv::<Probe>(&mut ep, Side::Remote)).ok(),
        Some(good.clone())
    );
    succeeded += 1;

    // As a label: any label accepted is the one in the frame.
    send_now(&mut far, data.to_vec());
    match at_once(h.offer(&mut ep, Side::Remote)) {
        Ok(label) => {
            let Ok(Frame::Label(raw)) = wire::decode(data) else {
                panic!("offer accepted a frame that is not a label: {label:?}");
            };
            assert_eq!(raw.as_bytes(), label.0.as_bytes());
            succeeded += 1;
        }
        Err(e) => assert!(
            e.as_transport().is_none(),
            "a bad label broke the session: {e}"
        ),
    }
    send_now(&mut far, known_frame.clone());
    assert_eq!(at_once(h.offer(&mut ep, Side::Remote)).ok(), Some(KNOWN));
    succeeded += 1;

    // As one of a set: only a label of the set is accepted.
    let expected_labels = [KNOWN, Label("other")];
    send_now(&mut far, data.to_vec());
    match at_once(h.offer_among(&mut ep, Side::Remote, &expected_labels)) {
        Ok(label) => {
            assert!(expected_labels.contains(&label));
            assert!(matches!(wire::decode(data), Ok(Frame::Label(raw)) if raw.is(label.0)));
            succeeded += 1;
        }
        Err(e) => assert!(
            e.as_transport().is_none(),
            "a bad label broke the session: {e}"
        ),
    }
    send_now(&mut far, known_frame);
    assert_eq!(
        at_once(h.offer_among(&mut ep, Side::Remote, &expected_labels)).ok(),
        Some(KNOWN)
    );
    succeeded += 1;

    assert!(ep.has_channel(&Side::Remote));
    let meta = ep.get_metadata(&Side::Remote);
    assert_eq!(meta.map(|m| m.operation_count), Some(succeeded));
}

fn send_now(session: &mut RumpsteakSession, frame: Vec<u8>) {
    if let Err(e) = at_once(session.send_frame(frame)) {
        panic!("the in-memory peer could not send: {e}");
    }
}

/// A recursive type with every kind of nesting the depth limit counts.
#[derive(Debug, Serialize, Deserialize)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
    Pair(Box<Tree>, Box<Tree>),
    Many(Vec<Tree>),
    Named {
        label: String,
        child: Option<Box<Tree>>,
    },
}

impl Tree {
    /// Levels of constructors: a lower bound of the depth the decoder
    /// counts, since each constructor is at least one level.
    fn depth(&self) -> usize {
        1 + match self {
            Tree::Leaf => 0,
            Tree::Node(t) => t.depth(),
            Tree::Pair(a, b) => a.depth().max(b.depth()),
            Tree::Many(ts) => ts.iter().map(Tree::depth).max().unwrap_or(0),
            Tree::Named { child, .. } => child.as_ref().map_or(0, |t| t.depth()),
        }
    }
}

impl Drop for Tree {
    // Dropping a long chain recursively could overflow the stack of a
    // small thread; move the children out first.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        let take = |t: &mut Tree, stack: &mut Vec<Tree>| match t {
            Tree::Leaf => {}
            Tree::Node(c) => stack.push(std::mem::replace(&mut **c, Tree::Leaf)),
            Tree::Pair(a, b) => {
                stack.push(std::mem::replace(&mut **a, Tree::Leaf));
                stack.push(std::mem::replace(&mut **b, Tree::Leaf));
            }
            Tree::Many(ts) => stack.append(ts),
            Tree::Named { child, .. } => {
                if let Some(c) = child.take() {
                    stack.push(*c);
                }
            }
        };
        take(self, &mut stack);
        while let Some(mut t) = stack.pop() {
            take(&mut t, &mut stack);
        }
    }
}

/// Scalars, strings, maps and sequences side by side.
#[derive(Debug, Serialize, Deserialize)]
struct Mixed {
    flag: bool,
    small: i8,
    wide: i128,
    real: f64,
    letter: Option<char>,
    fixed: [u16; 3],
    text: String,
    table: BTreeMap<String, Vec<i64>>,
    pair: (u32, Option<Vec<u8>>),
}

/// Decodes `payload` as `M`; whatever decodes must encode and decode back
/// to the same bytes.
fn round_trip<M>(payload: &[u8]) -> Option<M>
where
    M: Serialize + for<'de> Deserialize<'de>,
{
    let msg = wire::decode_message::<M>(payload).ok()?;
    let first = match wire::encode_message(&msg, 0) {
        Ok(frame) => frame,
        Err(e) => panic!("a decoded message does not encode: {e}"),
    };
    let again = match wire::decode_message::<M>(&first[HEADER_LEN..]) {
        Ok(again) => again,
        Err(e) => panic!("an encoded message does not decode: {e}"),
    };
    let second = match wire::encode_message(&again, 0) {
        Ok(frame) => frame,
        Err(e) => panic!("a decoded message does not encode: {e}"),
    };
    assert_eq!(first, second, "encoding is not a fixpoint");
    Some(msg)
}

/// The depth-limited message decoder on a recursive type, a type with
/// every scalar and container, and a recursive message of the handler
/// tests.
pub fn fuzz_message(data: &[u8]) {
    if let Some(tree) = round_trip::<Tree>(data) {
        assert!(
            tree.depth() <= MAX_DEPTH,
            "a tree of depth {} decoded",
            tree.depth()
        );
    }
    round_trip::<Mixed>(data);
    round_trip::<Probe>(data);
    round_trip::<Vec<Vec<String>>>(data);
}

/// The protocol parser, then printing, validation, projection onto every
/// role and monitor compilation.
pub fn fuzz_protocol(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let p = match Protocol::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let printed = p.to_string();
    assert_eq!(
        Protocol::parse(&printed).as_ref(),
        Ok(&p),
        "printed form does not parse back:\n{printed}"
    );
    let valid = p.validate();
    if let Err(e) = &valid {
        let _ = (e.to_string(), p.locate(e));
    }
    for role in p.roles() {
        match (p.project(role), &valid) {
            (Ok(local), Ok(())) => {
                let _ = local.to_string();
                if let Err(e) = Monitor::new(role, &local) {
                    panic!("a valid protocol's projection onto {role} does not compile: {e}");
                }
            }
            (Ok(local), Err(_)) => {
                let _ = Monitor::new(role, &local);
            }
            (Err(e), Ok(())) => panic!("a valid protocol does not project onto {role}: {e}"),
            (Err(_), Err(_)) => {}
        }
    }
}

/// Protocols for the monitor target, selected by the first byte.
const PROTOCOLS: [&str; 4] = [
    "Client -> Server: Ping(u32); Server -> Client: Pong(u32);",
    "roles Buyer, Seller;
     Buyer -> Seller: Offer(Price);
     choice at Seller {
         accept: { Seller -> Buyer: Receipt; }
         reject: { Seller -> Buyer: Reason(String); }
     }",
    "roles A, B, C;
     rec Loop {
         choice at A {
             more: { A -> B: Item(u64); B -> C: Item(u64); continue Loop; }
             done: { A -> C: Total(u64); }
         }
     }",
    "roles A, B, C;
     A -> B: Token; B -> C: Token; C -> A: Token;",
];

/// A monitor driven by arbitrary steps: checks never move it, allowed
/// steps do, the step it says comes next is always allowed, and it is
/// complete exactly at the end.
///
/// The first byte selects a built-in protocol, or (high bit set) says that
/// the protocol's text follows, its length in the next byte. The next byte
/// picks the role; every later three bytes are one step.
pub fn fuzz_monitor(data: &[u8]) {
    let Some((&select, rest)) = data.split_first() else {
        return;
    };
    let (text, rest): (Cow<'_, str>, &[u8]) = if select & 0x80 == 0 {
        (
            Cow::Borrowed(PROTOCOLS[usize::from(select) % PROTOCOLS.len()]),
            rest,
        )
    } else {
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let (text, rest) = rest.split_at(usize::from(len).min(rest.len()));
        (String::from_utf8_lossy(text), rest)
    };
    let Ok(p) = Protocol::parse(&text) else {
        return;
    };
    let Some((&who, steps)) = rest.split_first() else {
        return;
    };
    let roles = p.roles();
    if roles.is_empty() {
        return;
    }
    let role = &roles[usize::from(who) % roles.len()];
    let Ok(mut m) = p.monitor_for(role) else {
        return;
    };

    let mut vocab: Vec<String> = roles.to_vec();
    vocab.extend(m.labels().into_iter().map(str::to_owned));
    vocab.extend(
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_owned),
    );
    vocab.push(String::new());
    let word = |b: u8| vocab[usize::from(b) % vocab.len()].as_str();

    for chunk in steps.chunks(3) {
        let [op, a, b] = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let step = match op % 6 {
            0 => Step::Send {
                to: word(a),
                message: word(b),
            },
            1 => Step::Recv {
                from: word(a),
                message: word(b),
            },
            2 => Step::Choose {
                to: word(a),
                label: word(b),
            },
            3 => Step::Offer {
                from: word(a),
                label: (b & 1 == 1).then(|| word(b >> 1)),
            },
            4 => {
                follow(&mut m, a);
                check_monitor(&m, roles);
                continue;
            }
            _ => {
                // Any transition is ignored or moves to some state; it
                // must never break the monitor.
                m.advance(Transition::new(usize::from(a) << 8 | usize::from(b)));
                check_monitor(&m, roles);
                continue;
            }
        };
        let before = describe(&m);
        let checked = m.check(&step);
        assert_eq!(before, describe(&m), "check moved the monitor");
        match checked {
            Ok(to) => m.advance(to),
            Err(Violation::OutOfProtocol { attempted, .. }) => {
                assert_eq!(attempted, step.to_string());
            }
            Err(other) => panic!("a monitor refused {step} with {other}"),
        }
        check_monitor(&m, roles);
    }
}

fn describe(m: &Monitor) -> String {
    let mut out = String::new();
    m.describe(&mut out);
    out
}

/// Takes the step the monitor says comes next; it must be allowed.
fn follow(m: &mut Monitor, pick: u8) {
    let next = m.next_step();
    let (step, offer_from) = match next {
        NextStep::Send { to, message, .. } => (Some(owned_send(to, message)), None),
        NextStep::Recv { from, message, .. } => (
            Some(OwnedStep::Recv(from.to_owned(), message.to_owned())),
            None,
        ),
        NextStep::Choose { to, labels } => {
            let labels: Vec<&str> = labels.collect();
            let label = labels[usize::from(pick) % labels.len()];
            (
                Some(OwnedStep::Choose(to.to_owned(), label.to_owned())),
                None,
            )
        }
        NextStep::Offer { from, labels } => {
            let labels: Vec<&str> = labels.collect();
            let label = labels[usize::from(pick) % labels.len()];
            (
                Some(OwnedStep::Offer(from.to_owned(), label.to_owned())),
                Some(from.to_owned()),
            )
        }
        NextStep::End => (None, None),
        _ => (None, None),
    };
    if let Some(from) = offer_from {
        let peek = Step::Offer {
            from: &from,
            label: None,
        };
        if let Err(e) = m.check(&peek) {
            panic!("the offer the monitor expects next was refused: {e}");
        }
    }
    if let Some(step) = step {
        let step = step.as_step();
        match m.check(&step) {
            Ok(to) => m.advance(to),
            Err(e) => panic!("the step the monitor expects next was refused: {step}: {e}"),
        }
    }
}

fn owned_send(to: &str, message: &str) -> OwnedStep {
    OwnedStep::Send(to.to_owned(), message.to_owned())
}

/// A step whose names outlive the monitor's borrow.
enum OwnedStep {
    Send(String, String),
    Recv(String, String),
    Choose(String, String),
    Offer(String, String),
}

impl OwnedStep {
    fn as_step(&self) -> Step<'_> {
        match self {
            OwnedStep::Send(to, message) => Step::Send { to, message },
            OwnedStep::Recv(from, message) => Step::Recv { from, message },
            OwnedStep::Choose(to, label) => Step::Choose { to, label },
            OwnedStep::Offer(from, label) => Step::Offer {
                from,
                label: Some(label),
            },
        }
    }
}

/// What must hold of a monitor between any two steps.
fn check_monitor(m: &Monitor, roles: &[String]) {
    let end = matches!(m.next_step(), NextStep::End);
    assert_eq!(m.is_complete(), end);
    if end {
        assert_eq!(describe(m), "end");
        for r in roles {
            assert!(!m.involves(r), "a complete monitor still involves {r}");
        }
    }
    match m.next_step() {
        NextStep::Send { to: peer, .. }
        | NextStep::Recv { from: peer, .. }
        | NextStep::Choose { to: peer, .. }
        | NextStep::Offer { from: peer, .. } => {
            assert!(
                m.involves(peer),
                "the next step's peer {peer} is not involved"
            );
        }
        _ => {}
    }
}

/// A generous bound on one handshake input: the handshake timeout below
/// is 2 s, and a run that takes longer than this has hung.
pub(crate) const HANG: Duration = Duration::from_secs(10);

/// Listeners on loopback, one set per thread, driven by that thread's
/// runtime.
struct Rig {
    rt: tokio::runtime::Runtime,
    tcp: SessionListener,
    ws: WebSocketListener,
    raw: TcpListener,
    raw_addr: SocketAddr,
    options: TcpOptions,
}

impl Rig {
    fn new() -> Self {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("fuzz rig: no runtime: {e}"),
        };
        let options = TcpOptions::new()
            .with_handshake_timeout(Duration::from_secs(2))
            .with_linger(Duration::from_millis(50))
            .with_max_frame_len(64 * 1024);
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let bound = rt.block_on(async {
            let tcp = SessionListener::bind(loopback, "Server", &options).await?;
            let ws = WebSocketListener::bind(loopback, "Server", &options).await?;
            let raw = TcpListener::bind(loopback).await?;
            Ok::<_, rumpsteak_aura_transport::TransportError>((tcp, ws, raw))
        });
        let (tcp, ws, raw) = match bound {
            Ok(bound) => bound,
            Err(e) => panic!("fuzz rig: cannot bind loopback: {e}"),
        };
        let raw_addr = match raw.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("fuzz rig: no address: {e}"),
        };
        Rig {
            rt,
            tcp,
            ws,
            raw,
            raw_addr,
            options,
        }
    }
}

thread_local! {
    static RIG: RefCell<Option<Rig>> = const { RefCell::new(None) };
}

/// The bytes as frames of the TCP framing: each chunk is a length byte
/// and that many bytes, sent with a big-endian `u32` length.
pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    chunks(body, |out, chunk| {
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    })
}

/// Cuts `body` into chunks, each a length byte and that many bytes (fewer
/// at the end), and lets `put` write each one out.
pub(crate) fn chunks(body: &[u8], mut put: impl FnMut(&mut Vec<u8>, &[u8])) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some((&len, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
        put(&mut out, chunk);
        rest = tail;
    }
    out
}

/// Receives what a session that opened still carries, until it ends.
pub(crate) async fn drain(session: &mut RumpsteakSession) {
    for _ in 0..16 {
        if session.recv_frame().await.is_err() {
            return;
        }
    }
}

/// Writes `bytes` to a raw connection (TCP, a pipe), closes its sending
/// side and reads whatever the other side says until it closes.
pub(crate) async fn play<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: &[u8]) {
    // The other side may close early: write errors are part of the game.
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// The role handshake against a peer that sends arbitrary bytes. The first
/// byte picks the side: the TCP acceptor fed raw bytes or frames, the TCP
/// dialer fed frames, or the WebSocket acceptor fed raw bytes. Whatever
/// the bytes, the call ends (with a session or an error) within the
/// handshake timeout, and a session that opened ends when the peer goes.
pub fn fuzz_handshake(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    RIG.with(|rig| {
        let mut rig = rig.borrow_mut();
        let rig = rig.get_or_insert_with(Rig::new);
        let run = async {
            match mode % 4 {
                0 | 1 => {
                    let bytes = if mode % 4 == 0 {
                        body.to_vec()
                    } else {
                        framed(body)
                    };
                    let addr = rig.tcp.local_addr();
                    let peer = async {
                        if let Ok(stream) = TcpStream::connect(addr).await {
                            play(stream, &bytes).await;
                        }
                    };
                    let acceptor = async {
                        if let Ok(mut session) = rig.tcp.accept("Client").await {
                            drain(&mut session).await;
                        }
                    };
                    tokio::join!(peer, acceptor);
                }
                2 => {
                    let bytes = framed(body);
                    let peer = async {
                        if let Ok((stream, _)) = rig.raw.accept().await {
                            play(stream, &bytes).await;
                        }
                    };
                    let dialer = async {
                        let dialed =
                            tcp::connect(rig.raw_addr, "Client", "Server", &rig.options).await;
                        if let Ok(mut session) = dialed {
                            drain(&mut session).await;
                        }
                    };
                    tokio::join!(peer, dialer);
                }
                _ => {
                    let addr = rig.ws.local_addr();
                    let peer = async {
                        if let Ok(stream) = TcpStream::connect(addr).await {
                            play(stream, body).await;
                        }
                    };
                    let acceptor = async {
                        if let Ok(mut session) = rig.ws.accept("Client").await {
                            drain(&mut session).await;
                        }
                    };
                    tokio::join!(peer, acceptor);
                }
            }
        };
        if rig
            .rt
            .block_on(async { tokio::time::timeout(HANG, run).await })
            .is_err()
        {
            panic!("a handshake input did not finish within {HANG:?}");
        }
    });
}
