//! Regressions found by review of the `protocol!` expansion.

use std::time::Duration;

use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
use rumpsteak_aura_typed::Deadline;

rumpsteak_aura_macros::protocol! {
    /// A loop inside a loop: what `B` does after the inner loop's `back`
    /// branch is the outer loop's `Hello` to `C`.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    mod nested = "
        roles A, B, C;
        rec Outer {
            B -> C: Hello;
            rec Inner {
                choice at A {
                    more: { A -> B: More; A -> C: More; A -> B: Data(u32); continue Inner; }
                    back: { A -> B: Back; A -> C: Back; continue Outer; }
                    stop: { A -> B: Stop; A -> C: Stop; }
                }
            }
        }
    ";
}

use nested::Role;

fn endpoints() -> [RumpsteakEndpoint<Role>; 3] {
    let mut eps = Role::ALL.map(RumpsteakEndpoint::new);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let (x, y) = SimpleChannel::pair();
        eps[i].register_channel(Role::ALL[j], x);
        eps[j].register_channel(Role::ALL[i], y);
    }
    eps
}

/// `B` drops its state inside the inner loop. `C` will need `B` again only
/// once the outer loop comes round, through the inner loop's `continue
/// Outer`: the drop must close `B`'s channel to `C` too, or `C` waits for
/// ever for the second `Hello`.
#[tokio::test]
async fn a_state_dropped_in_an_inner_loop_releases_the_outer_loops_peers() {
    let [mut ea, mut eb, mut ec] = endpoints();

    let mut h = RumpsteakHandler::<Role, ()>::new();
    let s = nested::a::start(&mut h, &mut ea).unwrap();
    let s = s.choose_more().await.unwrap();
    let s = s.send_to_b().await.unwrap().send_to_c().await.unwrap();
    let s = s.send_to_b(&5).await.unwrap();
    let s = s.choose_back().await.unwrap();
    let s = s.send_to_b().await.unwrap().send_to_c().await.unwrap();
    // A has nothing more to say for now; keep its state so that dropping
    // it does not close anything before the assertions.
    let keep_a = s;

    let mut h = RumpsteakHandler::<Role, ()>::new();
    let s = nested::b::start(&mut h, &mut eb).unwrap();
    let s = s.send_to_c().await.unwrap();
    let nested::b::Branch1::More(s) = s.branch().await.unwrap() else {
        panic!("A chose more");
    };
    let ((), at_data) = s.recv_from_a().await.unwrap();
    drop(at_data);
    let meta = eb.get_metadata(&Role::C).unwrap();
    assert!(meta.is_abandoned, "{meta:?}");
    assert!(!eb.has_channel(&Role::C) && !eb.has_channel(&Role::A));

    let mut h = RumpsteakHandler::<Role, ()>::new();
    let s = nested::c::start(&mut h, &mut ec).unwrap();
    let ((), s) = s.recv_from_b().await.unwrap();
    let nested::c::Branch1::More(s) = s.branch().await.unwrap() else {
        panic!("A chose more");
    };
    let ((), s) = s.recv_from_a().await.unwrap();
    let nested::c::Branch1::Back(s) = s.branch().await.unwrap() else {
        panic!("A chose back");
    };
    let ((), s) = s.recv_from_a().await.unwrap();
    // The second Hello never comes. Without the fix this times out; with
    // it the channel is already closed, so the bound only has to be long
    // enough not to race a loaded machine, which 5 s is.
    match s.recv_from_b_timeout(Duration::from_secs(5)).await {
        Err(Deadline::Failed(e)) => assert!(e.is_closed(), "{e}"),
        Err(Deadline::Elapsed { .. }) => panic!("C was left waiting for B"),
        Ok(_) => panic!("B sent a second Hello after abandoning"),
    }
    drop(keep_a);
}

rumpsteak_aura_macros::protocol! {
    /// Lower-case roles and labels, and `gen` (reserved in edition 2024).
    #[protocol(crate = "::rumpsteak_aura_typed")]
    #[deny(warnings)]
    mod lowercase = "roles gen, other; gen -> other: ping; other -> gen: gen;";
}

#[tokio::test]
async fn lowercase_and_reserved_names_compile_without_warnings() {
    use lowercase::Role as R;
    let (x, y) = SimpleChannel::pair();
    let mut e1 = RumpsteakEndpoint::new(R::r#gen);
    e1.register_channel(R::other, x);
    let mut e2 = RumpsteakEndpoint::new(R::other);
    e2.register_channel(R::r#gen, y);
    let mut h1 = RumpsteakHandler::<R, ()>::new();
    let mut h2 = RumpsteakHandler::<R, ()>::new();
    let s1 = lowercase::r#gen::start(&mut h1, &mut e1).unwrap();
    let s1 = s1.send_to_other().await.unwrap();
    let s2 = lowercase::other::start(&mut h2, &mut e2).unwrap();
    let ((), s2) = s2.recv_from_gen().await.unwrap();
    s2.send_to_gen().await.unwrap().finish();
    let ((), end) = s1.recv_from_other().await.unwrap();
    let meta = end.finish().get_metadata(&R::other).unwrap();
    assert_eq!(meta.operation_count, 2);
    assert!(!meta.is_abandoned);
}
