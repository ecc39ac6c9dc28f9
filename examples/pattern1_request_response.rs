//! Pattern 1 of the guide: request-response.
//!
//! Alice (the client) sends a `Request` to Bob (the server) and waits for
//! the `Response`. The server runs in its own task.
//!
//! Run it with `cargo run --example pattern1_request_response`.

mod common;

use common::{BoxError, Handler, Request, Response, Role, finish, pair, print_metadata};
use rumpsteak_aura_choreography::effects::{ChoreoHandler, ChoreographyError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (mut endpoint, mut server_ep) = pair(Role::Alice, Role::Bob);

    let server = tokio::spawn(async move {
        let mut handler = Handler::new();
        let request: Request = handler.recv(&mut server_ep, Role::Alice).await?;
        println!("server: got query {:?}", request.query);
        let response = Response {
            answer: format!("three records match {:?}", request.query),
        };
        handler.send(&mut server_ep, Role::Alice, &response).await?;
        Ok::<_, ChoreographyError>(server_ep)
    });

    let mut handler = Handler::new();
    // Client side
    let request = Request {
        query: "data".to_string(),
    };
    println!("client: sending query {:?}", request.query);
    handler.send(&mut endpoint, Role::Bob, &request).await?;
    let response: Response = handler.recv(&mut endpoint, Role::Bob).await?;
    println!("client: got answer {:?}", response.answer);

    let server_ep = finish(server).await?;
    println!();
    print_metadata(&endpoint);
    print_metadata(&server_ep);
    Ok(())
}
