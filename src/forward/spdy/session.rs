//! One SPDY session per pod, as kubectl keeps it: every local connection is
//! a new pair of streams (error, then data) on it, so a new connection costs
//! the kubelet's reply to two SYN_STREAMs rather than an upgrade.
//!
//! The session is one task with two halves. The writer sends every frame:
//! the opening of a pair (it owns the stream ids and the header compressor,
//! whose zlib stream must follow the frames' order on the wire), the
//! streams' data, resets of the streams that were given up, keepalive pings
//! and the echoes of the kubelet's. The reader hands each frame to its
//! stream's queue, by stream id. A stream's queue is bounded and the reader
//! waits for room, so a local client that does not read holds the kubelet
//! back as it did with a connection of its own (and, as with kubectl, the
//! other streams of the session with it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::frame::{self, CANCEL, FLAG_FIN, Frame, FrameDecoder, HeaderCompressor};
use crate::forward::stream::{CLOSE_GRACE, End, FrameError, OpenError};

/// Frames waiting for one stream's reader: enough for the kubelet's bursts.
const STREAM_QUEUE: usize = 32;
/// Data frames waiting for the writer, from all streams together.
const WRITE_QUEUE: usize = 64;
/// Frames written before a flush while more are waiting.
const WRITE_BATCH: usize = 16;
/// Client stream ids are odd, and may not pass 2^31.
const LAST_STREAM_ID: u32 = 0x7fff_ffff;

/// What a stream's queue carries: a frame of its stream, or why the session
/// ended under it.
pub(super) type Incoming = Result<Frame, FrameError>;

/// A handle on a running session; clones share it.
#[derive(Clone)]
pub(crate) struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    control: mpsc::UnboundedSender<Control>,
    data: mpsc::Sender<Bytes>,
    /// Each open stream's queue, under both of its pair's ids.
    streams: Mutex<HashMap<u32, mpsc::Sender<Incoming>>>,
    /// Cancelled once the session takes no new streams: it has ended, the
    /// pod is gone, the forward is stopping, or it stopped answering.
    retired: CancellationToken,
    /// The id of the last ping of ours the kubelet echoed.
    echoed: AtomicU32,
}

enum Control {
    Open {
        port: u16,
        reply: oneshot::Sender<Result<Pair, OpenError>>,
    },
    /// Echo the kubelet's ping.
    Pong(u32),
    /// A stream was dropped; its ids to reset, unless it ended cleanly.
    Forgotten(Option<[u32; 2]>),
}

/// A stream pair the writer has opened.
pub(crate) struct Pair {
    pub(super) error_stream: u32,
    pub(super) data_stream: u32,
    pub(super) incoming: mpsc::Receiver<Incoming>,
    pub(super) outgoing: mpsc::Sender<Bytes>,
    pub(super) guard: Guard,
}

/// Takes the pair off the session when dropped, and resets it on the
/// kubelet unless both sides of both streams have ended: a stream that is
/// given up must not hold the pod's connection open on the kubelet.
pub(crate) struct Guard {
    session: Arc<Inner>,
    ids: [u32; 2],
    pub fin_sent: AtomicBool,
    pub data_closed: AtomicBool,
    pub error_closed: AtomicBool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        {
            let mut streams = self.session.streams.lock().expect("stream map lock");
            for id in self.ids {
                streams.remove(&id);
            }
        }
        let clean = self.fin_sent.load(Ordering::Relaxed)
            && self.data_closed.load(Ordering::Relaxed)
            && self.error_closed.load(Ordering::Relaxed);
        let reset = (!clean).then_some(self.ids);
        let _ = self.session.control.send(Control::Forgotten(reset));
    }
}

impl Session {
    /// A session on the upgraded connection `io`, and the task that runs it
    /// (the caller spawns it). It pings the kubelet every `keepalive`. Once
    /// `closed` resolves it takes no new streams, gives the open ones a
    /// grace (none for a stopping forward beyond their FINs), and ends; it
    /// also ends with the connection.
    pub(crate) fn start<S>(
        io: S,
        keepalive: Duration,
        closed: impl Future<Output = End> + Send + 'static,
    ) -> (Session, impl Future<Output = ()> + Send + 'static)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (control, control_rx) = mpsc::unbounded_channel();
        let (data, data_rx) = mpsc::channel(WRITE_QUEUE);
        let inner = Arc::new(Inner {
            control,
            data,
            streams: Mutex::default(),
            retired: CancellationToken::new(),
            echoed: AtomicU32::new(0),
        });
        let session = Session {
            inner: inner.clone(),
        };
        let task = run(io, inner, control_rx, data_rx, keepalive, closed);
        (session, task)
    }

