//! The guide's best practices, as user code against the facade: resource
//! management, error handling, channel setup, metadata logging and the
//! `#[tokio::test]` shape.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumpsteak_aura_choreography::effects::{
    ChoreoHandler, ChoreographyError, Operation, TransportErrorKind,
    handlers::rumpsteak::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel},
};
use serde::{Deserialize, Serialize};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Alice,
    Bob,
}

impl rumpsteak_aura::Role for Role {
    type Message = TestMessage;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TestMessage {
    data: Vec<u8>,
}

type Handler = RumpsteakHandler<Role, TestMessage>;

fn msg(n: u8) -> TestMessage {
    TestMessage { data: vec![n] }
}

fn setup() -> (RumpsteakEndpoint<Role>, RumpsteakEndpoint<Role>) {
    let mut alice_ep = RumpsteakEndpoint::new(Role::Alice);
    let mut bob_ep = RumpsteakEndpoint::new(Role::Bob);
    let (ch1, ch2) = SimpleChannel::pair();
    alice_ep.register_channel(Role::Bob, ch1);
    bob_ep.register_channel(Role::Alice, ch2);
    (alice_ep, bob_ep)
}

/// A tracing writer that keeps everything written into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs, for the current thread, a subscriber that writes events at
/// `level` and above into the returned buffer.
fn capture_logs(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(level)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

// ---------------------------------------------------------------------------
// 1. Resource management

#[tokio::test]
async fn explicit_close_delivers_everything_then_closed() -> Result<(), Box<dyn std::error::Error>>
{
    let (mut endpoint, mut bob_ep) = setup();
    let mut handler = Handler::new();
    for n in 1..=3 {
        handler.send(&mut endpoint, Role::Bob, &msg(n)).await?;
    }

    // Close channels explicitly when done
    let closed = endpoint.close_all_channels();
    assert_eq!(closed, 1);
    assert!(endpoint.is_all_closed());
    assert!(!endpoint.has_channel(&Role::Bob));

    // The peer receives everything sent before the close ...
    for n in 1..=3 {
        let got: TestMessage = handler.recv(&mut bob_ep, Role::Alice).await?;
        assert_eq!(got, msg(n));
    }
    // ... and then a closed-channel transport error.
    let err = handler
        .recv::<TestMessage>(&mut bob_ep, Role::Alice)
        .await
        .unwrap_err();
    let ChoreographyError::Transport(e) = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert!(matches!(e.kind(), TransportErrorKind::Closed));
    assert_eq!(e.peer(), Some("Alice"));
    assert_eq!(e.operation(), Some(Operation::Recv));
    assert_eq!(err.to_string(), "recv from Alice: channel closed by peer");

    // Both sides' metadata say so; the receiving side keeps its channel
    // registered (errors never unregister), marked complete.
    let bob_meta = bob_ep.get_metadata(&Role::Alice).ok_or("no metadata")?;
    assert!(bob_meta.is_complete);
    assert_eq!(bob_meta.state_description, "closed by Alice");
    assert_eq!(bob_meta.operation_count, 3);
    let alice_meta = endpoint.get_metadata(&Role::Bob).ok_or("no metadata")?;
    assert!(alice_meta.is_complete);
    assert_eq!(alice_meta.state_description, "closed");

    // The closed side can no longer send.
    let err = handler
        .send(&mut endpoint, Role::Bob, &msg(4))
        .await
        .unwrap_err();
    assert!(matches!(err, ChoreographyError::NoChannel { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn drop_closes_every_channel() -> Result<(), ChoreographyError> {
    let mut handler = Handler::new();
    let mut bob_ep = RumpsteakEndpoint::new(Role::Bob);
    let role = Role::Alice;

    // Use Drop to ensure cleanup
    {
        let mut endpoint = RumpsteakEndpoint::new(role);
        let (alice_ch, bob_ch) = SimpleChannel::pair();
        endpoint.register_channel(Role::Bob, alice_ch);
        bob_ep.register_channel(Role::Alice, bob_ch);
        handler.send(&mut endpoint, Role::Bob, &msg(1)).await?;
    } // Drop ensures cleanup

    let got: TestMessage = handler.recv(&mut bob_ep, Role::Alice).await?;
    assert_eq!(got, msg(1));
    let err = handler
        .recv::<TestMessage>(&mut bob_ep, Role::Alice)
        .await
        .unwrap_err();
    assert!(err.is_closed(), "{err}");
    Ok(())
}

#[tokio::test]
async fn forgetting_to_close_leaves_the_peer_waiting() -> Result<(), ChoreographyError> {
    // What the guide warns against: while the endpoint lives, its channels
    // stay open and the peer waits for more.
    let (endpoint, mut bob_ep) = setup();
    let mut handler = Handler::new();
    let waiting = handler
        .recv_timeout::<TestMessage>(&mut bob_ep, Role::Alice, Duration::from_millis(30))
        .await;
    assert!(matches!(waiting, Err(ChoreographyError::Timeout(_))));
    assert_eq!(endpoint.active_channel_count(), 1);

    drop(endpoint);
    let ended = handler
        .recv_timeout::<TestMessage>(&mut bob_ep, Role::Alice, Duration::from_secs(5))
        .await;
    assert!(ended.is_err_and(|e| e.is_closed()));
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Error handling

#[tokio::test]
async fn transport_errors_are_matched_and_displayable() {
    let (log, _guard) = capture_logs(tracing::Level::INFO);
    let (mut ep, bob_ep) = setup();
    let mut handler = Handler::new();
    let role = Role::Bob;
    let msg = msg(1);
    drop(bob_ep); // the peer goes away

    let mut outcome = String::new();
    match handler.send(&mut ep, role, &msg).await {
        Ok(()) => { /* success */ }
        Err(ChoreographyError::Transport(e)) => {
            // Handle transport error
            tracing::error!("Send failed: {}", e);
            outcome = e.to_string();
            assert!(e.is_closed());
        }
        Err(e) => {
            // Handle other errors
            panic!("expected a transport error, got {e}");
        }
    }
    assert_eq!(outcome, "send to Bob: channel closed by peer");
    let logged = log.text();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("Send failed: send to Bob: channel closed by peer"),
        "{logged}"
    );
    // An error never unregisters the channel.
    assert!(ep.has_channel(&Role::Bob));
}

// ---------------------------------------------------------------------------
// 3. Channel setup

async fn protocol_run(
    alice_ep: &mut RumpsteakEndpoint<Role>,
    bob_ep: &mut RumpsteakEndpoint<Role>,
) -> Result<TestMessage, ChoreographyError> {
    let mut handler = Handler::new();
    handler.send(alice_ep, Role::Bob, &msg(9)).await?;
    handler.recv(bob_ep, Role::Alice).await
}

#[tokio::test]
async fn set_up_channels_before_the_protocol() -> Result<(), ChoreographyError> {
    let mut alice_ep = RumpsteakEndpoint::new(Role::Alice);
    let mut bob_ep = RumpsteakEndpoint::new(Role::Bob);

    // Setup all channels before starting protocol
    let (ch1, ch2) = SimpleChannel::pair();
    alice_ep.register_channel(Role::Bob, ch1);
    bob_ep.register_channel(Role::Alice, ch2);

    // Then start protocol
    let got = protocol_run(&mut alice_ep, &mut bob_ep).await?;
    assert_eq!(got, msg(9));
    Ok(())
}

#[tokio::test]
async fn sending_before_registration_is_a_no_channel_error() -> Result<(), ChoreographyError> {
    let mut ep = RumpsteakEndpoint::new(Role::Alice);
    let mut bob_ep = RumpsteakEndpoint::new(Role::Bob);
    let mut handler = Handler::new();
    let role = Role::Bob;
    let msg = msg(1);

    // Don't register channels mid-protocol
    let err = handler.send(&mut ep, role, &msg).await.unwrap_err(); // Might not have channel!
    match &err {
        ChoreographyError::NoChannel { peer, op } => {
            assert_eq!(peer, "Bob");
            assert_eq!(*op, Operation::Send);
        }
        other => panic!("expected NoChannel, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "send to Bob: no open channel is registered for this peer"
    );
    // Nothing was recorded for a peer that was never registered.
    assert!(ep.get_metadata(&Role::Bob).is_none());

    let (channel, bob_ch) = SimpleChannel::pair();
    ep.register_channel(role, channel); // Too late!
    bob_ep.register_channel(Role::Alice, bob_ch);

    // Only what is sent after registration arrives.
    handler
        .send(&mut ep, role, &TestMessage { data: vec![2] })
        .await?;
    let got: TestMessage = handler.recv(&mut bob_ep, Role::Alice).await?;
    assert_eq!(got.data, [2]);
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Metadata usage

#[tokio::test]
async fn metadata_logged_with_tracing() -> Result<(), ChoreographyError> {
    let (log, _guard) = capture_logs(tracing::Level::INFO);
    let (mut endpoint, mut bob_ep) = setup();
    let mut handler = Handler::new();
    handler.send(&mut endpoint, Role::Bob, &msg(1)).await?;
    let _: TestMessage = handler.recv(&mut bob_ep, Role::Alice).await?;
    handler.send(&mut endpoint, Role::Bob, &msg(2)).await?;
    // The handler logs nothing at info level on its own: the buffer stays
    // empty until the application logs.
    assert_eq!(log.text(), "");

    let peer = Role::Bob;
    // Use metadata for debugging and monitoring
    if let Some(meta) = endpoint.get_metadata(&peer) {
        tracing::info!(
            peer = ?peer,
            operations = meta.operation_count,
            state = %meta.state_description,
            "Session status"
        );
    }

    let logged = log.text();
    assert_eq!(logged.lines().count(), 1, "{logged}");
    assert!(logged.contains("INFO"), "{logged}");
    assert!(logged.contains("Session status"), "{logged}");
    assert!(logged.contains("peer=Bob"), "{logged}");
    assert!(logged.contains("operations=2"), "{logged}");
    assert!(logged.contains("state=sent TestMessage to Bob"), "{logged}");
    Ok(())
}

#[tokio::test]
async fn operations_emit_debug_events_with_roles_operation_and_size()
-> Result<(), ChoreographyError> {
    let (log, _guard) = capture_logs(tracing::Level::DEBUG);
    let (mut endpoint, mut bob_ep) = setup();
    let mut handler = Handler::new();
    handler.send(&mut endpoint, Role::Bob, &msg(1)).await?;
    let _: TestMessage = handler.recv(&mut bob_ep, Role::Alice).await?;

    let logged = log.text();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 2, "{logged}");
    assert!(lines.iter().all(|l| l.contains("DEBUG")), "{logged}");
    // Each names the local role, the peer and the operation.
    for (line, local, peer, op) in [
        (lines[0], "Alice", "Bob", "send"),
        (lines[1], "Bob", "Alice", "recv"),
    ] {
        assert!(line.contains(&format!("local={local}")), "{line}");
        assert!(line.contains(&format!("peer={peer}")), "{line}");
        assert!(line.contains(&format!("op=\"{op}\"")), "{line}");
    }
    // A one-byte Vec is a two-byte header plus two payload bytes.
    assert!(lines.iter().all(|l| l.contains("bytes=4")), "{logged}");
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Testing: the guide's `#[tokio::test]` shape, as written.

#[tokio::test]
async fn test_protocol() {
    let mut handler = RumpsteakHandler::<Role, TestMessage>::new();

    // Setup test environment
    let mut alice_ep = RumpsteakEndpoint::new(Role::Alice);
    let mut bob_ep = RumpsteakEndpoint::new(Role::Bob);

    let (alice_ch, bob_ch) = SimpleChannel::pair();
    alice_ep.register_channel(Role::Bob, alice_ch);
    bob_ep.register_channel(Role::Alice, bob_ch);

    // Test protocol
    let msg = TestMessage {
        data: vec![1, 2, 3],
    };
    handler.send(&mut alice_ep, Role::Bob, &msg).await.unwrap();

    let received: TestMessage = handler.recv(&mut bob_ep, Role::Alice).await.unwrap();
    assert_eq!(received.data, vec![1, 2, 3]);
}
