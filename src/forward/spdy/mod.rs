//! The SPDY/3.1 transport (`portforward.k8s.io`), as kubectl speaks it: the
//! API server upgrades the request and relays the connection to the kubelet
//! unchanged. One session per pod (`session`) carries every local
//! connection to it, each as a pair of streams: an error stream the kubelet
//! reports failures on, and a data stream carrying the bytes, with a real
//! half-close.

mod frame;
mod session;

use std::future::Future;
use std::sync::atomic::Ordering;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::client::Body;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use frame::{FLAG_FIN, Frame, HEADER_LEN};
pub(crate) use session::Session;
use session::{Guard, Incoming};

use super::stream::{
    End, FrameError, OpenError, PumpError, Traffic, Upgrade, finish, read_at_most,
};

const UPGRADE_PROTOCOL: &str = "SPDY/3.1";
const STREAM_PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
const STREAM_PROTOCOL: &str = "portforward.k8s.io";
/// The most read from the local socket into one data frame. The kubelet
/// reads each frame whole into a fresh buffer, so frames stay small: 64 KiB
/// uploaded as fast as 256 KiB or 1 MiB frames on the test bed, and faster
/// than 32 KiB ones.
const FRAME: usize = 64 * 1024;

/// An accepted stream pair: the data stream is open.
pub(crate) struct Stream {
    error_stream: u32,
    data_stream: u32,
    incoming: mpsc::Receiver<Incoming>,
    outgoing: mpsc::Sender<Bytes>,
    guard: Guard,
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

impl Session {
    /// Opens both streams to `port` as kubectl does and waits for the
    /// kubelet to accept the data stream.
    pub(crate) async fn open(&self, port: u16) -> Result<Stream, OpenError> {
        let session::Pair {
            error_stream,
            data_stream,
            mut incoming,
            outgoing,
            guard,
        } = self.pair(port).await?;
        let mut error = Vec::new();
        loop {
            let reason = match incoming.recv().await {
                Some(Ok(Frame::SynReply { stream, .. })) if stream == data_stream => {
                    return Ok(Stream {
                        error_stream,
                        data_stream,
                        incoming,
                        outgoing,
                        guard,
                        error,
                    });
                }
                Some(Ok(Frame::Data {
                    stream, payload, ..
                })) if stream == error_stream => {
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
/// but does not wait. A stream left open either way is reset as it is
/// dropped; the session carries on.
pub(crate) async fn pump(
    local: TcpStream,
    stream: Stream,
    closed: impl Future<Output = End>,
    traffic: &Traffic,
) -> Result<End, PumpError> {
    let (local_read, local_write) = local.into_split();
    let Stream {
        error_stream,
        data_stream,
        incoming,
        outgoing,
        guard,
        error,
    } = stream;
    let to_pod = Upstream {
        local: local_read,
        outgoing,
        data_stream,
        guard: &guard,
        traffic,
    };
    let from_pod = Downstream {
        incoming,
        local: local_write,
        error_stream,
        data_stream,
        error,
        guard: &guard,
        traffic,
    };
    finish(to_pod.run(closed), from_pod.run()).await
}

/// Local bytes to the data stream.
struct Upstream<'a> {
    local: OwnedReadHalf,
    outgoing: mpsc::Sender<Bytes>,
    data_stream: u32,
    guard: &'a Guard,
    traffic: &'a Traffic,
}

impl Upstream<'_> {
    async fn run(mut self, closed: impl Future<Output = End>) -> Result<End, PumpError> {
        let mut closed = std::pin::pin!(closed);
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
                        frame::put_data_header(&mut buffer[..HEADER_LEN], self.data_stream, 0, read);
                        self.send(buffer.split().freeze()).await?;
                    }
                    Err(err) => return Err(PumpError::Local(err)),
                },
                end = &mut closed => break end,
            }
        };
        // A pod that is gone is told nothing more.
        if end != End::PodGone {
            let fin = frame::data(self.data_stream, FLAG_FIN);
            self.send(Bytes::copy_from_slice(&fin)).await?;
            self.guard.fin_sent.store(true, Ordering::Relaxed);
        }
        Ok(end)
    }

    async fn send(&self, frame: Bytes) -> Result<(), PumpError> {
        self.outgoing.send(frame).await.map_err(|_| {
            let ended = std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the SPDY session to the pod has ended",
            );
            PumpError::Spdy(FrameError::Io(ended))
        })
    }
}

