//! Compose services -> a devenv.yaml: catalog kinds for known images, the
//! dev pod for the service that builds the app and mounts its code, generic
//! components for the rest; and one report line per service saying what it
//! became, what changed and what was dropped, and why.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::ComposeError;
use super::model::{Dependency, Healthcheck, Mount, MountType, Project, Service};
use crate::catalog::{self, Entry};
use crate::registry::{gate, reference};
use crate::spec::generic::{self, Check, Generic, MountedFile, Port, PortRef, Readiness};
use crate::spec::{self, Component, DevPod, Source, Spec, Storage};

/// Keys Compose needs and Kubernetes does not: names resolve through the
/// Services and aliases, and Deployments restart what stops.
const NOT_NEEDED: [&str; 4] = ["restart", "container_name", "networks", "hostname"];

/// What the mapping produced: a validated spec and its report.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub spec: Spec,
    /// One line per service, in file order.
    pub report: Vec<ReportLine>,
}

/// `mysql: catalog mysql 8.0; passwords -> generated credentials; dropped: restart (not needed)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    pub service: String,
    pub became: String,
    pub notes: Vec<String>,
}

impl fmt::Display for ReportLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.service, self.became)?;
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// Maps every enabled service of `project`; `stack` names the stack.
pub fn convert(project: &Project, stack: &str) -> Result<Conversion, ComposeError> {
    let mut ordered: Vec<(&String, &Service)> = project.services.iter().collect();
    ordered.sort_by_key(|(_, s)| (s.at.line(), s.at.column()));
    check_host_ports(project, &ordered)?;
    let app = app_service(&ordered);
    let names = component_names(&ordered, app);
    let mut report = Vec::new();
    let mut components = Vec::new();
    let mut app_line: Option<(usize, &Service)> = None;
    let mut skipped = BTreeSet::new();
    for (name, service) in &ordered {
        let mut line = ReportLine {
            service: (*name).clone(),
            became: String::new(),
            notes: Vec::new(),
        };
        if Some(name.as_str()) == app {
            // Mapped once the components are: its env leaves out what they set.
            app_line = Some((report.len(), *service));
            report.push(line);
            continue;
        }
        let mounts = usable_mounts(project, service, &mut line.notes);
        if let Some(image) = &service.image {
            let component_name = names[name.as_str()].clone();
            if &component_name != *name {
                line.notes.push(format!(
                    "named \"{component_name}\" (Kubernetes names are lowercase DNS labels)"
                ));
            }
            if service.build.is_some() {
                line.notes.push(format!(
                    "build: dropped, runs the image {image} (push it where the cluster can pull it)"
                ));
            }
            let component = match catalog_kind(image) {
                Some(entry) => catalog_component(
                    component_name,
                    image,
                    entry,
                    service,
                    &mounts,
                    &names,
                    &mut line,
                ),
                None => {
                    generic_component(component_name, image, service, &mounts, &names, &mut line)
                }
            };
            components.push(component);
        } else {
            line.became = "skipped".to_owned();
            line.notes.push(
                "build: needs a pushed image (build and push it, then set `image:`)".to_owned(),
            );
            skipped.insert(names[name.as_str()].clone());
        }
        dropped_keys(service, &mut line.notes);
        report.push(line);
    }
    let mut dev = match app_line {
        Some((index, service)) => {
            let line = &mut report[index];
            let mounts = usable_mounts(project, service, &mut line.notes);
            let dev = dev_pod(service, &mounts, &names, &components, line);
            dropped_keys(service, &mut line.notes);
            dev
        }
        None => default_dev(),
    };
    // Dependencies on skipped services cannot be waited for.
    for component in &mut components {
        component.depends_on.retain(|d| !skipped.contains(d));
    }
    dev.depends_on.retain(|d| !skipped.contains(d));
    if components.is_empty() {
        return Err(ComposeError::File {
            file: project.file.clone(),
            message:
                "no service maps to a component: devenv.yaml needs at least one besides the dev pod"
                    .into(),
        });
    }
    let spec = Spec {
        name: stack.to_owned(),
        dev_namespace: spec::DEFAULT_DEV_NAMESPACE.to_owned(),
        test_namespace: spec::DEFAULT_TEST_NAMESPACE.to_owned(),
        cluster_domain: spec::DEFAULT_CLUSTER_DOMAIN.to_owned(),
        target_arch: None,
        placement: spec::Placement::default(),
        dev,
        components,
    };
    // The written file is what `up` will read: validate it the same way.
    let spec = spec::parse(&spec.to_yaml(), "devenv.yaml").map_err(|err| ComposeError::File {
        file: project.file.clone(),
        message: format!("the converted stack is not valid: {err}"),
    })?;
    Ok(Conversion { spec, report })
}

