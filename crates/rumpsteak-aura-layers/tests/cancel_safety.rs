//! A layered role cancelled mid-operation (a timeout around `recv`) loses
//! nothing, as without layers; the layers record only what completed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_layers::{HandlerExt, Metered, Recording, Traced};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[test]
fn cancelled_receives_lose_nothing_through_every_layer() {
    cancelled_receives();
}

/// The same with a subscriber that wants every span, so that `Traced`
/// takes its instrumented path: each cancelled receive closes its span as
/// cancelled, and still nothing is lost.
#[test]
fn cancelled_receives_lose_nothing_with_spans_on() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let cancelled = tracing::subscriber::with_default(subscriber, cancelled_receives);
    let seen = spans.0.lock().expect("spans");
    assert_eq!(seen.ops, 20 + cancelled, "a span per receive, cancelled or not");
    assert_eq!(seen.cancelled, cancelled);
}

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<SpanCount>>);

#[derive(Default)]
struct SpanCount {
    ops: u64,
    cancelled: u64,
}

struct Outcome<'a>(&'a mut bool);

impl Visit for Outcome<'_> {
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "outcome" && value == "cancelled" {
            *self.0 = true;
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "rumpsteak_op" {
            self.0.lock().expect("spans").ops += 1;
        }
    }
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut cancelled = false;
        values.record(&mut Outcome(&mut cancelled));
        if cancelled {
            self.0.lock().expect("spans").cancelled += 1;
        }
    }
}

/// Receives 20 numbers through `Traced<Metered<Recording>>` with a 1 ms
/// timeout around each receive; returns how many receives were cancelled.
fn cancelled_receives() -> u64 {
    let rt = runtime();
    let rec = Recording::new(Handler::new());
    let (mut a, mut b) = pair(Role::A, Role::B);
    let b_session_for_tap = {
        // Re-register B's session through the recording's tap.
        let (x, y) = rumpsteak_aura_handler::SimpleChannel::pair();
        a.register_channel(Role::B, x);
        y
    };
    b.register_session(Role::A, rec.tap(&Role::A, b_session_for_tap));
    let mut h = Traced::new(Metered::new(rec.clone()));

    let got = rt.block_on(async {
        let sender = async {
            let mut s = Handler::new();
            for i in 0..20u32 {
                // Let the receiver time out now and then.
                if i % 4 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                s.send(&mut a, Role::B, &i).await.expect("send");
            }
        };
        let receiver = async {
            let mut got = Vec::new();
            let mut cancelled = 0;
            while got.len() < 20 {
                // An outer timeout drops the layered recv future mid-wait.
                match tokio::time::timeout(Duration::from_millis(1), h.recv::<u32>(&mut b, Role::A))
                    .await
                {
                    Ok(r) => got.push(r.expect("recv")),
                    Err(_) => cancelled += 1,
                }
            }
            (got, cancelled)
        };
        let ((), got) = tokio::join!(sender, receiver);
        got
    });
    let (got, cancelled) = got;
    assert_eq!(
        got,
        (0..20).collect::<Vec<_>>(),
        "every message, once, in order"
    );
    assert!(cancelled > 0, "the test cancelled at least one receive");

    let snapshot = h.inner().snapshot();
    let peer = snapshot.peer("A").expect("peer A");
    assert_eq!(peer.operations.recv, 20, "only completed receives count");
    assert_eq!(peer.cancelled, cancelled);
    assert_eq!(peer.errors.total(), 0);
    let t = rec.transcript();
    assert_eq!(
        t.entries.len() as u64,
        20 + cancelled,
        "a cancelled receive leaves an entry marked cancelled"
    );
    let (done, dropped): (Vec<_>, Vec<_>) = t.entries.iter().partition(|e| e.cancelled.is_none());
    for e in &dropped {
        // Never counted as delivered: no payload, no bytes.
        assert_eq!((e.payload.as_deref(), e.bytes), (None, 0), "{e}");
        assert_eq!(e.cancelled.and_then(|c| c.deadline), None);
    }
    for (i, e) in done.iter().enumerate() {
        let n: u32 =
            postcard::from_bytes(e.payload.as_deref().expect("tapped payload")).expect("u32");
        assert_eq!(n, i as u32);
    }
    assert_eq!(
        b.get_metadata(&Role::A).map(|m| m.operation_count),
        Some(20)
    );
    cancelled
}

#[test]
fn recv_timeout_through_the_stack_loses_nothing() {
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Metered::new(Traced::new(Recording::new(Handler::new())));
    rt.block_on(async {
        let e = h
            .recv_timeout::<u32>(&mut b, Role::A, Duration::from_millis(2))
            .await;
        assert!(matches!(
            e,
            Err(rumpsteak_aura::ChoreographyError::Timeout(_))
        ));
        Handler::new()
            .send(&mut a, Role::B, &5u32)
            .await
            .expect("send");
        let n: u32 = h
            .recv_timeout(&mut b, Role::A, DEADLINE)
            .await
            .expect("recv");
        assert_eq!(n, 5);
    });
    let p = h.snapshot().peers.remove(0);
    assert_eq!(p.operations.recv, 2);
    assert_eq!(p.errors.timeout, 1);
    assert_eq!(
        p.cancelled, 0,
        "a timeout inside the layer is an error, not a cancellation"
    );
    let t = h.inner().inner().transcript();
    assert_eq!(t.entries.len(), 2);
    assert!(t.entries[0].error.is_some() && t.entries[1].error.is_none());
}
