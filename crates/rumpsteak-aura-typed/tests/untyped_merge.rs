//! A branch on the message received, run untyped through the handler with
//! every endpoint monitored: the bystander `C` learns `A`'s choice from
//! the label that `B` sends before its message, and its `recv` works for
//! each message once the label is in. Receiving without the label, or the
//! other message, is refused by `C`'s monitor before anything is read.

mod common;

use common::{Handler, assert_finished, mesh, within};
use rumpsteak_aura::{ChoreoHandler, ChoreographyError, Label};
use rumpsteak_aura_handler::RumpsteakEndpoint;
use rumpsteak_aura_typed::Protocol;
use serde::{Deserialize, Serialize};

const MERGED: &str = "
roles A, B, C;
choice at A {
    buy: { A -> B: Buy(u32); B -> C: Order(Order); }
    wait: { A -> B: Wait(u32); B -> C: Hold(Hold); }
}";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    A,
    B,
    C,
}

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order(u32);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Hold(u32);

const BUY: Label = Label("buy");
const WAIT: Label = Label("wait");

fn monitored(p: &Protocol) -> Vec<RumpsteakEndpoint<Role>> {
    mesh(&[Role::A, Role::B, Role::C])
        .into_iter()
        .map(|ep| {
            let m = p.monitor_for(&format!("{:?}", ep.local_role())).unwrap();
            ep.with_protocol(m)
        })
        .collect()
}

/// Runs the protocol with `A` choosing `label`; what `C` received.
async fn run(label: Label) -> String {
    let p = Protocol::parse(MERGED).unwrap();
    let mut eps = monitored(&p).into_iter();
    let (mut ea, mut eb, mut ec) = (
        eps.next().unwrap(),
        eps.next().unwrap(),
        eps.next().unwrap(),
    );
    let a = tokio::spawn(async move {
        let mut h = Handler::new();
        h.choose(&mut ea, Role::B, label).await?;
        h.send(&mut ea, Role::B, &5u32).await?;
        Ok::<_, ChoreographyError>(ea)
    });
    let b = tokio::spawn(async move {
        let mut h = Handler::new();
        let chosen = h.offer(&mut eb, Role::A).await?;
        let n: u32 = h.recv(&mut eb, Role::A).await?;
        // C branches on this message: its label goes first.
        if chosen == BUY {
            h.choose(&mut eb, Role::C, Label("Order")).await?;
            h.send(&mut eb, Role::C, &Order(n * 2)).await?;
        } else {
            h.choose(&mut eb, Role::C, Label("Hold")).await?;
            h.send(&mut eb, Role::C, &Hold(n)).await?;
        }
        Ok::<_, ChoreographyError>(eb)
    });
    let c = tokio::spawn(async move {
        let mut h = Handler::new();
        let got = match h.offer(&mut ec, Role::B).await?.as_str() {
            "Order" => {
                // The other message is refused by the monitor, nothing read.
                let wrong = h.recv::<Hold>(&mut ec, Role::B).await;
                assert!(
                    matches!(wrong, Err(ChoreographyError::ProtocolViolation { .. })),
                    "{wrong:?}"
                );
                let Order(n) = h.recv(&mut ec, Role::B).await?;
                format!("order {n}")
            }
            "Hold" => {
                let Hold(n) = h.recv(&mut ec, Role::B).await?;
                format!("hold {n}")
            }
            other => panic!("unexpected label {other}"),
        };
        Ok::<_, ChoreographyError>((ec, got))
    });
    assert_finished(&within(10, a).await.unwrap().unwrap());
    assert_finished(&within(10, b).await.unwrap().unwrap());
    let (ec, got) = within(10, c).await.unwrap().unwrap();
    assert_finished(&ec);
    got
}

#[tokio::test]
async fn the_bystander_receives_each_message_after_its_label() {
    assert_eq!(run(BUY).await, "order 10");
    assert_eq!(run(WAIT).await, "hold 5");
}

#[tokio::test]
async fn receiving_before_the_label_is_refused() {
    let p = Protocol::parse(MERGED).unwrap();
    let mut ec = monitored(&p).pop().unwrap();
    let mut h = Handler::new();
    let err = h.recv::<Order>(&mut ec, Role::B).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("offer Order|Hold from B"), "{text}");
}
