//! Which pods a forward may use: the Ready pods behind the Service, kept
//! current by a watch so that each new connection picks from fresh state
//! without a request of its own.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::Selector;
use kube::runtime::watcher::{self, Event, ExponentialBackoff};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, ResourceExt};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::DropGuard;

use super::tasks::Tasks;

/// The container port a Service port leads to (`targetPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetPort {
    Number(u16),
    /// A named container port, looked up in each pod.
    Name(String),
}

impl TargetPort {
    /// `targetPort` as the API gives it; absent means the service port itself.
    pub(crate) fn from_service_port(port: u16, target: Option<&IntOrString>) -> Self {
        match target {
            Some(IntOrString::Int(number)) => u16::try_from(*number)
                .map(Self::Number)
                .unwrap_or(Self::Number(port)),
            Some(IntOrString::String(name)) => match name.parse::<u16>() {
                Ok(number) => Self::Number(number),
                Err(_) => Self::Name(name.clone()),
            },
            None => Self::Number(port),
        }
    }

    /// The port number in this pod, or `None` if the pod has no port of that name.
    pub(crate) fn in_pod(&self, pod: &Pod) -> Option<u16> {
        match self {
            Self::Number(number) => Some(*number),
            Self::Name(name) => pod
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        }
    }
}

impl std::fmt::Display for TargetPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// One pod a connection can go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodTarget {
    pub name: String,
    pub uid: String,
    pub port: u16,
}

/// What the watch knows at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PodSet {
    /// Ready pods, by name, so that picks are predictable.
    pub ready: Vec<PodTarget>,
    /// Every pod that still exists (Ready or not), by UID: a connection
    /// stays open while its pod exists and is closed once it is gone.
    pub existing: BTreeSet<String>,
}

impl PodSet {
    pub(crate) fn from_pods<'a>(
        pods: impl IntoIterator<Item = &'a Pod>,
        target: &TargetPort,
    ) -> Self {
        let mut set = Self::default();
        for pod in pods {
            let uid = pod.uid().unwrap_or_default();
            if is_ready(pod)
                && let Some(port) = target.in_pod(pod)
            {
                set.ready.push(PodTarget {
                    name: pod.name_any(),
                    uid: uid.clone(),
                    port,
                });
            }
            set.existing.insert(uid);
        }
        set.ready.sort_by(|a, b| a.name.cmp(&b.name));
        set
    }

    /// Spreads connections over the Ready pods in turn.
    pub(crate) fn pick(&self, turn: usize) -> Option<&PodTarget> {
        match self.ready.len() {
            0 => None,
            len => self.ready.get(turn % len),
        }
    }

    pub(crate) fn still_exists(&self, uid: &str) -> bool {
        self.existing.contains(uid)
    }
}

/// Ready per its condition, Running, and not being deleted (a terminating
/// pod takes no new connections even while it still reports Ready).
pub(crate) fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Retries a broken watch after 250 ms, doubling up to 4 s: after an API
/// server restart the forward should follow pods again within seconds,
/// not after kube's default of up to 30 s.
fn watch_backoff() -> ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(FIRST_RETRY)
        .with_max_delay(LONGEST_RETRY)
        .without_max_times()
        .into()
}

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(4);

/// The watch of the pods behind one mapping, as a handle: the watch task
/// runs until the handle is dropped or the forward stops.
pub(crate) struct PodWatch {
    pods: watch::Receiver<Arc<PodSet>>,
    first_listing: oneshot::Receiver<Result<(), watcher::Error>>,
    _stop: DropGuard,
}

impl PodWatch {
    /// Starts watching the pods that `selector` selects.
    pub(crate) fn start(
        tasks: &Tasks,
        api: Api<Pod>,
        selector: &Selector,
        target: TargetPort,
        component: String,
    ) -> Self {
        let (sender, pods) = watch::channel(Arc::new(PodSet::default()));
        let (synced, first_listing) = oneshot::channel();
        let config = watcher::Config::default().labels_from(selector);
        let stop = tasks.stop.child_token();
        let follow = Follow {
            target,
            component,
            sender,
            synced: Some(synced),
        };
        tasks.spawn_until(stop.clone(), follow.run(api, config));
        Self {
            pods,
            first_listing,
            _stop: stop.drop_guard(),
        }
    }

    /// Always holds the latest [`PodSet`].
    pub(crate) fn pods(&self) -> watch::Receiver<Arc<PodSet>> {
        self.pods.clone()
    }

    /// Whether the first full listing succeeded: a refusal then is fatal,
    /// later errors are retried.
    pub(crate) fn first_listing(&mut self) -> &mut oneshot::Receiver<Result<(), watcher::Error>> {
        &mut self.first_listing
    }
}

/// The watch task's state: where it publishes, and whom it owes the first
/// listing.
struct Follow {
    target: TargetPort,
    component: String,
    sender: watch::Sender<Arc<PodSet>>,
    synced: Option<oneshot::Sender<Result<(), watcher::Error>>>,
}

