//! A role not in the `roles` header.

rumpsteak_aura_macros::protocol! {
    /// `Carol` is not declared.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod stranger = "
        roles Alice, Bob;
        Alice -> Bob: Hello;
        Bob -> Carol: Gossip(String);";
}

fn main() {}
