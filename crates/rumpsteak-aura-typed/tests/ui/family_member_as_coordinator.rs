//! A member of the family has its own role: its states have none of the
//! coordinator's steps, such as telling every worker the choice.
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

async fn member(h: &mut Handler, ep: &mut Endpoint, sizes: scatter::Sizes) -> Result<(), Box<dyn std::error::Error>> {
    let member = scatter::worker::Member::new(sizes, 0)?;
    let s = scatter::worker::start(h, ep, member)?;
    let _s = s.choose_stop().await?;
    Ok(())
}

fn main() {}
