//! Each fault of `rumpsteak_aura_transport::fault`, seen through the
//! handler: what the role's operation returns, what the endpoint's
//! bookkeeping says afterwards, and that every frame delivered before the
//! fault arrived intact and in order.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{Handler, Msg, Party, faulty_pair, io_kind, msg, within};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, FrameError, Label, Violation};
use rumpsteak_aura_handler::register_labels;
use rumpsteak_aura_transport::fault::{Fault, Faults};

const GO: Label = Label("go");

fn violation(e: &ChoreographyError) -> Option<&Violation> {
    match e {
        ChoreographyError::ProtocolViolation { violation, .. } => Some(violation),
        _ => None,
    }
}

#[tokio::test]
async fn a_cut_link_is_an_io_error_once_then_closed_on_both_sides() {
    let (mut alice, mut bob, _, cut) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Disconnect { after: 2 }),
    );
    let mut h = Handler::new();
    for n in 0..4 {
        h.send(&mut alice, Party::Bob, &msg(n)).await.unwrap();
    }
    // The two frames before the cut arrive whole and in order.
    for n in 0..2 {
        let got: Msg = h.recv(&mut bob, Party::Alice).await.unwrap();
        assert_eq!(got, msg(n));
    }
    assert!(cut.tripped());

    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(io_kind(&e), Some(ErrorKind::ConnectionReset), "{e}");
    // An I/O error leaves the channel registered and the session not over.
    assert!(bob.has_channel(&Party::Alice));
    let meta = bob.get_metadata(&Party::Alice).unwrap();
    assert_eq!(meta.operation_count, 2);
    assert!(!meta.is_complete, "{meta:?}");

    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert!(e.is_closed(), "{e}");
    let meta = bob.get_metadata(&Party::Alice).unwrap();
    assert!(meta.is_complete);
    assert_eq!(meta.state_description, "closed by Alice");
    assert_eq!(
        bob.active_channel_count(),
        1,
        "closed by the peer, still registered"
    );

    // Alice's end of the link is gone as well: her next send fails.
    let e = h.send(&mut alice, Party::Bob, &msg(9)).await.unwrap_err();
    assert!(e.is_closed(), "{e}");
    assert!(alice.get_metadata(&Party::Bob).unwrap().is_complete);
    assert_eq!(alice.get_metadata(&Party::Bob).unwrap().operation_count, 4);
}

#[tokio::test]
async fn a_cut_on_the_sending_side_fails_the_send_and_the_peer_keeps_what_came_before() {
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new().outbound(Fault::Disconnect { after: 3 }),
        Faults::new(),
    );
    let mut h = Handler::new();
    for n in 0..3 {
        h.send(&mut alice, Party::Bob, &msg(n)).await.unwrap();
    }
    let e = h.send(&mut alice, Party::Bob, &msg(3)).await.unwrap_err();
    assert_eq!(io_kind(&e), Some(ErrorKind::ConnectionReset), "{e}");
    assert_eq!(alice.traffic(&Party::Bob).unwrap().frames_sent, 3);
    assert!(alice.has_channel(&Party::Bob));
    for n in 0..3 {
        assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(n));
    }
    assert!(
        h.recv::<Msg>(&mut bob, Party::Alice)
            .await
            .unwrap_err()
            .is_closed()
    );
    assert_eq!(bob.get_metadata(&Party::Alice).unwrap().operation_count, 3);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_link_delivers_everything_in_order_and_a_timeout_loses_nothing() {
    const DELAY: Duration = Duration::from_millis(40);
    let (mut alice, mut bob, _, delayed) =
        faulty_pair(Faults::new(), Faults::new().inbound(Fault::Delay(DELAY)));
    let mut h = Handler::new();
    for n in 0..5 {
        h.send(&mut alice, Party::Bob, &msg(n)).await.unwrap();
    }
    // A deadline shorter than the delay times out; the frame stays.
    let e = h
        .recv_timeout::<Msg>(&mut bob, Party::Alice, DELAY / 4)
        .await
        .unwrap_err();
    assert!(matches!(e, ChoreographyError::Timeout(_)), "{e}");
    assert!(bob.has_channel(&Party::Alice));

    let start = tokio::time::Instant::now();
    for n in 0..5 {
        assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(n));
    }
    // Paused time: the clock moved only by the delays (the first frame's
    // delay had partly run during the timeout above).
    assert!(start.elapsed() >= DELAY * 4, "{:?}", start.elapsed());
    assert!(delayed.tripped());
    let meta = bob.get_metadata(&Party::Alice).unwrap();
    assert_eq!(meta.operation_count, 5);
    assert!(!meta.is_complete);
}

