//! Server-side apply of rendered objects: one field manager, namespaces
//! first, then everything else in parallel. Applying unchanged objects is a
//! no-op on the server (no new resourceVersion, no pod restarts).

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::Cluster;
use crate::error::{Action, Result};
use crate::labels;
use crate::render::{Object, RETAIN};

/// The field manager of every object kubectl-devenv applies.
pub const FIELD_MANAGER: &str = "kubectl-devenv";
/// Requests in flight at once; enough to apply a stack in one round trip
/// without tripping API priority and fairness on small clusters.
const PARALLEL_APPLIES: usize = 16;

/// Applies `objects`: the namespaces, then the rest concurrently.
pub async fn apply_all(cluster: &Cluster, objects: &[Object]) -> Result<()> {
    let (namespaces, rest): (Vec<&Object>, Vec<&Object>) = objects
        .iter()
        .partition(|o| matches!(o, Object::Namespace(_)));
    for batch in [namespaces, rest] {
        stream::iter(batch)
            .map(|object| apply(cluster, object))
            .buffer_unordered(PARALLEL_APPLIES)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(())
}

/// Applies one object with `force`, so kubectl-devenv stays the owner of
/// the fields it sets even after someone edited them by hand.
pub async fn apply(cluster: &Cluster, object: &Object) -> Result<()> {
    tracing::debug!(kind = object.kind(), name = object.name(), "apply");
    match object {
        Object::Namespace(ns) => {
            let api: Api<_> = Api::all(cluster.client.clone());
            patch(cluster, api, "namespaces", None, ns).await
        }
        Object::Secret(o) => namespaced(cluster, "secrets", o).await,
        Object::ConfigMap(o) => namespaced(cluster, "configmaps", o).await,
        Object::NetworkPolicy(o) => namespaced(cluster, "networkpolicies", o).await,
        Object::Service(o) => namespaced(cluster, "services", o).await,
        Object::Deployment(o) => namespaced(cluster, "deployments", o).await,
        Object::StatefulSet(o) => namespaced(cluster, "statefulsets", o).await,
        Object::PersistentVolumeClaim(o) => namespaced(cluster, "persistentvolumeclaims", o).await,
    }
}

async fn namespaced<K>(cluster: &Cluster, resource: &'static str, object: &K) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &namespace);
    patch(cluster, api, resource, Some(&namespace), object).await
}

async fn patch<K>(
    cluster: &Cluster,
    api: Api<K>,
    resource: &'static str,
    namespace: Option<&str>,
    object: &K,
) -> Result<()>
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    cluster
        .call(
            Action::new("patch", resource)
                .named(&name)
                .in_namespace(namespace),
            api.patch(&name, &params, &Patch::Apply(object)),
        )
        .await?;
    Ok(())
}

/// Deletes what an earlier `up` of this stack created and the spec no longer
/// has (a removed component's workload, Service and alias), so that `up`
/// converges on the spec. Data volumes and credential Secrets (labelled
/// `render::RETAIN`) are kept, as `down` keeps them.
pub async fn prune(
    cluster: &Cluster,
    stack: &str,
    namespaces: &[&str],
    objects: &[Object],
) -> Result<usize> {
    let wanted: BTreeSet<(&str, &str, &str)> = objects
        .iter()
        .map(|o| (o.kind(), o.namespace().unwrap_or_default(), o.name()))
        .collect();
    let selector = format!("{},!{}", labels::stack_selector(stack), RETAIN);
    let mut pruned = 0;
    for ns in namespaces {
        pruned +=
            prune_kind::<Deployment>(cluster, ns, "Deployment", "deployments", &selector, &wanted)
                .await?;
        pruned += prune_kind::<StatefulSet>(
            cluster,
            ns,
            "StatefulSet",
            "statefulsets",
            &selector,
            &wanted,
        )
        .await?;
        pruned +=
            prune_kind::<Service>(cluster, ns, "Service", "services", &selector, &wanted).await?;
        pruned +=
            prune_kind::<ConfigMap>(cluster, ns, "ConfigMap", "configmaps", &selector, &wanted)
                .await?;
        pruned += prune_kind::<NetworkPolicy>(
            cluster,
            ns,
            "NetworkPolicy",
            "networkpolicies",
            &selector,
            &wanted,
        )
        .await?;
    }
    Ok(pruned)
}

async fn prune_kind<K>(
    cluster: &Cluster,
    ns: &str,
    kind: &str,
    resource: &'static str,
    selector: &str,
    wanted: &BTreeSet<(&str, &str, &str)>,
) -> Result<usize>
where
    K: Resource<Scope = NamespaceResourceScope> + DeserializeOwned + Clone + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), ns);
    let params = ListParams::default().labels(selector);
    let list = cluster
        .call(
            Action::new("list", resource).in_namespace(Some(ns)),
            api.list(&params),
        )
        .await?;
    let mut pruned = 0;
    for object in &list.items {
        let name = object.meta().name.clone().unwrap_or_default();
        if wanted.contains(&(kind, ns, name.as_str())) {
            continue;
        }
        tracing::info!("pruning {kind} {ns}/{name}: no longer in the spec");
        cluster
            .call(
                Action::new("delete", resource)
                    .named(&name)
                    .in_namespace(Some(ns)),
                api.delete(&name, &DeleteParams::background()),
            )
            .await?;
        pruned += 1;
    }
    Ok(pruned)
}
