//! Generic components: any image, described in `devenv.yaml` itself rather
//! than in the catalog (`kind: generic`). They get the same locked-down pods,
//! labels, Services, aliases and NetworkPolicy as catalog components; this
//! module holds their model, their fields in the file format (read and
//! written), validation and container.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, ExecAction, HTTPGetAction,
    KeyToPath, Probe, Sysctl, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use crate::catalog::{Quantities, Resources};
use crate::spec::unlocated;

/// The `kind:` of a generic component.
pub(crate) const KIND: &str = "generic";
/// UID and GID a generic component runs as unless it sets `runAsUser`:
/// non-root, as every pod of the stack, and the first ordinary account of
/// most base images.
pub(crate) const DEFAULT_USER: i64 = 1000;
/// Size of a generic component's data volume unless `storage.size` says otherwise.
pub(crate) const DEFAULT_SIZE: &str = "1Gi";
/// ConfigMaps hold at most 1 MiB; a mounted file must fit in one.
pub(crate) const MAX_FILE_BYTES: usize = 1 << 20;

/// Everything a generic component sets that a catalog entry would otherwise supply.
#[derive(Debug, Clone, PartialEq)]
pub struct Generic {
    /// Container ports, first one first: the Service exposes all of them.
    pub ports: Vec<Port>,
    /// Literal values, or `secret:<key>` for a key of the component's
    /// generated credentials Secret (the catalog's convention).
    pub env: BTreeMap<String, String>,
    /// Replaces the image's entrypoint.
    pub command: Option<Vec<String>>,
    /// Replaces the image's command.
    pub args: Option<Vec<String>>,
    /// `None` only for a component without ports and without a probe: it is
    /// Ready once it runs.
    pub readiness: Option<Readiness>,
    /// Where the data volume is mounted (its size is the component's `storage`).
    pub data_path: Option<String>,
    pub run_as_user: i64,
    pub run_as_group: i64,
    /// Single files mounted from a ConfigMap.
    pub files: Vec<MountedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// IANA service name: the Service's target port refers to it.
    pub name: String,
    pub port: u16,
    /// `forward`'s default local port for it, when not the port itself.
    pub local_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub check: Check,
    pub interval_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub retries: Option<i32>,
    /// Time the container gets to start before failures count: a startup
    /// probe with this much headroom gates the readiness probe.
    pub start_period_seconds: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Tcp(PortRef),
    Http {
        path: String,
        port: PortRef,
    },
    /// Argv, run in the container; a shell only if the argv asks for one.
    Exec(Vec<String>),
}

/// A port by number or by the name of one of the component's ports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// A file mounted into the container, its content kept in `devenv.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFile {
    /// Absolute path in the container.
    pub path: String,
    pub content: String,
}

/// Requests and limits of a generic component unless `resources` says
/// otherwise: as much as the catalog gives a small database.
pub(crate) fn default_resources() -> Resources {
    let quantities = |cpu: &str, memory: &str| Quantities {
        cpu: cpu.to_owned(),
        memory: memory.to_owned(),
    };
    Resources {
        requests: quantities("50m", "64Mi"),
        limits: quantities("1", "512Mi"),
    }
}

impl Generic {
    /// The keys of the component's credentials Secret: every `secret:` key its
    /// env refers to, all generated.
    pub fn secret_keys(&self) -> BTreeSet<&str> {
        self.env
            .values()
            .filter_map(|v| v.strip_prefix("secret:"))
            .collect()
    }
}

// ---- the file format -------------------------------------------------------

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FilePort {
    name: Spanned<String>,
    port: Spanned<u16>,
    /// As wide as the catalog's `localPort`, checked the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_port: Option<Spanned<i64>>,
}

