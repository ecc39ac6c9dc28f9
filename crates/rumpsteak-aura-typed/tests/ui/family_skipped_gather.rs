//! The coordinator must gather every worker's sum before the next round:
//! the state after the scatter is the gather's, which has no `choose_work`.
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};

rumpsteak_aura_macros::protocol! {
    /// Scatter, gather, and the end announced to every worker.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod scatter = "
        roles Coordinator, Worker[n];
        rec Round {
            choice at Coordinator {
                work: {
                    foreach Worker[i] { Coordinator -> Worker[i]: Task(u64); }
                    foreach Worker[i] { Worker[i] -> Coordinator: Sum(u64); }
                    continue Round;
                }
                stop: { foreach Worker[i] { Coordinator -> Worker[i]: Stop; } }
            }
        }";
}

type Handler = RumpsteakHandler<scatter::Role, ()>;
type Endpoint = RumpsteakEndpoint<scatter::Role>;

async fn coordinator(h: &mut Handler, ep: &mut Endpoint, sizes: scatter::Sizes) -> rumpsteak_aura::Result<()> {
    let s = scatter::coordinator::start(h, ep, sizes)?;
    let s = s.choose_work().await?;
    let gather = s.send_to_each_worker(|i| i as u64).await?;
    // The next round, without the sums.
    let _s = gather.choose_work().await?;
    Ok(())
}

fn main() {}
