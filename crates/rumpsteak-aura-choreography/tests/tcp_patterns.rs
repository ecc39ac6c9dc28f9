//! The guide's patterns over real TCP connections on loopback, through the
//! real handler: the handler code is the same as over in-memory channels,
//! only the setup differs.
#![cfg(feature = "tcp")]

mod network;

use network::{
    Endpoint, Error, Net, Role, any_port, close_is_seen, endpoints, pattern_1, pattern_2,
    pattern_3, pattern_4, pattern_5,
};
use rumpsteak_aura_choreography::transport::tcp::Mesh;

#[tokio::test]
async fn pattern_1_request_response_over_tcp() -> Result<(), Error> {
    let (client, server) = endpoints(Net::Tcp, Role::Client, Role::Server).await?;
    pattern_1(client, server).await
}

#[tokio::test]
async fn pattern_2_choice_over_tcp() -> Result<(), Error> {
    let (me, other) = endpoints(Net::Tcp, Role::Me, Role::Other).await?;
    pattern_2(me, other).await
}

#[tokio::test]
async fn pattern_3_sequential_messages_over_tcp() -> Result<(), Error> {
    let (me, peer) = endpoints(Net::Tcp, Role::Me, Role::Peer).await?;
    pattern_3(me, peer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_4_multi_party_over_a_tcp_mesh() -> Result<(), Error> {
    // Each role wires itself from the same table, as separate processes
    // would; ephemeral ports are reserved by binding the listeners first.
    let buyer = tokio::net::TcpListener::bind(any_port()).await?;
    let coordinator = tokio::net::TcpListener::bind(any_port()).await?;
    let mesh = Mesh::new([
        (Role::Buyer, buyer.local_addr()?),
        (Role::Coordinator, coordinator.local_addr()?),
        (Role::Seller, any_port()),
    ]);
    let (b, c, s) = tokio::join!(
        mesh.connect_with_listener(&Role::Buyer, buyer),
        mesh.connect_with_listener(&Role::Coordinator, coordinator),
        mesh.connect(&Role::Seller),
    );
    let mut endpoints = Vec::new();
    for (role, sessions) in [
        (Role::Buyer, b?),
        (Role::Coordinator, c?),
        (Role::Seller, s?),
    ] {
        let mut ep = Endpoint::new(role);
        for (peer, session) in sessions {
            ep.register_session(peer, session);
        }
        assert_eq!(ep.active_channel_count(), 2);
        endpoints.push(ep);
    }
    let [buyer_ep, coordinator_ep, seller_ep]: [Endpoint; 3] =
        endpoints.try_into().map_err(|_| "three endpoints")?;
    pattern_4(buyer_ep, coordinator_ep, seller_ep).await
}

#[tokio::test]
async fn pattern_5_timeout_over_tcp() -> Result<(), Error> {
    let (me, peer) = endpoints(Net::Tcp, Role::Me, Role::Peer).await?;
    pattern_5(me, peer).await
}

#[tokio::test]
async fn closing_is_seen_over_tcp() -> Result<(), Error> {
    let (me, peer) = endpoints(Net::Tcp, Role::Me, Role::Peer).await?;
    close_is_seen(me, Role::Peer, peer, Role::Me).await
}
