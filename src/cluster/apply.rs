//! Server-side apply of rendered objects: one field manager, namespaces
//! first, then everything else in parallel. Applying unchanged objects is a
//! no-op on the server (no new resourceVersion, no pod restarts).

use std::collections::BTreeSet;

use std::fmt::Debug;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Resource;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::{Cluster, ResourceScope, Scope};
use crate::error::Result;
use crate::labels;
use crate::render::{Object, RETAIN};

/// The field manager of every object kubectl-devenv applies.
pub(crate) const FIELD_MANAGER: &str = "kubectl-devenv";
/// Requests in flight at once; enough to apply a stack in one round trip
/// without tripping API priority and fairness on small clusters.
const PARALLEL_APPLIES: usize = 16;

/// Applies `objects`: the namespaces, then the rest concurrently.
pub(crate) async fn apply_all(cluster: &Cluster, objects: &[Object]) -> Result<()> {
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
pub(crate) async fn apply(cluster: &Cluster, object: &Object) -> Result<()> {
    tracing::debug!(kind = object.kind(), name = object.name(), "apply");
    match object {
        Object::Namespace(o) => patch(cluster, o).await,
        Object::Secret(o) => patch(cluster, o).await,
        Object::ConfigMap(o) => patch(cluster, o).await,
        Object::NetworkPolicy(o) => patch(cluster, o).await,
        Object::Service(o) => patch(cluster, o).await,
        Object::Deployment(o) => patch(cluster, o).await,
        Object::StatefulSet(o) => patch(cluster, o).await,
        Object::PersistentVolumeClaim(o) => patch(cluster, o).await,
    }
}

async fn patch<K>(cluster: &Cluster, object: &K) -> Result<()>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::Scope: ResourceScope,
    K::DynamicType: Default,
{
    let scope = match &object.meta().namespace {
        Some(namespace) => Scope::Namespace(namespace.clone()),
        None => Scope::All,
    };
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    cluster
        .call(
            cluster.action::<K>("patch", &scope).named(&name),
            cluster
                .api::<K>(&scope)
                .patch(&name, &params, &Patch::Apply(object)),
        )
        .await?;
    Ok(())
}

/// Deletes what an earlier `up` of this stack created and the spec no longer
/// has (a removed component's workload, Service and alias), so that `up`
/// converges on the spec. Data volumes and credential Secrets (labelled
/// `render::RETAIN`) are kept, as `down` keeps them.
pub(crate) async fn prune(
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
        let scope = Scope::Namespace((*ns).to_owned());
        pruned += prune_kind::<Deployment>(cluster, &scope, &selector, &wanted).await?;
        pruned += prune_kind::<StatefulSet>(cluster, &scope, &selector, &wanted).await?;
        pruned += prune_kind::<Service>(cluster, &scope, &selector, &wanted).await?;
        pruned += prune_kind::<ConfigMap>(cluster, &scope, &selector, &wanted).await?;
        pruned += prune_kind::<NetworkPolicy>(cluster, &scope, &selector, &wanted).await?;
    }
    Ok(pruned)
}

async fn prune_kind<K>(
    cluster: &Cluster,
    scope: &Scope,
    selector: &str,
    wanted: &BTreeSet<(&str, &str, &str)>,
) -> Result<usize>
where
    K: Resource + DeserializeOwned + Clone + Debug,
    K::Scope: ResourceScope,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let ns = scope.namespace().unwrap_or_default();
    let api = cluster.api::<K>(scope);
    let existing: Vec<K> = cluster.list(scope, selector).await?;
    let mut pruned = 0;
    for object in &existing {
        let name = object.meta().name.clone().unwrap_or_default();
        if wanted.contains(&(kind.as_str(), ns, name.as_str())) {
            continue;
        }
        tracing::info!("pruning {kind} {ns}/{name}: no longer in the spec");
        cluster
            .call(
                cluster.action::<K>("delete", scope).named(&name),
                api.delete(&name, &DeleteParams::background()),
            )
            .await?;
        pruned += 1;
    }
    Ok(pruned)
}