#[tokio::test]
async fn corrupted_headers_are_typed_violations_and_a_corrupted_value_is_not_detected() {
    let mut h = Handler::new();

    // The version byte.
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Corrupt {
            frame: 1,
            offset: 0,
            mask: 0x02,
        }),
    );
    for n in 0..3 {
        h.send(&mut alice, Party::Bob, &msg(n)).await.unwrap();
    }
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(0));
    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        Some(&Violation::Frame(FrameError::UnsupportedVersion {
            found: 3,
            supported: 1
        })),
        "{e}"
    );
    // The bad frame is consumed; the session goes on with the next one.
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(2));
    assert!(bob.has_channel(&Party::Alice));
    assert_eq!(bob.get_metadata(&Party::Alice).unwrap().operation_count, 2);

    // The kind byte.
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Corrupt {
            frame: 0,
            offset: 1,
            mask: 0x04,
        }),
    );
    h.send(&mut alice, Party::Bob, &msg(0)).await.unwrap();
    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        Some(&Violation::Frame(FrameError::UnknownKind(4))),
        "{e}"
    );

    // The last byte of the payload is `n`: postcard has no checksum, so the
    // message arrives with another value. Integrity is the transport's
    // job (TCP's checksum, a TLS record's MAC), not the wire format's.
    // Header, string length, string, `n`.
    let last = 2 + 1 + "message 4".len();
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Corrupt {
            frame: 0,
            offset: last,
            mask: 0x01,
        }),
    );
    h.send(&mut alice, Party::Bob, &msg(4)).await.unwrap();
    assert_eq!(bob_frame_len(&alice), last + 1);
    let got: Msg = h.recv(&mut bob, Party::Alice).await.unwrap();
    assert_eq!(got.n, 5);
    assert_eq!(got.text, "message 4");
}

fn bob_frame_len(alice: &rumpsteak_aura_handler::RumpsteakEndpoint<Party>) -> usize {
    alice.traffic(&Party::Bob).unwrap().bytes_sent as usize
}

#[tokio::test]
async fn truncated_frames_are_typed_errors_and_the_session_goes_on() {
    register_labels(&[GO]);
    let mut h = Handler::new();
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Truncate { frame: 0, len: 5 }),
    );
    h.send(&mut alice, Party::Bob, &msg(0)).await.unwrap();
    h.send(&mut alice, Party::Bob, &msg(1)).await.unwrap();
    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert!(matches!(e, ChoreographyError::Serialization { .. }), "{e}");
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(1));

    // A label cut inside its text.
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Truncate { frame: 0, len: 4 }),
    );
    h.choose(&mut alice, Party::Bob, GO).await.unwrap();
    h.choose(&mut alice, Party::Bob, GO).await.unwrap();
    let e = h.offer(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        Some(&Violation::Frame(FrameError::Truncated)),
        "{e}"
    );
    assert_eq!(h.offer(&mut bob, Party::Alice).await.unwrap(), GO);
    let meta = bob.get_metadata(&Party::Alice).unwrap();
    assert_eq!(meta.operation_count, 1);
    assert_eq!(meta.state_description, "Alice chose go");
}

