//! `C` is not told `A`'s choice and receives `Order` or `Hold` from `B`: its
//! first state is a branch on the message received, so it cannot receive
//! one of them as if it knew which comes.
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};

rumpsteak_aura_macros::protocol! {
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod merged = "
        roles A, B, C;
        choice at A {
            buy: { A -> B: Buy(u32); B -> C: Order(u32); }
            wait: { A -> B: Wait; B -> C: Hold; }
        }";
}

type Handler = RumpsteakHandler<merged::Role, ()>;
type Endpoint = RumpsteakEndpoint<merged::Role>;

async fn c(h: &mut Handler, ep: &mut Endpoint) -> rumpsteak_aura::Result<()> {
    let s = merged::c::start(h, ep)?;
    let (_order, end) = s.recv_from_b().await?;
    end.finish();
    Ok(())
}

fn main() {}
