//! `kubectl devenv check --isolation`: measures, rather than assumes, that
//! the stack's NetworkPolicy is enforced. The API server accepts a
//! NetworkPolicy on every cluster, but only a CNI plugin or policy
//! controller that implements it makes it mean anything, and a default EKS
//! cluster has none. So two short-lived probe pods try to connect to every
//! test-stack Service: one in a namespace of its own (it must be refused)
//! and one in the dev namespace (it must get through, which shows the
//! Services answer at all). The probe namespace and pods are removed
//! afterwards, also on errors and Ctrl-C.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, Namespace, Node, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecurityContext, Service, Toleration,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, ListParams, LogParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::stack;
use crate::cluster::wait::{self, When, diagnose};
use crate::duration::humanize;
use crate::error::{Action, Error, Result};
use crate::render::{NETWORK_POLICY, ROLE};
use crate::{labels, output, spec};

/// The probe pods' account: `nobody`, which every image can run as.
const PROBE_USER: i64 = 65534;
/// Marks the probe namespace and pods (beside the managed-by label).
pub const PROBE_ROLE: &str = "isolation-probe";
/// A leaked probe pod ends by itself after this long.
const PROBE_DEADLINE_SECONDS: i64 = 300;

/// Tries each `host:port` argument at once; `nc` exits 1 when the
/// connection is refused or times out (`-w 2`), 0 when it got through and
/// the server closed, and `timeout` ends a connection the server keeps open
/// (exit 143). Enforcers (kube-router, Calico, the VPC CNI) admit a new pod a
/// few seconds after it starts, so a refusal is retried five times, a second
/// apart, before it counts. The script needs only a POSIX sh, `timeout` and `nc`.
const PROBE_SCRIPT: &str = r#"for t in "$@"; do
  ( n=0; while :; do
      timeout 5 nc -w 2 "${t%:*}" "${t##*:}" </dev/null >/dev/null 2>&1; rc=$?
      n=$((n + 1)); [ "$rc" != 1 ] || [ "$n" -ge 5 ] && break; sleep 1
    done; echo "probe $t rc=$rc" ) &
done
wait"#;

/// One test-stack Service port, probed from both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub service: String,
    /// ClusterIP:port.
    pub address: String,
    pub from_dev_namespace: Reach,
    pub from_outside: Reach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reach {
    Open,
    Blocked,
    /// The probe printed nothing for it.
    Unknown,
}

impl Reach {
    fn as_str(self) -> &'static str {
        match self {
            Reach::Open => "open",
            Reach::Blocked => "blocked",
            Reach::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IsolationReport {
    pub stack: String,
    pub dev_namespace: String,
    pub test_namespace: String,
    pub probe_namespace: String,
    pub probe_image: String,
    pub targets: Vec<Target>,
    /// `enforced` or `not enforced`.
    pub verdict: String,
    pub enforced: bool,
    /// Why isolation is not enforced, most specific first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// What `check --isolation` needs from the command line.
pub struct Options<'a> {
    pub stack: Option<&'a str>,
    pub file: Option<&'a std::path::Path>,
    pub probe_image: &'a str,
    pub timeout: Duration,
}

/// The result of one probe pod's line `probe 10.96.0.12:3306 rc=1`.
pub fn parse_probe_output(text: &str) -> BTreeMap<String, Reach> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("probe ")?;
            let (address, rc) = rest.split_once(" rc=")?;
            let reach = match rc.trim() {
                // Connected: the server closed (0), or it kept the connection
                // open until `timeout` ended it (SIGTERM: 143, or 124).
                "0" | "124" | "143" => Reach::Open,
                _ => Reach::Blocked,
            };
            Some((address.to_owned(), reach))
        })
        .collect()
}

/// Enforced when every Service the dev namespace reaches is blocked from
/// outside; a Service that answers nobody proves nothing either way.
pub fn verdict(targets: &[Target]) -> Result<bool> {
    let answering: Vec<&Target> = targets
        .iter()
        .filter(|t| t.from_dev_namespace == Reach::Open)
        .collect();
    if answering.is_empty() {
        return Err(Error::Other(
            "cannot tell whether isolation is enforced: no test-stack Service answered the probe \
             in the dev namespace either (is the stack Ready? see `kubectl devenv status`)"
                .into(),
        ));
    }
    Ok(answering.iter().all(|t| t.from_outside == Reach::Blocked))
}

