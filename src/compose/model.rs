//! Reading a Compose file into the merged, interpolated model that
//! `docker compose config` shows: variables from the environment and `.env`,
//! short syntax expanded, `extends` within the file merged, `env_file`
//! folded into `environment`, services outside the enabled profiles left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::yaml::{self, Node};
use super::{ComposeError, dotenv, interpolate};

/// Top-level keys the Compose specification defines (besides `x-*`).
const TOP_LEVEL: [&str; 8] = [
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include",
];

/// What the reader needs from outside: the process environment and the
/// `--profile`s, so that reading is a function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub environment: BTreeMap<String, String>,
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The file, as named on the command line (for messages).
    pub file: String,
    /// The directory relative paths are resolved against.
    pub dir: PathBuf,
    /// Enabled services, by name.
    pub services: BTreeMap<String, Service>,
    /// Declared named volumes.
    pub volumes: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Where the service's name is written.
    pub at: Location,
    pub image: Option<String>,
    /// The build context, as an absolute path (or a URL).
    pub build: Option<String>,
    /// `None` for a variable listed without a value and not set anywhere.
    pub environment: BTreeMap<String, Option<String>>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub ports: Vec<Port>,
    pub expose: Vec<String>,
    pub volumes: Vec<Mount>,
    pub depends_on: Vec<Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub user: Option<String>,
    pub profiles: Vec<String>,
    /// Keys that were read but have no counterpart (`restart`, `networks`, ...), in file order.
    pub other_keys: Vec<String>,
    env_files: Vec<(Spanned<String>, bool)>,
    extends: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub at: Location,
    pub target: u16,
    /// The host port (`"3306"`), if published.
    pub published: Option<String>,
    pub protocol: String,
    pub host_ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Volume,
    Tmpfs,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub at: Location,
    pub kind: MountType,
    /// Binds: the absolute host path; volumes: the volume name ("" when anonymous).
    pub source: String,
    /// A bind's source as written (`./php.ini`, `/srv/app`).
    pub written_source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub at: Location,
    pub service: String,
    /// `service_started`, `service_healthy` or `service_completed_successfully`.
    pub condition: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub retries: Option<u64>,
    pub start_period: Option<u64>,
    pub disable: bool,
}

/// Reads `path` as Compose does.
pub fn load(path: &Path, options: &Options) -> Result<Project, ComposeError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    Reader::new(file, dir, options)?.read(&text)
}

struct Reader<'a> {
    file: String,
    dir: PathBuf,
    options: &'a Options,
    /// `.env` below the process environment.
    variables: BTreeMap<String, String>,
}

impl<'a> Reader<'a> {
    fn new(file: String, dir: PathBuf, options: &'a Options) -> Result<Self, ComposeError> {
        let mut variables = BTreeMap::new();
        let dotenv_path = dir.join(".env");
        if dotenv_path.is_file() {
            let text =
                std::fs::read_to_string(&dotenv_path).map_err(|source| ComposeError::Read {
                    path: dotenv_path.clone(),
                    source,
                })?;
            let outer = |name: &str| options.environment.get(name).cloned();
            let vars = dotenv::parse(&text, &outer).map_err(|e| ComposeError::At {
                file: dotenv_path.display().to_string(),
                line: e.line as u64,
                column: 1,
                message: e.message,
            })?;
            for (key, value) in vars {
                if let Some(value) = value {
                    variables.insert(key, value);
                }
            }
        }
        // The process environment wins over `.env`.
        variables.extend(options.environment.clone());
        Ok(Self {
            file,
            dir,
            options,
            variables,
        })
    }

    fn error(&self, at: Location, message: impl Into<String>) -> ComposeError {
        ComposeError::located(&self.file, at, message)
    }