#[tokio::test]
async fn a_duplicated_message_arrives_twice_and_a_duplicated_label_is_a_violation() {
    register_labels(&[GO]);
    let mut h = Handler::new();
    let (mut alice, mut bob, _, dup) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Duplicate { frame: 0 }),
    );
    h.send(&mut alice, Party::Bob, &msg(0)).await.unwrap();
    h.send(&mut alice, Party::Bob, &msg(1)).await.unwrap();
    // No sequence numbers: the copy is a second, equal message.
    for n in [0, 0, 1] {
        assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(n));
    }
    assert!(dup.tripped());
    assert_eq!(bob.traffic(&Party::Alice).unwrap().frames_received, 3);

    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Duplicate { frame: 0 }),
    );
    h.choose(&mut alice, Party::Bob, GO).await.unwrap();
    h.send(&mut alice, Party::Bob, &msg(7)).await.unwrap();
    assert_eq!(h.offer(&mut bob, Party::Alice).await.unwrap(), GO);
    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        Some(&Violation::LabelWhereMessageExpected),
        "{e}"
    );
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(7));
}

#[tokio::test]
async fn reordered_frames_of_different_kinds_are_violations_and_of_one_kind_go_unnoticed() {
    register_labels(&[GO]);
    let mut h = Handler::new();
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Reorder { frame: 0 }),
    );
    h.send(&mut alice, Party::Bob, &msg(0)).await.unwrap();
    h.choose(&mut alice, Party::Bob, GO).await.unwrap();
    let e = h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        Some(&Violation::LabelWhereMessageExpected),
        "{e}"
    );
    let e = h.offer(&mut bob, Party::Alice).await.unwrap_err();
    assert_eq!(
        violation(&e),
        Some(&Violation::MessageWhereLabelExpected),
        "{e}"
    );
    assert!(bob.has_channel(&Party::Alice));
    assert_eq!(bob.get_metadata(&Party::Alice).unwrap().operation_count, 0);

    // Two messages of one type swap places: no sequence numbers, so the
    // receiver sees them in the wrong order. TCP never reorders.
    let (mut alice, mut bob, _, _) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Reorder { frame: 0 }),
    );
    for n in 0..3 {
        h.send(&mut alice, Party::Bob, &msg(n)).await.unwrap();
    }
    for n in [1, 0, 2] {
        assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(n));
    }
}

#[tokio::test]
async fn a_stalled_link_times_out_keeps_the_channel_and_loses_nothing_once_released() {
    let mut h = Handler::new();
    let (mut alice, mut bob, _, stall) = faulty_pair(
        Faults::new(),
        Faults::new().inbound(Fault::Stall { after: 1 }),
    );
    for n in 0..3 {
        h.send(&mut alice, Party::Bob, &msg(n)).await.unwrap();
    }
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(0));
    let e = h
        .recv_timeout::<Msg>(&mut bob, Party::Alice, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(matches!(e, ChoreographyError::Timeout(_)), "{e}");
    assert!(stall.tripped());
    assert!(bob.has_channel(&Party::Alice));
    let meta = bob.get_metadata(&Party::Alice).unwrap();
    assert_eq!(meta.operation_count, 1);
    assert!(!meta.is_complete);

    // A receive waiting on the stall is woken by the release.
    let waiting = tokio::spawn(async move {
        let mut h = Handler::new();
        let got: Msg = h.recv(&mut bob, Party::Alice).await.unwrap();
        (got, bob)
    });
    tokio::task::yield_now().await;
    stall.release();
    let (got, mut bob) = within(5, waiting).await.unwrap();
    assert_eq!(got, msg(1));
    assert_eq!(h.recv::<Msg>(&mut bob, Party::Alice).await.unwrap(), msg(2));
    assert_eq!(bob.get_metadata(&Party::Alice).unwrap().operation_count, 3);
}