impl FilePort {
    /// Read before validation, which checks local ports across components.
    pub(crate) fn local_port(&self) -> Option<&Spanned<i64>> {
        self.local_port.as_ref()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileReadiness {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp: Option<Spanned<PortRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<Spanned<FileHttp>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::spec::flow_seq"
    )]
    exec: Option<Spanned<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries: Option<Spanned<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_period: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileHttp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    port: PortRef,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileMountedFile {
    path: Spanned<String>,
    content: String,
}

/// The generic-only fields of a `components:` entry, as read from or written to the file.
#[derive(Debug, Default)]
pub(crate) struct FileGeneric {
    pub ports: Option<Spanned<Vec<FilePort>>>,
    pub env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub args: Option<Spanned<Vec<String>>>,
    pub readiness: Option<Spanned<FileReadiness>>,
    pub run_as_user: Option<Spanned<i64>>,
    pub run_as_group: Option<Spanned<i64>>,
    pub files: Option<Spanned<Vec<FileMountedFile>>>,
}

impl FileGeneric {
    /// Where the first generic-only field was given, and its key, for the
    /// error a catalog component gets when it sets one.
    pub(crate) fn first_set(&self) -> Option<(Location, &'static str)> {
        [
            self.ports.as_ref().map(|s| (s.referenced, "ports")),
            self.env.as_ref().map(|s| (s.referenced, "env")),
            self.command.as_ref().map(|s| (s.referenced, "command")),
            self.args.as_ref().map(|s| (s.referenced, "args")),
            self.readiness.as_ref().map(|s| (s.referenced, "readiness")),
            self.run_as_user
                .as_ref()
                .map(|s| (s.referenced, "runAsUser")),
            self.run_as_group
                .as_ref()
                .map(|s| (s.referenced, "runAsGroup")),
            self.files.as_ref().map(|s| (s.referenced, "files")),
        ]
        .into_iter()
        .flatten()
        .next()
    }
}

type Invalid = (Location, String);

/// Validates the generic fields; `data_path` was read from `storage.path`.
pub(crate) fn validate(
    file: FileGeneric,
    data_path: Option<&Spanned<String>>,
) -> Result<Generic, Invalid> {
    let mut ports = Vec::new();
    for port in file.ports.map(|p| p.value).unwrap_or_default() {
        if let Some(problem) = port_name_problem(&port.name.value) {
            return Err((
                port.name.referenced,
                format!("invalid port name \"{}\": {problem}", port.name.value),
            ));
        }
        if port.port.value == 0 {
            return Err((port.port.referenced, "port 0 is not a port".to_owned()));
        }
        if ports.iter().any(|p: &Port| p.name == port.name.value) {
            return Err((
                port.name.referenced,
                format!("duplicate port name \"{}\"", port.name.value),
            ));
        }
        if ports.iter().any(|p: &Port| p.port == port.port.value) {
            return Err((
                port.port.referenced,
                format!("duplicate port {}", port.port.value),
            ));
        }
        ports.push(Port {
            name: port.name.value,
            port: port.port.value,
            local_port: port
                .local_port
                .as_ref()
                .map(crate::spec::check_local_port)
                .transpose()?,
        });
    }
    let mut env = BTreeMap::new();
    for (name, value) in file.env.map(|e| e.value).unwrap_or_default() {
        if !is_env_name(&name) {
            return Err((
                value.referenced,
                format!("invalid environment variable name \"{name}\""),
            ));
        }
        if let Some(key) = value.value.strip_prefix("secret:")
            && !is_secret_key(key)
        {
            return Err((
                value.referenced,
                format!("invalid secret key \"{key}\" (use letters, digits, '-', '_' and '.')"),
            ));
        }
        env.insert(name, value.value);
    }
    let readiness = match file.readiness {
        Some(readiness) => Some(validate_readiness(readiness, &ports)?),
        None => ports.first().map(|p| Readiness {
            check: Check::Tcp(PortRef::Name(p.name.clone())),
            interval_seconds: None,
            timeout_seconds: None,
            retries: None,
            start_period_seconds: None,
        }),
    };
    let data_path = match data_path {
        None => None,
        Some(path) if path.value.starts_with('/') => Some(path.value.clone()),
        Some(path) => {
            return Err((
                path.referenced,
                format!(
                    "storage.path \"{}\" must be an absolute path in the container",
                    path.value
                ),
            ));
        }
    };
    let run_as_user = match file.run_as_user {
        None => DEFAULT_USER,
        Some(user) if user.value > 0 => user.value,
        Some(user) => {
            return Err((
                user.referenced,
                format!(
                    "runAsUser {} is not allowed: every pod runs as a non-root user",
                    user.value
                ),
            ));
        }
    };
    let run_as_group = match file.run_as_group {
        None => run_as_user,
        Some(group) if group.value >= 0 => group.value,
        Some(group) => {
            return Err((
                group.referenced,
                format!("invalid runAsGroup {}", group.value),
            ));
        }
    };
    let files = validate_files(file.files.map(|f| f.value).unwrap_or_default())?;
    Ok(Generic {
        ports,
        env,
        command: file.command.map(|c| c.value),
        args: file.args.map(|a| a.value),
        readiness,
        data_path,
        run_as_user,
        run_as_group,
        files,
    })
}

/// Mounted files: absolute paths, each once, each small enough for a ConfigMap.
pub(crate) fn validate_files(
    mounted_files: Vec<FileMountedFile>,
) -> Result<Vec<MountedFile>, Invalid> {
    let mut files: Vec<MountedFile> = Vec::new();
    for mounted in mounted_files {
        let path = mounted.path;
        if !path.value.starts_with('/') || path.value.ends_with('/') {
            return Err((
                path.referenced,
                format!(
                    "file path \"{}\" must be an absolute path to a file",
                    path.value
                ),
            ));
        }
        if files.iter().any(|f| f.path == path.value) {
            return Err((
                path.referenced,
                format!("file \"{}\" is mounted twice", path.value),
            ));
        }
        if mounted.content.len() > MAX_FILE_BYTES {
            return Err((
                path.referenced,
                format!(
                    "file \"{}\" is larger than 1 MiB, the most a ConfigMap holds",
                    path.value
                ),
            ));
        }
        files.push(MountedFile {
            path: path.value,
            content: mounted.content,
        });
    }
    Ok(files)
}

fn validate_readiness(
    readiness: Spanned<FileReadiness>,
    ports: &[Port],
) -> Result<Readiness, Invalid> {
    let at = readiness.referenced;
    let file = readiness.value;
    let port_ref = |port: &PortRef, at: Location| -> Result<PortRef, Invalid> {
        match port {
            PortRef::Name(name) if !ports.iter().any(|p| &p.name == name) => Err((
                at,
                format!("readiness refers to port \"{name}\", which is not in `ports`"),
            )),
            PortRef::Number(0) => Err((at, "port 0 is not a port".to_owned())),
            other => Ok(other.clone()),
        }
    };
    let check = match (file.tcp, file.http, file.exec) {
        (Some(tcp), None, None) => Check::Tcp(port_ref(&tcp.value, tcp.referenced)?),
        (None, Some(http), None) => {
            let path = http.value.path.unwrap_or_else(|| "/".to_owned());
            if !path.starts_with('/') {
                return Err((
                    http.referenced,
                    format!("readiness http path \"{path}\" must start with '/'"),
                ));
            }
            Check::Http {
                path,
                port: port_ref(&http.value.port, http.referenced)?,
            }
        }
        (None, None, Some(exec)) if !exec.value.is_empty() => Check::Exec(exec.value),
        (None, None, Some(exec)) => {
            return Err((exec.referenced, "readiness exec is empty".to_owned()));
        }
        _ => {
            return Err((
                at,
                "readiness needs exactly one of `tcp`, `http` or `exec`".to_owned(),
            ));
        }
    };
    let seconds = |value: Option<Spanned<String>>, what: &str| -> Result<Option<i32>, Invalid> {
        value
            .map(|v| {
                duration_seconds(&v.value).ok_or_else(|| {
                    (
                        v.referenced,
                        format!(
                            "invalid readiness {what} \"{}\" (examples: 5s, 1m30s)",
                            v.value
                        ),
                    )
                })
            })
            .transpose()
    };
    let retries = match file.retries {
        None => None,
        Some(r) if r.value >= 1 => Some(r.value),
        Some(r) => {
            return Err((
                r.referenced,
                format!("readiness retries must be at least 1, not {}", r.value),
            ));
        }
    };
    Ok(Readiness {
        check,
        interval_seconds: seconds(file.interval, "interval")?,
        timeout_seconds: seconds(file.timeout, "timeout")?,
        retries,
        start_period_seconds: seconds(file.start_period, "startPeriod")?,
    })
}

/// `90s`, `1m30s`, `2h`, `500ms` -> whole seconds, rounded up (probes count
/// in seconds), at least 1.
pub(crate) fn duration_seconds(text: &str) -> Option<i32> {
    let nanos = duration_nanos(text)?;
    let seconds = nanos.div_ceil(1_000_000_000).max(1);
    i32::try_from(seconds).ok()
}

/// Go's duration syntax, as Compose reads it: a sequence of number+unit
/// (`ns`, `us`, `ms`, `s`, `m`, `h`), e.g. `1m30s`; no sign.
pub(crate) fn duration_nanos(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    (total.is_finite() && total < u64::MAX as f64).then_some(total.round() as u64)
}

/// Why `name` cannot name a container port (IANA_SVC_NAME), if it cannot.
pub(crate) fn port_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        return Some("use 1 to 15 characters");
    }
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let has_letter = name.chars().any(|c| c.is_ascii_lowercase());
    let edges_ok = !name.starts_with('-') && !name.ends_with('-') && !name.contains("--");
    (!(chars_ok && has_letter && edges_ok))
        .then_some("use lowercase letters, digits and single '-', with at least one letter")
}

