//! One local connection carried to one pod port through the API server, over
//! SPDY/3.1 (the default) or the `v4.channel.k8s.io` WebSocket. Over SPDY,
//! each local connection is a stream pair on its pod's shared session
//! (`sessions`); over WebSocket, it gets an upgraded connection of its own.
//! Either way it reaches whichever pod is Ready when it arrives and ends on
//! its own.
//!
//! SPDY is the default because the API server relays it to the kubelet byte
//! for byte, and the kubelet reads its frames in bulk; a WebSocket upload is
//! unmasked by the kubelet one byte at a time, which made uploads 30-40 %
//! slower on the test bed. WebSocket remains for proxies that refuse SPDY
//! upgrades (`--protocol websocket`).

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

use super::stream::{End, OpenError, PumpError, Traffic, Upgrade};
use super::{spdy, websocket};

/// How port-forward streams reach the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SPDY/3.1 (`portforward.k8s.io`), relayed to the kubelet unchanged.
    Spdy,
    /// WebSocket (`v4.channel.k8s.io`), for proxies that only pass WebSockets.
    Websocket,
}

/// An open port-forward stream to one pod port.
pub(crate) enum Tunnel {
    Spdy(spdy::Stream),
    Websocket(Box<WebSocketStream<Upgrade>>),
}

/// Opens a stream pair to `port` on the pod's SPDY session.
pub(crate) async fn open_spdy(session: &spdy::Session, port: u16) -> Result<Tunnel, OpenError> {
    Ok(Tunnel::Spdy(session.open(port).await?))
}

/// Opens a WebSocket port-forward to `port` of `pod`; one per local
/// connection.
pub(crate) async fn open_websocket(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<Tunnel, OpenError> {
    Ok(Tunnel::Websocket(Box::new(
        websocket::open(client, namespace, pod, port).await?,
    )))
}

/// Carries bytes both ways until one side ends, `closed` resolves (the pod
/// was deleted, or the forward is stopping: it says which), or an error
/// occurs. The local socket always ends with a FIN. SPDY sessions send their
/// own keepalives; `keepalive` is for a WebSocket.
pub(crate) async fn pump(
    local: TcpStream,
    tunnel: Tunnel,
    port: u16,
    keepalive: Duration,
    closed: impl Future<Output = End>,
    traffic: &Traffic,
) -> Result<End, PumpError> {
    match tunnel {
        Tunnel::Spdy(stream) => spdy::pump(local, stream, closed, traffic).await,
        Tunnel::Websocket(stream) => {
            websocket::pump(local, *stream, port, keepalive, closed, traffic).await
        }
    }
}
