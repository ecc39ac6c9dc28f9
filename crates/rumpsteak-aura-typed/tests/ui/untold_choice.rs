//! `Seller` is not told of `Buyer`'s choice and gets the same message in
//! both branches, yet acts differently after it: the message names the
//! role, the chooser, line and column.

rumpsteak_aura_macros::protocol! {
    /// The negotiation without the coordinator's relay of the choice.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod untold = "
        roles Buyer, Coordinator, Seller;
        Buyer -> Coordinator: Request(u32);
        Coordinator -> Seller: Query(u32);
        Seller -> Coordinator: Quote(u32);
        Coordinator -> Buyer: Offer(u32);
        choice at Buyer {
            accept: {
                Buyer -> Coordinator: Accept;
                Coordinator -> Seller: Decision;
                Seller -> Buyer: Receipt(String);
            }
            reject: {
                Buyer -> Coordinator: Reject;
                Coordinator -> Seller: Decision;
            }
        }";
}

fn main() {}
