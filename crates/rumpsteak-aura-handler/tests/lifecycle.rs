//! Registration, replacement and closing; the channel counters agree.

mod common;

use common::{Handler, Msg, Party, alice_bob};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError};
use rumpsteak_aura_handler::{RumpsteakEndpoint, SimpleChannel};

fn assert_consistent(ep: &RumpsteakEndpoint<Party>) {
    let open = [Party::Alice, Party::Bob, Party::Carol]
        .iter()
        .filter(|p| ep.has_channel(p))
        .count();
    assert_eq!(open, ep.active_channel_count());
    assert_eq!(ep.is_all_closed(), open == 0);
}

#[tokio::test]
async fn close_delivers_everything_sent_before_then_closed() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    for n in 0..3 {
        h.send(&mut a, Party::Bob, &Msg::new("before close", n))
            .await
            .unwrap();
    }
    assert!(a.close_channel(&Party::Bob));
    assert!(!a.close_channel(&Party::Bob), "second close is a no-op");
    assert_consistent(&a);
    for n in 0..3 {
        let m: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
        assert_eq!(m.n, n);
    }
    let e = h.recv::<Msg>(&mut b, Party::Alice).await.unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert_eq!(e.to_string(), "recv from Alice: channel closed by peer");
    // Bob's side still holds the (closed) channel until Bob closes it.
    assert!(b.has_channel(&Party::Alice));
    let meta = b.get_metadata(&Party::Alice).unwrap();
    assert!(meta.is_complete);
    assert_eq!(meta.state_description, "closed by Alice");
    assert_eq!(meta.operation_count, 3);

    // Alice's operations on the closed channel fail without a panic.
    let e = h
        .send(&mut a, Party::Bob, &Msg::new("late", 9))
        .await
        .unwrap_err();
    assert!(matches!(e, ChoreographyError::NoChannel { .. }));
    let meta = a.get_metadata(&Party::Bob).unwrap();
    assert_eq!(meta.state_description, "closed");
    assert!(meta.is_complete);
}

#[tokio::test]
async fn close_all_and_drop() {
    let mut hub = RumpsteakEndpoint::new(Party::Alice);
    let (c1, mut bob) = SimpleChannel::pair();
    let (c2, mut carol) = SimpleChannel::pair();
    assert_consistent(&hub);
    assert!(hub.is_all_closed());
    hub.register_channel(Party::Bob, c1);
    assert_consistent(&hub);
    hub.register_channel(Party::Carol, c2);
    assert_consistent(&hub);
    assert_eq!(hub.active_channel_count(), 2);
    assert!(hub.close_channel(&Party::Carol));
    assert_consistent(&hub);
    assert_eq!(hub.close_all_channels(), 1);
    assert_consistent(&hub);
    assert_eq!(hub.close_all_channels(), 0);
    assert!(bob.recv().await.is_err());
    assert!(carol.recv().await.is_err());
    assert_eq!(hub.all_metadata().len(), 2);

    // Drop closes too.
    let (c3, mut dave) = SimpleChannel::pair();
    {
        let mut ep = RumpsteakEndpoint::new(Party::Alice);
        ep.register_channel(Party::Bob, c3);
        Handler::new()
            .send(&mut ep, Party::Bob, &Msg::new("last words", 1))
            .await
            .unwrap();
    }
    assert!(dave.recv().await.is_ok(), "sent before drop arrives");
    assert!(dave.recv().await.is_err(), "then closed");
}

#[tokio::test]
async fn registering_twice_replaces_and_closes_the_old_session() {
    let mut a = RumpsteakEndpoint::new(Party::Alice);
    let (old, mut old_peer) = SimpleChannel::pair();
    let (new, new_peer) = SimpleChannel::pair();
    a.register_channel(Party::Bob, old);
    let mut h = Handler::new();
    h.send(&mut a, Party::Bob, &Msg::new("old", 1))
        .await
        .unwrap();
    a.register_channel(Party::Bob, new);
    assert_eq!(a.active_channel_count(), 1);
    assert_consistent(&a);
    // The old peer gets what was sent, then sees the close.
    assert!(old_peer.recv().await.is_ok());
    assert!(old_peer.recv().await.is_err());
    // Metadata starts afresh for the new session.
    let meta = a.get_metadata(&Party::Bob).unwrap();
    assert_eq!(meta.operation_count, 0);
    assert_eq!(meta.state_description, "registered with Bob");

    let mut b = RumpsteakEndpoint::new(Party::Bob);
    b.register_channel(Party::Alice, new_peer);
    h.send(&mut a, Party::Bob, &Msg::new("new", 2))
        .await
        .unwrap();
    let m: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    assert_eq!(m.text, "new");
}

#[tokio::test]
async fn errors_never_unregister_the_channel() {
    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.send(&mut a, Party::Bob, &7u8).await.unwrap();
    assert!(h.recv::<Msg>(&mut b, Party::Alice).await.is_err());
    assert!(b.has_channel(&Party::Alice));
    assert_consistent(&b);
}
