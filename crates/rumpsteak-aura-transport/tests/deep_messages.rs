//! Deeply nested messages: a peer cannot overflow the receiver's stack, the
//! limit sits exactly at `wire::MAX_DEPTH`, and ordinary messages decode as
//! they did before the limit.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Debug;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rumpsteak_aura_transport::wire::{self, Frame, MAX_DEPTH, PayloadError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The reviewer's recursive type: `Leaf` is variant 0, `Node` variant 1.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
}

/// A tree of `levels` enums: `levels - 1` `Node`s around a `Leaf`.
fn tree(levels: usize) -> Tree {
    (1..levels).fold(Tree::Leaf, |t, _| Tree::Node(Box::new(t)))
}

/// Its encoding, written by hand so that no serializer recurses.
fn tree_bytes(levels: usize) -> Vec<u8> {
    let mut bytes = vec![1u8; levels - 1];
    bytes.push(0);
    bytes
}

/// A singly linked list: each link is a struct (one level) holding an
/// `Option` whose `Some` is one more.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Chain {
    next: Option<Box<Chain>>,
}

/// A chain of `links` links, nesting `2 * links - 1` levels.
fn chain(links: usize) -> Chain {
    (1..links).fold(Chain { next: None }, |c, _| Chain {
        next: Some(Box::new(c)),
    })
}

/// Nested sequences: a newtype (one level) around a `Vec` (one more).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Nest(Vec<Nest>);

/// Nested maps: a newtype around a map whose values nest.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Dict(BTreeMap<u8, Dict>);

/// Nested struct variants.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Expr {
    Lit(u8),
    Neg { inner: Box<Expr> },
    Add(Box<Expr>, Box<Expr>),
}

/// A full message frame around `payload`, as a peer would send it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![wire::WIRE_VERSION, 0x00];
    frame.extend_from_slice(payload);
    frame
}

/// Decodes `frame` the way the handler's `recv` does.
fn receive<M: DeserializeOwned>(frame: &[u8]) -> Result<M, PayloadError> {
    let Ok(Frame::Message(payload)) = wire::decode(frame) else {
        panic!("expected a message frame");
    };
    wire::decode_message(payload)
}

/// Runs `f` on a thread with a 2 MiB stack (tokio's worker default), so a
/// runaway recursion aborts the test process rather than passing by luck
/// on a larger main-thread stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn a test thread")
        .join()
        .expect("the decoding thread panicked")
}

#[test]
fn a_million_levels_is_an_error_not_an_abort() {
    let result = on_small_stack(|| {
        let mut payload = vec![1u8; 1_000_000];
        payload.push(0);
        receive::<Tree>(&frame(&payload))
    });
    let err = result.expect_err("a million levels must be refused");
    assert!(matches!(err, PayloadError::TooDeep), "{err:?}");
    assert_eq!(err.to_string(), "nesting deeper than 128 levels");
}

#[test]
fn hostile_nesting_of_every_shape_is_refused_on_a_small_stack() {
    const N: usize = 1_000_000;
    on_small_stack(|| {
        // Options: one `Some` byte per link, struct fields add no bytes.
        let mut chain = vec![1u8; N];
        chain.push(0);
        assert!(matches!(
            wire::decode_message::<Chain>(&chain),
            Err(PayloadError::TooDeep)
        ));
        // Sequences: each `Nest` is a length of 1 ...
        let mut nest = vec![1u8; N];
        nest.push(0);
        assert!(matches!(
            wire::decode_message::<Nest>(&nest),
            Err(PayloadError::TooDeep)
        ));
        // Maps: each `Dict` is a length of 1 and a key.
        let mut dict = [1u8, 7].repeat(N);
        dict.push(0);
        assert!(matches!(
            wire::decode_message::<Dict>(&dict),
            Err(PayloadError::TooDeep)
        ));
        // Struct variants (`Neg` is variant 1) and tuple variants (`Add`, 2).
        let mut neg = vec![1u8; N];
        neg.extend([0, 5]);
        assert!(matches!(
            wire::decode_message::<Expr>(&neg),
            Err(PayloadError::TooDeep)
        ));
        let mut add = vec![2u8; N];
        add.extend([0, 5]);
        assert!(matches!(
            wire::decode_message::<Expr>(&add),
            Err(PayloadError::TooDeep)
        ));
    });
}

