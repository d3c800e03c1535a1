//! `kubectl devenv forward`: local ports to the stack's components. Unlike
//! `kubectl port-forward`, it follows the Service to whichever pod is Ready,
//! keeps idle streams alive, and says so loudly when it cannot connect.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use k8s_openapi::api::core::v1::Service;
use kube::core::Selector;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::cluster::{Cluster, within};
use crate::commands::{StackArg, completion};
use crate::duration::humanize;
use crate::error::{Action, Error, Result};
use crate::forward::clients::client_command;
use crate::forward::listener::Forward;
use crate::forward::pods::{PodSet, PodWatch, TargetPort};
use crate::forward::ports::{self, LocalPort, PortRequest};
use crate::forward::stream::CLOSE_GRACE;
use crate::forward::tasks::Tasks;
use crate::forward::tunnel::Protocol;
use crate::{labels, output, render};

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Components to forward (mysql, redis, ...), as labelled on the stack's Services
    #[arg(value_name = "COMPONENT", add = completion::components())]
    pub components: Vec<String>,

    /// Fix a local port: COMPONENT=PORT, or COMPONENT:SERVICE_PORT=PORT for one port of a
    /// Service with several (repeatable; 0 picks any free port)
    #[arg(short = 'p', long = "port", value_name = "COMPONENT=PORT", value_parser = ports::parse_port_request)]
    pub ports: Vec<PortRequest>,

    /// Local address to listen on
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub address: IpAddr,

    /// Forward every component found
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub stack: StackArg,

    /// How streams reach the API server: spdy, or websocket through proxies that refuse SPDY
    /// upgrades
    #[arg(long, value_name = "PROTOCOL", value_parser = protocol(), default_value = "spdy")]
    pub protocol: Protocol,
}

/// `--protocol`'s values as clap lists them; [`Protocol`] stays free of clap.
pub(crate) fn protocol() -> impl TypedValueParser<Value = Protocol> {
    PossibleValuesParser::new([
        PossibleValue::new("spdy")
            .help("SPDY/3.1 (`portforward.k8s.io`), relayed to the kubelet unchanged"),
        PossibleValue::new("websocket")
            .help("WebSocket (`v4.channel.k8s.io`), for proxies that only pass WebSockets"),
    ])
    .map(|value| match value.as_str() {
        "websocket" => Protocol::Websocket,
        _ => Protocol::Spdy,
    })
}

/// A managed Service, reduced to what forwarding needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ComponentService {
    pub component: String,
    pub stack: String,
    pub namespace: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    /// TCP ports only: port-forwarding carries nothing else.
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target: TargetPort,
    /// The default local port its Service's annotation gives (`localPort`).
    pub local: Option<u16>,
}

impl ComponentService {
    /// `None` for a Service without a component label.
    pub(crate) fn from_service(service: &Service) -> Option<Self> {
        let labels = service.labels();
        let component = labels.get(labels::COMPONENT)?.clone();
        let annotations = service.annotations();
        let spec = service.spec.as_ref();
        let ports = spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| {
                let port = u16::try_from(p.port).ok()?;
                let local = p
                    .name
                    .as_deref()
                    .and_then(|name| annotations.get(&render::local_port_annotation(name)))
                    .and_then(|value| value.parse::<u16>().ok())
                    .filter(|local| *local != 0);
                Some(ServicePort {
                    name: p.name.clone(),
                    port,
                    target: TargetPort::from_service_port(port, p.target_port.as_ref()),
                    local,
                })
            })
            .collect();
        Some(Self {
            component,
            stack: labels.get(labels::STACK).cloned().unwrap_or_default(),
            namespace: service.namespace().unwrap_or_default(),
            name: service.name_any(),
            selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
            ports,
        })
    }

    fn forwardable(&self) -> bool {
        !self.ports.is_empty() && !self.selector.is_empty()
    }

    fn place(&self) -> String {
        if self.stack.is_empty() {
            format!("service {}/{}", self.namespace, self.name)
        } else {
            format!(
                "stack {} (service {}/{})",
                self.stack, self.namespace, self.name
            )
        }
    }
}