/// The data stream to the local socket, and what the kubelet reports on the
/// error stream.
struct Downstream<'a> {
    incoming: mpsc::Receiver<Incoming>,
    local: OwnedWriteHalf,
    error_stream: u32,
    data_stream: u32,
    error: Vec<u8>,
    guard: &'a Guard,
    traffic: &'a Traffic,
}

impl Downstream<'_> {
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
        while let Some(frame) = self.incoming.recv().await {
            match frame.map_err(PumpError::Spdy)? {
                Frame::Data {
                    stream,
                    fin,
                    payload,
                } if stream == self.data_stream => {
                    self.local
                        .write_all(&payload)
                        .await
                        .map_err(PumpError::Local)?;
                    self.traffic
                        .from_pod
                        .fetch_add(payload.len() as u64, Ordering::Relaxed);
                    if fin {
                        data_open = false;
                        self.guard.data_closed.store(true, Ordering::Relaxed);
                        let _ = self.local.shutdown().await;
                    }
                }
                Frame::Data {
                    stream,
                    fin,
                    payload,
                } if stream == self.error_stream => {
                    self.error.extend_from_slice(&payload);
                    if fin {
                        self.guard.error_closed.store(true, Ordering::Relaxed);
                        if !data_open {
                            return Ok(());
                        }
                    }
                }
                Frame::Data { stream, .. } => {
                    return Err(PumpError::Protocol(format!("data on stream {stream}")));
                }
                Frame::Reset { stream, .. } if stream == self.error_stream && !data_open => {
                    self.guard.error_closed.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                Frame::Reset { stream, status } => {
                    return Err(PumpError::Protocol(format!(
                        "the kubelet reset stream {stream} (status {status})"
                    )));
                }
                Frame::GoAway { .. } => return Ok(()),
                Frame::Ping { .. } | Frame::SynReply { .. } | Frame::Ignored { .. } => {}
            }
        }
        Ok(())
    }
}

