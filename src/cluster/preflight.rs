//! What `up` reads from the cluster before it applies anything: whose the
//! namespaces are, which nodes can run the stack (and which one has
//! `--code-path`), what storage the cluster offers, and the credentials a
//! previous run generated. Each probe is read-only.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Taint, Toleration};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::{Api, ResourceExt};

use super::{Cluster, Scope, nodes, stack};
use crate::duration::humanize;
use crate::error::{Action, Error, Result};
use crate::labels;
use crate::render::{self, Credentials, StoragePlan};
use crate::spec::{self, Spec};

/// Refuses namespaces kubectl-devenv did not create for this stack, and
/// waits out a namespace still terminating after `down --purge`.
pub(crate) async fn check_namespaces(
    cluster: &Cluster,
    spec: &Spec,
    timeout: Duration,
) -> Result<()> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let started = std::time::Instant::now();
    for name in spec.namespaces() {
        loop {
            let action = Action::new("get", "namespaces").named(name);
            let Some(namespace) = cluster.call(action, api.get_opt(name)).await? else {
                break;
            };
            if let Some(problem) = stack::foreign_namespace_problem(&namespace, &spec.name) {
                return Err(Error::Other(format!(
                    "{problem}; choose other namespaces in {} (spec.namespaces) or with --dev-namespace/--test-namespace",
                    spec::DEFAULT_FILE
                )));
            }
            if namespace.metadata.deletion_timestamp.is_none() {
                break;
            }
            if started.elapsed() >= timeout {
                return Err(Error::Other(format!(
                    "namespace \"{name}\" is still terminating after {}",
                    humanize(timeout)
                )));
            }
            tracing::info!("waiting for namespace {name} to finish terminating");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// Refuses a target architecture no node has: the pods would never be
/// scheduled. Without permission to list nodes, only warns.
pub(crate) async fn check_target_arch(cluster: &Cluster, spec: &Spec) -> Result<()> {
    let Some(arch) = &spec.target_arch else {
        return Ok(());
    };
    let Some(nodes) = nodes::list_or_warn(cluster, |err| {
        eprintln!("Warning: cannot list nodes to check for {arch} nodes: {err}");
    })
    .await?
    else {
        return Ok(());
    };
    let arches: std::collections::BTreeSet<String> =
        nodes.iter().map(nodes::architecture).collect();
    if arches.contains(arch.architecture()) {
        return Ok(());
    }
    Err(Error::Other(format!(
        "no node has architecture {arch} (the nodes are: {}); change targetArch / --arch, or pass --skip-arch-check",
        if arches.is_empty() {
            "none".to_owned()
        } else {
            arches.into_iter().collect::<Vec<_>>().join(", ")
        }
    )))
}

/// A hostPath is a directory on one node, so with `--code-path` the dev pod
/// runs on the node that has it: the one named by `--code-path-node` /
/// `dev.codePathNode`, else the only node that can run the dev pod. Among
/// several, any guess would be wrong on every other node (the pod would hang
/// in ContainerCreating), so `up` refuses and names them.
pub(crate) async fn pin_code_path(cluster: &Cluster, spec: &Spec) -> Result<Spec> {
    let mut spec = spec.clone();
    let Some(path) = spec.dev.code_path.clone() else {
        return Ok(spec);
    };
    let named = spec.dev.code_path_node.is_some();
    let Some(list) = nodes::list_or_warn(cluster, |err| {
        if !named {
            eprintln!(
                "Warning: cannot list nodes to find the one that has {}: {err}; \
                 the dev pod may land on a node without it (set --code-path-node)",
                path.display()
            );
        }
    })
    .await?
    else {
        return Ok(spec);
    };
    let candidates = code_path_candidates(&list, &spec);
    match &spec.dev.code_path_node {
        Some(node) if !list.iter().any(|n| n.name_any() == *node) => Err(Error::Other(format!(
            "node \"{node}\" (--code-path-node / dev.codePathNode) does not exist"
        ))),
        Some(node) if !candidates.contains(node) => Err(Error::Other(format!(
            "node \"{node}\" (--code-path-node / dev.codePathNode) cannot run the dev pod: \
             it is not Ready, is cordoned, or does not match the stack's placement, targetArch \
             or tolerations{}",
            nodes_hint(&candidates)
        ))),
        Some(_) => Ok(spec),
        None => match candidates.as_slice() {
            [only] => {
                eprintln!(
                    "Mounting {} from node \"{only}\", the only node that can run the dev pod.",
                    path.display()
                );
                spec.dev.code_path_node = Some(only.clone());
                Ok(spec)
            }
            [] => Err(Error::Other(
                "--code-path: no Ready, schedulable node matches the stack's placement and targetArch"
                    .into(),
            )),
            several => Err(Error::Other(format!(
                "--code-path {} is a directory on one node, and {} nodes can run the dev pod: \
                 name the one that has it with --code-path-node NODE (or dev.codePathNode in {}){}",
                path.display(),
                several.len(),
                spec::DEFAULT_FILE,
                nodes_hint(several)
            ))),
        },
    }
}

fn nodes_hint(nodes: &[String]) -> String {
    const SHOWN: usize = 5;
    match nodes.len() {
        0 => String::new(),
        n if n <= SHOWN => format!(" (nodes that can: {})", nodes.join(", ")),
        n => format!(
            " (nodes that can: {}, and {} more)",
            nodes[..SHOWN].join(", "),
            n - SHOWN
        ),
    }
}

/// The nodes the dev pod can be scheduled on, as far as placement goes:
/// Ready, not cordoned, matching the node selector (placement plus
/// targetArch), with every NoSchedule/NoExecute taint tolerated.
fn code_path_candidates(nodes: &[Node], spec: &Spec) -> Vec<String> {
    let selector = render::node_selector(spec).unwrap_or_default();
    nodes
        .iter()
        .filter(|node| {
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let cordoned = node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            let labels = node.labels();
            let selected = selector
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|l| l == v));
            let tolerated = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .filter(|t| t.effect != "PreferNoSchedule")
                .all(|taint| {
                    spec.placement
                        .tolerations
                        .iter()
                        .any(|t| tolerates(t, taint))
                });
            ready && !cordoned && selected && tolerated
        })
        .map(|node| node.name_any())
        .collect()
}

