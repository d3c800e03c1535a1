//! The SPDY/3.1 transport (`portforward.k8s.io`), as kubectl spoke it for
//! years: the API server upgrades the request and relays the connection to
//! the kubelet unchanged. Each local connection gets its own session with
//! one pair of streams: an error stream the kubelet reports failures on, and
//! a data stream carrying the bytes, with a real half-close.

mod frame;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::client::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use frame::{FLAG_FIN, Frame, FrameDecoder, HEADER_LEN, HeaderCompressor};

use super::stream::{End, OpenError, PumpError, Traffic, Upgrade, finish, read_at_most};

const UPGRADE_PROTOCOL: &str = "SPDY/3.1";
const STREAM_PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
const STREAM_PROTOCOL: &str = "portforward.k8s.io";
/// Client streams have odd ids; the error stream is opened first.
const ERROR_STREAM: u32 = 1;
const DATA_STREAM: u32 = 3;
/// The most read from the local socket into one data frame. The kubelet
/// reads each frame whole into a fresh buffer, so frames stay small: 64 KiB
/// uploaded as fast as 256 KiB or 1 MiB frames on the test bed, and faster
/// than 32 KiB ones.
const FRAME: usize = 64 * 1024;
/// Pairs the two streams on the kubelet; unique within the session.
const REQUEST_ID: &str = "0";

/// An accepted port-forward session: the data stream is open.
pub(crate) struct Session<S> {
    frames: FramedRead<ReadHalf<S>, FrameDecoder>,
    writer: WriteHalf<S>,
    /// What the error stream said before the data stream was accepted.
    error: Vec<u8>,
}

/// Upgrades a port-forward request for `pod` to SPDY. The connection names
/// no port yet: streams opened on it later choose one.
pub(crate) async fn upgrade(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
) -> Result<Upgrade, OpenError> {
    let url = format!("{}/{pod}/portforward", Pod::url_path(&(), Some(namespace)));
    let request = Request::post(url)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, UPGRADE_PROTOCOL)
        .header(STREAM_PROTOCOL_HEADER, STREAM_PROTOCOL)
        .body(Body::from(Vec::new()))
        .map_err(|err| OpenError(err.to_string()))?;
    let response = client.send(request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(refusal(response).await);
    }
    let agreed = response
        .headers()
        .get(STREAM_PROTOCOL_HEADER)
        .and_then(|value| value.to_str().ok());
    if agreed != Some(STREAM_PROTOCOL) {
        return Err(OpenError(format!(
            "the API server agreed to port-forward protocol {agreed:?}, expected {STREAM_PROTOCOL:?}"
        )));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|err| OpenError(format!("the SPDY upgrade failed: {err}")))?;
    Ok(TokioIo::new(upgraded))
}

/// The API server's reason for not upgrading, from its `Status` body when
/// it sent one.
async fn refusal(response: http::Response<Body>) -> OpenError {
    let code = response.status();
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) => return OpenError(format!("HTTP {code}: {err}")),
    };
    match serde_json::from_slice::<kube::core::Status>(&body) {
        Ok(status) if !status.message.is_empty() => OpenError(status.message),
        _ => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            OpenError(if text.is_empty() {
                format!("the API server refused the SPDY upgrade (HTTP {code})")
            } else {
                format!("the API server refused the SPDY upgrade (HTTP {code}): {text}")
            })
        }
    }
}

