//! The classic protocols used across the tests.

/// Two roles: `A` pings `B` until it stops.
pub(crate) const PING_PONG: &str = "
rec Loop {
    choice at A {
        ping: { A -> B: Ping; B -> A: Pong; continue Loop; }
        stop: { A -> B: Stop; }
    }
}";

/// Two buyers share the price of a book; the second decides.
pub(crate) const TWO_BUYER: &str = "
roles Buyer1, Buyer2, Seller;
Buyer1 -> Seller: Title(String);
Seller -> Buyer1: Quote(u32);
Seller -> Buyer2: Quote(u32);
Buyer1 -> Buyer2: Share(u32);
choice at Buyer2 {
    accept: {
        Buyer2 -> Seller: Address(String);
        Seller -> Buyer2: Date(String);
    }
    reject: {
        Buyer2 -> Seller: Quit;
    }
}";

/// A buyer negotiates with a seller through a coordinator, which relays the
/// buyer's decision to the seller with a choice of its own.
pub(crate) const NEGOTIATION: &str = "
roles Buyer, Coordinator, Seller;
Buyer -> Coordinator: Request(Item);
Coordinator -> Seller: Query(Item);
Seller -> Coordinator: Quote(Price);
Coordinator -> Buyer: Offer(Price);
choice at Buyer {
    accept: {
        Buyer -> Coordinator: Accept;
        choice at Coordinator {
            confirm: {
                Coordinator -> Seller: Confirm;
                Seller -> Buyer: Receipt(Receipt);
            }
        }
    }
    reject: {
        Buyer -> Coordinator: Reject;
        choice at Coordinator {
            cancel: { Coordinator -> Seller: Cancel; }
        }
    }
}";

/// The same negotiation without the coordinator's relay: the seller gets the
/// same message in both branches, so it cannot know what the buyer chose.
pub(crate) const NEGOTIATION_UNTOLD: &str = "
roles Buyer, Coordinator, Seller;
Buyer -> Coordinator: Request(Item);
Coordinator -> Seller: Query(Item);
Seller -> Coordinator: Quote(Price);
Coordinator -> Buyer: Offer(Price);
choice at Buyer {
    accept: {
        Buyer -> Coordinator: Accept;
        Coordinator -> Seller: Decision;
        Seller -> Buyer: Receipt(Receipt);
    }
    reject: {
        Buyer -> Coordinator: Reject;
        Coordinator -> Seller: Decision;
    }
}";

/// Five roles pass a token around a ring until `A` stops it; each role
/// relays the decision to the next one.
pub(crate) const RING: &str = "
roles A, B, C, D, E;
rec Round {
    choice at A {
        pass: {
            A -> B: Token(u64);
            choice at B { pass: {
                B -> C: Token(u64);
                choice at C { pass: {
                    C -> D: Token(u64);
                    choice at D { pass: {
                        D -> E: Token(u64);
                        E -> A: Token(u64);
                        continue Round;
                    } }
                } }
            } }
        }
        stop: {
            A -> B: Stop;
            choice at B { stop: {
                B -> C: Stop;
                choice at C { stop: {
                    C -> D: Stop;
                    choice at D { stop: { D -> E: Stop; } }
                } }
            } }
        }
    }
}";

/// `C` is never told which branch `A` took, but the message it gets from
/// `B` says so (a branch on the message received).
pub(crate) const MERGED_RECEIVE: &str = "
roles A, B, C;
choice at A {
    Foo: { A -> B: Foo; B -> C: Foo; }
    Bar: { A -> B: Bar; B -> C: Bar; }
}";

/// `C` takes no part in the loop; it only waits for the final message.
pub(crate) const BYSTANDER: &str = "
roles A, B, C;
rec X { choice at A { more: { A -> B: More; continue X; } stop: { A -> B: Stop; } } }
B -> C: Done;";

/// Protocols with the constructs of full merge, bystanders of loops,
/// knowledge through a `continue` and richer payloads, all accepted.
pub(crate) const ACCEPTED: &[&str] = &[
    MERGED_RECEIVE,
    BYSTANDER,
    // Distinct messages with payloads and different continuations.
    "roles A, B, C;
     choice at A {
         buy: { A -> B: Buy(u32); B -> C: Order(u32); C -> B: Receipt(Text); }
         sell: { A -> B: Sell; B -> C: Offer(Text); C -> B: Accept; B -> A: Sold; }
         wait: { A -> B: Wait; B -> C: Hold(); }
     }",
    // A merge after an equal first message, and three roles that merge.
    "roles A, B, C, D;
     choice at A {
         x: { A -> B: X; B -> C: Hello; B -> C: Left; C -> D: One; }
         y: { A -> B: Y; B -> C: Hello; B -> C: Right; C -> D: Two; }
     }",
    // A branch on the message received inside a loop, told to a bystander
    // by messages only.
    "roles A, B, C;
     rec X {
         choice at A {
             more: { A -> B: More; B -> C: Ping(u32); continue X; }
             quiet: { A -> B: Quiet; continue X; }
             stop: { A -> B: Stop; B -> C: Done; }
         }
     }",
    // A received message merged with a choice the same sender makes.
    "roles A, B, C;
     choice at A {
         x: { A -> B: X; choice at B { l: { B -> C: L; } r: { B -> C: R; } } }
         y: { A -> B: Y; B -> C: Other; }
     }",
    // `C` hears from `A` first in the next round: it is told by unfolding.
    "roles A, B, C;
     rec X { A -> C: Tick; choice at A { more: { A -> B: More; continue X; } stop: { A -> B: Stop; } } }",
    // Two nested loops that a bystander skips.
    "roles A, B, C;
     rec Outer {
         rec Inner {
             choice at A {
                 again: { A -> B: Again; continue Inner; }
                 next: { A -> B: Next; continue Outer; }
                 done: { A -> B: Done; }
             }
         }
     }
     B -> C: Over(u64, Text);",
    // Tuples and empty parentheses.
    "roles A, B;
     A -> B: Pair(u32, Text);
     B -> A: Ack();
     B -> A: Triple(u8, u16, u32);",
];
