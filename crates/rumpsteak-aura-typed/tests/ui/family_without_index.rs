//! A family used without naming one member: refused, saying how to name one.

rumpsteak_aura_macros::protocol! {
    /// `Worker` is a family: a message goes to one member, `Worker[i]`.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod scatter = "
        roles Coordinator, Worker[n];
        foreach Worker[i] { Coordinator -> Worker: Task(u64); }";
}

fn main() {}