fn default_dev() -> DevPod {
    let php = catalog::php();
    dev_pod_with(
        &php.default_version,
        CodeSource::Sync(None),
        Vec::new(),
        Vec::new(),
        BTreeMap::new(),
    )
}

/// The dev pod on the default dev image (drivers and tools) for PHP `version`.
fn dev_pod_with(
    version: &str,
    code: CodeSource,
    depends_on: Vec<String>,
    files: Vec<MountedFile>,
    env: BTreeMap<String, String>,
) -> DevPod {
    let php = catalog::php();
    let (code_path, local_path) = match code {
        CodeSource::Host(path) => (Some(path), None),
        CodeSource::Sync(local) => (None, local),
    };
    let image = php
        .dev_image_for(version)
        .unwrap_or_else(|| php.image_for(version));
    let (user, group) = php
        .dev
        .as_ref()
        .map_or((php.user, php.group), |d| (d.user, d.group));
    DevPod {
        version: version.to_owned(),
        http_port: spec::default_http_port(&image),
        image,
        code_path,
        code_path_node: None,
        resources: php.resources.clone(),
        depends_on,
        files,
        docroot: None,
        user,
        group,
        sync: spec::CodeSync {
            local_path,
            ..spec::CodeSync::default()
        },
        env,
    }
}

/// Two services publishing one host port cannot both get it as their default forward.
fn check_host_ports(
    project: &Project,
    ordered: &[(&String, &Service)],
) -> Result<(), ComposeError> {
    let mut claimed: BTreeMap<(String, String), &str> = BTreeMap::new();
    for (name, service) in ordered {
        for port in &service.ports {
            let Some(published) = &port.published else {
                continue;
            };
            let key = (published.clone(), port.protocol.clone());
            if let Some(other) = claimed.insert(key, name.as_str())
                && other != name.as_str()
            {
                return Err(ComposeError::located(
                    &project.file,
                    port.at,
                    format!(
                        "services \"{other}\" and \"{name}\" both publish host port {published}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn is_code_mount(mount: &Mount) -> bool {
    mount.kind == MountType::Bind && !Path::new(&mount.source).is_file()
}

/// The service that builds the app and mounts its code: the one mounting
/// the php image's document root if several do, else the first.
fn app_service<'a>(ordered: &[(&'a String, &Service)]) -> Option<&'a str> {
    let candidates: Vec<(&String, &Service)> = ordered
        .iter()
        .filter(|(_, s)| s.build.is_some() && s.volumes.iter().any(is_code_mount))
        .copied()
        .collect();
    candidates
        .iter()
        .find(|(_, s)| {
            s.volumes
                .iter()
                .any(|m| is_code_mount(m) && m.target == crate::render::CODE_DIR)
        })
        .or(candidates.first())
        .map(|(n, _)| n.as_str())
}

/// Service name -> component name (a DNS label other than `dev`).
fn component_names<'a>(
    ordered: &[(&'a String, &Service)],
    app: Option<&str>,
) -> BTreeMap<&'a str, String> {
    let mut taken = BTreeSet::new();
    let mut names = BTreeMap::new();
    for (name, _) in ordered {
        if Some(name.as_str()) == app {
            names.insert(name.as_str(), spec::DEV_COMPONENT.to_owned());
            continue;
        }
        let mut clean: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        clean = clean.trim_matches('-').to_owned();
        if !clean.starts_with(|c: char| c.is_ascii_lowercase()) {
            clean = format!("svc-{clean}");
        }
        clean.truncate(spec::MAX_NAME_LEN);
        if clean == spec::DEV_COMPONENT {
            clean = "dev-service".to_owned();
        }
        let mut candidate = clean.clone();
        let mut n = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{clean}-{n}");
            n += 1;
        }
        names.insert(name.as_str(), candidate);
    }
    names
}

/// The bind mounts that stay: the Docker socket and paths outside the
/// project are refused (the cluster cannot reach the developer's machine).
fn usable_mounts<'s>(
    project: &Project,
    service: &'s Service,
    notes: &mut Vec<String>,
) -> Vec<&'s Mount> {
    let mut usable = Vec::new();
    for mount in &service.volumes {
        if mount.kind == MountType::Bind {
            if mount.source.ends_with("docker.sock") {
                notes.push(format!(
                    "refused: {} (the Docker socket: there is no Docker engine to talk to in the cluster)",
                    mount.written_source
                ));
                continue;
            }
            if !Path::new(&mount.source).starts_with(&project.dir) {
                notes.push(format!(
                    "refused: host path {} -> {} (pods cannot reach files outside the project)",
                    mount.written_source, mount.target
                ));
                continue;
            }
        }
        usable.push(mount);
    }
    usable
}

