//! Pattern 5 of the guide: timeout protection, in three forms that compile.
//!
//! 1. `with_timeout`, with the guide's signature. Its body is a future
//!    built before the call, so the body cannot borrow the handler and
//!    endpoint given to the call: it uses a copy of the (stateless) handler
//!    and the endpoint that talks to the peer, while the call gets a second
//!    endpoint that only names the role being timed.
//! 2. `recv_timeout`, on one handler and one endpoint: the everyday form.
//! 3. `within`, a closure that gets the handler and the endpoint, for
//!    several steps under one deadline.
//!
//! In each case the timeout is told apart from other errors as
//! `ChoreographyError::Timeout`. A timed-out receive loses nothing: the
//! message that arrives later is received by the next call.
//!
//! Run it with `cargo run --example pattern5_timeout`.

mod common;

use std::time::Duration;

use common::{BoxError, Endpoint, Handler, Request, Response, Role, finish, pair};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError};

/// What the guide's `match result` does with each outcome.
fn report<T: std::fmt::Debug>(form: &str, result: Result<T, ChoreographyError>) {
    match result {
        Ok(msg) => println!("{form}: received {msg:?}"),
        Err(ChoreographyError::Timeout(d)) => {
            println!("{form}: timeout detected as ChoreographyError::Timeout({d:?})");
        }
        Err(e) => println!("{form}: other error: {e}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (mut endpoint, mut peer_ep) = pair(Role::Alice, Role::Bob);
    let mut handler = Handler::new();
    let short = Duration::from_millis(50);

    // 1. with_timeout, as the guide declares it.
    let mut timer_ep = Endpoint::new(Role::Alice);
    let mut body_handler = handler;
    let result = handler
        .with_timeout(&mut timer_ep, Role::Alice, short, async {
            body_handler.recv::<Request>(&mut endpoint, Role::Bob).await
        })
        .await;
    report("with_timeout", result);

    // 2. recv_timeout: nothing has been sent yet, so this times out ...
    let result = handler
        .recv_timeout::<Request>(&mut endpoint, Role::Bob, short)
        .await;
    report("recv_timeout", result);

    // ... and once Bob sends, the next receive gets the message.
    let request = Request {
        query: "status".into(),
    };
    handler.send(&mut peer_ep, Role::Alice, &request).await?;
    let result = handler
        .recv_timeout::<Request>(&mut endpoint, Role::Bob, Duration::from_secs(5))
        .await;
    report("recv_timeout", result);

    // 3. within: a request and its reply under one deadline. Bob answers
    // the first request only.
    let bob = tokio::spawn(async move {
        let mut handler = Handler::new();
        let request: Request = handler.recv(&mut peer_ep, Role::Alice).await?;
        let response = Response {
            answer: format!("{} is fine", request.query),
        };
        handler.send(&mut peer_ep, Role::Alice, &response).await?;
        let _ignored: Request = handler.recv(&mut peer_ep, Role::Alice).await?;
        Ok::<_, ChoreographyError>(peer_ep)
    });
    for (query, limit) in [("disk", Duration::from_secs(5)), ("network", short)] {
        let result = handler
            .within(&mut endpoint, limit, async |h, ep| {
                let request = Request {
                    query: query.into(),
                };
                h.send(ep, Role::Bob, &request).await?;
                h.recv::<Response>(ep, Role::Bob).await
            })
            .await;
        report("within", result);
    }

    let peer_ep = finish(bob).await?;
    println!(
        "channels still open after the timeouts: Alice {}, Bob {}",
        endpoint.active_channel_count(),
        peer_ep.active_channel_count()
    );
    Ok(())
}