    /// Whether new streams may be opened on it.
    pub(crate) fn is_open(&self) -> bool {
        !self.inner.retired.is_cancelled()
    }

    /// Takes no new streams; the session ends once its open ones have.
    pub(crate) fn retire(&self) {
        self.inner.retired.cancel();
    }

    #[cfg(test)]
    pub(crate) fn same(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Opens an error and a data stream to `port` (not yet accepted).
    pub(crate) async fn pair(&self, port: u16) -> Result<Pair, OpenError> {
        let ended = || OpenError("the SPDY session to the pod has ended".to_owned());
        if !self.is_open() {
            return Err(ended());
        }
        let (reply, replied) = oneshot::channel();
        self.inner
            .control
            .send(Control::Open { port, reply })
            .map_err(|_| ended())?;
        replied.await.map_err(|_| ended())?
    }
}

async fn run<S: AsyncRead + AsyncWrite>(
    io: S,
    inner: Arc<Inner>,
    control: mpsc::UnboundedReceiver<Control>,
    data: mpsc::Receiver<Bytes>,
    keepalive: Duration,
    closed: impl Future<Output = End>,
) {
    let (reader, writer) = tokio::io::split(io);
    let writer = Writer {
        io: writer,
        inner: &inner,
        compressor: HeaderCompressor::default(),
        next_stream: 1,
        next_request: 0,
    };
    let end = tokio::select! {
        end = read(FramedRead::new(reader, FrameDecoder), &inner) => end,
        end = writer.run(control, data, keepalive, closed) => end,
    };
    inner.retired.cancel();
    // Every stream still open learns why; the queues then close.
    let streams: Vec<_> = {
        let mut streams = inner.streams.lock().expect("stream map lock");
        streams.drain().map(|(_, queue)| queue).collect()
    };
    for queue in streams {
        let item = match &end {
            Ok(Some(frame)) => Ok(frame.clone()),
            Ok(None) => continue,
            Err(err) => Err(copy(err)),
        };
        let _ = queue.try_send(item);
    }
}

/// The kubelet's frames, each to its stream's queue. Ends with the
/// connection (`None`), a GOAWAY (which every stream is told), or an error.
async fn read<R: AsyncRead + Unpin>(
    mut frames: FramedRead<R, FrameDecoder>,
    inner: &Inner,
) -> Result<Option<Frame>, FrameError> {
    while let Some(frame) = frames.next().await {
        let frame = frame?;
        let stream = match frame {
            Frame::Data { stream, .. }
            | Frame::SynReply { stream, .. }
            | Frame::Reset { stream, .. } => stream,
            // A server's pings have even ids; odd ones answer ours.
            Frame::Ping { id } if id % 2 == 0 => {
                let _ = inner.control.send(Control::Pong(id));
                continue;
            }
            Frame::Ping { id } => {
                inner.echoed.store(id, Ordering::Relaxed);
                continue;
            }
            Frame::GoAway { .. } => return Ok(Some(frame)),
            Frame::Ignored { .. } => continue,
        };
        let queue = inner
            .streams
            .lock()
            .expect("stream map lock")
            .get(&stream)
            .cloned();
        // Frames of a stream given up are dropped.
        if let Some(queue) = queue {
            let _ = queue.send(Ok(frame)).await;
        }
    }
    Ok(None)
}

struct Writer<'a, W> {
    io: W,
    inner: &'a Arc<Inner>,
    compressor: HeaderCompressor,
    next_stream: u32,
    next_request: u64,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut data: mpsc::Receiver<Bytes>,
        keepalive: Duration,
        closed: impl Future<Output = End>,
    ) -> Result<Option<Frame>, FrameError> {
        let start = tokio::time::Instant::now() + keepalive;
        let mut ticks = tokio::time::interval_at(start, keepalive);
        let mut next_ping: u32 = 1;
        let mut closed = std::pin::pin!(closed);
        let mut closing = false;
        // Until the session is closed or retired, nothing to wait out.
        let drained = tokio::time::sleep(Duration::from_secs(86400 * 365));
        let mut drained = std::pin::pin!(drained);
        let mut draining = false;
        loop {
            if draining
                && self
                    .inner
                    .streams
                    .lock()
                    .expect("stream map lock")
                    .is_empty()
            {
                return Ok(None);
            }
            tokio::select! {
                biased;
                Some(command) = control.recv() => match command {
                    Control::Open { port, reply } => {
                        let pair = self.open(port).await?;
                        let _ = reply.send(pair);
                    }
                    Control::Pong(id) => self.send(&frame::ping(id)).await?,
                    Control::Forgotten(Some(ids)) => {
                        // What the stream sent before it was given up (its
                        // FIN) goes first.
                        while let Ok(frame) = data.try_recv() {
                            self.io.write_all(&frame).await?;
                        }
                        let mut resets = BytesMut::new();
                        for id in ids {
                            resets.put(frame::reset(id, CANCEL));
                        }
                        self.send(&resets).await?;
                    }
                    Control::Forgotten(None) => {}
                },
                Some(frame) = data.recv() => {
                    self.io.write_all(&frame).await?;
                    for _ in 1..WRITE_BATCH {
                        let Ok(frame) = data.try_recv() else { break };
                        self.io.write_all(&frame).await?;
                    }
                    self.io.flush().await?;
                }
                // Any frame resets the kubelet's streaming idle timeout, and
                // proxies on the way see traffic. A ping still unanswered a
                // keepalive later means a connection gone quiet: no new
                // streams go on it.
                _ = ticks.tick() => {
                    let last = next_ping.wrapping_sub(2);
                    if next_ping > 1 && self.inner.echoed.load(Ordering::Relaxed) != last {
                        self.inner.retired.cancel();
                    }
                    self.send(&frame::ping(next_ping)).await?;
                    next_ping = next_ping.wrapping_add(2);
                }
                end = &mut closed, if !closing => {
                    closing = true;
                    self.inner.retired.cancel();
                    // Streams to a pod that is gone finish within their
                    // grace; a stopping forward's streams at once.
                    let grace = match end {
                        End::Stopped => Duration::from_secs(1),
                        _ => CLOSE_GRACE + Duration::from_secs(1),
                    };
                    drained.as_mut().reset(tokio::time::Instant::now() + grace);
                    draining = true;
                }
                () = self.inner.retired.cancelled(), if !draining => draining = true,
                () = &mut drained => return Ok(None),
            }
        }
    }

    /// Opens the next pair: its queue is in place before the kubelet can
    /// answer.
    async fn open(&mut self, port: u16) -> Result<Result<Pair, OpenError>, FrameError> {
        let error_stream = self.next_stream;
        let data_stream = error_stream + 2;
        if self.inner.retired.is_cancelled() || data_stream > LAST_STREAM_ID {
            self.inner.retired.cancel();
            return Ok(Err(OpenError(
                "the SPDY session to the pod takes no new streams".to_owned(),
            )));
        }
        self.next_stream += 4;
        let request = self.next_request.to_string();
        self.next_request += 1;
        let (queue, incoming) = mpsc::channel(STREAM_QUEUE);
        {
            let mut streams = self.inner.streams.lock().expect("stream map lock");
            streams.insert(error_stream, queue.clone());
            streams.insert(data_stream, queue);
        }
        let guard = Guard {
            session: self.inner.clone(),
            ids: [error_stream, data_stream],
            fin_sent: AtomicBool::new(false),
            data_closed: AtomicBool::new(false),
            error_closed: AtomicBool::new(false),
        };
        let port = port.to_string();
        let mut opening = BytesMut::new();
        for (stream, kind) in [(error_stream, "error"), (data_stream, "data")] {
            let headers = [
                ("streamtype", kind),
                ("port", port.as_str()),
                ("requestid", request.as_str()),
            ];
            opening.put(frame::syn_stream(stream, &headers, &mut self.compressor));
            // The error stream is only ever read: our half ends at once.
            if stream == error_stream {
                opening.put_slice(&frame::data(error_stream, FLAG_FIN));
            }
        }
        self.send(&opening).await?;
        Ok(Ok(Pair {
            error_stream,
            data_stream,
            incoming,
            outgoing: self.inner.data.clone(),
            guard,
        }))
    }

    async fn send(&mut self, frames: &[u8]) -> Result<(), FrameError> {
        // TLS writers may hold bytes back until flushed.
        self.io.write_all(frames).await?;
        self.io.flush().await?;
        Ok(())
    }
}

/// The same failure again, for every stream that was open.
fn copy(err: &FrameError) -> FrameError {
    match err {
        FrameError::Version(version) => FrameError::Version(*version),
        FrameError::Malformed { kind, length } => FrameError::Malformed {
            kind: *kind,
            length: *length,
        },
        FrameError::Io(err) => FrameError::Io(std::io::Error::new(err.kind(), err.to_string())),
    }
}
