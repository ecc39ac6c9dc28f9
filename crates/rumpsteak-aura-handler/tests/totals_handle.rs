//! `TotalsHandle`: the byte totals and open-session count read without
//! borrowing the endpoint follow the endpoint's own figures through
//! operations, registrations, closes and abandons.

mod common;

use common::{Handler, Msg, Party, alice_bob};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_handler::{RumpsteakEndpoint, SimpleChannel};

fn agrees(totals: &rumpsteak_aura_handler::TotalsHandle, ep: &RumpsteakEndpoint<Party>) {
    let t = ep.total_traffic();
    assert_eq!(totals.bytes_sent(), t.bytes_sent);
    assert_eq!(totals.bytes_received(), t.bytes_received);
    assert_eq!(totals.open_sessions(), ep.active_channel_count());
}

#[tokio::test]
async fn the_handle_follows_the_endpoint() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    // Made after some traffic: it starts from the endpoint's figures.
    h.send(&mut a, Party::Bob, &Msg::new("before", 1))
        .await
        .unwrap();
    let totals = a.totals_handle();
    agrees(&totals, &a);
    assert!(totals.bytes_sent() > 0);
    h.send(&mut a, Party::Bob, &Msg::new("after", 2))
        .await
        .unwrap();
    agrees(&totals, &a);
    for _ in 0..2 {
        let _: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    }
    h.send(&mut b, Party::Alice, &Msg::new("back", 3))
        .await
        .unwrap();
    let _: Msg = h.recv(&mut a, Party::Bob).await.unwrap();
    agrees(&totals, &a);
    assert!(totals.bytes_received() > 0);

    // A second call shares the same counters.
    let again = a.totals_handle();
    assert!(again.is_of(&a) && totals.is_of(&a));
    assert!(
        !totals.is_of(&b),
        "another endpoint's handle is not this one's"
    );

    let (x, _y) = SimpleChannel::pair();
    a.register_channel(Party::Carol, x);
    assert_eq!(totals.open_sessions(), 2);
    assert_eq!(a.abandon(&[Party::Carol]), 1);
    agrees(&totals, &a);
    let (x, _y) = SimpleChannel::pair();
    a.register_channel(Party::Carol, x);
    assert_eq!(totals.open_sessions(), 2);
    assert!(a.close_channel(&Party::Bob));
    agrees(&totals, &a);
    assert_eq!(a.close_all_channels(), 1);
    assert_eq!(totals.open_sessions(), 0);
    agrees(&totals, &a);
    // A failed operation moves nothing.
    let sent = totals.bytes_sent();
    assert!(h.send(&mut a, Party::Bob, &Msg::new("x", 4)).await.is_err());
    assert_eq!(totals.bytes_sent(), sent);
}

#[test]
fn a_dropped_endpoint_has_no_open_session() {
    let (mut a, _b) = alice_bob();
    let totals = a.totals_handle();
    let (x, _y) = SimpleChannel::pair();
    a.register_channel(Party::Carol, x);
    assert_eq!(totals.open_sessions(), 2);
    drop(a);
    // Dropping the endpoint drops its sessions: the handle, which outlives
    // it, must not go on reporting them open.
    assert_eq!(totals.open_sessions(), 0);
}

#[tokio::test]
async fn sessions_registered_after_the_handle_publish_too() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    let totals = a.totals_handle();
    // A new peer, after the handle: its operations reach the handle.
    let (x, mut carol) = SimpleChannel::pair();
    a.register_channel(Party::Carol, x);
    h.send(&mut a, Party::Carol, &Msg::new("to carol", 1))
        .await
        .unwrap();
    assert!(totals.bytes_sent() > 0);
    agrees(&totals, &a);
    assert!(!carol.recv().await.unwrap().is_empty());
    // A replaced session, after the handle: the same.
    let (x, y) = SimpleChannel::pair();
    a.register_channel(Party::Bob, x);
    b.register_channel(Party::Alice, y);
    let sent = totals.bytes_sent();
    h.send(&mut a, Party::Bob, &Msg::new("to bob", 2))
        .await
        .unwrap();
    assert!(totals.bytes_sent() > sent);
    agrees(&totals, &a);
    let _: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    h.send(&mut b, Party::Alice, &Msg::new("back", 3))
        .await
        .unwrap();
    let _: Msg = h.recv(&mut a, Party::Bob).await.unwrap();
    assert!(totals.bytes_received() > 0);
    agrees(&totals, &a);
}

/// Each session's counts: frames and bytes each way and the label frames
/// among them, from when the handle was made (or the session registered);
/// a replaced session keeps its final counts beside its successor's.
#[tokio::test]
async fn each_session_counts_its_frames_and_labels() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.send(&mut a, Party::Bob, &Msg::new("before", 0))
        .await
        .unwrap();
    let totals = a.totals_handle();
    assert_eq!(totals.session_count(), 1);
    let bob = totals.sessions(0).remove(0);
    assert_eq!(bob.peer(), "Bob");
    assert_eq!(
        bob.counts(),
        rumpsteak_aura_handler::SessionCounts::default()
    );
    h.send(&mut a, Party::Bob, &Msg::new("after", 1))
        .await
        .unwrap();
    h.choose(&mut a, Party::Bob, rumpsteak_aura::Label("go"))
        .await
        .unwrap();
    for _ in 0..2 {
        let _: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    }
    assert_eq!(
        h.offer(&mut b, Party::Alice).await.unwrap(),
        rumpsteak_aura::Label("go")
    );
    h.choose(&mut b, Party::Alice, rumpsteak_aura::Label("back"))
        .await
        .unwrap();
    assert_eq!(
        h.offer(&mut a, Party::Bob).await.unwrap(),
        rumpsteak_aura::Label("back")
    );
    let c = bob.counts();
    assert_eq!((c.frames_sent, c.labels_sent), (2, 1));
    assert_eq!((c.frames_received, c.labels_received), (1, 1));
    let t = a.traffic(&Party::Bob).unwrap();
    let first = t.bytes_sent - c.bytes_sent;
    assert!(first > 0, "the frame before the handle is not counted");
    assert_eq!(c.bytes_received, t.bytes_received);
    // A failed step counts nothing.
    let wrong: Result<Msg, _> = h.recv(&mut a, Party::Carol).await;
    assert!(wrong.is_err());
    assert_eq!(bob.counts(), c);

    // Replaced: the old session's counts stay, the new one starts at 0.
    let (x, y) = SimpleChannel::pair();
    a.register_channel(Party::Bob, x);
    b.register_channel(Party::Alice, y);
    assert_eq!(totals.session_count(), 2);
    h.send(&mut a, Party::Bob, &Msg::new("again", 2))
        .await
        .unwrap();
    let fresh = totals.sessions(1).remove(0);
    assert_eq!(fresh.peer(), "Bob");
    assert_eq!(fresh.counts().frames_sent, 1);
    assert_eq!(bob.counts(), c);
    assert!(totals.sessions(2).is_empty());
    agrees(&totals, &a);
    assert_eq!(
        totals.frames_sent(),
        a.total_traffic().frames_sent,
        "the totals add the frames before the handle"
    );
}

/// A handle of no endpoint reads nothing and belongs to no endpoint.
#[test]
fn the_default_handle_reads_no_endpoint() {
    let (a, _b) = alice_bob();
    let none = rumpsteak_aura_handler::TotalsHandle::default();
    assert!(!none.is_of(&a));
    assert_eq!((none.bytes_sent(), none.open_sessions()), (0, 0));
    assert_eq!(none.session_count(), 0);
    assert!(none.sessions(0).is_empty());
}
