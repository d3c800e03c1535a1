//! Spec -> Kubernetes objects, as a pure function: the same spec and
//! credentials always give byte-identical objects (no timestamps, no random
//! values in pod templates), which is what makes re-running `up` a no-op.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HostPathVolumeSource, Namespace, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext, Service,
    ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::catalog::{self, EnvSource, Resources};
use crate::labels;
use crate::spec::generic::{self, Generic};
use crate::spec::{Component, DEV_COMPONENT, Source, Spec, Storage};

/// Marks credential Secrets: `down` keeps them unless `--purge`, so a
/// database that outlives its stack keeps working with its password.
pub const RETAIN: &str = "kubectl-devenv.io/retain";
/// `dev` or `test` on the namespaces.
pub const ROLE: &str = "kubectl-devenv.io/role";
/// On the dev namespace's ExternalName aliases, in place of the component
/// label: the component they point to. Commands that look for a component's
/// Service (`forward`, `stack::component_service`) thus only find the real one.
pub const ALIAS: &str = "kubectl-devenv.io/alias-of";
/// On a component's Service, per port: `<LOCAL_PORT>.<port name>` is the
/// `localPort` that `forward` listens on by default, so that it needs only
/// the cluster, not devenv.yaml.
pub const LOCAL_PORT: &str = "kubectl-devenv.io/local-port";
/// Name of the test namespace's NetworkPolicy.
pub const NETWORK_POLICY: &str = "devenv-isolation";
pub use crate::spec::CODE_DIR;
/// The dev image's web server serves this subdirectory of [`CODE_DIR`] when
/// set (`dev.docroot`); without it, `public/` when that exists.
pub const DOCROOT_ENV: &str = "DEVENV_DOCROOT";
/// The name of the dev pod's HTTP port, on its container and its Service.
pub const HTTP_PORT_NAME: &str = "http";
/// The dev pod's PersistentVolumeClaim for synced code (`sync.persist`).
pub const CODE_CLAIM: &str = "dev-code";
/// The dev pod's volume that holds the code (synced, or the node's `codePath`).
pub const CODE_VOLUME: &str = "code";

/// component name -> Secret key -> value.
pub type Credentials = BTreeMap<String, BTreeMap<String, String>>;

/// Where databases keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    /// PersistentVolumeClaims from the default (or the component's) StorageClass.
    Persistent,
    /// emptyDir: the cluster has no default StorageClass, so data lives as
    /// long as the pod. Components with an explicit className still get a PVC.
    Ephemeral,
}

/// The storage mode of each component: the cluster's default, except for
/// StatefulSets that already exist and must keep the volumes they have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePlan {
    pub default: StorageMode,
    pub per_component: BTreeMap<String, StorageMode>,
}

impl StoragePlan {
    pub fn uniform(mode: StorageMode) -> Self {
        Self {
            default: mode,
            per_component: BTreeMap::new(),
        }
    }

    pub fn mode_for(&self, component: &str) -> StorageMode {
        self.per_component
            .get(component)
            .copied()
            .unwrap_or(self.default)
    }
}

/// One object to apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Namespace(Namespace),
    Secret(Secret),
    ConfigMap(ConfigMap),
    NetworkPolicy(NetworkPolicy),
    Service(Service),
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    PersistentVolumeClaim(PersistentVolumeClaim),
}

impl Object {
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::Secret(_) => "Secret",
            Object::ConfigMap(_) => "ConfigMap",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::Service(_) => "Service",
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }
}

/// Renders every object of the stack: namespaces first, then Secrets, the
/// NetworkPolicy, Services, workloads, and finally the dev pod.
pub fn render(spec: &Spec, credentials: &Credentials, storage: &StoragePlan) -> Vec<Object> {
    let mut objects = vec![
        Object::Namespace(namespace(spec, &spec.dev_namespace, "dev")),
        Object::Namespace(namespace(spec, &spec.test_namespace, "test")),
    ];
    for component in spec.components.iter().filter(|c| c.has_credentials()) {
        let values = credentials
            .get(&component.name)
            .cloned()
            .unwrap_or_default();
        for ns in spec.namespaces() {
            objects.push(Object::Secret(credentials_secret(
                spec, component, ns, &values,
            )));
        }
    }
    objects.extend(config_maps(spec).into_iter().map(Object::ConfigMap));
    objects.push(Object::NetworkPolicy(network_policy(spec)));
    // A generic component without ports has no Service (nor alias): there
    // is nothing to connect to.
    for component in &spec.components {
        if component.port != 0 {
            objects.push(Object::Service(service(spec, component)));
        }
        objects.push(workload(spec, component, storage.mode_for(&component.name)));
    }
    for component in spec.components.iter().filter(|c| c.port != 0) {
        objects.push(Object::Service(alias(spec, component)));
    }
    if let Some(port) = spec.dev.http_port {
        objects.push(Object::Service(dev_service(spec, port)));
    }
    let code_storage = code_storage(spec, storage.default);
    if let CodeStorage::Claim(claim) = &code_storage {
        objects.push(Object::PersistentVolumeClaim((**claim).clone()));
    }
    objects.push(Object::Deployment(dev_pod(spec, &code_storage)));
    objects
}

/// What holds the dev pod's code.
enum CodeStorage {
    /// The node's directory (`codePath`).
    Host(String),
    /// An emptyDir that `sync` fills, with its optional size limit.
    Empty(Option<String>),
    /// `sync.persist` on a cluster with a default StorageClass.
    Claim(Box<PersistentVolumeClaim>),
}

