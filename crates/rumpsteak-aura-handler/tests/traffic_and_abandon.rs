//! Per-peer traffic counters, and abandoning a protocol part-way.

mod common;

use common::{Handler, Msg, Party, alice_bob};
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_handler::Traffic;

#[tokio::test]
async fn traffic_counts_whole_frames_both_ways() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    let msg = Msg::new("hello", 7);
    h.send(&mut a, Party::Bob, &msg).await.unwrap();
    h.choose(&mut a, Party::Bob, Label("go")).await.unwrap();
    let _: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(h.offer(&mut b, Party::Alice).await.unwrap(), Label("go"));

    let sent = a.traffic(&Party::Bob).unwrap();
    let received = b.traffic(&Party::Alice).unwrap();
    assert_eq!((sent.frames_sent, sent.frames_received), (2, 0));
    assert_eq!((received.frames_sent, received.frames_received), (0, 2));
    // Both ends count the same frames, header included.
    assert_eq!(sent.bytes_sent, received.bytes_received);
    let payload = postcard::to_allocvec(&msg).unwrap().len() as u64;
    // A message frame and a label frame each carry at least a kind byte
    // beyond their payload.
    assert!(sent.bytes_sent > payload + "go".len() as u64, "{sent:?}");
    assert_eq!(b.traffic(&Party::Carol), None);
}

#[tokio::test]
async fn a_failed_operation_counts_no_traffic() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    a.close_channel(&Party::Bob);
    assert!(h.recv::<Msg>(&mut b, Party::Alice).await.is_err());
    assert_eq!(b.traffic(&Party::Alice).unwrap(), Traffic::default());
}

#[tokio::test]
async fn abandon_closes_the_listed_peers_and_marks_them() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.send(&mut a, Party::Bob, &Msg::new("before", 1))
        .await
        .unwrap();
    assert_eq!(a.abandon(&[Party::Bob, Party::Carol]), 1);
    assert_eq!(a.abandon(&[Party::Bob]), 0, "already closed");
    let meta = a.get_metadata(&Party::Bob).unwrap();
    assert!(meta.is_abandoned && meta.is_complete, "{meta:?}");
    assert_eq!(meta.state_description, "abandoned, closed");
    // The peer still gets what was sent before, then a closed channel.
    let m: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(m.n, 1);
    let e = h.recv::<Msg>(&mut b, Party::Alice).await.unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert!(!b.get_metadata(&Party::Alice).unwrap().is_abandoned);
}
