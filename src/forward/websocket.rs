//! The WebSocket transport (`v4.channel.k8s.io`: channel 0 data, channel 1
//! errors, each first announcing the port). Our own pump rather than kube's
//! `Portforwarder`: frames as large as the socket delivers, keepalive
//! frames, and a clean end of stream on the local side.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

use super::stream::{End, PumpError, Traffic, Upgrade, finish, read_at_most};

const DATA_CHANNEL: u8 = 0;
const ERROR_CHANNEL: u8 = 1;
/// The most read from the local socket into a connection's first frame.
const FIRST_FRAME: usize = 64 * 1024;
/// Frames double, up to this, while the local side keeps filling them: the
/// kubelet's WebSocket reader (`wsstream`) pays per message (a deadline, a
/// buffer grown by `io.ReadAll`, a pipe hand-off), so bulk
/// uploads go in fewer, larger frames (10-15 % faster than 64 KiB ones on the
/// test bed). Larger frames gained nothing measurable, while each costs the
/// kubelet about its size in transient memory. Small requests stay small: a
/// frame carries what one read found.
const LARGEST_FRAME: usize = 1024 * 1024;

/// Opens the port-forward WebSocket to `port` of `pod`.
pub(crate) async fn open(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<WebSocketStream<Upgrade>, kube::Error> {
    let request = kube::core::Request::new(Pod::url_path(&(), Some(namespace)))
        .portforward(pod, &[port])
        .map_err(kube::Error::BuildRequest)?;
    Ok(client.connect(request).await?.into_stream())
}

/// Carries bytes both ways until one side ends, `closed` resolves (the pod
/// was deleted, or the forward is stopping), or an error occurs. The local
/// socket always ends with a FIN.
pub(crate) async fn pump(
    local: TcpStream,
    pod: WebSocketStream<Upgrade>,
    port: u16,
    keepalive: Duration,
    closed: impl Future<Output = End>,
    traffic: &Traffic,
) -> Result<End, PumpError> {
    let (local_read, local_write) = local.into_split();
    let (sink, stream) = pod.split();
    finish(
        upstream(local_read, sink, keepalive, closed, traffic),
        downstream(stream, local_write, port, traffic),
    )
    .await
}

/// Local bytes to the data channel in growing frames, and keepalives.
async fn upstream(
    mut local: OwnedReadHalf,
    mut sink: SplitSink<WebSocketStream<Upgrade>, Message>,
    keepalive: Duration,
    closed: impl Future<Output = End>,
    traffic: &Traffic,
) -> Result<End, PumpError> {
    let start = tokio::time::Instant::now() + keepalive;
    let mut ticks = tokio::time::interval_at(start, keepalive);
    let mut closed = std::pin::pin!(closed);
    let mut buffer = BytesMut::new();
    let mut frame_limit = FIRST_FRAME;
    let end = loop {
        if buffer.is_empty() {
            buffer.reserve(frame_limit + 1);
            buffer.put_u8(DATA_CHANNEL);
        }
        tokio::select! {
            read = read_at_most(&mut local, &mut buffer, frame_limit) => match read {
                Ok(0) => break Ok(End::LocalClosed),
                Ok(read) => {
                    traffic.to_pod.fetch_add(read as u64, Ordering::Relaxed);
                    frame_limit = next_frame_limit(frame_limit, read);
                    let frame = buffer.split().freeze();
                    if let Err(err) = sink.send(Message::Binary(frame)).await {
                        break Err(err.into());
                    }
                }
                Err(err) => break Err(PumpError::Local(err)),
            },
            _ = ticks.tick() => {
                if let Err(err) = send_keepalive(&mut sink).await {
                    break Err(err.into());
                }
            }
            end = &mut closed => break Ok(end),
        }
    };
    // v4 has no half-close: closing the WebSocket ends the pod connection.
    let _ = sink.send(Message::Close(None)).await;
    end
}

/// The data channel to the local socket; a report on the error channel ends
/// the connection with it.
async fn downstream(
    mut stream: SplitStream<WebSocketStream<Upgrade>>,
    mut local: OwnedWriteHalf,
    port: u16,
    traffic: &Traffic,
) -> Result<(), PumpError> {
    let result = relay(&mut stream, &mut local, port, traffic).await;
    let _ = local.shutdown().await;
    result
}

async fn relay(
    stream: &mut SplitStream<WebSocketStream<Upgrade>>,
    local: &mut OwnedWriteHalf,
    port: u16,
    traffic: &Traffic,
) -> Result<(), PumpError> {
    let mut data_announced = false;
    let mut error_announced = false;
    loop {
        let message = match stream.next().await {
            None
            | Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) =>
            {
                return Ok(());
            }
            Some(message) => message?,
        };
        let mut frame = match message {
            Message::Binary(frame) => frame,
            Message::Close(_) => return Ok(()),
            _ => continue,
        };
        if frame.is_empty() {
            continue;
        }
        let payload = frame.split_off(1);
        match frame[0] {
            DATA_CHANNEL if !data_announced => {
                check_announced_port(&payload, port)?;
                data_announced = true;
            }
            DATA_CHANNEL => {
                local.write_all(&payload).await.map_err(PumpError::Local)?;
                traffic
                    .from_pod
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
            ERROR_CHANNEL if !error_announced => {
                check_announced_port(&payload, port)?;
                error_announced = true;
            }
            ERROR_CHANNEL if payload.is_empty() => {}
            ERROR_CHANNEL => {
                return Err(PumpError::Pod(
                    String::from_utf8_lossy(&payload).trim().to_owned(),
                ));
            }
            other => return Err(PumpError::Protocol(format!("data on channel {other}"))),
        }
    }
}

/// A WebSocket ping for proxies and load balancers on the way, and an empty
/// data message for the kubelet, whose streaming idle timeout is reset only
/// by data messages (it skips empty ones).
async fn send_keepalive<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    sink.feed(Message::Ping(Bytes::new())).await?;
    sink.send(Message::Binary(Bytes::new())).await
}

