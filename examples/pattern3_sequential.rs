//! Pattern 3 of the guide: sequential messages, each acknowledged.
//!
//! Alice sends a batch of items to Bob one at a time and waits for each
//! acknowledgement before sending the next. Bob runs in his own task.
//!
//! Run it with `cargo run --example pattern3_sequential`.

mod common;

use common::{Ack, BoxError, Handler, Item, Role, finish, pair, print_metadata};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let items: Vec<Item> = ["apples", "bread", "cheese"]
        .into_iter()
        .zip(1..)
        .map(|(name, id)| Item {
            id,
            name: name.into(),
        })
        .collect();
    let count = items.len();
    let (mut endpoint, mut peer_ep) = pair(Role::Alice, Role::Bob);

    let peer = tokio::spawn(async move {
        let mut handler = Handler::new();
        for _ in 0..count {
            let item: Item = handler.recv(&mut peer_ep, Role::Alice).await?;
            handler
                .send(&mut peer_ep, Role::Alice, &Ack { id: item.id })
                .await?;
        }
        Ok::<_, ChoreographyError>(peer_ep)
    });

    let mut handler = Handler::new();
    for item in items {
        handler.send(&mut endpoint, Role::Bob, &item).await?;
        let ack: Ack = handler.recv(&mut endpoint, Role::Bob).await?;
        println!(
            "sent item {} ({}), acknowledged as {}",
            item.id, item.name, ack.id
        );
    }

    let peer_ep = finish(peer).await?;
    println!();
    print_metadata(&endpoint);
    print_metadata(&peer_ep);
    Ok(())
}
