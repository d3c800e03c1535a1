//! What keeps a component from becoming Ready, and when to say so, read only
//! from what the API server shows: pod and container statuses, the Events of
//! the pods and their claims, and the claims' StorageClass.
//!
//! Pure functions: a real kubelet, scheduler and provisioner write these
//! objects in a particular way (a first `ErrImagePull` before the back-off, a
//! `ContainerCreating` pod whose only trace of a bad hostPath is a
//! `FailedMount` event, a `WaitForFirstConsumer` claim that is Pending until
//! its pod is scheduled), and each such case is a unit test here.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::jiff::Timestamp;

/// How long a condition that can clear by itself (a pod waiting for a node,
/// a first failed pull, a sandbox the runtime retries) may last before it is
/// reported.
pub(crate) const GRACE: Duration = Duration::from_secs(15);
/// Pulls that failed for a reason that passes (a registry's rate limit, a
/// timeout): the kubelet retries after 10 s, 20 s, 40 s, so a minute covers
/// two retries before `up` gives up.
pub(crate) const PULL_GRACE: Duration = Duration::from_secs(60);
/// How long a claim may wait for a provisioner that has not started on it,
/// or retry after one failed attempt. A provisioner at work (its
/// `Provisioning` event) is waited for until `--timeout`.
pub(crate) const PROVISIONER_GRACE: Duration = Duration::from_secs(60);

/// When a [`Problem`] is reported: at once, or once it has lasted this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Now,
    After(Duration),
}

/// A problem and when it becomes worth failing `up` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub problem: Problem,
    pub when: When,
}

impl Finding {
    fn now(problem: Problem) -> Self {
        Self {
            problem,
            when: When::Now,
        }
    }

    fn after(grace: Duration, problem: Problem) -> Self {
        Self {
            problem,
            when: When::After(grace),
        }
    }
}

/// Something that keeps a component from becoming Ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    ImagePull {
        image: String,
        reason: String,
        message: String,
        /// The pull error from the pod's `Failed` event, when the status only
        /// says "Back-off pulling image".
        last_error: Option<String>,
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
    /// A volume the kubelet cannot mount (the pod stays in ContainerCreating).
    Mount {
        volume: Option<String>,
        node: Option<String>,
        /// The hostPath of that volume, when it is one.
        host_path: Option<String>,
        message: String,
    },
    /// The runtime cannot create the pod's sandbox (network, pause image).
    Sandbox {
        node: Option<String>,
        message: String,
    },
    ClaimPending {
        claim: String,
        class: Option<String>,
        cause: ClaimCause,
    },
    Config {
        reason: String,
        message: String,
    },
}

/// Why a claim is still Pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimCause {
    /// Nothing says a volume is on its way.
    NotProvisioned,
    /// The claim names a StorageClass the cluster does not have.
    ClassMissing,
    /// The provisioner tried and failed (its `ProvisioningFailed` event).
    ProvisioningFailed(String),
    /// The PV controller waits for an external provisioner that never
    /// started on the claim (only `ExternalProvisioning` events).
    NoProvisioner(Option<String>),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ImagePull {
                image,
                reason,
                message,
                last_error,
            } => {
                write!(f, "cannot pull image \"{image}\" ({reason})")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                if let Some(last) = last_error.as_deref().filter(|l| !message.contains(*l)) {
                    write!(f, "; last error: {last}")?;
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
            Problem::Mount {
                volume,
                node,
                host_path,
                message,
            } => {
                write!(f, "cannot mount volume")?;
                if let Some(volume) = volume {
                    write!(f, " \"{volume}\"")?;
                }
                if let Some(node) = node {
                    write!(f, " on node \"{node}\"")?;
                }
                write!(f, " (FailedMount): {message}")?;
                if let Some(path) = host_path {
                    write!(
                        f,
                        " ({path} is a hostPath: it must exist on that node, not only on your \
                         machine; pin the dev pod to the node that has it with --code-path-node)"
                    )?;
                }
                Ok(())
            }
            Problem::Sandbox { node, message } => {
                write!(f, "cannot create the pod's sandbox")?;
                if let Some(node) = node {
                    write!(f, " on node \"{node}\"")?;
                }
                write!(f, " (FailedCreatePodSandBox): {message}")
            }
            Problem::ClaimPending {
                claim,
                class,
                cause,
            } => {
                write!(f, "PersistentVolumeClaim \"{claim}\" is still Pending")?;
                if let Some(class) = class {
                    write!(f, " (StorageClass \"{class}\")")?;
                }
                match cause {
                    ClaimCause::NotProvisioned => write!(
                        f,
                        ": no volume was provisioned (check the StorageClass, or set storage.className)"
                    ),
                    ClaimCause::ClassMissing => write!(
                        f,
                        ": the StorageClass does not exist (set storage.className to one of `kubectl get storageclass`)"
                    ),
                    ClaimCause::ProvisioningFailed(message) => {
                        write!(f, ": provisioning failed: {message}")
                    }
                    ClaimCause::NoProvisioner(provisioner) => write!(
                        f,
                        ": no provisioner has started on it{} (is it running?)",
                        provisioner
                            .as_ref()
                            .map(|p| format!("; the class needs \"{p}\""))
                            .unwrap_or_default()
                    ),
                }
            }
            Problem::Config { reason, message } => write!(f, "{reason}: {message}"),
        }
    }
}

