//! Traced: the spans and fields a subscriber sees, captured with a test
//! subscriber installed for the test's thread only.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_layers::{HandlerExt, Traced};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// An event's level and fields.
type EventData = (Level, BTreeMap<String, String>);

#[derive(Clone, Debug, Default)]
struct SpanData {
    name: &'static str,
    level: Option<Level>,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<(u64, SpanData)>>>,
    events: Arc<Mutex<Vec<EventData>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut data = SpanData {
            name: attrs.metadata().name(),
            level: Some(*attrs.metadata().level()),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            ..SpanData::default()
        };
        attrs.record(&mut Fields(&mut data.fields));
        self.spans.lock().unwrap().push((id.into_u64(), data));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some((_, data)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut data.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields));
    }
}

fn captured<T>(f: impl FnOnce() -> T) -> (T, Vec<SpanData>, Vec<EventData>) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    let spans = capture
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    let events = capture.events.lock().unwrap().clone();
    (out, spans, events)
}

fn field<'a>(s: &'a SpanData, name: &str) -> Option<&'a str> {
    s.fields.get(name).map(String::as_str)
}

#[test]
fn every_operation_has_a_span_in_the_session_span() {
    let secret = Offer {
        item: "the-secret-item".into(),
        price: 424242,
    };
    let (_, spans, events) = captured(|| {
        runtime().block_on(async {
            let (mut a, mut b) = pair(Role::A, Role::B);
            let mut ha = Traced::new(Handler::new());
            let mut hb = Handler::new();
            ha.send(&mut a, Role::B, &secret).await.expect("send");
            let _: Offer = hb.recv(&mut b, Role::A).await.expect("recv");
            hb.choose(&mut b, Role::A, Label("accept"))
                .await
                .expect("choose");
            let l = ha
                .offer_among(&mut a, Role::B, &[Label("accept")])
                .await
                .expect("offer");
            assert_eq!(l, Label("accept"));
            ha.choose(&mut a, Role::B, Label("bye"))
                .await
                .expect("choose");
            hb.send(&mut b, Role::A, &7u32).await.expect("send");
            let n: u32 = ha.recv(&mut a, Role::B).await.expect("recv");
            assert_eq!(n, 7);
        })
    });

    let session: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "rumpsteak_session")
        .collect();
    assert_eq!(session.len(), 1, "one session span");
    assert_eq!(session[0].level, Some(Level::INFO));
    assert_eq!(field(session[0], "role"), Some("A"));

    let ops: Vec<_> = spans.iter().filter(|s| s.name == "rumpsteak_op").collect();
    assert_eq!(ops.len(), 4);
    for s in &ops {
        assert_eq!(
            s.level,
            Some(Level::DEBUG),
            "operation spans are at debug level"
        );
        assert_eq!(s.parent.as_deref(), Some("rumpsteak_session"));
        assert_eq!(field(s, "role"), Some("A"));
        assert_eq!(field(s, "peer"), Some("B"));
        assert_eq!(field(s, "outcome"), Some("ok"));
        assert!(field(s, "duration_us").is_some());
        assert!(field(s, "error").is_none());
    }
    let kinds: Vec<_> = ops.iter().map(|s| field(s, "op").unwrap_or("")).collect();
    assert_eq!(kinds, ["send", "offer", "choose", "recv"]);

    assert_eq!(field(ops[0], "msg"), Some("Offer"));
    // Header (2 bytes), the item (1 + 15 bytes) and the price as a varint (3).
    assert_eq!(field(ops[0], "bytes"), Some("21"));
    assert_eq!(field(ops[1], "label"), Some("accept"));
    assert_eq!(field(ops[2], "label"), Some("bye"));
    assert_eq!(field(ops[3], "msg"), Some("u32"));
    assert_eq!(field(ops[3], "bytes"), Some("3"));

    // Nothing at info level or above per operation, and no payload anywhere.
    assert!(
        events.iter().all(|(level, _)| *level > Level::INFO),
        "{events:?}"
    );
    let everything = format!("{spans:?}{events:?}");
    assert!(!everything.contains("the-secret-item"));
    assert!(!everything.contains("424242"));
}

#[test]
fn a_failed_operation_records_its_error() {
    let (_, spans, _) = captured(|| {
        runtime().block_on(async {
            let (_a, mut b) = pair(Role::A, Role::B);
            let mut h = Traced::new(Handler::new());
            let e = h.recv::<u32>(&mut b, Role::Seller).await;
            assert!(e.is_err());
            let e = h
                .recv_timeout::<u32>(&mut b, Role::A, Duration::from_millis(2))
                .await;
            assert!(e.is_err());
        })
    });
    let ops: Vec<_> = spans.iter().filter(|s| s.name == "rumpsteak_op").collect();
    assert_eq!(ops.len(), 2);
    assert_eq!(field(ops[0], "outcome"), Some("error"));
    assert_eq!(field(ops[0], "peer"), Some("Seller"));
    assert_eq!(
        field(ops[0], "error"),
        Some("recv from Seller: no open channel is registered for this peer")
    );
    assert!(field(ops[0], "bytes").is_none());
    assert_eq!(field(ops[1], "timeout_ms"), Some("2"));
    assert_eq!(
        field(ops[1], "error"),
        Some("operation timed out after 2ms")
    );
}

#[test]
fn a_cancelled_operation_says_so() {
    let (_, spans, _) = captured(|| {
        runtime().block_on(async {
            let (_a, mut b) = pair(Role::A, Role::B);
            let mut h = Traced::new(Handler::new());
            let r = tokio::time::timeout(Duration::from_millis(2), h.recv::<u32>(&mut b, Role::A))
                .await;
            assert!(r.is_err());
        })
    });
    let op = spans
        .iter()
        .find(|s| s.name == "rumpsteak_op")
        .expect("op span");
    assert_eq!(field(op, "outcome"), Some("cancelled"));
    assert!(field(op, "bytes").is_none());
}

#[test]
fn a_given_session_span_is_the_parent() {
    let (_, spans, _) = captured(|| {
        runtime().block_on(async {
            let (mut a, _b) = pair(Role::A, Role::B);
            let span = tracing::info_span!("purchase", order = 7);
            let mut h = Traced::with_session_span(Handler::new(), span);
            h.send(&mut a, Role::B, &1u8).await.expect("send");
            h.new_session();
            h.send(&mut a, Role::B, &2u8).await.expect("send");
        })
    });
    let parents: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "rumpsteak_op")
        .map(|s| s.parent.clone().unwrap_or_default())
        .collect();
    assert_eq!(parents, ["purchase", "rumpsteak_session"]);
}
