//! The guide's Quick Start, as user code against the facade.

use rumpsteak_aura_choreography::effects::{
    ChoreoHandler,
    handlers::rumpsteak::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel},
};
use serde::{Deserialize, Serialize};

// Define roles
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Alice,
    Bob,
}

impl rumpsteak_aura::Role for Role {
    type Message = MyMessage;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

// Define messages
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MyMessage {
    content: String,
}

impl rumpsteak_aura::Message<Box<dyn std::any::Any + Send>> for MyMessage {
    fn upcast(msg: Box<dyn std::any::Any + Send>) -> Self {
        // The guide unwraps here; a total conversion avoids the panic.
        match msg.downcast::<MyMessage>() {
            Ok(m) => *m,
            Err(_) => MyMessage {
                content: String::new(),
            },
        }
    }
    fn downcast(self) -> Result<Box<dyn std::any::Any + Send>, Self> {
        Ok(Box::new(self))
    }
}

#[tokio::test]
async fn quick_start() -> Result<(), Box<dyn std::error::Error>> {
    // Create endpoints
    let mut alice_ep = RumpsteakEndpoint::new(Role::Alice);
    let mut bob_ep = RumpsteakEndpoint::new(Role::Bob);

    // Setup channels
    let (alice_ch, bob_ch) = SimpleChannel::pair();
    alice_ep.register_channel(Role::Bob, alice_ch);
    bob_ep.register_channel(Role::Alice, bob_ch);

    // Create handlers
    let mut alice_handler = RumpsteakHandler::<Role, MyMessage>::new();
    let mut bob_handler = RumpsteakHandler::<Role, MyMessage>::new();

    // Send and receive
    let msg = MyMessage {
        content: "Hello!".to_string(),
    };
    alice_handler.send(&mut alice_ep, Role::Bob, &msg).await?;

    let received: MyMessage = bob_handler.recv(&mut bob_ep, Role::Alice).await?;
    println!("Received: {}", received.content);
    assert_eq!(received.content, "Hello!");

    let alice_meta = alice_ep.get_metadata(&Role::Bob).ok_or("no metadata")?;
    assert_eq!(alice_meta.operation_count, 1);
    assert_eq!(alice_meta.state_description, "sent MyMessage to Bob");
    let bob_meta = bob_ep.get_metadata(&Role::Alice).ok_or("no metadata")?;
    assert_eq!(bob_meta.state_description, "received MyMessage from Alice");
    assert!(!bob_meta.is_complete);
    Ok(())
}