#[test]
fn a_hundred_levels_decode_to_the_original() {
    let original = tree(100);
    let bytes = wire::encode_message(&original, 0).unwrap();
    assert_eq!(&bytes[wire::HEADER_LEN..], tree_bytes(100));
    let decoded = on_small_stack(move || receive::<Tree>(&bytes).unwrap());
    assert_eq!(decoded, original);
}

#[test]
fn the_limit_is_exactly_max_depth_levels() {
    assert_eq!(MAX_DEPTH, 128);
    on_small_stack(|| {
        for levels in [1, 2, 127, 128] {
            assert_eq!(
                wire::decode_message::<Tree>(&tree_bytes(levels)).unwrap(),
                tree(levels),
                "{levels} levels"
            );
        }
        for levels in [129, 130, 1000] {
            assert!(
                matches!(
                    wire::decode_message::<Tree>(&tree_bytes(levels)),
                    Err(PayloadError::TooDeep)
                ),
                "{levels} levels"
            );
        }

        // 64 links nest 127 levels, 65 links 129.
        let ok = wire::encode_message(&chain(64), 0).unwrap();
        assert_eq!(receive::<Chain>(&ok).unwrap(), chain(64));
        let deep = wire::encode_message(&chain(65), 0).unwrap();
        assert!(matches!(
            receive::<Chain>(&deep),
            Err(PayloadError::TooDeep)
        ));
    });
}

#[test]
fn other_errors_are_still_codec_or_trailing() {
    // Deep but truncated before the limit: the codec's error, not the limit's.
    assert!(matches!(
        wire::decode_message::<Tree>(&[1; 50]),
        Err(PayloadError::Codec(
            postcard::Error::DeserializeUnexpectedEnd
        ))
    ));
    // An unknown variant is a custom error from serde; it is not `TooDeep`.
    assert!(matches!(
        wire::decode_message::<Tree>(&[1, 1, 9]),
        Err(PayloadError::Codec(_))
    ));
    let mut padded = tree_bytes(128);
    padded.extend([0, 0]);
    assert!(matches!(
        wire::decode_message::<Tree>(&padded),
        Err(PayloadError::Trailing(2))
    ));
}

#[test]
fn wide_but_shallow_messages_are_not_limited() {
    let wide: Vec<Vec<u8>> = vec![vec![1, 2, 3]; 100_000];
    let bytes = wire::encode_message(&wide, 0).unwrap();
    assert_eq!(receive::<Vec<Vec<u8>>>(&bytes).unwrap(), wide);
}

/// Bytes written with `serialize_bytes` (a length and the bytes, not a
/// sequence of `u8`s), as `serde_bytes` does.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Unit;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Newtype(u64);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Pair(i32, String);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Record {
    id: u32,
    name: String,
    tags: Vec<String>,
    parent: Option<Box<Record>>,
    weights: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u16, u16),
    Poly {
        points: Vec<(i64, i64)>,
        closed: bool,
    },
}

/// Encodes `value`, decodes it through `wire`, and checks that it came back
/// unchanged, in the bytes postcard alone writes, and as postcard alone
/// reads them.
fn round_trip<T>(name: &str, value: T) -> Result<(), String>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let frame = wire::encode_message(&value, 0).map_err(|e| format!("{name}: encode: {e}"))?;
    let plain = postcard::to_allocvec(&value).map_err(|e| format!("{name}: postcard: {e}"))?;
    if frame[wire::HEADER_LEN..] != plain[..] {
        return Err(format!("{name}: bytes differ from plain postcard"));
    }
    let decoded: T = receive(&frame).map_err(|e| format!("{name}: decode: {e}"))?;
    let direct: T = postcard::from_bytes(&plain).map_err(|e| format!("{name}: postcard: {e}"))?;
    if decoded != value || direct != value {
        return Err(format!(
            "{name}: {value:?} came back as {decoded:?} (postcard alone: {direct:?})"
        ));
    }
    Ok(())
}