fn dropped_keys(service: &Service, notes: &mut Vec<String>) {
    let not_needed: Vec<&str> = service
        .other_keys
        .iter()
        .map(String::as_str)
        .filter(|k| NOT_NEEDED.contains(k))
        .collect();
    if !not_needed.is_empty() {
        notes.push(format!(
            "dropped: {} (not needed: names resolve through Services, Kubernetes restarts pods)",
            not_needed.join(", ")
        ));
    }
    let other: Vec<&str> = service
        .other_keys
        .iter()
        .map(String::as_str)
        .filter(|k| !NOT_NEEDED.contains(k))
        .collect();
    if !other.is_empty() {
        notes.push(format!(
            "dropped: {} (no devenv.yaml counterpart)",
            other.join(", ")
        ));
    }
}

/// The catalog entry for an official image (`mysql:8.0`, `docker.io/library/redis`).
fn catalog_kind(image: &str) -> Option<&'static Entry> {
    let reference = reference::normalize(image).ok()?;
    if reference.registry() != "docker.io" {
        return None;
    }
    let repository = reference.repository().strip_prefix("library/")?;
    catalog::entries().iter().find(|e| e.image == repository)
}

fn image_tag(image: &str) -> String {
    reference::normalize(image)
        .ok()
        .and_then(|r| r.tag().map(str::to_owned))
        .unwrap_or_else(|| "latest".to_owned())
}

/// The catalog version a tag stands for: `8.0` and `8.0.36` -> 8.0,
/// `16-alpine` -> 16, `7` -> the newest 7.x; `None` when none fits.
fn catalog_version(entry: &Entry, tag: &str) -> Option<String> {
    let bare = tag.split('-').next().unwrap_or(tag);
    // `latest`, `alpine`, `bookworm`: the newest release.
    if !bare.starts_with(|c: char| c.is_ascii_digit()) {
        return Some(entry.default_version.clone());
    }
    entry
        .versions
        .iter()
        .find(|v| *v == bare)
        .or_else(|| {
            entry
                .versions
                .iter()
                .find(|v| bare.starts_with(&format!("{v}.")))
        })
        .or_else(|| {
            entry
                .versions
                .iter()
                .find(|v| v.starts_with(&format!("{bare}.")))
        })
        .cloned()
}

