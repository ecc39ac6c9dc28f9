//! The handler is a stateless Copy value; endpoints and futures are Send, so
//! roles run in `tokio::spawn`.

mod common;

use common::{Handler, Msg, Party, alice_bob};
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakSession, SimpleChannel};

fn is_send<T: Send>(_: &T) {}
fn is_send_sync_copy_default<T: Send + Sync + Copy + Clone + Default>() {}

#[test]
fn handler_traits() {
    is_send_sync_copy_default::<Handler>();
    assert_eq!(std::mem::size_of::<Handler>(), 0);
    let (a, _b) = alice_bob();
    is_send(&a);
    let (c, _d) = SimpleChannel::pair();
    is_send(&c);
    is_send(&RumpsteakSession::from(c));
}

#[test]
fn every_operation_future_is_send() {
    let (mut a, _b) = alice_bob();
    let mut h = Handler::new();
    is_send(&h.send(&mut a, Party::Bob, &Msg::new("x", 1)));
    is_send(&h.recv::<Msg>(&mut a, Party::Bob));
    is_send(&h.choose(&mut a, Party::Bob, Label("l")));
    is_send(&h.offer(&mut a, Party::Bob));
    is_send(&h.offer_among(&mut a, Party::Bob, &[Label("l")]));
    is_send(&h.recv_timeout::<Msg>(&mut a, Party::Bob, std::time::Duration::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_run_in_spawned_tasks() {
    let (mut a, mut b) = alice_bob();
    let alice = tokio::spawn(async move {
        let mut h = Handler::new();
        for n in 0..100 {
            h.send(&mut a, Party::Bob, &Msg::new("ping", n)).await?;
            let pong: Msg = h.recv(&mut a, Party::Bob).await?;
            assert_eq!(pong.n, n + 1);
        }
        h.choose(&mut a, Party::Bob, Label("stop")).await?;
        Ok::<_, rumpsteak_aura::ChoreographyError>(a)
    });
    let bob = tokio::spawn(async move {
        let mut h = Handler::new();
        let mut served = 0;
        loop {
            // `within` with an async closure also yields a Send future.
            let r = h
                .within(&mut b, std::time::Duration::from_secs(10), async |h, ep| {
                    let m: Msg = h.recv(ep, Party::Alice).await?;
                    h.send(ep, Party::Alice, &Msg::new("pong", m.n + 1)).await
                })
                .await;
            match r {
                Ok(()) => served += 1,
                // The label is not a message: the loop ends on the violation.
                Err(_) => break,
            }
        }
        (served, b)
    });
    let a = alice.await.unwrap().unwrap();
    let (served, b) = bob.await.unwrap();
    assert_eq!(served, 100);
    assert_eq!(a.get_metadata(&Party::Bob).unwrap().operation_count, 201);
    assert_eq!(b.get_metadata(&Party::Alice).unwrap().operation_count, 200);
    let _: &RumpsteakEndpoint<Party> = &b;
}
