//! An operation cancelled by a deadline is recorded, and replays: the
//! replayed role meets the same timeout at the same step. A replayed step
//! is taken when its future is first polled, not when it is made.

mod common;

use std::time::Duration;

use common::*;
use rumpsteak_aura::{ChoreoHandler, ChoreographyError};
use rumpsteak_aura_layers::{HandlerExt, Metered, OpKind, Recording, Replay, Traced, Transcript};

const SHORT: Duration = Duration::from_millis(5);

/// A's code: waits `SHORT` for a number from B; on a timeout sends B a 0,
/// then takes the number B sent late. Returns what it ended up with.
async fn impatient<H>(h: &mut H, ep: &mut Endpoint) -> Result<(bool, u32), ChoreographyError>
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let first = h
        .within(ep, SHORT, async |h, ep| h.recv::<u32>(ep, Role::B).await)
        .await;
    match first {
        Ok(n) => Ok((false, n)),
        Err(ChoreographyError::Timeout(_)) => {
            h.send(ep, Role::B, &0u32).await?;
            let late: u32 = h.recv(ep, Role::B).await?;
            Ok((true, late))
        }
        Err(e) => Err(e),
    }
}

/// Records `impatient` with B answering after 30 ms, the recording layer
/// wrapped by `wrap`.
fn record<H>(wrap: impl FnOnce(Recording<Handler>) -> H) -> Transcript
where
    H: HandlerExt<Role = Role, Endpoint = Endpoint>,
{
    let rec = Recording::new(Handler::new());
    let (x, y) = rumpsteak_aura_handler::SimpleChannel::pair();
    let mut a = Endpoint::new(Role::A);
    a.register_session(Role::B, rec.tap(&Role::B, x));
    let mut b = Endpoint::new(Role::B);
    b.register_channel(Role::A, y);
    let mut h = wrap(rec.clone());
    runtime().block_on(async {
        let peer = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let mut hb = Handler::new();
            hb.send(&mut b, Role::A, &42u32).await?;
            hb.recv::<u32>(&mut b, Role::A).await
        };
        let (mine, theirs) = tokio::time::timeout(DEADLINE, async {
            tokio::join!(impatient(&mut h, &mut a), peer)
        })
        .await
        .expect("in time");
        assert_eq!(mine.expect("recorded role"), (true, 42));
        assert_eq!(theirs.expect("peer"), 0);
    });
    rec.transcript()
}

fn replay_alone(t: Transcript) {
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    let out = runtime()
        .block_on(async { tokio::time::timeout(DEADLINE, impatient(&mut h, &mut ep)).await })
        .expect("the replay does not hang");
    assert_eq!(out.expect("replays"), (true, 42));
    h.finish().expect("every step replayed");
}

#[test]
fn a_receive_cancelled_by_within_is_recorded_with_its_deadline_and_replays() {
    let t = record(|r| r);
    let ops: Vec<_> = t.entries.iter().map(|e| e.op).collect();
    assert_eq!(ops, [OpKind::Recv, OpKind::Send, OpKind::Recv]);
    let cancelled = &t.entries[0];
    assert_eq!(
        cancelled.cancelled.and_then(|c| c.deadline),
        Some(SHORT),
        "{cancelled}"
    );
    assert_eq!((cancelled.payload.as_deref(), cancelled.bytes), (None, 0));
    assert!(cancelled.error.is_none());
    assert!(t.entries[1..].iter().all(|e| e.cancelled.is_none()));
    // The late number went to the recv that took it, not the cancelled one.
    assert_eq!(t.entries[2].payload.as_deref(), Some(&[42][..]));
    replay_alone(t);
}

#[test]
fn under_layers_that_hide_the_deadline_the_replay_still_times_out() {
    // `within` of Traced and Metered runs its own timer: the recording
    // sees the drop, not the deadline.
    let t = record(|r| Traced::new(Metered::new(r)));
    assert_eq!(t.entries[0].cancelled.map(|c| c.deadline), Some(None));
    replay_alone(t);
}

#[test]
fn a_cancelled_step_under_a_plain_timeout_stalls_until_that_timer_fires() {
    let t = record(|r| r);
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    runtime().block_on(async {
        let r = tokio::time::timeout(SHORT, h.recv::<u32>(&mut ep, Role::B)).await;
        assert!(r.is_err(), "the recorded cancellation never completes");
        h.send(&mut ep, Role::B, &0u32).await.expect("step 2");
        assert_eq!(h.recv::<u32>(&mut ep, Role::B).await.expect("step 3"), 42);
    });
    h.finish().expect("replayed");
}

#[test]
fn a_replayed_step_is_taken_at_the_first_poll() {
    let t = record(|r| r);
    let mut h = Replay::new(t);
    let mut ep = Endpoint::new(Role::A);
    // Made and dropped unpolled, as a losing `select!` branch is.
    drop(h.send(&mut ep, Role::B, &1u32));
    drop(h.recv::<u32>(&mut ep, Role::B));
    assert_eq!(h.position(), 0);
    assert!(h.divergence().is_none());
    runtime().block_on(async {
        tokio::select! {
            biased;
            r = h.within(&mut ep, SHORT, async |h, ep| h.recv::<u32>(ep, Role::B).await) => {
                assert!(matches!(r, Err(ChoreographyError::Timeout(d)) if d == SHORT), "{r:?}");
            }
            () = std::future::ready(()) => panic!("the first branch is ready at once"),
        }
    });
    assert_eq!(h.position(), 1);
}