fn depends_on(
    deps: &[Dependency],
    names: &BTreeMap<&str, String>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for dep in deps {
        let Some(target) = names.get(dep.service.as_str()) else {
            continue;
        };
        match dep.condition.as_str() {
            "service_completed_successfully" => notes.push(format!(
                "depends_on {} (service_completed_successfully) dropped: one-off jobs are not components",
                dep.service
            )),
            _ if target == spec::DEV_COMPONENT => notes.push(format!(
                "depends_on {} dropped: that is the dev pod, which starts last",
                dep.service
            )),
            _ => out.push(target.clone()),
        }
    }
    if !out.is_empty() {
        notes.push(format!(
            "depends_on -> dependsOn {} (up starts it once they are Ready)",
            out.join(", ")
        ));
    }
    out
}

/// Names that carry secrets: their values become generated credentials.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "_KEY", "APIKEY"]
        .iter()
        .any(|word| upper.contains(word))
}

fn catalog_component(
    name: String,
    image: &str,
    entry: &'static Entry,
    service: &Service,
    mounts: &[&Mount],
    names: &BTreeMap<&str, String>,
    line: &mut ReportLine,
) -> Component {
    let tag = image_tag(image);
    let version = match catalog_version(entry, &tag) {
        Some(version) => version,
        None => {
            let oldest = entry
                .versions
                .last()
                .cloned()
                .unwrap_or_else(|| entry.default_version.clone());
            line.notes.push(format!(
                "{} {tag} is not a catalog version ({}): kept the image",
                entry.kind,
                entry.versions.join(", ")
            ));
            oldest
        }
    };
    let suggestions = gate::suggestions(image);
    if !suggestions.is_empty() {
        line.notes.push(format!(
            "{image} has no arm64 variant: on arm64 nodes use {} (up's arch check refuses it there)",
            suggestions.join(" or ")
        ));
    }
    line.became = format!("catalog {} {version}", entry.kind);
    let catalog_keys: BTreeSet<&str> = entry.env.keys().map(String::as_str).collect();
    let mut passwords = Vec::new();
    let mut renamed = Vec::new();
    let mut dropped = Vec::new();
    for (key, value) in &service.environment {
        match entry.env.get(key).map(|v| v.strip_prefix("secret:")) {
            Some(Some(secret))
                if entry
                    .credentials
                    .as_ref()
                    .is_some_and(|c| c.generated.iter().any(|g| g == secret)) =>
            {
                passwords.push(key.as_str());
            }
            Some(Some(secret)) => {
                let fixed = entry.credentials.as_ref().and_then(|c| c.fixed.get(secret));
                if let (Some(fixed), Some(value)) = (fixed, value)
                    && fixed != value
                {
                    renamed.push(format!("{key} {value} -> {fixed}"));
                }
            }
            _ if catalog_keys.contains(key.as_str()) => {}
            _ if is_secret_name(key) => passwords.push(key.as_str()),
            _ => dropped.push(key.as_str()),
        }
    }
    if !passwords.is_empty() {
        line.notes.push(format!(
            "{} -> generated credentials (`kubectl devenv credentials {name}`)",
            passwords.join(", ")
        ));
    }
    if !renamed.is_empty() {
        line.notes.push(format!(
            "{} (the catalog's fixed names)",
            renamed.join(", ")
        ));
    }
    if !dropped.is_empty() {
        line.notes.push(format!(
            "dropped env: {} (the catalog sets {}'s environment)",
            dropped.join(", "),
            entry.kind
        ));
    }
    let storage = entry.data.as_ref().map(|data| Storage {
        size: data.size.clone(),
        class_name: None,
    });
    for mount in mounts {
        match (mount.kind, &entry.data) {
            (MountType::Volume, Some(data)) if !mount.source.is_empty() => line.notes.push(format!(
                "volume {} -> data volume at {} ({})",
                mount.source, data.path, data.size
            )),
            _ => line.notes.push(format!(
                "dropped mount {} -> {} (catalog components take no mounts; use kind: generic to keep it)",
                mount_source(mount),
                mount.target
            )),
        }
    }
    let mut local_port = None;
    for port in &service.ports {
        let Some(published) = port.published.as_deref() else {
            continue;
        };
        match published.parse::<u16>() {
            _ if port.target != entry.port => line.notes.push(format!(
                "dropped: port {published}:{} (the Service port of {} is {})",
                port.target, entry.kind, entry.port
            )),
            Ok(host) if host == port.target => line
                .notes
                .push(format!("port {published} -> forward default")),
            Ok(host) if local_port.is_none() => {
                local_port = Some(host);
                line.notes.push(format!(
                    "port {published}:{} -> localPort {published} (forward's default)",
                    port.target
                ));
            }
            _ => line.notes.push(format!(
                "dropped: port {published}:{} (a component has one localPort)",
                port.target
            )),
        }
    }
    if service.healthcheck.is_some() {
        line.notes
            .push("healthcheck -> the catalog's readiness probe".to_owned());
    }
    for (key, set) in [
        ("command", service.command.is_some()),
        ("entrypoint", service.entrypoint.is_some()),
        ("user", service.user.is_some()),
    ] {
        if set {
            line.notes
                .push(format!("dropped: {key} (the catalog runs {})", entry.kind));
        }
    }
    let deps = depends_on(&service.depends_on, names, &mut line.notes);
    let default_image = entry.image_for(&version);
    Component {
        name,
        kind: entry.kind.clone(),
        version,
        image: if image == default_image || image == format!("docker.io/library/{default_image}") {
            default_image
        } else {
            image.to_owned()
        },
        port: entry.port,
        resources: entry.resources.clone(),
        storage,
        depends_on: deps,
        source: Source::Catalog(entry),
        local_port,
    }
}