/// The components to forward: those named, plus those named only in `-p`.
pub(crate) fn wanted_components(args: &ForwardArgs) -> Result<Vec<String>> {
    let mut wanted: Vec<String> = Vec::new();
    let named = args.components.iter();
    let from_ports = args.ports.iter().map(|p| &p.component);
    for component in named.chain(from_ports) {
        if !wanted.contains(component) {
            wanted.push(component.clone());
        }
    }
    if wanted.is_empty() && !args.all {
        return Err(Error::Usage(
            "name at least one component to forward (e.g. `kubectl devenv forward mysql redis`), or pass --all".into(),
        ));
    }
    Ok(wanted)
}

/// Picks the Services to forward. `scope` words where we looked, for messages.
pub(crate) fn select_services(
    found: &[ComponentService],
    wanted: &[String],
    all: bool,
    scope: &str,
) -> Result<Vec<ComponentService>> {
    if found.is_empty() {
        return Err(Error::Other(format!(
            "no kubectl-devenv components found {scope}; create a stack with `kubectl devenv up`"
        )));
    }
    // `--all` passes over what cannot be forwarded (an ExternalName alias,
    // a UDP-only Service); a component named explicitly must be forwardable.
    let mut chosen: Vec<ComponentService> = if all {
        found.iter().filter(|s| s.forwardable()).cloned().collect()
    } else {
        Vec::new()
    };
    for component in wanted {
        let matching: Vec<&ComponentService> =
            found.iter().filter(|s| &s.component == component).collect();
        match matching.as_slice() {
            [] => {
                let mut available: Vec<&str> = found.iter().map(|s| s.component.as_str()).collect();
                available.sort_unstable();
                available.dedup();
                return Err(Error::Other(format!(
                    "unknown component \"{component}\" {scope}; available: {}",
                    available.join(", ")
                )));
            }
            [one] if !chosen.contains(one) => chosen.push((*one).clone()),
            [_] => {}
            several if !all => {
                let places: Vec<String> = several.iter().map(|s| s.place()).collect();
                return Err(Error::Other(format!(
                    "component \"{component}\" is ambiguous: {}; choose one with --stack or -n",
                    places.join(", ")
                )));
            }
            _ => {}
        }
    }
    for service in &chosen {
        if service.ports.is_empty() {
            return Err(Error::Other(format!(
                "{}: service {}/{} has no TCP port to forward",
                service.component, service.namespace, service.name
            )));
        }
        if service.selector.is_empty() {
            return Err(Error::Other(format!(
                "{}: service {}/{} has no pod selector, so there are no pods to forward to",
                service.component, service.namespace, service.name
            )));
        }
    }
    chosen.sort_by(|a, b| {
        (&a.stack, &a.namespace, &a.component).cmp(&(&b.stack, &b.namespace, &b.component))
    });
    Ok(chosen)
}

/// One local port to open: which Service port it leads to, and how to pick it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedPort {
    pub service: usize,
    pub port: usize,
    pub local: LocalPort,
}

/// Every TCP port of every chosen Service, with the `-p` choices applied;
/// the others prefer their `localPort`, else the service port.
pub(crate) fn plan_ports(
    services: &[ComponentService],
    requests: &[PortRequest],
) -> Result<Vec<PlannedPort>> {
    let mut fixed: BTreeMap<(usize, usize), u16> = BTreeMap::new();
    for request in requests {
        let mut matched = Vec::new();
        for (index, service) in services.iter().enumerate() {
            if service.component != request.component {
                continue;
            }
            match &request.service_port {
                Some(wanted) => matched.extend(
                    service
                        .ports
                        .iter()
                        .position(|p| wanted.matches(p.port, p.name.as_deref()))
                        .map(|port| (index, port)),
                ),
                None if service.ports.len() == 1 => matched.push((index, 0)),
                None => {
                    let list: Vec<String> =
                        service.ports.iter().map(|p| p.port.to_string()).collect();
                    return Err(Error::Usage(format!(
                        "-p {request}: {} has several ports ({}); choose one with -p {}:SERVICE_PORT={}",
                        request.component,
                        list.join(", "),
                        request.component,
                        request.local
                    )));
                }
            }
        }
        if matched.is_empty() {
            return Err(Error::Usage(format!(
                "-p {request}: no such port on component \"{}\"",
                request.component
            )));
        }
        for key in matched {
            if fixed.insert(key, request.local).is_some() {
                return Err(Error::Usage(format!(
                    "-p {request}: that port was already given a local port"
                )));
            }
        }
    }
    let mut plan = Vec::new();
    for (service_index, service) in services.iter().enumerate() {
        for (port_index, port) in service.ports.iter().enumerate() {
            let local = match fixed.get(&(service_index, port_index)) {
                Some(local) => LocalPort::Fixed(*local),
                None => LocalPort::Auto {
                    preferred: port.local.unwrap_or(port.port),
                },
            };
            plan.push(PlannedPort {
                service: service_index,
                port: port_index,
                local,
            });
        }
    }
    Ok(plan)
}