    fn read(&self, text: &str) -> Result<Project, ComposeError> {
        if text.trim().is_empty() {
            return Err(ComposeError::NotCompose {
                file: self.file.clone(),
                reason: "the file is empty".into(),
            });
        }
        let root = yaml::parse(text).map_err(|(at, message)| self.error(at, message))?;
        let Node::Map(entries) = &root.value else {
            return Err(ComposeError::NotCompose {
                file: self.file.clone(),
                reason: format!(
                    "it holds {}, not a mapping with `services:`",
                    root.value.type_name()
                ),
            });
        };
        if root.value.get("services").is_none() {
            let looks_like = if root.value.get("apiVersion").is_some() {
                " (apiVersion/kind: a Kubernetes manifest or a devenv.yaml)"
            } else {
                ""
            };
            return Err(ComposeError::NotCompose {
                file: self.file.clone(),
                reason: format!("it has no top-level `services:`{looks_like}"),
            });
        }
        for (key, _) in entries {
            if key.value.starts_with("x-") {
                continue;
            }
            if key.value == "include" {
                return Err(self.error(
                    key.referenced,
                    "`include` is not supported: merge the included files into one, or run `docker compose config > compose.yaml` first",
                ));
            }
            if !TOP_LEVEL.contains(&key.value.as_str()) {
                return Err(self.error(
                    key.referenced,
                    format!(
                        "unknown top-level key \"{}\" (Compose has: {})",
                        key.value,
                        TOP_LEVEL.join(", ")
                    ),
                ));
            }
        }
        let root = self.interpolate(root)?;
        let volumes: BTreeSet<String> = match root.value.get("volumes").map(|v| &v.value) {
            None | Some(Node::Null) => BTreeSet::new(),
            Some(Node::Map(entries)) => entries.iter().map(|(k, _)| k.value.clone()).collect(),
            Some(other) => {
                let at = root
                    .value
                    .get("volumes")
                    .map_or(root.referenced, |v| v.referenced);
                return Err(self.error(
                    at,
                    format!("volumes must be a mapping, not {}", other.type_name()),
                ));
            }
        };
        let services_node = root.value.get("services").expect("checked above");
        let Node::Map(service_entries) = &services_node.value else {
            return Err(self.error(
                services_node.referenced,
                format!(
                    "services must be a mapping, not {}",
                    services_node.value.type_name()
                ),
            ));
        };
        let mut raw: BTreeMap<String, Service> = BTreeMap::new();
        for (name, node) in service_entries {
            raw.insert(name.value.clone(), self.service(name, node)?);
        }
        let mut services = BTreeMap::new();
        for name in raw.keys() {
            let merged = self.extended(name, &raw, &mut Vec::new())?;
            services.insert(name.clone(), merged);
        }
        for service in services.values_mut() {
            self.resolve_environment(service)?;
        }
        let enabled: BTreeSet<&str> = self.options.profiles.iter().map(String::as_str).collect();
        services.retain(|_, s| {
            s.profiles.is_empty()
                || s.profiles
                    .iter()
                    .any(|p| enabled.contains(p.as_str()) || p == "*")
                || enabled.contains("*")
        });
        self.check_references(&services, &volumes)?;
        Ok(Project {
            file: self.file.clone(),
            dir: self.dir.clone(),
            services,
            volumes,
        })
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.variables.get(name).cloned()
    }