impl<S: AsyncRead + AsyncWrite> Session<S> {
    /// Opens both streams to `port` as kubectl does (the error stream is only
    /// ever read, so our half of it ends at once) and waits for the kubelet to
    /// accept the data stream.
    pub(crate) async fn start(io: S, port: u16) -> Result<Self, OpenError> {
        let (reader, mut writer) = tokio::io::split(io);
        let mut frames = FramedRead::new(reader, FrameDecoder);
        let port = port.to_string();
        let mut compressor = HeaderCompressor::default();
        let mut opening = BytesMut::new();
        for (stream, kind) in [(ERROR_STREAM, "error"), (DATA_STREAM, "data")] {
            let headers = [
                ("streamtype", kind),
                ("port", port.as_str()),
                ("requestid", REQUEST_ID),
            ];
            opening.put(frame::syn_stream(stream, &headers, &mut compressor));
            if stream == ERROR_STREAM {
                opening.put_slice(&frame::data(ERROR_STREAM, FLAG_FIN));
            }
        }
        let sent = async {
            writer.write_all(&opening).await?;
            writer.flush().await
        };
        sent.await
            .map_err(|err| OpenError(format!("cannot open the SPDY streams: {err}")))?;
        let mut error = Vec::new();
        loop {
            let reason = match frames.next().await {
                Some(Ok(Frame::SynReply {
                    stream: DATA_STREAM,
                    ..
                })) => {
                    return Ok(Session {
                        frames,
                        writer,
                        error,
                    });
                }
                Some(Ok(Frame::Data {
                    stream: ERROR_STREAM,
                    payload,
                    ..
                })) => {
                    error.extend_from_slice(&payload);
                    continue;
                }
                Some(Ok(Frame::Reset { stream, status })) => {
                    format!("the kubelet reset stream {stream} (status {status})")
                }
                Some(Ok(Frame::GoAway { status })) => {
                    format!("the kubelet ended the session (status {status})")
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => err.to_string(),
                None => "the connection closed before the stream was accepted".to_owned(),
            };
            return Err(OpenError(reported(&error).unwrap_or(reason)));
        }
    }
}

/// Carries bytes both ways until one side ends, `closed` resolves (the pod
/// was deleted, or the forward is stopping), or an error occurs. When the
/// local side ends, the data stream is half-closed and the pod side may
/// still answer for `CLOSE_GRACE`; a stopping forward half-closes it too,
/// but does not wait.
pub(crate) async fn pump<S: AsyncRead + AsyncWrite>(
    local: TcpStream,
    session: Session<S>,
    keepalive: Duration,
    closed: impl Future<Output = End>,
    traffic: &Traffic,
) -> Result<End, PumpError> {
    let (local_read, local_write) = local.into_split();
    let Session {
        frames,
        writer,
        error,
    } = session;
    // The kubelet's pings are answered by the writing side.
    let (pings, ping_requests) = mpsc::unbounded_channel::<u32>();
    let to_pod = Upstream {
        local: local_read,
        writer,
        ping_requests,
        keepalive,
        traffic,
    };
    let from_pod = Downstream {
        frames,
        local: local_write,
        error,
        pings,
        traffic,
    };
    finish(to_pod.run(closed), from_pod.run()).await
}

/// Local bytes to the data stream, our keepalive pings, and the echoes of
/// the kubelet's.
struct Upstream<'a, W> {
    local: OwnedReadHalf,
    writer: W,
    ping_requests: mpsc::UnboundedReceiver<u32>,
    keepalive: Duration,
    traffic: &'a Traffic,
}

impl<W: AsyncWrite + Unpin> Upstream<'_, W> {
    async fn run(mut self, closed: impl Future<Output = End>) -> Result<End, PumpError> {
        let start = tokio::time::Instant::now() + self.keepalive;
        let mut ticks = tokio::time::interval_at(start, self.keepalive);
        let mut closed = std::pin::pin!(closed);
        let mut next_ping: u32 = 1;
        let mut buffer = BytesMut::new();
        let end = loop {
            if buffer.is_empty() {
                buffer.reserve(HEADER_LEN + FRAME);
                buffer.put_bytes(0, HEADER_LEN);
            }
            tokio::select! {
                read = read_at_most(&mut self.local, &mut buffer, FRAME) => match read {
                    Ok(0) => break End::LocalClosed,
                    Ok(read) => {
                        self.traffic.to_pod.fetch_add(read as u64, Ordering::Relaxed);
                        frame::put_data_header(&mut buffer[..HEADER_LEN], DATA_STREAM, 0, read);
                        write_frame(&mut self.writer, &buffer).await?;
                        buffer.clear();
                    }
                    Err(err) => return Err(PumpError::Local(err)),
                },
                // Any frame resets the kubelet's streaming idle timeout, and
                // proxies on the way see traffic.
                _ = ticks.tick() => {
                    let ping = frame::ping(next_ping);
                    next_ping = next_ping.wrapping_add(2);
                    write_frame(&mut self.writer, &ping).await?;
                }
                Some(id) = self.ping_requests.recv() => {
                    write_frame(&mut self.writer, &frame::ping(id)).await?;
                }
                end = &mut closed => break end,
            }
        };
        // A pod that is gone is told nothing more.
        if end != End::PodGone {
            let fin = frame::data(DATA_STREAM, FLAG_FIN);
            write_frame(&mut self.writer, &fin).await?;
        }
        Ok(end)
    }
}

/// The data stream to the local socket, and what the kubelet reports on the
/// error stream.
struct Downstream<'a, R> {
    frames: FramedRead<R, FrameDecoder>,
    local: OwnedWriteHalf,
    error: Vec<u8>,
    pings: mpsc::UnboundedSender<u32>,
    traffic: &'a Traffic,
}

