//! A typed role against an untyped peer that carries the run-time monitor
//! of its role: messages both ways, a choice each way and payload-less
//! messages pass the monitor, and a typed role may carry its own monitor
//! as well.

mod common;

use common::{Handler, assert_finished, mesh, within};
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_handler::RumpsteakEndpoint;
use serde::{Deserialize, Serialize};

rumpsteak_aura_macros::protocol! {
    /// A client greets a server, which welcomes or refuses it; a welcomed
    /// client asks one question or quits.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod service = "
        roles Client, Server;
        Client -> Server: Hello(String);
        choice at Server {
            welcome: {
                Server -> Client: Token(u64);
                choice at Client {
                    query: {
                        Client -> Server: Query(u32);
                        Server -> Client: Answer(String);
                    }
                    quit: { Client -> Server: Bye; }
                }
            }
            refuse: { Server -> Client: Busy; }
        }";
}

use service::Role;

/// The untyped server's own type for the payload-less `Busy`: a unit struct
/// of the label's name, which is what its monitor checks.
#[derive(Debug, Serialize, Deserialize)]
struct Busy;

/// What the client does once welcomed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    Query(u32),
    Quit,
}

/// What the client saw.
#[derive(Debug, PartialEq)]
enum ClientSaw {
    Answered { token: u64, answer: String },
    Quit { token: u64 },
    Refused,
}

/// What the server saw.
#[derive(Debug, PartialEq)]
enum ServerSaw {
    Query { hello: String, question: u32 },
    Bye { hello: String },
    Refused { hello: String },
}

/// The typed client.
async fn typed_client(
    mut ep: RumpsteakEndpoint<Role>,
    plan: Plan,
) -> (RumpsteakEndpoint<Role>, ClientSaw) {
    use service::client::{Branch1, start};
    let mut h = Handler::new();
    let s = start(&mut h, &mut ep).unwrap();
    let s = s.send_to_server(&"hi".to_owned()).await.unwrap();
    let saw = match s.branch().await.unwrap() {
        Branch1::Welcome(s) => {
            let (token, s) = s.recv_from_server().await.unwrap();
            match plan {
                Plan::Query(q) => {
                    let s = s.choose_query().await.unwrap();
                    let s = s.send_to_server(&q).await.unwrap();
                    let (answer, end) = s.recv_from_server().await.unwrap();
                    end.finish();
                    ClientSaw::Answered { token, answer }
                }
                Plan::Quit => {
                    let s = s.choose_quit().await.unwrap();
                    s.send_to_server().await.unwrap().finish();
                    ClientSaw::Quit { token }
                }
            }
        }
        Branch1::Refuse(s) => {
            let ((), end) = s.recv_from_server().await.unwrap();
            end.finish();
            ClientSaw::Refused
        }
    };
    (ep, saw)
}

/// The untyped server, written with the handler's operations, checked by
/// the monitor on its endpoint.
async fn untyped_server(
    mut ep: RumpsteakEndpoint<Role>,
    welcome: bool,
) -> (RumpsteakEndpoint<Role>, ServerSaw) {
    let mut h = Handler::new();
    let c = Role::Client;
    let hello: String = h.recv(&mut ep, c).await.unwrap();
    if !welcome {
        h.choose(&mut ep, c, Label("refuse")).await.unwrap();
        h.send(&mut ep, c, &Busy).await.unwrap();
        return (ep, ServerSaw::Refused { hello });
    }
    h.choose(&mut ep, c, Label("welcome")).await.unwrap();
    h.send(&mut ep, c, &7u64).await.unwrap();
    let label = h.offer(&mut ep, c).await.unwrap();
    let saw = match label.as_str() {
        "query" => {
            let question: u32 = h.recv(&mut ep, c).await.unwrap();
            h.send(&mut ep, c, &format!("{question} is odd"))
                .await
                .unwrap();
            ServerSaw::Query { hello, question }
        }
        "quit" => {
            // The generated unit type of the payload-less `Bye`.
            let service::unit::Bye = h.recv(&mut ep, c).await.unwrap();
            ServerSaw::Bye { hello }
        }
        other => panic!("the client chose `{other}`"),
    };
    (ep, saw)
}

/// Runs the typed client against the untyped, monitored server; the client
/// carries its own monitor too if `client_monitored`.
async fn run(
    plan: Plan,
    welcome: bool,
    client_monitored: bool,
) -> (RumpsteakEndpoint<Role>, ClientSaw, ServerSaw) {
    let mut eps = mesh(&Role::ALL).into_iter();
    let (mut client, server) = (eps.next().unwrap(), eps.next().unwrap());
    if client_monitored {
        client.set_protocol(service::monitor(Role::Client).unwrap());
    }
    let server = server.with_protocol(service::monitor(Role::Server).unwrap());
    let c = tokio::spawn(typed_client(client, plan));
    let s = tokio::spawn(untyped_server(server, welcome));
    let (client, client_saw) = within(10, c).await.unwrap();
    let (server, server_saw) = within(10, s).await.unwrap();
    // The monitor saw the server's whole local type: every step the typed
    // client took was one the protocol allows.
    assert_finished(&server);
    (client, client_saw, server_saw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcomed_query_passes_the_untyped_peers_monitor() {
    let (client, client_saw, server_saw) = run(Plan::Query(41), true, false).await;
    assert_eq!(
        client_saw,
        ClientSaw::Answered {
            token: 7,
            answer: "41 is odd".into()
        }
    );
    assert_eq!(
        server_saw,
        ServerSaw::Query {
            hello: "hi".into(),
            question: 41
        }
    );
    let meta = client.get_metadata(&Role::Server).unwrap();
    assert!(!meta.is_abandoned, "{meta:?}");
    assert_eq!(meta.operation_count, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_less_message_each_way_passes_the_monitor() {
    // Typed to untyped: `Bye`, received by the untyped server as the
    // generated unit type.
    let (_, client_saw, server_saw) = run(Plan::Quit, true, false).await;
    assert_eq!(client_saw, ClientSaw::Quit { token: 7 });
    assert_eq!(server_saw, ServerSaw::Bye { hello: "hi".into() });
    // Untyped to typed: `Busy`, sent by the server as its own unit struct
    // and received by the typed client as `()`.
    let (_, client_saw, server_saw) = run(Plan::Quit, false, false).await;
    assert_eq!(client_saw, ClientSaw::Refused);
    assert_eq!(server_saw, ServerSaw::Refused { hello: "hi".into() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_role_may_carry_its_own_monitor() {
    let (client, client_saw, _) = run(Plan::Query(3), true, true).await;
    assert_eq!(
        client_saw,
        ClientSaw::Answered {
            token: 7,
            answer: "3 is odd".into()
        }
    );
    // The client's monitor followed every typed step to the end of its
    // local type, with no violation on the way.
    assert!(client.protocol().is_some_and(|m| m.is_complete()));
    assert_finished(&client);
    let meta = client.get_metadata(&Role::Server).unwrap();
    assert!(meta.state_description.contains(" | "), "{meta:?}");
}
