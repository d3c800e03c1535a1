//! The `devenv.yaml` format: the serde structs as the file spells them, with
//! [`Spanned`] locations so that validation can say `devenv.yaml:12:9: ...`,
//! the validation that turns them into a [`Spec`], and the one writer, which
//! serialises the same structs.
//!
//! Flags and wizard answers ([`Draft`]) become a [`File`] value directly and
//! go through the same validation; their errors have no location.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Toleration;
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use super::{
    API_VERSION, CodeSync, Component, DEFAULT_CLUSTER_DOMAIN, DEFAULT_DEV_NAMESPACE,
    DEFAULT_TEST_NAMESPACE, DEV_COMPONENT, DevPod, Draft, KIND, MAX_NAME_LEN, Placement, Source,
    Spec, Storage, default_http_port,
};
use crate::arch::Arch;
use crate::catalog::{self, Resources};
use crate::error::{Error, Result};
use crate::spec::generic::{self, FileGeneric};

/// The first line of every written `devenv.yaml`.
const HEADER: &str = "# kubectl-devenv stack; apply with `kubectl devenv up -f devenv.yaml`.\n";

/// Parses and validates `devenv.yaml` text; `source` names it in errors.
pub(super) fn parse(text: &str, source: &str) -> Result<Spec> {
    if text.trim().is_empty() {
        return Err(Error::Other(format!(
            "{source}: the file is empty (`kubectl devenv up` without -f starts a wizard that writes one)"
        )));
    }
    let file: File = serde_saphyr::from_str(text).map_err(|err| yaml_error(source, &err))?;
    file.validate()
        .map_err(|(location, message)| spec_error(source, location, message))
}

/// Validates flags or wizard answers as if they had been read from a file.
pub(super) fn resolve(draft: &Draft, source: &str) -> Result<Spec> {
    File::from_draft(draft)
        .validate()
        .map_err(|(location, message)| spec_error(source, location, message))
}

/// The canonical text of `spec`: only what differs from the defaults, so
/// that the file stays short and follows catalog updates.
pub(super) fn write(spec: &Spec) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    // `components:` then an indented `- kind: ...`, as Kubernetes manifests are written.
    options.compact_list_indent = false;
    let body = serde_saphyr::to_string_with_options(&File::from_spec(spec), options)
        .expect("a devenv.yaml holds only strings, numbers, lists and maps");
    format!("{HEADER}{body}")
}

// ---- the file format -------------------------------------------------------
//
// Field order is the written order, and the order in which an "unknown field"
// error lists the known keys. `None`, empty and default values are left out,
// so that a written file holds only what was chosen.

/// A value that was not read from a file: written, or checked for a flag.
pub(crate) fn unlocated<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Short lists (names, an argv) on one line: `dependsOn: [mysql, redis]`.
pub(crate) fn flow_seq<T: Serialize, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serde_saphyr::FlowSeq(value).serialize(serializer)
}

/// Environment values double-quoted, as they are strings whatever they look
/// like (`"true"`, `"1"`), and a reader should not have to know which need it.
fn quoted_values<S: serde::Serializer>(
    value: &Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let entries = value.iter().flat_map(|v| v.value.iter());
    serializer
        .collect_map(entries.map(|(name, value)| (name, serde_saphyr::DoubleQuoted(&value.value))))
}

/// A list of small records, one per line: `- {name: http, port: 80}`.
pub(crate) fn flow_maps<T: Serialize, S: serde::Serializer>(
    value: &Option<Spanned<Vec<T>>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let items = value.iter().flat_map(|v| v.value.iter());
    serializer.collect_seq(items.map(serde_saphyr::FlowMap))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: Metadata,
    spec: Spanned<FileSpec>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: Spanned<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespaces: Option<Namespaces>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_domain: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_arch: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    placement: Option<Spanned<FilePlacement>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<FileDev>,
    components: Spanned<Vec<FileComponent>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilePlacement {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tolerations: Vec<Toleration>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Namespaces {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileDev {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_path: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_path_node: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resources: Option<Spanned<Resources>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "flow_seq"
    )]
    depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    files: Option<Spanned<Vec<generic::FileMountedFile>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    docroot: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_port: Option<Spanned<u16>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "quoted_values"
    )]
    env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sync: Option<Spanned<FileSync>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileSync {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_path: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remote_path: Option<Spanned<String>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "flow_seq"
    )]
    excludes: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileComponent {
    kind: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<Spanned<String>>,
    /// Catalog kinds only: a generic component sets it on each port. Wider
    /// than a port, so that 70000 is refused as a port rather than as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_port: Option<Spanned<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    storage: Option<Spanned<FileStorage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resources: Option<Spanned<Resources>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "flow_seq"
    )]
    depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    // The fields of `kind: generic` (see `generic::FileGeneric`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "flow_maps"
    )]
    ports: Option<Spanned<Vec<generic::FilePort>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "quoted_values"
    )]
    env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "flow_seq"
    )]
    command: Option<Spanned<Vec<String>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "flow_seq"
    )]
    args: Option<Spanned<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    readiness: Option<Spanned<generic::FileReadiness>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_as_user: Option<Spanned<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_as_group: Option<Spanned<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    files: Option<Spanned<Vec<generic::FileMountedFile>>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileStorage {
    /// Generic components only: where the volume is mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class_name: Option<Spanned<String>>,
}

// ---- the writer --------------------------------------------------------------

fn names(names: &[String]) -> Option<Spanned<Vec<Spanned<String>>>> {
    (!names.is_empty()).then(|| unlocated(names.iter().cloned().map(unlocated).collect()))
}

/// `Some(value)` unless it is the default.
fn unless<T: PartialEq + Clone>(value: &T, default: &T) -> Option<Spanned<T>> {
    (value != default).then(|| unlocated(value.clone()))
}

fn path_text(path: &Path) -> Spanned<String> {
    unlocated(path.display().to_string())
}

impl File {
    fn new(name: &str, spec: FileSpec) -> Self {
        File {
            api_version: unlocated(API_VERSION.to_owned()),
            kind: unlocated(KIND.to_owned()),
            metadata: Metadata {
                name: unlocated(name.to_owned()),
            },
            spec: unlocated(spec),
        }
    }

    fn from_spec(spec: &Spec) -> Self {
        let placement = &spec.placement;
        File::new(
            &spec.name,
            FileSpec {
                namespaces: Some(Namespaces {
                    dev: Some(unlocated(spec.dev_namespace.clone())),
                    test: Some(unlocated(spec.test_namespace.clone())),
                }),
                cluster_domain: unless(&spec.cluster_domain, &DEFAULT_CLUSTER_DOMAIN.to_owned()),
                target_arch: spec.target_arch.as_ref().map(|a| unlocated(a.to_string())),
                placement: (!placement.is_empty()).then(|| {
                    unlocated(FilePlacement {
                        node_selector: placement.node_selector.clone(),
                        tolerations: placement.tolerations.clone(),
                    })
                }),
                dev: Some(FileDev::from_dev(&spec.dev)),
                components: unlocated(
                    spec.components
                        .iter()
                        .map(FileComponent::from_component)
                        .collect(),
                ),
            },
        )
    }

