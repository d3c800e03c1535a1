//! The dev pod's environment, pointed at local forwards: what `run` gives its
//! command and `env` prints. Pure: the commands read the dev Deployment and
//! the Secrets, this module decides what each variable becomes.
//!
//! The catalog pairs every `X_HOST: "{host}"` with `X_PORT: "{port}"` (a
//! catalog test checks it), so a variable `X_HOST` whose value names a
//! component of the stack is that component's address, and `X_PORT` its port.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::EnvVar;
use serde::Serialize;

use crate::spec::INTERNAL_ENV_PREFIX;

/// What a secret value shows as without `--show-secrets`.
pub(crate) const HIDDEN: &str = "<hidden>";

/// Where a variable of the dev pod gets its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Literal(String),
    /// A key of a Secret in the dev namespace.
    Secret {
        name: String,
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodVar {
    pub name: String,
    pub source: Source,
}

/// The dev container's variables, in its order. Variables from other
/// sources (a ConfigMap, the downward API) are returned by name in the
/// second list: they have no local meaning.
pub(crate) fn pod_vars(env: &[EnvVar]) -> (Vec<PodVar>, Vec<String>) {
    let mut vars = Vec::new();
    let mut skipped = Vec::new();
    for var in env
        .iter()
        .filter(|v| !v.name.starts_with(INTERNAL_ENV_PREFIX))
    {
        let secret = var
            .value_from
            .as_ref()
            .and_then(|from| from.secret_key_ref.as_ref());
        let source = match (secret, &var.value_from) {
            (Some(secret), _) => Source::Secret {
                name: secret.name.clone(),
                key: secret.key.clone(),
            },
            (None, None) => Source::Literal(var.value.clone().unwrap_or_default()),
            (None, Some(_)) => {
                skipped.push(var.name.clone());
                continue;
            }
        };
        vars.push(PodVar {
            name: var.name.clone(),
            source,
        });
    }
    (vars, skipped)
}

/// One component the environment points at, through `host_var` and `port_var`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub component: String,
    /// The Service port the variables name.
    pub port: u16,
    pub host_var: String,
    pub port_var: Option<String>,
}

/// The `X_HOST` variables whose value is one of `components` (name -> its
/// Service ports), with their `X_PORT`.
pub(crate) fn endpoints(vars: &[PodVar], components: &BTreeMap<String, Vec<u16>>) -> Vec<Endpoint> {
    let literal = |name: &str| {
        vars.iter().find_map(|v| match &v.source {
            Source::Literal(value) if v.name == name => Some(value.as_str()),
            _ => None,
        })
    };
    let mut found = Vec::new();
    for var in vars {
        let (Some(prefix), Source::Literal(host)) = (var.name.strip_suffix("_HOST"), &var.source)
        else {
            continue;
        };
        let Some(ports) = components.get(host) else {
            continue;
        };
        let port_var = format!("{prefix}_PORT");
        let named = literal(&port_var).and_then(|p| p.parse::<u16>().ok());
        let Some(port) = named
            .filter(|p| ports.contains(p))
            .or(ports.first().copied())
        else {
            continue;
        };
        found.push(Endpoint {
            component: host.clone(),
            port,
            host_var: var.name.clone(),
            port_var: literal(&port_var).is_some().then_some(port_var),
        });
    }
    found
}

/// A variable as a local process gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LocalVar {
    pub name: String,
    pub value: String,
    /// `secret/key` for a value from a Secret.
    #[serde(skip)]
    pub secret: Option<String>,
}

/// Every variable, with endpoints rewritten to `local(component, port)` and
/// secrets taken from `secrets` ((secret, key) -> value); a secret missing
/// there shows as [`HIDDEN`].
pub(crate) fn resolve(
    vars: &[PodVar],
    endpoints: &[Endpoint],
    local: impl Fn(&str, u16) -> Option<SocketAddr>,
    secrets: &BTreeMap<(String, String), String>,
) -> Vec<LocalVar> {
    let mut rewritten: BTreeMap<&str, String> = BTreeMap::new();
    for endpoint in endpoints {
        let Some(address) = local(&endpoint.component, endpoint.port) else {
            continue;
        };
        rewritten.insert(&endpoint.host_var, address.ip().to_string());
        if let Some(port_var) = &endpoint.port_var {
            rewritten.insert(port_var, address.port().to_string());
        }
    }
    vars.iter()
        .map(|var| {
            let (value, secret) = match (&var.source, rewritten.get(var.name.as_str())) {
                (_, Some(value)) => (value.clone(), None),
                (Source::Literal(value), None) => (value.clone(), None),
                (Source::Secret { name, key }, None) => (
                    secrets
                        .get(&(name.clone(), key.clone()))
                        .cloned()
                        .unwrap_or_else(|| HIDDEN.to_owned()),
                    Some(format!("{name}/{key}")),
                ),
            };
            LocalVar {
                name: var.name.clone(),
                value,
                secret,
            }
        })
        .collect()
}

