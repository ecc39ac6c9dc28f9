//! `B` must handle both of `A`'s choices.
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

async fn b(h: &mut Handler, ep: &mut Endpoint) -> rumpsteak_aura::Result<()> {
    let s = ask::b::start(h, ep)?;
    let (_, s) = s.recv_from_a().await?;
    let s = s.send_to_a(&"answer".to_owned()).await?;
    match s.branch().await? {
        ask::b::Branch2::More(s) => {
            let ((), end) = s.recv_from_a().await?;
            end.finish();
        }
    }
    Ok(())
}

fn main() {}
