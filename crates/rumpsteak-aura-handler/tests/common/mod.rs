//! Roles, messages and setup shared by the handler's integration tests.
#![allow(dead_code, unreachable_pub)]

use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    Alice,
    Bob,
    Carol,
}

impl rumpsteak_aura::Role for Party {
    type Message = Msg;
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Msg {
    pub text: String,
    pub n: u64,
}

impl Msg {
    pub fn new(text: &str, n: u64) -> Self {
        Msg {
            text: text.to_owned(),
            n,
        }
    }
}

pub type Handler = RumpsteakHandler<Party, Msg>;

/// Alice and Bob, connected by a `SimpleChannel` pair.
pub fn alice_bob() -> (RumpsteakEndpoint<Party>, RumpsteakEndpoint<Party>) {
    let mut a = RumpsteakEndpoint::new(Party::Alice);
    let mut b = RumpsteakEndpoint::new(Party::Bob);
    let (ca, cb) = SimpleChannel::pair();
    a.register_channel(Party::Bob, ca);
    b.register_channel(Party::Alice, cb);
    (a, b)
}
