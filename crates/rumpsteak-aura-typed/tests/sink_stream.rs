//! Typed roles over a session made of a user's sink and stream
//! (`RumpsteakSession::from_sink_stream`), here futures' channels: the
//! generated code only calls the handler, so it runs over any session.

mod common;

use common::{Handler, assert_finished, within};
use futures::channel::mpsc;
use rumpsteak_aura_handler::RumpsteakEndpoint;
use rumpsteak_aura_transport::RumpsteakSession;

rumpsteak_aura_macros::protocol! {
    /// A counter sums what it is sent until told to stop, then says the sum.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod sum = "
        roles Client, Counter;
        rec Loop {
            choice at Client {
                add: { Client -> Counter: Add(i32); continue Loop; }
                total: { Client -> Counter: Total; Counter -> Client: Sum(i64); }
            }
        }";
}

use sum::Role;

/// A session pair over two futures channels.
fn sink_stream_pair() -> (RumpsteakSession, RumpsteakSession) {
    let (a_tx, b_rx) = mpsc::channel::<Vec<u8>>(4);
    let (b_tx, a_rx) = mpsc::channel::<Vec<u8>>(4);
    (
        RumpsteakSession::from_sink_stream(a_tx, a_rx),
        RumpsteakSession::from_sink_stream(b_tx, b_rx),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_roles_run_over_a_sink_and_a_stream() {
    let (to_counter, to_client) = sink_stream_pair();
    let mut client = RumpsteakEndpoint::new(Role::Client);
    client.register_session(Role::Counter, to_counter);
    let mut client = client.with_protocol(sum::monitor(Role::Client).unwrap());
    let mut counter = RumpsteakEndpoint::new(Role::Counter);
    counter.register_session(Role::Client, to_client);
    let mut counter = counter.with_protocol(sum::monitor(Role::Counter).unwrap());

    let c = tokio::spawn(async move {
        let mut h = Handler::new();
        let mut s = sum::client::start(&mut h, &mut client).unwrap();
        // More than the channels' capacity, so that the sender waits.
        for n in 1..=20 {
            s = s
                .choose_add()
                .await
                .unwrap()
                .send_to_counter(&n)
                .await
                .unwrap();
        }
        let s = s
            .choose_total()
            .await
            .unwrap()
            .send_to_counter()
            .await
            .unwrap();
        let (total, end) = s.recv_from_counter().await.unwrap();
        end.finish();
        (client, total)
    });
    let k = tokio::spawn(async move {
        use sum::counter::{Branch0, start};
        let mut h = Handler::new();
        let mut s = start(&mut h, &mut counter).unwrap();
        let mut total = 0i64;
        let mut adds = 0;
        loop {
            match s.branch().await.unwrap() {
                Branch0::Add(r) => {
                    let (n, next) = r.recv_from_client().await.unwrap();
                    total += i64::from(n);
                    adds += 1;
                    s = next;
                }
                Branch0::Total(r) => {
                    let ((), r) = r.recv_from_client().await.unwrap();
                    r.send_to_client(&total).await.unwrap().finish();
                    break;
                }
            }
        }
        (counter, adds)
    });
    let (client, total) = within(10, c).await.unwrap();
    let (counter, adds) = within(10, k).await.unwrap();
    assert_eq!((total, adds), (210, 20));
    assert_finished(&client);
    assert_finished(&counter);
}
