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

/// The same negotiation without the coordinator's relay: the seller cannot
/// know what the buyer chose.
pub(crate) const NEGOTIATION_UNTOLD: &str = "
roles Buyer, Coordinator, Seller;
Buyer -> Coordinator: Request(Item);
Coordinator -> Seller: Query(Item);
Seller -> Coordinator: Quote(Price);
Coordinator -> Buyer: Offer(Price);
choice at Buyer {
    accept: {
        Buyer -> Coordinator: Accept;
        Coordinator -> Seller: Confirm;
        Seller -> Buyer: Receipt(Receipt);
    }
    reject: {
        Buyer -> Coordinator: Reject;
        Coordinator -> Seller: Cancel;
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