/// Characters that need no quoting in a dotenv file or a shell word.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@+%=".contains(c))
}

/// A dotenv value that phpdotenv, Symfony's Dotenv, docker compose and
/// dotenvy read back unchanged: bare when plain, in single quotes (no escapes,
/// no interpolation) when that is enough, else in double quotes with `\`,
/// `"`, `$` and newlines escaped.
pub(crate) fn dotenv_quote(value: &str) -> String {
    if is_plain(value) {
        return value.to_owned();
    }
    if !value.contains(['\'', '\n', '\r']) {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out += "\\\\",
            '"' => out += "\\\"",
            '$' => out += "\\$",
            '\n' => out += "\\n",
            '\r' => out += "\\r",
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A POSIX shell word: bare when plain, else in single quotes, with each `'`
/// written as `'\''`.
pub(crate) fn shell_quote(value: &str) -> String {
    if is_plain(value) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `NAME=value` lines.
pub(crate) fn dotenv(vars: &[LocalVar]) -> String {
    vars.iter()
        .map(|v| format!("{}={}\n", v.name, dotenv_quote(&v.value)))
        .collect()
}

/// `export NAME=value` lines, for `eval "$(kubectl devenv env -o shell)"`.
pub(crate) fn shell(vars: &[LocalVar]) -> String {
    vars.iter()
        .map(|v| format!("export {}={}\n", v.name, shell_quote(&v.value)))
        .collect()
}

/// Name -> value, for `-o json|yaml`.
pub(crate) fn as_map(vars: &[LocalVar]) -> BTreeMap<&str, &str> {
    vars.iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVarSource, SecretKeySelector};

    fn literal(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.into(),
                    key: key.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The dev pod of a php + mysql + redis stack, as `render::dev_env` makes it.
    fn dev_pod_env() -> Vec<EnvVar> {
        vec![
            literal("DB_CONNECTION", "mysql"),
            from_secret("DB_DATABASE", "mysql-credentials", "database"),
            literal("DB_HOST", "mysql"),
            from_secret("DB_PASSWORD", "mysql-credentials", "password"),
            literal("DB_PORT", "3306"),
            literal("DEVENV_DOCROOT", "web"),
            literal("PHP_FPM_HOST", "php"),
            literal("PHP_FPM_PORT", "9000"),
            literal("REDIS_HOST", "cache"),
            literal("REDIS_PORT", "6379"),
            literal("APP_NAME", "not-a-component"),
        ]
    }

    fn components() -> BTreeMap<String, Vec<u16>> {
        BTreeMap::from([
            ("mysql".into(), vec![3306]),
            ("cache".into(), vec![6379]),
            ("php".into(), vec![9000]),
        ])
    }

    #[test]
    fn host_variables_naming_components_are_endpoints() {
        let (vars, skipped) = pod_vars(&dev_pod_env());
        assert!(skipped.is_empty());
        assert!(vars.iter().all(|v| v.name != "DEVENV_DOCROOT"));
        let found = endpoints(&vars, &components());
        let summary: Vec<_> = found
            .iter()
            .map(|e| (e.host_var.as_str(), e.component.as_str(), e.port))
            .collect();
        assert_eq!(
            summary,
            [
                ("DB_HOST", "mysql", 3306),
                ("PHP_FPM_HOST", "php", 9000),
                ("REDIS_HOST", "cache", 6379)
            ]
        );
        assert_eq!(found[0].port_var.as_deref(), Some("DB_PORT"));
    }

    /// `dev.env` literals reach `env` and `run` like the stack's own; one that
    /// names a component (`MAIL_HOST: mail`) follows its forward.
    #[test]
    fn dev_env_literals_are_read_back_from_the_rendered_pod() {
        let spec = crate::spec::parse(
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: a}\nspec:\n  dev: {env: {APP_ENV: local, MAIL_HOST: mail, MAIL_PORT: \"1025\"}}\n  components: [{kind: generic, name: mail, image: axllent/mailpit, ports: [{name: smtp, port: 1025}]}]\n",
            "x",
        )
        .unwrap();
        let (vars, skipped) = pod_vars(&crate::render::dev_env(&spec));
        assert!(skipped.is_empty());
        assert!(vars.contains(&PodVar {
            name: "APP_ENV".into(),
            source: Source::Literal("local".into())
        }));
        let found = endpoints(&vars, &BTreeMap::from([("mail".into(), vec![1025])]));
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].host_var.as_str(), found[0].port_var.as_deref()),
            ("MAIL_HOST", Some("MAIL_PORT"))
        );
    }

    #[test]
    fn endpoints_point_at_the_forwards_and_secrets_are_filled_or_hidden() {
        let (vars, _) = pod_vars(&dev_pod_env());
        let found = endpoints(&vars, &components());
        let local = |component: &str, port: u16| {
            let local_port = match (component, port) {
                ("mysql", 3306) => 13306,
                ("cache", 6379) => 16379,
                _ => return None,
            };
            Some(SocketAddr::from(([127, 0, 0, 1], local_port)))
        };
        let secrets = BTreeMap::from([(
            ("mysql-credentials".to_owned(), "password".to_owned()),
            "s3cret".to_owned(),
        )]);
        let resolved = resolve(&vars, &found, local, &secrets);
        let map = as_map(&resolved);
        assert_eq!(map["DB_HOST"], "127.0.0.1");
        assert_eq!(map["DB_PORT"], "13306");
        assert_eq!(map["REDIS_HOST"], "127.0.0.1");
        assert_eq!(map["REDIS_PORT"], "16379");
        assert_eq!(map["DB_PASSWORD"], "s3cret");
        assert_eq!(map["DB_DATABASE"], HIDDEN);
        assert_eq!(map["DB_CONNECTION"], "mysql");
        // Not forwarded: left as the pod has it.
        assert_eq!(map["PHP_FPM_HOST"], "php");
        let password = resolved.iter().find(|v| v.name == "DB_PASSWORD").unwrap();
        assert_eq!(
            password.secret.as_deref(),
            Some("mysql-credentials/password")
        );
    }

    #[test]
    fn other_sources_are_skipped_by_name() {
        let mut env = dev_pod_env();
        env.push(EnvVar {
            name: "FROM_CONFIG".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "c".into(),
                    key: "k".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(pod_vars(&env).1, ["FROM_CONFIG"]);
    }

    #[test]
    fn a_port_variable_that_is_no_service_port_falls_back_to_the_first() {
        let (vars, _) = pod_vars(&[literal("DB_HOST", "mysql"), literal("DB_PORT", "oops")]);
        let found = endpoints(&vars, &components());
        assert_eq!(found[0].port, 3306);
    }

    #[test]
    fn dotenv_output_reads_back_through_dotenvy() {
        let values = [
            "plain",
            "with space",
            "$NOT_EXPANDED",
            "it's",
            "a\"b\\c$d\ne",
            "",
            HIDDEN,
        ];
        let vars: Vec<LocalVar> = values
            .iter()
            .enumerate()
            .map(|(i, value)| LocalVar {
                name: format!("V{i}"),
                value: (*value).into(),
                secret: None,
            })
            .collect();
        let text = dotenv(&vars);
        let parsed: BTreeMap<String, String> = dotenvy::from_read_iter(text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|err| panic!("{err}: {text}"));
        let expected: BTreeMap<String, String> = vars
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        assert_eq!(parsed, expected, "{text}");
    }

    #[test]
    fn dotenv_quoting() {
        assert_eq!(dotenv_quote("127.0.0.1"), "127.0.0.1");
        assert_eq!(dotenv_quote("a b"), "'a b'");
        assert_eq!(dotenv_quote("$HOME"), "'$HOME'");
        assert_eq!(dotenv_quote(""), "''");
        assert_eq!(dotenv_quote(HIDDEN), "'<hidden>'");
        assert_eq!(dotenv_quote("it's"), "\"it's\"");
        assert_eq!(dotenv_quote("a\"b\\c$d\ne'"), "\"a\\\"b\\\\c\\$d\\ne'\"");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("3306"), "3306");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_quote(""), "''");
    }

    #[cfg(unix)]
    #[test]
    fn shell_output_reads_back_through_sh() {
        let vars = [
            ("A", "plain"),
            ("B", "it's \"quoted\" $HOME `x`"),
            ("C", "two\nlines"),
            ("D", ""),
        ]
        .map(|(name, value)| LocalVar {
            name: name.into(),
            value: value.into(),
            secret: None,
        });
        let script = format!("{}printf '%s\\0' \"$A\" \"$B\" \"$C\" \"$D\"", shell(&vars));
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh runs");
        let values: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(
            values,
            ["plain", "it's \"quoted\" $HOME `x`", "two\nlines", ""]
        );
    }
}
