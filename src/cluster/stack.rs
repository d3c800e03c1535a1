//! Finding a stack's namespaces, Services and pods in the cluster by their
//! labels, for the commands that act on a running stack (`down`, `logs`,
//! `shell`, `credentials`).

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::ResourceExt;

use crate::cluster::{Cluster, Scope};
use crate::error::{Error, Result};
use crate::{labels, spec};

/// The stack a command means when none is named: the one in `./devenv.yaml`,
/// if that file exists and is valid.
pub(crate) fn default_stack_name() -> Option<String> {
    let path = Path::new(spec::DEFAULT_FILE);
    path.exists()
        .then(|| spec::load(path).ok())
        .flatten()
        .map(|spec| spec.name)
}

/// True when kubectl-devenv created `namespace` for `stack`.
pub(crate) fn owns_namespace(namespace: &Namespace, stack: &str) -> bool {
    let labels = namespace.labels();
    labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER)
        && labels.get(labels::STACK).map(String::as_str) == Some(stack)
}

/// Why kubectl-devenv must not touch `namespace` on behalf of `stack`, if it must not.
pub(crate) fn foreign_namespace_problem(namespace: &Namespace, stack: &str) -> Option<String> {
    if owns_namespace(namespace, stack) {
        return None;
    }
    let name = namespace.name_any();
    let labels = namespace.labels();
    Some(
        match (
            labels.get(labels::MANAGED_BY).map(String::as_str),
            labels.get(labels::STACK),
        ) {
            (Some(labels::MANAGER), Some(other)) => format!(
                "namespace \"{name}\" belongs to the kubectl-devenv stack \"{other}\", not \"{stack}\""
            ),
            _ => format!(
                "namespace \"{name}\" exists and was not created by kubectl-devenv; refusing to touch it"
            ),
        },
    )
}

/// The namespaces labelled as `stack`'s (their `render::ROLE` label says `dev` or `test`).
pub(crate) async fn namespaces(cluster: &Cluster, stack: &str) -> Result<Vec<Namespace>> {
    cluster
        .list(&Scope::All, &labels::stack_selector(stack))
        .await
}

/// The pods of a component (the dev pod for `spec::DEV_COMPONENT`), sorted by name.
pub(crate) async fn component_pods(
    cluster: &Cluster,
    stack: Option<&str>,
    component: &str,
) -> Result<Vec<Pod>> {
    let selector = format!(
        "{},{}={component}",
        scope_selector(stack),
        labels::COMPONENT
    );
    let pods: Vec<Pod> = cluster.list(&cluster.scope(), &selector).await?;
    let stacks = stacks_of(&pods);
    if stack.is_none() && stacks.len() > 1 {
        return Err(ambiguous(component, &stacks));
    }
    let mut pods: Vec<Pod> = pods
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    if pods.is_empty() {
        return Err(Error::Other(not_found(cluster, stack, component, "pods")));
    }
    pods.sort_by_key(|p| p.name_any());
    Ok(pods)
}

/// The dev pod's Deployment of `stack` (of the only stack, when `None`):
/// what the dev pod's environment is made of.
pub(crate) async fn dev_deployment(cluster: &Cluster, stack: Option<&str>) -> Result<Deployment> {
    let selector = format!(
        "{},{}={}",
        scope_selector(stack),
        labels::COMPONENT,
        spec::DEV_COMPONENT
    );
    let deployments: Vec<Deployment> = cluster.list(&cluster.scope(), &selector).await?;
    let stacks = stacks_of(&deployments);
    if stack.is_none() && stacks.len() > 1 {
        return Err(ambiguous(spec::DEV_COMPONENT, &stacks));
    }
    deployments
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other(not_found(cluster, stack, spec::DEV_COMPONENT, "deployment")))
}

/// The credentials Secret of a database component. `up` keeps identical
/// copies in the dev and test namespaces; either one will do.
pub(crate) async fn component_secret(
    cluster: &Cluster,
    stack: Option<&str>,
    component: &str,
) -> Result<Secret> {
    let selector = format!(
        "{},{}={component}",
        scope_selector(stack),
        labels::COMPONENT
    );
    let name = crate::render::credentials_secret_name(component);
    let secrets: Vec<Secret> = cluster
        .list::<Secret>(&cluster.scope(), &selector)
        .await?
        .into_iter()
        .filter(|s| s.name_any() == name)
        .collect();
    let stacks = stacks_of(&secrets);
    if stack.is_none() && stacks.len() > 1 {
        return Err(ambiguous(component, &stacks));
    }
    secrets
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other(not_found(cluster, stack, component, "credentials")))
}

fn scope_selector(stack: Option<&str>) -> String {
    match stack {
        Some(stack) => labels::stack_selector(stack),
        None => labels::managed_selector(),
    }
}

fn stacks_of<K: ResourceExt>(objects: &[K]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o.labels().get(labels::STACK).cloned())
        .collect()
}

fn ambiguous(component: &str, stacks: &BTreeSet<String>) -> Error {
    Error::Usage(format!(
        "component \"{component}\" exists in several stacks ({}): pass --stack NAME",
        stacks.iter().cloned().collect::<Vec<_>>().join(", ")
    ))
}

fn not_found(cluster: &Cluster, stack: Option<&str>, component: &str, what: &str) -> String {
    let stack = match stack {
        Some(stack) => format!("stack \"{stack}\""),
        None => "any kubectl-devenv stack".to_owned(),
    };
    let scope = match cluster.scope() {
        Scope::Namespace(namespace) => format!(" in namespace \"{namespace}\""),
        Scope::All => String::new(),
    };
    format!(
        "no {what} for component \"{component}\" in {stack}{scope} (is the stack up? see `kubectl devenv status`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn namespace(labels: &[(&str, &str)]) -> Namespace {
        let mut ns = Namespace::default();
        ns.metadata.name = Some("dev".into());
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        ns
    }

    #[test]
    fn only_our_own_namespaces_may_be_touched() {
        let ours = namespace(&[
            (labels::MANAGED_BY, labels::MANAGER),
            (labels::STACK, "shop"),
        ]);
        assert!(foreign_namespace_problem(&ours, "shop").is_none());
        let other_stack = foreign_namespace_problem(&ours, "blog").unwrap();
        assert!(
            other_stack.contains("belongs to the kubectl-devenv stack \"shop\""),
            "{other_stack}"
        );
        let foreign = foreign_namespace_problem(&namespace(&[("team", "a")]), "shop").unwrap();
        assert!(
            foreign.contains("was not created by kubectl-devenv"),
            "{foreign}"
        );
        let unlabelled_stack = namespace(&[(labels::STACK, "shop")]);
        assert!(foreign_namespace_problem(&unlabelled_stack, "shop").is_some());
    }
}
