//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

// Each test file uses its own subset of the helpers.
#[cfg(feature = "tcp")]
#[allow(unused_imports)]
pub(crate) use net::{
    ACCEPT, HELLO, REJECT, any_port, greeting, raw_dial, read_frame, tcp_pair, write_frame,
};

/// Fails the test if `f` takes longer than `secs` seconds, rather than
/// hanging the run.
pub(crate) async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("step did not finish in time")
}

/// Real sockets on loopback, and the handshake done by hand.
#[cfg(feature = "tcp")]
mod net {
    use std::net::SocketAddr;

    use rumpsteak_aura_transport::RumpsteakSession;
    use rumpsteak_aura_transport::tcp::{self, SessionListener, TcpOptions};
    use rumpsteak_aura_transport::wire::WIRE_VERSION;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Port 0 on loopback: the kernel picks a free port.
    pub(crate) fn any_port() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// A connected TCP session pair: the dialer plays `Client`, the acceptor
    /// `Server`.
    pub(crate) async fn tcp_pair(
        client: &TcpOptions,
        server: &TcpOptions,
    ) -> (RumpsteakSession, RumpsteakSession) {
        let listener = SessionListener::bind(any_port(), "Server", server)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let (c, s) = tokio::join!(
            tcp::connect(addr, "Client", "Server", client),
            listener.accept("Client")
        );
        (c.unwrap(), s.unwrap())
    }

    /// A handshake frame payload as documented in the `tcp` module: magic,
    /// version, kind, then length-prefixed strings.
    pub(crate) fn greeting(version: u8, kind: u8, strings: &[&str]) -> Vec<u8> {
        let mut out = b"RSKA".to_vec();
        out.push(version);
        out.push(kind);
        for s in strings {
            out.push(s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    pub(crate) const HELLO: u8 = 1;
    pub(crate) const ACCEPT: u8 = 2;
    pub(crate) const REJECT: u8 = 3;

    /// Writes one length-delimited frame on a raw socket.
    pub(crate) async fn write_frame(s: &mut TcpStream, payload: &[u8]) {
        s.write_all(&(payload.len() as u32).to_be_bytes())
            .await
            .unwrap();
        s.write_all(payload).await.unwrap();
    }

    /// Reads one length-delimited frame from a raw socket; `None` at a clean
    /// end of stream.
    pub(crate) async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut head = [0u8; 4];
        match s.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("raw read failed: {e}"),
        }
        let mut frame = vec![0u8; u32::from_be_bytes(head) as usize];
        s.read_exact(&mut frame).await.unwrap();
        Some(frame)
    }

    /// Plays the dialing side of the handshake by hand on a raw socket, so that
    /// a test can then misbehave at the byte level.
    pub(crate) async fn raw_dial(addr: SocketAddr, me: &str, peer: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.unwrap();
        write_frame(&mut s, &greeting(WIRE_VERSION, HELLO, &[me, peer])).await;
        let reply = read_frame(&mut s).await.expect("a handshake reply");
        assert_eq!(reply[5], ACCEPT, "the acceptor refused: {reply:?}");
        write_frame(&mut s, &greeting(WIRE_VERSION, ACCEPT, &[me])).await;
        s
    }
}