fn mount_source(mount: &Mount) -> &str {
    if mount.written_source.is_empty() {
        "(anonymous)"
    } else {
        &mount.written_source
    }
}

/// A single-file bind mount as a file of the ConfigMap, or why not.
fn mounted_file(mount: &Mount) -> Result<MountedFile, String> {
    let content = std::fs::read_to_string(&mount.source)
        .map_err(|err| format!("cannot read {}: {err}", mount.written_source))?;
    if content.len() > generic::MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than a ConfigMap holds (1 MiB)",
            mount.written_source
        ));
    }
    Ok(MountedFile {
        path: mount.target.clone(),
        content,
    })
}

fn readiness(
    check: &Healthcheck,
    first_port: Option<&Port>,
    notes: &mut Vec<String>,
) -> Option<Readiness> {
    let seconds = |nanos: Option<u64>| {
        nanos.map(|n| i32::try_from(n.div_ceil(1_000_000_000).max(1)).unwrap_or(i32::MAX))
    };
    let argv = match check.test.first().map(String::as_str) {
        _ if check.disable => None,
        Some("CMD") => Some(check.test[1..].to_vec()),
        Some("CMD-SHELL") => Some(vec!["sh".into(), "-c".into(), check.test[1..].join(" ")]),
        Some("NONE") | None => None,
        // A bare list is Docker's exec form.
        Some(_) => Some(check.test.clone()),
    };
    match argv {
        Some(argv) if !argv.is_empty() => {
            notes.push("healthcheck -> readiness probe".to_owned());
            Some(Readiness {
                check: Check::Exec(argv),
                interval_seconds: seconds(check.interval),
                timeout_seconds: seconds(check.timeout),
                retries: check
                    .retries
                    .map(|r| i32::try_from(r.max(1)).unwrap_or(i32::MAX)),
                start_period_seconds: seconds(check.start_period),
            })
        }
        _ => {
            if let Some(port) = first_port {
                notes.push(format!(
                    "healthcheck disabled -> readiness is a TCP check of port {}",
                    port.port
                ));
            }
            None
        }
    }
}