/// `sync.persist` follows the databases' rule: without a default
/// StorageClass (`StorageMode::Ephemeral`) a claim would stay Pending forever.
fn code_storage(spec: &Spec, mode: StorageMode) -> CodeStorage {
    if let Some(path) = &spec.dev.code_path {
        return CodeStorage::Host(path.display().to_string());
    }
    let sync = &spec.dev.sync;
    if !sync.persist || mode == StorageMode::Ephemeral {
        return CodeStorage::Empty(sync.size.clone());
    }
    let size = sync
        .size
        .clone()
        .unwrap_or_else(|| crate::spec::DEFAULT_CODE_SIZE.to_owned());
    CodeStorage::Claim(Box::new(PersistentVolumeClaim {
        metadata: meta(spec, CODE_CLAIM, &spec.dev_namespace, DEV_COMPONENT),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// The dev pod's web server, so that `forward dev` and `open` find it like
/// any component.
fn dev_service(spec: &Spec, port: u16) -> Service {
    Service {
        metadata: meta(spec, DEV_COMPONENT, &spec.dev_namespace, DEV_COMPONENT),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(stack_labels(spec, DEV_COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some(HTTP_PORT_NAME.to_owned()),
                port: i32::from(port),
                target_port: Some(IntOrString::String(HTTP_PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A catalog component's files (web's nginx config), with `{host}`/`{port}`
/// of the first component of the kind it fronts.
fn catalog_files(spec: &Spec, entry: &catalog::Entry) -> Vec<generic::MountedFile> {
    let upstream = entry
        .fronts
        .as_ref()
        .and_then(|kind| spec.components.iter().find(|c| &c.kind == kind));
    let (host, port) = upstream.map_or((String::new(), 0), |c| (spec.service_host(c), c.port));
    entry
        .files
        .iter()
        .map(|(path, text)| generic::MountedFile {
            path: path.clone(),
            content: text
                .replace("{host}", &host)
                .replace("{port}", &port.to_string()),
        })
        .collect()
}

/// The keys each component's Secret must hold, with their fixed values; the
/// generated ones map to `None`.
pub fn credential_keys(component: &Component) -> BTreeMap<String, Option<String>> {
    let creds = match &component.source {
        Source::Generic(generic) => {
            return generic
                .secret_keys()
                .into_iter()
                .map(|k| (k.to_owned(), None))
                .collect();
        }
        Source::Catalog(entry) => match &entry.credentials {
            Some(creds) => creds,
            None => return BTreeMap::new(),
        },
    };
    let fixed = creds
        .fixed
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())));
    let generated = creds.generated.iter().map(|k| (k.clone(), None));
    fixed.chain(generated).collect()
}

/// Completes the credentials of every component: values that already exist
/// (read from the cluster) are kept as they are, so a database is never
/// handed a new password; only missing keys are filled, fixed ones from the
/// catalog and generated ones from `generate`.
pub fn complete_credentials(
    spec: &Spec,
    existing: &Credentials,
    mut generate: impl FnMut() -> String,
) -> Credentials {
    let mut complete = Credentials::new();
    for component in &spec.components {
        let keys = credential_keys(component);
        if keys.is_empty() {
            continue;
        }
        let have = existing.get(&component.name);
        let values = keys
            .into_iter()
            .map(|(key, fixed)| {
                let value = have
                    .and_then(|h| h.get(&key).cloned())
                    .or(fixed)
                    .unwrap_or_else(&mut generate);
                (key, value)
            })
            .collect();
        complete.insert(component.name.clone(), values);
    }
    complete
}

/// The name of a component's credential Secret (the same in both namespaces).
pub fn credentials_secret_name(component: &str) -> String {
    format!("{component}-credentials")
}

fn stack_labels(spec: &Spec, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (labels::STACK.to_owned(), spec.name.clone()),
        (labels::COMPONENT.to_owned(), component.to_owned()),
    ])
}

fn meta(spec: &Spec, name: &str, namespace: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(stack_labels(spec, component)),
        ..Default::default()
    }
}

fn namespace(spec: &Spec, name: &str, role: &str) -> Namespace {
    let mut labels = BTreeMap::from([
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (labels::STACK.to_owned(), spec.name.clone()),
        (ROLE.to_owned(), role.to_owned()),
    ]);
    // hostPath is refused by both the baseline and restricted levels, so a
    // dev namespace with a code mount can only enforce `privileged`; it still
    // warns and audits against `restricted`.
    let enforce = if role == "dev" && spec.dev.code_path.is_some() {
        "privileged"
    } else {
        "restricted"
    };
    for (mode, level) in [
        ("enforce", enforce),
        ("warn", "restricted"),
        ("audit", "restricted"),
    ] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_owned(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn credentials_secret(
    spec: &Spec,
    component: &Component,
    namespace: &str,
    values: &BTreeMap<String, String>,
) -> Secret {
    let mut metadata = meta(
        spec,
        &credentials_secret_name(&component.name),
        namespace,
        &component.name,
    );
    metadata
        .labels
        .get_or_insert_default()
        .insert(RETAIN.to_owned(), "true".to_owned());
    Secret {
        metadata,
        type_: Some("Opaque".to_owned()),
        // `data`, not `stringData`: stringData is write-only, so server-side
        // apply would see a change on every run.
        data: Some(
            values
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

fn network_policy(spec: &Spec) -> NetworkPolicy {
    let from_dev = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                spec.dev_namespace.clone(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let from_same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..Default::default()
    };
    NetworkPolicy {
        metadata: meta(spec, NETWORK_POLICY, &spec.test_namespace, "network-policy"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![from_dev, from_same_namespace]),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// The ConfigMaps of mounted files: one per component that has files, and
/// one for the dev pod's, in the namespace of the pod that mounts them.
fn config_maps(spec: &Spec) -> Vec<ConfigMap> {
    let components = spec.components.iter().filter_map(|c| {
        let files = match &c.source {
            Source::Generic(generic) => generic.files.clone(),
            Source::Catalog(entry) => catalog_files(spec, entry),
        };
        let name = generic::files_config_map_name(&c.name);
        generic::config_map(meta(spec, &name, &spec.test_namespace, &c.name), &files)
    });
    let dev_name = generic::files_config_map_name(DEV_COMPONENT);
    let dev = generic::config_map(
        meta(spec, &dev_name, &spec.dev_namespace, DEV_COMPONENT),
        &spec.dev.files,
    );
    components.chain(dev).collect()
}

/// The annotation that gives Service port `port_name` its default local port.
pub fn local_port_annotation(port_name: &str) -> String {
    format!("{LOCAL_PORT}.{port_name}")
}

fn service(spec: &Spec, component: &Component) -> Service {
    let mut metadata = meta(spec, &component.name, &spec.test_namespace, &component.name);
    let local_ports = component.local_ports();
    if !local_ports.is_empty() {
        metadata.annotations = Some(
            local_ports
                .into_iter()
                .map(|(name, local)| (local_port_annotation(&name), local.to_string()))
                .collect(),
        );
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(stack_labels(spec, &component.name)),
            ports: Some(
                component
                    .service_ports()
                    .into_iter()
                    .map(|(name, port)| ServicePort {
                        name: Some(name.clone()),
                        port: i32::from(port),
                        target_port: Some(IntOrString::String(name)),
                        protocol: Some("TCP".to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `mysql` in the dev namespace -> `mysql.<test>.svc.<domain>`, so the dev pod
/// uses the same host names as docker-compose.
fn alias(spec: &Spec, component: &Component) -> Service {
    let mut metadata = meta(spec, &component.name, &spec.dev_namespace, &component.name);
    let labels = metadata.labels.get_or_insert_default();
    labels.remove(labels::COMPONENT);
    labels.insert(ALIAS.to_owned(), component.name.clone());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".to_owned()),
            external_name: Some(spec.service_host(component)),
            ports: Some(
                component
                    .service_ports()
                    .into_iter()
                    .map(|(name, port)| ServicePort {
                        name: Some(name),
                        port: i32::from(port),
                        protocol: Some("TCP".to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A component without a data path is a Deployment; one with data is a
/// StatefulSet whose volume is a claim (or an emptyDir without a class).
fn workload(spec: &Spec, component: &Component, storage: StorageMode) -> Object {
    let labels = stack_labels(spec, &component.name);
    let (pod, data_path) = match &component.source {
        Source::Catalog(entry) => (
            catalog_pod(spec, component, entry),
            entry.data.as_ref().map(|d| d.path.clone()),
        ),
        Source::Generic(generic) => (
            generic_pod(spec, component, generic),
            generic.data_path.clone(),
        ),
    };
    let metadata = meta(spec, &component.name, &spec.test_namespace, &component.name);
    match (data_path, &component.storage) {
        (Some(data_path), Some(volume)) => Object::StatefulSet(stateful_set(
            metadata, &labels, pod, component, &data_path, volume, storage,
        )),
        _ => Object::Deployment(deployment(metadata, &labels, pod, None)),
    }
}

/// One replica of `pod`, selected by `labels`.
fn deployment(
    metadata: ObjectMeta,
    labels: &BTreeMap<String, String>,
    pod: PodSpec,
    strategy: Option<DeploymentStrategy>,
) -> Deployment {
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            revision_history_limit: Some(2),
            strategy,
            selector: selector(labels),
            template: template(labels, pod),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        ..Default::default()
    }
}

fn template(labels: &BTreeMap<String, String>, pod: PodSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            ..Default::default()
        }),
        spec: Some(pod),
    }
}

/// A data component: its volume at `data_path`, a claim template that
/// outlives the StatefulSet when the cluster has storage, else an emptyDir.
fn stateful_set(
    metadata: ObjectMeta,
    labels: &BTreeMap<String, String>,
    mut pod: PodSpec,
    component: &Component,
    data_path: &str,
    volume: &Storage,
    storage: StorageMode,
) -> StatefulSet {
    pod.containers[0]
        .volume_mounts
        .get_or_insert_default()
        .push(VolumeMount {
            name: "data".to_owned(),
            mount_path: data_path.to_owned(),
            ..Default::default()
        });
    let persistent = storage == StorageMode::Persistent || volume.class_name.is_some();
    let claims = if persistent {
        Some(vec![PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".to_owned()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                storage_class_name: volume.class_name.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(volume.size.clone()),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }])
    } else {
        pod.volumes.get_or_insert_default().push(Volume {
            name: "data".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity(volume.size.clone())),
                ..Default::default()
            }),
            ..Default::default()
        });
        None
    };
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            revision_history_limit: Some(2),
            service_name: Some(component.name.clone()),
            selector: selector(labels),
            template: template(labels, pod),
            persistent_volume_claim_retention_policy: persistent.then(|| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                }
            }),
            volume_claim_templates: claims,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn catalog_pod(spec: &Spec, component: &Component, entry: &catalog::Entry) -> PodSpec {
    let env: Vec<EnvVar> = entry
        .env
        .iter()
        .map(|(name, value)| env_var(name, catalog::env_source(value, "", 0), &component.name))
        .collect();
    let mut container = container(
        &component.name,
        &component.image,
        entry,
        &component.resources,
    );
    container.env = (!env.is_empty()).then_some(env);
    let mut pod = pod_spec(spec, entry.user, entry.group, container);
    generic::mount_files(&mut pod, &component.name, &catalog_files(spec, entry));
    pod
}

/// The catalog's locked-down container, with the generic component's
/// ports, probe, command, user and env in place of the catalog's.
fn generic_pod(spec: &Spec, component: &Component, generic: &Generic) -> PodSpec {
    let env: Vec<EnvVar> = generic
        .env
        .iter()
        .map(|(name, value)| env_var(name, catalog::env_source(value, "", 0), &component.name))
        .collect();
    let mut container = locked_down(
        &component.name,
        &component.image,
        &component.resources,
        generic.run_as_user,
        generic.run_as_group,
    );
    generic::shape_container(&mut container, generic, env);
    let mut pod = pod_spec(spec, generic.run_as_user, generic.run_as_group, container);
    if let Some(sysctl) = generic::unprivileged_ports(generic) {
        let security = pod.security_context.get_or_insert_default();
        security.sysctls = Some(vec![sysctl]);
    }
    generic::mount_files(&mut pod, &component.name, &generic.files);
    pod
}

fn dev_pod(spec: &Spec, code: &CodeStorage) -> Deployment {
    let php = catalog::php();
    let labels = stack_labels(spec, DEV_COMPONENT);
    let mut container = container(DEV_COMPONENT, &spec.dev.image, php, &spec.dev.resources);
    let mut env = dev_env(spec);
    if let Some(docroot) = &spec.dev.docroot {
        env.push(EnvVar {
            name: DOCROOT_ENV.to_owned(),
            value: Some(docroot.clone()),
            ..Default::default()
        });
    }
    container.env = (!env.is_empty()).then_some(env);
    let code_dir = match code {
        CodeStorage::Host(_) => CODE_DIR,
        _ => spec.dev.sync.remote_path.as_str(),
    };
    container.working_dir = Some(code_dir.to_owned());
    container.volume_mounts = Some(vec![VolumeMount {
        name: CODE_VOLUME.to_owned(),
        mount_path: code_dir.to_owned(),
        ..Default::default()
    }]);
    if let (Some(port), Some(ports)) = (spec.dev.http_port, container.ports.as_mut()) {
        ports.push(ContainerPort {
            name: Some(HTTP_PORT_NAME.to_owned()),
            container_port: i32::from(port),
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        });
    }
    let mut pod = pod_spec(spec, spec.dev.user, spec.dev.group, container);
    pod.affinity = spec.dev.code_path_node.as_deref().map(on_node);
    // fsGroup (the pod's group) owns the emptyDir or claim, so the pod's
    // non-root UID can write the code `sync` extracts.
    pod.volumes = Some(vec![Volume {
        name: CODE_VOLUME.to_owned(),
        host_path: match code {
            CodeStorage::Host(path) => Some(HostPathVolumeSource {
                path: path.clone(),
                type_: Some("Directory".to_owned()),
            }),
            _ => None,
        },
        empty_dir: match code {
            CodeStorage::Empty(limit) => Some(EmptyDirVolumeSource {
                size_limit: limit.clone().map(Quantity),
                ..Default::default()
            }),
            _ => None,
        },
        persistent_volume_claim: match code {
            CodeStorage::Claim(_) => Some(PersistentVolumeClaimVolumeSource {
                claim_name: CODE_CLAIM.to_owned(),
                ..Default::default()
            }),
            _ => None,
        },
        ..Default::default()
    }]);
    generic::mount_files(&mut pod, DEV_COMPONENT, &spec.dev.files);
    // A ReadWriteOnce claim cannot be mounted by the next pod on another
    // node while the old one holds it.
    let strategy = matches!(code, CodeStorage::Claim(_)).then(|| DeploymentStrategy {
        type_: Some("Recreate".to_owned()),
        ..Default::default()
    });
    deployment(
        meta(spec, DEV_COMPONENT, &spec.dev_namespace, DEV_COMPONENT),
        &labels,
        pod,
        strategy,
    )
}

/// The dev pod's environment: for each connection variable the catalog
/// offers (DB_HOST, REDIS_HOST, ...), the first component in file order that
/// offers it wins; then `dev.env`'s literals, which never override those.
pub fn dev_env(spec: &Spec) -> Vec<EnvVar> {
    let mut vars: Vec<EnvVar> = Vec::new();
    for component in &spec.components {
        for (name, value) in component.entry().iter().flat_map(|e| &e.dev_env) {
            if vars.iter().any(|v| &v.name == name) {
                continue;
            }
            let source = catalog::env_source(value, &component.name, component.port);
            vars.push(env_var(name, source, &component.name));
        }
    }
    for (name, value) in &spec.dev.env {
        if !vars.iter().any(|v| &v.name == name) {
            vars.push(EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                ..Default::default()
            });
        }
    }
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    vars
}

fn env_var(name: &str, source: EnvSource<'_>, component: &str) -> EnvVar {
    match source {
        EnvSource::Literal(value) => EnvVar {
            name: name.to_owned(),
            value: Some(value),
            ..Default::default()
        },
        EnvSource::SecretKey(key) => EnvVar {
            name: name.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: credentials_secret_name(component),
                    key: key.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn container(name: &str, image: &str, entry: &catalog::Entry, resources: &Resources) -> Container {
    Container {
        ports: Some(vec![ContainerPort {
            name: Some(entry.port_name.clone()),
            container_port: i32::from(entry.port),
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(entry.readiness.tcp_port)),
                ..Default::default()
            }),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        ..locked_down(name, image, resources, entry.user, entry.group)
    }
}

/// A container with the stack's secure defaults (non-root, no capabilities,
/// no privilege escalation) and its requests and limits.
pub(crate) fn locked_down(
    name: &str,
    image: &str,
    resources: &Resources,
    user: i64,
    group: i64,
) -> Container {
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    Container {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(
                &resources.requests.cpu,
                &resources.requests.memory,
            )),
            limits: Some(quantities(&resources.limits.cpu, &resources.limits.memory)),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Default::default()
            }),
            run_as_non_root: Some(true),
            run_as_user: Some(user),
            run_as_group: Some(group),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What Pod Security `restricted` asks of a pod: non-root as `user`, with
/// RuntimeDefault seccomp; volumes belong to `group`.
pub(crate) fn restricted_pod_security(user: i64, group: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(group),
        fs_group: Some(group),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_spec(spec: &Spec, user: i64, group: i64, container: Container) -> PodSpec {
    PodSpec {
        containers: vec![container],
        // Service links would inject variables such as MYSQL_PORT=tcp://...,
        // which some official images mistake for their own settings.
        enable_service_links: Some(false),
        automount_service_account_token: Some(false),
        node_selector: node_selector(spec),
        tolerations: (!spec.placement.tolerations.is_empty())
            .then(|| spec.placement.tolerations.clone()),
        security_context: Some(restricted_pod_security(user, group)),
        termination_grace_period_seconds: Some(10),
        ..Default::default()
    }
}

/// Only on this node (by name, as `nodeName` would, but through the
/// scheduler, which still checks resources, taints and the node selector).
fn on_node(node: &str) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_fields: Some(vec![NodeSelectorRequirement {
                        key: "metadata.name".to_owned(),
                        operator: "In".to_owned(),
                        values: Some(vec![node.to_owned()]),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The stack's placement plus its target architecture, if any.
pub fn node_selector(spec: &Spec) -> Option<BTreeMap<String, String>> {
    let mut selector = spec.placement.node_selector.clone();
    if let Some(arch) = &spec.target_arch {
        selector.insert(
            "kubernetes.io/arch".to_owned(),
            arch.architecture().to_owned(),
        );
    }
    (!selector.is_empty()).then_some(selector)
}

/// The YAML stream `up --dry-run -o yaml` prints: one document per object.
pub fn to_yaml_stream(objects: &[Object]) -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for object in objects {
        out += "---\n";
        out += &serde_saphyr::to_string(object)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn spec_with(components: &str, extra: &str) -> Spec {
        spec::parse(
            &format!(
                "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {{name: shop}}\nspec:\n{extra}  components: {components}\n"
            ),
            "test",
        )
        .unwrap()
    }

    fn fixed_credentials(spec: &Spec) -> Credentials {
        let mut n = 0;
        complete_credentials(spec, &Credentials::new(), || {
            n += 1;
            format!("secret-{n}")
        })
    }

    fn find<'a>(objects: &'a [Object], kind: &str, ns: &str, name: &str) -> &'a Object {
        objects
            .iter()
            .find(|o| o.kind() == kind && o.namespace().unwrap_or("") == ns && o.name() == name)
            .unwrap_or_else(|| panic!("{kind} {ns}/{name} not rendered"))
    }

    #[test]
    fn existing_credentials_are_never_regenerated() {
        let spec = spec_with("[{kind: mysql}, {kind: redis}]", "");
        let existing = Credentials::from([(
            "mysql".to_owned(),
            BTreeMap::from([("password".to_owned(), "kept".to_owned())]),
        )]);
        let complete = complete_credentials(&spec, &existing, || "fresh".to_owned());
        let mysql = &complete["mysql"];
        assert_eq!(mysql["password"], "kept");
        assert_eq!(mysql["root-password"], "fresh");
        assert_eq!(mysql["username"], "app");
        assert!(!complete.contains_key("redis"), "redis has no credentials");
    }

    #[test]
    fn rendering_is_deterministic() {
        let spec = spec_with("[{kind: php}, {kind: mysql}, {kind: redis}]", "");
        let creds = fixed_credentials(&spec);
        assert_eq!(
            render(
                &spec,
                &creds,
                &StoragePlan::uniform(StorageMode::Persistent)
            ),
            render(
                &spec,
                &creds,
                &StoragePlan::uniform(StorageMode::Persistent)
            )
        );
    }

    #[test]
    fn every_container_is_locked_down_with_limits() {
        let spec = spec_with(
            "[{kind: php}, {kind: mysql}, {kind: mariadb, name: maria}, {kind: postgres}, {kind: redis}, {kind: memcached}]",
            "",
        );
        let objects = render(
            &spec,
            &fixed_credentials(&spec),
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let pods: Vec<&PodSpec> = objects
            .iter()
            .filter_map(|o| match o {
                Object::Deployment(d) => d.spec.as_ref()?.template.spec.as_ref(),
                Object::StatefulSet(s) => s.spec.as_ref()?.template.spec.as_ref(),
                _ => None,
            })
            .collect();
        assert_eq!(pods.len(), 7, "six components and the dev pod");
        for pod in pods {
            let sc = pod.security_context.as_ref().unwrap();
            assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
            assert_eq!(sc.run_as_non_root, Some(true));
            for c in &pod.containers {
                let csc = c.security_context.as_ref().unwrap();
                assert_eq!(csc.allow_privilege_escalation, Some(false));
                assert_eq!(
                    csc.capabilities.as_ref().unwrap().drop.as_deref(),
                    Some(&["ALL".to_owned()][..])
                );
                let res = c.resources.as_ref().unwrap();
                for q in [&res.requests, &res.limits] {
                    let q = q.as_ref().unwrap();
                    assert!(
                        q.contains_key("cpu") && q.contains_key("memory"),
                        "{}",
                        c.name
                    );
                }
                assert!(c.readiness_probe.is_some());
            }
            assert!(pod.volumes.iter().flatten().all(|v| v.host_path.is_none()));
        }
    }

    #[test]
    fn dev_env_literals_join_the_stacks_variables() {
        let spec = spec_with(
            "[{kind: mysql}]",
            "  dev: {env: {APP_ENV: local, ZEBRA: \"1\"}}\n",
        );
        let env = dev_env(&spec);
        let names: Vec<&str> = env.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "APP_ENV",
                "DB_CONNECTION",
                "DB_DATABASE",
                "DB_HOST",
                "DB_PASSWORD",
                "DB_PORT",
                "DB_USERNAME",
                "ZEBRA"
            ]
        );
        // Validation refuses a literal the stack sets; one made in code still loses.
        let mut clash = spec.clone();
        clash.dev.env.insert("DB_HOST".into(), "127.0.0.1".into());
        let env = dev_env(&clash);
        let host: Vec<_> = env.iter().filter(|v| v.name == "DB_HOST").collect();
        assert_eq!(host.len(), 1);
        assert_eq!(host[0].value.as_deref(), Some("mysql"));
    }

    #[test]
    fn local_ports_are_annotated_on_the_component_service_only() {
        let spec = spec_with(
            "[{kind: mysql, localPort: 13306}, {kind: generic, name: mail, image: axllent/mailpit, ports: [{name: smtp, port: 1025}, {name: http, port: 8025, localPort: 18025}]}, {kind: redis}]",
            "",
        );
        let objects = render(
            &spec,
            &fixed_credentials(&spec),
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let annotations = |ns: &str, name: &str| match find(&objects, "Service", ns, name) {
            Object::Service(s) => s.metadata.annotations.clone(),
            _ => unreachable!(),
        };
        assert_eq!(
            annotations("test", "mysql"),
            Some(BTreeMap::from([(
                "kubectl-devenv.io/local-port.mysql".to_owned(),
                "13306".to_owned()
            )]))
        );
        assert_eq!(
            annotations("test", "mail"),
            Some(BTreeMap::from([(
                local_port_annotation("http"),
                "18025".to_owned()
            )]))
        );
        assert_eq!(annotations("test", "redis"), None);
        assert_eq!(
            annotations("dev", "mysql"),
            None,
            "aliases are not forwarded"
        );
    }

    #[test]
    fn dev_pod_reaches_the_stack_by_alias_with_secret_credentials() {
        let spec = spec_with("[{kind: mysql}, {kind: redis}]", "");
        let objects = render(
            &spec,
            &fixed_credentials(&spec),
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let Object::Service(alias) = find(&objects, "Service", "dev", "mysql") else {
            unreachable!()
        };
        let alias_labels = alias.metadata.labels.as_ref().unwrap();
        assert_eq!(alias_labels[ALIAS], "mysql");
        assert!(
            !alias_labels.contains_key(labels::COMPONENT),
            "an alias is not the component"
        );
        let alias_spec = alias.spec.as_ref().unwrap();
        assert_eq!(alias_spec.type_.as_deref(), Some("ExternalName"));
        assert_eq!(
            alias_spec.external_name.as_deref(),
            Some("mysql.test.svc.cluster.local")
        );
        let env = dev_env(&spec);
        let get = |name: &str| env.iter().find(|v| v.name == name).unwrap();
        assert_eq!(get("DB_HOST").value.as_deref(), Some("mysql"));
        assert_eq!(get("DB_PORT").value.as_deref(), Some("3306"));
        assert_eq!(get("REDIS_HOST").value.as_deref(), Some("redis"));
        let password = get("DB_PASSWORD").value_from.as_ref().unwrap();
        let secret_ref = password.secret_key_ref.as_ref().unwrap();
        assert_eq!(
            (secret_ref.name.as_str(), secret_ref.key.as_str()),
            ("mysql-credentials", "password")
        );
        // The Secret the dev pod refers to exists in its own namespace, with the test stack's values.
        let (Object::Secret(dev_copy), Object::Secret(original)) = (
            find(&objects, "Secret", "dev", "mysql-credentials"),
            find(&objects, "Secret", "test", "mysql-credentials"),
        ) else {
            unreachable!()
        };
        assert_eq!(dev_copy.data, original.data);
        assert_eq!(original.metadata.labels.as_ref().unwrap()[RETAIN], "true");
    }

    fn dev_deployment(objects: &[Object], ns: &str) -> PodSpec {
        let Object::Deployment(pod) = find(objects, "Deployment", ns, DEV_COMPONENT) else {
            unreachable!()
        };
        pod.spec.clone().unwrap().template.spec.unwrap()
    }

    #[test]
    fn the_dev_image_serves_http_behind_a_dev_service() {
        let spec = spec_with("[{kind: redis}]", "  dev: {docroot: web}\n");
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        let pod = dev_deployment(&objects, "dev");
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("ghcr.io/kubectl-devenv/php-dev:8.3")
        );
        let ports: Vec<_> = container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.container_port))
            .collect();
        assert_eq!(ports, [(Some("fastcgi"), 9000), (Some("http"), 8080)]);
        let docroot = container
            .env
            .iter()
            .flatten()
            .find(|v| v.name == DOCROOT_ENV);
        assert_eq!(docroot.and_then(|v| v.value.as_deref()), Some("web"));
        assert_eq!(pod.security_context.as_ref().unwrap().run_as_user, Some(82));
        let Object::Service(service) = find(&objects, "Service", "dev", DEV_COMPONENT) else {
            unreachable!()
        };
        let service_spec = service.spec.as_ref().unwrap();
        assert_eq!(
            service_spec.selector.as_ref(),
            Some(&stack_labels(&spec, DEV_COMPONENT))
        );
        assert_eq!(service_spec.ports.as_ref().unwrap()[0].port, 8080);
    }

    #[test]
    fn the_bare_image_gets_no_web_port_and_no_service() {
        let spec = spec_with(
            "[{kind: redis}]",
            "  dev: {image: \"php:8.3-fpm-alpine\"}\n",
        );
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        assert!(
            !objects
                .iter()
                .any(|o| o.kind() == "Service" && o.name() == DEV_COMPONENT)
        );
        let container = &dev_deployment(&objects, "dev").containers[0];
        assert_eq!(container.ports.as_ref().unwrap().len(), 1);
        assert!(
            container
                .env
                .iter()
                .flatten()
                .all(|v| v.name != DOCROOT_ENV)
        );
    }

    #[test]
    fn web_fronts_the_stacks_php_through_a_config_map() {
        let spec = spec_with("[{kind: php, name: app}, {kind: web}]", "");
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        let Object::ConfigMap(config) = find(&objects, "ConfigMap", "test", "web-files") else {
            unreachable!()
        };
        let nginx = config.data.as_ref().unwrap().values().next().unwrap();
        assert!(
            nginx.contains("fastcgi_pass app.test.svc.cluster.local:9000;"),
            "{nginx}"
        );
        assert!(nginx.contains("listen 8080;"), "{nginx}");
        let Object::Deployment(web) = find(&objects, "Deployment", "test", "web") else {
            unreachable!()
        };
        let pod = web.spec.clone().unwrap().template.spec.unwrap();
        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert_eq!(volume.config_map.as_ref().unwrap().name, "web-files");
        let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[0];
        assert_eq!(mount.mount_path, "/etc/nginx/conf.d/default.conf");
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_user,
            Some(101)
        );
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("nginxinc/nginx-unprivileged:1.28-alpine")
        );
    }

    #[test]
    fn storage_follows_the_cluster() {
        let spec = spec_with(
            "[{kind: mysql}, {kind: redis, storage: {className: fast}}]",
            "",
        );
        let creds = fixed_credentials(&spec);
        let statefulset =
            |objects: &[Object], name: &str| match find(objects, "StatefulSet", "test", name) {
                Object::StatefulSet(s) => s.spec.clone().unwrap(),
                _ => unreachable!(),
            };
        let ephemeral = render(&spec, &creds, &StoragePlan::uniform(StorageMode::Ephemeral));
        let mysql = statefulset(&ephemeral, "mysql");
        assert!(mysql.volume_claim_templates.is_none());
        let volumes = mysql.template.spec.unwrap().volumes.unwrap();
        assert!(volumes[0].empty_dir.is_some());
        // An explicit class always gets a claim.
        assert!(
            statefulset(&ephemeral, "redis")
                .volume_claim_templates
                .is_some()
        );
        let persistent = render(
            &spec,
            &creds,
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let claims = statefulset(&persistent, "mysql")
            .volume_claim_templates
            .unwrap();
        assert_eq!(
            claims[0].metadata.labels.as_ref().unwrap()[labels::STACK],
            "shop"
        );
    }

    #[test]
    fn network_policy_admits_only_dev_and_the_stack_itself() {
        let spec = spec_with(
            "[{kind: redis}]",
            "  namespaces: {dev: a-dev, test: a-test}\n",
        );
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        let Object::NetworkPolicy(policy) =
            find(&objects, "NetworkPolicy", "a-test", NETWORK_POLICY)
        else {
            unreachable!()
        };
        let rules = policy.spec.as_ref().unwrap().ingress.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        let from = rules[0].from.as_ref().unwrap();
        assert_eq!(
            from[0]
                .namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "a-dev"
        );
        assert_eq!(from[1].pod_selector, Some(LabelSelector::default()));
        assert!(from[1].namespace_selector.is_none());
    }

    #[test]
    fn code_path_mounts_host_directory_and_relaxes_only_dev_enforcement() {
        let spec = spec_with("[{kind: redis}]", "  dev: {codePath: /srv/app}\n");
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        let Object::Namespace(dev) = find(&objects, "Namespace", "", "dev") else {
            unreachable!()
        };
        let Object::Namespace(test) = find(&objects, "Namespace", "", "test") else {
            unreachable!()
        };
        let level = |ns: &Namespace| {
            ns.metadata.labels.as_ref().unwrap()["pod-security.kubernetes.io/enforce"].clone()
        };
        assert_eq!(level(dev), "privileged");
        assert_eq!(level(test), "restricted");
        let Object::Deployment(pod) = find(&objects, "Deployment", "dev", "dev") else {
            unreachable!()
        };
        let volumes = pod
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .clone()
            .unwrap();
        assert_eq!(volumes[0].host_path.as_ref().unwrap().path, "/srv/app");
    }

    fn dev_pod_of(objects: &[Object]) -> (PodSpec, Option<DeploymentStrategy>) {
        let Object::Deployment(pod) = find(objects, "Deployment", "dev", "dev") else {
            unreachable!()
        };
        let spec = pod.spec.clone().unwrap();
        (spec.template.spec.unwrap(), spec.strategy)
    }

    #[test]
    fn synced_code_lives_on_an_empty_dir_or_a_claim() {
        let plain = spec_with("[{kind: redis}]", "");
        let objects = render(
            &plain,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let (pod, strategy) = dev_pod_of(&objects);
        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert!(volume.empty_dir.is_some());
        assert!(strategy.is_none());
        let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            (CODE_VOLUME, CODE_DIR)
        );
        assert_eq!(pod.security_context.as_ref().unwrap().fs_group, Some(82));
        assert!(!objects.iter().any(|o| o.kind() == "PersistentVolumeClaim"));

        let persist = spec_with(
            "[{kind: redis}]",
            "  dev: {sync: {persist: true, remotePath: /app}}\n",
        );
        let objects = render(
            &persist,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let Object::PersistentVolumeClaim(claim) =
            find(&objects, "PersistentVolumeClaim", "dev", CODE_CLAIM)
        else {
            unreachable!()
        };
        let requests = claim.spec.as_ref().unwrap().resources.as_ref().unwrap();
        assert_eq!(requests.requests.as_ref().unwrap()["storage"].0, "2Gi");
        assert_eq!(
            claim.metadata.labels.as_ref().unwrap()[labels::STACK],
            "shop"
        );
        let (pod, strategy) = dev_pod_of(&objects);
        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert_eq!(
            volume.persistent_volume_claim.as_ref().unwrap().claim_name,
            CODE_CLAIM
        );
        assert_eq!(strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let container = &pod.containers[0];
        assert_eq!(container.working_dir.as_deref(), Some("/app"));
        assert_eq!(
            container.volume_mounts.as_ref().unwrap()[0].mount_path,
            "/app"
        );
        let position = |kind: &str| objects.iter().position(|o| o.kind() == kind).unwrap();
        assert!(position("PersistentVolumeClaim") < position("Deployment"));

        // Without a default StorageClass the claim would never bind.
        let objects = render(
            &persist,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        assert!(
            dev_pod_of(&objects).0.volumes.unwrap()[0]
                .empty_dir
                .is_some()
        );
        assert!(!objects.iter().any(|o| o.kind() == "PersistentVolumeClaim"));
    }

    #[test]
    fn a_code_path_node_pins_only_the_dev_pod() {
        let spec = spec_with(
            "[{kind: redis}]",
            "  dev: {codePath: /srv/app, codePathNode: node-1}\n",
        );
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        let pod_of = |object: &Object| match object {
            Object::Deployment(d) => d.spec.clone().unwrap().template.spec.unwrap(),
            Object::StatefulSet(s) => s.spec.clone().unwrap().template.spec.unwrap(),
            _ => unreachable!(),
        };
        let dev = pod_of(find(&objects, "Deployment", "dev", "dev"));
        let terms = dev
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        let fields = terms[0].match_fields.clone().unwrap();
        assert_eq!(
            (fields[0].key.as_str(), fields[0].operator.as_str()),
            ("metadata.name", "In")
        );
        assert_eq!(fields[0].values, Some(vec!["node-1".to_owned()]));
        let redis = pod_of(find(&objects, "StatefulSet", "test", "redis"));
        assert!(redis.affinity.is_none());
    }

    #[test]
    fn placement_applies_to_every_pod_beside_the_target_arch() {
        let spec = spec_with(
            "[{kind: mysql}, {kind: redis}]",
            "  targetArch: amd64\n  placement:\n    nodeSelector: {pool: dev}\n    tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]\n",
        );
        let objects = render(
            &spec,
            &fixed_credentials(&spec),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        let mut pods = 0;
        for object in &objects {
            let pod = match object {
                Object::Deployment(d) => d.spec.as_ref().unwrap().template.spec.as_ref(),
                Object::StatefulSet(s) => s.spec.as_ref().unwrap().template.spec.as_ref(),
                _ => continue,
            }
            .unwrap();
            pods += 1;
            let selector = pod.node_selector.as_ref().unwrap();
            assert_eq!(selector["pool"], "dev");
            assert_eq!(selector["kubernetes.io/arch"], "amd64");
            let tolerations = pod.tolerations.as_ref().unwrap();
            assert_eq!(tolerations[0].key.as_deref(), Some("dedicated"));
        }
        assert_eq!(pods, 3, "dev pod, mysql and redis");
    }

    #[test]
    fn target_arch_pins_every_pod() {
        let spec = spec_with("[{kind: redis}]", "  targetArch: arm64\n");
        let objects = render(
            &spec,
            &Credentials::new(),
            &StoragePlan::uniform(StorageMode::Ephemeral),
        );
        for object in &objects {
            let pod = match object {
                Object::Deployment(d) => d.spec.as_ref().unwrap().template.spec.as_ref(),
                Object::StatefulSet(s) => s.spec.as_ref().unwrap().template.spec.as_ref(),
                _ => continue,
            };
            assert_eq!(
                pod.unwrap().node_selector.as_ref().unwrap()["kubernetes.io/arch"],
                "arm64"
            );
        }
    }
}