pub(crate) fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn is_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

// ---- the writer --------------------------------------------------------------

/// The generic fields of one `components:` entry, as `devenv.yaml` writes
/// them: only what differs from the defaults.
pub(crate) fn to_file(generic: &Generic) -> FileGeneric {
    let seconds = |value: Option<i32>| value.map(|s| unlocated(format!("{s}s")));
    FileGeneric {
        ports: (!generic.ports.is_empty()).then(|| {
            unlocated(
                generic
                    .ports
                    .iter()
                    .map(|p| FilePort {
                        name: unlocated(p.name.clone()),
                        port: unlocated(p.port),
                        local_port: p.local_port.map(|l| unlocated(l.into())),
                    })
                    .collect(),
            )
        }),
        env: (!generic.env.is_empty()).then(|| {
            unlocated(
                generic
                    .env
                    .iter()
                    .map(|(name, value)| (name.clone(), unlocated(value.clone())))
                    .collect(),
            )
        }),
        command: generic.command.clone().map(unlocated),
        args: generic.args.clone().map(unlocated),
        readiness: generic.readiness.as_ref().map(|readiness| {
            let (tcp, http, exec) = match &readiness.check {
                Check::Tcp(port) => (Some(unlocated(port.clone())), None, None),
                Check::Http { path, port } => (
                    None,
                    Some(unlocated(FileHttp {
                        path: Some(path.clone()),
                        port: port.clone(),
                    })),
                    None,
                ),
                Check::Exec(argv) => (None, None, Some(unlocated(argv.clone()))),
            };
            unlocated(FileReadiness {
                tcp,
                http,
                exec,
                interval: seconds(readiness.interval_seconds),
                timeout: seconds(readiness.timeout_seconds),
                start_period: seconds(readiness.start_period_seconds),
                retries: readiness.retries.map(unlocated),
            })
        }),
        run_as_user: (generic.run_as_user != DEFAULT_USER).then(|| unlocated(generic.run_as_user)),
        run_as_group: (generic.run_as_group != generic.run_as_user)
            .then(|| unlocated(generic.run_as_group)),
        files: files_to_file(&generic.files),
    }
}

