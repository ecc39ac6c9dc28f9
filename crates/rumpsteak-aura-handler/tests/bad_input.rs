//! Whatever bytes a peer sends give a typed error, never a panic or a misread,
//! and the session stays usable afterwards.

mod common;

use common::{Handler, Msg, Party};
use rumpsteak_aura::{
    ChoreoHandler, ChoreographyError, FrameError, Label, TransportErrorKind, Violation,
};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakSession, SimpleChannel};
use rumpsteak_aura_transport::wire;
use serde::{Deserialize, Serialize};

/// Bob's endpoint, and the raw channel that plays Alice.
fn bob_with_raw_alice(max_frame_len: Option<usize>) -> (RumpsteakEndpoint<Party>, SimpleChannel) {
    let (raw, ch) = SimpleChannel::pair();
    let mut b = RumpsteakEndpoint::new(Party::Bob);
    let mut session = RumpsteakSession::from(ch);
    if let Some(max) = max_frame_len {
        session = session.with_max_frame_len(max);
    }
    b.register_session(Party::Alice, session);
    (b, raw)
}

async fn still_works(b: &mut RumpsteakEndpoint<Party>, raw: &mut SimpleChannel) {
    let good = wire::encode_message(&Msg::new("ok", 1), 0).unwrap();
    raw.send(good).await.unwrap();
    let m: Msg = Handler::new().recv(b, Party::Alice).await.unwrap();
    assert_eq!(m, Msg::new("ok", 1));
    assert!(b.has_channel(&Party::Alice));
}

fn violation(e: &ChoreographyError) -> &Violation {
    match e {
        ChoreographyError::ProtocolViolation { violation, .. } => violation,
        other => panic!("expected a protocol violation, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_frames_are_violations() {
    let (mut b, mut raw) = bob_with_raw_alice(None);
    let v = wire::WIRE_VERSION;
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![], FrameError::Empty),
        (vec![v], FrameError::Truncated),
        (
            vec![v + 1, 0, 1],
            FrameError::UnsupportedVersion {
                found: v + 1,
                supported: v,
            },
        ),
        (vec![v, 0x7f], FrameError::UnknownKind(0x7f)),
    ];
    let mut h = Handler::new();
    for (bytes, expected) in cases {
        raw.send(bytes).await.unwrap();
        let e = h.recv::<Msg>(&mut b, Party::Alice).await.unwrap_err();
        assert_eq!(violation(&e), &Violation::Frame(expected));
        assert!(
            e.to_string()
                .starts_with("recv from Alice: protocol violation")
        );
        still_works(&mut b, &mut raw).await;
    }
}

