//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::time::Duration;

use rumpsteak_aura_transport::{TransportError, TransportErrorKind};

/// Fails the test if `f` takes longer than `secs` seconds, rather than
/// hanging the run.
pub(crate) async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("step did not finish in time")
}

/// The kind of an I/O error; fails the test on any other error.
pub(crate) fn io_error_kind(err: &TransportError) -> io::ErrorKind {
    let TransportErrorKind::Io(e) = err.kind() else {
        panic!("expected an i/o error, got {err}");
    };
    e.kind()
}

/// A frame one byte over `limit` is refused before anything is sent.
pub(crate) async fn assert_send_over_limit_refused(
    session: &mut rumpsteak_aura_transport::RumpsteakSession,
    limit: usize,
) {
    let err = session.send_frame(vec![0; limit + 1]).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            TransportErrorKind::FrameTooLarge { size, limit: l } if *size == limit + 1 && *l == limit
        ),
        "{err}"
    );
}

/// The reason of a handshake error; fails the test on any other error.
pub(crate) fn reason(err: &TransportError) -> &str {
    match err.kind() {
        TransportErrorKind::Handshake(r) => r,
        _ => panic!("expected a handshake error, got {err}"),
    }
}
