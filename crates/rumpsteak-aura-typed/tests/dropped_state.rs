//! A state dropped before the end (an early return, a cancelled future, a
//! panic) abandons the protocol: the peers that still expect something get
//! a closed-channel error instead of waiting for ever, the dropper's
//! metadata says so, and peers that expect nothing more are left alone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Handler, mesh, within};
use rumpsteak_aura::ChoreographyError;
use rumpsteak_aura_handler::RumpsteakEndpoint;
use tokio::sync::{Mutex, oneshot};

rumpsteak_aura_macros::protocol! {
    /// `A` tells `C` a note, then asks `B`, which replies and is thanked.
    /// After the note, `C` expects nothing more.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod ask = "
        roles A, B, C;
        A -> C: Note(u32);
        A -> B: Ask(u32);
        B -> A: Reply(u32);
        A -> B: Thanks;
        ";
}

use ask::Role;

/// How long a peer may take to see the closed channel. The close happens
/// at once when the state is dropped; the bound only proves that the peer
/// is not left hanging, so it is generous for a loaded CI machine.
const SEE_CLOSED_SECS: u64 = 10;

fn endpoints() -> (
    RumpsteakEndpoint<Role>,
    RumpsteakEndpoint<Role>,
    RumpsteakEndpoint<Role>,
) {
    let mut eps = mesh(&Role::ALL).into_iter();
    let a = eps.next().unwrap();
    let b = eps.next().unwrap();
    let c = eps.next().unwrap();
    (a, b, c)
}

/// `C`'s whole role: the note.
async fn c_role(mut ep: RumpsteakEndpoint<Role>) -> (RumpsteakEndpoint<Role>, u32) {
    let mut h = Handler::new();
    let s = ask::c::start(&mut h, &mut ep).unwrap();
    let (note, end) = s.recv_from_a().await.unwrap();
    end.finish();
    (ep, note)
}

/// `A` abandoned `B` and only `B`: `C`, which expected nothing more, keeps
/// its channel and is not marked.
fn assert_abandoned_b_only(ea: &RumpsteakEndpoint<Role>) {
    let b = ea.get_metadata(&Role::B).unwrap();
    assert!(b.is_abandoned && !ea.has_channel(&Role::B), "{b:?}");
    let c = ea.get_metadata(&Role::C).unwrap();
    assert!(!c.is_abandoned && ea.has_channel(&Role::C), "{c:?}");
}

/// `A`'s role, giving up right after the note if `give_up`.
async fn a_role(
    ep: &mut RumpsteakEndpoint<Role>,
    give_up: bool,
) -> Result<Option<u32>, ChoreographyError> {
    let mut h = Handler::new();
    let s = ask::a::start(&mut h, ep)?;
    let s = s.send_to_c(&5).await?;
    if give_up {
        // The state that would send `Ask` to `B` is dropped here.
        return Ok(None);
    }
    let s = s.send_to_b(&20).await?;
    let (reply, s) = s.recv_from_b().await?;
    s.send_to_b().await?.finish();
    Ok(Some(reply))
}

