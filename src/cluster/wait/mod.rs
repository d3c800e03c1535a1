//! Waiting for a stack to become Ready, with one progress bar per component,
//! and reporting the failures that will not fix themselves as soon as they
//! show. What counts as a failure, and how soon, is decided by the pure
//! functions of [`diagnose`]; this module polls the cluster for their input.

pub(crate) mod diagnose;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, LogParams};
use kube::{Api, Resource, ResourceExt};

use crate::cluster::{Cluster, Scope, nodes};
use crate::duration::humanize;
use crate::error::{Action, Error, Result};
use crate::spec::{DEV_COMPONENT, Spec};
use crate::{labels, progress};
use diagnose::{ClaimState, ClassLookup};
pub(crate) use diagnose::{Finding, Problem, When};

/// Polling starts fast (a small stack is often Ready within a second) and
/// backs off to [`POLL_MAX`] so that long waits cost the API server little.
const POLL_START: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);
const LOG_LINES: i64 = 10;

/// One component being waited for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub component: String,
    pub namespace: String,
}

/// The dev pod and every test-stack component.
pub(crate) fn targets(spec: &Spec) -> Vec<Target> {
    spec.components
        .iter()
        .map(|c| Target {
            component: c.name.clone(),
            namespace: spec.test_namespace.clone(),
        })
        .chain(std::iter::once(Target {
            component: DEV_COMPONENT.to_owned(),
            namespace: spec.dev_namespace.clone(),
        }))
        .collect()
}

/// A workload's rollout as `(ready, desired, done)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Rollout {
    pub ready: i32,
    pub desired: i32,
    pub done: bool,
}

