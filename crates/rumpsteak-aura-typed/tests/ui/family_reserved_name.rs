//! A family whose size would be read by a method that `Sizes` has already:
//! refused, saying which name and why.

rumpsteak_aura_macros::protocol! {
    /// The family `Roles` would need `Sizes::roles`, which lists the roles.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod casting = "
        roles Director, Roles[n];
        foreach Roles[i] { Director -> Roles[i]: Script(u64); }";
}

fn main() {}
