//! The library's error type, with messages already phrased the way kubectl
//! phrases them, so the binary only has to prefix `error: ` and pick an exit code.

use std::path::PathBuf;
use std::time::Duration;

use kube::core::Status;

use crate::duration::humanize;

/// What an API call was doing, so that a refusal can say so in kubectl's words
/// (`cannot list deployments in namespace "test"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub verb: &'static str,
    /// Plural resource name, as RBAC rules spell it (`deployments`, `pods/portforward`).
    pub resource: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

impl Action {
    pub fn new(verb: &'static str, resource: impl Into<String>) -> Self {
        Self {
            verb,
            resource: resource.into(),
            name: None,
            namespace: None,
        }
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn in_namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = namespace.map(str::to_owned);
        self
    }

    fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or arguments that clap could not catch; exits with 2.
    #[error("{0}")]
    Usage(String),

    #[error("cannot read kubeconfig \"{}\": {source}", path.display())]
    KubeconfigRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot parse kubeconfig \"{}\": {message}", path.display())]
    KubeconfigParse { path: PathBuf, message: String },

    #[error(
        "no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config (tried {tried})"
    )]
    KubeconfigNotFound { tried: String },

    #[error("context \"{0}\" does not exist in the kubeconfig")]
    UnknownContext(String),

    #[error("invalid kubeconfig: {0}")]
    KubeconfigInvalid(String),

    #[error("unable to connect to the server at {server}: {cause}")]
    Unreachable { server: String, cause: String },

    #[error(
        "the server at {server} did not answer within {} (--request-timeout)",
        humanize(*timeout)
    )]
    Timeout { server: String, timeout: Duration },

    #[error("{}", describe_api_error(action, status))]
    Api { action: Action, status: Box<Status> },

    #[error("getting credentials: {0}")]
    Credentials(String),

    /// Any other failure, already worded for the user.
    #[error("{0}")]
    Other(String),

    /// A remote command's non-zero exit (`shell -- cmd`), passed on as our own
    /// exit code with kubectl exec's message.
    #[error("command terminated with exit code {0}")]
    CommandExit(i32),

    /// A local command's (`run`) non-zero exit: its code becomes ours, and the
    /// command has already said why, so nothing is printed.
    #[error("the command exited with code {0}")]
    PassThrough(i32),

    /// `run` was given a command that is not on PATH; exits 127, as a shell does.
    #[error("{0}: command not found")]
    CommandNotFound(String),

    /// `run` was given a command that cannot be executed; exits 126, as a shell does.
    #[error("{command}: cannot execute: {reason}")]
    CommandNotExecutable { command: String, reason: String },
}

impl Error {
    /// kubectl's convention: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::CommandExit(code) | Error::PassThrough(code) => *code,
            Error::CommandNotFound(_) => 127,
            Error::CommandNotExecutable { .. } => 126,
            _ => 1,
        }
    }

    /// False for an exit code passed through from a local command, which
    /// explained itself.
    pub fn is_reported(&self) -> bool {
        !matches!(self, Error::PassThrough(_))
    }

    /// True for a 404 from the API server.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status, .. } if status.is_not_found())
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Api { status, .. } if status.is_forbidden())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe_api_error(action: &Action, status: &Status) -> String {
    let scope = action.scope();
    match status.code {
        401 => "You must be logged in to the server (Unauthorized)".to_owned(),
        403 => format!(
            "forbidden: cannot {} {} {scope}",
            action.verb, action.resource
        ),
        404 => match &action.name {
            Some(name) => format!("{} \"{name}\" not found {scope}", action.resource),
            None => format!("{} not found {scope}: {}", action.resource, status.message),
        },
        _ => {
            let reason = if status.reason.is_empty() {
                format!("HTTP {}", status.code)
            } else {
                status.reason.clone()
            };
            format!(
                "cannot {} {} {scope}: {} ({reason})",
                action.verb, action.resource, status.message
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, reason: &str, message: &str) -> Box<Status> {
        let mut status = Status::failure(message, reason);
        status.code = code;
        Box::new(status)
    }

    #[test]
    fn forbidden_names_verb_resource_and_namespace() {
        let err = Error::Api {
            action: Action::new("list", "deployments").in_namespace(Some("test")),
            status: status(403, "Forbidden", "deployments.apps is forbidden: ..."),
        };
        assert_eq!(
            err.to_string(),
            "forbidden: cannot list deployments in namespace \"test\""
        );
    }

    #[test]
    fn forbidden_at_cluster_scope() {
        let err = Error::Api {
            action: Action::new("list", "nodes"),
            status: status(403, "Forbidden", ""),
        };
        assert_eq!(
            err.to_string(),
            "forbidden: cannot list nodes at the cluster scope"
        );
    }

    #[test]
    fn unauthorized_reads_like_kubectl() {
        let err = Error::Api {
            action: Action::new("get", "version"),
            status: status(401, "Unauthorized", "Unauthorized"),
        };
        assert_eq!(
            err.to_string(),
            "You must be logged in to the server (Unauthorized)"
        );
    }

    #[test]
    fn not_found_names_the_object() {
        let err = Error::Api {
            action: Action::new("get", "pods")
                .named("php-0")
                .in_namespace(Some("dev")),
            status: status(404, "NotFound", "pods \"php-0\" not found"),
        };
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "pods \"php-0\" not found in namespace \"dev\""
        );
    }

    #[test]
    fn usage_errors_exit_with_two() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Other("x".into()).exit_code(), 1);
    }

    #[test]
    fn local_commands_exit_as_a_shell_would() {
        assert_eq!(Error::CommandNotFound("nope".into()).exit_code(), 127);
        assert_eq!(
            Error::CommandNotFound("nope".into()).to_string(),
            "nope: command not found"
        );
        let not_executable = Error::CommandNotExecutable {
            command: "./x".into(),
            reason: "permission denied".into(),
        };
        assert_eq!(not_executable.exit_code(), 126);
        assert_eq!(Error::PassThrough(3).exit_code(), 3);
        assert!(!Error::PassThrough(3).is_reported());
    }
}
