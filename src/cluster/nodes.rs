//! The nodes: which architectures the cluster can run, for `up`'s gate,
//! `check`, `status` and the wait's exec-format diagnosis.

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

/// A node's architecture from the `kubernetes.io/arch` label, else its
/// nodeInfo, else `unknown`.
pub fn architecture(node: &Node) -> String {
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