#[test]
fn ordinary_messages_round_trip_unchanged() {
    let record = Record {
        id: 7,
        name: "root".into(),
        tags: vec!["a".into(), String::new(), "ü∑".into()],
        parent: Some(Box::new(Record {
            id: 1,
            name: "parent".into(),
            tags: vec![],
            parent: None,
            weights: BTreeMap::new(),
        })),
        weights: [("x".to_string(), 0.5), ("y".to_string(), -1e300)].into(),
    };
    let cases: Vec<Result<(), String>> = vec![
        round_trip("bool", true),
        round_trip("u8", 255u8),
        round_trip("i16", i16::MIN),
        round_trip("u32", u32::MAX),
        round_trip("i64", -1i64),
        round_trip("u128", u128::MAX),
        round_trip("i128", i128::MIN),
        round_trip("f32", f32::MIN_POSITIVE),
        round_trip("f64", -0.1f64),
        round_trip("f64 inf", f64::INFINITY),
        round_trip("char", '∑'),
        round_trip("string", "hello, wire".to_string()),
        round_trip("empty string", String::new()),
        round_trip("unit", ()),
        round_trip("unit struct", Unit),
        round_trip("newtype", Newtype(u64::MAX)),
        round_trip("tuple struct", Pair(-3, "pair".into())),
        round_trip("struct", record),
        round_trip("unit variant", Shape::Empty),
        round_trip("newtype variant", Shape::Circle(2.5)),
        round_trip("tuple variant", Shape::Rect(3, 4)),
        round_trip(
            "struct variant",
            Shape::Poly {
                points: vec![(0, 0), (i64::MAX, i64::MIN)],
                closed: true,
            },
        ),
        round_trip("vec", vec![1u32, 2, 3]),
        round_trip("empty vec", Vec::<u64>::new()),
        round_trip("vec of enums", vec![Shape::Empty, Shape::Rect(1, 2)]),
        round_trip("nested vec", vec![vec![vec![1u8]], vec![]]),
        round_trip("vecdeque", VecDeque::from([1i8, -1])),
        round_trip("btreeset", BTreeSet::from(["b".to_string(), "a".into()])),
        round_trip("none", None::<u8>),
        round_trip("some", Some(9u8)),
        round_trip("some none", Some(None::<u8>)),
        round_trip("boxed", Box::new(5u16)),
        round_trip(
            "btreemap",
            BTreeMap::from([(1u8, vec!["x".to_string()]), (2, vec![])]),
        ),
        round_trip("hashmap", HashMap::from([(1u32, Some(-1i64)), (2, None)])),
        round_trip("tuple", (1u8, -2i16, 'c', false, "s".to_string())),
        round_trip("array", [7u8; 32]),
        round_trip("bytes", Bytes(vec![0, 1, 2, 255])),
        round_trip("empty bytes", Bytes(vec![])),
        round_trip("result ok", Ok::<u8, String>(1)),
        round_trip("result err", Err::<u8, String>("no".into())),
        round_trip("duration", Duration::new(5, 6)),
        // `IpAddr` and `SocketAddr` are written differently for human-readable
        // formats; this fails if the adapter stops forwarding that question.
        round_trip("ip", IpAddr::from(Ipv6Addr::LOCALHOST)),
        round_trip("socket addr", SocketAddr::from(([10, 0, 0, 1], 8080))),
        round_trip("a tree at the limit", tree(MAX_DEPTH)),
        round_trip(
            "expr",
            Expr::Add(Box::new(Expr::Lit(1)), Box::new(Expr::Lit(2))),
        ),
    ];
    let failures: Vec<String> = cases.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn nan_round_trips_bit_for_bit() {
    let nan = f64::from_bits(0x7ff8_0000_dead_beef);
    let frame = wire::encode_message(&nan, 0).unwrap();
    assert_eq!(receive::<f64>(&frame).unwrap().to_bits(), nan.to_bits());
}