/// Groups problems that are one condition seen at different moments (a pull
/// first failing, then backing off), so the grace counts from the first.
pub(crate) fn problem_key(problem: &Problem) -> &'static str {
    match problem {
        Problem::ImagePull { .. } => "image",
        Problem::CrashLoop { .. } | Problem::ExecFormat { .. } => "crash",
        Problem::Unschedulable { .. } => "schedule",
        Problem::Mount { .. } | Problem::Sandbox { .. } => "create",
        Problem::ClaimPending { .. } => "claim",
        Problem::Config { .. } => "config",
    }
}

/// True when the text (a termination message or log lines) shows the kernel
/// refusing a binary built for another architecture.
pub(crate) fn is_exec_format_error(text: &str) -> bool {
    text.contains("exec format error")
}

/// How many times an event happened: `series.count` for events written
/// through events.k8s.io (the scheduler), `count` for the core API's
/// recorder (kubelet, controllers, provisioners).
fn occurrences(event: &Event) -> i32 {
    event
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(event.count)
        .unwrap_or(1)
        .max(1)
}

/// When an event last happened, whichever API wrote it.
fn last_seen(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
}

/// The events with this reason, newest first.
fn with_reason<'a>(events: &'a [Event], reasons: &[&str]) -> Vec<&'a Event> {
    let mut found: Vec<&Event> = events
        .iter()
        .filter(|e| e.reason.as_deref().is_some_and(|r| reasons.contains(&r)))
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(last_seen(e)));
    found
}

