//! The accept loop of one mapping: every local connection gets its own
//! port-forward stream to a Ready pod picked from the watch. Nothing that
//! happens to one connection stops the loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::notice::RateLimit;
use super::pods::{PodSet, PodTarget};
use super::standby::Standbys;
use super::stream::{End, Traffic, Upgrade};
use super::tunnel::{self, Protocol, Tunnel};
use crate::cluster::within;
use crate::error::humanize;

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
/// How often the same complaint may be repeated on stderr.
const NOTICE_INTERVAL: Duration = Duration::from_secs(5);

/// One local listener and where its connections go.
pub struct Forward {
    pub component: String,
    pub namespace: String,
    pub service: String,
    pub listener: TcpListener,
    pub pods: watch::Receiver<Arc<PodSet>>,
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
    /// SPDY only: a WebSocket names its port when it is opened, and the
    /// kubelet connects to the pod at once.
    standbys: Option<Arc<Standbys>>,
    turn: AtomicUsize,
    refusals: RateLimit,
    failures: RateLimit,
}

impl Forward {
    /// Accepts connections until the task is dropped.
    pub async fn serve(self) {
        let shared = Arc::new(Shared {
            component: self.component,
            namespace: self.namespace,
            service: self.service,
            pods: self.pods,
            client: self.client,
            open_timeout: self.open_timeout,
            protocol: self.protocol,
            standbys: (self.protocol == Protocol::Spdy).then(Default::default),
            turn: AtomicUsize::new(0),
            refusals: RateLimit::new(NOTICE_INTERVAL),
            failures: RateLimit::new(NOTICE_INTERVAL),
        });
        loop {
            match self.listener.accept().await {
                Ok((socket, peer)) => {
                    tokio::spawn(connection(shared.clone(), socket, peer));
                }
                Err(err) => {
                    // Out of file descriptors and the like: keep serving.
                    tracing::warn!("{}: cannot accept a connection: {err}", shared.component);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    tune_local_socket(&socket);
    let component = &shared.component;
    let mut attempt = 1;
    let mut warm_tried = false;
    let (target, stream, warm) = loop {
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
            return;
        };
        // One standby at most: one that fails may have gone stale, so a new
        // connection follows at once.
        let warm = match &shared.standbys {
            Some(standbys) if !warm_tried => standbys.take(&target.uid, &pods),
            _ => None,
        };
        let used_warm = warm.is_some();
        warm_tried |= used_warm;
        match open(&shared, &target, warm).await {
            Ok(stream) => {
                if let Some(standbys) = &shared.standbys {
                    standbys.refill(
                        &shared.client,
                        &shared.namespace,
                        &target.name,
                        &target.uid,
                        shared.open_timeout,
                    );
                }
                break (target, stream, used_warm);
            }
            Err(why) if used_warm => {
                tracing::debug!(
                    "{component}: standby for pod {}: {why}; opening anew",
                    target.name
                );
            }
            Err(why) if attempt < OPEN_ATTEMPTS => {
                tracing::debug!("{component}: pod {}: {why}; trying again", target.name);
                attempt += 1;
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(why) => {
                if let Some(held_back) = shared.failures.check(Instant::now()) {
                    tracing::warn!(
                        "{component}: closed the connection from {peer}: cannot open a port-forward to pod {}: {why}{}",
                        target.name,
                        more(held_back, "failed")
                    );
                }
                return;
            }
        }
    };
    tracing::info!(
        "{component}: {peer} -> pod {}:{} opened{}",
        target.name,
        target.port,
        if warm { " on a standby connection" } else { "" }
    );
    let traffic = Traffic::default();
    let gone = pod_gone(shared.pods.clone(), target.uid.clone());
    let closed = async {
        gone.await;
        End::PodGone
    };
    let outcome = tunnel::pump(
        socket,
        stream,
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

async fn open(
    shared: &Shared,
    target: &PodTarget,
    warm: Option<Upgrade>,
) -> Result<Tunnel, String> {
    let opening = tunnel::open(
        &shared.client,
        &shared.namespace,
        &target.name,
        target.port,
        shared.protocol,
        warm,
    );
    let Some(outcome) = within(shared.open_timeout, opening).await else {
        return Err(format!(
            "no answer within {} (--request-timeout)",
            humanize(shared.open_timeout)
        ));
    };
    outcome.map_err(|err| err.to_string())
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
