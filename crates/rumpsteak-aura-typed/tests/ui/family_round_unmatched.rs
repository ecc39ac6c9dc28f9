//! The number of rounds of a `foreach` is the family's size, known only at
//! run time: the loop state's `next_member` gives the next member's round
//! or, after the last, the state that follows, and both must be handled.
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};

rumpsteak_aura_macros::protocol! {
    /// A task for every worker, then a result from every worker.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod scatter = "
        roles Coordinator, Worker[n];
        foreach Worker[i] { Coordinator -> Worker[i]: Task(u64); }
        foreach Worker[i] { Worker[i] -> Coordinator: Sum(u64); }";
}

type Handler = RumpsteakHandler<scatter::Role, ()>;
type Endpoint = RumpsteakEndpoint<scatter::Role>;

async fn coordinator(h: &mut Handler, ep: &mut Endpoint, sizes: scatter::Sizes) -> rumpsteak_aura::Result<()> {
    let mut s = scatter::coordinator::start(h, ep, sizes)?;
    loop {
        match s.next_member() {
            scatter::coordinator::Foreach0::Member(i, round) => {
                s = round.send_to_worker(&(i as u64)).await?;
            }
        }
    }
}

fn main() {}
