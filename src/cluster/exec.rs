//! Commands in a pod's container (`shell`, `sync`'s remote side) and its
//! logs (`logs`), and what the API server reports when a command ends.

use futures::AsyncBufRead;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess, LogParams};

use super::{Cluster, Scope};
use crate::error::{Action, Result};

/// Starts `command` in the pod; the streams `params` asks for are attached.
pub(crate) async fn exec<I, T>(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    command: I,
    params: &AttachParams,
) -> Result<AttachedProcess>
where
    I: IntoIterator<Item = T> + std::fmt::Debug,
    T: Into<String>,
{
    let api = cluster.api::<Pod>(&Scope::Namespace(namespace.to_owned()));
    cluster
        .call(
            Action::new("create", "pods/exec")
                .named(pod)
                .in_namespace(Some(namespace)),
            api.exec(pod, command, params),
        )
        .await
}

/// The pod's log as a stream of bytes. Opening it is bounded by the
/// request timeout; reading it is not, on a streaming client.
pub(crate) async fn log_stream(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    params: &LogParams,
) -> Result<impl AsyncBufRead + use<>> {
    let api = cluster.api::<Pod>(&Scope::Namespace(namespace.to_owned()));
    cluster
        .call(
            Action::new("get", "pods/log")
                .named(pod)
                .in_namespace(Some(namespace)),
            api.log_stream(pod, params),
        )
        .await
}

/// The exit code in the status the API server sends when the command ends:
/// `Success`, or `NonZeroExitCode` with an `ExitCode` cause; anything else
/// (an error starting the command) counts as 1.
pub(crate) fn exit_code(status: Option<&Status>) -> i32 {
    let Some(status) = status else {
        return 1;
    };
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    let from_cause = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter().flatten())
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok());
    // Runtimes that only report an error message (kwok among them) end it
    // with Go's `exit status N`.
    let from_message = || {
        let message = status.message.as_deref()?;
        let (_, code) = message.rsplit_once("exit status ")?;
        code.trim().parse().ok()
    };
    from_cause.or_else(from_message).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn status(status: &str, reason: &str, exit: Option<&str>) -> Status {
        Status {
            status: Some(status.into()),
            reason: Some(reason.into()),
            details: exit.map(|code| StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(code.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        assert_eq!(exit_code(Some(&status("Success", "", None))), 0);
        assert_eq!(
            exit_code(Some(&status("Failure", "NonZeroExitCode", Some("3")))),
            3
        );
        assert_eq!(
            exit_code(Some(&status("Failure", "InternalError", None))),
            1
        );
        let mut kwok = status("Failure", "InternalError", None);
        kwok.message = Some("error executing command [sh -c exit 4]: exit status 4".into());
        assert_eq!(exit_code(Some(&kwok)), 4);
        assert_eq!(exit_code(None), 1);
    }
}
