//! A protocol that does not parse: the message names line and column.

rumpsteak_aura_macros::protocol! {
    /// The arrow of the second line is missing its head.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod broken = "
        roles A, B;
        A - B: Ask(u32);";
}

fn main() {}
