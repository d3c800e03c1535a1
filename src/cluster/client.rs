//! Connecting to the cluster the way kubectl does: the same kubeconfig search
//! and merge rules, the same selection flags, and a hard bound on every call.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tower::retry::RetryLayer;
use tower::{BoxError, Service, ServiceBuilder};

use crate::error::{Action, Error, Result};

/// kubectl's connection flags, as plain values: which kubeconfig entries to
/// use, `-n`, and the bound on every request.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
    /// Zero means no bound, as with kubectl's `--request-timeout=0`.
    pub request_timeout: Duration,
}

/// A connected client plus what error messages need to know about it.
#[derive(Clone)]
pub(crate) struct Cluster {
    pub client: Client,
    /// The API server URL, for messages such as "unable to connect to the server at ...".
    pub server: String,
    /// `-n` if given, else the context's namespace, else `default`.
    pub namespace: String,
    /// `-n`, for the commands that otherwise look in all namespaces (see [`Cluster::scope`]).
    pub(super) namespace_flag: Option<String>,
    /// Zero means no bound, as with kubectl's `--request-timeout=0`.
    pub request_timeout: Duration,
    config: Config,
}

impl Cluster {
    /// Loads the kubeconfig and builds a client whose every call is bounded by
    /// `--request-timeout`. Makes no request yet.
    pub(crate) async fn connect(args: &ConnectOptions) -> Result<Self> {
        let kubeconfig = load_kubeconfig(args.kubeconfig.as_deref())?;
        if let Some(context) = &args.context
            && !kubeconfig.contexts.iter().any(|c| &c.name == context)
        {
            return Err(Error::UnknownContext(context.clone()));
        }
        let options = KubeConfigOptions {
            context: args.context.clone(),
            cluster: args.cluster.clone(),
            user: args.user.clone(),
        };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(kubeconfig_problem)?;
        let bound = (!args.request_timeout.is_zero()).then_some(args.request_timeout);
        config.connect_timeout = bound;
        config.read_timeout = bound;
        config.write_timeout = bound;
        if let Some(namespace) = &args.namespace {
            config.default_namespace = namespace.clone();
        }
        Self::from_config(config, args.request_timeout, args.namespace.clone())
    }

    fn from_config(
        config: Config,
        request_timeout: Duration,
        namespace_flag: Option<String>,
    ) -> Result<Self> {
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let client = build_client(&config).map_err(|err| Error::Unreachable {
            server: server.clone(),
            cause: root_cause(&err),
        })?;
        Ok(Self {
            client,
            server,
            namespace: config.default_namespace.clone(),
            namespace_flag,
            request_timeout,
            config,
        })
    }

    /// A second client for long-lived streams (watches, port-forwards, log
    /// follows): connecting stays bounded, but an idle stream is not cut off.
    pub(crate) fn streaming(&self) -> Result<Self> {
        let mut config = self.config.clone();
        config.read_timeout = None;
        config.write_timeout = None;
        Self::from_config(config, self.request_timeout, self.namespace_flag.clone())
    }

    /// Runs one API call under the request timeout and turns its failure into
    /// a message that names what was being done.
    pub(crate) async fn call<T>(
        &self,
        action: Action,
        call: impl Future<Output = std::result::Result<T, kube::Error>>,
    ) -> Result<T> {
        let Some(result) = within(self.request_timeout, call).await else {
            return Err(self.timed_out());
        };
        result.map_err(|err| self.explain(action, err))
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            server: self.server.clone(),
            timeout: self.request_timeout,
        }
    }

    /// Maps a kube error to one of ours, keeping the action for API refusals.
    pub(crate) fn explain(&self, action: Action, err: kube::Error) -> Error {
        match err {
            kube::Error::Api(status) => Error::Api { action, status },
            kube::Error::Auth(err) => Error::Credentials(root_cause(&err)),
            err @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                let cause = root_cause(&err);
                if cause.contains("timed out") || cause.contains("deadline has elapsed") {
                    self.timed_out()
                } else {
                    Error::Unreachable {
                        server: self.server.clone(),
                        cause,
                    }
                }
            }
            err => Error::Other(format!(
                "cannot {} {}: {}",
                action.verb,
                action.resource,
                root_cause(&err)
            )),
        }
    }
}

