//! The stack model: the versioned description of one stack (a dev pod plus a
//! test stack) that `devenv.yaml` holds. The file format, its validation with
//! line:column errors and its writer are in [`file`].
//!
//! Other commands use [`load`] / [`parse`] to get a validated [`Spec`], then
//! [`Spec::images`], [`Spec::component`] and the namespace fields.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::catalog::{self, Resources};
use crate::error::{Error, Result};
use crate::spec::generic::{Generic, MountedFile};

mod file;
pub(crate) mod generic;

pub(crate) use file::{check_local_port, flow_seq, unlocated};
pub use file::{cpu_millis, memory_bytes, name_problem};

/// Where the dev pod's code lives (the php image's document root).
pub const CODE_DIR: &str = "/var/www/html";
pub const API_VERSION: &str = "kubectl-devenv.io/v1alpha1";
pub const KIND: &str = "DevEnv";
/// The file `up` writes and `up`/`down` read when no `-f` is given.
pub const DEFAULT_FILE: &str = "devenv.yaml";
pub const DEFAULT_STACK: &str = "devenv";
pub const DEFAULT_DEV_NAMESPACE: &str = "dev";
pub const DEFAULT_TEST_NAMESPACE: &str = "test";
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The component name of the dev pod (`kubectl devenv shell` enters it).
pub const DEV_COMPONENT: &str = "dev";
/// Variables the dev image reads for itself (`DEVENV_DOCROOT`), not the app.
pub const INTERNAL_ENV_PREFIX: &str = "DEVENV_";
/// Longest stack or component name, so derived names (`<name>-credentials`,
/// `data-<name>-0`) stay within Kubernetes' 63-character limit.
pub const MAX_NAME_LEN: usize = 40;

/// A validated stack description.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The stack name: the value of the `labels::STACK` label on every object.
    pub name: String,
    pub dev_namespace: String,
    pub test_namespace: String,
    /// Used for the dev namespace's aliases (`mysql.test.svc.<domain>`).
    pub cluster_domain: String,
    /// Pods are pinned to nodes of this architecture; `None` lets the scheduler pick.
    pub target_arch: Option<Arch>,
    /// Where every pod of the stack may run (a dedicated, tainted node pool).
    pub placement: Placement,
    pub dev: DevPod,
    /// The test stack, in file order.
    pub components: Vec<Component>,
}

/// Node selection shared by every pod of the stack, as a Helm chart's
/// `nodeSelector` and `tolerations` values: clusters often keep dev workloads
/// on a tainted node group (EKS managed node groups, a k3s agent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    pub node_selector: std::collections::BTreeMap<String, String>,
    pub tolerations: Vec<k8s_openapi::api::core::v1::Toleration>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.tolerations.is_empty()
    }
}

/// The developer's pod: PHP with the stack's connection settings in its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct DevPod {
    pub version: String,
    pub image: String,
    /// Host directory mounted at /var/www/html (hostPath); only when asked for.
    pub code_path: Option<PathBuf>,
    /// The node that has `code_path`: a hostPath is a path on one node, so
    /// the dev pod is pinned there. `up` fills it in when only one node can
    /// run the dev pod, and refuses to guess among several.
    pub code_path_node: Option<String>,
    pub resources: Resources,
    /// Components that must be Ready before `up` starts the dev pod.
    pub depends_on: Vec<String>,
    /// Single files mounted from a ConfigMap (a `php.ini`).
    pub files: Vec<MountedFile>,
    /// The web server's document root, relative to the code directory. `None`
    /// leaves the choice to the image: the dev image serves `public/` when it
    /// exists (decided per request, since the code arrives after the pod starts).
    pub docroot: Option<String>,
    /// The port the image serves HTTP on: the dev image's, or `httpPort:` for
    /// another image; `None` for an image without a web server (the bare one).
    pub http_port: Option<u16>,
    /// The UID/GID of the image's account (the dev image's or the php kind's).
    pub user: i64,
    pub group: i64,
    /// The code volume `kubectl devenv sync` uploads into (unused with `code_path`).
    pub sync: CodeSync,
    /// Literal variables for the app. Never one of the stack's connection
    /// variables ([`stack_variable`]): validation refuses those, since the
    /// stack's value is the one the pod must get.
    pub env: BTreeMap<String, String>,
}

/// The HTTP port `image` serves on without an explicit `httpPort:`: the dev
/// image's (any of its tags), or none.
pub fn default_http_port(image: &str) -> Option<u16> {
    let dev = catalog::php().dev.as_ref()?;
    let tag = image.strip_prefix(dev.image.as_str())?.strip_prefix(':')?;
    (!tag.is_empty()).then_some(dev.http_port)
}