/// One row of the start-up table (and of `-o json|yaml`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Mapping {
    pub component: String,
    pub stack: String,
    pub namespace: String,
    pub service: String,
    pub local_address: String,
    pub pod: Option<String>,
    pub remote_port: String,
    pub client: Option<String>,
}

#[derive(Debug, Serialize)]
struct ForwardReport<'a> {
    mappings: &'a [Mapping],
}

pub(crate) async fn run(global: &GlobalArgs, args: &ForwardArgs) -> Result<()> {
    let wanted = wanted_components(args)?;
    // Listen for Ctrl-C and SIGTERM from the start, so that neither kills
    // the process uncleanly while it is still setting up.
    let mut stop = StopSignal::listen()?;
    let cluster = Cluster::connect(&global.connection()).await?;
    let (services, plan) = resolve(&cluster, args, &wanted).await?;
    let started = start(
        &cluster,
        &services,
        &plan,
        args.address,
        args.protocol,
        |component, preferred, bound| {
            eprintln!("{component}: local port {preferred} is not available; using {bound} instead")
        },
    )
    .await?;
    report(global.output, &started.mappings)?;
    eprintln!("Forwarding. Press Ctrl-C to stop.");
    stop.wait().await;
    started.stop().await;
    eprintln!("Stopped.");
    Ok(())
}

/// The Services to forward and the local ports they get.
async fn resolve(
    cluster: &Cluster,
    args: &ForwardArgs,
    wanted: &[String],
) -> Result<(Vec<ComponentService>, Vec<PlannedPort>)> {
    let stack = args.stack.resolve()?;
    let (found, scope) = list_services(cluster, stack.as_deref()).await?;
    let services = select_services(&found, wanted, args.all, &scope)?;
    let plan = plan_ports(&services, &args.ports)?;
    Ok((services, plan))
}

/// The start-up table (or `-o json|yaml`), and which mappings wait for a pod.
fn report(format: OutputFormat, mappings: &[Mapping]) -> Result<()> {
    let report = ForwardReport { mappings };
    output::emit(format, &report, |report| {
        output::table_text(&render_table(report.mappings))
    })?;
    warn_without_pods(mappings);
    Ok(())
}

/// How long a stopping forward waits for its connections to write their
/// last frames and close; one stuck on a dead API server connection is
/// left behind.
const DRAIN: Duration = CLOSE_GRACE;

/// Forwards that are serving. `stop` ends them and waits for their
/// connections to close; dropping this ends them without waiting.
pub(crate) struct Started {
    /// In plan order.
    pub mappings: Vec<Mapping>,
    tasks: Tasks,
}

