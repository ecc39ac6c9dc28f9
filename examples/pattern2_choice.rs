//! Pattern 2 of the guide: a choice with branches.
//!
//! Alice decides, Bob follows her decision. Bob's receiver is written the
//! safe way: a label outside the protocol is an error that Bob handles, not
//! a panic that a peer can trigger (`unreachable!()` would be one). The
//! last round shows a misbehaving sender being refused by `offer_among`.
//!
//! Run it with `cargo run --example pattern2_choice`.

mod common;

use common::{BoxError, EXAMPLE_DEADLINE, Endpoint, Handler, Role, pair};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError, Label};

const ACCEPT: Label = Label("accept");
const REJECT: Label = Label("reject");

/// The guide's sender.
async fn sender(
    handler: &mut Handler,
    endpoint: &mut Endpoint,
    condition: bool,
) -> Result<(), ChoreographyError> {
    let decision = if condition {
        Label("accept")
    } else {
        Label("reject")
    };
    println!("Alice: choosing {decision}");
    handler.choose(endpoint, Role::Bob, decision).await
}

/// The guide's receiver, with a fallback arm instead of `unreachable!()`.
async fn receiver(handler: &mut Handler, endpoint: &mut Endpoint) -> Result<(), ChoreographyError> {
    let choice = handler.offer(endpoint, Role::Alice).await?;
    match choice.0 {
        "accept" => println!("Bob:   handling the accept branch"),
        "reject" => println!("Bob:   handling the reject branch"),
        other => {
            return Err(ChoreographyError::UnexpectedLabel {
                peer: "Alice".into(),
                op: rumpsteak_aura_choreography::Operation::Offer,
                expected: vec![ACCEPT, REJECT],
                received: other.to_owned(),
            });
        }
    }
    Ok(())
}

/// The same receiver with `offer_among`: the handler checks the label.
async fn strict_receiver(
    handler: &mut Handler,
    endpoint: &mut Endpoint,
) -> Result<(), ChoreographyError> {
    let choice = handler
        .offer_among(endpoint, Role::Alice, &[ACCEPT, REJECT])
        .await?;
    if choice == ACCEPT {
        println!("Bob:   handling the accept branch (strict)");
    } else {
        println!("Bob:   handling the reject branch (strict)");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (mut alice_ep, mut bob_ep) = pair(Role::Alice, Role::Bob);
    let mut alice = Handler::new();
    let mut bob = Handler::new();

    let run = async {
        // Each round: Alice chooses, then Bob follows. Bob's endpoint stays
        // in this task; the choice is buffered until he reads it.
        for condition in [true, false] {
            sender(&mut alice, &mut alice_ep, condition).await?;
            receiver(&mut bob, &mut bob_ep).await?;
        }
        sender(&mut alice, &mut alice_ep, false).await?;
        strict_receiver(&mut bob, &mut bob_ep).await?;

        // A sender that breaks the protocol.
        println!("Alice: choosing maybe (not in the protocol)");
        alice
            .choose(&mut alice_ep, Role::Bob, Label("maybe"))
            .await?;
        match receiver(&mut bob, &mut bob_ep).await {
            Err(e) => println!("Bob:   refused: {e}"),
            Ok(()) => return Err("Bob accepted an unknown label".into()),
        }
        alice
            .choose(&mut alice_ep, Role::Bob, Label("maybe"))
            .await?;
        match strict_receiver(&mut bob, &mut bob_ep).await {
            Err(e @ ChoreographyError::UnexpectedLabel { .. }) => println!("Bob:   refused: {e}"),
            other => {
                return Err(format!("expected an unexpected-label error, got {other:?}").into());
            }
        }

        // The channel survived both errors.
        sender(&mut alice, &mut alice_ep, true).await?;
        receiver(&mut bob, &mut bob_ep).await?;
        Ok::<_, BoxError>(())
    };
    // Everything runs in this task, so a bounded wait guards against a hang.
    tokio::time::timeout(EXAMPLE_DEADLINE, run).await?
}
