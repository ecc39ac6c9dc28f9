//! Typed roles over loopback TCP sessions (`rumpsteak-aura-net`, feature
//! `tcp`), each endpoint monitored, with bounded waits so that a failure
//! is an error rather than a hung run.

mod common;

use std::net::SocketAddr;

use common::{Handler, assert_finished, within};
use rumpsteak_aura_handler::RumpsteakEndpoint;
use rumpsteak_aura_net::tcp::{self, SessionListener, TcpOptions};

rumpsteak_aura_macros::protocol! {
    /// A client asks for words in a loop until it quits; the server
    /// answers each with its length.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod words = "
        roles Client, Server;
        rec Loop {
            choice at Client {
                word: { Client -> Server: Word(String); Server -> Client: Len(u64); continue Loop; }
                quit: { Client -> Server: Quit; }
            }
        }";
}

use words::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_roles_run_over_loopback_tcp() {
    let options = TcpOptions::new();
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener = within(
        10,
        SessionListener::bind(any, Role::Server.name(), &options),
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        use words::server::{Branch0, start};
        let session = within(10, listener.accept(Role::Client.name()))
            .await
            .unwrap();
        let mut ep = RumpsteakEndpoint::new(Role::Server);
        ep.register_session(Role::Client, session);
        let mut ep = ep.with_protocol(words::monitor(Role::Server).unwrap());
        let mut h = Handler::new();
        let mut s = start(&mut h, &mut ep).unwrap();
        let mut seen = Vec::new();
        loop {
            match within(10, s.branch()).await.unwrap() {
                Branch0::Word(r) => {
                    let (word, r) = r.recv_from_client().await.unwrap();
                    s = r.send_to_client(&(word.len() as u64)).await.unwrap();
                    seen.push(word);
                }
                Branch0::Quit(r) => {
                    let ((), end) = r.recv_from_client().await.unwrap();
                    end.finish();
                    break;
                }
            }
        }
        (ep, seen)
    });
    let client = tokio::spawn(async move {
        let connect = tcp::connect(addr, Role::Client.name(), Role::Server.name(), &options);
        let session = within(10, connect).await.unwrap();
        let mut ep = RumpsteakEndpoint::new(Role::Client);
        ep.register_session(Role::Server, session);
        let mut ep = ep.with_protocol(words::monitor(Role::Client).unwrap());
        let mut h = Handler::new();
        let mut s = words::client::start(&mut h, &mut ep).unwrap();
        let mut lens = Vec::new();
        for word in ["typed", "roles", "over", "tcp"] {
            let r = s.choose_word().await.unwrap();
            let r = r.send_to_server(&word.to_owned()).await.unwrap();
            let (len, next) = within(10, r.recv_from_server()).await.unwrap();
            lens.push(len);
            s = next;
        }
        s.choose_quit()
            .await
            .unwrap()
            .send_to_server()
            .await
            .unwrap()
            .finish();
        (ep, lens)
    });
    let (client, lens) = within(20, client).await.unwrap();
    let (server, seen) = within(20, server).await.unwrap();
    assert_eq!(lens, [5, 5, 4, 3]);
    assert_eq!(seen, ["typed", "roles", "over", "tcp"]);
    assert_finished(&client);
    assert_finished(&server);
}
