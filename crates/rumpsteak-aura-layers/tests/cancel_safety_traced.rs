//! The cancel-safety run of `cancel_safety.rs` with a subscriber that
//! wants every span, so that `Traced` takes its instrumented path. Alone
//! in its binary: a test without a subscriber running beside it changes
//! the callsite interest that `tracing` caches for the whole process.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The same with a subscriber that wants every span, so that `Traced`
/// takes its instrumented path: each cancelled receive closes its span as
/// cancelled, and still nothing is lost.
#[test]
fn cancelled_receives_lose_nothing_with_spans_on() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let cancelled = tracing::subscriber::with_default(subscriber, cancelled_receives);
    let seen = spans.0.lock().expect("spans");
    assert_eq!(
        seen.ops,
        20 + cancelled,
        "a span per receive, cancelled or not"
    );
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