pub(crate) fn deployment_rollout(d: &Deployment) -> Rollout {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &d.status else {
        return Rollout {
            desired,
            ..Default::default()
        };
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let done = current
        && status.updated_replicas.unwrap_or(0) >= desired
        && status.replicas.unwrap_or(0) == desired
        && ready >= desired;
    Rollout {
        ready,
        desired,
        done,
    }
}

pub(crate) fn statefulset_rollout(s: &StatefulSet) -> Rollout {
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &s.status else {
        return Rollout {
            desired,
            ..Default::default()
        };
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let current = status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
    let revision_done =
        status.update_revision.is_none() || status.current_revision == status.update_revision;
    let done = current
        && revision_done
        && status.updated_replicas.unwrap_or(0) >= desired
        && ready >= desired;
    Rollout {
        ready,
        desired,
        done,
    }
}

/// The pods of a workload's current template, by the label its controller
/// gives them; `None` while the controller has not caught up with the
/// latest change (its pods are then the old template's).
type Revision = Option<(&'static str, String)>;

/// A Deployment's current revision: the `pod-template-hash` of its
/// ReplicaSet with the same `deployment.kubernetes.io/revision`.
pub(crate) fn deployment_revision(d: &Deployment, sets: &[ReplicaSet]) -> Revision {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    if d.status.as_ref().and_then(|s| s.observed_generation) < d.metadata.generation {
        return None;
    }
    let revision = d.annotations().get(REVISION)?;
    let set = sets.iter().find(|rs| {
        rs.annotations().get(REVISION) == Some(revision)
            && rs
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == d.metadata.uid.as_ref())
    })?;
    let hash = set.labels().get("pod-template-hash")?;
    Some(("pod-template-hash", hash.clone()))
}

/// A StatefulSet's current revision: its `updateRevision`.
pub(crate) fn statefulset_revision(s: &StatefulSet) -> Revision {
    let status = s.status.as_ref()?;
    if status.observed_generation < s.metadata.generation {
        return None;
    }
    Some(("controller-revision-hash", status.update_revision.clone()?))
}

struct Snapshot {
    rollouts: BTreeMap<(String, String), Rollout>,
    /// Only pods of these revisions are diagnosed: right after an update the
    /// old pod may still show the failure the update fixes.
    revisions: BTreeMap<(String, String), Revision>,
    pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
    /// Read only while a claim is Pending; `None` when they cannot be read.
    classes: Option<Vec<StorageClass>>,
    /// Ready endpoints of each component's least-served Service; components
    /// without a Service, or whose slices cannot be read, have no entry.
    routed: BTreeMap<(String, String), usize>,
}

async fn snapshot(cluster: &Cluster, spec: &Spec) -> Result<Snapshot> {
    let selector = labels::stack_selector(&spec.name);
    let mut rollouts = BTreeMap::new();
    let mut revisions = BTreeMap::new();
    let mut pods = Vec::new();
    let mut claims = Vec::new();
    let mut routed = BTreeMap::new();
    for ns in spec.namespaces() {
        let scope = Scope::Namespace(ns.to_owned());
        let (served, lists) = tokio::join!(routed_endpoints(cluster, &scope, &selector), async {
            tokio::try_join!(
                cluster.list::<Deployment>(&scope, &selector),
                cluster.list::<StatefulSet>(&scope, &selector),
                cluster.list::<Pod>(&scope, &selector),
                cluster.list::<PersistentVolumeClaim>(&scope, &selector),
                cluster.list::<ReplicaSet>(&scope, &selector),
            )
        });
        let (deployments, statefulsets, pod_list, claim_list, sets) = lists?;
        for (component, ready) in served {
            routed.insert((ns.to_owned(), component), ready);
        }
        let key = |meta: &kube::api::ObjectMeta| {
            let component = meta
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::COMPONENT).cloned())
                .unwrap_or_default();
            (ns.to_owned(), component)
        };
        for d in &deployments {
            rollouts.insert(key(&d.metadata), deployment_rollout(d));
            revisions.insert(key(&d.metadata), deployment_revision(d, &sets));
        }
        for s in &statefulsets {
            rollouts.insert(key(&s.metadata), statefulset_rollout(s));
            revisions.insert(key(&s.metadata), statefulset_revision(s));
        }
        pods.extend(pod_list);
        claims.extend(claim_list);
    }
    let pending = claims
        .iter()
        .any(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"));
    let classes = if pending {
        cluster
            .list::<StorageClass>(&Scope::All, "")
            .await
            .map_err(|err| tracing::debug!("cannot list StorageClasses: {err}"))
            .ok()
    } else {
        None
    };
    Ok(Snapshot {
        rollouts,
        revisions,
        pods,
        claims,
        classes,
        routed,
    })
}

/// Ready endpoints per component, counted on its least-served Service.
/// A pod turns Ready a moment before its Service routes to it (the
/// EndpointSlice controller and then kube-proxy follow the pod's status), and
/// until then the dev pod's first connection to the name fails. Without
/// permission to list EndpointSlices the wait goes by the pods alone.
async fn routed_endpoints(
    cluster: &Cluster,
    scope: &Scope,
    selector: &str,
) -> BTreeMap<String, usize> {
    let lists = tokio::try_join!(
        cluster.list::<Service>(scope, selector),
        cluster.list::<EndpointSlice>(scope, selector),
    );
    let (services, slices) = match lists {
        Ok(lists) => lists,
        Err(err) => {
            tracing::debug!("cannot list Services or EndpointSlices: {err}");
            return BTreeMap::new();
        }
    };
    least_served(&services, &slices)
}

fn least_served(services: &[Service], slices: &[EndpointSlice]) -> BTreeMap<String, usize> {
    let mut ready_by_service: BTreeMap<&str, usize> = BTreeMap::new();
    for slice in slices {
        let Some(service) = slice.labels().get(SERVICE_NAME_LABEL) else {
            continue;
        };
        // An unset `ready` means unknown, which consumers treat as ready.
        let ready = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .count();
        *ready_by_service.entry(service.as_str()).or_default() += ready;
    }
    let mut routed: BTreeMap<String, usize> = BTreeMap::new();
    for service in services {
        let Some(component) = component_of(service.labels()) else {
            continue;
        };
        let ready = ready_by_service
            .get(service.name_any().as_str())
            .copied()
            .unwrap_or(0);
        routed
            .entry(component.to_owned())
            .and_modify(|least| *least = (*least).min(ready))
            .or_insert(ready);
    }
    routed
}

/// The label the EndpointSlice controller puts on a Service's slices.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn component_of(meta_labels: &BTreeMap<String, String>) -> Option<&str> {
    meta_labels.get(labels::COMPONENT).map(String::as_str)
}

/// Waits until every component is Ready, failing early on a [`Problem`].
/// One `--timeout` shared by every wait of an `up` (its dependency waves and
/// the final one), so an error names what the user asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    pub(crate) fn after(total: Duration) -> Self {
        Deadline {
            at: Instant::now() + total,
            total,
        }
    }

    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

pub(crate) async fn wait_ready(cluster: &Cluster, spec: &Spec, deadline: Deadline) -> Result<()> {
    wait_for(cluster, spec, targets(spec), deadline).await
}

/// Waits until the named components (test stack or dev pod) are Ready: what
/// `up` does before it starts the components that depend on them.
pub(crate) async fn wait_components(
    cluster: &Cluster,
    spec: &Spec,
    names: &[String],
    deadline: Deadline,
) -> Result<()> {
    let wanted = targets(spec)
        .into_iter()
        .filter(|t| names.contains(&t.component))
        .collect();
    wait_for(cluster, spec, wanted, deadline).await
}

