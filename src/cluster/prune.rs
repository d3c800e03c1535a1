//! `down`'s deletes. Only objects carrying the stack's labels are deleted,
//! and a namespace only when nothing in it is someone else's.

use std::collections::BTreeMap;
use std::fmt::Debug;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::wait::{self, await_condition, conditions::is_deleted};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{Cluster, ResourceScope, Scope, stack};
use crate::error::{Error, Result};
use crate::labels;
use crate::render::RETAIN;

/// The stack's namespaces: those labelled as its own, after checking that
/// none of `named` (the spec's) belongs to someone else; such a namespace is
/// never touched.
pub(crate) async fn owned_namespaces(
    cluster: &Cluster,
    stack_name: &str,
    named: &[String],
) -> Result<Vec<Namespace>> {
    let api = cluster.api::<Namespace>(&Scope::All);
    for name in named {
        let action = cluster.action::<Namespace>("get", &Scope::All).named(name);
        if let Some(namespace) = cluster.call(action, api.get_opt(name)).await?
            && let Some(problem) = stack::foreign_namespace_problem(&namespace, stack_name)
        {
            return Err(Error::Other(problem));
        }
    }
    stack::namespaces(cluster, stack_name).await
}

/// Deletes the stack's objects in one namespace; returns how many. Without
/// `purge`, data volumes and the Secrets marked [`RETAIN`] stay.
pub(crate) async fn delete_stack_objects(
    cluster: &Cluster,
    namespace: &str,
    selector: &str,
    purge: bool,
) -> Result<usize> {
    let scope = Scope::Namespace(namespace.to_owned());
    let without_retained = format!("{selector},!{RETAIN}");
    let secrets = if purge {
        selector
    } else {
        without_retained.as_str()
    };
    let mut count = 0;
    count += delete_collection::<Deployment>(cluster, &scope, selector).await?;
    count += delete_collection::<StatefulSet>(cluster, &scope, selector).await?;
    count += delete_services(cluster, &scope, selector).await?;
    count += delete_collection::<NetworkPolicy>(cluster, &scope, selector).await?;
    count += delete_collection::<ConfigMap>(cluster, &scope, selector).await?;
    count += delete_collection::<Secret>(cluster, &scope, secrets).await?;
    if purge {
        count += delete_collection::<PersistentVolumeClaim>(cluster, &scope, selector).await?;
    }
    Ok(count)
}

async fn delete_collection<K>(cluster: &Cluster, scope: &Scope, selector: &str) -> Result<usize>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::Scope: ResourceScope,
    K::DynamicType: Default,
{
    let api = cluster.api::<K>(scope);
    let params = ListParams::default().labels(selector);
    let deleted = cluster
        .call(
            cluster.action::<K>("deletecollection", scope),
            api.delete_collection(&DeleteParams::background(), &params),
        )
        .await?;
    Ok(deleted.left().map_or(0, |list| list.items.len()))
}

/// Services have no deletecollection before Kubernetes 1.31, so they go one by one.
async fn delete_services(cluster: &Cluster, scope: &Scope, selector: &str) -> Result<usize> {
    let api = cluster.api::<Service>(scope);
    let services: Vec<Service> = cluster.list(scope, selector).await?;
    for service in &services {
        let name = service.name_any();
        cluster
            .call(
                cluster.action::<Service>("delete", scope).named(&name),
                api.delete(&name, &DeleteParams::default()),
            )
            .await?;
    }
    Ok(services.len())
}

/// Deletes a namespace (and so whatever is left in it).
pub(crate) async fn delete_namespace(cluster: &Cluster, name: &str) -> Result<()> {
    let api = cluster.api::<Namespace>(&Scope::All);
    cluster
        .call(
            cluster
                .action::<Namespace>("delete", &Scope::All)
                .named(name),
            api.delete(name, &DeleteParams::default()),
        )
        .await?;
    Ok(())
}