/// `spec.dev.sync`: where `kubectl devenv sync` puts the code, what it leaves
/// out, and whether the code volume outlives the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSync {
    /// The local directory, relative to devenv.yaml's; `None` is that directory.
    pub local_path: Option<PathBuf>,
    /// The code directory in the dev pod (the code volume's mount path).
    pub remote_path: String,
    /// Extra excludes, in gitignore syntax, relative to the local directory.
    pub excludes: Vec<String>,
    /// A PersistentVolumeClaim instead of an emptyDir, so the code survives a
    /// pod replacement and a resync sends only what changed.
    pub persist: bool,
    /// The claim's size with `persist`, else the emptyDir's limit (none by default).
    pub size: Option<String>,
}

/// The claim size when `persist` gives none: a PHP tree with vendor/ fits.
pub const DEFAULT_CODE_SIZE: &str = "2Gi";

impl Default for CodeSync {
    fn default() -> Self {
        Self {
            local_path: None,
            remote_path: CODE_DIR.to_owned(),
            excludes: Vec::new(),
            persist: false,
            size: None,
        }
    }
}

/// One component of the test stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Service, workload and alias name, and the `labels::COMPONENT` value.
    pub name: String,
    /// Catalog kind (`mysql`, `redis`, ...), or [`generic::KIND`].
    pub kind: String,
    /// The catalog version; the image's tag for a generic component.
    pub version: String,
    pub image: String,
    /// The Service port (the catalog's port; a generic component's first
    /// port, 0 when it has none).
    pub port: u16,
    pub resources: Resources,
    /// Data volume settings, for kinds that keep data.
    pub storage: Option<Storage>,
    /// Components that must be Ready before `up` starts this one.
    pub depends_on: Vec<String>,
    /// The catalog entry it runs from, or what a generic component sets itself.
    pub source: Source,
    /// `forward`'s default local port for a catalog kind (a generic
    /// component sets one per port, in [`crate::generic::Port`]).
    pub local_port: Option<u16>,
}

/// Where a component's container, ports and readiness come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Catalog(&'static catalog::Entry),
    Generic(Box<Generic>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub size: String,
    /// An explicit StorageClass; `None` uses the cluster's default class (or
    /// emptyDir when there is none).
    pub class_name: Option<String>,
}

impl Component {
    /// The catalog entry; `None` for a generic component (validation
    /// guarantees every other kind is in the catalog).
    pub fn entry(&self) -> Option<&'static catalog::Entry> {
        match &self.source {
            Source::Catalog(entry) => Some(entry),
            Source::Generic(_) => None,
        }
    }

    /// What a generic component sets; `None` for catalog kinds.
    pub fn generic(&self) -> Option<&Generic> {
        match &self.source {
            Source::Catalog(_) => None,
            Source::Generic(generic) => Some(generic),
        }
    }

    /// Whether the component has a generated credentials Secret.
    pub fn has_credentials(&self) -> bool {
        match &self.source {
            Source::Catalog(entry) => entry.credentials.is_some(),
            Source::Generic(generic) => !generic.secret_keys().is_empty(),
        }
    }

    /// `forward`'s default local ports, as `(Service port name, local port)`.
    pub fn local_ports(&self) -> Vec<(String, u16)> {
        match &self.source {
            Source::Catalog(entry) => self
                .local_port
                .map(|local| (entry.port_name.clone(), local))
                .into_iter()
                .collect(),
            Source::Generic(generic) => generic
                .ports
                .iter()
                .filter_map(|p| Some((p.name.clone(), p.local_port?)))
                .collect(),
        }
    }

    /// The Service's ports as `(name, port)`, first one first.
    pub fn service_ports(&self) -> Vec<(String, u16)> {
        match &self.source {
            Source::Catalog(entry) => vec![(entry.port_name.clone(), self.port)],
            Source::Generic(generic) => generic
                .ports
                .iter()
                .map(|p| (p.name.clone(), p.port))
                .collect(),
        }
    }
}

/// The component whose connection settings give the dev pod `variable`
/// (`DB_HOST` -> the first database): the first in file order, as in
/// [`crate::render::dev_env`].
pub fn stack_variable<'a>(components: &'a [Component], variable: &str) -> Option<&'a Component> {
    components
        .iter()
        .find(|c| c.entry().is_some_and(|e| e.dev_env.contains_key(variable)))
}

impl Spec {
    /// Every image the stack runs (dev pod first), without duplicates; what a
    /// pre-deploy check must verify for the target architectures.
    pub fn images(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        std::iter::once(&self.dev.image)
            .chain(self.components.iter().map(|c| &c.image))
            .filter(|image| seen.insert(image.as_str()))
            .cloned()
            .collect()
    }

