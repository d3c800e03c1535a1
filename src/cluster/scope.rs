//! Where a command looks, decided once: one namespace or all of them. Every
//! scoped `Api` and every list in the crate goes through [`Cluster::api`] and
//! [`Cluster::list`], so an RBAC refusal always names the right resource and scope.

use std::fmt::Debug;

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::Cluster;
use crate::error::{Action, Result};

/// One namespace, or every namespace the user may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    pub(crate) fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Namespace(namespace) => Some(namespace),
            Scope::All => None,
        }
    }
}

/// How a resource type is reached in a [`Scope`]: cluster-scoped types
/// (nodes, namespaces, storage classes) ignore it.
pub(crate) trait ResourceScope {
    fn api<K>(client: Client, scope: &Scope) -> Api<K>
    where
        K: Resource<Scope = Self>,
        K::DynamicType: Default;

    /// The namespace an error message names for `scope`.
    fn namespace(scope: &Scope) -> Option<&str>;
}

impl ResourceScope for NamespaceResourceScope {
    fn api<K>(client: Client, scope: &Scope) -> Api<K>
    where
        K: Resource<Scope = Self>,
        K::DynamicType: Default,
    {
        match scope {
            Scope::Namespace(namespace) => Api::namespaced(client, namespace),
            Scope::All => Api::all(client),
        }
    }

    fn namespace(scope: &Scope) -> Option<&str> {
        scope.namespace()
    }
}

impl ResourceScope for ClusterResourceScope {
    fn api<K>(client: Client, _: &Scope) -> Api<K>
    where
        K: Resource<Scope = Self>,
        K::DynamicType: Default,
    {
        Api::all(client)
    }

    fn namespace(_: &Scope) -> Option<&str> {
        None
    }
}

impl Cluster {
    /// `-n` if it was given, else all namespaces: how the commands that find
    /// a stack by its labels look for it.
    pub(crate) fn scope(&self) -> Scope {
        match &self.namespace_flag {
            Some(namespace) => Scope::Namespace(namespace.clone()),
            None => Scope::All,
        }
    }

    /// The `-n` namespace, else the context's: kubectl's default scope.
    pub(crate) fn default_scope(&self) -> Scope {
        Scope::Namespace(self.namespace.clone())
    }

    /// The `Api` for `K` in `scope`.
    pub(crate) fn api<K>(&self, scope: &Scope) -> Api<K>
    where
        K: Resource,
        K::Scope: ResourceScope,
        K::DynamicType: Default,
    {
        <K::Scope as ResourceScope>::api(self.client.clone(), scope)
    }

    /// What an error message says was being done to `K` in `scope`.
    pub(crate) fn action<K>(&self, verb: &'static str, scope: &Scope) -> Action
    where
        K: Resource,
        K::Scope: ResourceScope,
        K::DynamicType: Default,
    {
        Action::new(verb, K::plural(&K::DynamicType::default()))
            .in_namespace(<K::Scope as ResourceScope>::namespace(scope))
    }

    /// Every `K` in `scope` whose labels match `selector` (empty: all).
    pub(crate) async fn list<K>(&self, scope: &Scope, selector: &str) -> Result<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
        K::Scope: ResourceScope,
        K::DynamicType: Default,
    {
        let params = match selector {
            "" => ListParams::default(),
            selector => ListParams::default().labels(selector),
        };
        self.list_with(scope, &params).await
    }

    /// [`Cluster::list`] with field selectors or a limit.
    pub(crate) async fn list_with<K>(&self, scope: &Scope, params: &ListParams) -> Result<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
        K::Scope: ResourceScope,
        K::DynamicType: Default,
    {
        let api = self.api::<K>(scope);
        let list = self
            .call(self.action::<K>("list", scope), api.list(params))
            .await?;
        Ok(list.items)
    }
}
