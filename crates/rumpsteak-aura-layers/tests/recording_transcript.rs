//! Recording: what the transcript holds, that it serializes, and its
//! bound with the documented policy when full.

mod common;

use common::*;
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_handler::SimpleChannel;
use rumpsteak_aura_layers::{ErrorClass, HandlerExt, Limits, OpKind, Recording, Transcript};

#[test]
fn the_transcript_holds_every_operation_and_its_outcome() {
    let rec = Recording::new(Handler::new());
    let (x, y) = SimpleChannel::pair();
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, rec.tap(&Role::B, x));
    let mut b = Endpoint::new(Role::B);
    b.register_channel(Role::A, y);
    let mut h = rec.clone();
    runtime().block_on(async {
        let mut hb = Handler::new();
        let offer = Offer {
            item: "lamp".into(),
            price: 40,
        };
        h.send(&mut a, Role::B, &offer).await.expect("send");
        let _: Offer = hb.recv(&mut b, Role::A).await.expect("recv");
        hb.send(&mut b, Role::A, &offer.price).await.expect("send");
        let _: u32 = h.recv(&mut a, Role::B).await.expect("recv");
        h.choose(&mut a, Role::B, OFFER).await.expect("choose");
        hb.choose(&mut b, Role::A, ACCEPT).await.expect("choose");
        h.offer_among(&mut a, Role::B, &[ACCEPT])
            .await
            .expect("offer");
        hb.send(&mut b, Role::A, &u64::MAX).await.expect("send");
        assert!(h.recv::<u32>(&mut a, Role::B).await.is_err());
    });
    let t = rec.transcript();
    assert_eq!(t.role.as_deref(), Some("A"));
    assert!(!t.truncated);
    let ops: Vec<_> = t.entries.iter().map(|e| e.op).collect();
    assert_eq!(
        ops,
        [
            OpKind::Send,
            OpKind::Recv,
            OpKind::Choose,
            OpKind::Offer,
            OpKind::Recv
        ]
    );
    assert!(t.entries.iter().all(|e| e.peer == "B"));

    let send = &t.entries[0];
    assert_eq!(send.msg.as_deref(), Some("Offer"));
    assert_eq!(
        send.payload.as_deref(),
        Some(&[4, b'l', b'a', b'm', b'p', 40][..])
    );
    assert_eq!(send.bytes, 8);
    assert!(send.error.is_none());

    let recv = &t.entries[1];
    assert_eq!(recv.msg.as_deref(), Some("u32"));
    assert_eq!(
        recv.payload.as_deref(),
        Some(&[40][..]),
        "tapped from the session"
    );
    assert_eq!(recv.bytes, 3);

    assert_eq!(t.entries[2].label.as_deref(), Some("offer"));
    assert_eq!(t.entries[3].label.as_deref(), Some("accept"));
    assert_eq!(t.entries[3].payload, None);

    let failed = &t.entries[4];
    let e = failed
        .error
        .as_ref()
        .expect("the failed recv has its error");
    assert_eq!(e.class, ErrorClass::Serialization);
    assert_eq!(e.message, "recv from B: could not decode a `u32`");
    assert_eq!(failed.bytes, 0);

    // Through serde and back, unchanged.
    let json = serde_json::to_string(&t).expect("serializes");
    assert!(json.contains("\"op\":\"offer\""));
    let back: Transcript = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, t);
}

#[test]
fn without_a_tap_received_payloads_are_absent() {
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Recording::new(Handler::new());
    runtime().block_on(async {
        Handler::new()
            .send(&mut b, Role::A, &9u8)
            .await
            .expect("send");
        let _: u8 = h.recv(&mut a, Role::B).await.expect("recv");
    });
    let t = h.transcript();
    assert_eq!(t.entries[0].payload, None);
    assert_eq!(t.entries[0].bytes, 3);
}

#[test]
fn a_full_transcript_keeps_its_prefix_and_counts_the_rest() {
    let (mut a, _b) = pair(Role::A, Role::B);
    let mut h = Recording::with_limits(Handler::new(), Limits::new(3, 1024));
    runtime().block_on(async {
        for i in 0..5u8 {
            h.send(&mut a, Role::B, &i).await.expect("send");
        }
        h.choose(&mut a, Role::B, Label("x")).await.expect("choose");
    });
    let t = h.transcript();
    assert_eq!(t.entries.len(), 3);
    assert!(t.truncated);
    assert_eq!(t.dropped, 3);
    let first: Vec<_> = t
        .entries
        .iter()
        .map(|e| e.payload.clone().unwrap_or_default())
        .collect();
    assert_eq!(first, [vec![0], vec![1], vec![2]]);

    // The payload budget counts too.
    let (mut a, _b) = pair(Role::A, Role::B);
    let mut h = Recording::with_limits(Handler::new(), Limits::new(100, 10));
    runtime().block_on(async {
        h.send(&mut a, Role::B, &[7u8; 6]).await.expect("send");
        h.send(&mut a, Role::B, &[7u8; 6]).await.expect("send");
    });
    let t = h.take_transcript();
    assert_eq!((t.entries.len(), t.dropped, t.payload_bytes), (1, 1, 6));
    assert!(h.transcript().entries.is_empty(), "taken");
}