fn message_of(event: &Event) -> String {
    event
        .message
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Pull errors that no retry fixes: the image or tag does not exist, the
/// registry refuses the credentials, the image has no variant for the node.
fn pull_error_is_final(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "not found",
        "manifest unknown",
        "name unknown",
        "unauthorized",
        "denied",
        "no match for platform",
        "invalid reference format",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Pull errors that pass by themselves: rate limits, timeouts, a registry
/// that is briefly unavailable.
fn pull_error_is_transient(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "toomanyrequests",
        "too many requests",
        "rate limit",
        "timeout",
        "timed out",
        "connection reset",
        "connection refused",
        "temporary failure",
        "service unavailable",
        "bad gateway",
        "unexpected eof",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// What a pod shows: its container statuses first (pulls, crashes,
/// configuration), then, while its containers are being created, its
/// events (volumes that do not mount, sandboxes that cannot be created),
/// then the scheduler's verdict. `events` are the pod's own (this UID).
pub(crate) fn pod_finding(pod: &Pod, events: &[Event]) -> Option<Finding> {
    let status = pod.status.as_ref()?;
    let images: BTreeMap<&str, &str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
        .collect();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let mut creating = status.container_statuses.as_ref().is_none_or(Vec::is_empty)
        && status.phase.as_deref().unwrap_or("Pending") == "Pending";
    for container in status.container_statuses.iter().flatten() {
        // Between two restarts a crashing container shows as terminated
        // rather than in CrashLoopBackOff; a server that exits has crashed.
        if let Some(ended) = container.state.as_ref().and_then(|s| s.terminated.as_ref())
            && container.restart_count > 0
        {
            let mut detail = format!("last exit code {}", ended.exit_code);
            if let Some(msg) = ended.message.as_deref().filter(|m| !m.trim().is_empty()) {
                detail += &format!(", {}", msg.trim());
            }
            return Some(Finding::now(Problem::CrashLoop {
                container: container.name.clone(),
                detail,
                log_lines: Vec::new(),
            }));
        }
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
            "InvalidImageName" | "ErrImageNeverPull" => {
                return Some(Finding::now(Problem::ImagePull {
                    image,
                    reason,
                    message,
                    last_error: None,
                }));
            }
            "ImagePullBackOff" | "ErrImagePull" => {
                return Some(pull_finding(image, reason, message, events));
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
                        // RunContainerError: the runtime's own words, e.g. runc
                        // failing to exec a binary for another architecture.
                        if is_exec_format_error(&message) && !detail.contains(message.trim()) {
                            detail += &format!(", {}", message.trim());
                        }
                        detail
                    }
                    None => message,
                };
                return Some(Finding::now(Problem::CrashLoop {
                    container: container.name.clone(),
                    detail,
                    log_lines: Vec::new(),
                }));
            }
            "CreateContainerConfigError" => {
                return Some(Finding::after(GRACE, Problem::Config { reason, message }));
            }
            "ContainerCreating" | "PodInitializing" => creating = true,
            _ => {}
        }
    }
    if creating && let Some(finding) = creation_finding(pod, node, events) {
        return Some(finding);
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
        .map(|c| {
            Finding::after(
                GRACE,
                Problem::Unschedulable {
                    message: c.message.clone().unwrap_or_default(),
                },
            )
        })
}

/// A failed pull: the kubelet's first `ErrImagePull` may be a blip it
/// retries, `ImagePullBackOff` means it already retried. The pod's latest
/// `Failed` event carries the registry's answer, which tells a missing image
/// (reported at once) from a rate limit (given [`PULL_GRACE`]).
fn pull_finding(image: String, reason: String, message: String, events: &[Event]) -> Finding {
    // "Failed to pull image "x": <cause>": the image is named already.
    let last_error = with_reason(events, &["Failed"])
        .into_iter()
        .map(message_of)
        .find(|m| m.starts_with("Failed to pull image"))
        .map(|m| {
            m.split_once("\": ")
                .map_or(m.clone(), |(_, cause)| cause.to_owned())
        });
    let cause = format!("{message} {}", last_error.as_deref().unwrap_or_default());
    let when = if pull_error_is_final(&cause) {
        When::Now
    } else if pull_error_is_transient(&cause) {
        When::After(PULL_GRACE)
    } else if reason == "ImagePullBackOff" {
        When::Now
    } else {
        When::After(GRACE)
    };
    Finding {
        problem: Problem::ImagePull {
            image,
            reason,
            message,
            last_error,
        },
        when,
    }
}

/// A pod on a node whose containers are not created yet: the kubelet
/// reports why only as events. A hostPath that is not on the node never
/// appears, so it is reported at once; other mount and sandbox failures
/// are retried by the kubelet and get [`GRACE`].
fn creation_finding(pod: &Pod, node: Option<String>, events: &[Event]) -> Option<Finding> {
    node.as_ref()?;
    // The kubelet got past volumes and sandbox (it pulls or starts the
    // containers) after this failure: the failure is history.
    let later_progress = |failure: &Event| {
        let failed_at = last_seen(failure);
        with_reason(events, &["Pulling", "Pulled", "Created", "Started"])
            .first()
            .is_some_and(|progress| last_seen(progress) > failed_at)
    };
    if let Some(event) = with_reason(events, &["FailedMount", "FailedAttachVolume"])
        .into_iter()
        .filter(|e| !later_progress(e))
        // "MountVolume.SetUp failed for volume "code" : ..." names the volume;
        // the volume manager's later "Unable to attach or mount volumes: ...
        // timed out" only repeats that something is missing.
        .min_by_key(|e| !message_of(e).contains("failed for volume"))
    {
        let message = message_of(event);
        let volume = quoted_after(&message, "for volume ");
        let host_path = volume.as_deref().and_then(|name| {
            pod.spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .find(|v| v.name == name)
                .and_then(|v| v.host_path.as_ref())
                .map(|h| h.path.clone())
        });
        let final_ = host_path.is_some() && message.contains("type check failed");
        let problem = Problem::Mount {
            volume,
            node,
            host_path,
            message: message
                .split_once(" : ")
                .map_or(message.as_str(), |(_, cause)| cause)
                .to_owned(),
        };
        return Some(if final_ {
            Finding::now(problem)
        } else {
            Finding::after(GRACE, problem)
        });
    }
    with_reason(events, &["FailedCreatePodSandBox"])
        .into_iter()
        .find(|e| !later_progress(e))
        .map(|event| {
            Finding::after(
                GRACE,
                Problem::Sandbox {
                    node,
                    message: message_of(event),
                },
            )
        })
}

/// `name` from `... for volume "name" : ...`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = text.split_once(marker)?.1.strip_prefix('"')?;
    Some(rest.split_once('"')?.0.to_owned())
}

