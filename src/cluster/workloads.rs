//! The stack's workloads as the API server sees them: `status`'s rows and
//! `check`'s deployed images.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};
use serde::Serialize;

use super::{Cluster, Scope, nodes};
use crate::error::Result;
use crate::{labels, output};

/// One managed workload and where its pods run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ComponentStatus {
    pub stack: String,
    pub namespace: String,
    pub component: String,
    pub kind: &'static str,
    pub name: String,
    pub ready: i32,
    pub desired: i32,
    pub restarts: i32,
    pub age: String,
    pub images: Vec<String>,
    pub nodes: Vec<String>,
    pub architectures: Vec<String>,
}

impl ComponentStatus {
    pub(crate) fn healthy(&self) -> bool {
        self.ready >= self.desired
    }
}

/// Reads the managed workloads, their pods and the nodes' architectures, in
/// one namespace with `-n` or across the cluster otherwise.
pub(crate) async fn statuses(
    cluster: &Cluster,
    scope: &Scope,
    stack: Option<&str>,
) -> Result<Vec<ComponentStatus>> {
    let selector = match stack {
        Some(stack) => labels::stack_selector(stack),
        None => labels::managed_selector(),
    };
    // In parallel, but errors reported in a fixed order so messages are stable.
    let (deployments, statefulsets, pods) = tokio::join!(
        cluster.list::<Deployment>(scope, &selector),
        cluster.list::<StatefulSet>(scope, &selector),
        cluster.list::<Pod>(scope, &selector),
    );
    let (deployments, statefulsets, pods) = (deployments?, statefulsets?, pods?);
    let mut workloads: Vec<Workload> = Vec::new();
    workloads.extend(deployments.into_iter().map(|d| {
        Workload {
            kind: "Deployment",
            desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            selector: d.spec.as_ref().map(|s| s.selector.clone()),
            pod_spec: d.spec.and_then(|s| s.template.spec),
            metadata: d.metadata,
        }
    }));
    workloads.extend(statefulsets.into_iter().map(|s| {
        Workload {
            kind: "StatefulSet",
            desired: s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: s
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            selector: s.spec.as_ref().map(|s| s.selector.clone()),
            pod_spec: s.spec.and_then(|s| s.template.spec),
            metadata: s.metadata,
        }
    }));
    // Nodes only matter for pods to place; an empty listing needs no warning.
    let architectures = if workloads.is_empty() {
        None
    } else {
        // Listing nodes needs a cluster-wide permission that restricted
        // users lack; the column then shows `?` instead of failing.
        nodes::architectures(cluster)
            .await
            .map_err(|err| {
                eprintln!("Warning: cannot read the nodes' architectures ({err}); ARCH shows ?")
            })
            .ok()
    };
    let mut rows: Vec<ComponentStatus> = workloads
        .iter()
        .map(|w| w.status(&pods, architectures.as_ref()))
        .collect();
    rows.sort_by(|a, b| {
        (&a.stack, &a.namespace, &a.component).cmp(&(&b.stack, &b.namespace, &b.component))
    });
    Ok(rows)
}

struct Workload {
    kind: &'static str,
    metadata: ObjectMeta,
    desired: i32,
    ready: i32,
    selector: Option<LabelSelector>,
    pod_spec: Option<PodSpec>,
}

impl Workload {
    fn status(
        &self,
        pods: &[Pod],
        architectures: Option<&BTreeMap<String, String>>,
    ) -> ComponentStatus {
        let namespace = self.metadata.namespace.clone().unwrap_or_default();
        let labels = self.metadata.labels.clone().unwrap_or_default();
        let own_pods: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .filter(|p| selects(self.selector.as_ref(), p))
            .collect();
        let nodes: BTreeSet<String> = own_pods
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        let node_arches: BTreeSet<String> = nodes
            .iter()
            .map(|n| match architectures {
                Some(map) => map.get(n).cloned().unwrap_or_else(|| "unknown".into()),
                None => "?".to_owned(),
            })
            .collect();
        let restarts = own_pods
            .iter()
            .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
            .flatten()
            .map(|c| c.restart_count)
            .sum();
        let name = self.metadata.name.clone().unwrap_or_default();
        ComponentStatus {
            stack: labels.get(labels::STACK).cloned().unwrap_or_default(),
            component: labels
                .get(labels::COMPONENT)
                .cloned()
                .unwrap_or_else(|| name.clone()),
            namespace,
            kind: self.kind,
            name,
            ready: self.ready,
            desired: self.desired,
            restarts,
            age: output::age(self.metadata.creation_timestamp.as_ref()),
            images: self
                .pod_spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .filter_map(|c| c.image.clone())
                .collect(),
            nodes: nodes.into_iter().collect(),
            architectures: node_arches.into_iter().collect(),
        }
    }
}

/// Whether the workload's selector selects the pod. An empty selector
/// would select every pod in the namespace; no workload of ours has one.
fn selects(selector: Option<&LabelSelector>, pod: &Pod) -> bool {
    selector
        .and_then(|s| Selector::try_from(s.clone()).ok())
        .is_some_and(|s| !s.selects_all() && s.matches(pod.labels()))
}

/// (image, `Kind namespace/name`) for every container of every workload.
/// Jobs created by CronJobs and Pods with an owner are covered by their owner.
pub(crate) async fn deployed_images(
    cluster: &Cluster,
    scope: &Scope,
) -> Result<Vec<(String, String)>> {
    let (deployments, statefulsets, daemonsets, cronjobs, jobs, pods) = tokio::join!(
        cluster.list::<Deployment>(scope, ""),
        cluster.list::<StatefulSet>(scope, ""),
        cluster.list::<DaemonSet>(scope, ""),
        cluster.list::<CronJob>(scope, ""),
        cluster.list::<Job>(scope, ""),
        cluster.list::<Pod>(scope, ""),
    );
    let mut found = Vec::new();
    for d in deployments? {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        add_images(&mut found, &d, spec);
    }
    for s in statefulsets? {
        let spec = s.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        add_images(&mut found, &s, spec);
    }
    for d in daemonsets? {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        add_images(&mut found, &d, spec);
    }
    for c in cronjobs? {
        let spec = c.spec.as_ref().and_then(|s| {
            s.job_template
                .spec
                .as_ref()
                .and_then(|j| j.template.spec.as_ref())
        });
        add_images(&mut found, &c, spec);
    }
    for j in jobs?.iter().filter(|j| !owned_by(*j, "CronJob")) {
        let spec = j.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        add_images(&mut found, j, spec);
    }
    for p in pods?.iter().filter(|p| p.owner_references().is_empty()) {
        add_images(&mut found, p, p.spec.as_ref());
    }
    Ok(found)
}

fn owned_by<K: Resource>(object: &K, kind: &str) -> bool {
    object.owner_references().iter().any(|o| o.kind == kind)
}

fn add_images<K>(found: &mut Vec<(String, String)>, object: &K, spec: Option<&PodSpec>)
where
    K: Resource<DynamicType = ()>,
{
    let Some(spec) = spec else {
        return;
    };
    let workload = format!(
        "{}/{}/{}",
        K::kind(&()).to_lowercase(),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    );
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for image in containers.filter_map(|c| c.image.as_deref()) {
        found.push((image.to_owned(), workload.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn selector(labels: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn selector_matches_all_labels() {
        let p = pod(&[("app", "mysql"), ("tier", "db")]);
        assert!(selects(Some(&selector(&[("app", "mysql")])), &p));
        assert!(!selects(Some(&selector(&[("app", "redis")])), &p));
        assert!(!selects(Some(&selector(&[])), &p));
        assert!(!selects(None, &p));
    }
}
