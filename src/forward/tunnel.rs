//! One local connection carried to one pod port through the API server, over
//! SPDY/3.1 (the default) or the `v4.channel.k8s.io` WebSocket. Each local
//! connection gets its own upgraded connection, so it reaches whichever pod
//! is Ready when it arrives and ends on its own.
//!
//! SPDY is the default because the API server relays it to the kubelet byte
//! for byte, and the kubelet reads its frames in bulk; a WebSocket upload is
//! unmasked by the kubelet one byte at a time, which made uploads 30-40 %
//! slower on the test bed. WebSocket remains for proxies that refuse SPDY
//! upgrades (`--protocol websocket`).

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

use super::{spdy, websocket};
use crate::cluster::root_cause;

/// The connection to the API server once it has switched protocols.
pub type Upgrade = TokioIo<Upgraded>;

/// How port-forward streams reach the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// SPDY/3.1 (`portforward.k8s.io`), relayed to the kubelet unchanged
    Spdy,
    /// WebSocket (`v4.channel.k8s.io`), for proxies that only pass WebSockets
    Websocket,
}

/// After the local side closes, how long the pod side may still deliver.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// An open port-forward stream to one pod port.
pub enum Tunnel {
    Spdy(spdy::Session<Upgrade>),
    Websocket(Box<WebSocketStream<Upgrade>>),
}

/// Why a stream could not be opened, in the API server's words when it gave
/// some.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

impl From<kube::Error> for OpenError {
    fn from(err: kube::Error) -> Self {
        OpenError(match err {
            kube::Error::Api(status) => status.message.clone(),
            other => root_cause(&other),
        })
    }
}

/// Opens the port-forward stream to `port` of `pod`; one per local connection.
/// A SPDY connection already upgraded for this pod (`warm`) saves the upgrade.
pub async fn open(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
    protocol: Protocol,
    warm: Option<Upgrade>,
) -> Result<Tunnel, OpenError> {
    Ok(match protocol {
        Protocol::Spdy => {
            let io = match warm {
                Some(io) => io,
                None => spdy::upgrade(client, namespace, pod).await?,
            };
            Tunnel::Spdy(spdy::Session::start(io, port).await?)
        }
        Protocol::Websocket => Tunnel::Websocket(Box::new(
            websocket::open(client, namespace, pod, port).await?,
        )),
    })
}

/// Bytes carried so far, readable while the connection is open.
#[derive(Debug, Default)]
pub struct Traffic {
    pub to_pod: AtomicU64,
    pub from_pod: AtomicU64,
}

/// Why a connection ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    LocalClosed,
    PodClosed,
    /// The pod was deleted; the connection was closed on our side.
    PodGone,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::LocalClosed => "closed by the local client",
            End::PodClosed => "closed by the pod",
            End::PodGone => "the pod is gone",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error("the pod side reported: {0}")]
    Pod(String),
    #[error("{0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Spdy(#[from] spdy::FrameError),
    #[error("local connection: {0}")]
    Local(std::io::Error),
    #[error("unexpected port-forward data: {0}")]
    Protocol(String),
}

/// Carries bytes both ways until one side ends, `gone` resolves (the pod was
/// deleted), or an error occurs. The local socket always ends with a FIN.
pub async fn pump(
    local: TcpStream,
    tunnel: Tunnel,
    port: u16,
    keepalive: Duration,
    gone: impl Future<Output = ()>,
    traffic: &Traffic,
) -> Result<End, PumpError> {
    match tunnel {
        Tunnel::Spdy(session) => spdy::pump(local, session, keepalive, gone, traffic).await,
        Tunnel::Websocket(stream) => {
            websocket::pump(local, *stream, port, keepalive, gone, traffic).await
        }
    }
}

/// Waits for the pod-to-local direction to end, or, once the local side has
/// ended, gives the pod side `CLOSE_GRACE` to deliver what is in flight.
pub async fn finish(
    upstream: impl Future<Output = Result<End, PumpError>>,
    downstream: impl Future<Output = Result<(), PumpError>>,
) -> Result<End, PumpError> {
    let mut upstream = std::pin::pin!(upstream);
    let mut downstream = std::pin::pin!(downstream);
    tokio::select! {
        result = &mut downstream => result.map(|()| End::PodClosed),
        end = &mut upstream => {
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut downstream).await;
            end
        }
    }
}

/// Reads at most `limit` bytes into `buffer`, however much room it has.
pub async fn read_at_most<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    limit: usize,
) -> std::io::Result<usize> {
    reader.read_buf(&mut buffer.limit(limit)).await
}