/// What the kubelet wrote on the error stream, if anything.
fn reported(error: &[u8]) -> Option<String> {
    let message = String::from_utf8_lossy(error).trim().to_owned();
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame::server::{self, ClientDecoder, ClientFrame};
    use frame::{FrameDecoder, HeaderCompressor};
    use futures::StreamExt;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, DuplexStream, ReadHalf, WriteHalf};
    use tokio::net::TcpListener;
    use tokio_util::codec::FramedRead;

    /// The first pair of a session.
    const ERROR_STREAM: u32 = 1;
    const DATA_STREAM: u32 = 3;

    /// A session on `io`, its task spawned; it never learns of a pod gone.
    fn session(io: DuplexStream, keepalive: Duration) -> Session {
        let (session, task) = Session::start(io, keepalive, std::future::pending());
        tokio::spawn(task);
        session
    }

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
        let session = session(ours, Duration::from_secs(3600));
        let stream = session.open(6379).await.unwrap();
        let (mut client, local) = local_pair().await;
        let traffic = Traffic::default();
        let outcome = pump(local, stream, std::future::pending(), &traffic);
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
        let session = session(ours, Duration::from_secs(3600));
        let stream = session.open(6379).await.unwrap();
        let (mut client, local) = local_pair().await;
        let traffic = Traffic::default();
        let stopped = async { End::Stopped };
        let pumping = pump(local, stream, stopped, &traffic);
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
        let session = session(ours, Duration::from_secs(3600));
        let err = session.open(6379).await.err().expect("a refused stream");
        assert_eq!(err.to_string(), "pod not found");
        server.abort();
    }

    /// An idle session pings the kubelet: any frame it reads resets its
    /// streaming idle timeout. Answered pings keep the session open.
    #[tokio::test]
    async fn an_idle_session_pings_the_kubelet() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (report, pings) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (reader, mut writer) = tokio::io::split(theirs);
            let mut frames = FramedRead::new(reader, FrameDecoder);
            let mut seen = Vec::new();
            for _ in 0..3 {
                let ping = frames.next().await.unwrap().unwrap();
                let Frame::Ping { id } = ping else {
                    panic!("expected a ping, got {ping:?}")
                };
                writer.write_all(&frame::ping(id)).await.unwrap();
                seen.push(ping);
            }
            let _ = report.send(seen);
            std::future::pending::<()>().await;
        });
        let session = session(ours, Duration::from_millis(50));
        let pings = tokio::time::timeout(Duration::from_secs(10), pings)
            .await
            .expect("three pings within 10 s")
            .unwrap();
        assert_eq!(
            pings,
            [
                Frame::Ping { id: 1 },
                Frame::Ping { id: 3 },
                Frame::Ping { id: 5 }
            ]
        );
        assert!(session.is_open(), "answered pings keep the session open");
        server.abort();
    }

    /// A kubelet that stops answering pings gets no new streams: the next
    /// connection opens a session of its own.
    #[tokio::test]
    async fn an_unanswered_ping_retires_the_session() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let session = session(ours, Duration::from_millis(50));
        let retired = async {
            while session.is_open() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), retired)
            .await
            .expect("retired within 10 s");
        let err = session.open(6379).await.err().expect("no new streams");
        assert_eq!(err.to_string(), "the SPDY session to the pod has ended");
        drop(theirs);
    }

    /// What the fake kubelet of the multiplexing tests saw.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Opened(u32, Vec<(String, String)>),
        Reset(u32),
    }

    /// A kubelet that accepts every stream and echoes each data stream's
    /// bytes prefixed with its id, to the same stream. Our FIN on a data
    /// stream is answered by its FIN and the error stream's. Port 7 is a pod
    /// that closes at once. Frames of a stream nobody opened are sent too:
    /// they must disturb nothing.
    fn echoing_kubelet(io: DuplexStream) -> tokio::sync::mpsc::UnboundedReceiver<Seen> {
        let (seen, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (reader, mut writer) = tokio::io::split(io);
            let mut frames = FramedRead::new(reader, ClientDecoder::default());
            while let Some(Ok(frame)) = frames.next().await {
                let mut out = server::data(99, 0, b"nobody's");
                match frame {
                    ClientFrame::Syn { stream, headers } => {
                        out.extend(server::syn_reply(stream));
                        let data = headers.contains(&("streamtype".into(), "data".into()));
                        if data && headers.contains(&("port".into(), "7".into())) {
                            out.extend(server::data(stream, FLAG_FIN, b""));
                            out.extend(server::data(stream - 2, FLAG_FIN, b""));
                        }
                        let _ = seen.send(Seen::Opened(stream, headers));
                    }
                    ClientFrame::Data {
                        stream,
                        fin,
                        payload,
                    } if stream % 4 == 3 => {
                        if !payload.is_empty() {
                            let mut echo = format!("{stream}:").into_bytes();
                            echo.extend(payload);
                            out.extend(server::data(stream, 0, &echo));
                        }
                        if fin {
                            out.extend(server::data(stream, FLAG_FIN, b""));
                            out.extend(server::data(stream - 2, FLAG_FIN, b""));
                        }
                    }
                    ClientFrame::Reset { stream, .. } => {
                        let _ = seen.send(Seen::Reset(stream));
                    }
                    _ => {}
                }
                writer.write_all(&out).await.unwrap();
            }
        });
        events
    }

    async fn exchange(client: &mut TcpStream, send: &[u8], expect: &[u8]) {
        client.write_all(send).await.unwrap();
        let mut reply = vec![0; expect.len()];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, expect);
    }

    fn headers(kind: &str, port: &str, request: &str) -> Vec<(String, String)> {
        [("streamtype", kind), ("port", port), ("requestid", request)]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .to_vec()
    }

    /// Two connections on one session: each pair has the next odd ids and a
    /// request id of its own, their frames reach only their own stream, and
    /// one closing leaves the other open. A pair closed cleanly both ways is
    /// not reset; one the pod closed while the local side was open is.
    #[tokio::test]
    async fn stream_pairs_share_a_session_and_each_gets_only_its_frames() {
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let mut seen = echoing_kubelet(theirs);
        let session = session(ours, Duration::from_secs(3600));
        let first = session.open(6379).await.unwrap();
        let second = session.open(6380).await.unwrap();
        let (mut a, local_a) = local_pair().await;
        let (mut b, local_b) = local_pair().await;
        let (traffic_a, traffic_b) = (Traffic::default(), Traffic::default());
        let pump_a =
            tokio::spawn(
                async move { pump(local_a, first, std::future::pending(), &traffic_a).await },
            );
        let pump_b =
            tokio::spawn(
                async move { pump(local_b, second, std::future::pending(), &traffic_b).await },
            );
        let talk = async {
            exchange(&mut a, b"hello", b"3:hello").await;
            exchange(&mut b, b"world", b"7:world").await;
            exchange(&mut a, b"again", b"3:again").await;
            a.shutdown().await.unwrap();
            let mut rest = Vec::new();
            a.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            assert_eq!(pump_a.await.unwrap().unwrap(), End::LocalClosed);
            exchange(&mut b, b"still", b"7:still").await;
            b.shutdown().await.unwrap();
            assert_eq!(pump_b.await.unwrap().unwrap(), End::LocalClosed);

            // The pod closes this one at once; our side was still open.
            let third = session.open(7).await.unwrap();
            let (mut c, local_c) = local_pair().await;
            let traffic = Traffic::default();
            let outcome = pump(local_c, third, std::future::pending(), &traffic);
            assert_eq!(outcome.await.unwrap(), End::PodClosed);
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        };
        tokio::time::timeout(Duration::from_secs(10), talk)
            .await
            .expect("within 10 s");
        let mut events = Vec::new();
        while events.len() < 8 {
            let event = tokio::time::timeout(Duration::from_secs(10), seen.recv());
            events.push(event.await.expect("the kubelet's events").unwrap());
        }
        assert_eq!(
            events,
            [
                Seen::Opened(1, headers("error", "6379", "0")),
                Seen::Opened(3, headers("data", "6379", "0")),
                Seen::Opened(5, headers("error", "6380", "1")),
                Seen::Opened(7, headers("data", "6380", "1")),
                Seen::Opened(9, headers("error", "7", "2")),
                Seen::Opened(11, headers("data", "7", "2")),
                Seen::Reset(9),
                Seen::Reset(11),
            ]
        );
        assert!(session.is_open());
    }

    /// The connection ending ends the streams on it, and the session takes
    /// no new ones.
    #[tokio::test]
    async fn streams_end_with_the_session() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (frames, writer) = kubelet(theirs).await;
            drop((frames, writer));
        });
        let session = session(ours, Duration::from_secs(3600));
        let stream = session.open(6379).await.unwrap();
        server.await.unwrap();
        let (mut client, local) = local_pair().await;
        let traffic = Traffic::default();
        let outcome = pump(local, stream, std::future::pending(), &traffic);
        let outcome = tokio::time::timeout(Duration::from_secs(10), outcome)
            .await
            .expect("the pump ends with the session");
        assert_eq!(outcome.unwrap(), End::PodClosed);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(!session.is_open());
        let err = session.open(6379).await.err().expect("no new streams");
        assert_eq!(err.to_string(), "the SPDY session to the pod has ended");
    }

    /// A pod that is gone closes its session: streams open on it are ended
    /// by their own pumps, then the session ends; no stream opens meanwhile.
    #[tokio::test]
    async fn a_pod_gone_retires_its_session() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let _seen = echoing_kubelet(theirs);
        let (gone, pod_gone) = tokio::sync::oneshot::channel::<()>();
        let closed = async move {
            let _ = pod_gone.await;
            End::PodGone
        };
        let (session, task) = Session::start(ours, Duration::from_secs(3600), closed);
        let task = tokio::spawn(task);
        let stream = session.open(6379).await.unwrap();
        gone.send(()).unwrap();
        let retired = async {
            while session.is_open() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), retired)
            .await
            .expect("retired");
        assert!(session.open(6379).await.is_err());
        assert!(!task.is_finished(), "the open stream keeps the session");
        drop(stream);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the session ends with its last stream")
            .unwrap();
    }

    /// The SYN_STREAMs of a session are one zlib stream, in the order they
    /// went out, however many pairs it opened.
    #[test]
    fn header_compressor_is_shared_per_session() {
        let mut compressor = HeaderCompressor::default();
        let mut decoder = ClientDecoder::default();
        let mut wire = BytesMut::new();
        for stream in [1, 3, 5, 7] {
            wire.put(frame::syn_stream(
                stream,
                &[("requestid", &stream.to_string())],
                &mut compressor,
            ));
        }
        for stream in [1u32, 3, 5, 7] {
            let decoded = tokio_util::codec::Decoder::decode(&mut decoder, &mut wire);
            assert_eq!(
                decoded.unwrap().unwrap(),
                ClientFrame::Syn {
                    stream,
                    headers: vec![("requestid".to_owned(), stream.to_string())],
                }
            );
        }
    }
}