impl Started {
    /// Closes the listeners, the pod watches and every open connection (each
    /// tells both its sides), waiting at most `DRAIN`.
    pub(crate) async fn stop(self) {
        if !self.tasks.stop(DRAIN).await {
            tracing::debug!(
                "connections still open {} after stopping; leaving them",
                humanize(DRAIN)
            );
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.tasks.stop.cancel();
    }
}

/// Says on stderr which mappings have no Ready pod to go to yet.
pub(crate) fn warn_without_pods(mappings: &[Mapping]) {
    for mapping in mappings.iter().filter(|m| m.pod.is_none()) {
        eprintln!(
            "{}: no Ready pod behind service {}/{} yet; connections are refused until one is Ready",
            mapping.component, mapping.namespace, mapping.service
        );
    }
}

/// Watches the pods behind each planned port, opens the local listeners and
/// serves them: what `forward`, `run` and `open` share. `moved` hears of an
/// automatic port that had to step away from its preferred one.
pub(crate) async fn start(
    cluster: &Cluster,
    services: &[ComponentService],
    plan: &[PlannedPort],
    address: IpAddr,
    protocol: Protocol,
    moved: impl Fn(&str, u16, u16),
) -> Result<Started> {
    let streaming = cluster.streaming()?;
    // Every task below belongs to `started`; an early return drops the
    // watches, which stops them.
    let mut started = Started {
        mappings: Vec::with_capacity(plan.len()),
        tasks: Tasks::default(),
    };
    let watches = start_watches(cluster, &streaming.client, &started.tasks, services, plan).await?;
    let listeners = bind_listeners(services, plan, address, moved).await?;
    for ((planned, pods), listener) in plan.iter().zip(watches).zip(listeners) {
        let service = &services[planned.service];
        let port = &service.ports[planned.port];
        let local = listener
            .local_addr()
            .map_err(|err| Error::Other(format!("cannot read the local address: {err}")))?;
        started
            .mappings
            .push(mapping_row(service, port, local, &pods.pods().borrow()));
        let forward = Forward {
            component: service.component.clone(),
            namespace: service.namespace.clone(),
            service: service.name.clone(),
            listener,
            pods,
            client: streaming.client.clone(),
            open_timeout: cluster.request_timeout,
            protocol,
        };
        started.tasks.spawn(forward.serve(started.tasks.clone()));
    }
    Ok(started)
}

/// One pod watch per mapping, each after its first listing, so that the
/// table shows real pods and a refused watch fails now, not silently later.
async fn start_watches(
    cluster: &Cluster,
    client: &kube::Client,
    tasks: &Tasks,
    services: &[ComponentService],
    plan: &[PlannedPort],
) -> Result<Vec<PodWatch>> {
    let mut watches: Vec<PodWatch> = plan
        .iter()
        .map(|planned| {
            let service = &services[planned.service];
            PodWatch::start(
                tasks,
                Api::namespaced(client.clone(), &service.namespace),
                &Selector::from_iter(service.selector.clone()),
                service.ports[planned.port].target.clone(),
                service.component.clone(),
            )
        })
        .collect();
    for (planned, watch) in plan.iter().zip(&mut watches) {
        let namespace = &services[planned.service].namespace;
        wait_synced(cluster, namespace, watch.first_listing()).await?;
    }
    Ok(watches)
}

/// A listener per planned port, in plan order. Fixed ports are bound first,
/// so that automatic ones step around them.
async fn bind_listeners(
    services: &[ComponentService],
    plan: &[PlannedPort],
    address: IpAddr,
    moved: impl Fn(&str, u16, u16),
) -> Result<Vec<TcpListener>> {
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|i| !matches!(plan[*i].local, LocalPort::Fixed(_)));
    let mut bound = Vec::with_capacity(plan.len());
    for index in order {
        let planned = &plan[index];
        let component = &services[planned.service].component;
        let listener = ports::bind(address, planned.local)
            .await
            .map_err(|err| bind_error(component, address, planned.local, err))?;
        if let (LocalPort::Auto { preferred }, Ok(local)) = (planned.local, listener.local_addr())
            && local.port() != preferred
        {
            moved(component, preferred, local.port());
        }
        bound.push((index, listener));
    }
    bound.sort_by_key(|(index, _)| *index);
    Ok(bound.into_iter().map(|(_, listener)| listener).collect())
}

/// The managed Services of `stack` (of every stack when `None`) in the `-n`
/// namespace or in all, and words for where that looked.
pub(crate) async fn list_services(
    cluster: &Cluster,
    stack: Option<&str>,
) -> Result<(Vec<ComponentService>, String)> {
    let scope = cluster.scope();
    let selector = match stack {
        Some(stack) => labels::stack_selector(stack),
        None => labels::managed_selector(),
    };
    let listed: Vec<Service> = cluster.list(&scope, &selector).await?;
    let found = listed
        .iter()
        .filter_map(ComponentService::from_service)
        .collect();
    Ok((found, describe_scope(scope.namespace(), stack)))
}

fn describe_scope(namespace: Option<&str>, stack: Option<&str>) -> String {
    let place = match namespace {
        Some(ns) => format!("in namespace \"{ns}\""),
        None => "in any namespace".to_owned(),
    };
    match stack {
        Some(stack) => format!("for stack \"{stack}\" {place}"),
        None => place,
    }
}