    /// The draft as the file it stands for; every value is checked by [`File::validate`].
    fn from_draft(draft: &Draft) -> Self {
        let dev = FileDev {
            version: draft.dev_version.clone().map(unlocated),
            image: draft.dev_image.clone().map(unlocated),
            code_path: draft.code_path.as_deref().map(path_text),
            ..FileDev::default()
        };
        File::new(
            &draft.name,
            FileSpec {
                namespaces: Some(Namespaces {
                    dev: Some(unlocated(draft.dev_namespace.clone())),
                    test: Some(unlocated(draft.test_namespace.clone())),
                }),
                cluster_domain: None,
                target_arch: draft.target_arch.as_ref().map(|a| unlocated(a.to_string())),
                placement: None,
                dev: Some(dev),
                components: unlocated(
                    draft
                        .components
                        .iter()
                        .map(|(kind, version)| FileComponent {
                            version: version.clone().map(unlocated),
                            ..FileComponent::of_kind(kind)
                        })
                        .collect(),
                ),
            },
        )
    }
}

impl FileDev {
    fn from_dev(dev: &DevPod) -> Self {
        let php = catalog::php();
        FileDev {
            version: Some(unlocated(dev.version.clone())),
            image: (Some(&dev.image) != php.dev_image_for(&dev.version).as_ref())
                .then(|| unlocated(dev.image.clone())),
            code_path: dev.code_path.as_deref().map(path_text),
            code_path_node: dev.code_path_node.clone().map(unlocated),
            docroot: dev.docroot.clone().map(unlocated),
            http_port: dev
                .http_port
                .filter(|_| dev.http_port != default_http_port(&dev.image))
                .map(unlocated),
            resources: unless(&dev.resources, &php.resources),
            depends_on: names(&dev.depends_on),
            files: generic::files_to_file(&dev.files),
            env: (!dev.env.is_empty()).then(|| {
                unlocated(
                    dev.env
                        .iter()
                        .map(|(name, value)| (name.clone(), unlocated(value.clone())))
                        .collect(),
                )
            }),
            sync: (dev.sync != CodeSync::default())
                .then(|| unlocated(FileSync::from_sync(&dev.sync))),
        }
    }
}

impl FileSync {
    fn from_sync(sync: &CodeSync) -> Self {
        FileSync {
            local_path: sync.local_path.as_deref().map(path_text),
            remote_path: Some(unlocated(sync.remote_path.clone())),
            excludes: sync.excludes.iter().cloned().map(unlocated).collect(),
            persist: sync.persist,
            size: sync.size.clone().map(unlocated),
        }
    }
}

impl FileComponent {
    /// An entry with only its `kind:`.
    fn of_kind(kind: &str) -> Self {
        FileComponent {
            kind: unlocated(kind.to_owned()),
            name: None,
            version: None,
            image: None,
            local_port: None,
            ports: None,
            env: None,
            command: None,
            args: None,
            readiness: None,
            storage: None,
            run_as_user: None,
            run_as_group: None,
            files: None,
            resources: None,
            depends_on: None,
        }
    }

    fn from_component(component: &Component) -> Self {
        let mut file = FileComponent {
            name: (component.name != component.kind).then(|| unlocated(component.name.clone())),
            depends_on: names(&component.depends_on),
            ..FileComponent::of_kind(&component.kind)
        };
        let storage = component.storage.as_ref();
        match &component.source {
            Source::Generic(generic) => {
                file.image = Some(unlocated(component.image.clone()));
                file.put_generic(generic::to_file(generic));
                file.storage = generic.data_path.as_ref().map(|path| {
                    unlocated(FileStorage {
                        path: Some(unlocated(path.clone())),
                        size: storage.map(|s| unlocated(s.size.clone())),
                        class_name: storage.and_then(|s| s.class_name.clone()).map(unlocated),
                    })
                });
                file.resources = unless(&component.resources, &generic::default_resources());
            }
            Source::Catalog(entry) => {
                file.version = Some(unlocated(component.version.clone()));
                file.local_port = component.local_port.map(|l| unlocated(l.into()));
                file.image = (component.image != entry.image_for(&component.version))
                    .then(|| unlocated(component.image.clone()));
                if let (Some(storage), Some(data)) = (storage, &entry.data)
                    && (storage.size != data.size || storage.class_name.is_some())
                {
                    file.storage = Some(unlocated(FileStorage {
                        path: None,
                        size: Some(unlocated(storage.size.clone())),
                        class_name: storage.class_name.clone().map(unlocated),
                    }));
                }
                file.resources = unless(&component.resources, &entry.resources);
            }
        }
        file
    }
}

// ---- validation --------------------------------------------------------------

type Invalid = (Location, String);

