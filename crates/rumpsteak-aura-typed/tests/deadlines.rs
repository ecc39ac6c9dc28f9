//! A typed receive or branch with a deadline that passes gives the state
//! back unchanged: the retried step with the same state completes, and the
//! protocol finishes, nothing lost and nothing abandoned.

mod common;

use std::time::Duration;

use common::{Handler, mesh, within};
use rumpsteak_aura::ChoreographyError;
use rumpsteak_aura_handler::RumpsteakEndpoint;
use rumpsteak_aura_typed::Deadline;
use tokio::sync::oneshot;

rumpsteak_aura_macros::protocol! {
    /// `S` sends a first value, then chooses to send a second one or stop.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod slow = "
        roles W, S;
        S -> W: First(u32);
        choice at S {
            more: { S -> W: Second(String); }
            done: { S -> W: Done; }
        }";
}

use slow::Role;

/// Short enough to keep the test fast; nothing is sent before it passes,
/// because the sender waits for a signal that follows it.
const SHORT: Duration = Duration::from_millis(20);
/// The retried step's bound: generous, it only proves the step completes.
const LONG: Duration = Duration::from_secs(10);

fn endpoints() -> (RumpsteakEndpoint<Role>, RumpsteakEndpoint<Role>) {
    let mut eps = mesh(&Role::ALL).into_iter();
    let w = eps.next().unwrap();
    (w, eps.next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_receive_and_branch_are_retried_with_their_state() {
    let (mut ew, mut es) = endpoints();
    let (first_go, first_wait) = oneshot::channel::<()>();
    let (choice_go, choice_wait) = oneshot::channel::<()>();
    let s = tokio::spawn(async move {
        let mut h = Handler::new();
        let st = slow::s::start(&mut h, &mut es).unwrap();
        within(10, first_wait).await.unwrap();
        let st = st.send_to_w(&7).await.unwrap();
        within(10, choice_wait).await.unwrap();
        let st = st.choose_more().await.unwrap();
        st.send_to_w(&"late".to_owned()).await.unwrap().finish();
        es
    });
    let w = tokio::spawn(async move {
        use slow::w::{Branch1, start};
        let mut h = Handler::new();
        let st = start(&mut h, &mut ew).unwrap();

        let Err(Deadline::Elapsed { state: st, after }) = st.recv_from_s_timeout(SHORT).await
        else {
            panic!("the receive did not time out");
        };
        assert_eq!(after, SHORT);
        // Nothing was abandoned by the timeout.
        assert!(!st.endpoint().get_metadata(&Role::S).unwrap().is_abandoned);
        first_go.send(()).unwrap();
        let (first, st) = st.recv_from_s_timeout(LONG).await.unwrap();

        let timed_out = st.branch_timeout(SHORT).await.unwrap_err();
        assert!(timed_out.is_elapsed(), "{timed_out:?}");
        let st = timed_out.into_state().unwrap();
        choice_go.send(()).unwrap();
        let second = match st.branch_timeout(LONG).await.unwrap() {
            Branch1::More(st) => {
                let (second, end) = st.recv_from_s().await.unwrap();
                end.finish();
                Some(second)
            }
            Branch1::Done(st) => {
                let ((), end) = st.recv_from_s().await.unwrap();
                end.finish();
                None
            }
        };
        (ew, first, second)
    });
    let (ew, first, second) = within(20, w).await.unwrap();
    assert_eq!((first, second.as_deref()), (7, Some("late")));
    let es = within(20, s).await.unwrap();
    for (ep, peer) in [(&ew, Role::S), (&es, Role::W)] {
        let meta = ep.get_metadata(&peer).unwrap();
        assert!(!meta.is_abandoned && ep.has_channel(&peer), "{meta:?}");
    }
    // W received the first value, the label and the second value.
    assert_eq!(ew.get_metadata(&Role::S).unwrap().operation_count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_given_up_with_question_mark_is_a_timeout_and_abandons() {
    let (mut ew, es) = endpoints();
    let w = tokio::spawn(async move {
        async fn gives_up(ep: &mut RumpsteakEndpoint<Role>) -> Result<u32, ChoreographyError> {
            let mut h = Handler::new();
            let st = slow::w::start(&mut h, ep)?;
            let (first, _st) = st.recv_from_s_timeout(SHORT).await?;
            Ok(first)
        }
        let e = gives_up(&mut ew).await.unwrap_err();
        (ew, e)
    });
    let (ew, e) = within(10, w).await.unwrap();
    assert!(
        matches!(e, ChoreographyError::Timeout(after) if after == SHORT),
        "{e:?}"
    );
    assert!(ew.get_metadata(&Role::S).unwrap().is_abandoned);
    // `S` can no longer send its first value.
    let mut es = es;
    let mut h = Handler::new();
    let st = slow::s::start(&mut h, &mut es).unwrap();
    assert!(st.send_to_w(&1).await.unwrap_err().is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_the_deadline_is_not_a_timeout() {
    let (mut ew, mut es) = endpoints();
    // `S` gives up at once: its channel to `W` closes.
    es.abandon(&[Role::W]);
    let mut h = Handler::new();
    let st = slow::w::start(&mut h, &mut ew).unwrap();
    match within(10, st.recv_from_s_timeout(LONG)).await {
        Err(Deadline::Failed(e)) => assert!(e.is_closed(), "{e:?}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}
