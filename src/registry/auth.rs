//! Registry credentials from Docker's config (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`), looked up the way the Docker CLI does:
//! `credHelpers` for the registry, else `credsStore`, else `auths`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// The parts of config.json that hold credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    pub creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub identitytoken: Option<String>,
    #[serde(default)]
    pub registrytoken: Option<String>,
}

/// Where the credentials for one registry come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialSource {
    None,
    /// `docker-credential-<helper> get`, asked for `server`.
    Helper {
        helper: String,
        server: String,
    },
    Static(Credential),
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
    /// An OAuth2 refresh token from `docker login` with SSO; registries need it
    /// exchanged by a flow oci-client does not implement.
    IdentityToken,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credential::IdentityToken => f.write_str("IdentityToken"),
        }
    }
}

/// The config file Docker would read.
pub(crate) fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    Some(std::env::home_dir()?.join(".docker").join("config.json"))
}

/// Reads the config; a missing file means no credentials, a broken one is an error.
pub(crate) fn load_config() -> Result<DockerConfig, String> {
    let Some(path) = config_path() else {
        return Ok(DockerConfig::default());
    };
    match std::fs::read(&path) {
        Ok(bytes) => parse_config(&bytes).map_err(|err| format!("{}: {err}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
}

pub(crate) fn parse_config(bytes: &[u8]) -> Result<DockerConfig, String> {
    serde_json::from_slice(bytes).map_err(|err| format!("invalid docker config: {err}"))
}

/// Docker Hub's credentials live under its legacy v1 URL.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Docker's `ConvertToHostname`: `https://host:5000/v1/` → `host:5000`.
fn hostname(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = hostname(key);
    host.eq_ignore_ascii_case(registry) || (is_docker_hub(host) && is_docker_hub(registry))
}

impl DockerConfig {
    /// Where to get credentials for `registry` (as normalized: `docker.io`, `127.0.0.1:5001`).
    pub(crate) fn source_for(&self, registry: &str) -> Result<CredentialSource, String> {
        let server = if is_docker_hub(registry) {
            DOCKER_HUB_SERVER.to_owned()
        } else {
            registry.to_owned()
        };
        if let Some((_, helper)) = self
            .cred_helpers
            .iter()
            .find(|(key, _)| same_registry(key, registry))
        {
            return Ok(CredentialSource::Helper {
                helper: helper.clone(),
                server,
            });
        }
        if let Some(helper) = self.creds_store.as_ref().filter(|h| !h.is_empty()) {
            return Ok(CredentialSource::Helper {
                helper: helper.clone(),
                server,
            });
        }
        let Some((key, entry)) = self
            .auths
            .iter()
            .find(|(key, _)| same_registry(key, registry))
        else {
            return Ok(CredentialSource::None);
        };
        entry
            .credential()
            .map(|c| c.map_or(CredentialSource::None, CredentialSource::Static))
            .map_err(|err| format!("auths[\"{key}\"]: {err}"))
    }
}

impl AuthEntry {
    fn credential(&self) -> Result<Option<Credential>, String> {
        if let Some(token) = self.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::Bearer(token.clone())));
        }
        if self.identitytoken.as_ref().is_some_and(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken));
        }
        if let Some(encoded) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| "\"auth\" is not base64".to_owned())?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8".to_owned())?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| "\"auth\" is not base64 of user:password".to_owned())?;
            return Ok(Some(Credential::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(Credential::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Turns a helper's stdout into a credential; the user name `<token>` marks an identity token.
pub(crate) fn parse_helper_answer(stdout: &[u8]) -> Result<Credential, String> {
    let answer: HelperAnswer = serde_json::from_slice(stdout)
        .map_err(|err| format!("unreadable answer from the credential helper: {err}"))?;
    if answer.username == "<token>" {
        return Ok(Credential::IdentityToken);
    }
    Ok(Credential::Basic {
        username: answer.username,
        password: answer.secret,
    })
}

/// Helpers say so in words when they hold nothing for a server.
fn helper_has_nothing(stderr_or_stdout: &str) -> bool {
    let text = stderr_or_stdout.to_ascii_lowercase();
    text.contains("credentials not found") || text.contains("not found in native keychain")
}

/// Runs `docker-credential-<helper> get` with the server on stdin, bounded by `timeout`.
/// `Ok(None)` when the helper holds nothing for this server.
pub(crate) async fn run_helper(
    helper: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<Credential>, String> {
    use tokio::io::AsyncWriteExt;
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("cannot run {program} (from the docker config): {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|err| format!("cannot talk to {program}: {err}"))?;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "{program} did not answer within {}",
                crate::duration::humanize(timeout)
            )
        })?
        .map_err(|err| format!("{program} failed: {err}"))?;
    if output.status.success() {
        return parse_helper_answer(&output.stdout).map(Some);
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if helper_has_nothing(&said) {
        return Ok(None);
    }
    Err(format!("{program} get failed: {}", said.trim()))
}

/// The credential as oci-client takes it; an identity token cannot be used and
/// reads as anonymous (the caller warns).
pub(crate) fn to_registry_auth(credential: Option<&Credential>) -> RegistryAuth {
    match credential {
        Some(Credential::Basic { username, password }) => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Some(Credential::Bearer(token)) => RegistryAuth::Bearer(token.clone()),
        Some(Credential::IdentityToken) | None => RegistryAuth::Anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        parse_config(json.as_bytes()).unwrap()
    }

    fn basic(username: &str, password: &str) -> CredentialSource {
        CredentialSource::Static(Credential::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    #[test]
    fn auths_entry_decodes_base64() {
        // "devenv:s3cret:with:colons"
        let cfg = config(
            r#"{"auths": {"127.0.0.1:5001": {"auth": "ZGV2ZW52OnMzY3JldDp3aXRoOmNvbG9ucw=="}}}"#,
        );
        assert_eq!(
            cfg.source_for("127.0.0.1:5001").unwrap(),
            basic("devenv", "s3cret:with:colons")
        );
        assert_eq!(
            cfg.source_for("127.0.0.1:5000").unwrap(),
            CredentialSource::None
        );
    }

    #[test]
    fn auths_keys_may_be_urls() {
        let cfg = config(
            r#"{"auths": {"https://registry.example.com/v1/": {"username": "u", "password": "p"},
                          "https://index.docker.io/v1/": {"auth": "aHViOnRva2Vu"}}}"#,
        );
        assert_eq!(
            cfg.source_for("registry.example.com").unwrap(),
            basic("u", "p")
        );
        assert_eq!(cfg.source_for("docker.io").unwrap(), basic("hub", "token"));
    }

    #[test]
    fn cred_helpers_win_over_store_and_auths() {
        let cfg = config(
            r#"{"auths": {"ghcr.io": {}, "docker.io": {"auth": "aHViOnRva2Vu"}},
                "credHelpers": {"ghcr.io": "gh"},
                "credsStore": "desktop"}"#,
        );
        assert_eq!(
            cfg.source_for("ghcr.io").unwrap(),
            CredentialSource::Helper {
                helper: "gh".into(),
                server: "ghcr.io".into()
            }
        );
        assert_eq!(
            cfg.source_for("docker.io").unwrap(),
            CredentialSource::Helper {
                helper: "desktop".into(),
                server: "https://index.docker.io/v1/".into()
            }
        );
    }

    #[test]
    fn tokens_and_empty_entries() {
        let cfg = config(
            r#"{"auths": {"a.io": {"identitytoken": "refresh"}, "b.io": {"registrytoken": "tok"}, "c.io": {}}}"#,
        );
        assert_eq!(
            cfg.source_for("a.io").unwrap(),
            CredentialSource::Static(Credential::IdentityToken)
        );
        assert_eq!(
            cfg.source_for("b.io").unwrap(),
            CredentialSource::Static(Credential::Bearer("tok".into()))
        );
        assert_eq!(cfg.source_for("c.io").unwrap(), CredentialSource::None);
    }

    #[test]
    fn broken_auth_is_reported_with_its_key() {
        let cfg = config(r#"{"auths": {"a.io": {"auth": "%%%"}}}"#);
        let err = cfg.source_for("a.io").unwrap_err();
        assert!(err.contains("auths[\"a.io\"]"), "{err}");
        assert!(parse_config(b"{not json").is_err());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let cfg =
            config(r#"{"auths": {}, "currentContext": "desktop-linux", "plugins": {"x": {}}}"#);
        assert_eq!(cfg.source_for("docker.io").unwrap(), CredentialSource::None);
    }

    #[test]
    fn helper_answers() {
        assert_eq!(
            parse_helper_answer(br#"{"ServerURL": "ghcr.io", "Username": "me", "Secret": "pat"}"#)
                .unwrap(),
            Credential::Basic {
                username: "me".into(),
                password: "pat".into()
            }
        );
        assert_eq!(
            parse_helper_answer(br#"{"ServerURL": "x", "Username": "<token>", "Secret": "r"}"#)
                .unwrap(),
            Credential::IdentityToken
        );
        assert!(parse_helper_answer(b"credentials not found").is_err());
        assert!(helper_has_nothing(
            "credentials not found in native keychain\n"
        ));
    }
}
