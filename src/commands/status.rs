//! `kubectl devenv status`: one row per managed component, with the health
//! and placement facts a developer needs (ready, restarts, node, architecture).

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::nodes;
use crate::error::{Action, Error, Result};
use crate::{labels, output};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this stack
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,

    /// Exit with 1 when a component is not fully ready (for scripts)
    #[arg(long)]
    pub exit_code: bool,
}

/// One managed workload and where its pods run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
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
    pub fn healthy(&self) -> bool {
        self.ready >= self.desired
    }
}

#[derive(Debug, Serialize)]
struct StatusReport {
    components: Vec<ComponentStatus>,
}

pub async fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<()> {
    let cluster = Cluster::connect(global).await?;
    let components = collect(&cluster, args.stack.as_deref()).await?;
    let unhealthy = components.iter().any(|c| !c.healthy());
    let report = StatusReport { components };
    if let Some(text) = output::structured(global.output, &report)? {
        print!("{text}");
    } else if report.components.is_empty() {
        eprintln!("{}", nothing_found(&cluster, args.stack.as_deref()));
    } else {
        output::print_table(&render_table(&report.components));
    }
    if args.exit_code && unhealthy {
        return Err(Error::Other("the stack is not healthy".into()));
    }
    Ok(())
}

fn nothing_found(cluster: &Cluster, stack: Option<&str>) -> String {
    let what = match stack {
        Some(stack) => format!("No kubectl-devenv stack named \"{stack}\" found"),
        None => "No kubectl-devenv stacks found".to_owned(),
    };
    if cluster.namespace_from_flag {
        format!("{what} in namespace \"{}\".", cluster.namespace)
    } else {
        format!("{what} in the cluster. Create one with `kubectl devenv up`.")
    }
}

/// Reads the managed workloads, their pods and the nodes' architectures, in
/// one namespace with `-n` or across the cluster otherwise.
pub async fn collect(cluster: &Cluster, stack: Option<&str>) -> Result<Vec<ComponentStatus>> {
    let selector = match stack {
        Some(stack) => labels::stack_selector(stack),
        None => labels::managed_selector(),
    };
    let params = ListParams::default().labels(&selector);
    let scope = cluster
        .namespace_from_flag
        .then_some(cluster.namespace.as_str());
    let deployments: Api<Deployment> = scoped_api(cluster, scope);
    let statefulsets: Api<StatefulSet> = scoped_api(cluster, scope);
    let pods: Api<Pod> = scoped_api(cluster, scope);
    let action = |resource: &str| Action::new("list", resource).in_namespace(scope);
    // In parallel, but errors reported in a fixed order so messages are stable.
    let (deployments, statefulsets, pods) = tokio::join!(
        cluster.call(action("deployments"), deployments.list(&params)),
        cluster.call(action("statefulsets"), statefulsets.list(&params)),
        cluster.call(action("pods"), pods.list(&params)),
    );
    let (deployments, statefulsets, pods) = (deployments?, statefulsets?, pods?);
    let mut workloads: Vec<Workload> = Vec::new();
    workloads.extend(deployments.items.into_iter().map(|d| {
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
    workloads.extend(statefulsets.items.into_iter().map(|s| {
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
        node_architectures(cluster).await
    };
    let mut rows: Vec<ComponentStatus> = workloads
        .iter()
        .map(|w| w.status(&pods.items, architectures.as_ref()))
        .collect();
    rows.sort_by(|a, b| {
        (&a.stack, &a.namespace, &a.component).cmp(&(&b.stack, &b.namespace, &b.component))
    });
    Ok(rows)
}

fn scoped_api<K>(cluster: &Cluster, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(cluster.client.clone(), ns),
        None => Api::all(cluster.client.clone()),
    }
}

/// Node name → architecture. Listing nodes needs a cluster-wide permission
/// that restricted users lack; the column then shows `?` instead of failing.
async fn node_architectures(cluster: &Cluster) -> Option<BTreeMap<String, String>> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    match cluster
        .call(
            Action::new("list", "nodes"),
            nodes.list(&ListParams::default()),
        )
        .await
    {
        Ok(list) => Some(
            list.items
                .iter()
                .map(|node| (node.name_any(), nodes::architecture(node)))
                .collect(),
        ),
        Err(err) => {
            eprintln!("Warning: cannot read the nodes' architectures ({err}); ARCH shows ?");
            None
        }
    }
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

/// Whether the workload's `matchLabels` select the pod (the only form our
/// workloads use; `matchExpressions` would select nothing here).
fn selects(selector: Option<&LabelSelector>, pod: &Pod) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return false;
    }
    let wanted = selector.match_labels.clone().unwrap_or_default();
    let have = pod.labels();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| have.get(k) == Some(v))
}

fn render_table(rows: &[ComponentStatus]) -> comfy_table::Table {
    let mut table = output::table([
        "STACK",
        "NAMESPACE",
        "COMPONENT",
        "READY",
        "RESTARTS",
        "AGE",
        "IMAGE",
        "NODE",
        "ARCH",
    ]);
    let list = |items: &[String]| {
        if items.is_empty() {
            "<none>".to_owned()
        } else {
            items.join(",")
        }
    };
    for row in rows {
        table.add_row([
            if row.stack.is_empty() {
                "<none>".to_owned()
            } else {
                row.stack.clone()
            },
            row.namespace.clone(),
            row.component.clone(),
            format!("{}/{}", row.ready, row.desired),
            row.restarts.to_string(),
            row.age.clone(),
            list(&row.images),
            list(&row.nodes),
            list(&row.architectures),
        ]);
    }
    table
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

    #[test]
    fn architecture_prefers_the_label() {
        let mut node = Node::default();
        node.metadata.labels = Some([("kubernetes.io/arch".into(), "arm64".into())].into());
        assert_eq!(nodes::architecture(&node), "arm64");
        assert_eq!(nodes::architecture(&Node::default()), "unknown");
    }
}
