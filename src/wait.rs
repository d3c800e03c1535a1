//! Waiting for a stack to become Ready, with one progress bar per component,
//! and reporting the failures that will not fix themselves as soon as they
//! show (image pulls, crash loops, wrong architecture, scheduling, storage).

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};

use crate::client::Cluster;
use crate::error::{Action, Error, Result, humanize};
use crate::labels;
use crate::spec::{DEV_COMPONENT, Spec};

/// How long a condition that can clear by itself (a pod waiting for a node
/// or for its volume to be provisioned) may last before it is reported.
pub const GRACE: Duration = Duration::from_secs(15);
/// Polling starts fast (a small stack is often Ready within a second) and
/// backs off to [`POLL_MAX`] so that long waits cost the API server little.
const POLL_START: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);
const LOG_LINES: i64 = 10;

/// Something that keeps a component from becoming Ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    ImagePull {
        image: String,
        reason: String,
        message: String,
    },
    CrashLoop {
        container: String,
        detail: String,
        log_lines: Vec<String>,
    },
    ExecFormat {
        image: String,
        node: String,
        node_arch: Option<String>,
    },
    Unschedulable {
        message: String,
    },
    ClaimPending {
        claim: String,
        class: Option<String>,
    },
    Config {
        reason: String,
        message: String,
    },
}