pub async fn run(global: &GlobalArgs, options: &Options<'_>) -> Result<()> {
    let name = stack_name(options)?;
    let cluster = Cluster::connect(global).await?;
    let (dev_namespace, test_namespace) = stack_namespaces(&cluster, &name).await?;
    let services = stack_services(&cluster, &name, &test_namespace).await?;
    if services.is_empty() {
        return Err(Error::Other(format!(
            "stack \"{name}\" has no Services in namespace \"{test_namespace}\" to probe"
        )));
    }
    let placement = dev_placement(&cluster, &dev_namespace).await?;
    let probe_namespace = format!("{name}-{PROBE_ROLE}");
    let probe = Probe {
        cluster: &cluster,
        stack: &name,
        image: options.probe_image,
        placement,
        addresses: services.iter().map(|(_, a)| a.clone()).collect(),
        pod_name: format!("{PROBE_ROLE}-{}", suffix()),
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = probe.run_both(&probe_namespace, &dev_namespace, options.timeout) => outcome,
        _ = tokio::signal::ctrl_c() => Err(Error::Other("interrupted".into())),
    };
    // Always, whatever happened above: the probes must not outlive the check.
    probe.clean_up(&probe_namespace, &dev_namespace).await;
    let (outside, inside) = outcome?;
    tracing::info!("probed in {}", humanize(started.elapsed()));

    let targets: Vec<Target> = services
        .into_iter()
        .map(|(service, address)| Target {
            from_dev_namespace: inside.get(&address).copied().unwrap_or(Reach::Unknown),
            from_outside: outside.get(&address).copied().unwrap_or(Reach::Unknown),
            service,
            address,
        })
        .collect();
    let enforced = verdict(&targets)?;
    let reasons = if enforced {
        Vec::new()
    } else {
        reasons(&cluster, &test_namespace).await
    };
    let report = IsolationReport {
        stack: name,
        dev_namespace,
        test_namespace,
        probe_namespace,
        probe_image: options.probe_image.to_owned(),
        targets,
        verdict: if enforced { "enforced" } else { "not enforced" }.to_owned(),
        enforced,
        reasons,
    };
    if let Some(text) = output::structured(global.output, &report)? {
        print!("{text}");
    } else {
        print!("{}", render(&report));
    }
    if report.enforced {
        return Ok(());
    }
    let leaks: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.from_outside == Reach::Open)
        .map(|t| format!("{} ({})", t.service, t.address))
        .collect();
    Err(Error::Other(format!(
        "isolation is not enforced: a pod in namespace \"{}\" reached {}",
        report.probe_namespace,
        leaks.join(", ")
    )))
}

/// The table, the verdict and the reasons, as printed for `-o table`.
pub fn render(report: &IsolationReport) -> String {
    let mut table = output::table(["SERVICE", "ADDRESS", "FROM DEV NAMESPACE", "FROM OUTSIDE"]);
    for t in &report.targets {
        table.add_row([
            t.service.clone(),
            t.address.clone(),
            t.from_dev_namespace.as_str().to_owned(),
            t.from_outside.as_str().to_owned(),
        ]);
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    if report.enforced {
        out.push_str(&format!(
            "Verdict:  enforced: only namespace \"{}\" and the stack itself reach namespace \"{}\"\n",
            report.dev_namespace, report.test_namespace
        ));
    } else {
        out.push_str(&format!(
            "Verdict:  not enforced: a pod in namespace \"{}\" reached the test stack\n",
            report.probe_namespace
        ));
        for reason in &report.reasons {
            out.push_str(&format!("Why:      {reason}\n"));
        }
    }
    out
}

fn stack_name(options: &Options<'_>) -> Result<String> {
    if let Some(name) = options.stack {
        if let Some(problem) = spec::name_problem(name, spec::MAX_NAME_LEN) {
            return Err(Error::Usage(format!(
                "--stack: invalid name \"{name}\": {problem}"
            )));
        }
        return Ok(name.to_owned());
    }
    let default = std::path::Path::new(spec::DEFAULT_FILE);
    match options.file {
        Some(file) => Ok(spec::load(file)?.name),
        None if default.exists() => Ok(spec::load(default)?.name),
        None => Err(Error::Usage(format!(
            "which stack? there is no {} here: pass --stack NAME or -f FILE",
            spec::DEFAULT_FILE
        ))),
    }
}

/// The stack's dev and test namespaces, from their role labels.
async fn stack_namespaces(cluster: &Cluster, name: &str) -> Result<(String, String)> {
    let namespaces = stack::namespaces(cluster, name).await?;
    let with_role = |role: &str| {
        namespaces
            .iter()
            .find(|ns| ns.labels().get(ROLE).map(String::as_str) == Some(role))
            .map(|ns| ns.name_any())
    };
    match (with_role("dev"), with_role("test")) {
        (Some(dev), Some(test)) => Ok((dev, test)),
        _ => Err(Error::Other(format!(
            "no stack \"{name}\" found (is it up? see `kubectl devenv status`)"
        ))),
    }
}

/// `(service, ClusterIP:port)` for every port of the test stack's Services.
async fn stack_services(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
) -> Result<Vec<(String, String)>> {
    let api: Api<Service> = Api::namespaced(cluster.client.clone(), namespace);
    let params = ListParams::default().labels(&labels::stack_selector(name));
    let list = cluster
        .call(
            Action::new("list", "services").in_namespace(Some(namespace)),
            api.list(&params),
        )
        .await?;
    let mut found = Vec::new();
    for service in &list.items {
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec.cluster_ip.as_deref().filter(|ip| *ip != "None") else {
            continue;
        };
        for port in spec.ports.iter().flatten() {
            found.push((service.name_any(), format!("{ip}:{}", port.port)));
        }
    }
    found.sort();
    Ok(found)
}

/// Where the dev pod may run (the stack's placement and targetArch, as
/// rendered into its template), so the probes land on the same nodes.
async fn dev_placement(cluster: &Cluster, namespace: &str) -> Result<Placement> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
    let action = Action::new("get", "deployments")
        .named(spec::DEV_COMPONENT)
        .in_namespace(Some(namespace));
    let dev = cluster
        .call(action, api.get_opt(spec::DEV_COMPONENT))
        .await?;
    let template = dev
        .and_then(|d| d.spec)
        .and_then(|s| s.template.spec)
        .unwrap_or_default();
    Ok(Placement {
        node_selector: template.node_selector,
        tolerations: template.tolerations,
    })
}

