//! The nodes: which architectures the cluster can run, for `up`'s gate,
//! `check`, `status` and the wait's exec-format diagnosis.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use super::{Cluster, Scope};
use crate::error::{Error, Result};

/// A node's architecture from the `kubernetes.io/arch` label, else its
/// nodeInfo, else `unknown`.
pub(crate) fn architecture(node: &Node) -> String {
    node.labels()
        .get("kubernetes.io/arch")
        .cloned()
        .or_else(|| {
            node.status
                .as_ref()?
                .node_info
                .as_ref()
                .map(|i| i.architecture.clone())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Every node. Listing them needs a cluster-wide permission that restricted
/// users lack, so callers decide whether a refusal is fatal.
pub(crate) async fn list(cluster: &Cluster) -> Result<Vec<Node>> {
    cluster.list(&Scope::All, "").await
}

/// The nodes, or `None` when RBAC refuses the list: the checks that need
/// them then only warn (`warn` says what went unchecked).
pub(crate) async fn list_or_warn(
    cluster: &Cluster,
    warn: impl FnOnce(&Error),
) -> Result<Option<Vec<Node>>> {
    match list(cluster).await {
        Ok(nodes) => Ok(Some(nodes)),
        Err(err) if err.is_forbidden() => {
            warn(&err);
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Node name → architecture.
pub(crate) async fn architectures(cluster: &Cluster) -> Result<BTreeMap<String, String>> {
    Ok(list(cluster)
        .await?
        .iter()
        .map(|node| (node.name_any(), architecture(node)))
        .collect())
}

/// Architecture → number of nodes.
pub(crate) async fn architecture_counts(cluster: &Cluster) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for arch in architectures(cluster).await?.into_values() {
        *counts.entry(arch).or_insert(0) += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_prefers_the_label() {
        let mut node = Node::default();
        node.metadata.labels = Some([("kubernetes.io/arch".into(), "arm64".into())].into());
        assert_eq!(architecture(&node), "arm64");
        assert_eq!(architecture(&Node::default()), "unknown");
    }
}