impl File {
    fn validate(self) -> Result<Spec, Invalid> {
        if self.api_version.value != API_VERSION {
            return Err((
                self.api_version.referenced,
                format!(
                    "unsupported apiVersion \"{}\" (expected \"{API_VERSION}\")",
                    self.api_version.value
                ),
            ));
        }
        if self.kind.value != KIND {
            return Err((
                self.kind.referenced,
                format!(
                    "unsupported kind \"{}\" (expected \"{KIND}\")",
                    self.kind.value
                ),
            ));
        }
        let name = check_name(&self.metadata.name, "stack name")?;
        let spec = self.spec.value;
        let namespaces = spec.namespaces.unwrap_or_default();
        let dev_namespace = namespace_or(namespaces.dev.as_ref(), DEFAULT_DEV_NAMESPACE)?;
        let test_namespace = namespace_or(namespaces.test.as_ref(), DEFAULT_TEST_NAMESPACE)?;
        if dev_namespace == test_namespace {
            let at = namespaces
                .test
                .as_ref()
                .or(namespaces.dev.as_ref())
                .map_or(self.spec.referenced, |n| n.referenced);
            return Err((
                at,
                format!("the dev and test namespaces must differ (both are \"{dev_namespace}\")"),
            ));
        }
        let cluster_domain = match &spec.cluster_domain {
            None => DEFAULT_CLUSTER_DOMAIN.to_owned(),
            Some(domain) if is_dns_subdomain(&domain.value) => domain.value.clone(),
            Some(domain) => {
                return Err((
                    domain.referenced,
                    format!("invalid clusterDomain \"{}\"", domain.value),
                ));
            }
        };
        let target_arch = match &spec.target_arch {
            None => None,
            Some(arch) => Some(Arch::target(&arch.value).map_err(|msg| (arch.referenced, msg))?),
        };
        let placement = match spec.placement {
            None => Placement::default(),
            Some(placement) => validate_placement(placement)?,
        };
        let mut file_dev = spec.dev;
        let dev_depends = file_dev.as_mut().and_then(|d| d.depends_on.take());
        let dev_env = file_dev.as_mut().and_then(|d| d.env.take());
        let mut dev = validate_dev(file_dev)?;
        if spec.components.value.is_empty() {
            return Err((
                spec.components.referenced,
                format!(
                    "spec.components is empty: add at least one component (known kinds: {})",
                    catalog::kinds()
                ),
            ));
        }
        let mut components = Vec::new();
        let mut names = BTreeSet::new();
        let mut depends = Vec::new();
        let mut local_ports: BTreeMap<u16, String> = BTreeMap::new();
        let kinds: BTreeSet<String> = spec
            .components
            .value
            .iter()
            .map(|c| c.kind.value.clone())
            .collect();
        for mut file_component in spec.components.value {
            let name_at = file_component
                .name
                .as_ref()
                .map_or(file_component.kind.referenced, |n| n.referenced);
            let kind_at = file_component.kind.referenced;
            let component_depends = file_component.depends_on.take();
            let claims: Vec<Spanned<i64>> = file_component
                .local_port
                .iter()
                .chain(
                    file_component
                        .ports
                        .iter()
                        .flat_map(|p| &p.value)
                        .filter_map(generic::FilePort::local_port),
                )
                .cloned()
                .collect();
            let component = validate_component(file_component)?;
            for claim in claims {
                claim_local_port(claim, &component.name, &mut local_ports)?;
            }
            depends.push(component_depends);
            if let Some(fronts) = component.entry().and_then(|e| e.fronts.as_ref())
                && !kinds.contains(fronts)
            {
                return Err((
                    kind_at,
                    format!(
                        "{} sits in front of {fronts}: add a {fronts} component to the stack",
                        component.kind
                    ),
                ));
            }
            if !names.insert(component.name.clone()) {
                return Err((
                    name_at,
                    format!(
                        "duplicate component name \"{}\": give one of them a distinct `name:`",
                        component.name
                    ),
                ));
            }
            components.push(component);
        }
        for (component, depends_on) in components.iter_mut().zip(&depends) {
            component.depends_on = check_depends_on(depends_on.as_ref(), &names, &component.name)?;
        }
        dev.depends_on = check_depends_on(dev_depends.as_ref(), &names, DEV_COMPONENT)?;
        dev.env = check_dev_env(dev_env, &components)?;
        check_no_cycle(&components, &depends)?;
        Ok(Spec {
            name,
            dev_namespace,
            test_namespace,
            cluster_domain,
            target_arch,
            placement,
            dev,
            components,
        })
    }
}

/// A `localPort` is a port number: 1 to 65535.
pub(crate) fn check_local_port(local: &Spanned<i64>) -> Result<u16, Invalid> {
    u16::try_from(local.value)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| {
            (
                local.referenced,
                format!("localPort {} must be from 1 to 65535", local.value),
            )
        })
}

/// No two ports of the stack claim one local port: `forward --all` binds
/// them all at once.
fn claim_local_port(
    local: Spanned<i64>,
    component: &str,
    claimed: &mut BTreeMap<u16, String>,
) -> Result<(), Invalid> {
    let port = check_local_port(&local)?;
    if let Some(other) = claimed.insert(port, component.to_owned()) {
        let by = if other == component {
            "another port of this component".to_owned()
        } else {
            format!("component \"{other}\"")
        };
        return Err((
            local.referenced,
            format!("localPort {port} is already claimed by {by}"),
        ));
    }
    Ok(())
}

/// `dev.env`: literal variables with valid names, none of which the stack
/// sets itself. A same-named literal would be overridden by the stack's
/// value without a word, so it is refused here, where the user can see why.
fn check_dev_env(
    env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    components: &[Component],
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut out = BTreeMap::new();
    for (name, value) in env.map(|e| e.value).unwrap_or_default() {
        let at = value.referenced;
        if !generic::is_env_name(&name) {
            return Err((at, format!("invalid environment variable name \"{name}\"")));
        }
        if name.starts_with(super::INTERNAL_ENV_PREFIX) {
            return Err((
                at,
                format!(
                    "dev.env {name}: variables starting with {} are the dev image's own (use `docroot:`)",
                    super::INTERNAL_ENV_PREFIX
                ),
            ));
        }
        if let Some(component) = super::stack_variable(components, &name) {
            return Err((
                at,
                format!(
                    "dev.env {name}: the stack sets {name} from component \"{}\" and that value wins; remove it here",
                    component.name
                ),
            ));
        }
        if value.value.starts_with("secret:") {
            return Err((
                at,
                format!(
                    "dev.env {name}: values are literals; `secret:` keys are for `kind: {}` components",
                    generic::KIND
                ),
            ));
        }
        out.insert(name, value.value);
    }
    Ok(out)
}

