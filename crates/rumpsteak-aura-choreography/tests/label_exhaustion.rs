//! One hostile peer cannot exhaust the process-wide table of labels learned
//! from peers, however many sessions it opens: the labels it may teach are
//! counted over all its sessions (by the identity its transport gives it),
//! so other peers' `offer` of labels nobody registered still works.
//!
//! Its own test binary: the table is process-wide, and this test fills a
//! part of it on purpose.

use rumpsteak_aura_choreography::effects::handlers::rumpsteak::{
    RumpsteakEndpoint, RumpsteakHandler, SimpleChannel,
};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError, Label, Violation};
use rumpsteak_aura_choreography::transport::RumpsteakSession;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Server,
    Client,
}

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

type Endpoint = RumpsteakEndpoint<Role>;

/// A client and a server endpoint over one in-memory session whose server
/// side knows the client as `identity`.
fn pair(identity: &str) -> (Endpoint, Endpoint) {
    let (c, s) = SimpleChannel::pair();
    let mut client = Endpoint::new(Role::Client);
    client.register_session(Role::Server, RumpsteakSession::from(c));
    let mut server = Endpoint::new(Role::Server);
    server.register_session(
        Role::Client,
        RumpsteakSession::from(s).with_peer_identity(identity),
    );
    (client, server)
}

/// A label nobody registered, as `choose` takes it.
fn fresh(name: String) -> Label {
    Label(Box::leak(name.into_boxed_str()))
}

#[tokio::test]
async fn one_peer_with_many_sessions_cannot_lock_others_out_of_learning() {
    let mut h = RumpsteakHandler::<Role, ()>::new();
    let mut learned = 0;
    let mut refused = 0;
    // 30 sessions from one address, 64 new labels each: 1,920 labels, more
    // than the whole table (1,024) holds.
    for s in 0..30 {
        let (mut client, mut server) = pair("address:198.51.100.7");
        for l in 0..64 {
            let label = fresh(format!("hostile-{s}-{l}"));
            h.choose(&mut client, Role::Server, label).await.unwrap();
            match h.offer(&mut server, Role::Client).await {
                Ok(got) => {
                    assert_eq!(got.0, label.0);
                    learned += 1;
                }
                Err(ChoreographyError::ProtocolViolation { violation, .. }) => {
                    assert!(
                        matches!(violation, Violation::TooManyLabels { limit: 64, .. }),
                        "{violation}"
                    );
                    refused += 1;
                    break;
                }
                Err(other) => panic!("{other}"),
            }
        }
    }
    // The peer taught 64 labels in all; every later session was refused at
    // its first new label.
    assert_eq!(learned, 64);
    assert_eq!(refused, 29);

    // Other peers still teach labels nobody registered.
    for who in ["address:192.0.2.1", "role:Buyer"] {
        let (mut client, mut server) = pair(who);
        let label = fresh(format!("legitimate-from-{who}"));
        h.choose(&mut client, Role::Server, label).await.unwrap();
        assert_eq!(h.offer(&mut server, Role::Client).await.unwrap().0, label.0);
    }
}