/// The innermost error of a chain: "Connection refused (os error 111)" rather
/// than "ServiceError: client error (Connect)".
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// kubectl's lookup: `--kubeconfig` alone if given; else every file in
/// `KUBECONFIG`, merged, first one wins, missing ones skipped; else `~/.kube/config`.
pub(crate) fn load_kubeconfig(explicit: Option<&Path>) -> Result<Kubeconfig> {
    if let Some(path) = explicit {
        return read_kubeconfig(path);
    }
    let candidates = kubeconfig_candidates();
    let present: Vec<&PathBuf> = candidates.iter().filter(|p| p.exists()).collect();
    if present.is_empty() {
        let tried = candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::KubeconfigNotFound { tried });
    }
    present
        .into_iter()
        .try_fold(Kubeconfig::default(), |merged, path| {
            merged
                .merge(read_kubeconfig(path)?)
                .map_err(kubeconfig_problem)
        })
}

/// The files kubectl would look at when no `--kubeconfig` is given.
pub(crate) fn kubeconfig_candidates() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(list) if !list.is_empty() => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        _ => std::env::home_dir()
            .map(|home| vec![home.join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig> {
    Kubeconfig::read_from(path).map_err(|err| match err {
        KubeconfigError::ReadConfig(source, _) => Error::KubeconfigRead {
            path: path.to_owned(),
            source,
        },
        KubeconfigError::Parse(err) => Error::KubeconfigParse {
            path: path.to_owned(),
            message: one_line(&err.to_string()),
        },
        other => Error::KubeconfigInvalid(format!("{}: {}", path.display(), root_cause(&other))),
    })
}

fn kubeconfig_problem(err: KubeconfigError) -> Error {
    match err {
        KubeconfigError::LoadContext(name) => Error::UnknownContext(name),
        KubeconfigError::CurrentContextNotSet => Error::KubeconfigInvalid(
            "current-context is not set; pass --context or run `kubectl config use-context`".into(),
        ),
        KubeconfigError::LoadClusterOfContext(name) => {
            Error::KubeconfigInvalid(format!("cluster \"{name}\" does not exist"))
        }
        other => Error::KubeconfigInvalid(one_line(&other.to_string())),
    }
}

/// Collapses a multi-line parser message (with its source excerpt) to one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .take(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Awaits `future` for at most `limit`, where zero means no bound, as with
/// kubectl's `--request-timeout=0`. `None` when the time ran out.
pub(crate) async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    if limit.is_zero() {
        Some(future.await)
    } else {
        tokio::time::timeout(limit, future).await.ok()
    }
}

/// A TCP connection read through a 64 KiB buffer. rustls asks the socket for
/// at most 4 KiB at a time, so without it a bulk download through a
/// port-forward cost one system call per 4 KiB.
struct BufferedTcp(BufReader<TcpStream>);

const READ_BUFFER: usize = 64 * 1024;

impl AsyncRead for BufferedTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for BufferedTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for BufferedTcp {
    fn connected(&self) -> Connected {
        self.0.get_ref().connected()
    }
}

/// hyper's TCP connector, handing out `BufferedTcp` connections.
#[derive(Clone)]
struct BufferedConnector(HttpConnector);

impl Service<http::Uri> for BufferedConnector {
    type Response = TokioIo<BufferedTcp>;
    type Error = BoxError;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(BoxError::from)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let stream = connecting.await?.into_inner();
            Ok(TokioIo::new(BufferedTcp(BufReader::with_capacity(
                READ_BUFFER,
                stream,
            ))))
        })
    }
}

/// kube's client stack (base URL, retries, credentials, impersonation
/// headers, timeouts), on TCP connections with Nagle's algorithm off, as Go
/// clients such as kubectl have them. With it on, every new connection
/// stalled about 40 ms on a delayed ACK between the TLS handshake and the
/// request: each port-forwarded connection, log follow and exec paid it.
/// Proxies are left to kube, which refuses them in this build with a clear
/// error.
fn build_client(config: &Config) -> std::result::Result<Client, kube::Error> {
    if config.proxy_url.is_some() {
        return Client::try_from(config.clone());
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let buffered = BufferedConnector(http);
    let mut connector =
        TimeoutConnector::new(config.rustls_https_connector_with_connector(buffered)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http_client =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(Client::new(service, config.default_namespace.clone()))
}
