//! The guide's API reference, as user code against the facade: channel
//! management, metadata, the four operations, `SimpleChannel`, both session
//! builders and `SessionMetadata`.

use std::time::Duration;

use futures::channel::mpsc;
use rumpsteak_aura_choreography::effects::{
    ChoreoHandler, ChoreographyError, Label, Operation, Violation,
    handlers::rumpsteak::{
        RumpsteakEndpoint, RumpsteakHandler, RumpsteakSession, SessionMetadata, SimpleChannel,
    },
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Alice,
    Bob,
    Carol,
    Dave,
}

impl rumpsteak_aura::Role for Role {
    type Message = Ping;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping {
    seq: u32,
    note: String,
}

fn ping(seq: u32) -> Ping {
    Ping {
        seq,
        note: format!("ping {seq}"),
    }
}

type Handler = RumpsteakHandler<Role, Ping>;

/// Two endpoints joined by a `SimpleChannel` pair.
fn connected(a: Role, b: Role) -> (RumpsteakEndpoint<Role>, RumpsteakEndpoint<Role>) {
    let mut a_ep = RumpsteakEndpoint::new(a);
    let mut b_ep = RumpsteakEndpoint::new(b);
    let (a_ch, b_ch) = SimpleChannel::pair();
    a_ep.register_channel(b, a_ch);
    b_ep.register_channel(a, b_ch);
    (a_ep, b_ep)
}

/// `has_channel`, `active_channel_count` and `is_all_closed` must tell the
/// same story; `open` is the set of peers that should have a channel.
fn assert_agree(ep: &RumpsteakEndpoint<Role>, open: &[Role]) {
    let all = [Role::Alice, Role::Bob, Role::Carol, Role::Dave];
    for peer in all {
        assert_eq!(
            ep.has_channel(&peer),
            open.contains(&peer),
            "has_channel({peer:?}) with open = {open:?}"
        );
    }
    let counted = all.iter().filter(|p| ep.has_channel(p)).count();
    assert_eq!(ep.active_channel_count(), open.len());
    assert_eq!(ep.active_channel_count(), counted);
    assert_eq!(ep.is_all_closed(), open.is_empty());
}

fn meta(ep: &RumpsteakEndpoint<Role>, peer: Role) -> &SessionMetadata {
    match ep.get_metadata(&peer) {
        Some(m) => m,
        None => panic!("test expects metadata for {peer:?}"),
    }
}

#[test]
fn a_new_endpoint_has_no_channels() {
    let ep = RumpsteakEndpoint::new(Role::Alice);
    assert_eq!(ep.local_role(), &Role::Alice);
    assert_agree(&ep, &[]);
    assert!(ep.get_metadata(&Role::Bob).is_none());
    assert!(ep.all_metadata().is_empty());
}

#[tokio::test]
async fn register_channel_takes_a_simple_channel_or_a_session() -> Result<(), ChoreographyError> {
    let mut alice = RumpsteakEndpoint::new(Role::Alice);
    let mut bob = RumpsteakEndpoint::new(Role::Bob);
    let mut carol = RumpsteakEndpoint::new(Role::Carol);

    // A SimpleChannel, as in the guide.
    let (ab, ba) = SimpleChannel::pair();
    alice.register_channel(Role::Bob, ab);
    bob.register_channel(Role::Alice, ba);
    assert_agree(&alice, &[Role::Bob]);

    // Anything that converts into a session: a session itself.
    let (ac, ca) = SimpleChannel::pair();
    alice.register_channel(Role::Carol, RumpsteakSession::from_simple_channel(ac));
    carol.register_channel(Role::Alice, RumpsteakSession::from(ca));
    assert_agree(&alice, &[Role::Bob, Role::Carol]);

    let mut h = Handler::new();
    h.send(&mut alice, Role::Bob, &ping(1)).await?;
    h.send(&mut alice, Role::Carol, &ping(2)).await?;
    assert_eq!(h.recv::<Ping>(&mut bob, Role::Alice).await?, ping(1));
    assert_eq!(h.recv::<Ping>(&mut carol, Role::Alice).await?, ping(2));
    Ok(())
}

#[tokio::test]
async fn register_session_from_simple_channel() -> Result<(), ChoreographyError> {
    let (a, b) = SimpleChannel::pair();
    let mut alice = RumpsteakEndpoint::new(Role::Alice);
    let mut bob = RumpsteakEndpoint::new(Role::Bob);
    alice.register_session(Role::Bob, RumpsteakSession::from_simple_channel(a));
    bob.register_session(Role::Alice, RumpsteakSession::from_simple_channel(b));
    assert_agree(&alice, &[Role::Bob]);
    assert_agree(&bob, &[Role::Alice]);

    let mut h = Handler::new();
    h.send(&mut alice, Role::Bob, &ping(7)).await?;
    assert_eq!(h.recv::<Ping>(&mut bob, Role::Alice).await?, ping(7));
    h.send(&mut bob, Role::Alice, &ping(8)).await?;
    assert_eq!(h.recv::<Ping>(&mut alice, Role::Bob).await?, ping(8));
    Ok(())
}

#[tokio::test]
async fn register_session_from_sink_stream() -> Result<(), ChoreographyError> {
    // A custom transport: two bounded futures channels of byte frames.
    let (to_bob, from_alice) = mpsc::channel::<Vec<u8>>(4);
    let (to_alice, from_bob) = mpsc::channel::<Vec<u8>>(4);

    let mut alice = RumpsteakEndpoint::new(Role::Alice);
    let mut bob = RumpsteakEndpoint::new(Role::Bob);
    alice.register_session(
        Role::Bob,
        RumpsteakSession::from_sink_stream(to_bob, from_bob),
    );
    bob.register_session(
        Role::Alice,
        RumpsteakSession::from_sink_stream(to_alice, from_alice),
    );
    assert_agree(&alice, &[Role::Bob]);

    let mut h = Handler::new();
    h.send(&mut alice, Role::Bob, &ping(1)).await?;
    h.choose(&mut alice, Role::Bob, Label("accept")).await?;
    assert_eq!(h.recv::<Ping>(&mut bob, Role::Alice).await?, ping(1));
    assert_eq!(h.offer(&mut bob, Role::Alice).await?, Label("accept"));
    h.send(&mut bob, Role::Alice, &ping(2)).await?;
    assert_eq!(h.recv::<Ping>(&mut alice, Role::Bob).await?, ping(2));

    // Closing one side ends the other's stream after what was sent before.
    h.send(&mut alice, Role::Bob, &ping(3)).await?;
    assert_eq!(alice.close_all_channels(), 1);
    assert_eq!(h.recv::<Ping>(&mut bob, Role::Alice).await?, ping(3));
    let err = h.recv::<Ping>(&mut bob, Role::Alice).await.unwrap_err();
    assert!(err.is_closed(), "{err}");
    Ok(())
}

#[tokio::test]
async fn channel_queries_agree_after_every_call() {
    let mut alice = RumpsteakEndpoint::new(Role::Alice);
    assert_agree(&alice, &[]);

    let (ab, mut bob_end) = SimpleChannel::pair();
    alice.register_channel(Role::Bob, ab);
    assert_agree(&alice, &[Role::Bob]);

    let (ac, _carol_end) = SimpleChannel::pair();
    alice.register_channel(Role::Carol, ac);
    assert_agree(&alice, &[Role::Bob, Role::Carol]);

    // Closing a channel reports whether an open one was closed.
    assert!(alice.close_channel(&Role::Bob));
    assert_agree(&alice, &[Role::Carol]);
    assert!(!alice.close_channel(&Role::Bob), "already closed");
    assert_agree(&alice, &[Role::Carol]);
    assert!(!alice.close_channel(&Role::Dave), "never registered");
    assert_agree(&alice, &[Role::Carol]);

    // Bob's end sees the close.
    assert!(bob_end.recv().await.is_err());

    // A closed peer can be registered again.
    let (ab2, _bob_end2) = SimpleChannel::pair();
    alice.register_channel(Role::Bob, ab2);
    assert_agree(&alice, &[Role::Bob, Role::Carol]);

    assert_eq!(alice.close_all_channels(), 2);
    assert_agree(&alice, &[]);
    assert_eq!(alice.close_all_channels(), 0, "nothing left to close");
    assert_agree(&alice, &[]);

    // Metadata outlives the channels.
    assert_eq!(alice.all_metadata().len(), 2);
}

#[tokio::test]
async fn registering_a_peer_twice_replaces_and_closes_the_old_session()
-> Result<(), ChoreographyError> {
    let mut h = Handler::new();
    let mut alice = RumpsteakEndpoint::new(Role::Alice);
    let (old_a, mut old_b) = SimpleChannel::pair();
    alice.register_channel(Role::Bob, old_a);
    h.send(&mut alice, Role::Bob, &ping(1)).await?;
    assert_eq!(meta(&alice, Role::Bob).operation_count, 1);

    let (new_a, new_b) = SimpleChannel::pair();
    alice.register_channel(Role::Bob, new_a);
    assert_agree(&alice, &[Role::Bob]);
    // Fresh metadata for the new session.
    assert_eq!(meta(&alice, Role::Bob).operation_count, 0);
    assert_eq!(alice.all_metadata().len(), 1);

    // The old peer gets what was sent before, then sees the channel closed.
    assert!(old_b.recv().await.is_ok_and(|frame| !frame.is_empty()));
    assert_eq!(
        old_b.recv().await.unwrap_err(),
        "channel closed by peer",
        "the replaced session must be closed"
    );

    // The new session carries the traffic.
    let mut bob = RumpsteakEndpoint::new(Role::Bob);
    bob.register_channel(Role::Alice, new_b);
    h.send(&mut alice, Role::Bob, &ping(2)).await?;
    assert_eq!(h.recv::<Ping>(&mut bob, Role::Alice).await?, ping(2));
    Ok(())
}

#[tokio::test]
async fn metadata_exists_from_registration_and_tracks_operations() -> Result<(), ChoreographyError>
{
    let (mut alice, mut bob) = connected(Role::Alice, Role::Bob);
    let (ac, _ca) = SimpleChannel::pair();
    alice.register_channel(Role::Carol, ac);

    let m = meta(&alice, Role::Bob);
    assert_eq!(m.operation_count, 0);
    assert!(!m.is_complete);
    assert_eq!(m.state_description, "registered with Bob");

    let mut h = Handler::new();
    h.send(&mut alice, Role::Bob, &ping(1)).await?;
    assert_eq!(meta(&alice, Role::Bob).operation_count, 1);
    assert_eq!(
        meta(&alice, Role::Bob).state_description,
        "sent Ping to Bob"
    );

    let _: Ping = h.recv(&mut bob, Role::Alice).await?;
    assert_eq!(
        meta(&bob, Role::Alice).state_description,
        "received Ping from Alice"
    );

    h.choose(&mut alice, Role::Bob, Label("accept")).await?;
    assert_eq!(meta(&alice, Role::Bob).operation_count, 2);
    assert_eq!(
        meta(&alice, Role::Bob).state_description,
        "chose accept for Bob"
    );

    let label = h.offer(&mut bob, Role::Alice).await?;
    assert_eq!(label, Label("accept"));
    assert_eq!(meta(&bob, Role::Alice).operation_count, 2);
    assert_eq!(
        meta(&bob, Role::Alice).state_description,
        "Alice chose accept"
    );

    // A failed operation is not counted.
    let timed_out = h
        .recv_timeout::<Ping>(&mut bob, Role::Alice, Duration::from_millis(10))
        .await;
    assert!(matches!(timed_out, Err(ChoreographyError::Timeout(_))));
    assert_eq!(meta(&bob, Role::Alice).operation_count, 2);

    // all_metadata: every registered peer, in registration order.
    let all = alice.all_metadata();
    let peers: Vec<Role> = all.iter().map(|(r, _)| *r).collect();
    assert_eq!(peers, [Role::Bob, Role::Carol]);
    assert_eq!(all[0].1.operation_count, 2);
    assert_eq!(all[1].1.operation_count, 0);
    assert_eq!(all[1].1.state_description, "registered with Carol");

    // Closing keeps the metadata and marks it complete.
    assert!(alice.close_channel(&Role::Bob));
    let m = meta(&alice, Role::Bob);
    assert!(m.is_complete);
    assert_eq!(m.state_description, "closed");
    assert_eq!(m.operation_count, 2);
    assert!(!meta(&alice, Role::Carol).is_complete);
    Ok(())
}

#[tokio::test]
async fn session_metadata_has_the_guide_fields() {
    let (alice, _bob) = connected(Role::Alice, Role::Bob);
    let m: &SessionMetadata = meta(&alice, Role::Bob);
    let state_description: &String = &m.state_description;
    let is_complete: bool = m.is_complete;
    let operation_count: usize = m.operation_count;
    assert_eq!(
        (state_description.as_str(), is_complete, operation_count),
        ("registered with Bob", false, 0)
    );

    // It is plain data: clone it, compare it, print it.
    let snapshot = m.clone();
    assert_eq!(&snapshot, m);
    assert!(format!("{snapshot:?}").contains("registered with Bob"));
    let mut default = SessionMetadata::default();
    assert_eq!(default.operation_count, 0);
    default.operation_count = 3;
    assert_ne!(default, snapshot);
}

#[tokio::test]
async fn the_four_operations() -> Result<(), ChoreographyError> {
    let (mut alice, mut bob) = connected(Role::Alice, Role::Bob);
    // The handler is stateless: one for both roles, copies are equivalent.
    let mut handler = RumpsteakHandler::<Role, Ping>::new();
    let mut copy = handler;

    // send / recv
    handler.send(&mut alice, Role::Bob, &ping(1)).await?;
    let got: Ping = copy.recv(&mut bob, Role::Alice).await?;
    assert_eq!(got, ping(1));

    // Any serde type can be sent, not only the role's message type.
    handler
        .send(&mut bob, Role::Alice, &(42u64, "forty-two"))
        .await?;
    let (n, text): (u64, String) = handler.recv(&mut alice, Role::Bob).await?;
    assert_eq!((n, text.as_str()), (42, "forty-two"));

    // choose / offer
    handler.choose(&mut alice, Role::Bob, Label("left")).await?;
    handler
        .choose(&mut alice, Role::Bob, Label("right"))
        .await?;
    assert_eq!(handler.offer(&mut bob, Role::Alice).await?, Label("left"));
    let right = handler.offer(&mut bob, Role::Alice).await?;
    assert_eq!(right.0, "right");
    Ok(())
}

#[tokio::test]
async fn offer_among_accepts_only_the_given_labels() -> Result<(), ChoreographyError> {
    let (mut alice, mut bob) = connected(Role::Alice, Role::Bob);
    let mut h = Handler::new();
    const BRANCHES: [Label; 2] = [Label("accept"), Label("reject")];

    h.choose(&mut alice, Role::Bob, Label("reject")).await?;
    assert_eq!(
        h.offer_among(&mut bob, Role::Alice, &BRANCHES).await?,
        Label("reject")
    );

    h.choose(&mut alice, Role::Bob, Label("maybe")).await?;
    let err = h
        .offer_among(&mut bob, Role::Alice, &BRANCHES)
        .await
        .unwrap_err();
    match &err {
        ChoreographyError::UnexpectedLabel {
            peer,
            op,
            expected,
            received,
        } => {
            assert_eq!(peer, "Alice");
            assert_eq!(*op, Operation::Offer);
            assert_eq!(expected.as_slice(), BRANCHES.as_slice());
            assert_eq!(received, "maybe");
        }
        other => panic!("expected UnexpectedLabel, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "offer from Alice: peer chose `maybe`, expected one of [`accept`, `reject`]"
    );

    // The channel survives the error.
    assert!(bob.has_channel(&Role::Alice));
    h.choose(&mut alice, Role::Bob, Label("accept")).await?;
    assert_eq!(
        h.offer_among(&mut bob, Role::Alice, &BRANCHES).await?,
        Label("accept")
    );
    Ok(())
}

#[tokio::test]
async fn a_label_is_never_read_as_a_message_nor_the_reverse() -> Result<(), ChoreographyError> {
    // A message whose first field is a string looks like a label in postcard;
    // the frame kind tells them apart.
    #[derive(Debug, Serialize, Deserialize)]
    struct Named {
        name: String,
    }
    let (mut alice, mut bob) = connected(Role::Alice, Role::Bob);
    let mut h = Handler::new();

    h.choose(&mut alice, Role::Bob, Label("accept")).await?;
    let err = h.recv::<Named>(&mut bob, Role::Alice).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ChoreographyError::ProtocolViolation {
                violation: Violation::LabelWhereMessageExpected,
                ..
            }
        ),
        "{err:?}"
    );

