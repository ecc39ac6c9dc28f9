//! A state is consumed by its step: it cannot be used again.
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};

rumpsteak_aura_macros::protocol! {
    /// `A` asks `B`, which answers.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod ask = "
        roles A, B, C;
        A -> B: Ask(u32);
        B -> A: Answer(String);
        choice at A {
            more: { A -> B: More; A -> C: Note(u32); }
            done: { A -> B: Done; A -> C: Over; }
        }";
}

type Handler = RumpsteakHandler<ask::Role, ()>;
type Endpoint = RumpsteakEndpoint<ask::Role>;

async fn a(h: &mut Handler, ep: &mut Endpoint) -> rumpsteak_aura::Result<()> {
    let s = ask::a::start(h, ep)?;
    let _first = s.send_to_b(&1).await?;
    let _again = s.send_to_b(&2).await?;
    Ok(())
}

fn main() {}
