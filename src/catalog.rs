//! The component catalog (php, mysql, mariadb, postgres, redis, memcached, web),
//! kept as data in `catalog.yaml` and embedded in the binary.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// One kind of component and everything needed to run it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub kind: String,
    pub description: String,
    /// Repository of the official image, e.g. `mysql`.
    pub image: String,
    /// Supported versions, newest first.
    pub versions: Vec<String>,
    pub default_version: String,
    /// Tag template; `{version}` is replaced.
    pub tag: String,
    pub port: u16,
    pub port_name: String,
    pub readiness: Readiness,
    /// UID/GID of the official image's own account.
    pub user: i64,
    pub group: i64,
    pub resources: Resources,
    /// Present for components that keep data (databases, redis).
    #[serde(default)]
    pub data: Option<DataVolume>,
    #[serde(default)]
    pub credentials: Option<Credentials>,
    /// Container variables: literal values or `secret:<key>`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Dev pod variables: `{host}`/`{port}` templates, literals or `secret:<key>`.
    #[serde(default)]
    pub dev_env: BTreeMap<String, String>,
    /// php only: the dev pod's default image, built on this one.
    #[serde(default)]
    pub dev: Option<DevImage>,
    /// The kind this component sits in front of (web: php); the stack must have one.
    #[serde(default)]
    pub fronts: Option<String>,
    /// Files mounted into the container from a ConfigMap: absolute path ->
    /// contents, where `{host}`/`{port}` are those of the component `fronts` names.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The project's dev image (images/dev/Dockerfile): the php kind's image plus
/// drivers, tools and a web server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevImage {
    /// Repository, e.g. `ghcr.io/kubectl-devenv/php-dev`.
    pub image: String,
    /// Tag template; `{version}` is the PHP version.
    pub tag: String,
    /// UID/GID of the image's account.
    pub user: i64,
    pub group: i64,
    /// The unprivileged port its web server listens on.
    pub http_port: u16,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    pub tcp_port: u16,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub requests: Quantities,
    pub limits: Quantities,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quantities {
    pub cpu: String,
    pub memory: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataVolume {
    pub path: String,
    /// Default size of the PersistentVolumeClaim.
    pub size: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Keys with fixed values (database and user names).
    pub fixed: BTreeMap<String, String>,
    /// Keys holding random passwords, generated once and then reused.
    pub generated: Vec<String>,
}

/// Where an environment value comes from, parsed from the catalog's strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource<'a> {
    Literal(String),
    SecretKey(&'a str),
}

impl Entry {
    /// `mysql:8.4` for version `8.4`.
    pub fn image_for(&self, version: &str) -> String {
        format!("{}:{}", self.image, self.tag.replace("{version}", version))
    }

    /// The dev image for PHP `version` (`ghcr.io/kubectl-devenv/php-dev:8.3`), for the php kind.
    pub fn dev_image_for(&self, version: &str) -> Option<String> {
        let dev = self.dev.as_ref()?;
        Some(format!(
            "{}:{}",
            dev.image,
            dev.tag.replace("{version}", version)
        ))
    }
}

/// Resolves `{host}`/`{port}` and `secret:` in a catalog value.
pub fn env_source<'a>(value: &'a str, host: &str, port: u16) -> EnvSource<'a> {
    match value.strip_prefix("secret:") {
        Some(key) => EnvSource::SecretKey(key),
        None => EnvSource::Literal(
            value
                .replace("{host}", host)
                .replace("{port}", &port.to_string()),
        ),
    }
}

/// Every catalog entry, in catalog order.
pub fn entries() -> &'static [Entry] {
    static CATALOG: OnceLock<Vec<Entry>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The catalog is compiled in and covered by a unit test, so a parse
        // failure can only be a build from an edited, untested catalog.
        serde_saphyr::from_str(include_str!("catalog.yaml"))
            .unwrap_or_else(|err| panic!("src/catalog.yaml is invalid: {err}"))
    })
}

/// The entry for a kind such as `mysql`.
pub fn find(kind: &str) -> Option<&'static Entry> {
    entries().iter().find(|e| e.kind == kind)
}

/// The php entry, which the dev pod is built from; the embedded catalog
/// always has it (a unit test checks).
pub fn php() -> &'static Entry {
    find("php").expect("php is in the catalog")
}

/// `php, mysql, ...` for error messages.
pub fn kinds() -> String {
    entries()
        .iter()
        .map(|e| e.kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_has_the_promised_components() {
        let ports: Vec<(&str, u16)> = entries()
            .iter()
            .map(|e| (e.kind.as_str(), e.port))
            .collect();
        assert_eq!(
            ports,
            [
                ("php", 9000),
                ("mysql", 3306),
                ("mariadb", 3306),
                ("postgres", 5432),
                ("redis", 6379),
                ("memcached", 11211),
                ("web", 8080)
            ]
        );
    }

    #[test]
    fn every_entry_is_consistent() {
        for entry in entries() {
            assert!(
                entry.versions.contains(&entry.default_version),
                "{}: default version not listed",
                entry.kind
            );
            assert_eq!(entry.readiness.tcp_port, entry.port, "{}", entry.kind);
            assert!(entry.user > 0, "{} must run as non-root", entry.kind);
            if let Some(fronts) = &entry.fronts {
                assert!(
                    find(fronts).is_some(),
                    "{}: fronts unknown {fronts}",
                    entry.kind
                );
            }
            for (name, value) in &entry.dev_env {
                // `run` and `env` point X_HOST/X_PORT pairs at local forwards.
                if let Some(prefix) = name.strip_suffix("_HOST") {
                    assert_eq!(value, "{host}", "{}: {name}", entry.kind);
                    assert_eq!(
                        entry
                            .dev_env
                            .get(&format!("{prefix}_PORT"))
                            .map(String::as_str),
                        Some("{port}"),
                        "{}: {name} without its {prefix}_PORT",
                        entry.kind
                    );
                }
            }
            for value in entry.env.values().chain(entry.dev_env.values()) {
                if let EnvSource::SecretKey(key) = env_source(value, "h", 1) {
                    let creds = entry
                        .credentials
                        .as_ref()
                        .unwrap_or_else(|| panic!("{}: secret without credentials", entry.kind));
                    assert!(
                        creds.fixed.contains_key(key) || creds.generated.iter().any(|g| g == key),
                        "{}: unknown secret key {key}",
                        entry.kind
                    );
                }
            }
        }
    }

    #[test]
    fn images_and_env_templates() {
        let mysql = find("mysql").unwrap();
        assert_eq!(mysql.image_for("8.0"), "mysql:8.0");
        let php = find("php").unwrap();
        assert_eq!(php.image_for("8.3"), "php:8.3-fpm-alpine");
        assert_eq!(
            php.dev_image_for("8.4").as_deref(),
            Some("ghcr.io/kubectl-devenv/php-dev:8.4")
        );
        assert_eq!(mysql.dev_image_for("8.4"), None);
        let dev = php.dev.as_ref().unwrap();
        // The dev image keeps the base image's account (Alpine's www-data).
        assert_eq!((dev.user, dev.group), (php.user, php.group));
        assert!(mysql.data.is_some() && mysql.dev_env.contains_key("DB_HOST"));
        assert!(find("memcached").unwrap().data.is_none());
        assert_eq!(
            env_source("{host}:{port}", "mysql", 3306),
            EnvSource::Literal("mysql:3306".into())
        );
        assert_eq!(
            env_source("secret:password", "x", 1),
            EnvSource::SecretKey("password")
        );
        assert!(find("mongodb").is_none());
    }
}