    h.send(
        &mut alice,
        Role::Bob,
        &Named {
            name: "accept".into(),
        },
    )
    .await?;
    let err = h.offer(&mut bob, Role::Alice).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ChoreographyError::ProtocolViolation {
                violation: Violation::MessageWhereLabelExpected,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(bob.has_channel(&Role::Alice), "errors keep the channel");
    Ok(())
}

#[tokio::test]
async fn simple_channel_moves_raw_bytes() -> Result<(), String> {
    let (mut a, mut b) = SimpleChannel::pair();
    a.send(vec![1, 2, 3]).await?;
    a.send(Vec::new()).await?;
    b.send(b"back".to_vec()).await?;
    assert_eq!(b.recv().await?, vec![1, 2, 3]);
    assert_eq!(b.recv().await?, Vec::<u8>::new());
    assert_eq!(a.recv().await?, b"back");

    drop(a);
    let err: String = b.recv().await.unwrap_err();
    assert_eq!(err, "channel closed by peer");
    assert!(b.send(vec![0]).await.is_err(), "the other end is gone");
    Ok(())
}

#[test]
fn handler_and_endpoint_are_thread_friendly() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    fn copy_default<T: Copy + Default>() {}
    send_sync::<Handler>();
    copy_default::<Handler>();
    send::<RumpsteakEndpoint<Role>>();
    send::<SimpleChannel>();
    send::<RumpsteakSession>();
    let h: Handler = Default::default();
    assert_eq!(format!("{h:?}"), "RumpsteakHandler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_run_in_spawned_tasks() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (mut alice, mut bob) = connected(Role::Alice, Role::Bob);
    let alice_task = tokio::spawn(async move {
        let mut h = Handler::new();
        h.send(&mut alice, Role::Bob, &ping(1)).await?;
        h.choose(&mut alice, Role::Bob, Label("done")).await?;
        let reply: Ping = h.recv(&mut alice, Role::Bob).await?;
        Ok::<_, ChoreographyError>(reply)
    });
    let bob_task = tokio::spawn(async move {
        let mut h = Handler::new();
        let got: Ping = h.recv(&mut bob, Role::Alice).await?;
        let label = h.offer(&mut bob, Role::Alice).await?;
        h.send(&mut bob, Role::Alice, &ping(got.seq + 1)).await?;
        Ok::<_, ChoreographyError>(label)
    });
    assert_eq!(alice_task.await??, ping(2));
    assert_eq!(bob_task.await??, Label("done"));
    Ok(())
}

#[test]
fn the_facade_root_and_effects_name_the_same_types() {
    use rumpsteak_aura_choreography as facade;
    let h: facade::RumpsteakHandler<Role, Ping> = Handler::new();
    let _: RumpsteakHandler<Role, Ping> = h;
    let ep: facade::effects::handlers::rumpsteak::RumpsteakEndpoint<Role> =
        facade::RumpsteakEndpoint::new(Role::Alice);
    assert!(ep.is_all_closed());
    let l: facade::Label = Label("x");
    let core: rumpsteak_aura::Label = l;
    assert_eq!(core.as_str(), "x");
    let e: rumpsteak_aura::ChoreographyError = facade::ChoreographyError::Timeout(Duration::ZERO);
    assert!(matches!(e, ChoreographyError::Timeout(d) if d.is_zero()));
}