fn generic_component(
    name: String,
    image: &str,
    service: &Service,
    mounts: &[&Mount],
    names: &BTreeMap<&str, String>,
    line: &mut ReportLine,
) -> Component {
    line.became = format!("generic ({image})");
    let mut ports: Vec<Port> = Vec::new();
    let mut add_port = |target: u16, local_port: Option<u16>, notes: &mut Vec<String>| {
        if !ports.iter().any(|p| p.port == target) {
            ports.push(Port {
                name: format!("tcp-{target}"),
                port: target,
                local_port,
            });
        } else {
            notes.push(format!("port {target} listed twice: once is enough"));
        }
    };
    let forwarded: Vec<String> = service
        .ports
        .iter()
        .filter(|p| p.published.as_deref().and_then(|h| h.parse().ok()) == Some(p.target))
        .map(|p| p.target.to_string())
        .collect();
    if !forwarded.is_empty() {
        line.notes.push(format!(
            "ports {} -> forward defaults",
            forwarded.join(", ")
        ));
    }
    for port in &service.ports {
        if port.protocol != "tcp" {
            line.notes.push(format!(
                "dropped: port {}/{} (Services here are TCP)",
                port.target, port.protocol
            ));
            continue;
        }
        let local_port = port
            .published
            .as_deref()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|host| *host != port.target);
        if let Some(local) = local_port {
            line.notes.push(format!(
                "port {local}:{} -> localPort {local} (forward's default)",
                port.target
            ));
        }
        add_port(port.target, local_port, &mut line.notes);
    }
    for expose in &service.expose {
        match expose.split('/').next().and_then(|p| p.parse::<u16>().ok()) {
            Some(port) => add_port(port, None, &mut line.notes),
            None => line.notes.push(format!("dropped: expose {expose}")),
        }
    }
    let mut env = BTreeMap::new();
    let mut secrets = Vec::new();
    let mut unset = Vec::new();
    let mut with_password = Vec::new();
    for (key, value) in &service.environment {
        match value {
            None => unset.push(key.as_str()),
            Some(value) if url_with_password(value) => with_password.push(key.as_str()),
            Some(value) if is_secret_name(key) && !value.is_empty() => {
                let secret = key.to_ascii_lowercase().replace('_', "-");
                env.insert(key.clone(), format!("secret:{secret}"));
                secrets.push(key.as_str());
            }
            Some(value) => {
                env.insert(key.clone(), value.clone());
            }
        }
    }
    if !secrets.is_empty() {
        line.notes.push(format!(
            "{} -> generated credentials (`kubectl devenv credentials {name}`; if one must equal another service's password, copy it from there)",
            secrets.join(", ")
        ));
    }
    if !unset.is_empty() {
        line.notes.push(format!(
            "dropped env: {} (not set anywhere)",
            unset.join(", ")
        ));
    }
    if !with_password.is_empty() {
        line.notes.push(format!(
            "dropped env: {} (a URL with a password in it; devenv.yaml holds no passwords: \
             set it from the generated credentials instead)",
            with_password.join(", ")
        ));
    }
    let mut data_path = None;
    let mut files = Vec::new();
    for mount in mounts {
        match mount.kind {
            MountType::Volume if !mount.source.is_empty() && data_path.is_none() => {
                line.notes.push(format!(
                    "volume {} -> data volume at {} ({})",
                    mount.source,
                    mount.target,
                    generic::DEFAULT_SIZE
                ));
                data_path = Some(mount.target.clone());
            }
            MountType::Bind if Path::new(&mount.source).is_file() => match mounted_file(mount) {
                Ok(file) => {
                    line.notes.push(format!(
                        "{} -> ConfigMap file {}",
                        mount.written_source, file.path
                    ));
                    files.push(file);
                }
                Err(why) => line.notes.push(format!("dropped mount: {why}")),
            },
            MountType::Bind => line.notes.push(format!(
                "dropped mount {} -> {} (a directory: only the dev pod gets the code)",
                mount.written_source, mount.target
            )),
            _ => line.notes.push(format!(
                "dropped mount {} -> {} (one data volume per component)",
                mount_source(mount),
                mount.target
            )),
        }
    }
    let (run_as_user, run_as_group) = match service.user.as_deref().map(parse_user) {
        Some(Some((user, group))) if user > 0 => (user, group.unwrap_or(user)),
        Some(_) => {
            line.notes.push(format!(
                "user {} -> runs as UID {} (every pod runs as non-root)",
                service.user.as_deref().unwrap_or_default(),
                generic::DEFAULT_USER
            ));
            (generic::DEFAULT_USER, generic::DEFAULT_USER)
        }
        None => {
            line.notes.push(format!(
                "runs as UID {} (non-root; set runAsUser if the image needs another)",
                generic::DEFAULT_USER
            ));
            (generic::DEFAULT_USER, generic::DEFAULT_USER)
        }
    };
    let readiness = service
        .healthcheck
        .as_ref()
        .and_then(|check| readiness(check, ports.first(), &mut line.notes))
        .or_else(|| {
            ports.first().map(|p| Readiness {
                check: Check::Tcp(PortRef::Name(p.name.clone())),
                interval_seconds: None,
                timeout_seconds: None,
                retries: None,
                start_period_seconds: None,
            })
        });
    let deps = depends_on(&service.depends_on, names, &mut line.notes);
    let generic = Generic {
        ports,
        env,
        command: service.entrypoint.clone(),
        args: service.command.clone(),
        readiness,
        data_path: data_path.clone(),
        run_as_user,
        run_as_group,
        files,
    };
    Component {
        name,
        kind: generic::KIND.to_owned(),
        version: image_tag(image),
        image: image.to_owned(),
        port: generic.ports.first().map_or(0, |p| p.port),
        resources: generic::default_resources(),
        storage: data_path.map(|_| Storage {
            size: generic::DEFAULT_SIZE.to_owned(),
            class_name: None,
        }),
        depends_on: deps,
        source: Source::Generic(Box::new(generic)),
        local_port: None,
    }
}