#[tokio::test]
async fn truncated_and_padded_payloads() {
    let (mut b, mut raw) = bob_with_raw_alice(None);
    let mut h = Handler::new();
    let good = wire::encode_message(&Msg::new("hello", 300), 0).unwrap();

    raw.send(good[..good.len() - 1].to_vec()).await.unwrap();
    let e = h.recv::<Msg>(&mut b, Party::Alice).await.unwrap_err();
    assert!(
        matches!(&e, ChoreographyError::Serialization { type_name, .. } if type_name.ends_with("Msg")),
        "{e:?}"
    );
    assert!(std::error::Error::source(&e).is_some());

    let mut padded = good.clone();
    padded.push(0);
    raw.send(padded).await.unwrap();
    let e = h.recv::<Msg>(&mut b, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        &Violation::Frame(FrameError::TrailingBytes(1))
    );
    still_works(&mut b, &mut raw).await;
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Decision {
    verdict: String,
    amount: u32,
}

#[tokio::test]
async fn a_label_is_never_read_as_a_message_nor_the_reverse() {
    let (mut a, mut b) = common::alice_bob();
    let mut h = Handler::new();

    // A label where a message is expected.
    h.choose(&mut a, Party::Bob, Label("accept")).await.unwrap();
    let e = h.recv::<Decision>(&mut b, Party::Alice).await.unwrap_err();
    assert_eq!(violation(&e), &Violation::LabelWhereMessageExpected);

    // A message whose first field is a string, where a label is expected.
    let d = Decision {
        verdict: "accept".into(),
        amount: 0,
    };
    h.send(&mut a, Party::Bob, &d).await.unwrap();
    let e = h.offer(&mut b, Party::Alice).await.unwrap_err();
    assert_eq!(violation(&e), &Violation::MessageWhereLabelExpected);
    assert!(e.to_string().contains("offer from Alice"));

    // Both sessions carry on.
    h.send(&mut a, Party::Bob, &d).await.unwrap();
    assert_eq!(h.recv::<Decision>(&mut b, Party::Alice).await.unwrap(), d);
    // Failed operations are not counted.
    assert_eq!(b.get_metadata(&Party::Alice).unwrap().operation_count, 1);
}

#[tokio::test]
async fn bad_labels_are_violations() {
    let (mut b, mut raw) = bob_with_raw_alice(None);
    let mut h = Handler::new();
    let v = wire::WIRE_VERSION;
    for (bytes, expected) in [
        (
            vec![v, 1, 1, 0xff],
            FrameError::InvalidLabel("not valid UTF-8"),
        ),
        (vec![v, 1, 4, b'a'], FrameError::Truncated),
        (vec![v, 1, 1, b'a', b'b'], FrameError::TrailingBytes(1)),
    ] {
        raw.send(bytes).await.unwrap();
        let e = h.offer(&mut b, Party::Alice).await.unwrap_err();
        assert_eq!(violation(&e), &Violation::Frame(expected));
    }
    still_works(&mut b, &mut raw).await;
}

#[tokio::test]
async fn oversize_frames_are_refused_on_both_sides() {
    let (mut b, mut raw) = bob_with_raw_alice(Some(64));
    let mut h = Handler::new();
    raw.send(vec![wire::WIRE_VERSION; 65]).await.unwrap();
    let e = h.recv::<Msg>(&mut b, Party::Alice).await.unwrap_err();
    let ChoreographyError::Transport(t) = &e else {
        panic!("expected a transport error, got {e:?}");
    };
    assert!(matches!(
        t.kind(),
        TransportErrorKind::FrameTooLarge {
            size: 65,
            limit: 64
        }
    ));
    still_works(&mut b, &mut raw).await;

    // Sending side: nothing leaves, the error says so.
    let e = h
        .send(&mut b, Party::Alice, &Msg::new(&"x".repeat(100), 0))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("exceeds the limit of 64 bytes"),
        "{e}"
    );
    assert!(raw.try_send_frame(vec![]).is_ok(), "session still open");
}

#[tokio::test]
async fn messages_of_tens_of_mib_pass_by_default() {
    let (mut a, mut b) = common::alice_bob();
    let mut h = Handler::new();
    let big = vec![0xabu8; 20 * 1024 * 1024];
    h.send(&mut a, Party::Bob, &big).await.unwrap();
    let got: Vec<u8> = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got.iter().all(|&x| x == 0xab));
}

#[tokio::test]
async fn random_bytes_never_panic() {
    let (mut b, mut raw) = bob_with_raw_alice(None);
    let mut h = Handler::new();
    // xorshift: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for i in 0..2000 {
        let len = (next() % 24) as usize;
        let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 && len >= 2 {
            frame[0] = wire::WIRE_VERSION; // reach the payload decoders too
            frame[1] = (next() % 2) as u8;
        }
        raw.send(frame).await.unwrap();
        let outcome = if i % 3 == 0 {
            h.offer(&mut b, Party::Alice).await.map(|_| ())
        } else {
            h.recv::<Msg>(&mut b, Party::Alice).await.map(|_| ())
        };
        if outcome.is_err() {
            errors += 1;
        }
    }
    assert!(errors > 1000, "most random frames are rejected ({errors})");
    still_works(&mut b, &mut raw).await;
}

#[tokio::test]
async fn unknown_peer_is_a_no_channel_error() {
    let (mut a, _b) = common::alice_bob();
    let e = Handler::new()
        .send(&mut a, Party::Carol, &Msg::new("x", 0))
        .await
        .unwrap_err();
    assert!(matches!(&e, ChoreographyError::NoChannel { peer, .. } if peer == "Carol"));
    assert_eq!(
        e.to_string(),
        "send to Carol: no open channel is registered for this peer"
    );
}