impl Problem {
    /// Problems that may clear by themselves are reported after [`GRACE`].
    fn needs_grace(&self) -> bool {
        matches!(
            self,
            Problem::Unschedulable { .. } | Problem::ClaimPending { .. } | Problem::Config { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ImagePull {
                image,
                reason,
                message,
            } => {
                write!(f, "cannot pull image \"{image}\" ({reason})")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Problem::CrashLoop {
                container, detail, ..
            } => {
                write!(
                    f,
                    "container \"{container}\" keeps crashing (CrashLoopBackOff)"
                )?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Problem::ExecFormat {
                image,
                node,
                node_arch,
            } => write!(
                f,
                "image \"{image}\" does not run on node \"{node}\"{} (exec format error): \
                 it was built for another CPU architecture; use a multi-arch image or set \
                 spec.targetArch / --arch",
                node_arch
                    .as_ref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            ),
            Problem::Unschedulable { message } => write!(f, "cannot be scheduled: {message}"),
            Problem::ClaimPending { claim, class } => write!(
                f,
                "PersistentVolumeClaim \"{claim}\" is still Pending{}: no volume was provisioned \
                 (check the StorageClass, or set storage.className)",
                class
                    .as_ref()
                    .map(|c| format!(" (StorageClass \"{c}\")"))
                    .unwrap_or_default()
            ),
            Problem::Config { reason, message } => write!(f, "{reason}: {message}"),
        }
    }
}

/// What a pod shows on its own, before logs and nodes are consulted.
pub fn pod_problem(pod: &Pod) -> Option<Problem> {
    let status = pod.status.as_ref()?;
    let images: BTreeMap<&str, &str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
        .collect();
    for container in status.container_statuses.iter().flatten() {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        let image = images
            .get(container.name.as_str())
            .map(|i| i.to_string())
            .unwrap_or_else(|| container.image.clone());
        match reason.as_str() {
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
                return Some(Problem::ImagePull {
                    image,
                    reason,
                    message,
                });
            }
            "CrashLoopBackOff" | "RunContainerError" | "CreateContainerError" => {
                let last = container
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref());
                let detail = match last {
                    Some(t) => {
                        let mut detail = format!("last exit code {}", t.exit_code);
                        if let Some(msg) = t.message.as_deref().filter(|m| !m.is_empty()) {
                            detail += &format!(", {}", msg.trim());
                        }
                        detail
                    }
                    None => message,
                };
                return Some(Problem::CrashLoop {
                    container: container.name.clone(),
                    detail,
                    log_lines: Vec::new(),
                });
            }
            "CreateContainerConfigError" => return Some(Problem::Config { reason, message }),
            _ => {}
        }
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .map(|c| Problem::Unschedulable {
            message: c.message.clone().unwrap_or_default(),
        })
}

/// True when the text (a termination message or log lines) shows the kernel
/// refusing a binary built for another architecture.
pub fn is_exec_format_error(text: &str) -> bool {
    text.contains("exec format error")
}

/// One component being waited for.
#[derive(Debug, Clone)]
pub struct Target {
    pub component: String,
    pub namespace: String,
}

/// The dev pod and every test-stack component.
pub fn targets(spec: &Spec) -> Vec<Target> {
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
pub struct Rollout {
    pub ready: i32,
    pub desired: i32,
    pub done: bool,
}

pub fn deployment_rollout(d: &Deployment) -> Rollout {
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

pub fn statefulset_rollout(s: &StatefulSet) -> Rollout {
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

struct Snapshot {
    rollouts: BTreeMap<(String, String), Rollout>,
    pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
}

async fn snapshot(cluster: &Cluster, spec: &Spec) -> Result<Snapshot> {
    let params = ListParams::default().labels(&labels::stack_selector(&spec.name));
    let mut rollouts = BTreeMap::new();
    let mut pods = Vec::new();
    let mut claims = Vec::new();
    for ns in spec.namespaces() {
        let client = &cluster.client;
        let action = |resource: &str| Action::new("list", resource).in_namespace(Some(ns));
        let deployments_api = Api::<Deployment>::namespaced(client.clone(), ns);
        let statefulsets_api = Api::<StatefulSet>::namespaced(client.clone(), ns);
        let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
        let claims_api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
        let (deployments, statefulsets, pod_list, claim_list) = tokio::try_join!(
            cluster.call(action("deployments"), deployments_api.list(&params)),
            cluster.call(action("statefulsets"), statefulsets_api.list(&params)),
            cluster.call(action("pods"), pods_api.list(&params)),
            cluster.call(action("persistentvolumeclaims"), claims_api.list(&params)),
        )?;
        let key = |meta: &kube::api::ObjectMeta| {
            let component = meta
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::COMPONENT).cloned())
                .unwrap_or_default();
            (ns.to_owned(), component)
        };
        for d in &deployments.items {
            rollouts.insert(key(&d.metadata), deployment_rollout(d));
        }
        for s in &statefulsets.items {
            rollouts.insert(key(&s.metadata), statefulset_rollout(s));
        }
        pods.extend(pod_list.items);
        claims.extend(claim_list.items);
    }
    Ok(Snapshot {
        rollouts,
        pods,
        claims,
    })
}

fn component_of(meta_labels: &BTreeMap<String, String>) -> Option<&str> {
    meta_labels.get(labels::COMPONENT).map(String::as_str)
}

/// Waits until every component is Ready, failing early on a [`Problem`].
pub async fn wait_ready(cluster: &Cluster, spec: &Spec, timeout: Duration) -> Result<()> {
    wait_for(cluster, spec, targets(spec), timeout).await
}

/// Waits until the named components (test stack or dev pod) are Ready: what
/// `up` does before it starts the components that depend on them.
pub async fn wait_components(
    cluster: &Cluster,
    spec: &Spec,
    names: &[String],
    timeout: Duration,
) -> Result<()> {
    let wanted = targets(spec)
        .into_iter()
        .filter(|t| names.contains(&t.component))
        .collect();
    wait_for(cluster, spec, wanted, timeout).await
}

async fn wait_for(
    cluster: &Cluster,
    spec: &Spec,
    targets: Vec<Target>,
    timeout: Duration,
) -> Result<()> {
    let multi = MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let width = targets.iter().map(|t| t.component.len()).max().unwrap_or(0);
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {{prefix:{width}}} {{pos}}/{{len}} {{msg}}"
    ))
    .expect("valid progress template");
    let bars: Vec<ProgressBar> = targets
        .iter()
        .map(|t| {
            let bar = multi.add(ProgressBar::new(1).with_style(style.clone()));
            bar.set_prefix(t.component.clone());
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
        .collect();
    let result = poll_until_ready(cluster, spec, &targets, &bars, timeout).await;
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
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let mut first_seen: BTreeMap<(String, String), Instant> = BTreeMap::new();
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
            if rollout.done {
                bar.set_message("Ready");
                bar.disable_steady_tick();
                continue;
            }
            all_ready = false;
            let problem = component_problem(cluster, &snap, target).await;
            let now = Instant::now();
            match problem {
                Some(problem) => {
                    let seen = *first_seen
                        .entry((target.component.clone(), problem_key(&problem)))
                        .or_insert(now);
                    bar.set_message(problem.to_string());
                    due |= !problem.needs_grace() || now.duration_since(seen) >= GRACE;
                    problems.push((target.component.clone(), problem));
                }
                None => bar.set_message(pod_phase_summary(&snap.pods, target)),
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
        if started.elapsed() >= timeout {
            return Err(Error::Other(format!(
                "timed out after {} waiting for {} (--timeout)",
                humanize(timeout),
                waiting_for.join(", ")
            )));
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(POLL_MAX);
    }
}

fn problem_key(problem: &Problem) -> String {
    match problem {
        Problem::ImagePull { .. } => "image",
        Problem::CrashLoop { .. } | Problem::ExecFormat { .. } => "crash",
        Problem::Unschedulable { .. } => "schedule",
        Problem::ClaimPending { .. } => "claim",
        Problem::Config { .. } => "config",
    }
    .to_owned()
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

async fn component_problem(cluster: &Cluster, snap: &Snapshot, target: &Target) -> Option<Problem> {
    for claim in &snap.claims {
        if claim.metadata.namespace.as_deref() == Some(target.namespace.as_str())
            && component_of(claim.labels()) == Some(target.component.as_str())
            && claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
        {
            return Some(Problem::ClaimPending {
                claim: claim.name_any(),
                class: claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.clone()),
            });
        }
    }
    for pod in target_pods(&snap.pods, target) {
        match pod_problem(pod) {
            Some(Problem::CrashLoop {
                container, detail, ..
            }) => {
                return Some(explain_crash(cluster, pod, container, detail).await);
            }
            Some(problem) => return Some(problem),
            None => {}
        }
    }
    None
}

/// Reads the crashed container's last log lines and tells an architecture
/// mismatch (`exec format error`) from an ordinary crash.
async fn explain_crash(cluster: &Cluster, pod: &Pod, container: String, detail: String) -> Problem {
    let namespace = pod.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    let mut params = LogParams {
        container: Some(container.clone()),
        previous: true,
        tail_lines: Some(LOG_LINES),
        ..Default::default()
    };
    let action = || {
        Action::new("get", "pods/log")
            .named(pod.name_any())
            .in_namespace(Some(&namespace))
    };
    let logs = match cluster
        .call(action(), pods.logs(&pod.name_any(), &params))
        .await
    {
        Ok(logs) => logs,
        Err(_) => {
            params.previous = false;
            cluster
                .call(action(), pods.logs(&pod.name_any(), &params))
                .await
                .unwrap_or_default()
        }
    };
    if is_exec_format_error(&detail) || is_exec_format_error(&logs) {
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
        let nodes: Api<Node> = Api::all(cluster.client.clone());
        let node_arch = cluster
            .call(Action::new("get", "nodes").named(&node), nodes.get(&node))
            .await
            .ok()
            .map(|n| crate::commands::status::node_architecture(&n));
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
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, PodCondition, PodSpec, PodStatus,
    };

    fn pod_with(waiting: Option<(&str, &str)>, terminated_message: Option<&str>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "mysql".into(),
                    image: Some("mysql:8.4".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "mysql".into(),
                    image: "docker.io/library/mysql:8.4".into(),
                    state: waiting.map(|(reason, message)| ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some(message.into()),
                        }),
                        ..Default::default()
                    }),
                    last_state: terminated_message.map(|m| ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: 1,
                            message: Some(m.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn image_pull_failures_name_the_image() {
        let problem = pod_problem(&pod_with(
            Some(("ImagePullBackOff", "Back-off pulling image")),
            None,
        ))
        .unwrap();
        assert_eq!(
            problem.to_string(),
            "cannot pull image \"mysql:8.4\" (ImagePullBackOff): Back-off pulling image"
        );
        assert!(!problem.needs_grace());
    }

    #[test]
    fn crash_loops_carry_the_last_exit() {
        let problem = pod_problem(&pod_with(
            Some(("CrashLoopBackOff", "back-off 10s")),
            Some("exec /usr/local/bin/docker-entrypoint.sh: exec format error"),
        ))
        .unwrap();
        let Problem::CrashLoop { detail, .. } = &problem else {
            panic!("{problem:?}")
        };
        assert!(is_exec_format_error(detail));
        assert!(problem.to_string().starts_with(
            "container \"mysql\" keeps crashing (CrashLoopBackOff): last exit code 1"
        ));
    }

    #[test]
    fn running_pods_have_no_problem() {
        assert_eq!(pod_problem(&pod_with(None, None)), None);
        assert_eq!(
            pod_problem(&pod_with(Some(("ContainerCreating", "")), None)),
            None
        );
    }

    #[test]
    fn unschedulable_pods_report_the_scheduler_message_after_grace() {
        let mut pod = pod_with(None, None);
        pod.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some(
                "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
                    .into(),
            ),
            ..Default::default()
        }]);
        let problem = pod_problem(&pod).unwrap();
        assert!(problem.needs_grace());
        assert!(
            problem
                .to_string()
                .contains("didn't match Pod's node affinity")
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