struct Placement {
    node_selector: Option<BTreeMap<String, String>>,
    tolerations: Option<Vec<Toleration>>,
}

/// Five random lowercase letters and digits, so that runs never collide.
fn suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn probe_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (ROLE.to_owned(), PROBE_ROLE.to_owned()),
    ])
}

struct Probe<'a> {
    cluster: &'a Cluster,
    stack: &'a str,
    image: &'a str,
    placement: Placement,
    addresses: Vec<String>,
    pod_name: String,
}

impl Probe<'_> {
    /// Both probes at once: `(outside, dev namespace)`.
    async fn run_both(
        &self,
        probe_namespace: &str,
        dev_namespace: &str,
        timeout: Duration,
    ) -> Result<(BTreeMap<String, Reach>, BTreeMap<String, Reach>)> {
        self.create_namespace(probe_namespace, timeout).await?;
        tokio::try_join!(
            self.run_in(probe_namespace, timeout),
            self.run_in(dev_namespace, timeout)
        )
    }

    /// The probe namespace, labelled as kubectl-devenv's (and the stack's, so
    /// `down --purge` removes one a killed run left behind), under Pod
    /// Security `restricted`. One that is still terminating from an earlier
    /// run is waited out.
    async fn create_namespace(&self, name: &str, timeout: Duration) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.cluster.client.clone());
        let started = Instant::now();
        loop {
            let action = Action::new("get", "namespaces").named(name);
            match self.cluster.call(action, api.get_opt(name)).await? {
                None => break,
                Some(existing) => {
                    if let Some(problem) = stack::foreign_namespace_problem(&existing, self.stack) {
                        return Err(Error::Other(format!(
                            "{problem}; the isolation probe needs it"
                        )));
                    }
                    if existing.metadata.deletion_timestamp.is_none() {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() >= timeout {
                return Err(Error::Other(format!(
                    "namespace \"{name}\" of an earlier probe is still terminating after {}",
                    humanize(timeout)
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut labels = probe_labels();
        labels.insert(labels::STACK.to_owned(), self.stack.to_owned());
        for mode in ["enforce", "warn", "audit"] {
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                "restricted".to_owned(),
            );
        }
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        self.cluster
            .call(
                Action::new("create", "namespaces").named(name),
                api.create(&PostParams::default(), &namespace),
            )
            .await?;
        Ok(())
    }

    fn pod(&self, namespace: &str) -> Pod {
        probe_pod(
            namespace,
            &self.pod_name,
            self.image,
            &self.placement,
            &self.addresses,
        )
    }

    /// Starts the probe pod in `namespace`, waits for it to finish (failing
    /// early on what `up` would report: a missing image, an unschedulable
    /// pod) and reads its verdicts from its log.
    async fn run_in(&self, namespace: &str, timeout: Duration) -> Result<BTreeMap<String, Reach>> {
        let api: Api<Pod> = Api::namespaced(self.cluster.client.clone(), namespace);
        let action = |verb| {
            Action::new(verb, "pods")
                .named(&self.pod_name)
                .in_namespace(Some(namespace))
        };
        self.cluster
            .call(
                action("create"),
                api.create(&PostParams::default(), &self.pod(namespace)),
            )
            .await?;
        let started = Instant::now();
        let mut first_seen: BTreeMap<&'static str, Instant> = BTreeMap::new();
        loop {
            let pod = self
                .cluster
                .call(action("get"), api.get(&self.pod_name))
                .await?;
            match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Succeeded") => break,
                Some("Failed") => {
                    return Err(Error::Other(format!(
                        "the isolation probe pod in namespace \"{namespace}\" failed: {}",
                        pod.status
                            .as_ref()
                            .and_then(|s| s.message.clone().or(s.reason.clone()))
                            .unwrap_or_else(|| "no reason given".into())
                    )));
                }
                _ => {}
            }
            let events = wait::object_events(self.cluster, &pod).await;
            if let Some(finding) = diagnose::pod_finding(&pod, &events) {
                let now = Instant::now();
                let seen = *first_seen
                    .entry(diagnose::problem_key(&finding.problem))
                    .or_insert(now);
                let due = match finding.when {
                    When::Now => true,
                    When::After(grace) => now.duration_since(seen) >= grace,
                };
                if due {
                    return Err(Error::Other(format!(
                        "the isolation probe in namespace \"{namespace}\" cannot run: {} (--probe-image)",
                        finding.problem
                    )));
                }
            }
            if started.elapsed() >= timeout {
                return Err(Error::Other(format!(
                    "the isolation probe in namespace \"{namespace}\" did not finish within {} (--timeout)",
                    humanize(timeout)
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let logs = self
            .cluster
            .call(
                Action::new("get", "pods/log")
                    .named(&self.pod_name)
                    .in_namespace(Some(namespace)),
                api.logs(&self.pod_name, &LogParams::default()),
            )
            .await?;
        Ok(parse_probe_output(&logs))
    }

    /// Deletes the probe pods and the probe namespace without waiting for
    /// them to go; failures are warnings, since the check's result stands.
    async fn clean_up(&self, probe_namespace: &str, dev_namespace: &str) {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client.clone(), dev_namespace);
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let deleted = self
            .cluster
            .call(
                Action::new("delete", "pods")
                    .named(&self.pod_name)
                    .in_namespace(Some(dev_namespace)),
                pods.delete(&self.pod_name, &now),
            )
            .await;
        if let Err(err) = deleted.map(|_| ()).or_else(ignore_not_found) {
            eprintln!(
                "Warning: the probe pod in namespace \"{dev_namespace}\" was not removed: {err}"
            );
        }
        let namespaces: Api<Namespace> = Api::all(self.cluster.client.clone());
        let action = Action::new("get", "namespaces").named(probe_namespace);
        // Only one this run created or reused, i.e. one labelled as ours.
        let ours = match self
            .cluster
            .call(action, namespaces.get_opt(probe_namespace))
            .await
        {
            Ok(Some(ns)) => stack::foreign_namespace_problem(&ns, self.stack).is_none(),
            _ => false,
        };
        if !ours {
            return;
        }
        let deleted = self
            .cluster
            .call(
                Action::new("delete", "namespaces").named(probe_namespace),
                namespaces.delete(probe_namespace, &DeleteParams::default()),
            )
            .await;
        if let Err(err) = deleted.map(|_| ()).or_else(ignore_not_found) {
            eprintln!("Warning: namespace \"{probe_namespace}\" was not removed: {err}");
        }
    }
}

/// A probe pod that passes Pod Security `restricted` anywhere: non-root,
/// no capabilities, no privilege escalation, RuntimeDefault seccomp, a
/// read-only root, small limits, and a deadline after which it ends itself.
fn probe_pod(
    namespace: &str,
    name: &str,
    image: &str,
    placement: &Placement,
    addresses: &[String],
) -> Pod {
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    let mut command = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        PROBE_SCRIPT.to_owned(),
        "probe".to_owned(),
    ];
    command.extend(addresses.iter().cloned());
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(probe_labels()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "probe".to_owned(),
                image: Some(image.to_owned()),
                command: Some(command),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities("10m", "16Mi")),
                    limits: Some(quantities("100m", "32Mi")),
                    ..Default::default()
                }),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    capabilities: Some(Capabilities {
                        drop: Some(vec!["ALL".to_owned()]),
                        ..Default::default()
                    }),
                    read_only_root_filesystem: Some(true),
                    run_as_non_root: Some(true),
                    run_as_user: Some(PROBE_USER),
                    run_as_group: Some(PROBE_USER),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            restart_policy: Some("Never".to_owned()),
            active_deadline_seconds: Some(PROBE_DEADLINE_SECONDS),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(0),
            node_selector: placement.node_selector.clone(),
            tolerations: placement.tolerations.clone(),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(PROBE_USER),
                run_as_group: Some(PROBE_USER),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ignore_not_found(err: Error) -> Result<()> {
    if err.is_not_found() { Ok(()) } else { Err(err) }
}

/// Why traffic passed, from what the cluster shows: a missing policy first,
/// then what is known about the CNI. Every lookup may be forbidden; then the
/// generic explanation remains.
async fn reasons(cluster: &Cluster, test_namespace: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    let policies: Api<NetworkPolicy> = Api::namespaced(cluster.client.clone(), test_namespace);
    let action = Action::new("get", "networkpolicies")
        .named(NETWORK_POLICY)
        .in_namespace(Some(test_namespace));
    if let Ok(None) = cluster.call(action, policies.get_opt(NETWORK_POLICY)).await {
        reasons.push(format!(
            "the stack's NetworkPolicy \"{NETWORK_POLICY}\" is missing from namespace \
             \"{test_namespace}\" (`kubectl devenv up` puts it back)"
        ));
    }
    let daemonsets: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), "kube-system");
    let daemonsets: Vec<String> = cluster
        .call(
            Action::new("list", "daemonsets").in_namespace(Some("kube-system")),
            daemonsets.list(&ListParams::default()),
        )
        .await
        .map(|l| l.items.iter().map(|d| d.name_any()).collect())
        .unwrap_or_default();
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let kubelets: Vec<String> = cluster
        .call(
            Action::new("list", "nodes"),
            nodes.list(&ListParams::default().limit(20)),
        )
        .await
        .map(|l| {
            l.items
                .iter()
                .filter_map(|n| {
                    Some(
                        n.status
                            .as_ref()?
                            .node_info
                            .as_ref()?
                            .kubelet_version
                            .clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    reasons.extend(cni_reasons(&daemonsets, &kubelets));
    reasons
}

/// What the kube-system DaemonSets and kubelet versions say about policy
/// enforcement (pure, for the tests).
pub fn cni_reasons(daemonsets: &[String], kubelet_versions: &[String]) -> Vec<String> {
    let has = |name: &str| daemonsets.iter().any(|d| d.contains(name));
    let enforcer = [
        "calico",
        "cilium",
        "kube-router",
        "canal",
        "antrea",
        "weave",
    ]
    .iter()
    .any(|e| has(e));
    let mut reasons = Vec::new();
    if has("aws-node") && !enforcer {
        reasons.push(
            "this looks like EKS: the Amazon VPC CNI enforces NetworkPolicy only when its \
             network policy agent is on, and it is off by default; set enableNetworkPolicy \
             to \"true\" in the vpc-cni add-on's configuration (aws eks update-addon \
             --addon-name vpc-cni --configuration-values '{\"enableNetworkPolicy\":\"true\"}'), \
             or install Calico or Cilium"
                .to_owned(),
        );
    } else if kubelet_versions.iter().any(|v| v.contains("k3s")) && !enforcer {
        reasons.push(
            "this looks like k3s: its embedded network policy controller is off when the \
             server runs with --disable-network-policy, and with --flannel-backend=none the \
             CNI installed instead must enforce policies; remove the flag or install a CNI \
             that does (Calico, Cilium)"
                .to_owned(),
        );
    } else if has("flannel") && !enforcer {
        reasons.push(
            "flannel does not enforce NetworkPolicy; add a policy controller (Calico as \
             canal, or kube-router) or use a CNI that enforces it"
                .to_owned(),
        );
    }
    if reasons.is_empty() {
        reasons.push(
            "the API server accepts NetworkPolicy objects on every cluster, but only the CNI \
             plugin or a policy controller applies them; this cluster's does not (Calico, \
             Cilium and kube-router do)"
                .to_owned(),
        );
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(service: &str, dev: Reach, outside: Reach) -> Target {
        Target {
            service: service.into(),
            address: format!("10.96.0.1:{}", service.len()),
            from_dev_namespace: dev,
            from_outside: outside,
        }
    }

    #[test]
    fn probe_lines_become_verdicts() {
        let out = "probe 10.96.0.12:3306 rc=0\nprobe 10.96.0.13:6379 rc=1\n\
                   probe 10.96.0.14:5432 rc=143\nnoise\nprobe 10.96.0.15:11211 rc=127\n";
        let parsed = parse_probe_output(out);
        assert_eq!(parsed["10.96.0.12:3306"], Reach::Open);
        assert_eq!(parsed["10.96.0.13:6379"], Reach::Blocked);
        assert_eq!(parsed["10.96.0.14:5432"], Reach::Open);
        // No nc in the image (127) is no connection either.
        assert_eq!(parsed["10.96.0.15:11211"], Reach::Blocked);
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn enforced_only_when_every_answering_service_is_blocked_from_outside() {
        use Reach::*;
        assert!(
            verdict(&[
                target("mysql", Open, Blocked),
                target("redis", Open, Blocked)
            ])
            .unwrap()
        );
        assert!(!verdict(&[target("mysql", Open, Blocked), target("redis", Open, Open)]).unwrap());
        // A Service that answers nobody does not count.
        assert!(
            verdict(&[
                target("mysql", Open, Blocked),
                target("php", Blocked, Blocked)
            ])
            .unwrap()
        );
        let err = verdict(&[target("mysql", Blocked, Blocked)]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot tell whether isolation is enforced")
        );
    }

    #[test]
    fn the_reasons_name_the_platform() {
        let eks = cni_reasons(&["aws-node".into(), "kube-proxy".into()], &[]);
        assert!(eks[0].contains("enableNetworkPolicy"), "{eks:?}");
        let eks_with_calico = cni_reasons(&["aws-node".into(), "calico-node".into()], &[]);
        assert!(!eks_with_calico[0].contains("enableNetworkPolicy"));
        let k3s = cni_reasons(&[], &["v1.31.4+k3s1".into()]);
        assert!(k3s[0].contains("--disable-network-policy"), "{k3s:?}");
        let flannel = cni_reasons(&["kube-flannel-ds".into()], &["v1.36.3".into()]);
        assert!(
            flannel[0].starts_with("flannel does not enforce"),
            "{flannel:?}"
        );
        let generic = cni_reasons(&[], &[]);
        assert!(generic[0].contains("only the CNI plugin or a policy controller"));
    }

    #[test]
    fn the_table_shows_both_sides_and_why() {
        let report = IsolationReport {
            stack: "shop".into(),
            dev_namespace: "dev".into(),
            test_namespace: "test".into(),
            probe_namespace: "shop-isolation-probe".into(),
            probe_image: "busybox:1.37".into(),
            targets: vec![Target {
                service: "mysql".into(),
                address: "10.96.0.12:3306".into(),
                from_dev_namespace: Reach::Open,
                from_outside: Reach::Open,
            }],
            verdict: "not enforced".into(),
            enforced: false,
            reasons: vec!["flannel does not enforce NetworkPolicy".into()],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["mysql", "10.96.0.12:3306", "open", "open"]
        );
        assert!(text.contains(
            "Verdict:  not enforced: a pod in namespace \"shop-isolation-probe\" reached the test stack"
        ));
        assert!(text.contains("Why:      flannel does not enforce NetworkPolicy"));
    }

    #[test]
    fn probe_pods_pass_pod_security_restricted() {
        let placement = Placement {
            node_selector: Some(BTreeMap::from([("pool".into(), "dev".into())])),
            tolerations: None,
        };
        let pod = probe_pod(
            "dev",
            "isolation-probe-abcde",
            "busybox:1.37",
            &placement,
            &["10.96.0.12:3306".to_owned()],
        );
        let spec = pod.spec.unwrap();
        let container = &spec.containers[0];
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_owned()])
        );
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(
            spec.security_context
                .unwrap()
                .seccomp_profile
                .unwrap()
                .type_,
            "RuntimeDefault"
        );
        assert!(container.resources.as_ref().unwrap().limits.is_some());
        assert_eq!(spec.node_selector.unwrap()["pool"], "dev");
        assert_eq!(
            container.command.as_ref().unwrap().last().unwrap(),
            "10.96.0.12:3306"
        );
    }
}