/// `files:` as `devenv.yaml` writes it; `None` when there are none.
pub(crate) fn files_to_file(files: &[MountedFile]) -> Option<Spanned<Vec<FileMountedFile>>> {
    (!files.is_empty()).then(|| {
        unlocated(
            files
                .iter()
                .map(|f| FileMountedFile {
                    path: unlocated(f.path.clone()),
                    content: f.content.clone(),
                })
                .collect(),
        )
    })
}

// ---- rendering -------------------------------------------------------------

/// The name of the ConfigMap holding a component's (or the dev pod's) files.
pub(crate) fn files_config_map_name(component: &str) -> String {
    format!("{component}-files")
}

/// The ConfigMap key of the `index`th file: keys must be file-name-like, and
/// paths need not be.
fn file_key(index: usize, path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{index}-{clean}")
}

/// The ConfigMap data for `files`, or `None` when there are none.
pub(crate) fn files_data(files: &[MountedFile]) -> Option<BTreeMap<String, String>> {
    (!files.is_empty()).then(|| {
        files
            .iter()
            .enumerate()
            .map(|(i, f)| (file_key(i, &f.path), f.content.clone()))
            .collect()
    })
}

/// Mounts each file from the ConfigMap with `subPath`, so the rest of its
/// directory stays the image's.
pub(crate) fn mount_files(
    pod: &mut k8s_openapi::api::core::v1::PodSpec,
    owner: &str,
    files: &[MountedFile],
) {
    if files.is_empty() {
        return;
    }
    pod.volumes.get_or_insert_default().push(Volume {
        name: "files".to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: files_config_map_name(owner),
            items: Some(
                files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| KeyToPath {
                        key: file_key(i, &f.path),
                        path: file_key(i, &f.path),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mounts = pod.containers[0].volume_mounts.get_or_insert_default();
    for (i, file) in files.iter().enumerate() {
        mounts.push(VolumeMount {
            name: "files".to_owned(),
            mount_path: file.path.clone(),
            sub_path: Some(file_key(i, &file.path)),
            read_only: Some(true),
            ..Default::default()
        });
    }
}

/// Lets the non-root user bind the component's ports below 1024 (an image
/// such as nginx or WordPress's Apache listens on 80): without capabilities
/// only the `net.ipv4.ip_unprivileged_port_start` sysctl of the pod's own
/// network namespace allows it, and containerd before 2.0 leaves it at 1024.
/// It is a safe sysctl that Pod Security `restricted` admits; lowered only
/// as far as the lowest port. `None` when every port is 1024 or above.
pub(crate) fn unprivileged_ports(generic: &Generic) -> Option<Sysctl> {
    let lowest = generic.ports.iter().map(|p| p.port).min()?;
    (lowest < 1024).then(|| Sysctl {
        name: "net.ipv4.ip_unprivileged_port_start".to_owned(),
        value: lowest.to_string(),
    })
}

/// Fills in what the generic component sets on a container that already has
/// the stack's security context, user and resources.
pub(crate) fn shape_container(container: &mut Container, generic: &Generic, env: Vec<EnvVar>) {
    container.ports = (!generic.ports.is_empty()).then(|| {
        generic
            .ports
            .iter()
            .map(|p| ContainerPort {
                name: Some(p.name.clone()),
                container_port: i32::from(p.port),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            })
            .collect()
    });
    container.env = (!env.is_empty()).then_some(env);
    container.command = generic.command.clone();
    container.args = generic.args.clone();
    container.readiness_probe = generic.readiness.as_ref().map(readiness_probe);
    container.startup_probe = generic.readiness.as_ref().and_then(startup_probe);
}

fn probe_action(check: &Check) -> Probe {
    let port = |p: &PortRef| match p {
        PortRef::Number(n) => IntOrString::Int(i32::from(*n)),
        PortRef::Name(name) => IntOrString::String(name.clone()),
    };
    match check {
        Check::Tcp(p) => Probe {
            tcp_socket: Some(TCPSocketAction {
                port: port(p),
                ..Default::default()
            }),
            ..Default::default()
        },
        Check::Http { path, port: p } => Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.clone()),
                port: port(p),
                ..Default::default()
            }),
            ..Default::default()
        },
        Check::Exec(argv) => Probe {
            exec: Some(ExecAction {
                command: Some(argv.clone()),
            }),
            ..Default::default()
        },
    }
}