/// The StorageClass a claim names, as far as the cluster told us.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClassLookup<'a> {
    Found(&'a StorageClass),
    Missing,
    /// StorageClasses could not be read (RBAC); the events still tell.
    Unknown,
}

/// Where a claim stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimState {
    Bound,
    /// A volume is on its way; the text is for the progress bar.
    Progress(String),
    Problem(Finding),
}

/// A Pending claim is progress while its StorageClass binds only once the
/// pod is scheduled (`WaitForFirstConsumer`, as k3s' local-path and EKS'
/// gp2/gp3) or while its provisioner works on it (`Provisioning`); it is a
/// problem when the class does not exist, when provisioning failed more
/// than once, or when no provisioner ever starts on it. `events` are the
/// claim's own (this UID).
pub(crate) fn claim_state(
    claim: &PersistentVolumeClaim,
    class: ClassLookup,
    events: &[Event],
) -> ClaimState {
    if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Pending") {
        return ClaimState::Bound;
    }
    let name = claim.metadata.name.clone().unwrap_or_default();
    let class_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone());
    let problem = |cause| Problem::ClaimPending {
        claim: name.clone(),
        class: class_name.clone(),
        cause,
    };
    if class_name.is_none() {
        return ClaimState::Problem(Finding::after(GRACE, problem(ClaimCause::NotProvisioned)));
    }
    if matches!(class, ClassLookup::Missing) {
        return ClaimState::Problem(Finding::after(GRACE, problem(ClaimCause::ClassMissing)));
    }
    let failures = with_reason(events, &["ProvisioningFailed"]);
    if let Some(latest) = failures.first() {
        let repeated = failures.iter().map(|e| occurrences(e)).sum::<i32>() > 1;
        let finding = problem(ClaimCause::ProvisioningFailed(message_of(latest)));
        return ClaimState::Problem(if repeated {
            Finding::now(finding)
        } else {
            Finding::after(PROVISIONER_GRACE, finding)
        });
    }
    let provisioner = match class {
        ClassLookup::Found(class) => Some(class.provisioner.clone()),
        _ => None,
    };
    if !with_reason(events, &["Provisioning"]).is_empty() {
        return ClaimState::Progress(format!(
            "provisioning volume{}",
            provisioner
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        ));
    }
    if let Some(waiting) = with_reason(events, &["ExternalProvisioning"]).first() {
        let provisioner = provisioner.or_else(|| {
            let message = message_of(waiting);
            let rest = message.split_once("external provisioner '")?.1;
            Some(rest.split_once('\'')?.0.to_owned())
        });
        return ClaimState::Problem(Finding::after(
            PROVISIONER_GRACE,
            problem(ClaimCause::NoProvisioner(provisioner)),
        ));
    }
    let waits_for_consumer = matches!(class, ClassLookup::Found(c)
        if c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
    if waits_for_consumer || !with_reason(events, &["WaitForFirstConsumer"]).is_empty() {
        return ClaimState::Progress("volume waits for its pod to be scheduled".to_owned());
    }
    ClaimState::Problem(Finding::after(GRACE, problem(ClaimCause::NotProvisioned)))
}

