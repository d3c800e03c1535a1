//! The accept loop of one mapping: every local connection gets its own
//! port-forward stream to a Ready pod picked from the watch (over SPDY, a
//! stream pair on that pod's shared session). Nothing that
//! happens to one connection stops the loop; the forward stopping ends the
//! loop and closes every connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::notice::RateLimit;
use super::pods::{PodSet, PodTarget, PodWatch};
use super::sessions::Sessions;
use super::spdy;
use super::stream::{End, OpenError, Traffic};
use super::tasks::Tasks;
use super::tunnel::{self, Protocol, Tunnel};
use crate::cluster::within;
use crate::duration::humanize;

/// Keepalive frames on every open stream, well inside the 5-minute kubelet
/// idle timeout that CIS-hardened nodes use.
const STREAM_KEEPALIVE: Duration = Duration::from_secs(30);
/// TCP keepalive on local sockets, so a vanished client is noticed.
const LOCAL_KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const LOCAL_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Tries to open a stream per connection: the picked pod may have gone
/// between the watch event and the request.
const OPEN_ATTEMPTS: usize = 2;
const RETRY_DELAY: Duration = Duration::from_millis(300);
/// A session already open answers a new stream pair at once; one that does
/// not within this long has gone quiet, and a new session is opened.
const SHARED_OPEN_LIMIT: Duration = Duration::from_secs(10);
/// How often the same complaint may be repeated on stderr.
const NOTICE_INTERVAL: Duration = Duration::from_secs(5);

/// One local listener and where its connections go.
pub(crate) struct Forward {
    pub component: String,
    pub namespace: String,
    pub service: String,
    pub listener: TcpListener,
    pub pods: PodWatch,
    /// A client without read timeouts (`Cluster::streaming`).
    pub client: kube::Client,
    /// Bound on opening one stream (`--request-timeout`); zero means none.
    pub open_timeout: Duration,
    pub protocol: Protocol,
}

struct Shared {
    component: String,
    namespace: String,
    service: String,
    pods: watch::Receiver<Arc<PodSet>>,
    client: kube::Client,
    open_timeout: Duration,
    protocol: Protocol,
    tasks: Tasks,
    /// SPDY only: a WebSocket names its port when it is opened, and the
    /// kubelet connects to the pod at once.
    sessions: Sessions,
    turn: AtomicUsize,
    refusals: RateLimit,
    failures: RateLimit,
}

/// A stream opened for one local connection.
struct Opened {
    target: PodTarget,
    tunnel: Tunnel,
    /// On a session that was already open.
    shared: bool,
}

/// Why a stream could not be opened, and the shared session it failed on.
struct Failure {
    why: String,
    shared: Option<spdy::Session>,
}

