//! A member's round is run to its end before the next member's: the state
//! in the middle of a round (the task sent, the sum not yet received) has
//! no `next_member`, so a member's reply cannot be skipped.
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};

rumpsteak_aura_macros::protocol! {
    /// A task to each worker and its sum back, in the same round.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod scatter = "
        roles Coordinator, Worker[n];
        foreach Worker[i] {
            Coordinator -> Worker[i]: Task(u64);
            Worker[i] -> Coordinator: Sum(u64);
        }";
}

type Handler = RumpsteakHandler<scatter::Role, ()>;
type Endpoint = RumpsteakEndpoint<scatter::Role>;

async fn coordinator(h: &mut Handler, ep: &mut Endpoint, sizes: scatter::Sizes) -> rumpsteak_aura::Result<()> {
    use scatter::coordinator::Foreach0;
    let s = scatter::coordinator::start(h, ep, sizes)?;
    let Foreach0::Member(i, round) = s.next_member() else {
        return Ok(());
    };
    let reply = round.send_to_worker(&(i as u64)).await?;
    // The next member, without member `i`'s sum.
    let _next = reply.next_member();
    Ok(())
}

fn main() {}