    /// Interpolates every string value of the tree (keys stay as written).
    fn interpolate(&self, node: Spanned<Node>) -> Result<Spanned<Node>, ComposeError> {
        let Spanned {
            value,
            referenced,
            defined,
        } = node;
        let value = match value {
            Node::Str(text) => Node::Str(
                interpolate::interpolate(&text, &|name| self.lookup(name))
                    .map_err(|failure| self.error(referenced, failure.to_string()))?,
            ),
            Node::Seq(items) => Node::Seq(
                items
                    .into_iter()
                    .map(|i| self.interpolate(i))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(entries) => Node::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((k, self.interpolate(v)?)))
                    .collect::<Result<_, ComposeError>>()?,
            ),
            scalar => scalar,
        };
        Ok(Spanned::new(value, referenced, defined))
    }

    fn service(
        &self,
        name: &Spanned<String>,
        node: &Spanned<Node>,
    ) -> Result<Service, ComposeError> {
        let mut service = Service {
            at: name.referenced,
            image: None,
            build: None,
            environment: BTreeMap::new(),
            command: None,
            entrypoint: None,
            ports: Vec::new(),
            expose: Vec::new(),
            volumes: Vec::new(),
            depends_on: Vec::new(),
            healthcheck: None,
            user: None,
            profiles: Vec::new(),
            other_keys: Vec::new(),
            env_files: Vec::new(),
            extends: None,
        };
        let entries = match &node.value {
            Node::Map(entries) => entries.as_slice(),
            Node::Null => &[],
            other => {
                return Err(self.error(
                    node.referenced,
                    format!(
                        "service \"{}\" must be a mapping, not {}",
                        name.value,
                        other.type_name()
                    ),
                ));
            }
        };
        for (key, value) in entries {
            match key.value.as_str() {
                "image" => service.image = Some(self.text(value, "image")?),
                "build" => service.build = Some(self.build(value)?),
                "environment" => service.environment = self.environment(value)?,
                "env_file" => service.env_files = self.env_files(value)?,
                "command" => service.command = self.command(value)?,
                "entrypoint" => service.entrypoint = self.command(value)?,
                "ports" => {
                    for item in self.list(value, "ports")? {
                        service.ports.push(self.port(item)?);
                    }
                }
                "expose" => {
                    for item in self.list(value, "expose")? {
                        service.expose.push(self.text(item, "expose")?);
                    }
                }
                "volumes" => {
                    for item in self.list(value, "volumes")? {
                        service.volumes.push(self.mount(item)?);
                    }
                }
                "depends_on" => service.depends_on = self.depends_on(value)?,
                "healthcheck" => service.healthcheck = Some(self.healthcheck(value)?),
                "user" => service.user = Some(self.text(value, "user")?),
                "profiles" => {
                    service.profiles = self
                        .list(value, "profiles")?
                        .iter()
                        .map(|p| self.text(p, "profiles"))
                        .collect::<Result<_, _>>()?;
                }
                "extends" => service.extends = Some(self.extends(value)?),
                other if other.starts_with("x-") => {}
                other => service.other_keys.push(other.to_owned()),
            }
        }
        Ok(service)
    }

    fn text(&self, node: &Spanned<Node>, what: &str) -> Result<String, ComposeError> {
        node.value.scalar_text().ok_or_else(|| {
            self.error(
                node.referenced,
                format!("{what} must be a string, not {}", node.value.type_name()),
            )
        })
    }

    fn list<'n>(
        &self,
        node: &'n Spanned<Node>,
        what: &str,
    ) -> Result<&'n [Spanned<Node>], ComposeError> {
        match &node.value {
            Node::Seq(items) => Ok(items),
            Node::Null => Ok(&[]),
            other => Err(self.error(
                node.referenced,
                format!("{what} must be a list, not {}", other.type_name()),
            )),
        }
    }

    fn resolve_path(&self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix("~/")
            && let Some(home) = self.options.environment.get("HOME")
        {
            return Path::new(home).join(rest).display().to_string();
        }
        let joined = self.dir.join(path);
        clean_path(&joined)
    }

    fn build(&self, node: &Spanned<Node>) -> Result<String, ComposeError> {
        let context = match &node.value {
            Node::Map(_) => match node.value.get("context") {
                Some(context) => self.text(context, "build.context")?,
                None => ".".to_owned(),
            },
            _ => self.text(node, "build")?,
        };
        if context.contains("://") || context.starts_with("git@") {
            return Ok(context);
        }
        Ok(self.resolve_path(&context))
    }

    fn environment(
        &self,
        node: &Spanned<Node>,
    ) -> Result<BTreeMap<String, Option<String>>, ComposeError> {
        let mut out = BTreeMap::new();
        match &node.value {
            Node::Map(entries) => {
                for (key, value) in entries {
                    let value = match &value.value {
                        Node::Null => None,
                        _ => Some(self.text(value, "an environment value")?),
                    };
                    out.insert(key.value.clone(), value);
                }
            }
            Node::Seq(items) => {
                for item in items {
                    let text = self.text(item, "an environment entry")?;
                    match text.split_once('=') {
                        Some((key, value)) => out.insert(key.to_owned(), Some(value.to_owned())),
                        None => out.insert(text, None),
                    };
                }
            }
            Node::Null => {}
            other => {
                return Err(self.error(
                    node.referenced,
                    format!(
                        "environment must be a mapping or a list, not {}",
                        other.type_name()
                    ),
                ));
            }
        }
        Ok(out)
    }

    fn env_files(
        &self,
        node: &Spanned<Node>,
    ) -> Result<Vec<(Spanned<String>, bool)>, ComposeError> {
        let one = |item: &Spanned<Node>| -> Result<(Spanned<String>, bool), ComposeError> {
            match &item.value {
                Node::Map(_) => {
                    let path = item.value.get("path").ok_or_else(|| {
                        self.error(item.referenced, "env_file entry needs a path")
                    })?;
                    let required = match item.value.get("required").map(|r| &r.value) {
                        Some(Node::Bool(b)) => *b,
                        Some(Node::Str(s)) => s != "false",
                        _ => true,
                    };
                    Ok((
                        Spanned::new(
                            self.text(path, "env_file.path")?,
                            path.referenced,
                            path.defined,
                        ),
                        required,
                    ))
                }
                _ => Ok((
                    Spanned::new(self.text(item, "env_file")?, item.referenced, item.defined),
                    true,
                )),
            }
        };
        match &node.value {
            Node::Seq(items) => items.iter().map(one).collect(),
            _ => Ok(vec![one(node)?]),
        }
    }

    fn command(&self, node: &Spanned<Node>) -> Result<Option<Vec<String>>, ComposeError> {
        match &node.value {
            Node::Null => Ok(None),
            Node::Seq(items) => Ok(Some(
                items
                    .iter()
                    .map(|i| self.text(i, "a command argument"))
                    .collect::<Result<_, _>>()?,
            )),
            _ => {
                let text = self.text(node, "command")?;
                shell_words(&text).map(Some).ok_or_else(|| {
                    self.error(node.referenced, format!("unbalanced quotes in \"{text}\""))
                })
            }
        }
    }

    fn port(&self, node: &Spanned<Node>) -> Result<Port, ComposeError> {
        let at = node.referenced;
        let range_error = |text: &str| {
            self.error(
                at,
                format!("port range \"{text}\" is not supported: list each port on its own line"),
            )
        };
        let number = |text: &str| -> Result<u16, ComposeError> {
            if text.contains('-') {
                return Err(range_error(text));
            }
            text.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| self.error(at, format!("invalid port \"{text}\"")))
        };
        if let Node::Map(_) = &node.value {
            let target = node
                .value
                .get("target")
                .ok_or_else(|| self.error(at, "a port needs a target"))?;
            let published = node
                .value
                .get("published")
                .map(|p| self.text(p, "published"))
                .transpose()?;
            if let Some(published) = &published {
                number(published)?;
            }
            return Ok(Port {
                at,
                target: number(&self.text(target, "target")?)?,
                published,
                protocol: match node.value.get("protocol") {
                    Some(p) => self.text(p, "protocol")?,
                    None => "tcp".to_owned(),
                },
                host_ip: node
                    .value
                    .get("host_ip")
                    .map(|h| self.text(h, "host_ip"))
                    .transpose()?,
            });
        }
        let text = self.text(node, "a port")?;
        let (text, protocol) = match text.rsplit_once('/') {
            Some((ports, protocol)) => (ports.to_owned(), protocol.to_owned()),
            None => (text.clone(), "tcp".to_owned()),
        };
        let parts: Vec<&str> = text.rsplitn(3, ':').collect();
        let (target, published, host_ip) = match parts.as_slice() {
            [target] => (*target, None, None),
            [target, published] => (*target, Some(*published), None),
            [target, published, host] => (*target, Some(*published), Some(*host)),
            _ => return Err(self.error(at, format!("invalid port \"{text}\""))),
        };
        let published = published.filter(|p| !p.is_empty());
        if let Some(published) = published {
            number(published)?;
        }
        Ok(Port {
            at,
            target: number(target)?,
            published: published.map(str::to_owned),
            protocol,
            host_ip: host_ip
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
                .filter(|h| !h.is_empty()),
        })
    }

    fn mount(&self, node: &Spanned<Node>) -> Result<Mount, ComposeError> {
        let at = node.referenced;
        if let Node::Map(_) = &node.value {
            let get = |key: &str| node.value.get(key).map(|v| self.text(v, key)).transpose();
            let kind = match get("type")?.as_deref() {
                Some("bind") => MountType::Bind,
                Some("volume") | None => MountType::Volume,
                Some("tmpfs") => MountType::Tmpfs,
                Some(_) => MountType::Other,
            };
            let written = get("source")?.unwrap_or_default();
            let target = get("target")?.ok_or_else(|| self.error(at, "a volume needs a target"))?;
            let read_only = matches!(
                node.value.get("read_only").map(|r| &r.value),
                Some(Node::Bool(true))
            ) || matches!(node.value.get("read_only").map(|r| &r.value), Some(Node::Str(s)) if s == "true");
            let source = if kind == MountType::Bind {
                self.resolve_path(&written)
            } else {
                written.clone()
            };
            return Ok(Mount {
                at,
                kind,
                source,
                written_source: written,
                target,
                read_only,
            });
        }
        let text = self.text(node, "a volume")?;
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [target] => ("", *target, ""),
            [source, target] => (*source, *target, ""),
            [source, target, mode] => (*source, *target, *mode),
            _ => return Err(self.error(at, format!("invalid volume \"{text}\""))),
        };
        let bind = source.starts_with(['.', '/', '~']);
        Ok(Mount {
            at,
            kind: if bind {
                MountType::Bind
            } else {
                MountType::Volume
            },
            source: if bind {
                self.resolve_path(source)
            } else {
                source.to_owned()
            },
            written_source: source.to_owned(),
            target: target.to_owned(),
            read_only: mode.split(',').any(|m| m == "ro"),
        })
    }

    fn depends_on(&self, node: &Spanned<Node>) -> Result<Vec<Dependency>, ComposeError> {
        match &node.value {
            Node::Seq(items) => items
                .iter()
                .map(|item| {
                    Ok(Dependency {
                        at: item.referenced,
                        service: self.text(item, "depends_on")?,
                        condition: "service_started".to_owned(),
                    })
                })
                .collect(),
            Node::Map(entries) => entries
                .iter()
                .map(|(name, options)| {
                    let condition = match options.value.get("condition") {
                        Some(c) => self.text(c, "condition")?,
                        None => "service_started".to_owned(),
                    };
                    if !matches!(
                        condition.as_str(),
                        "service_started" | "service_healthy" | "service_completed_successfully"
                    ) {
                        return Err(self.error(
                            options.referenced,
                            format!("unknown depends_on condition \"{condition}\""),
                        ));
                    }
                    Ok(Dependency {
                        at: name.referenced,
                        service: name.value.clone(),
                        condition,
                    })
                })
                .collect(),
            Node::Null => Ok(Vec::new()),
            other => Err(self.error(
                node.referenced,
                format!(
                    "depends_on must be a list or a mapping, not {}",
                    other.type_name()
                ),
            )),
        }
    }

    fn healthcheck(&self, node: &Spanned<Node>) -> Result<Healthcheck, ComposeError> {
        let mut check = Healthcheck::default();
        let Node::Map(entries) = &node.value else {
            return Err(self.error(node.referenced, "healthcheck must be a mapping"));
        };
        for (key, value) in entries {
            let duration = || -> Result<Option<u64>, ComposeError> {
                let text = self.text(value, &key.value)?;
                crate::spec::generic::duration_nanos(&text)
                    .map(Some)
                    .ok_or_else(|| {
                        self.error(
                            value.referenced,
                            format!("invalid duration \"{text}\" (examples: 10s, 1m30s)"),
                        )
                    })
            };
            match key.value.as_str() {
                "test" => {
                    check.test = match &value.value {
                        Node::Seq(items) => items
                            .iter()
                            .map(|i| self.text(i, "test"))
                            .collect::<Result<_, _>>()?,
                        _ => vec!["CMD-SHELL".to_owned(), self.text(value, "test")?],
                    }
                }
                "interval" => check.interval = duration()?,
                "timeout" => check.timeout = duration()?,
                "start_period" => check.start_period = duration()?,
                "retries" => {
                    let text = self.text(value, "retries")?;
                    check.retries = Some(text.parse().map_err(|_| {
                        self.error(value.referenced, format!("invalid retries \"{text}\""))
                    })?);
                }
                "disable" => check.disable = matches!(&value.value, Node::Bool(true)),
                _ => {}
            }
        }
        Ok(check)
    }

    fn extends(&self, node: &Spanned<Node>) -> Result<Spanned<String>, ComposeError> {
        let (service, at) = match &node.value {
            Node::Map(_) => {
                if node.value.get("file").is_some() {
                    return Err(self.error(
                        node.referenced,
                        "extends from another file is not supported: only services of this file",
                    ));
                }
                let service = node
                    .value
                    .get("service")
                    .ok_or_else(|| self.error(node.referenced, "extends needs a service"))?;
                (self.text(service, "extends.service")?, service.referenced)
            }
            _ => (self.text(node, "extends")?, node.referenced),
        };
        Ok(Spanned::new(service, at, at))
    }

    /// The service with what it `extends` merged underneath it.
    fn extended(
        &self,
        name: &str,
        raw: &BTreeMap<String, Service>,
        chain: &mut Vec<String>,
    ) -> Result<Service, ComposeError> {
        let service = raw[name].clone();
        let Some(base_name) = service.extends.clone() else {
            return Ok(service);
        };
        if !raw.contains_key(&base_name.value) {
            return Err(self.error(
                base_name.referenced,
                format!("extends: no service \"{}\" in this file", base_name.value),
            ));
        }
        chain.push(name.to_owned());
        if chain.contains(&base_name.value) {
            return Err(self.error(
                base_name.referenced,
                format!(
                    "extends cycle: {} -> {}",
                    chain.join(" -> "),
                    base_name.value
                ),
            ));
        }
        let base = self.extended(&base_name.value, raw, chain)?;
        chain.pop();
        Ok(merge(base, service))
    }

    /// `env_file` values below `environment`; bare names from the variables.
    fn resolve_environment(&self, service: &mut Service) -> Result<(), ComposeError> {
        let mut from_files: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (path, required) in &service.env_files {
            let full = PathBuf::from(self.resolve_path(&path.value));
            let text = match std::fs::read_to_string(&full) {
                Ok(text) => text,
                Err(_) if !required => continue,
                Err(err) => {
                    return Err(self.error(
                        path.referenced,
                        format!("env_file {}: {err}", full.display()),
                    ));
                }
            };
            let outer = |name: &str| self.lookup(name);
            let vars = dotenv::parse(&text, &outer).map_err(|e| ComposeError::At {
                file: full.display().to_string(),
                line: e.line as u64,
                column: 1,
                message: e.message,
            })?;
            from_files.extend(vars);
        }
        for (key, value) in std::mem::take(&mut service.environment) {
            from_files.insert(key, value);
        }
        for (key, value) in from_files.iter_mut() {
            if value.is_none() {
                *value = self.lookup(key);
            }
        }
        service.environment = from_files;
        Ok(())
    }

    fn check_references(
        &self,
        services: &BTreeMap<String, Service>,
        volumes: &BTreeSet<String>,
    ) -> Result<(), ComposeError> {
        for (name, service) in services {
            if service.image.is_none() && service.build.is_none() {
                return Err(self.error(
                    service.at,
                    format!("service \"{name}\" has neither an image nor a build context"),
                ));
            }
            for dep in &service.depends_on {
                if !services.contains_key(&dep.service) {
                    return Err(self.error(
                        dep.at,
                        format!(
                            "service \"{name}\" depends on undefined service \"{}\" (or one outside the enabled profiles)",
                            dep.service
                        ),
                    ));
                }
            }
            for mount in &service.volumes {
                if mount.kind == MountType::Volume
                    && !mount.source.is_empty()
                    && !volumes.contains(&mount.source)
                {
                    return Err(self.error(
                        mount.at,
                        format!(
                            "service \"{name}\" refers to undefined volume \"{}\" (declare it under the top-level volumes:)",
                            mount.source
                        ),
                    ));
                }
            }
        }
        self.check_cycles(services)
    }

    fn check_cycles(&self, services: &BTreeMap<String, Service>) -> Result<(), ComposeError> {
        fn visit<'s>(
            name: &'s str,
            services: &'s BTreeMap<String, Service>,
            path: &mut Vec<&'s str>,
            done: &mut BTreeSet<&'s str>,
        ) -> Option<(Location, String)> {
            if done.contains(name) {
                return None;
            }
            path.push(name);
            for dep in &services[name].depends_on {
                if let Some(start) = path.iter().position(|p| *p == dep.service) {
                    let mut cycle: Vec<&str> = path[start..].to_vec();
                    cycle.push(&dep.service);
                    return Some((dep.at, cycle.join(" -> ")));
                }
                if let Some(found) = visit(&dep.service, services, path, done) {
                    return Some(found);
                }
            }
            path.pop();
            done.insert(name);
            None
        }
        let mut done = BTreeSet::new();
        for name in services.keys() {
            if let Some((at, cycle)) = visit(name, services, &mut Vec::new(), &mut done) {
                return Err(self.error(at, format!("depends_on cycle: {cycle}")));
            }
        }
        Ok(())
    }
}