impl<R: AsyncRead + Unpin> Downstream<'_, R> {
    /// The kubelet ends the data stream first and reports failures on the
    /// error stream afterwards (kwok even closes the data stream before it
    /// writes the error), so the local side gets its end of stream at once
    /// and the error stream is still read to its end, as kubectl does.
    async fn run(mut self) -> Result<(), PumpError> {
        let result = self.relay().await;
        let _ = self.local.shutdown().await;
        // What the kubelet reported explains a reset or an early end best.
        match reported(&self.error) {
            Some(message) => Err(PumpError::Pod(message)),
            None => result,
        }
    }

    async fn relay(&mut self) -> Result<(), PumpError> {
        let mut data_open = true;
        while let Some(frame) = self.frames.next().await {
            match frame? {
                Frame::Data {
                    stream: DATA_STREAM,
                    fin,
                    payload,
                } => {
                    self.local
                        .write_all(&payload)
                        .await
                        .map_err(PumpError::Local)?;
                    self.traffic
                        .from_pod
                        .fetch_add(payload.len() as u64, Ordering::Relaxed);
                    if fin {
                        data_open = false;
                        let _ = self.local.shutdown().await;
                    }
                }
                Frame::Data {
                    stream: ERROR_STREAM,
                    fin,
                    payload,
                } => {
                    self.error.extend_from_slice(&payload);
                    if fin && !data_open {
                        return Ok(());
                    }
                }
                Frame::Data { stream, .. } => {
                    return Err(PumpError::Protocol(format!("data on stream {stream}")));
                }
                Frame::Reset { stream, .. } if stream == ERROR_STREAM && !data_open => {
                    return Ok(());
                }
                Frame::Reset { stream, status } => {
                    return Err(PumpError::Protocol(format!(
                        "the kubelet reset stream {stream} (status {status})"
                    )));
                }
                // A server's pings have even ids; odd ones answer ours.
                Frame::Ping { id } if id % 2 == 0 => {
                    let _ = self.pings.send(id);
                }
                Frame::GoAway { .. } => return Ok(()),
                Frame::Ping { .. } | Frame::SynReply { .. } | Frame::Ignored { .. } => {}
            }
        }
        Ok(())
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, frame: &[u8]) -> Result<(), PumpError> {
    // TLS writers may hold bytes back until flushed.
    let written = async {
        writer.write_all(frame).await?;
        writer.flush().await
    };
    written.await.map_err(|err| PumpError::Spdy(err.into()))
}