/// Compose's defaults are 30s/30s/3; the catalog's 5s period is kept, since
/// `up` waits on readiness and a 30s period would make every start slow.
fn readiness_probe(readiness: &Readiness) -> Probe {
    Probe {
        period_seconds: Some(readiness.interval_seconds.unwrap_or(5)),
        timeout_seconds: readiness.timeout_seconds,
        failure_threshold: Some(readiness.retries.unwrap_or(3)),
        ..probe_action(&readiness.check)
    }
}

/// The start period as a startup probe: it checks as often as the readiness
/// probe and allows the whole period plus the retries before the kubelet
/// gives up and restarts the container (Compose would only mark it unhealthy).
fn startup_probe(readiness: &Readiness) -> Option<Probe> {
    let start = readiness.start_period_seconds?;
    let period = readiness.interval_seconds.unwrap_or(5);
    let retries = readiness.retries.unwrap_or(3);
    Some(Probe {
        period_seconds: Some(period),
        timeout_seconds: readiness.timeout_seconds,
        failure_threshold: Some((start + period - 1) / period + retries),
        ..probe_action(&readiness.check)
    })
}

/// The ConfigMap for `files` of `owner` (a component, or the dev pod).
pub(crate) fn config_map(
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    files: &[MountedFile],
) -> Option<ConfigMap> {
    Some(ConfigMap {
        metadata,
        data: Some(files_data(files)?),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{self, Object, StorageMode, StoragePlan};
    use crate::spec;

    const STACK: &str = r#"
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata: {name: shop}
spec:
  dev:
    dependsOn: [search]
    files:
      - {path: /usr/local/etc/php/conf.d/x.ini, content: "memory_limit = 1G\n"}
  components:
    - kind: postgres
      name: db
    - kind: generic
      name: search
      image: getmeili/meilisearch:v1.12
      ports:
        - {name: http, port: 7700}
        - {name: metrics, port: 9090}
      env:
        MEILI_ENV: development
        MEILI_MASTER_KEY: secret:master-key
      command: [/bin/meilisearch]
      args: [--db-path, /meili_data]
      readiness:
        http: {path: /health, port: http}
        interval: 2s
        timeout: 1s
        retries: 10
        startPeriod: 30s
      storage: {path: /meili_data, size: 2Gi}
      runAsUser: 1001
      runAsGroup: 1002
      files:
        - path: /etc/meili.toml
          content: |
            env = "development"
      dependsOn: [db]
    - kind: generic
      name: worker
      image: busybox:1.37
      command: [sleep, infinity]
"#;

    fn error_of(text: &str) -> String {
        spec::parse(text, "devenv.yaml").unwrap_err().to_string()
    }

    #[test]
    fn generic_components_parse_and_round_trip() {
        let spec = spec::parse(STACK, "devenv.yaml").unwrap();
        let search = spec.component("search").unwrap();
        let generic = search.generic().unwrap();
        assert_eq!(search.port, 7700);
        assert_eq!(search.version, "v1.12");
        assert_eq!(search.depends_on, ["db"]);
        assert_eq!(generic.run_as_user, 1001);
        assert_eq!(
            generic.secret_keys().into_iter().collect::<Vec<_>>(),
            ["master-key"]
        );
        assert_eq!(
            generic.readiness.as_ref().unwrap().start_period_seconds,
            Some(30)
        );
        let worker = spec.component("worker").unwrap();
        assert_eq!(worker.port, 0);
        assert!(worker.generic().unwrap().readiness.is_none());
        assert_eq!(spec.dev.depends_on, ["search"]);
        assert_eq!(
            spec.start_waves(),
            [vec!["db", "worker"], vec!["search"], vec!["dev"]]
        );
        assert_eq!(spec::parse(&spec.to_yaml(), "again").unwrap(), spec);
    }

    #[test]
    fn generic_components_render_like_catalog_ones() {
        let spec = spec::parse(STACK, "devenv.yaml").unwrap();
        let credentials = render::complete_credentials(&spec, &Default::default(), || "pw".into());
        assert_eq!(credentials["search"]["master-key"], "pw");
        let objects = render::render(
            &spec,
            &credentials,
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let names: Vec<String> = objects
            .iter()
            .map(|o| format!("{} {}/{}", o.kind(), o.namespace().unwrap_or(""), o.name()))
            .collect();
        for expected in [
            "Secret test/search-credentials",
            "ConfigMap test/search-files",
            "ConfigMap dev/dev-files",
            "Service test/search",
            "Service dev/search",
            "StatefulSet test/search",
            "Deployment test/worker",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("Service") && n.ends_with("/worker")),
            "no ports, no Service"
        );
        let Some(Object::StatefulSet(sts)) = objects
            .iter()
            .find(|o| o.name() == "search" && o.kind() == "StatefulSet")
        else {
            unreachable!()
        };
        let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let container = &pod.containers[0];
        let sc = container.security_context.as_ref().unwrap();
        assert_eq!(
            (
                sc.run_as_user,
                sc.run_as_group,
                sc.allow_privilege_escalation
            ),
            (Some(1001), Some(1002), Some(false))
        );
        assert_eq!(pod.security_context.as_ref().unwrap().fs_group, Some(1002));
        assert_eq!(pod.security_context.as_ref().unwrap().sysctls, None);
        let probe = container.readiness_probe.as_ref().unwrap();
        assert_eq!(
            probe.http_get.as_ref().unwrap().path.as_deref(),
            Some("/health")
        );
        assert_eq!(
            (probe.period_seconds, probe.failure_threshold),
            (Some(2), Some(10))
        );
        assert_eq!(
            container.startup_probe.as_ref().unwrap().failure_threshold,
            Some(25)
        );
        let mounts: Vec<&str> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, ["/etc/meili.toml", "/meili_data"]);
        let key = container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "MEILI_MASTER_KEY")
            .unwrap();
        assert_eq!(
            key.value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap()
                .name,
            "search-credentials"
        );
        let Some(Object::Service(service)) = objects.iter().find(|o| {
            o.kind() == "Service" && o.namespace() == Some("test") && o.name() == "search"
        }) else {
            unreachable!()
        };
        let ports: Vec<i32> = service
            .spec
            .as_ref()
            .unwrap()
            .ports
            .iter()
            .flatten()
            .map(|p| p.port)
            .collect();
        assert_eq!(ports, [7700, 9090]);
    }

    #[test]
    fn generic_mistakes_are_located() {
        let at = |from: &str, to: &str| error_of(&STACK.replace(from, to));
        assert_eq!(
            at(
                "      name: search\n      image: getmeili/meilisearch:v1.12\n",
                "      name: search\n"
            ),
            "devenv.yaml:13:13: a `kind: generic` component needs an `image:`"
        );
        assert!(
            at("{name: http, port: 7700}", "{name: HTTP, port: 7700}")
                .starts_with("devenv.yaml:17:18: invalid port name \"HTTP\"")
        );
        assert!(at("port: http}", "port: web}").contains("readiness refers to port \"web\""));
        assert!(
            at("runAsUser: 1001", "runAsUser: 0").contains("every pod runs as a non-root user")
        );
        assert!(
            at("interval: 2s", "interval: often").contains("invalid readiness interval \"often\"")
        );
        assert!(
            at("dependsOn: [db]", "dependsOn: [nope]")
                .starts_with("devenv.yaml:37:19: dependsOn: no component \"nope\"")
        );
        let cycle = error_of(
            &STACK
                .replace("dependsOn: [db]", "dependsOn: [db, worker]")
                .replace(
                    "      command: [sleep, infinity]",
                    "      command: [sleep, infinity]\n      dependsOn: [search]",
                ),
        );
        assert_eq!(
            cycle,
            "devenv.yaml:42:19: dependency cycle: search -> worker -> search"
        );
        let catalog = error_of(&STACK.replace(
            "      name: db\n",
            "      name: db\n      ports: [{name: pg, port: 5432}]\n",
        ));
        assert!(
            catalog.contains("`ports` is for `kind: generic` components"),
            "{catalog}"
        );
    }

    #[test]
    fn ports_below_1024_are_opened_to_the_non_root_user() {
        let web = STACK.replace(
            "        - {name: http, port: 7700}\n        - {name: metrics, port: 9090}\n",
            "        - {name: metrics, port: 9090}\n        - {name: http, port: 80}\n        - {name: smtp, port: 25}\n",
        );
        let spec = spec::parse(&web, "devenv.yaml").unwrap();
        let objects = render::render(
            &spec,
            &render::complete_credentials(&spec, &Default::default(), || "pw".into()),
            &StoragePlan::uniform(StorageMode::Persistent),
        );
        let Some(Object::StatefulSet(sts)) = objects
            .iter()
            .find(|o| o.name() == "search" && o.kind() == "StatefulSet")
        else {
            unreachable!()
        };
        let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let security = pod.security_context.as_ref().unwrap();
        assert_eq!(
            security.sysctls.as_deref(),
            Some(
                &[Sysctl {
                    name: "net.ipv4.ip_unprivileged_port_start".into(),
                    value: "25".into()
                }][..]
            )
        );
        assert_eq!(
            (security.run_as_non_root, security.run_as_user),
            (Some(true), Some(1001))
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration_nanos("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_nanos("500ms"), Some(500_000_000));
        assert_eq!(duration_nanos("1.5h"), Some(5_400_000_000_000));
        assert_eq!(duration_nanos("10"), None);
        assert_eq!(duration_nanos(""), None);
        assert_eq!(duration_seconds("500ms"), Some(1));
        assert_eq!(duration_seconds("2m"), Some(120));
    }

    #[test]
    fn port_names_follow_iana() {
        assert!(port_name_problem("http").is_none());
        assert!(port_name_problem("tcp-7700").is_none());
        assert!(port_name_problem("7700").is_some());
        assert!(port_name_problem("a-very-long-port-name").is_some());
        assert!(port_name_problem("Web").is_some());
    }

    #[test]
    fn file_contents_round_trip_through_the_writer() {
        for text in [
            "a = 1\n",
            "a = 1",
            "a\n\nb\n\n",
            "  indented first\n",
            "tab\tinside\n",
            "trailing space \n",
        ] {
            let mut spec = spec::parse(
                "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: a}\nspec:\n  components: [{kind: redis}]\n",
                "x",
            )
            .unwrap();
            spec.dev.files = vec![MountedFile {
                path: "/etc/app.ini".into(),
                content: text.into(),
            }];
            let yaml = spec.to_yaml();
            assert_eq!(spec::parse(&yaml, "again").unwrap(), spec, "{yaml}");
        }
    }
}
