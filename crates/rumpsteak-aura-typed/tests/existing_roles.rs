//! `#[protocol(roles = "...")]` uses a role type of the caller's instead
//! of generating one: states, monitors and endpoints all speak it.

mod common;

use common::{Handler, assert_finished, mesh, within};

/// The test's own roles; their `Debug` names are the protocol's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    /// Who greets.
    Alice,
    /// Who counts.
    Bob,
}

impl rumpsteak_aura::Role for Party {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

rumpsteak_aura_macros::protocol! {
    /// Alice greets Bob, who counts the greeting.
    #[protocol(roles = "crate::Party", crate = "::rumpsteak_aura_typed")]
    pub mod greet = "
        roles Alice, Bob;
        Alice -> Bob: Greeting(String);
        Bob -> Alice: Count(usize);";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_runs_on_the_callers_role_type() {
    // `greet::Role` is the caller's type, not a new one.
    let roles: [greet::Role; 2] = [Party::Alice, Party::Bob];
    let mut eps = mesh(&roles).into_iter();
    let (ea, eb) = (eps.next().unwrap(), eps.next().unwrap());
    let mut ea = ea.with_protocol(greet::monitor(Party::Alice).unwrap());
    let mut eb = eb.with_protocol(greet::monitor(Party::Bob).unwrap());
    let alice = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = greet::alice::start(&mut h, &mut ea).unwrap();
        let s = s.send_to_bob(&"hello".to_owned()).await.unwrap();
        let (count, end) = s.recv_from_bob().await.unwrap();
        end.finish();
        (ea, count)
    });
    let bob = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = greet::bob::start(&mut h, &mut eb).unwrap();
        let (greeting, s) = s.recv_from_alice().await.unwrap();
        s.send_to_alice(&greeting.len()).await.unwrap().finish();
        (eb, greeting)
    });
    let (ea, count) = within(10, alice).await.unwrap();
    let (eb, greeting) = within(10, bob).await.unwrap();
    assert_eq!((count, greeting.as_str()), (5, "hello"));
    assert_finished(&ea);
    assert_finished(&eb);
}