/// Something in the namespace that is not the stack's (other than what
/// Kubernetes puts in every namespace), e.g. `configmap "notes"`.
pub(crate) async fn foreign_object(cluster: &Cluster, namespace: &str) -> Result<Option<String>> {
    let scope = Scope::Namespace(namespace.to_owned());
    let is_ours = |labels: &BTreeMap<String, String>| {
        labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER)
    };
    for cm in cluster.list::<ConfigMap>(&scope, "").await? {
        if cm.name_any() != "kube-root-ca.crt" && !is_ours(cm.labels()) {
            return Ok(Some(format!("configmap \"{}\"", cm.name_any())));
        }
    }
    for secret in cluster.list::<Secret>(&scope, "").await? {
        let service_account_token =
            secret.type_.as_deref() == Some("kubernetes.io/service-account-token");
        if !service_account_token && !is_ours(secret.labels()) {
            return Ok(Some(format!("secret \"{}\"", secret.name_any())));
        }
    }
    for claim in cluster.list::<PersistentVolumeClaim>(&scope, "").await? {
        if !is_ours(claim.labels()) {
            return Ok(Some(format!(
                "persistentvolumeclaim \"{}\"",
                claim.name_any()
            )));
        }
    }
    let not_ours = format!("!{}", labels::MANAGED_BY);
    let foreign_pods: Vec<Pod> = cluster.list(&scope, &not_ours).await?;
    Ok(foreign_pods
        .first()
        .map(|pod| format!("pod \"{}\"", pod.name_any())))
}

/// What is still going away: the stack's pods in `namespaces` and the
/// `deleted_namespaces` that have not finished terminating.
pub(crate) struct Leftovers {
    pub pods: Vec<Pod>,
    pub namespaces: Vec<Namespace>,
}

impl Leftovers {
    pub(crate) fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.namespaces.is_empty()
    }
}

pub(crate) async fn leftovers(
    cluster: &Cluster,
    namespaces: &[String],
    selector: &str,
    deleted_namespaces: &[String],
) -> Result<Leftovers> {
    let mut pods = Vec::new();
    for namespace in namespaces {
        let scope = Scope::Namespace(namespace.clone());
        pods.extend(cluster.list::<Pod>(&scope, selector).await?);
    }
    let api = cluster.api::<Namespace>(&Scope::All);
    let mut left = Vec::new();
    for name in deleted_namespaces {
        let action = cluster.action::<Namespace>("get", &Scope::All).named(name);
        if let Some(namespace) = cluster.call(action, api.get_opt(name)).await? {
            left.push(namespace);
        }
    }
    Ok(Leftovers {
        pods,
        namespaces: left,
    })
}

/// Waits, by watching, until each of `leftovers` is gone; `gone` is told
/// each one's kind and name. Unbounded: the caller holds the timeout.
pub(crate) async fn await_deleted(
    cluster: &Cluster,
    leftovers: &Leftovers,
    mut gone: impl FnMut(&str, &str),
) -> Result<()> {
    let watching = cluster.streaming()?;
    let mut pending = FuturesUnordered::new();
    for pod in &leftovers.pods {
        let scope = Scope::Namespace(pod.namespace().unwrap_or_default());
        pending.push(await_one(&watching, scope, pod));
    }
    let mut namespaces = FuturesUnordered::new();
    for namespace in &leftovers.namespaces {
        namespaces.push(await_one(&watching, Scope::All, namespace));
    }
    while let Some(result) = pending.next().await {
        gone("Pod", &result?);
    }
    while let Some(result) = namespaces.next().await {
        gone("Namespace", &result?);
    }
    Ok(())
}

async fn await_one<K>(cluster: &Cluster, scope: Scope, object: &K) -> Result<String>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::Scope: ResourceScope,
    K::DynamicType: Default,
{
    let uid = object.meta().uid.clone().unwrap_or_default();
    let name = object.meta().name.clone().unwrap_or_default();
    await_condition(cluster.api::<K>(&scope), &name, is_deleted(&uid))
        .await
        .map(|_| name.clone())
        .map_err(|wait::Error::ProbeFailed(err)| {
            let action = cluster.action::<K>("watch", &scope).named(&name);
            match err {
                watcher::Error::InitialListFailed(err)
                | watcher::Error::WatchStartFailed(err)
                | watcher::Error::WatchFailed(err) => cluster.explain(action, err),
                other => Error::Other(format!(
                    "cannot {} {} \"{name}\": {other}",
                    action.verb, action.resource
                )),
            }
        })
}
