//! The guide's patterns over WebSocket connections on loopback, through the
//! real handler: the handler code is the same as over in-memory channels,
//! only the setup differs.
#![cfg(feature = "websocket")]

mod network;

use network::{
    Endpoint, Error, Net, Role, any_port, close_is_seen, endpoints, pattern_1, pattern_2,
    pattern_3, pattern_4, pattern_5,
};
use rumpsteak_aura_choreography::transport::tcp::TcpOptions;
use rumpsteak_aura_choreography::transport::websocket::{self, WebSocketListener};

#[tokio::test]
async fn pattern_1_request_response_over_websocket() -> Result<(), Error> {
    let (client, server) = endpoints(Net::WebSocket, Role::Client, Role::Server).await?;
    pattern_1(client, server).await
}

#[tokio::test]
async fn pattern_2_choice_over_websocket() -> Result<(), Error> {
    let (me, other) = endpoints(Net::WebSocket, Role::Me, Role::Other).await?;
    pattern_2(me, other).await
}

#[tokio::test]
async fn pattern_3_sequential_messages_over_websocket() -> Result<(), Error> {
    let (me, peer) = endpoints(Net::WebSocket, Role::Me, Role::Peer).await?;
    pattern_3(me, peer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_4_multi_party_over_websocket() -> Result<(), Error> {
    // A star: the coordinator listens, the buyer and the seller dial it.
    let options = TcpOptions::new();
    let listener = WebSocketListener::bind(any_port(), "Coordinator", &options).await?;
    let addr = listener.local_addr();
    let accepting = async {
        let first = listener.accept_any(&["Buyer", "Seller"]).await?;
        let second = listener.accept_any(&["Buyer", "Seller"]).await?;
        Ok::<_, Error>([first, second])
    };
    let (accepted, buyer, seller) = tokio::join!(
        accepting,
        websocket::connect(addr, "Buyer", "Coordinator", &options),
        websocket::connect(addr, "Seller", "Coordinator", &options),
    );
    let mut coordinator_ep = Endpoint::new(Role::Coordinator);
    for (name, session) in accepted? {
        let peer = if name == "Buyer" {
            Role::Buyer
        } else {
            Role::Seller
        };
        coordinator_ep.register_session(peer, session);
    }
    assert_eq!(coordinator_ep.active_channel_count(), 2);
    let mut buyer_ep = Endpoint::new(Role::Buyer);
    buyer_ep.register_session(Role::Coordinator, buyer?);
    let mut seller_ep = Endpoint::new(Role::Seller);
    seller_ep.register_session(Role::Coordinator, seller?);
    pattern_4(buyer_ep, coordinator_ep, seller_ep).await
}

#[tokio::test]
async fn pattern_5_timeout_over_websocket() -> Result<(), Error> {
    let (me, peer) = endpoints(Net::WebSocket, Role::Me, Role::Peer).await?;
    pattern_5(me, peer).await
}

#[tokio::test]
async fn closing_is_seen_over_websocket() -> Result<(), Error> {
    let (me, peer) = endpoints(Net::WebSocket, Role::Me, Role::Peer).await?;
    close_is_seen(me, Role::Peer, peer, Role::Me).await
}
