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