async fn wait_for(
    cluster: &Cluster,
    spec: &Spec,
    targets: Vec<Target>,
    deadline: Deadline,
) -> Result<()> {
    let components: Vec<String> = targets.iter().map(|t| t.component.clone()).collect();
    let (multi, bars) = progress::lines(&components);
    let result = poll_until_ready(cluster, spec, &targets, &bars, deadline).await;
    for bar in &bars {
        bar.finish_and_clear();
    }
    multi.clear().ok();
    result
}

async fn poll_until_ready(
    cluster: &Cluster,
    spec: &Spec,
    targets: &[Target],
    bars: &[ProgressBar],
    deadline: Deadline,
) -> Result<()> {
    let mut first_seen: BTreeMap<(String, &'static str), Instant> = BTreeMap::new();
    let mut poll = POLL_START;
    loop {
        let snap = snapshot(cluster, spec).await?;
        let mut all_ready = true;
        // Every current problem, and whether one of them is due for reporting.
        let mut problems: Vec<(String, Problem)> = Vec::new();
        let mut due = false;
        let mut waiting_for: Vec<String> = Vec::new();
        for (target, bar) in targets.iter().zip(bars) {
            let key = (target.namespace.clone(), target.component.clone());
            let rollout = snap.rollouts.get(&key).copied().unwrap_or_default();
            bar.set_length(rollout.desired.max(1) as u64);
            bar.set_position(rollout.ready.max(0) as u64);
            let serving = snap
                .routed
                .get(&key)
                .is_none_or(|&ready| ready >= rollout.desired.max(0) as usize);
            if rollout.done && serving {
                bar.set_message("Ready");
                bar.disable_steady_tick();
                continue;
            }
            all_ready = false;
            if rollout.done {
                bar.set_message("Ready; waiting for its Service to route to it");
                waiting_for.push(format!("{} (its Service's endpoints)", target.component));
                continue;
            }
            let (finding, note) = component_state(cluster, &snap, target).await;
            let now = Instant::now();
            match finding {
                Some(Finding { problem, when }) => {
                    let seen = *first_seen
                        .entry((target.component.clone(), diagnose::problem_key(&problem)))
                        .or_insert(now);
                    bar.set_message(problem.to_string());
                    due |= match when {
                        When::Now => true,
                        When::After(grace) => now.duration_since(seen) >= grace,
                    };
                    problems.push((target.component.clone(), problem));
                }
                None => {
                    bar.set_message(note.unwrap_or_else(|| pod_phase_summary(&snap.pods, target)))
                }
            }
            waiting_for.push(format!(
                "{} ({}/{} ready)",
                target.component, rollout.ready, rollout.desired
            ));
        }
        if all_ready {
            return Ok(());
        }
        if due {
            for bar in bars {
                bar.finish_and_clear();
            }
            return Err(report(problems));
        }
        if deadline.passed() {
            return Err(Error::Other(format!(
                "timed out after {} waiting for {} (--timeout)",
                humanize(deadline.total),
                waiting_for.join(", ")
            )));
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(POLL_MAX);
    }
}

/// Prints every failure with its details to stderr and returns the one-line error.
fn report(failures: Vec<(String, Problem)>) -> Error {
    for (component, problem) in &failures {
        eprintln!("{component}: {problem}");
        if let Problem::CrashLoop { log_lines, .. } = problem
            && !log_lines.is_empty()
        {
            eprintln!("{component}: last log lines:");
            for line in log_lines {
                eprintln!("  | {line}");
            }
        }
    }
    let (component, problem) = &failures[0];
    let more = match failures.len() {
        1 => String::new(),
        n => format!(
            " (and {} more problem{})",
            n - 1,
            if n > 2 { "s" } else { "" }
        ),
    };
    Error::Other(format!("{component} is not ready: {problem}{more}"))
}

fn target_pods<'a>(pods: &'a [Pod], target: &'a Target) -> impl Iterator<Item = &'a Pod> + 'a {
    pods.iter().filter(move |p| {
        p.metadata.namespace.as_deref() == Some(target.namespace.as_str())
            && component_of(p.labels()) == Some(target.component.as_str())
            && p.metadata.deletion_timestamp.is_none()
    })
}

fn pod_phase_summary(pods: &[Pod], target: &Target) -> String {
    let mut states: Vec<String> = target_pods(pods, target)
        .map(|p| {
            p.status
                .as_ref()
                .and_then(|s| {
                    s.container_statuses
                        .iter()
                        .flatten()
                        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                        .or_else(|| s.phase.clone())
                })
                .unwrap_or_else(|| "Pending".to_owned())
        })
        .collect();
    states.dedup();
    if states.is_empty() {
        "waiting for pods".to_owned()
    } else {
        states.join(", ")
    }
}

/// The component's problem, if it has one, else what it is waiting for
/// (for the progress bar): its claims first, since a pod cannot start
/// before its volume exists, then its pods.
async fn component_state(
    cluster: &Cluster,
    snap: &Snapshot,
    target: &Target,
) -> (Option<Finding>, Option<String>) {
    let mut note = None;
    let in_target = |meta: &kube::api::ObjectMeta| {
        meta.namespace.as_deref() == Some(target.namespace.as_str())
            && meta.labels.as_ref().and_then(|l| component_of(l)) == Some(target.component.as_str())
    };
    for claim in snap.claims.iter().filter(|c| in_target(&c.metadata)) {
        if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Pending") {
            continue;
        }
        let class_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref());
        let lookup = match (&snap.classes, class_name) {
            (None, _) | (_, None) => ClassLookup::Unknown,
            (Some(classes), Some(name)) => classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name))
                .map_or(ClassLookup::Missing, ClassLookup::Found),
        };
        let events = object_events(cluster, claim).await;
        match diagnose::claim_state(claim, lookup, &events) {
            ClaimState::Bound => {}
            ClaimState::Progress(text) => note = Some(text),
            ClaimState::Problem(finding) => return (Some(finding), None),
        }
    }
    // Newest first, should a revision have several pods.
    let revision = snap
        .revisions
        .get(&(target.namespace.clone(), target.component.clone()))
        .cloned()
        .flatten();
    let mut pods: Vec<&Pod> = target_pods(&snap.pods, target)
        .filter(|pod| {
            revision
                .as_ref()
                .is_some_and(|(label, value)| pod.labels().get(*label) == Some(value))
        })
        .collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p.metadata.creation_timestamp.clone()));
    for pod in pods {
        let events = if is_starting(pod) {
            object_events(cluster, pod).await
        } else {
            Vec::new()
        };
        match diagnose::pod_finding(pod, &events) {
            Some(finding) if note.is_some() && diagnose::waits_for_claims(&finding.problem) => {}
            Some(Finding {
                problem:
                    Problem::CrashLoop {
                        container, detail, ..
                    },
                when,
            }) => {
                let problem = explain_crash(cluster, pod, container, detail).await;
                return (Some(Finding { problem, when }), None);
            }
            Some(finding) => return (Some(finding), None),
            None => {}
        }
    }
    (None, note)
}