/// `B`'s first step, bounded: the receive of `Ask`.
async fn b_waits_for_ask(
    mut ep: RumpsteakEndpoint<Role>,
) -> (RumpsteakEndpoint<Role>, ChoreographyError) {
    let mut h = Handler::new();
    let s = ask::b::start(&mut h, &mut ep).unwrap();
    let e = within(SEE_CLOSED_SECS, s.recv_from_a()).await.unwrap_err();
    (ep, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_return_closes_the_channel_of_the_waiting_peer() {
    let (mut ea, eb, ec) = endpoints();
    let b = tokio::spawn(b_waits_for_ask(eb));
    let c = tokio::spawn(c_role(ec));
    let a = tokio::spawn(async move {
        let out = a_role(&mut ea, true).await;
        (ea, out)
    });
    let (ea, out) = within(10, a).await.unwrap();
    assert_eq!(out.unwrap(), None);
    assert_abandoned_b_only(&ea);
    let (_, e) = within(10, b).await.unwrap();
    assert!(e.is_closed(), "{e:?}");
    let (ec, note) = within(10, c).await.unwrap();
    assert_eq!(note, 5);
    assert!(!ec.get_metadata(&Role::A).unwrap().is_abandoned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_role_run_to_its_end_abandons_nothing() {
    let (mut ea, mut eb, ec) = endpoints();
    let b = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = ask::b::start(&mut h, &mut eb).unwrap();
        let (n, s) = s.recv_from_a().await.unwrap();
        let ((), end) = s
            .send_to_a(&(n + 1))
            .await
            .unwrap()
            .recv_from_a()
            .await
            .unwrap();
        end.finish();
        eb
    });
    let c = tokio::spawn(c_role(ec));
    let a = tokio::spawn(async move {
        let out = a_role(&mut ea, false).await;
        (ea, out)
    });
    let (ea, out) = within(10, a).await.unwrap();
    assert_eq!(out.unwrap(), Some(21));
    let eb = within(10, b).await.unwrap();
    within(10, c).await.unwrap();
    for (ep, peer) in [(&ea, Role::B), (&ea, Role::C), (&eb, Role::A)] {
        let meta = ep.get_metadata(&peer).unwrap();
        assert!(!meta.is_abandoned && ep.has_channel(&peer), "{meta:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_receive_abandons_the_peer_it_waited_for() {
    let (mut ea, mut eb, ec) = endpoints();
    let (cancelled_tx, cancelled_rx) = oneshot::channel();
    let b = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = ask::b::start(&mut h, &mut eb).unwrap();
        let (n, s) = s.recv_from_a().await.unwrap();
        // Replies only once `A` has given up waiting.
        within(10, cancelled_rx).await.unwrap();
        let e = s.send_to_a(&(n + 1)).await.unwrap_err();
        (eb, e)
    });
    let c = tokio::spawn(c_role(ec));
    let a = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = ask::a::start(&mut h, &mut ea).unwrap();
        let s = s.send_to_c(&5).await.unwrap().send_to_b(&20).await.unwrap();
        // The future owns the state; the timeout drops both.
        let waited = tokio::time::timeout(Duration::from_millis(20), s.recv_from_b());
        assert!(waited.await.is_err(), "B replied early");
        cancelled_tx.send(()).unwrap();
        ea
    });
    let ea = within(10, a).await.unwrap();
    assert_abandoned_b_only(&ea);
    let (_, e) = within(10, b).await.unwrap();
    assert!(e.is_closed(), "{e:?}");
    assert_eq!(within(10, c).await.unwrap().1, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_closes_the_channel_of_the_waiting_peer() {
    let (ea, eb, ec) = endpoints();
    // The endpoint outlives the panicking task, to be read afterwards.
    let ea = Arc::new(Mutex::new(ea));
    let b = tokio::spawn(b_waits_for_ask(eb));
    let c = tokio::spawn(c_role(ec));
    let shared = Arc::clone(&ea);
    let a = tokio::spawn(async move {
        let mut ep = shared.lock_owned().await;
        let mut h = Handler::new();
        let s = ask::a::start(&mut h, &mut ep).unwrap();
        let s = s.send_to_c(&5).await.unwrap();
        // Always true, but the code after the panic stays reachable to the
        // compiler, so the task has an ordinary output type.
        if s.endpoint().local_role() == &Role::A {
            panic!("the role fails between two steps");
        }
        drop(s);
    });
    assert!(within(10, a).await.unwrap_err().is_panic());
    assert_abandoned_b_only(&*ea.lock().await);
    let (_, e) = within(10, b).await.unwrap();
    assert!(e.is_closed(), "{e:?}");
    assert_eq!(within(10, c).await.unwrap().1, 5);
}

rumpsteak_aura_macros::protocol! {
    /// `A` sends `B` and `C` one message each per round.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod rounds = "
        roles A, B, C;
        rec Round {
            choice at A {
                go: { A -> B: X(u8); A -> C: Y(u8); continue Round; }
                stop: { A -> B: EndB; A -> C: EndC; }
            }
        }";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_inside_a_loop_abandons_the_peers_of_later_rounds() {
    use rounds::Role;
    let mut eps = mesh(&Role::ALL).into_iter();
    let (mut ea, mut eb, mut ec) = (
        eps.next().unwrap(),
        eps.next().unwrap(),
        eps.next().unwrap(),
    );
    // `B` is done with this round once it has `X`, but the loop brings it
    // back: it waits for the next round's choice.
    let b = tokio::spawn(async move {
        use rounds::b::{Branch0, start};
        let mut h = Handler::new();
        let s = start(&mut h, &mut eb).unwrap();
        let Branch0::Go(s) = s.branch().await.unwrap() else {
            panic!("A stopped");
        };
        let (x, s) = s.recv_from_a().await.unwrap();
        let e = within(SEE_CLOSED_SECS, s.branch()).await.unwrap_err();
        (x, e)
    });
    let c = tokio::spawn(async move {
        use rounds::c::{Branch0, start};
        let mut h = Handler::new();
        let s = start(&mut h, &mut ec).unwrap();
        let Branch0::Go(s) = s.branch().await.unwrap() else {
            panic!("A stopped");
        };
        within(SEE_CLOSED_SECS, s.recv_from_a()).await.unwrap_err()
    });
    {
        let mut h = Handler::new();
        let s = rounds::a::start(&mut h, &mut ea).unwrap();
        let s = s.choose_go().await.unwrap().send_to_b(&1).await.unwrap();
        // Dropped at `A -> C: Y`, whose subtree no longer names `B`.
        drop(s);
    }
    for peer in [Role::B, Role::C] {
        assert!(ea.get_metadata(&peer).unwrap().is_abandoned, "{peer:?}");
    }
    let (x, e) = within(10, b).await.unwrap();
    assert_eq!(x, 1);
    assert!(e.is_closed(), "{e:?}");
    let e = within(10, c).await.unwrap();
    assert!(e.is_closed(), "{e:?}");
}
