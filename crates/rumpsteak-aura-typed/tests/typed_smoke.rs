//! Smoke test while writing the macro.
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler, SimpleChannel};

rumpsteak_aura_macros::protocol! {
    /// Ping-pong.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod pingpong = "
        roles A, B;
        rec Loop {
            choice at A {
                ping: { A -> B: Ping(u32); B -> A: Pong(u32); continue Loop; }
                stop: { A -> B: Bye; }
            }
        }
    ";
}

use pingpong::Role;

#[tokio::test]
async fn ping_pong_runs() {
    let (x, y) = SimpleChannel::pair();
    let mut ea = RumpsteakEndpoint::new(Role::A);
    ea.register_channel(Role::B, x);
    let mut eb = RumpsteakEndpoint::new(Role::B);
    eb.register_channel(Role::A, y);
    let a = tokio::spawn(async move {
        let mut h = RumpsteakHandler::<Role, ()>::new();
        let mut s = pingpong::a::start(&mut h, &mut ea).unwrap();
        let mut total = 0;
        for i in 0..3u32 {
            let s1 = s.choose_ping().await.unwrap();
            let s2 = s1.send_to_b(&i).await.unwrap();
            let (n, s3) = s2.recv_from_b().await.unwrap();
            total += n;
            s = s3;
        }
        let s = s.choose_stop().await.unwrap();
        let end = s.send_to_b().await.unwrap();
        end.finish();
        total
    });
    let b = tokio::spawn(async move {
        let mut h = RumpsteakHandler::<Role, ()>::new();
        let mut s = pingpong::b::start(&mut h, &mut eb).unwrap();
        loop {
            match s.branch().await.unwrap() {
                pingpong::b::Branch0::Ping(s1) => {
                    let (n, s2) = s1.recv_from_a().await.unwrap();
                    s = s2.send_to_a(&(n * 10)).await.unwrap();
                }
                pingpong::b::Branch0::Stop(s1) => {
                    let ((), end) = s1.recv_from_a().await.unwrap();
                    end.finish();
                    break;
                }
            }
        }
    });
    assert_eq!(a.await.unwrap(), 30);
    b.await.unwrap();
}