/// A pod on a node whose containers do not all run yet: the kubelet says
/// why in its events (pulls, mounts, sandboxes).
fn is_starting(pod: &Pod) -> bool {
    let on_node = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    on_node
        && (statuses.is_empty()
            || statuses
                .iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.waiting.is_some())))
}

/// The events of one object, of this very object (its UID): a StatefulSet's
/// replacement pod and a re-created claim keep their names, but not the
/// events of their predecessors. Unreadable events (RBAC) only cost detail.
pub(crate) async fn object_events<K>(cluster: &Cluster, object: &K) -> Vec<Event>
where
    K: Resource<DynamicType = ()>,
{
    let meta = object.meta();
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let mut fields = format!(
        "involvedObject.kind={},involvedObject.name={}",
        K::kind(&()),
        meta.name.as_deref().unwrap_or_default()
    );
    if let Some(uid) = &meta.uid {
        fields += &format!(",involvedObject.uid={uid}");
    }
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
    match cluster
        .call(
            Action::new("list", "events").in_namespace(Some(namespace)),
            api.list(&ListParams::default().fields(&fields)),
        )
        .await
    {
        Ok(list) => list.items,
        Err(err) => {
            tracing::debug!("cannot read the events of {fields}: {err}");
            Vec::new()
        }
    }
}