/// A read that filled its frame means more is waiting: allow a larger one.
fn next_frame_limit(limit: usize, read: usize) -> usize {
    if read >= limit {
        (limit * 2).min(LARGEST_FRAME)
    } else {
        limit
    }
}

/// Each channel starts with the port it serves, little-endian.
fn check_announced_port(payload: &[u8], port: u16) -> Result<(), PumpError> {
    match payload {
        [low, high] if u16::from_le_bytes([*low, *high]) == port => Ok(()),
        [low, high] => Err(PumpError::Protocol(format!(
            "the stream announced port {}, expected {port}",
            u16::from_le_bytes([*low, *high])
        ))),
        _ => Err(PumpError::Protocol(format!(
            "a {}-byte port announcement, expected 2",
            payload.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_announcement_is_little_endian() {
        assert!(check_announced_port(&3306u16.to_le_bytes(), 3306).is_ok());
        let wrong = check_announced_port(&6379u16.to_le_bytes(), 3306).unwrap_err();
        assert!(wrong.to_string().contains("announced port 6379"), "{wrong}");
        assert!(check_announced_port(&[1], 3306).is_err());
    }

    #[test]
    fn frames_grow_only_while_reads_fill_them() {
        assert_eq!(next_frame_limit(FIRST_FRAME, 10), FIRST_FRAME);
        assert_eq!(next_frame_limit(FIRST_FRAME, FIRST_FRAME), 2 * FIRST_FRAME);
        let mut limit = FIRST_FRAME;
        for _ in 0..20 {
            limit = next_frame_limit(limit, limit);
        }
        assert_eq!(limit, LARGEST_FRAME);
        assert_eq!(next_frame_limit(LARGEST_FRAME, 1), LARGEST_FRAME);
    }
}