impl Follow {
    async fn run(mut self, api: Api<Pod>, config: watcher::Config) {
        let (store, writer) = reflector::store::<Pod>();
        // Only labels, spec and status are read; the field history is dropped.
        let pods = watcher::watcher(api, config).modify(|pod| pod.managed_fields_mut().clear());
        let events = reflector(writer, pods).backoff(watch_backoff());
        let mut events = std::pin::pin!(events);
        let component = &self.component;
        let mut published = false;
        let mut broken = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    if broken {
                        tracing::warn!("{component}: watching pods again");
                        broken = false;
                    }
                    let first_listing = matches!(event, Event::InitDone) && self.synced.is_some();
                    if first_listing || self.synced.is_none() {
                        let state = store.state();
                        let next =
                            PodSet::from_pods(state.iter().map(|p| p.as_ref()), &self.target);
                        // The first state is shown in the start-up table instead.
                        if published {
                            announce_change(component, &self.sender.borrow(), &next);
                        }
                        published = true;
                        self.sender.send_if_modified(|current| {
                            let changed = **current != next;
                            if changed {
                                *current = Arc::new(next);
                            }
                            changed
                        });
                    }
                    // Only now: whoever waits for the first listing reads the published set.
                    if first_listing && let Some(synced) = self.synced.take() {
                        let _ = synced.send(Ok(()));
                    }
                }
                Err(err) => {
                    if let Some(synced) = self.synced.take() {
                        let _ = synced.send(Err(err));
                        return;
                    }
                    if !broken {
                        tracing::warn!(
                            "{component}: lost the pod watch ({err}); retrying, connections keep using the pods known so far"
                        );
                        broken = true;
                    }
                }
            }
        }
    }
}

/// Says on stderr when a component loses its last Ready pod or gets one
/// back, so that a silent outage cannot happen.
fn announce_change(component: &str, before: &PodSet, after: &PodSet) {
    match (before.ready.is_empty(), after.ready.first()) {
        (false, None) => eprintln!(
            "{component}: no Ready pod left; new connections are refused until one is Ready"
        ),
        (true, Some(pod)) => eprintln!("{component}: pod {} is Ready; forwarding", pod.name),
        _ => {
            for pod in &after.ready {
                if !before.ready.iter().any(|p| p.uid == pod.uid) {
                    tracing::info!("{component}: pod {} is Ready", pod.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use kube::runtime::utils::Backoff;
    use std::collections::BTreeMap;

    fn pod(name: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "db".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("mysql".into()),
                        container_port: 3306,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn only_ready_pods_take_connections_but_all_existing_ones_are_known() {
        let pods = [pod("b", true), pod("a", true), pod("c", false)];
        let set = PodSet::from_pods(&pods, &TargetPort::Number(3306));
        let names: Vec<&str> = set.ready.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(set.still_exists("uid-c"));
        assert!(!set.still_exists("uid-gone"));
    }

    #[test]
    fn a_terminating_pod_takes_no_new_connections() {
        let mut terminating = pod("a", true);
        terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!is_ready(&terminating));
        let set = PodSet::from_pods([&terminating], &TargetPort::Number(3306));
        assert!(set.ready.is_empty());
        assert!(set.still_exists("uid-a"));
    }

    #[test]
    fn picks_go_round_the_ready_pods() {
        let pods = [pod("a", true), pod("b", true)];
        let set = PodSet::from_pods(&pods, &TargetPort::Number(3306));
        assert_eq!(set.pick(0).unwrap().name, "a");
        assert_eq!(set.pick(1).unwrap().name, "b");
        assert_eq!(set.pick(2).unwrap().name, "a");
        assert_eq!(PodSet::default().pick(0), None);
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let named = TargetPort::from_service_port(3306, Some(&IntOrString::String("mysql".into())));
        assert_eq!(named, TargetPort::Name("mysql".into()));
        assert_eq!(named.in_pod(&pod("a", true)), Some(3306));
        let missing = TargetPort::Name("http".into());
        assert_eq!(missing.in_pod(&pod("a", true)), None);
        let set = PodSet::from_pods([&pod("a", true)], &missing);
        assert!(
            set.ready.is_empty(),
            "a pod without the named port is unusable"
        );
    }

    #[test]
    fn target_port_defaults_to_the_service_port() {
        assert_eq!(
            TargetPort::from_service_port(6379, None),
            TargetPort::Number(6379)
        );
        assert_eq!(
            TargetPort::from_service_port(80, Some(&IntOrString::Int(8080))),
            TargetPort::Number(8080)
        );
    }

    #[test]
    fn selector_is_comma_separated() {
        let selector: BTreeMap<String, String> =
            [("app".into(), "db".into()), ("tier".into(), "data".into())].into();
        assert_eq!(
            Selector::from_iter(selector).to_string(),
            "app=db,tier=data"
        );
    }

    #[test]
    fn backoff_doubles_to_a_short_ceiling_and_resets() {
        let mut backoff = watch_backoff();
        let delays: Vec<Duration> = backoff.by_ref().take(6).collect();
        assert_eq!(delays[0], FIRST_RETRY);
        assert_eq!(delays[1], FIRST_RETRY * 2);
        assert_eq!(*delays.last().unwrap(), LONGEST_RETRY);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_RETRY));
    }
}