/// `extends`: the extending service's settings over its base's. Mappings
/// merge by key, ports and expose add up, volumes merge by target, the rest
/// is replaced when the extending service sets it.
fn merge(base: Service, over: Service) -> Service {
    let mut environment = base.environment;
    environment.extend(over.environment);
    let mut ports = base.ports;
    for port in over.ports {
        if !ports.iter().any(|p| {
            (p.target, &p.published, &p.protocol) == (port.target, &port.published, &port.protocol)
        }) {
            ports.push(port);
        }
    }
    let mut expose = base.expose;
    expose.extend(over.expose);
    expose.dedup();
    // By target, in place: an override keeps its base's position.
    let mut volumes: Vec<Mount> = base.volumes;
    for mount in over.volumes {
        match volumes.iter_mut().find(|v| v.target == mount.target) {
            Some(slot) => *slot = mount,
            None => volumes.push(mount),
        }
    }
    let mut depends_on: Vec<Dependency> = base
        .depends_on
        .into_iter()
        .filter(|d| !over.depends_on.iter().any(|o| o.service == d.service))
        .collect();
    depends_on.extend(over.depends_on);
    let healthcheck = match (base.healthcheck, over.healthcheck) {
        (Some(base), Some(over)) => Some(Healthcheck {
            test: if over.test.is_empty() {
                base.test
            } else {
                over.test
            },
            interval: over.interval.or(base.interval),
            timeout: over.timeout.or(base.timeout),
            retries: over.retries.or(base.retries),
            start_period: over.start_period.or(base.start_period),
            disable: over.disable || base.disable,
        }),
        (base, over) => over.or(base),
    };
    let mut other_keys = base.other_keys;
    for key in over.other_keys {
        if !other_keys.contains(&key) {
            other_keys.push(key);
        }
    }
    let mut env_files = base.env_files;
    env_files.extend(over.env_files);
    Service {
        at: over.at,
        image: over.image.or(base.image),
        build: over.build.or(base.build),
        environment,
        command: over.command.or(base.command),
        entrypoint: over.entrypoint.or(base.entrypoint),
        ports,
        expose,
        volumes,
        depends_on,
        healthcheck,
        user: over.user.or(base.user),
        profiles: if over.profiles.is_empty() {
            base.profiles
        } else {
            over.profiles
        },
        other_keys,
        env_files,
        extends: None,
    }
}

/// `a/./b/../c` -> `a/c`, without touching the file system.
fn clean_path(path: &Path) -> String {
    let mut parts: Vec<std::path::Component<'_>> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) =>
            {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().display().to_string()
}

/// Splits a command string as a POSIX shell would (quotes and backslashes),
/// without expanding anything; `None` when a quote is left open.
pub fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_split_like_a_shell() {
        assert_eq!(
            shell_words(r#"redis-server --save "" --appendonly 'yes please' a\ b"#).unwrap(),
            [
                "redis-server",
                "--save",
                "",
                "--appendonly",
                "yes please",
                "a b"
            ]
        );
        assert!(shell_words("echo 'open").is_none());
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean_path(Path::new("/a/./b/../c")), "/a/c");
        assert_eq!(clean_path(Path::new("/a/b/.")), "/a/b");
    }
}
