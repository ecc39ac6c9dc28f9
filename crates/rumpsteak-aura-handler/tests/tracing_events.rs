//! Each operation emits a debug event with the peer, the operation and the
//! frame size, and nothing at info level or above.

mod common;

use std::sync::{Arc, Mutex};

use common::{Handler, Msg, Party, alice_bob};
use rumpsteak_aura::{ChoreoHandler, Label};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(Level, String)>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl<S: Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
}

#[tokio::test]
async fn operations_emit_debug_events() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let (mut a, mut b) = alice_bob();
    let mut h = Handler::new();
    h.send(&mut a, Party::Bob, &Msg::new("hi", 1))
        .await
        .unwrap();
    let _: Msg = h.recv(&mut b, Party::Alice).await.unwrap();
    h.choose(&mut b, Party::Alice, Label("done")).await.unwrap();
    h.offer(&mut a, Party::Bob).await.unwrap();

    let events = captured.0.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(events.iter().all(|(level, _)| *level == Level::DEBUG));
    let expect = [
        ("local=Alice", "peer=Bob", "op=\"send\""),
        ("local=Bob", "peer=Alice", "op=\"recv\""),
        ("local=Bob", "peer=Alice", "op=\"choose\""),
        ("local=Alice", "peer=Bob", "op=\"offer\""),
    ];
    for ((_, fields), (local, peer, op)) in events.iter().zip(expect) {
        assert!(fields.contains(local), "{fields}");
        assert!(fields.contains(peer), "{fields}");
        assert!(fields.contains(op), "{fields}");
        assert!(fields.contains("bytes="), "{fields}");
    }
}
