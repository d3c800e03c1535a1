//! `kubectl devenv shell [component] [-- command...]`: a shell (or a command)
//! in the dev pod, with a TTY when used from a terminal. Like `kubectl exec`,
//! the remote command's exit code becomes ours.

use std::io::{IsTerminal, Read};
use std::process::{Command, Stdio};

use clap::Args;
use futures::SinkExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, TerminalSize};
use kube::{Api, ResourceExt};
use tokio::io::AsyncWriteExt;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::stack;
use crate::commands::StackArg;
use crate::error::{Action, Error, Result};
use crate::spec;

/// What runs when no command is given: bash where the image has it, else sh.
const LOGIN_SHELL: [&str; 3] = [
    "sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
];

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The component to enter (default: the dev pod)
    #[arg(value_name = "COMPONENT", default_value = spec::DEV_COMPONENT)]
    pub component: String,

    /// Command to run instead of a shell (after `--`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    /// Pass stdin to the command even when it is not a terminal
    #[arg(short = 'i', long)]
    pub stdin: bool,

    #[command(flatten)]
    pub stack: StackArg,
}

pub async fn run(global: &GlobalArgs, args: &ShellArgs) -> Result<()> {
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    let pods = stack::component_pods(&cluster, stack.as_deref(), &args.component).await?;
    let pod = pods.iter().find(|p| is_ready(p)).ok_or_else(|| {
        Error::Other(format!(
            "no Ready pod for component \"{}\" (see `kubectl devenv status`)",
            args.component
        ))
    })?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let attach_stdin = tty || args.stdin;
    let command: Vec<String> = if args.command.is_empty() {
        LOGIN_SHELL.iter().map(|s| s.to_string()).collect()
    } else {
        args.command.clone()
    };
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let params = AttachParams::default()
        .container(container)
        .stdin(attach_stdin)
        .stdout(true)
        // With a TTY, the remote terminal merges stderr into stdout.
        .stderr(!tty)
        .tty(tty);
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let streaming = cluster.streaming()?;
    let api: Api<Pod> = Api::namespaced(streaming.client.clone(), &namespace);
    let mut attached = streaming
        .call(
            Action::new("create", "pods/exec")
                .named(&name)
                .in_namespace(Some(&namespace)),
            api.exec(&name, command, &params),
        )
        .await?;
    let _raw_mode = if tty { RawMode::enable() } else { None };
    if tty
        && let (Some(mut resize), Some((height, width))) =
            (attached.terminal_size(), terminal_size())
    {
        resize.send(TerminalSize { width, height }).await.ok();
    }
    if let Some(mut remote_stdin) = attached.stdin() {
        let mut local = stdin_channel();
        tokio::spawn(async move {
            while let Some(chunk) = local.recv().await {
                if remote_stdin.write_all(&chunk).await.is_err() {
                    return;
                }
                remote_stdin.flush().await.ok();
            }
            remote_stdin.shutdown().await.ok();
        });
    }
    let stdout = attached.stdout().map(|mut remote| {
        tokio::spawn(async move { tokio::io::copy(&mut remote, &mut tokio::io::stdout()).await })
    });
    let stderr = attached.stderr().map(|mut remote| {
        tokio::spawn(async move { tokio::io::copy(&mut remote, &mut tokio::io::stderr()).await })
    });
    let status = attached.take_status().expect("status is taken once");
    for task in [stdout, stderr].into_iter().flatten() {
        task.await.ok();
    }
    let status = status.await;
    tracing::debug!(?status, "remote command finished");
    drop(_raw_mode);
    match exit_code(status.as_ref()) {
        0 => Ok(()),
        code => Err(Error::CommandExit(code)),
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The exit code in the status the API server sends when the command ends:
/// `Success`, or `NonZeroExitCode` with an `ExitCode` cause; anything else
/// (an error starting the command) counts as 1.
pub fn exit_code(status: Option<&Status>) -> i32 {
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

/// Local stdin, read on its own thread: a blocked read on tokio's blocking
/// pool would keep the process alive after the remote command exits.
fn stdin_channel() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if sender.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

/// `(rows, columns)` of the local terminal.
fn terminal_size() -> Option<(u16, u16)> {
    let out = Command::new("stty")
        .arg("size")
        .stdin(Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((parts.next()??, parts.next()??))
}

/// The local terminal in raw mode (keys go to the remote shell as typed),
/// restored when dropped. Uses `stty`, which every Unix terminal has.
struct RawMode {
    saved: String,
}

impl RawMode {
    fn enable() -> Option<Self> {
        let saved = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .output()
            .ok()?;
        let saved = String::from_utf8(saved.stdout).ok()?.trim().to_owned();
        let status = Command::new("stty")
            .args(["raw", "-echo"])
            .stdin(Stdio::inherit())
            .status()
            .ok()?;
        status.success().then_some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        Command::new("stty")
            .arg(&self.saved)
            .stdin(Stdio::inherit())
            .status()
            .ok();
    }
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