/// The scheduler's rule: an empty key with `Exists` tolerates everything;
/// otherwise the keys match, the values match (or `Exists`), and the
/// effects match (or the toleration names none).
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let exists = toleration.operator.as_deref() == Some("Exists");
    let key = toleration.key.as_deref().unwrap_or_default();
    let effect_ok = toleration
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    if key.is_empty() {
        return exists && effect_ok;
    }
    let value_ok = exists
        || toleration.value.as_deref().unwrap_or_default()
            == taint.value.as_deref().unwrap_or_default();
    key == taint.key && value_ok && effect_ok
}

/// PVCs when the cluster has a default StorageClass, else emptyDir (with a
/// warning). A StatefulSet that already exists keeps the kind of volume it
/// was created with: its claim templates cannot be changed.
pub(crate) async fn storage_plan(cluster: &Cluster, spec: &Spec) -> Result<StoragePlan> {
    let default_mode = match cluster.list::<StorageClass>(&Scope::All, "").await {
        Ok(classes) if classes.iter().any(is_default_class) => render::StorageMode::Persistent,
        Ok(_) => render::StorageMode::Ephemeral,
        Err(err) if err.is_forbidden() => {
            tracing::warn!("cannot list StorageClasses: {err}");
            render::StorageMode::Ephemeral
        }
        Err(err) => return Err(err),
    };
    let existing: Vec<StatefulSet> = cluster
        .list(
            &Scope::Namespace(spec.test_namespace.clone()),
            &labels::stack_selector(&spec.name),
        )
        .await?;
    let mut per_component = BTreeMap::new();
    for sts in &existing {
        let has_claims = sts
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_ref())
            .is_some_and(|c| !c.is_empty());
        let mode = if has_claims {
            render::StorageMode::Persistent
        } else {
            render::StorageMode::Ephemeral
        };
        if let Some(component) = sts.labels().get(labels::COMPONENT) {
            per_component.insert(component.clone(), mode);
        }
    }
    let plan = StoragePlan {
        default: default_mode,
        per_component,
    };
    let ephemeral: Vec<&str> = spec
        .components
        .iter()
        .filter(|c| c.storage.as_ref().is_some_and(|s| s.class_name.is_none()))
        .filter(|c| plan.mode_for(&c.name) == render::StorageMode::Ephemeral)
        .map(|c| c.name.as_str())
        .collect();
    if spec.dev.sync.persist && default_mode == render::StorageMode::Ephemeral {
        eprintln!(
            "Warning: the cluster has no default StorageClass; sync.persist falls back to an emptyDir, \
             so the synced code is uploaded again when the dev pod is replaced"
        );
    }
    if !ephemeral.is_empty() {
        eprintln!(
            "Warning: the cluster has no default StorageClass; {} keep{} data in emptyDir volumes, \
             which are lost with the pod (set storage.className to use a class)",
            ephemeral.join(", "),
            if ephemeral.len() == 1 {
                "s its"
            } else {
                " their"
            }
        );
    }
    Ok(plan)
}