async fn wait_synced(
    cluster: &Cluster,
    namespace: &str,
    synced: &mut tokio::sync::oneshot::Receiver<std::result::Result<(), watcher::Error>>,
) -> Result<()> {
    let Some(outcome) = within(cluster.request_timeout, synced).await else {
        return Err(Error::Timeout {
            server: cluster.server.clone(),
            timeout: cluster.request_timeout,
        });
    };
    let action = || Action::new("watch", "pods").in_namespace(Some(namespace));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(
            watcher::Error::InitialListFailed(err)
            | watcher::Error::WatchStartFailed(err)
            | watcher::Error::WatchFailed(err),
        )) => Err(cluster.explain(action(), err)),
        Ok(Err(other)) => Err(Error::Other(format!(
            "cannot watch pods in namespace \"{namespace}\": {other}"
        ))),
        Err(_) => Err(Error::Other(format!(
            "the pod watch in namespace \"{namespace}\" stopped before its first listing"
        ))),
    }
}

fn bind_error(component: &str, address: IpAddr, local: LocalPort, err: std::io::Error) -> Error {
    match (local, err.kind()) {
        (LocalPort::Fixed(port), std::io::ErrorKind::AddrInUse) => Error::Other(format!(
            "local port {port} ({component}) is already in use on {address}; choose another with -p {component}=PORT"
        )),
        (LocalPort::Fixed(port), std::io::ErrorKind::PermissionDenied) => Error::Other(format!(
            "cannot listen on {address}:{port} ({component}): permission denied; ports below 1024 need privileges, choose another with -p {component}=PORT"
        )),
        (LocalPort::Fixed(port), _) => Error::Other(format!(
            "cannot listen on {address}:{port} ({component}): {err}"
        )),
        (LocalPort::Auto { preferred }, _) => Error::Other(format!(
            "cannot listen on {address} near port {preferred} ({component}): {err}"
        )),
        (LocalPort::InRange { first, last }, std::io::ErrorKind::AddrInUse) => {
            Error::Other(format!(
                "no free local port for {component} in {first}-{last} on {address}: every one is in use; widen --port-range"
            ))
        }
        (LocalPort::InRange { first, last }, _) => Error::Other(format!(
            "cannot listen on {address} in {first}-{last} ({component}): {err}"
        )),
    }
}

fn mapping_row(
    service: &ComponentService,
    port: &ServicePort,
    local: SocketAddr,
    pods: &PodSet,
) -> Mapping {
    let pod = pods.pick(0);
    let remote_port = match pod {
        Some(pod) => pod.port.to_string(),
        None => port.target.to_string(),
    };
    let remote_number = pod.map_or(port.port, |p| p.port);
    Mapping {
        component: service.component.clone(),
        stack: service.stack.clone(),
        namespace: service.namespace.clone(),
        service: service.name.clone(),
        local_address: local.to_string(),
        pod: pod.map(|p| p.name.clone()),
        remote_port,
        client: client_command(&service.component, remote_number, local.ip(), local.port()),
    }
}

