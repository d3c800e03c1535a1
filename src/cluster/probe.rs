//! `check --isolation`'s cluster side: the stack's Services and dev
//! placement, the probe namespace and pods (always cleaned up), and what the
//! cluster says about its policy enforcement.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, LogParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};

use super::wait::{self, When, diagnose};
use super::{Cluster, stack};
use crate::duration::humanize;
use crate::error::{Action, Error, Result};
use crate::isolation::{
    Placement, Reach, cni_reasons, parse_probe_output, probe_labels, probe_pod,
};
use crate::labels;
use crate::render::{NETWORK_POLICY, ROLE};
use crate::spec;

/// The stack's dev and test namespaces, from their role labels.
pub(crate) async fn stack_namespaces(cluster: &Cluster, name: &str) -> Result<(String, String)> {
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
pub(crate) async fn stack_services(
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
pub(crate) async fn dev_placement(cluster: &Cluster, namespace: &str) -> Result<Placement> {
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

/// Five random lowercase letters and digits, so that runs never collide.
pub(crate) fn suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub(crate) struct Probe<'a> {
    pub cluster: &'a Cluster,
    pub stack: &'a str,
    pub image: &'a str,
    pub placement: Placement,
    pub addresses: Vec<String>,
    pub pod_name: String,
}

impl Probe<'_> {
    /// Both probes at once: `(outside, dev namespace)`.
    pub(crate) async fn run_both(
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
    pub(crate) async fn clean_up(&self, probe_namespace: &str, dev_namespace: &str) {
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

fn ignore_not_found(err: Error) -> Result<()> {
    if err.is_not_found() { Ok(()) } else { Err(err) }
}

/// Why traffic passed, from what the cluster shows: a missing policy first,
/// then what is known about the CNI. Every lookup may be forbidden; then the
/// generic explanation remains.
pub(crate) async fn reasons(cluster: &Cluster, test_namespace: &str) -> Vec<String> {
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