/// Reads the crashed container's last log lines and tells an architecture
/// mismatch (`exec format error`) from an ordinary crash.
async fn explain_crash(cluster: &Cluster, pod: &Pod, container: String, detail: String) -> Problem {
    let namespace = pod.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    // The crashed instance is the previous one while the kubelet waits to
    // restart it (CrashLoopBackOff), the current one while it shows as
    // terminated; the other is tried when the first has no log.
    let terminated_now = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .find(|c| c.name == container)
        .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()));
    let action = || {
        Action::new("get", "pods/log")
            .named(pod.name_any())
            .in_namespace(Some(&namespace))
    };
    let mut logs = String::new();
    for previous in [!terminated_now, terminated_now] {
        let params = LogParams {
            container: Some(container.clone()),
            previous,
            tail_lines: Some(LOG_LINES),
            ..Default::default()
        };
        match cluster
            .call(action(), pods.logs(&pod.name_any(), &params))
            .await
        {
            // A kubelet that no longer has the file says so in the body.
            Ok(text) if !text.starts_with("unable to retrieve container logs") => {
                logs = text;
                break;
            }
            _ => {}
        }
    }
    if diagnose::is_exec_format_error(&detail) || diagnose::is_exec_format_error(&logs) {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let image = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .find(|c| c.name == container)
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let nodes = cluster.api::<Node>(&Scope::All);
        let node_arch = cluster
            .call(
                cluster.action::<Node>("get", &Scope::All).named(&node),
                nodes.get(&node),
            )
            .await
            .ok()
            .map(|n| nodes::architecture(&n));
        return Problem::ExecFormat {
            image,
            node,
            node_arch,
        };
    }
    Problem::CrashLoop {
        container,
        detail,
        log_lines: logs.lines().map(str::to_owned).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_served_once_each_of_its_services_routes_to_it() {
        let service = |name: &str, component: &str| -> Service {
            serde_json::from_value(serde_json::json!({"metadata": {
                "name": name, "labels": {labels::COMPONENT: component}}}))
            .unwrap()
        };
        let slice = |service: &str, ready: &[Option<bool>]| -> EndpointSlice {
            let endpoints: Vec<_> = ready
                .iter()
                .map(|r| serde_json::json!({"addresses": ["10.0.0.1"], "conditions": {"ready": r}}))
                .collect();
            serde_json::from_value(serde_json::json!({
                "addressType": "IPv4",
                "metadata": {"labels": {SERVICE_NAME_LABEL: service}},
                "endpoints": endpoints,
            }))
            .unwrap()
        };
        let services = [
            service("mysql", "mysql"),
            service("web", "web"),
            service("web-admin", "web"),
            service("mailpit", "mailpit"),
        ];
        let slices = [
            // Two slices of one Service add up; an unknown `ready` counts.
            slice("mysql", &[Some(true)]),
            slice("mysql", &[None, Some(false)]),
            slice("web", &[Some(true)]),
            slice("web-admin", &[Some(false)]),
        ];
        let routed = least_served(&services, &slices);
        assert_eq!(routed.get("mysql"), Some(&2));
        // The least-served Service decides, and one with no slice yet has none.
        assert_eq!(routed.get("web"), Some(&0));
        assert_eq!(routed.get("mailpit"), Some(&0));
        assert_eq!(routed.get("redis"), None);
    }

    #[test]
    fn only_the_current_revision_is_diagnosed() {
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "d1", "generation": 3,
                         "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "status": {"observedGeneration": 3}
        }))
        .unwrap();
        let set = |revision: &str, hash: &str| -> ReplicaSet {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "annotations": {"deployment.kubernetes.io/revision": revision},
                    "labels": {"pod-template-hash": hash},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                         "name": "dev", "uid": "d1"}]
                }
            }))
            .unwrap()
        };
        let sets = [set("1", "old"), set("2", "new")];
        assert_eq!(
            deployment_revision(&d, &sets),
            Some(("pod-template-hash", "new".to_owned()))
        );
        // The controller has not seen the latest change yet.
        d.metadata.generation = Some(4);
        assert_eq!(deployment_revision(&d, &sets), None);

        let s: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"generation": 2},
            "status": {"observedGeneration": 2, "replicas": 1, "updateRevision": "redis-abc"}
        }))
        .unwrap();
        assert_eq!(
            statefulset_revision(&s),
            Some(("controller-revision-hash", "redis-abc".to_owned()))
        );
    }

    #[test]
    fn rollouts_wait_for_the_new_generation() {
        let mut d = Deployment::default();
        d.metadata.generation = Some(2);
        d.spec = Some(Default::default());
        d.spec.as_mut().unwrap().replicas = Some(1);
        d.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(1),
            ready_replicas: Some(1),
            updated_replicas: Some(1),
            ..Default::default()
        });
        assert!(!deployment_rollout(&d).done, "status of the old generation");
        d.status.as_mut().unwrap().observed_generation = Some(2);
        assert!(deployment_rollout(&d).done);
        d.status.as_mut().unwrap().replicas = Some(2);
        assert!(!deployment_rollout(&d).done, "an old pod is still around");
    }
}
