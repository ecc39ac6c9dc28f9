//! A `foreach` over a role that the `roles` header does not declare as a
//! family: refused, saying how to declare it.

rumpsteak_aura_macros::protocol! {
    /// `Worker` is declared as one role, not as `Worker[n]`.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod scatter = "
        roles Coordinator, Worker;
        foreach Worker[i] { Coordinator -> Worker[i]: Task(u64); }";
}

fn main() {}