/// What the kubelet wrote on the error stream, if anything.
fn reported(error: &[u8]) -> Option<String> {
    let message = String::from_utf8_lossy(error).trim().to_owned();
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame::server;
    use tokio::io::{AsyncReadExt, DuplexStream};
    use tokio::net::TcpListener;

    /// Plays the kubelet's side of the opening: reads both SYN_STREAMs and the
    /// error stream's FIN, accepts both streams, and hands over the rest.
    async fn kubelet(
        io: DuplexStream,
    ) -> (
        FramedRead<ReadHalf<DuplexStream>, FrameDecoder>,
        WriteHalf<DuplexStream>,
    ) {
        let (reader, mut writer) = tokio::io::split(io);
        let mut frames = FramedRead::new(reader, FrameDecoder);
        // SYN_STREAM (error), FIN on the error stream, SYN_STREAM (data).
        let opening: Vec<Frame> = (&mut frames).take(3).map(Result::unwrap).collect().await;
        assert_eq!(opening[0], Frame::Ignored { kind: 1 });
        assert!(matches!(
            opening[1],
            Frame::Data {
                stream: ERROR_STREAM,
                fin: true,
                ..
            }
        ));
        assert_eq!(opening[2], Frame::Ignored { kind: 1 });
        writer
            .write_all(&server::syn_reply(ERROR_STREAM))
            .await
            .unwrap();
        writer
            .write_all(&server::syn_reply(DATA_STREAM))
            .await
            .unwrap();
        (frames, writer)
    }

    async fn local_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (client, accepted)
    }

    /// The kubelet closes the data stream and then reports why on the error
    /// stream (kwok's order): the client gets its bytes and an end of stream,
    /// and the report is the outcome. A ping from the kubelet is echoed.
    #[tokio::test]
    async fn pings_are_echoed_and_a_late_error_report_is_the_outcome() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (mut frames, mut writer) = kubelet(theirs).await;
            writer.write_all(&frame::ping(2)).await.unwrap();
            let echo = frames.next().await.unwrap().unwrap();
            assert_eq!(
                echo,
                Frame::Ping { id: 2 },
                "the echo of the kubelet's ping"
            );
            writer
                .write_all(&server::data(DATA_STREAM, FLAG_FIN, b"partial"))
                .await
                .unwrap();
            writer
                .write_all(&server::data(
                    ERROR_STREAM,
                    0,
                    b"error forwarding port 6379",
                ))
                .await
                .unwrap();
            writer
                .write_all(&server::reset(DATA_STREAM, 5))
                .await
                .unwrap();
            writer
                .write_all(&server::data(ERROR_STREAM, FLAG_FIN, b""))
                .await
                .unwrap();
            // Keep the connection open: the outcome must not depend on its end.
            std::future::pending::<()>().await;
        });
        let session = Session::start(ours, 6379).await.unwrap();
        let (mut client, local) = local_pair().await;
        let traffic = Traffic::default();
        let outcome = pump(
            local,
            session,
            Duration::from_secs(3600),
            std::future::pending(),
            &traffic,
        );
        let both = async {
            tokio::join!(outcome, async {
                let mut received = Vec::new();
                client.read_to_end(&mut received).await.unwrap();
                received
            })
        };
        let (outcome, received) = tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .expect("the pump ends within 10 s");
        assert_eq!(received, b"partial");
        match outcome {
            Err(PumpError::Pod(message)) => assert_eq!(message, "error forwarding port 6379"),
            other => panic!("expected the kubelet's report, got {other:?}"),
        }
        server.abort();
    }

    /// A stopping forward half-closes the data stream and ends at once, with
    /// no grace for an idle pod side; the local client gets its end of stream.
    #[tokio::test]
    async fn a_stopping_forward_closes_at_once() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (report, fin) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (mut frames, _writer) = kubelet(theirs).await;
            let _ = report.send(frames.next().await.unwrap().unwrap());
            std::future::pending::<()>().await;
        });
        let session = Session::start(ours, 6379).await.unwrap();
        let (mut client, local) = local_pair().await;
        let traffic = Traffic::default();
        let stopped = async { End::Stopped };
        let keepalive = Duration::from_secs(3600);
        let pumping = pump(local, session, keepalive, stopped, &traffic);
        let outcome = tokio::time::timeout(Duration::from_millis(500), pumping)
            .await
            .expect("no grace for a stopping forward");
        assert_eq!(outcome.unwrap(), End::Stopped);
        assert!(matches!(
            fin.await.unwrap(),
            Frame::Data {
                stream: DATA_STREAM,
                fin: true,
                ..
            }
        ));
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        server.abort();
    }

    /// A stream the kubelet refuses fails the open with its words.
    #[tokio::test]
    async fn a_refused_stream_fails_the_open_with_the_report() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (reader, mut writer) = tokio::io::split(theirs);
            let mut frames = FramedRead::new(reader, FrameDecoder);
            let _opening: Vec<_> = (&mut frames).take(3).collect().await;
            writer
                .write_all(&server::syn_reply(ERROR_STREAM))
                .await
                .unwrap();
            writer
                .write_all(&server::data(ERROR_STREAM, 0, b"pod not found"))
                .await
                .unwrap();
            writer
                .write_all(&server::reset(DATA_STREAM, 3))
                .await
                .unwrap();
            std::future::pending::<()>().await;
        });
        let err = Session::start(ours, 6379)
            .await
            .err()
            .expect("a refused stream");
        assert_eq!(err.to_string(), "pod not found");
        server.abort();
    }

    /// An idle session pings the kubelet: any frame it reads resets its
    /// streaming idle timeout.
    #[tokio::test]
    async fn an_idle_session_pings_the_kubelet() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (report, pings) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (mut frames, _writer) = kubelet(theirs).await;
            let first = frames.next().await.unwrap().unwrap();
            let second = frames.next().await.unwrap().unwrap();
            let _ = report.send((first, second));
            std::future::pending::<()>().await;
        });
        let session = Session::start(ours, 6379).await.unwrap();
        let (_client, local) = local_pair().await;
        let traffic = Traffic::default();
        let keepalive = Duration::from_millis(50);
        let pumping = pump(local, session, keepalive, std::future::pending(), &traffic);
        let pings = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::select! {
                pings = pings => pings.unwrap(),
                outcome = pumping => panic!("the pump ended: {outcome:?}"),
            }
        });
        let (first, second) = pings.await.expect("two pings within 10 s");
        assert_eq!(first, Frame::Ping { id: 1 });
        assert_eq!(second, Frame::Ping { id: 3 });
        server.abort();
    }
}