/// The names a `dependsOn` list gives, each one a component of the stack
/// other than `this`, without repeats.
fn check_depends_on(
    depends_on: Option<&Spanned<Vec<Spanned<String>>>>,
    names: &BTreeSet<String>,
    this: &str,
) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for name in depends_on.map(|d| d.value.as_slice()).unwrap_or_default() {
        if name.value == this {
            return Err((
                name.referenced,
                format!("\"{this}\" cannot depend on itself"),
            ));
        }
        if !names.contains(&name.value) {
            let hint = if name.value == DEV_COMPONENT {
                " (the dev pod starts last: components cannot wait for it)".to_owned()
            } else {
                format!(
                    " (components: {})",
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            return Err((
                name.referenced,
                format!("dependsOn: no component \"{}\"{hint}", name.value),
            ));
        }
        if out.contains(&name.value) {
            return Err((
                name.referenced,
                format!("dependsOn lists \"{}\" twice", name.value),
            ));
        }
        out.push(name.value.clone());
    }
    Ok(out)
}

/// Refuses a dependency cycle, which `up` could never start: the error
/// points at the `dependsOn` entry that closes it and spells the cycle out.
fn check_no_cycle(
    components: &[Component],
    depends: &[Option<Spanned<Vec<Spanned<String>>>>],
) -> Result<(), Invalid> {
    let index = |name: &str| components.iter().position(|c| c.name == name);
    // Depth-first search with the path on a stack; 0 = new, 1 = on the path, 2 = done.
    let mut state = vec![0u8; components.len()];
    fn visit(
        at: usize,
        components: &[Component],
        depends: &[Option<Spanned<Vec<Spanned<String>>>>],
        index: &dyn Fn(&str) -> Option<usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Result<(), Invalid> {
        state[at] = 1;
        path.push(at);
        for dep in depends[at].iter().flat_map(|d| d.value.iter()) {
            let Some(next) = index(&dep.value) else {
                continue;
            };
            match state[next] {
                1 => {
                    let start = path.iter().position(|&p| p == next).unwrap_or(0);
                    let cycle: Vec<&str> = path[start..]
                        .iter()
                        .chain(std::iter::once(&next))
                        .map(|&i| components[i].name.as_str())
                        .collect();
                    return Err((
                        dep.referenced,
                        format!("dependency cycle: {}", cycle.join(" -> ")),
                    ));
                }
                0 => visit(next, components, depends, index, state, path)?,
                _ => {}
            }
        }
        path.pop();
        state[at] = 2;
        Ok(())
    }
    for start in 0..components.len() {
        if state[start] == 0 {
            visit(
                start,
                components,
                depends,
                &index,
                &mut state,
                &mut Vec::new(),
            )?;
        }
    }
    Ok(())
}

fn validate_placement(placement: Spanned<FilePlacement>) -> Result<Placement, Invalid> {
    let at = placement.referenced;
    let FilePlacement {
        node_selector,
        tolerations,
    } = placement.value;
    if node_selector.contains_key("kubernetes.io/arch") {
        return Err((
            at,
            "set the architecture with `targetArch:`, not placement.nodeSelector".to_owned(),
        ));
    }
    for toleration in &tolerations {
        let operator = toleration.operator.as_deref().unwrap_or("Equal");
        if !matches!(operator, "Equal" | "Exists") {
            return Err((
                at,
                format!("invalid toleration operator \"{operator}\" (use Equal or Exists)"),
            ));
        }
        if let Some(effect) = toleration.effect.as_deref()
            && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            return Err((
                at,
                format!(
                    "invalid toleration effect \"{effect}\" (use NoSchedule, PreferNoSchedule or NoExecute)"
                ),
            ));
        }
    }
    Ok(Placement {
        node_selector,
        tolerations,
    })
}

fn validate_dev(dev: Option<FileDev>) -> Result<DevPod, Invalid> {
    let php = catalog::php();
    let dev = dev.unwrap_or_default();
    let version = check_version(php, dev.version.as_ref())?;
    let image = match (&dev.image, php.dev_image_for(&version)) {
        (Some(image), _) => check_image(image)?,
        (None, Some(dev_image)) => dev_image,
        (None, None) => php.image_for(&version),
    };
    let http_port = match &dev.http_port {
        Some(port) if port.value == 0 => {
            return Err((
                port.referenced,
                "httpPort must be from 1 to 65535".to_owned(),
            ));
        }
        Some(port) if port.value == php.port => {
            return Err((
                port.referenced,
                format!("httpPort {} is PHP-FPM's FastCGI port", port.value),
            ));
        }
        Some(port) => Some(port.value),
        None => default_http_port(&image),
    };
    let docroot = match &dev.docroot {
        None => None,
        Some(docroot) => Some(check_docroot(docroot)?),
    };
    let (user, group) = match &php.dev {
        Some(dev_image) if default_http_port(&image).is_some() => (dev_image.user, dev_image.group),
        _ => (php.user, php.group),
    };
    let code_path = match &dev.code_path {
        None => None,
        Some(path) if Path::new(&path.value).is_absolute() => Some(PathBuf::from(&path.value)),
        Some(path) => {
            return Err((
                path.referenced,
                format!(
                    "codePath \"{}\" must be an absolute path (it is mounted from the node)",
                    path.value
                ),
            ));
        }
    };
    let code_path_node = match &dev.code_path_node {
        None => None,
        Some(node) if code_path.is_none() => {
            return Err((
                node.referenced,
                "codePathNode needs codePath: it names the node that has the code".to_owned(),
            ));
        }
        Some(node) if is_dns_subdomain(&node.value) => Some(node.value.clone()),
        Some(node) => {
            return Err((
                node.referenced,
                format!("invalid codePathNode \"{}\" (a node name)", node.value),
            ));
        }
    };
    let resources = match &dev.resources {
        Some(resources) => check_resources(resources)?,
        None => php.resources.clone(),
    };
    let files = generic::validate_files(dev.files.map(|f| f.value).unwrap_or_default())?;
    let sync = match dev.sync {
        None => CodeSync::default(),
        Some(sync) if code_path.is_some() => {
            return Err((
                sync.referenced,
                "`sync` and `codePath` exclude each other: codePath mounts the code from the node, sync uploads it into the pod".to_owned(),
            ));
        }
        Some(sync) => validate_sync(sync.value)?,
    };
    Ok(DevPod {
        version,
        image,
        code_path,
        code_path_node,
        resources,
        depends_on: Vec::new(),
        files,
        docroot,
        http_port,
        user,
        group,
        sync,
        env: BTreeMap::new(),
    })
}

fn validate_sync(sync: FileSync) -> Result<CodeSync, Invalid> {
    let local_path = match sync.local_path {
        Some(path) if path.value.trim().is_empty() => {
            return Err((path.referenced, "sync.localPath is empty".to_owned()));
        }
        Some(path) => Some(PathBuf::from(path.value)),
        None => None,
    };
    let remote_path = match sync.remote_path {
        None => super::CODE_DIR.to_owned(),
        Some(path) => {
            let value = path.value.trim_end_matches('/');
            let problem = if !path.value.starts_with('/') {
                Some("it must be absolute")
            } else if value.is_empty() {
                Some("it cannot be the root directory")
            } else if value.split('/').any(|part| part == ".." || part == ".") {
                Some("it cannot contain `.` or `..`")
            } else if value.contains(':') {
                Some("Kubernetes mount paths cannot contain `:`")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err((
                    path.referenced,
                    format!("invalid sync.remotePath \"{}\": {problem}", path.value),
                ));
            }
            value.to_owned()
        }
    };
    let mut excludes = Vec::new();
    for pattern in sync.excludes {
        if let Err(err) = ignore::gitignore::GitignoreBuilder::new("/")
            .add_line(None, &pattern.value)
            .and_then(|builder| builder.build())
        {
            return Err((
                pattern.referenced,
                format!("invalid sync exclude \"{}\": {err}", pattern.value),
            ));
        }
        excludes.push(pattern.value);
    }
    let size = match sync.size {
        None => None,
        Some(size) if memory_bytes(&size.value).is_some() => Some(size.value),
        Some(size) => {
            return Err((
                size.referenced,
                format!(
                    "invalid sync.size \"{}\" (examples: 512Mi, 5Gi)",
                    size.value
                ),
            ));
        }
    };
    Ok(CodeSync {
        local_path,
        remote_path,
        excludes,
        persist: sync.persist,
        size,
    })
}

/// A document root below the code directory: `public`, `web`, `.`. It ends up
/// in the web server's configuration, so only plain path characters pass.
fn check_docroot(docroot: &Spanned<String>) -> Result<String, Invalid> {
    let value = docroot.value.trim_end_matches('/');
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if value.is_empty() || value.starts_with('/') || !plain || value.split('/').any(|p| p == "..") {
        return Err((
            docroot.referenced,
            format!(
                "invalid docroot \"{}\": use a path inside the code directory, such as public or web",
                docroot.value
            ),
        ));
    }
    Ok(value.to_owned())
}

impl FileComponent {
    fn take_generic(&mut self) -> FileGeneric {
        FileGeneric {
            ports: self.ports.take(),
            env: self.env.take(),
            command: self.command.take(),
            args: self.args.take(),
            readiness: self.readiness.take(),
            run_as_user: self.run_as_user.take(),
            run_as_group: self.run_as_group.take(),
            files: self.files.take(),
        }
    }

    /// The writer's side of [`FileComponent::take_generic`].
    fn put_generic(&mut self, fields: FileGeneric) {
        self.ports = fields.ports;
        self.env = fields.env;
        self.command = fields.command;
        self.args = fields.args;
        self.readiness = fields.readiness;
        self.run_as_user = fields.run_as_user;
        self.run_as_group = fields.run_as_group;
        self.files = fields.files;
    }
}

fn validate_component(mut component: FileComponent) -> Result<Component, Invalid> {
    let generic_fields = component.take_generic();
    if component.kind.value == generic::KIND {
        return validate_generic(component, generic_fields);
    }
    let kind = &component.kind;
    let entry = catalog::find(&kind.value).ok_or_else(|| {
        (
            kind.referenced,
            format!(
                "unknown component kind \"{}\" (known kinds: {})",
                kind.value,
                catalog::kinds()
            ),
        )
    })?;
    if let Some((at, key)) = generic_fields.first_set() {
        return Err((
            at,
            format!(
                "`{key}` is for `kind: {}` components; the catalog sets it for {}",
                generic::KIND,
                entry.kind
            ),
        ));
    }
    let name = match &component.name {
        Some(name) => check_name(name, "component name")?,
        None => entry.kind.clone(),
    };
    let version = check_version(entry, component.version.as_ref())?;
    let image = match &component.image {
        Some(image) => check_image(image)?,
        None => entry.image_for(&version),
    };
    let resources = match &component.resources {
        Some(resources) => check_resources(resources)?,
        None => entry.resources.clone(),
    };
    let storage = match (&entry.data, &component.storage) {
        (None, None) => None,
        (None, Some(storage)) => {
            return Err((
                storage.referenced,
                format!("{} keeps no data: remove `storage`", entry.kind),
            ));
        }
        (Some(data), storage) => {
            let storage = storage.as_ref().map(|s| &s.value);
            if let Some(path) = storage.and_then(|s| s.path.as_ref()) {
                return Err((
                    path.referenced,
                    format!(
                        "{} keeps its data at {}: remove storage.path",
                        entry.kind, data.path
                    ),
                ));
            }
            Some(check_storage(storage, &data.size)?)
        }
    };
    Ok(Component {
        name,
        kind: entry.kind.clone(),
        port: entry.port,
        version,
        image,
        resources,
        storage,
        depends_on: Vec::new(),
        source: Source::Catalog(entry),
        local_port: component
            .local_port
            .as_ref()
            .map(check_local_port)
            .transpose()?,
    })
}

/// A `kind: generic` entry: a name and an image are required, the rest is optional.
fn validate_generic(component: FileComponent, fields: FileGeneric) -> Result<Component, Invalid> {
    let at = component.kind.referenced;
    let name = match &component.name {
        Some(name) => check_name(name, "component name")?,
        None => {
            return Err((
                at,
                format!("a `kind: {}` component needs a `name:`", generic::KIND),
            ));
        }
    };
    if let Some(version) = &component.version {
        return Err((
            version.referenced,
            format!(
                "a `kind: {}` component has no `version:`: give the tag in `image:`",
                generic::KIND
            ),
        ));
    }
    let image = match &component.image {
        Some(image) => check_image(image)?,
        None => {
            return Err((
                at,
                format!("a `kind: {}` component needs an `image:`", generic::KIND),
            ));
        }
    };
    let resources = match &component.resources {
        Some(resources) => check_resources(resources)?,
        None => generic::default_resources(),
    };
    let storage_file = component.storage.as_ref();
    let data_path = storage_file.and_then(|s| s.value.path.as_ref());
    let storage = match storage_file {
        None => None,
        Some(storage) if data_path.is_none() => {
            return Err((
                storage.referenced,
                "storage needs a `path:` for a generic component (where the image keeps its data)"
                    .to_owned(),
            ));
        }
        Some(storage) => Some(check_storage(Some(&storage.value), generic::DEFAULT_SIZE)?),
    };
    if let Some(local) = &component.local_port {
        return Err((
            local.referenced,
            format!(
                "a `kind: {}` component sets localPort on each port: ports: [{{name: ..., port: ..., localPort: {}}}]",
                generic::KIND,
                local.value
            ),
        ));
    }
    let generic = generic::validate(fields, data_path)?;
    Ok(Component {
        name,
        kind: generic::KIND.to_owned(),
        version: image_tag(&image).to_owned(),
        port: generic.ports.first().map_or(0, |p| p.port),
        image,
        resources,
        storage,
        depends_on: Vec::new(),
        source: Source::Generic(Box::new(generic)),
        local_port: None,
    })
}

/// `getmeili/meilisearch:v1.6` -> `v1.6`; `latest` when there is no tag.
fn image_tag(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map_or("latest", |(_, tag)| tag)
}

fn check_storage(storage: Option<&FileStorage>, default_size: &str) -> Result<Storage, Invalid> {
    let size = match storage.and_then(|s| s.size.as_ref()) {
        Some(size) => {
            memory_bytes(&size.value).ok_or_else(|| {
                (
                    size.referenced,
                    format!(
                        "invalid storage size \"{}\" (examples: 512Mi, 5Gi)",
                        size.value
                    ),
                )
            })?;
            size.value.clone()
        }
        None => default_size.to_owned(),
    };
    let class_name = match storage.and_then(|s| s.class_name.as_ref()) {
        Some(class) if is_dns_subdomain(&class.value) => Some(class.value.clone()),
        Some(class) => {
            return Err((
                class.referenced,
                format!("invalid storage className \"{}\"", class.value),
            ));
        }
        None => None,
    };
    Ok(Storage { size, class_name })
}

fn check_name(name: &Spanned<String>, what: &str) -> Result<String, Invalid> {
    let value = &name.value;
    if value == DEV_COMPONENT && what == "component name" {
        return Err((
            name.referenced,
            format!("component name \"{DEV_COMPONENT}\" is reserved for the dev pod"),
        ));
    }
    match name_problem(value, MAX_NAME_LEN) {
        None => Ok(value.clone()),
        Some(problem) => Err((
            name.referenced,
            format!("invalid {what} \"{value}\": {problem}"),
        )),
    }
}

fn namespace_or(namespace: Option<&Spanned<String>>, default: &str) -> Result<String, Invalid> {
    match namespace {
        None => Ok(default.to_owned()),
        Some(ns) => match name_problem(&ns.value, 63) {
            None => Ok(ns.value.clone()),
            Some(problem) => Err((
                ns.referenced,
                format!("invalid namespace \"{}\": {problem}", ns.value),
            )),
        },
    }
}

/// Why `name` is not a DNS-1123 label of at most `max` characters, if it is not.
pub fn name_problem(name: &str, max: usize) -> Option<String> {
    let rule = "use lowercase letters, digits and '-', starting with a letter and ending with a letter or digit";
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if name.len() > max {
        return Some(format!("it is longer than {max} characters"));
    }
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts_ok = name.starts_with(|c: char| c.is_ascii_lowercase());
    let ends_ok = name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    (!(valid_chars && starts_ok && ends_ok)).then(|| rule.to_owned())
}

fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn check_version(
    entry: &catalog::Entry,
    version: Option<&Spanned<String>>,
) -> Result<String, Invalid> {
    match version {
        None => Ok(entry.default_version.clone()),
        Some(version) if entry.versions.contains(&version.value) => Ok(version.value.clone()),
        Some(version) => Err((
            version.referenced,
            format!(
                "{} version \"{}\" is not supported (choose one of: {}; or set `image:`)",
                entry.kind,
                version.value,
                entry.versions.join(", ")
            ),
        )),
    }
}

fn check_image(image: &Spanned<String>) -> Result<String, Invalid> {
    let value = image.value.trim();
    if value.is_empty() || value.contains(char::is_whitespace) || value.ends_with(':') {
        return Err((
            image.referenced,
            format!("invalid image reference \"{}\"", image.value),
        ));
    }
    Ok(value.to_owned())
}

fn check_resources(resources: &Spanned<Resources>) -> Result<Resources, Invalid> {
    let value = &resources.value;
    let at = resources.referenced;
    let cpu = |q: &str| {
        cpu_millis(q).ok_or_else(|| {
            (
                at,
                format!("invalid CPU quantity \"{q}\" (examples: 250m, 1)"),
            )
        })
    };
    let memory = |q: &str| {
        memory_bytes(q).ok_or_else(|| {
            (
                at,
                format!("invalid memory quantity \"{q}\" (examples: 256Mi, 1Gi)"),
            )
        })
    };
    if cpu(&value.requests.cpu)? > cpu(&value.limits.cpu)? {
        return Err((
            at,
            format!(
                "CPU request {} is above its limit {}",
                value.requests.cpu, value.limits.cpu
            ),
        ));
    }
    if memory(&value.requests.memory)? > memory(&value.limits.memory)? {
        return Err((
            at,
            format!(
                "memory request {} is above its limit {}",
                value.requests.memory, value.limits.memory
            ),
        ));
    }
    Ok(value.clone())
}

/// `250m` -> 250, `1` -> 1000, `0.5` -> 500.
pub fn cpu_millis(quantity: &str) -> Option<u64> {
    let value = match quantity.strip_suffix('m') {
        Some(millis) => millis.parse::<u64>().ok()? as f64,
        None => quantity.parse::<f64>().ok().filter(|v| v.is_finite())? * 1000.0,
    };
    (value > 0.0).then_some(value as u64)
}

/// `256Mi` -> 268435456; decimal (`k`, `M`, `G`) and binary (`Ki`, `Mi`, `Gi`, `Ti`) suffixes.
pub fn memory_bytes(quantity: &str) -> Option<u64> {
    const SUFFIXES: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| quantity.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((quantity, 1));
    let number: u64 = number.parse().ok()?;
    (number > 0).then(|| number.saturating_mul(factor))
}

fn spec_error(source: &str, at: Location, message: String) -> Error {
    if at == Location::UNKNOWN {
        Error::Other(format!("{source}: {message}"))
    } else {
        Error::Other(format!("{source}:{}:{}: {message}", at.line(), at.column()))
    }
}

/// One line, `file:line:column: message`, from a parser error (whose own
/// rendering spans several lines with a source excerpt).
fn yaml_error(source: &str, err: &serde_saphyr::Error) -> Error {
    let mut options = serde_saphyr::RenderOptions::default();
    options.snippets = serde_saphyr::SnippetMode::Off;
    let rendered = err.render_with_options(options);
    let first_line = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let mut message = strip_location_suffix(first_line);
    if message.starts_with("multiple YAML documents") {
        message =
            "the file holds several YAML documents; a devenv.yaml holds exactly one".to_owned();
    }
    spec_error(source, err.location().unwrap_or(Location::UNKNOWN), message)
}

/// `missing field `name` at line 3, column 3` -> `missing field `name``.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata:
  name: shop
spec:
  namespaces:
    dev: shop-dev
    test: shop-test
  targetArch: arm64
  dev:
    version: "8.2"
    codePath: /home/me/shop
  components:
    - kind: php
    - kind: mysql
      version: "8.0"
      storage:
        size: 5Gi
        className: fast
    - kind: redis
      name: cache
      image: redis:7.4-alpine
      resources:
        requests: { cpu: 10m, memory: 32Mi }
        limits: { cpu: 100m, memory: 64Mi }
"#;

    fn error_of(text: &str) -> String {
        parse(text, "devenv.yaml").unwrap_err().to_string()
    }

    const PLACED: &str = r#"
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata: {name: shop}
spec:
  placement:
    nodeSelector: {pool: dev}
    tolerations:
      - {key: dedicated, operator: Equal, value: dev, effect: NoSchedule}
  components: [{kind: redis}]
"#;

    #[test]
    fn placement_round_trips_through_the_writer() {
        let spec = parse(PLACED, "devenv.yaml").unwrap();
        assert_eq!(spec.placement.node_selector["pool"], "dev");
        assert_eq!(
            spec.placement.tolerations[0].key.as_deref(),
            Some("dedicated")
        );
        assert_eq!(parse(&spec.to_yaml(), "again").unwrap(), spec);
    }

    #[test]
    fn placement_mistakes_are_located() {
        let arch = PLACED.replace("{pool: dev}", "{kubernetes.io/arch: arm64}");
        assert_eq!(
            error_of(&arch),
            "devenv.yaml:7:5: set the architecture with `targetArch:`, not placement.nodeSelector"
        );
        let operator = PLACED.replace("operator: Equal", "operator: In");
        assert!(
            error_of(&operator).contains("invalid toleration operator \"In\""),
            "{}",
            error_of(&operator)
        );
        let effect = PLACED.replace("effect: NoSchedule", "effect: Never");
        assert!(error_of(&effect).contains("invalid toleration effect \"Never\""));
    }

    #[test]
    fn full_example_resolves() {
        let spec = parse(FULL, "devenv.yaml").unwrap();
        assert_eq!(spec.name, "shop");
        assert_eq!(spec.namespaces(), ["shop-dev", "shop-test"]);
        assert_eq!(spec.target_arch, Some(Arch::arm64()));
        assert_eq!(spec.dev.image, "ghcr.io/kubectl-devenv/php-dev:8.2");
        assert_eq!(spec.dev.http_port, Some(8080));
        assert_eq!(
            spec.dev.code_path.as_deref(),
            Some(Path::new("/home/me/shop"))
        );
        let names: Vec<_> = spec.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["php", "mysql", "cache"]);
        let mysql = spec.component("mysql").unwrap();
        assert_eq!(mysql.image, "mysql:8.0");
        assert_eq!(mysql.port, 3306);
        assert_eq!(
            mysql.storage,
            Some(Storage {
                size: "5Gi".into(),
                class_name: Some("fast".into())
            })
        );
        assert_eq!(
            spec.component("cache").unwrap().resources.limits.memory,
            "64Mi"
        );
        assert_eq!(
            spec.images(),
            [
                "ghcr.io/kubectl-devenv/php-dev:8.2",
                "php:8.3-fpm-alpine",
                "mysql:8.0",
                "redis:7.4-alpine"
            ]
        );
        assert_eq!(
            spec.service_host(mysql),
            "mysql.shop-test.svc.cluster.local"
        );
    }

    #[test]
    fn the_code_path_node_comes_with_a_code_path() {
        let with_node = FULL.replace(
            "    codePath: /home/me/shop\n",
            "    codePath: /home/me/shop\n    codePathNode: node-1\n",
        );
        let spec = parse(&with_node, "devenv.yaml").unwrap();
        assert_eq!(spec.dev.code_path_node.as_deref(), Some("node-1"));
        assert_eq!(parse(&spec.to_yaml(), "canonical").unwrap(), spec);
        let alone = with_node.replace("    codePath: /home/me/shop\n", "");
        assert!(
            error_of(&alone).contains("codePathNode needs codePath"),
            "{}",
            error_of(&alone)
        );
        let bad = with_node.replace("node-1", "Node_1");
        assert!(error_of(&bad).contains("invalid codePathNode \"Node_1\""));
    }

    #[test]
    fn canonical_yaml_round_trips() {
        let spec = parse(FULL, "devenv.yaml").unwrap();
        let again = parse(&spec.to_yaml(), "canonical").unwrap();
        assert_eq!(spec, again);
    }

    /// Every key the writer can emit, each away from its default.
    const EVERYTHING: &str = r##"
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata: {name: shop}
spec:
  namespaces: {dev: shop-dev, test: shop-test}
  clusterDomain: corp.internal
  targetArch: amd64
  placement:
    nodeSelector: {pool: dev, "example.com/team": "1"}
    tolerations: [{key: dedicated, operator: Exists}]
  dev:
    image: registry.local/app-dev:1
    httpPort: 8000
    docroot: web
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: "2", memory: 1Gi}
    dependsOn: [search, db]
    files: [{path: /usr/local/etc/php/conf.d/x.ini, content: "a = 1\n\n"}]
    sync: {localPath: "src dir", remotePath: /srv/app, excludes: ["# not a comment", "*.log"]}
    env: {APP_ENV: local, DEBUG: "true", EMPTY: "", URL: "http://x/?a=b: c"}
  components:
    - kind: mariadb
      name: db
      localPort: 13306
      storage: {size: 3Gi, className: fast}
      resources:
        requests: {cpu: 50m, memory: 64Mi}
        limits: {cpu: 500m, memory: 256Mi}
    - kind: generic
      name: search
      image: "getmeili/meilisearch:v1.12"
      ports: [{name: http, port: 7700, localPort: 17700}, {name: metrics, port: 9100}]
      env: {FLAG: "true", EMPTY: "", KEY: "secret:master-key", COLON: "a: b"}
      command: [/bin/meili, "--flag=[x]"]
      args: ["-c", "yes", "1, 2"]
      readiness: {http: {path: /health, port: http}, interval: 2s, timeout: 1s, retries: 5, startPeriod: 1m}
      storage: {path: /meili_data, size: 2Gi, className: fast}
      runAsUser: 1001
      runAsGroup: 2002
      resources:
        requests: {cpu: 10m, memory: 32Mi}
        limits: {cpu: 100m, memory: 64Mi}
      dependsOn: [db]
