//! A protocol read from a file relative to the crate's manifest.

mod common;

use common::{Handler, assert_finished, mesh, within};

rumpsteak_aura_macros::protocol! {
    /// The relay of `tests/protocols/relay.mpst`.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod relay = file("tests/protocols/relay.mpst");
}

use relay::Role;

#[test]
fn the_text_is_the_files() {
    assert_eq!(relay::PROTOCOL, include_str!("protocols/relay.mpst"));
    assert_eq!(relay::protocol().roles(), ["Source", "Relay", "Sink"]);
    assert_eq!(Role::ALL.map(Role::name), ["Source", "Relay", "Sink"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_from_a_file_runs() {
    let mut eps = mesh(&Role::ALL)
        .into_iter()
        .map(|ep| {
            let m = relay::monitor(*ep.local_role()).unwrap();
            ep.with_protocol(m)
        })
        .collect::<Vec<_>>()
        .into_iter();
    let (mut src, mut rel, mut snk) = (
        eps.next().unwrap(),
        eps.next().unwrap(),
        eps.next().unwrap(),
    );
    let source = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = relay::source::start(&mut h, &mut src).unwrap();
        let ((), end) = s
            .send_to_relay(&-3)
            .await
            .unwrap()
            .recv_from_sink()
            .await
            .unwrap();
        end.finish();
        src
    });
    let relay = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = relay::relay::start(&mut h, &mut rel).unwrap();
        let (v, s) = s.recv_from_source().await.unwrap();
        s.send_to_sink(&(v * 2)).await.unwrap().finish();
        rel
    });
    let sink = tokio::spawn(async move {
        let mut h = Handler::new();
        let s = relay::sink::start(&mut h, &mut snk).unwrap();
        let (v, s) = s.recv_from_relay().await.unwrap();
        s.send_to_source().await.unwrap().finish();
        (snk, v)
    });
    let (snk, v) = within(10, sink).await.unwrap();
    assert_eq!(v, -6);
    assert_finished(&within(10, source).await.unwrap());
    assert_finished(&within(10, relay).await.unwrap());
    assert_finished(&snk);
}
