//! What both transports share: the upgraded connection, the byte counts,
//! why a stream ended or failed, and how its two directions finish. A leaf:
//! `tunnel`, `spdy` and `websocket` import it, it imports none of them.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::cluster::root_cause;

/// The connection to the API server once it has switched protocols.
pub(crate) type Upgrade = TokioIo<Upgraded>;

/// After the local side closes, how long the pod side may still deliver.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a stream could not be opened, in the API server's words when it gave
/// some.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct OpenError(pub String);

impl From<kube::Error> for OpenError {
    fn from(err: kube::Error) -> Self {
        OpenError(match err {
            kube::Error::Api(status) => status.message.clone(),
            other => root_cause(&other),
        })
    }
}

/// Bytes carried so far, readable while the connection is open.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub to_pod: AtomicU64,
    pub from_pod: AtomicU64,
}

/// Why a connection ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    LocalClosed,
    PodClosed,
    /// The pod was deleted; the connection was closed on our side.
    PodGone,
    /// The forward is stopping (Ctrl-C); the connection was closed on our side.
    Stopped,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::LocalClosed => "closed by the local client",
            End::PodClosed => "closed by the pod",
            End::PodGone => "the pod is gone",
            End::Stopped => "the forward stopped",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PumpError {
    #[error("the pod side reported: {0}")]
    Pod(String),
    #[error("{0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Spdy(#[from] FrameError),
    #[error("local connection: {0}")]
    Local(std::io::Error),
    #[error("unexpected port-forward data: {0}")]
    Protocol(String),
}

/// A SPDY frame that cannot be read, or the connection under it failing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("the server speaks SPDY version {0}, expected 3")]
    Version(u16),
    #[error("a {kind} frame of {length} bytes is malformed")]
    Malformed { kind: u16, length: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Waits for the pod-to-local direction to end, or, once the local side has
/// ended, gives the pod side `CLOSE_GRACE` to deliver what is in flight. A
/// stopping forward waits for neither: an idle connection would hold up
/// Ctrl-C for the whole grace.
pub(crate) async fn finish(
    upstream: impl Future<Output = Result<End, PumpError>>,
    downstream: impl Future<Output = Result<(), PumpError>>,
) -> Result<End, PumpError> {
    let mut upstream = std::pin::pin!(upstream);
    let mut downstream = std::pin::pin!(downstream);
    tokio::select! {
        result = &mut downstream => result.map(|()| End::PodClosed),
        end = &mut upstream => {
            if !matches!(end, Ok(End::Stopped)) {
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut downstream).await;
            }
            end
        }
    }
}

/// Reads at most `limit` bytes into `buffer`, however much room it has.
pub(crate) async fn read_at_most<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    limit: usize,
) -> std::io::Result<usize> {
    reader.read_buf(&mut buffer.limit(limit)).await
}