"##;

    #[test]
    fn every_written_key_round_trips() {
        let spec = parse(EVERYTHING, "devenv.yaml").unwrap();
        let yaml = spec.to_yaml();
        assert!(yaml.starts_with("# kubectl-devenv stack;"), "{yaml}");
        assert_eq!(parse(&yaml, "canonical").unwrap(), spec, "{yaml}");
        assert_eq!(spec.to_yaml(), parse(&yaml, "again").unwrap().to_yaml());
    }

    #[test]
    fn dev_env_holds_literals_the_stack_does_not_set() {
        let spec = parse(EVERYTHING, "devenv.yaml").unwrap();
        assert_eq!(spec.dev.env["DEBUG"], "true");
        assert_eq!(spec.dev.env["EMPTY"], "");
        assert_eq!(spec.component("db").unwrap().local_port, Some(13306));
        let search = spec.component("search").unwrap();
        assert_eq!(
            search.local_ports(),
            [("http".to_owned(), 17700)],
            "only the port that sets one"
        );
        let at = |from: &str, to: &str| error_of(&EVERYTHING.replace(from, to));
        assert_eq!(
            at("APP_ENV: local", "DB_HOST: 127.0.0.1"),
            "devenv.yaml:22:20: dev.env DB_HOST: the stack sets DB_HOST from component \"db\" and that value wins; remove it here"
        );
        assert!(
            at("APP_ENV: local", "DEVENV_DOCROOT: x").contains("the dev image's own"),
            "{}",
            at("APP_ENV: local", "DEVENV_DOCROOT: x")
        );
        assert!(
            at("APP_ENV: local", "\"1X\": y").contains("invalid environment variable name \"1X\"")
        );
        assert!(at("APP_ENV: local", "K: \"secret:k\"").contains("values are literals"));
    }

    #[test]
    fn local_ports_are_ports_claimed_once() {
        let at = |from: &str, to: &str| error_of(&EVERYTHING.replace(from, to));
        assert_eq!(
            at("localPort: 17700", "localPort: 13306"),
            "devenv.yaml:34:51: localPort 13306 is already claimed by component \"db\""
        );
        assert_eq!(
            at("localPort: 13306", "localPort: 0"),
            "devenv.yaml:26:18: localPort 0 must be from 1 to 65535"
        );
        assert!(at("localPort: 17700", "localPort: 65536").contains("localPort 65536 must be"));
        assert!(
            at("port: 9100}", "port: 9100, localPort: 17700}")
                .contains("already claimed by another port of this component")
        );
        let generic = at(
            "    - kind: generic\n      name: search\n",
            "    - kind: generic\n      name: search\n      localPort: 1\n",
        );
        assert!(generic.contains("sets localPort on each port"), "{generic}");
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let spec = parse(
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: a}\nspec:\n  components: [{kind: redis}]\n",
            "x",
        )
        .unwrap();
        assert_eq!(spec.namespaces(), ["dev", "test"]);
        assert_eq!(spec.dev.image, "ghcr.io/kubectl-devenv/php-dev:8.3");
        assert_eq!(spec.dev.docroot, None);
        assert_eq!(spec.components[0].storage.as_ref().unwrap().size, "512Mi");
        assert_eq!(spec.target_arch, None);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let unknown = FULL.replace("kind: redis", "kind: mongodb");
        assert_eq!(
            error_of(&unknown),
            "devenv.yaml:21:13: unknown component kind \"mongodb\" (known kinds: php, mysql, mariadb, postgres, redis, memcached, web)"
        );
        let bad_yaml = FULL.replace("    dev: shop-dev", "    dev: [shop-dev");
        let message = error_of(&bad_yaml);
        assert!(message.starts_with("devenv.yaml:"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    const DEV: &str = "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: a}\nspec:\n  dev: DEV\n  components: [{kind: php}, {kind: web}]\n";

    fn dev_of(dev: &str) -> Result<DevPod> {
        parse(&DEV.replace("DEV", dev), "devenv.yaml").map(|s| s.dev)
    }

    #[test]
    fn the_bare_image_serves_no_http_and_others_say_which_port() {
        let bare = dev_of("{image: \"php:8.4-fpm-alpine\"}").unwrap();
        assert_eq!((bare.http_port, bare.user), (None, 82));
        let own =
            dev_of("{image: registry.local/app-dev:1, httpPort: 8000, docroot: web/}").unwrap();
        assert_eq!(own.http_port, Some(8000));
        assert_eq!(own.docroot.as_deref(), Some("web"));
        let tagged = dev_of("{image: \"ghcr.io/kubectl-devenv/php-dev:8.4-v1\"}").unwrap();
        assert_eq!(tagged.http_port, Some(8080));
        for dev in [
            "{image: \"php:8.4-fpm-alpine\"}",
            "{image: registry.local/app-dev:1, httpPort: 8000, docroot: web}",
            "{version: \"8.4\", docroot: public}",
        ] {
            let spec = parse(&DEV.replace("DEV", dev), "x").unwrap();
            assert_eq!(parse(&spec.to_yaml(), "again").unwrap(), spec, "{dev}");
        }
    }

    #[test]
    fn docroot_and_http_port_mistakes_are_located() {
        for (dev, needle) in [
            ("{docroot: ../etc}", "invalid docroot \"../etc\""),
            ("{docroot: /srv}", "invalid docroot"),
            ("{docroot: \"pub;lic\"}", "invalid docroot"),
            ("{httpPort: 9000}", "FastCGI port"),
            ("{httpPort: 0}", "from 1 to 65535"),
        ] {
            let err = dev_of(dev).unwrap_err().to_string();
            assert!(err.starts_with("devenv.yaml:5:"), "{err}");
            assert!(err.contains(needle), "{dev}: {err}");
        }
    }

    #[test]
    fn web_needs_the_php_it_fronts() {
        let err = error_of(&DEV.replace("DEV", "{}").replace("{kind: php}, ", ""));
        assert_eq!(
            err,
            "devenv.yaml:6:23: web sits in front of php: add a php component to the stack"
        );
    }

    const SYNCED: &str = r#"
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata: {name: shop}
spec:
  dev:
    sync:
      localPath: app
      remotePath: /srv/app/
      excludes: ["vendor/", "*.log", "!keep.log"]
      persist: true
      size: 5Gi
  components: [{kind: redis}]
"#;

    #[test]
    fn sync_settings_round_trip_through_the_writer() {
        let spec = parse(SYNCED, "devenv.yaml").unwrap();
        let sync = &spec.dev.sync;
        assert_eq!(sync.local_path.as_deref(), Some(Path::new("app")));
        assert_eq!(sync.remote_path, "/srv/app", "a trailing slash is dropped");
        assert_eq!(sync.excludes, ["vendor/", "*.log", "!keep.log"]);
        assert!(sync.persist);
        assert_eq!(sync.size.as_deref(), Some("5Gi"));
        assert_eq!(parse(&spec.to_yaml(), "again").unwrap(), spec);
        let plain = parse(PLACED, "devenv.yaml").unwrap();
        assert_eq!(plain.dev.sync, CodeSync::default());
        assert!(!plain.to_yaml().contains("sync:"));
    }

    #[test]
    fn sync_mistakes_are_located() {
        let relative = SYNCED.replace("/srv/app/", "srv/app");
        assert_eq!(
            error_of(&relative),
            "devenv.yaml:9:19: invalid sync.remotePath \"srv/app\": it must be absolute"
        );
        let root = SYNCED.replace("/srv/app/", "/");
        assert!(error_of(&root).contains("cannot be the root directory"));
        let dots = SYNCED.replace("/srv/app/", "/srv/../etc");
        assert!(error_of(&dots).contains("cannot contain `.` or `..`"));
        let pattern = SYNCED.replace("\"*.log\"", "\"{a\"");
        assert!(
            error_of(&pattern).starts_with("devenv.yaml:10:29: invalid sync exclude \"{a\""),
            "{}",
            error_of(&pattern)
        );
        let size = SYNCED.replace("5Gi", "lots");
        assert_eq!(
            error_of(&size),
            "devenv.yaml:12:13: invalid sync.size \"lots\" (examples: 512Mi, 5Gi)"
        );
        let unknown = SYNCED.replace("persist: true", "persistent: true");
        assert!(
            error_of(&unknown).contains("persistent"),
            "{}",
            error_of(&unknown)
        );
        let both = SYNCED.replace("    sync:", "    codePath: /src\n    sync:");
        assert!(
            error_of(&both).contains("`sync` and `codePath` exclude each other"),
            "{}",
            error_of(&both)
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(cpu_millis("lots"), None);
        assert_eq!(memory_bytes("1Gi"), Some(1 << 30));
        assert_eq!(memory_bytes("500M"), Some(500_000_000));
        assert_eq!(memory_bytes("1GB"), None);
    }

    #[test]
    fn names_follow_dns_labels() {
        assert!(name_problem("shop-1", 40).is_none());
        assert!(name_problem("My_Stack", 40).is_some());
        assert!(name_problem("-x", 40).is_some());
        assert!(name_problem(&"a".repeat(41), 40).is_some());
    }
}