impl Forward {
    /// Accepts connections, each a task of `tasks`, until the forward stops;
    /// the pod watch ends with it.
    pub(crate) async fn serve(self, tasks: Tasks) {
        let Forward {
            component,
            namespace,
            service,
            listener,
            pods: pod_watch,
            client,
            open_timeout,
            protocol,
        } = self;
        let shared = Arc::new(Shared {
            component,
            namespace,
            service,
            pods: pod_watch.pods(),
            client,
            open_timeout,
            protocol,
            tasks: tasks.clone(),
            sessions: Sessions::default(),
            turn: AtomicUsize::new(0),
            refusals: RateLimit::new(NOTICE_INTERVAL),
            failures: RateLimit::new(NOTICE_INTERVAL),
        });
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tasks.stop.cancelled() => return,
            };
            match accepted {
                Ok((socket, peer)) => tasks.spawn(connection(shared.clone(), socket, peer)),
                Err(err) => {
                    // Out of file descriptors and the like: keep serving.
                    tracing::warn!("{}: cannot accept a connection: {err}", shared.component);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Opens a stream for the connection and carries it, unless the forward
/// stops first.
async fn connection(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    tune_local_socket(&socket);
    let stop = shared.tasks.stop.clone();
    if let Some(Some(opened)) = stop.run_until_cancelled(open_for(&shared, peer)).await {
        carry(&shared, socket, peer, opened).await;
    }
}

/// A stream to a Ready pod, up to `OPEN_ATTEMPTS` tries, and one more at
/// once when a shared session fails (it may have gone stale). `None` when
/// the connection is refused, which is said on stderr (rate-limited).
async fn open_for(shared: &Arc<Shared>, peer: SocketAddr) -> Option<Opened> {
    let component = &shared.component;
    let mut attempt = 1;
    let mut stale: Option<spdy::Session> = None;
    let mut stale_tried = false;
    loop {
        let pods = shared.pods.borrow().clone();
        let turn = shared.turn.fetch_add(1, Ordering::Relaxed);
        let Some(target) = pods.pick(turn).cloned() else {
            if let Some(held_back) = shared.refusals.check(Instant::now()) {
                eprintln!(
                    "{component}: no Ready pod behind service {}/{}: refused the connection from {peer}{}",
                    shared.namespace,
                    shared.service,
                    more(held_back, "refused")
                );
            }
            return None;
        };
        match open(shared, &target, stale.take().as_ref()).await {
            Ok((tunnel, on_shared)) => {
                return Some(Opened {
                    target,
                    tunnel,
                    shared: on_shared,
                });
            }
            Err(Failure {
                why,
                shared: Some(session),
            }) if !stale_tried => {
                tracing::debug!(
                    "{component}: shared session to pod {}: {why}; opening a new one",
                    target.name
                );
                stale_tried = true;
                stale = Some(session);
            }
            Err(Failure { why, .. }) if attempt < OPEN_ATTEMPTS => {
                tracing::debug!("{component}: pod {}: {why}; trying again", target.name);
                attempt += 1;
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(Failure { why, .. }) => {
                if let Some(held_back) = shared.failures.check(Instant::now()) {
                    tracing::warn!(
                        "{component}: closed the connection from {peer}: cannot open a port-forward to pod {}: {why}{}",
                        target.name,
                        more(held_back, "failed")
                    );
                }
                return None;
            }
        }
    }
}

/// Pumps the connection until it ends, the pod is gone or the forward
/// stops, and says how it went.
async fn carry(shared: &Shared, socket: TcpStream, peer: SocketAddr, opened: Opened) {
    let Opened {
        target,
        tunnel,
        shared: on_shared,
    } = opened;
    let component = &shared.component;
    tracing::info!(
        "{component}: {peer} -> pod {}:{} opened{}",
        target.name,
        target.port,
        if on_shared {
            " on the pod's shared session"
        } else {
            ""
        }
    );
    let traffic = Traffic::default();
    let closed = async {
        tokio::select! {
            () = pod_gone(shared.pods.clone(), target.uid.clone()) => End::PodGone,
            () = shared.tasks.stop.cancelled() => End::Stopped,
        }
    };
    let outcome = tunnel::pump(
        socket,
        tunnel,
        target.port,
        STREAM_KEEPALIVE,
        closed,
        &traffic,
    )
    .await;
    let sent = traffic.to_pod.load(Ordering::Relaxed);
    let received = traffic.from_pod.load(Ordering::Relaxed);
    match outcome {
        Ok(end) => tracing::info!(
            "{component}: {peer} -> pod {} closed: {end} ({sent} bytes sent, {received} received)",
            target.name
        ),
        Err(err) => tracing::warn!(
            "{component}: connection from {peer} to pod {} ended: {err} ({sent} bytes sent, {received} received)",
            target.name
        ),
    }
}

/// Over SPDY, a stream pair on the pod's session (opened first if there is
/// none, or if `stale` was it); over WebSocket, a connection of its own.
/// Says whether the session was shared.
async fn open(
    shared: &Arc<Shared>,
    target: &PodTarget,
    stale: Option<&spdy::Session>,
) -> Result<(Tunnel, bool), Failure> {
    let timed_out = |limit: Duration| format!("no answer within {}", humanize(limit));
    let failed = |why: String| Failure { why, shared: None };
    let limit = shared.open_timeout;
    if shared.protocol == Protocol::Websocket {
        let opening =
            tunnel::open_websocket(&shared.client, &shared.namespace, &target.name, target.port);
        return match within(limit, opening).await {
            Some(Ok(tunnel)) => Ok((tunnel, false)),
            Some(Err(err)) => Err(failed(err.to_string())),
            None => Err(failed(format!("{} (--request-timeout)", timed_out(limit)))),
        };
    }
    let pods = shared.pods.borrow().clone();
    let starting = || start_session(shared, target);
    let getting = shared.sessions.get(&target.uid, &pods, stale, starting);
    let (session, on_shared) = match within(limit, getting).await {
        Some(Ok(got)) => got,
        Some(Err(err)) => return Err(failed(err.to_string())),
        None => return Err(failed(format!("{} (--request-timeout)", timed_out(limit)))),
    };
    let pair_limit = match (on_shared, limit.is_zero()) {
        (false, _) => limit,
        (true, true) => SHARED_OPEN_LIMIT,
        (true, false) => limit.min(SHARED_OPEN_LIMIT),
    };
    let why = match within(pair_limit, tunnel::open_spdy(&session, target.port)).await {
        Some(Ok(tunnel)) => return Ok((tunnel, on_shared)),
        Some(Err(err)) => err.to_string(),
        None if on_shared => timed_out(pair_limit),
        None => format!("{} (--request-timeout)", timed_out(pair_limit)),
    };
    Err(Failure {
        why,
        shared: on_shared.then_some(session),
    })
}

/// Upgrades a connection to the pod and runs a session on it, a task of the
/// forward that ends once the pod is gone or the forward stops.
async fn start_session(shared: &Shared, target: &PodTarget) -> Result<spdy::Session, OpenError> {
    let io = spdy::upgrade(&shared.client, &shared.namespace, &target.name).await?;
    let (pods, uid, stop) = (
        shared.pods.clone(),
        target.uid.clone(),
        shared.tasks.stop.clone(),
    );
    let closed = async move {
        tokio::select! {
            () = pod_gone(pods, uid) => End::PodGone,
            () = stop.cancelled() => End::Stopped,
        }
    };
    let (session, task) = spdy::Session::start(io, STREAM_KEEPALIVE, closed);
    shared.tasks.spawn(task);
    tracing::debug!(
        "{}: opened a SPDY session to pod {}",
        shared.component,
        target.name
    );
    Ok(session)
}

/// Resolves once the pod no longer exists, so that a connection to a
/// replaced pod ends instead of hanging.
async fn pod_gone(mut pods: watch::Receiver<Arc<PodSet>>, uid: String) {
    loop {
        if !pods.borrow_and_update().still_exists(&uid) {
            return;
        }
        if pods.changed().await.is_err() {
            // The watch ended with the forward itself; nothing more to learn.
            std::future::pending::<()>().await;
        }
    }
}

fn tune_local_socket(socket: &TcpStream) {
    let _ = socket.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(LOCAL_KEEPALIVE_IDLE)
        .with_interval(LOCAL_KEEPALIVE_INTERVAL);
    if let Err(err) = SockRef::from(socket).set_tcp_keepalive(&keepalive) {
        tracing::debug!("cannot enable TCP keepalive: {err}");
    }
}

fn more(held_back: u64, what: &str) -> String {
    if held_back == 0 {
        String::new()
    } else {
        format!(" ({held_back} more {what} since the last message)")
    }
}
