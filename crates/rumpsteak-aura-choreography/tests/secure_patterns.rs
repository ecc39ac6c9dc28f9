//! The guide's patterns through the real handler over authenticated,
//! encrypted sessions: TLS over TCP and WebSocket, and QUIC, each role with
//! its own certificate. The protocol code is the same as in memory.
#![cfg(all(feature = "tls", feature = "dev-certs"))]

mod network;

use network::{Endpoint, Error, Role, any_port, pattern_1, pattern_2, pattern_4};
use rumpsteak_aura_choreography::transport::RumpsteakSession;
use rumpsteak_aura_choreography::transport::tcp::{
    self, Mesh, MeshTransport, SessionListener, TcpOptions,
};
use rumpsteak_aura_choreography::transport::tls::dev::DevCa;

fn options(ca: &DevCa, role: Role) -> Result<TcpOptions, Error> {
    Ok(TcpOptions::new()
        .with_tls(ca.identity(&format!("{role:?}"))?)
        .with_session_id("secure-patterns"))
}

/// Two endpoints over one TLS session.
async fn tls_pair(ca: &DevCa, a: Role, b: Role) -> Result<(Endpoint, Endpoint), Error> {
    let (a_name, b_name) = (format!("{a:?}"), format!("{b:?}"));
    let listener = SessionListener::bind(any_port(), &b_name, &options(ca, b)?).await?;
    let dialing = options(ca, a)?;
    let (dialed, accepted) = tokio::join!(
        tcp::connect(listener.local_addr(), &a_name, &b_name, &dialing),
        listener.accept(&a_name),
    );
    let (mut ea, mut eb) = (Endpoint::new(a), Endpoint::new(b));
    ea.register_session(b, dialed?);
    eb.register_session(a, accepted?);
    Ok((ea, eb))
}

#[tokio::test]
async fn request_response_over_tls() -> Result<(), Error> {
    let ca = DevCa::new("test CA")?;
    let (client, server) = tls_pair(&ca, Role::Client, Role::Server).await?;
    pattern_1(client, server).await
}

#[tokio::test]
async fn choice_over_tls() -> Result<(), Error> {
    let ca = DevCa::new("test CA")?;
    let (me, other) = tls_pair(&ca, Role::Me, Role::Other).await?;
    pattern_2(me, other).await
}

/// The three-party purchase over a mesh of the given transport, each role
/// wiring itself as its own process would.
async fn multi_party_over(transport: MeshTransport) -> Result<(), Error> {
    let ca = DevCa::new("test CA")?;
    let roles = [Role::Buyer, Role::Coordinator, Role::Seller];
    let wired = match transport {
        #[cfg(feature = "quic")]
        MeshTransport::Quic => {
            let mut sockets = Vec::new();
            for _ in roles {
                sockets.push(std::net::UdpSocket::bind(any_port())?);
            }
            let table: Vec<_> = roles
                .iter()
                .zip(&sockets)
                .map(|(r, s)| Ok((*r, s.local_addr()?)))
                .collect::<Result<_, std::io::Error>>()?;
            let runs = roles.into_iter().zip(sockets).map(|(role, socket)| {
                let table = table.clone();
                let ca = &ca;
                async move {
                    let mesh = Mesh::new(table)
                        .with_transport(transport)
                        .with_options(options(ca, role)?);
                    Ok::<_, Error>((role, mesh.connect_with_socket(&role, socket).await?))
                }
            });
            futures::future::join_all(runs).await
        }
        _ => {
            let mut listeners = Vec::new();
            for _ in roles {
                listeners.push(tokio::net::TcpListener::bind(any_port()).await?);
            }
            let table: Vec<_> = roles
                .iter()
                .zip(&listeners)
                .map(|(r, l)| Ok((*r, l.local_addr()?)))
                .collect::<Result<_, std::io::Error>>()?;
            let runs = roles.into_iter().zip(listeners).map(|(role, listener)| {
                let table = table.clone();
                let ca = &ca;
                async move {
                    let mesh = Mesh::new(table)
                        .with_transport(transport)
                        .with_options(options(ca, role)?);
                    Ok::<_, Error>((role, mesh.connect_with_listener(&role, listener).await?))
                }
            });
            futures::future::join_all(runs).await
        }
    };
    let mut endpoints = Vec::new();
    for result in wired {
        let (role, sessions): (Role, Vec<(Role, RumpsteakSession)>) = result?;
        let mut ep = Endpoint::new(role);
        for (peer, session) in sessions {
            ep.register_session(peer, session);
        }
        assert_eq!(ep.active_channel_count(), 2);
        endpoints.push(ep);
    }
    let [buyer, coordinator, seller]: [Endpoint; 3] =
        endpoints.try_into().map_err(|_| "three endpoints")?;
    pattern_4(buyer, coordinator, seller).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_party_over_a_tls_mesh() -> Result<(), Error> {
    multi_party_over(MeshTransport::Tcp).await
}

#[cfg(feature = "websocket")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_party_over_a_wss_mesh() -> Result<(), Error> {
    multi_party_over(MeshTransport::WebSocket).await
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_party_over_a_quic_mesh() -> Result<(), Error> {
    multi_party_over(MeshTransport::Quic).await
}