    /// A test-stack component by name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The start order `dependsOn` asks for, as waves of component names
    /// (the dev pod as [`DEV_COMPONENT`]): each one starts once the
    /// dependencies of its members, all in earlier waves, are Ready. One wave
    /// when nothing depends on anything. Validation rules out cycles.
    pub fn start_waves(&self) -> Vec<Vec<String>> {
        let mut wave_of: std::collections::BTreeMap<&str, usize> = Default::default();
        let mut pending: Vec<(&str, &[String])> = self
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.depends_on.as_slice()))
            .chain(std::iter::once((
                DEV_COMPONENT,
                self.dev.depends_on.as_slice(),
            )))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|(name, deps)| {
                let waves: Option<Vec<usize>> = deps
                    .iter()
                    .map(|d| wave_of.get(d.as_str()).copied())
                    .collect();
                match waves {
                    Some(waves) => {
                        wave_of.insert(name, waves.iter().map(|w| w + 1).max().unwrap_or(0));
                        false
                    }
                    None => true,
                }
            });
            if pending.len() == before {
                // A cycle, which parse refuses; start the rest last rather than never.
                let last = wave_of.values().max().map_or(0, |w| w + 1);
                for (name, _) in pending.drain(..) {
                    wave_of.insert(name, last);
                }
            }
        }
        let count = wave_of.values().max().map_or(0, |w| w + 1);
        let mut waves = vec![Vec::new(); count];
        // In file order within a wave, the dev pod last.
        for name in self
            .components
            .iter()
            .map(|c| c.name.as_str())
            .chain(std::iter::once(DEV_COMPONENT))
        {
            waves[wave_of[name]].push(name.to_owned());
        }
        waves
    }

    /// What `name` (a component, or the dev pod) waits for.
    pub fn dependencies_of(&self, name: &str) -> &[String] {
        if name == DEV_COMPONENT {
            return &self.dev.depends_on;
        }
        self.component(name)
            .map_or(&[], |c| c.depends_on.as_slice())
    }

    /// The dev namespace first, then the test namespace.
    pub fn namespaces(&self) -> [&str; 2] {
        [&self.dev_namespace, &self.test_namespace]
    }

    /// The in-cluster DNS name of a test-stack component.
    pub fn service_host(&self, component: &Component) -> String {
        format!(
            "{}.{}.svc.{}",
            component.name, self.test_namespace, self.cluster_domain
        )
    }

    /// The canonical `devenv.yaml` for this spec; [`parse`] reads it back unchanged.
    pub fn to_yaml(&self) -> String {
        file::write(self)
    }
}

/// Reads and validates a `devenv.yaml`.
pub fn load(path: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error::Other(format!("cannot read {}: {err}", path.display())))?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates `devenv.yaml` text; `source` names it in errors
/// (`devenv.yaml:12:9: unknown component kind "mongodb" ...`).
pub fn parse(text: &str, source: &str) -> Result<Spec> {
    file::parse(text, source)
}

/// The inputs of the wizard and of `up`'s flags: [`Draft::resolve`] checks them
/// with the file's validation, so every path to a [`Spec`] goes through one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub name: String,
    pub dev_namespace: String,
    pub test_namespace: String,
    pub target_arch: Option<Arch>,
    pub code_path: Option<PathBuf>,
    pub dev_version: Option<String>,
    /// Another dev image than the default (the wizard's "bare official image").
    pub dev_image: Option<String>,
    /// `(kind, version)`; the component is named after its kind.
    pub components: Vec<(String, Option<String>)>,
}

impl Default for Draft {
    fn default() -> Self {
        Self {
            name: DEFAULT_STACK.to_owned(),
            dev_namespace: DEFAULT_DEV_NAMESPACE.to_owned(),
            test_namespace: DEFAULT_TEST_NAMESPACE.to_owned(),
            target_arch: None,
            code_path: None,
            dev_version: None,
            dev_image: None,
            components: Vec::new(),
        }
    }
}

impl Draft {
    /// Validates the draft as if it had been written to a file.
    pub fn resolve(&self) -> Result<Spec> {
        file::resolve(self, "<flags>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_resolve_through_the_file_validation() {
        let draft = Draft {
            components: vec![("mysql".into(), Some("8.0".into())), ("redis".into(), None)],
            code_path: Some("/src/app".into()),
            target_arch: Some(Arch::amd64()),
            ..Draft::default()
        };
        let spec = draft.resolve().unwrap();
        assert_eq!(spec.name, "devenv");
        assert_eq!(spec.component("mysql").unwrap().version, "8.0");
        assert_eq!(spec.target_arch, Some(Arch::amd64()));
        assert_eq!(parse(&spec.to_yaml(), "x").unwrap(), spec);
        let empty = Draft::default().resolve().unwrap_err().to_string();
        assert!(empty.contains("spec.components is empty"), "{empty}");
    }
}