fn is_default_class(class: &StorageClass) -> bool {
    let annotations = class.annotations();
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| annotations.get(*key).map(String::as_str) == Some("true"))
}

/// The credentials already in the cluster: the test namespace's Secret, else
/// its copy in the dev namespace (an interrupted run may have written only one).
pub(crate) async fn existing_credentials(cluster: &Cluster, spec: &Spec) -> Result<Credentials> {
    let mut found = Credentials::new();
    for component in &spec.components {
        if !component.has_credentials() {
            continue;
        }
        let name = render::credentials_secret_name(&component.name);
        for ns in [&spec.test_namespace, &spec.dev_namespace] {
            let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
            let action = Action::new("get", "secrets")
                .named(&name)
                .in_namespace(Some(ns));
            let Some(secret) = cluster.call(action, secrets.get_opt(&name)).await? else {
                continue;
            };
            let values: BTreeMap<String, String> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v)))
                .collect();
            if !values.is_empty() {
                found.insert(component.name.clone(), values);
                break;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taint: Option<&str>, ready: bool) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>()},
            "spec": {"taints": taint.map(|key| vec![serde_json::json!({"key": key, "effect": "NoSchedule"})])},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_code_path_goes_to_the_nodes_that_can_run_the_dev_pod() {
        let nodes = [
            node("a", &[("kubernetes.io/arch", "amd64")], None, true),
            node("b", &[("kubernetes.io/arch", "arm64")], None, true),
            node("c", &[("kubernetes.io/arch", "amd64")], None, false),
            node(
                "pool",
                &[("kubernetes.io/arch", "amd64"), ("dev", "true")],
                Some("dev"),
                true,
            ),
        ];
        let parsed = |extra: &str| {
            spec::parse(
                &format!(
                    "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {{name: a}}\nspec:\n{extra}  dev: {{codePath: /src}}\n  components: [{{kind: redis}}]\n"
                ),
                "x",
            )
            .unwrap()
        };
        assert_eq!(code_path_candidates(&nodes, &parsed("")), ["a", "b"]);
        assert_eq!(
            code_path_candidates(&nodes, &parsed("  targetArch: amd64\n")),
            ["a"]
        );
        let placed = parsed(
            "  placement: {nodeSelector: {dev: \"true\"}, tolerations: [{key: dev, operator: Exists, effect: NoSchedule}]}\n",
        );
        assert_eq!(code_path_candidates(&nodes, &placed), ["pool"]);
        assert!(nodes_hint(&["a".into(), "b".into()]).contains("a, b"));
    }

    #[test]
    fn default_classes_are_recognised() {
        let mut class = StorageClass::default();
        assert!(!is_default_class(&class));
        class.metadata.annotations = Some(
            [(
                "storageclass.kubernetes.io/is-default-class".to_owned(),
                "true".to_owned(),
            )]
            .into(),
        );
        assert!(is_default_class(&class));
    }
}