fn render_table(mappings: &[Mapping]) -> comfy_table::Table {
    let mut table = output::table(["COMPONENT", "LOCAL", "POD", "REMOTE PORT", "CLIENT"]);
    for mapping in mappings {
        table.add_row([
            mapping.component.clone(),
            mapping.local_address.clone(),
            mapping
                .pod
                .clone()
                .unwrap_or_else(|| "<no Ready pod>".into()),
            mapping.remote_port.clone(),
            mapping.client.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table
}

/// Ctrl-C, and SIGTERM where there is one: both end the forward with exit 0.
pub(crate) struct StopSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub(crate) fn listen() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind| {
                signal(kind)
                    .map_err(|err| Error::Other(format!("cannot listen for signals: {err}")))
            };
            Ok(Self {
                terminate: listen(SignalKind::terminate())?,
                interrupt: listen(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    pub(crate) async fn wait(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::ports::parse_port_request;

    fn service(component: &str, stack: &str, namespace: &str, ports: &[u16]) -> ComponentService {
        ComponentService {
            component: component.into(),
            stack: stack.into(),
            namespace: namespace.into(),
            name: format!("{stack}-{component}"),
            selector: [("app".into(), component.into())].into(),
            ports: ports
                .iter()
                .map(|p| ServicePort {
                    name: Some(format!("p{p}")),
                    port: *p,
                    target: TargetPort::Number(*p),
                    local: None,
                })
                .collect(),
        }
    }

    fn names(services: &[ComponentService]) -> Vec<&str> {
        services.iter().map(|s| s.component.as_str()).collect()
    }

    #[test]
    fn services_are_read_from_their_labels() {
        let yaml = r#"
metadata:
  name: shop-mysql
  namespace: dev
  labels:
    app.kubernetes.io/managed-by: kubectl-devenv
    app.kubernetes.io/instance: shop
    app.kubernetes.io/component: mysql
spec:
  selector: {app.kubernetes.io/instance: shop, app.kubernetes.io/component: mysql}
  ports:
    - {name: mysql, port: 3306, targetPort: mysql}
    - {name: dns, port: 53, protocol: UDP}
"#;
        let parsed: Service = serde_saphyr::from_str(yaml).unwrap();
        let service = ComponentService::from_service(&parsed).unwrap();
        assert_eq!(service.component, "mysql");
        assert_eq!(service.stack, "shop");
        assert_eq!(service.namespace, "dev");
        assert_eq!(
            service.ports,
            vec![ServicePort {
                name: Some("mysql".into()),
                port: 3306,
                target: TargetPort::Name("mysql".into()),
                local: None,
            }]
        );
        let mut annotated = parsed.clone();
        annotated.metadata.annotations = Some(
            [
                ("kubectl-devenv.io/local-port.mysql".into(), "13306".into()),
                ("kubectl-devenv.io/local-port.dns".into(), "5353".into()),
            ]
            .into(),
        );
        let ports = ComponentService::from_service(&annotated).unwrap().ports;
        assert_eq!(ports[0].local, Some(13306), "the UDP port is not forwarded");
        let mut unlabelled = parsed.clone();
        unlabelled.metadata.labels = None;
        assert_eq!(ComponentService::from_service(&unlabelled), None);
    }

    #[test]
    fn named_components_are_chosen() {
        let found = [
            service("mysql", "shop", "dev", &[3306]),
            service("redis", "shop", "dev", &[6379]),
        ];
        let chosen = select_services(&found, &["redis".into()], false, "in any namespace").unwrap();
        assert_eq!(names(&chosen), ["redis"]);
        let all = select_services(&found, &[], true, "in any namespace").unwrap();
        assert_eq!(names(&all), ["mysql", "redis"]);
    }

    #[test]
    fn an_unknown_component_lists_the_available_ones() {
        let found = [
            service("mysql", "shop", "dev", &[3306]),
            service("redis", "shop", "dev", &[6379]),
        ];
        let err = select_services(&found, &["postgres".into()], false, "in namespace \"dev\"")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown component \"postgres\" in namespace \"dev\"; available: mysql, redis"
        );
    }

    #[test]
    fn a_component_in_two_stacks_is_ambiguous() {
        let found = [
            service("mysql", "shop", "dev", &[3306]),
            service("mysql", "blog", "qa", &[3306]),
        ];
        let err =
            select_services(&found, &["mysql".into()], false, "in any namespace").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("ambiguous"), "{message}");
        assert!(
            message.contains("stack shop (service dev/shop-mysql)"),
            "{message}"
        );
        assert!(
            message.contains("stack blog (service qa/blog-mysql)"),
            "{message}"
        );
        assert!(message.contains("--stack"), "{message}");
    }

    #[test]
    fn all_skips_services_without_pods_but_a_named_one_is_an_error() {
        let mut alias = service("mysql", "shop", "dev", &[3306]);
        alias.selector.clear();
        let found = [alias, service("redis", "shop", "test", &[6379])];
        let all = select_services(&found, &[], true, "x").unwrap();
        assert_eq!(names(&all), ["redis"]);
        assert!(select_services(&found, &["mysql".into()], false, "x").is_err());
    }

    #[test]
    fn nothing_found_says_where_it_looked() {
        let err =
            select_services(&[], &["mysql".into()], false, "in namespace \"dev\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no kubectl-devenv components found in namespace \"dev\"")
        );
    }

    #[test]
    fn a_service_without_selector_cannot_be_forwarded() {
        let mut headless = service("mysql", "shop", "dev", &[3306]);
        headless.selector.clear();
        let err = select_services(&[headless], &["mysql".into()], false, "x").unwrap_err();
        assert!(err.to_string().contains("no pod selector"), "{err}");
    }

    #[test]
    fn ports_default_to_the_service_port_and_p_fixes_them() {
        let services = [
            service("mysql", "s", "d", &[3306]),
            service("redis", "s", "d", &[6379]),
        ];
        let requests = [parse_port_request("redis=16379").unwrap()];
        let plan = plan_ports(&services, &requests).unwrap();
        assert_eq!(
            plan,
            vec![
                PlannedPort {
                    service: 0,
                    port: 0,
                    local: LocalPort::Auto { preferred: 3306 }
                },
                PlannedPort {
                    service: 1,
                    port: 0,
                    local: LocalPort::Fixed(16379)
                },
            ]
        );
    }

    #[test]
    fn a_local_port_from_the_service_is_the_default_and_p_still_wins() {
        let mut mail = service("mail", "s", "d", &[1025, 8025]);
        mail.ports[1].local = Some(18025);
        let services = [mail];
        let plan = plan_ports(&services, &[]).unwrap();
        assert_eq!(
            plan.iter().map(|p| p.local).collect::<Vec<_>>(),
            [
                LocalPort::Auto { preferred: 1025 },
                LocalPort::Auto { preferred: 18025 }
            ]
        );
        let fixed =
            plan_ports(&services, &[parse_port_request("mail:8025=9999").unwrap()]).unwrap();
        assert_eq!(fixed[1].local, LocalPort::Fixed(9999));
    }

    #[test]
    fn a_multi_port_service_needs_the_port_named() {
        let services = [service("php", "s", "d", &[9000, 9090])];
        let vague = plan_ports(&services, &[parse_port_request("php=9001").unwrap()]).unwrap_err();
        assert_eq!(vague.exit_code(), 2);
        assert!(
            vague.to_string().contains("several ports (9000, 9090)"),
            "{vague}"
        );
        let by_name =
            plan_ports(&services, &[parse_port_request("php:p9090=19090").unwrap()]).unwrap();
        assert_eq!(by_name[1].local, LocalPort::Fixed(19090));
        assert_eq!(by_name[0].local, LocalPort::Auto { preferred: 9000 });
    }

    #[test]
    fn p_for_a_port_that_does_not_exist_is_a_usage_error() {
        let services = [service("mysql", "s", "d", &[3306])];
        let err =
            plan_ports(&services, &[parse_port_request("mysql:33060=1").unwrap()]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let twice = [
            parse_port_request("mysql=1").unwrap(),
            parse_port_request("mysql=2").unwrap(),
        ];
        assert!(plan_ports(&services, &twice).is_err());
    }

    #[test]
    fn components_from_p_are_forwarded_too() {
        let args = ForwardArgs {
            components: vec!["mysql".into()],
            ports: vec![
                parse_port_request("redis=1").unwrap(),
                parse_port_request("mysql=2").unwrap(),
            ],
            address: "127.0.0.1".parse().unwrap(),
            all: false,
            stack: StackArg::default(),
            protocol: Protocol::Spdy,
        };
        assert_eq!(wanted_components(&args).unwrap(), ["mysql", "redis"]);
        let nothing = ForwardArgs {
            components: vec![],
            ports: vec![],
            ..args
        };
        assert_eq!(wanted_components(&nothing).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_table_shows_where_to_connect() {
        let service = service("mysql", "s", "d", &[3306]);
        let pods = PodSet {
            ready: vec![crate::forward::pods::PodTarget {
                name: "mysql-0".into(),
                uid: "u".into(),
                port: 3306,
            }],
            existing: ["u".to_string()].into(),
        };
        let row = mapping_row(
            &service,
            &service.ports[0],
            "127.0.0.1:3307".parse().unwrap(),
            &pods,
        );
        let table = render_table(&[row]);
        let lines: Vec<String> = table.lines().map(|l| l.trim_end().to_owned()).collect();
        assert!(lines[0].starts_with("COMPONENT"), "{lines:?}");
        assert!(lines[1].contains("127.0.0.1:3307"), "{lines:?}");
        assert!(lines[1].contains("mysql-0"), "{lines:?}");
        assert!(
            lines[1].ends_with("mysql -h 127.0.0.1 -P 3307 -u app -p"),
            "{lines:?}"
        );
        let empty = mapping_row(
            &service,
            &service.ports[0],
            "127.0.0.1:3306".parse().unwrap(),
            &PodSet::default(),
        );
        assert_eq!(empty.pod, None);
    }
}