/// The scheduler's word on a pod whose claims are still being provisioned
/// ("pod has unbound immediate PersistentVolumeClaims") is about those
/// claims, which [`claim_state`] already follows.
pub(crate) fn waits_for_claims(problem: &Problem) -> bool {
    matches!(problem, Problem::Unschedulable { message } if message.contains("PersistentVolumeClaim"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, HostPathVolumeSource, PersistentVolumeClaimSpec,
        PersistentVolumeClaimStatus, PodCondition, PodSpec, PodStatus, Volume,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod_with(waiting: Option<(&str, &str)>, terminated_message: Option<&str>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "mysql".into(),
                    image: Some("mysql:8.4".into()),
                    ..Default::default()
                }],
                node_name: Some("real-0".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
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

    /// An event as the core API's recorder writes it, `seconds` after a fixed moment.
    fn event(reason: &str, message: &str, count: i32, seconds: i64) -> Event {
        let at = Time(Timestamp::from_second(1_800_000_000 + seconds).unwrap());
        Event {
            reason: Some(reason.into()),
            message: Some(message.into()),
            count: Some(count),
            first_timestamp: Some(at.clone()),
            last_timestamp: Some(at),
            ..Default::default()
        }
    }

    fn problem(finding: Option<Finding>) -> Problem {
        finding.expect("a finding").problem
    }

    #[test]
    fn image_pull_failures_name_the_image() {
        let finding = pod_finding(
            &pod_with(Some(("ImagePullBackOff", "Back-off pulling image")), None),
            &[],
        )
        .unwrap();
        assert_eq!(
            finding.problem.to_string(),
            "cannot pull image \"mysql:8.4\" (ImagePullBackOff): Back-off pulling image"
        );
        assert_eq!(finding.when, When::Now);
    }

    /// The kubelet's events as a missing tag produces them: the first
    /// ErrImagePull already says "not found", so nothing waits.
    #[test]
    fn a_missing_image_is_reported_at_once_with_the_registry_answer() {
        let pod = pod_with(
            Some((
                "ErrImagePull",
                "rpc error: code = NotFound desc = failed to pull and unpack image \
                 \"127.0.0.1:5000/nope:1\": failed to resolve reference \"127.0.0.1:5000/nope:1\": \
                 127.0.0.1:5000/nope:1: not found",
            )),
            None,
        );
        assert_eq!(pod_finding(&pod, &[]).unwrap().when, When::Now);

        let backoff = pod_with(
            Some((
                "ImagePullBackOff",
                "Back-off pulling image \"127.0.0.1:5000/nope:1\"",
            )),
            None,
        );
        let events = [
            event("Pulling", "Pulling image \"127.0.0.1:5000/nope:1\"", 2, 0),
            event(
                "Failed",
                "Failed to pull image \"127.0.0.1:5000/nope:1\": 127.0.0.1:5000/nope:1: not found",
                2,
                1,
            ),
            event("Failed", "Error: ErrImagePull", 2, 1),
            event(
                "BackOff",
                "Back-off pulling image \"127.0.0.1:5000/nope:1\"",
                3,
                2,
            ),
        ];
        let finding = pod_finding(&backoff, &events).unwrap();
        assert_eq!(finding.when, When::Now);
        assert_eq!(
            finding.problem.to_string(),
            "cannot pull image \"mysql:8.4\" (ImagePullBackOff): Back-off pulling image \
             \"127.0.0.1:5000/nope:1\"; last error: 127.0.0.1:5000/nope:1: not found"
        );
    }

    /// kubelet 1.36 puts the pull error into the back-off message itself;
    /// the event's copy is not repeated.
    #[test]
    fn a_back_off_message_with_its_cause_is_not_repeated() {
        let cause = "rpc error: code = NotFound desc = failed to pull and unpack image \
                     \"127.0.0.1:5000/nope:1\": 127.0.0.1:5000/nope:1: not found";
        let pod = pod_with(
            Some((
                "ImagePullBackOff",
                &format!("Back-off pulling image \"127.0.0.1:5000/nope:1\": ErrImagePull: {cause}"),
            )),
            None,
        );
        let events = [event(
            "Failed",
            &format!("Failed to pull image \"127.0.0.1:5000/nope:1\": {cause}"),
            2,
            1,
        )];
        let text = problem(pod_finding(&pod, &events)).to_string();
        assert_eq!(text.matches("not found").count(), 1, "{text}");
    }

    /// A crashing container seen between two restarts.
    #[test]
    fn a_container_that_exited_and_restarts_is_a_crash() {
        let mut pod = pod_with(None, None);
        let status = &mut pod
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0];
        status.restart_count = 2;
        status.state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 3,
                reason: Some("Error".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let finding = pod_finding(&pod, &[]).unwrap();
        assert_eq!(finding.when, When::Now);
        assert_eq!(
            finding.problem.to_string(),
            "container \"mysql\" keeps crashing (CrashLoopBackOff): last exit code 3"
        );
    }

    #[test]
    fn a_first_pull_error_is_retried_and_a_rate_limit_even_longer() {
        let first = pod_with(Some(("ErrImagePull", "failed to pull image")), None);
        assert_eq!(pod_finding(&first, &[]).unwrap().when, When::After(GRACE));

        let limited = pod_with(
            Some(("ImagePullBackOff", "Back-off pulling image \"mysql:8.4\"")),
            None,
        );
        let events = [event(
            "Failed",
            "Failed to pull image \"mysql:8.4\": 429 Too Many Requests - Server message: \
             toomanyrequests: You have reached your pull rate limit",
            1,
            0,
        )];
        assert_eq!(
            pod_finding(&limited, &events).unwrap().when,
            When::After(PULL_GRACE)
        );
        let never = pod_with(Some(("ErrImageNeverPull", "image not present")), None);
        assert_eq!(pod_finding(&never, &[]).unwrap().when, When::Now);
    }

    #[test]
    fn crash_loops_carry_the_last_exit() {
        let problem = problem(pod_finding(
            &pod_with(
                Some(("CrashLoopBackOff", "back-off 10s")),
                Some("exec /usr/local/bin/docker-entrypoint.sh: exec format error"),
            ),
            &[],
        ));
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
        assert_eq!(pod_finding(&pod_with(None, None), &[]), None);
        assert_eq!(
            pod_finding(&pod_with(Some(("ContainerCreating", "")), None), &[]),
            None
        );
        // Pulling is progress, not a failure.
        let pulling = [event("Pulling", "Pulling image \"mysql:8.4\"", 1, 0)];
        assert_eq!(
            pod_finding(&pod_with(Some(("ContainerCreating", "")), None), &pulling),
            None
        );
    }

    fn with_code_volume(mut pod: Pod) -> Pod {
        pod.spec.as_mut().unwrap().volumes = Some(vec![Volume {
            name: "code".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/home/me/app".into(),
                type_: Some("Directory".into()),
            }),
            ..Default::default()
        }]);
        pod
    }

    /// What the kubelet writes for a hostPath of type Directory that the
    /// node lacks: the status only says ContainerCreating.
    #[test]
    fn a_missing_host_path_is_reported_at_once_with_the_node() {
        let pod = with_code_volume(pod_with(Some(("ContainerCreating", "")), None));
        let events = [
            event(
                "FailedMount",
                "MountVolume.SetUp failed for volume \"code\" : hostPath type check failed: \
                 /home/me/app is not a directory",
                5,
                8,
            ),
            event(
                "FailedMount",
                "Unable to attach or mount volumes: unmounted volumes=[code], unattached \
                 volumes=[], failed to process volumes=[]: timed out waiting for the condition",
                1,
                9,
            ),
        ];
        let finding = pod_finding(&pod, &events).unwrap();
        assert_eq!(finding.when, When::Now);
        assert_eq!(
            finding.problem.to_string(),
            "cannot mount volume \"code\" on node \"real-0\" (FailedMount): hostPath type check \
             failed: /home/me/app is not a directory (/home/me/app is a hostPath: it must exist \
             on that node, not only on your machine; pin the dev pod to the node that has it \
             with --code-path-node)"
        );
        // A pod that is not on a node yet has nothing to mount.
        let mut unscheduled = pod.clone();
        unscheduled.spec.as_mut().unwrap().node_name = None;
        assert_eq!(pod_finding(&unscheduled, &events), None);
    }

    #[test]
    fn other_mount_and_sandbox_failures_get_a_grace() {
        let pod = pod_with(Some(("ContainerCreating", "")), None);
        let mount = [event(
            "FailedMount",
            "MountVolume.SetUp failed for volume \"config\" : configmap \"app\" not found",
            1,
            0,
        )];
        let finding = pod_finding(&pod, &mount).unwrap();
        assert_eq!(finding.when, When::After(GRACE));
        assert!(
            finding
                .problem
                .to_string()
                .ends_with(": configmap \"app\" not found")
        );

        // No container status yet: the sandbox comes before the containers.
        let mut fresh = pod.clone();
        fresh.status.as_mut().unwrap().container_statuses = None;
        let sandbox = [event(
            "FailedCreatePodSandBox",
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup \
             network for sandbox: plugin type=\"bridge\" failed (add): failed to allocate",
            3,
            0,
        )];
        let finding = pod_finding(&fresh, &sandbox).unwrap();
        assert_eq!(finding.when, When::After(GRACE));
        assert!(
            finding
                .problem
                .to_string()
                .starts_with("cannot create the pod's sandbox on node \"real-0\" (FailedCreatePodSandBox): Failed to create pod sandbox"),
            "{}",
            finding.problem
        );
        // A sandbox that failed once, then came up: the image is being pulled.
        let mut pulling = sandbox.to_vec();
        pulling.push(event("Pulling", "Pulling image \"mysql:8.4\"", 1, 5));
        assert_eq!(pod_finding(&fresh, &pulling), None);
        // Once the containers run, old creation events are history.
        let mut running = pod_with(None, None);
        running.status.as_mut().unwrap().phase = Some("Running".into());
        assert_eq!(pod_finding(&running, &sandbox), None);
    }

    #[test]
    fn unschedulable_pods_report_the_scheduler_message_after_grace() {
        let mut pod = pod_with(None, None);
        pod.spec.as_mut().unwrap().node_name = None;
        pod.status.as_mut().unwrap().container_statuses = None;
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
        let finding = pod_finding(&pod, &[]).unwrap();
        assert_eq!(finding.when, When::After(GRACE));
        assert!(
            finding
                .problem
                .to_string()
                .contains("didn't match Pod's node affinity")
        );
        assert!(!waits_for_claims(&finding.problem));
        assert!(waits_for_claims(&Problem::Unschedulable {
            message: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
                .into()
        }));
    }

    fn pending_claim(class: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: kube::api::ObjectMeta {
                name: Some("data-mysql-0".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: class.map(str::to_owned),
                ..Default::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        }
    }

    fn class(mode: &str) -> StorageClass {
        StorageClass {
            provisioner: "rancher.io/local-path".into(),
            volume_binding_mode: Some(mode.into()),
            ..Default::default()
        }
    }

    fn claim_problem(state: ClaimState) -> Finding {
        match state {
            ClaimState::Problem(finding) => finding,
            other => panic!("{other:?}"),
        }
    }

    /// local-path as k3s ships it: the claim is Pending until the pod is
    /// scheduled, then the provisioner's helper pod creates the directory.
    #[test]
    fn a_wait_for_first_consumer_claim_is_progress_while_it_is_provisioned() {
        let local_path = class("WaitForFirstConsumer");
        let claim = pending_claim(Some("local-path"));
        let lookup = ClassLookup::Found(&local_path);
        assert_eq!(
            claim_state(&claim, lookup, &[]),
            ClaimState::Progress("volume waits for its pod to be scheduled".into())
        );
        let mut events = vec![event(
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
            2,
            0,
        )];
        assert!(matches!(
            claim_state(&claim, ClassLookup::Unknown, &events),
            ClaimState::Progress(_)
        ));
        events.push(event(
            "ExternalProvisioning",
            "Waiting for a volume to be created either by the external provisioner \
             'rancher.io/local-path' or manually by the system administrator.",
            3,
            1,
        ));
        events.push(event(
            "Provisioning",
            "External provisioner is provisioning volume for claim \"t/data-mysql-0\"",
            1,
            1,
        ));
        assert_eq!(
            claim_state(&claim, lookup, &events),
            ClaimState::Progress("provisioning volume (rancher.io/local-path)".into())
        );
        let mut bound = claim.clone();
        bound.status.as_mut().unwrap().phase = Some("Bound".into());
        assert_eq!(claim_state(&bound, lookup, &events), ClaimState::Bound);
    }

    #[test]
    fn a_repeated_provisioning_failure_is_reported_at_once() {
        let local_path = class("WaitForFirstConsumer");
        let claim = pending_claim(Some("local-path"));
        let lookup = ClassLookup::Found(&local_path);
        let once = [event(
            "ProvisioningFailed",
            "failed to provision volume with StorageClass \"local-path\": helper pod timed out",
            1,
            3,
        )];
        let finding = claim_problem(claim_state(&claim, lookup, &once));
        assert_eq!(finding.when, When::After(PROVISIONER_GRACE));
        let twice = [
            once[0].clone(),
            event(
                "ProvisioningFailed",
                "failed to provision volume with StorageClass \"local-path\": no space left",
                1,
                9,
            ),
        ];
        let finding = claim_problem(claim_state(&claim, lookup, &twice));
        assert_eq!(finding.when, When::Now);
        assert_eq!(
            finding.problem.to_string(),
            "PersistentVolumeClaim \"data-mysql-0\" is still Pending (StorageClass \
             \"local-path\"): provisioning failed: failed to provision volume with StorageClass \
             \"local-path\": no space left"
        );
    }

    #[test]
    fn a_missing_class_or_an_absent_provisioner_is_reported_after_a_grace() {
        let claim = pending_claim(Some("fast"));
        let finding = claim_problem(claim_state(&claim, ClassLookup::Missing, &[]));
        assert_eq!(finding.when, When::After(GRACE));
        assert!(
            finding.problem.to_string().starts_with(
                "PersistentVolumeClaim \"data-mysql-0\" is still Pending (StorageClass \"fast\"): the StorageClass does not exist"
            ),
            "{}",
            finding.problem
        );
        let waiting = [event(
            "ExternalProvisioning",
            "Waiting for a volume to be created either by the external provisioner \
             'ebs.csi.aws.com' or manually by the system administrator.",
            4,
            0,
        )];
        let finding = claim_problem(claim_state(&claim, ClassLookup::Unknown, &waiting));
        assert_eq!(finding.when, When::After(PROVISIONER_GRACE));
        assert!(
            finding
                .problem
                .to_string()
                .ends_with("no provisioner has started on it; the class needs \"ebs.csi.aws.com\" (is it running?)"),
            "{}",
            finding.problem
        );
        // An Immediate class with no sign of a volume: the old 15 s rule.
        let immediate = class("Immediate");
        let finding = claim_problem(claim_state(&claim, ClassLookup::Found(&immediate), &[]));
        assert_eq!(finding.when, When::After(GRACE));
        assert!(finding.problem.to_string().ends_with(
            "no volume was provisioned (check the StorageClass, or set storage.className)"
        ));
    }
}