/// `1000`, `1000:1000` -> IDs; names (`www-data`) cannot be resolved here.
fn parse_user(user: &str) -> Option<(i64, Option<i64>)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let gid = match gid {
        Some(g) => Some(g.parse().ok()?),
        None => None,
    };
    Some((uid.parse().ok()?, gid))
}

/// The PHP version a Dockerfile's `FROM php:X.Y...` names, if it is a catalog version.
fn dockerfile_php_version(context: &str) -> Option<String> {
    let text = std::fs::read_to_string(PathBuf::from(context).join("Dockerfile")).ok()?;
    let php = catalog::php();
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("FROM") {
            return None;
        }
        let image = words.find(|w| !w.starts_with("--"))?;
        let entry = catalog_kind(image)?;
        (entry.kind == php.kind).then(|| catalog_version(php, &image_tag(image)))?
    })
}

/// Where the dev pod's code comes from. An absolute host path can be the
/// `codePath` hostPath (a local cluster sees the same disk); a path
/// relative to the project is carried by `kubectl devenv sync`, from that
/// directory (`sync.localPath`, relative to devenv.yaml beside the Compose
/// file). In the pod the code stays at /var/www/html, which the dev image's
/// web server serves.
fn code_setting(mount: &Mount, notes: &mut Vec<String>) -> CodeSource {
    let moved = if mount.target == crate::render::CODE_DIR {
        String::new()
    } else {
        format!(
            ", at {} rather than {}",
            crate::render::CODE_DIR,
            mount.target
        )
    };
    if Path::new(&mount.written_source).is_absolute() {
        notes.push(format!(
            "code {} -> codePath (hostPath){moved}",
            mount.written_source
        ));
        return CodeSource::Host(PathBuf::from(&mount.written_source));
    }
    let local: PathBuf = Path::new(&mount.written_source)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let from = if local.as_os_str().is_empty() {
        String::new()
    } else {
        format!(" (sync.localPath {})", local.display())
    };
    notes.push(format!(
        "code {} -> carried by `kubectl devenv sync`{from}{moved}",
        mount.written_source
    ));
    CodeSource::Sync((!local.as_os_str().is_empty()).then_some(local))
}

/// The dev pod's code: a hostPath, or uploaded by `sync` from a local directory
/// (`None`: devenv.yaml's own).
enum CodeSource {
    Host(PathBuf),
    Sync(Option<PathBuf>),
}

fn dev_pod(
    service: &Service,
    mounts: &[&Mount],
    names: &BTreeMap<&str, String>,
    components: &[Component],
    line: &mut ReportLine,
) -> DevPod {
    let php = catalog::php();
    let from_dockerfile = service.build.as_deref().and_then(dockerfile_php_version);
    let version = from_dockerfile
        .clone()
        .unwrap_or_else(|| php.default_version.clone());
    let image = php
        .dev_image_for(&version)
        .unwrap_or_else(|| php.image_for(&version));
    line.became = format!("dev pod (php {version})");
    line.notes.push(match from_dockerfile {
        Some(_) => format!("build -> {image} (the version its Dockerfile starts FROM; extensions it adds beyond the dev image's are not there)"),
        None => format!("build -> {image} (the catalog's PHP; extensions your Dockerfile adds beyond the dev image's are not there)"),
    });
    let mut code = CodeSource::Sync(None);
    let mut files = Vec::new();
    let mut code_seen = false;
    for mount in mounts {
        if is_code_mount(mount) && !code_seen {
            code_seen = true;
            code = code_setting(mount, &mut line.notes);
        } else if mount.kind == MountType::Bind && Path::new(&mount.source).is_file() {
            match mounted_file(mount) {
                Ok(file) => {
                    line.notes.push(format!(
                        "{} -> ConfigMap file {}",
                        mount.written_source, file.path
                    ));
                    files.push(file);
                }
                Err(why) => line.notes.push(format!("dropped mount: {why}")),
            }
        } else {
            line.notes.push(format!(
                "dropped mount {} -> {} (the dev pod mounts only the code and files)",
                mount_source(mount),
                mount.target
            ));
        }
    }
    let env = dev_env(service, components, &mut line.notes);
    let published: Vec<&str> = service
        .ports
        .iter()
        .filter_map(|p| p.published.as_deref())
        .collect();
    if !published.is_empty() {
        line.notes.push(format!(
            "dropped: ports {} (the dev pod serves only its web server, on 8080: `kubectl devenv open`)",
            published.join(", ")
        ));
    }
    for (key, set) in [
        ("healthcheck", service.healthcheck.is_some()),
        ("command", service.command.is_some()),
        ("entrypoint", service.entrypoint.is_some()),
        ("user", service.user.is_some()),
    ] {
        if set {
            line.notes.push(format!(
                "dropped: {key} (the dev pod runs php-fpm as www-data)"
            ));
        }
    }
    let depends = depends_on(&service.depends_on, names, &mut line.notes);
    dev_pod_with(&version, code, depends, files, env)
}

/// The app's `environment` as `dev.env`, except what the stack's components
/// set (their value is the one that reaches the pod) and secrets, which
/// devenv.yaml never holds in plain text.
fn dev_env(
    service: &Service,
    components: &[Component],
    notes: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut replaced = Vec::new();
    let mut secrets = Vec::new();
    let mut unset = Vec::new();
    for (key, value) in &service.environment {
        if let Some(component) = spec::stack_variable(components, key) {
            replaced.push(format!("{key} (from {})", component.name));
            continue;
        }
        match value {
            None => unset.push(key.as_str()),
            Some(value)
                if !value.is_empty() && (is_secret_name(key) || url_with_password(value)) =>
            {
                secrets.push(key.as_str())
            }
            Some(value) => {
                env.insert(key.clone(), value.clone());
            }
        }
    }
    if !env.is_empty() {
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        notes.push(format!("env {} -> dev.env", keys.join(", ")));
    }
    if !replaced.is_empty() {
        notes.push(format!(
            "env replaced by the stack's: {}",
            replaced.join(", ")
        ));
    }
    if !secrets.is_empty() {
        notes.push(format!(
            "dropped env: {} (secrets: devenv.yaml never holds them in plain text; keep them in the app's .env)",
            secrets.join(", ")
        ));
    }
    if !unset.is_empty() {
        notes.push(format!(
            "dropped env: {} (not set anywhere)",
            unset.join(", ")
        ));
    }
    env
}

/// `postgresql://app:pw@database/app`: a URL with a password in it.
fn url_with_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| !password.is_empty())
}
