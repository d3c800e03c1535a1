//! `kubectl devenv shell [component] [-- command...]`: a shell (or a command)
//! in the dev pod, with a TTY when used from a terminal. Like `kubectl exec`,
//! the remote command's exit code becomes ours.

use std::io::{ErrorKind, IsTerminal, Read};

use clap::Args;
use crossterm::terminal;
use futures::SinkExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{AttachParams, TerminalSize};
use tokio::io::AsyncWriteExt;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::{exec, stack};
use crate::commands::{StackArg, completion};
use crate::error::{Error, Result};
use crate::{output, spec};

/// What runs when no command is given: bash where the image has it, else sh.
const LOGIN_SHELL: [&str; 3] = [
    "sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
];

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The component to enter (default: the dev pod)
    #[arg(value_name = "COMPONENT", default_value = spec::DEV_COMPONENT, add = completion::components_or_dev_pod())]
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

pub(crate) async fn run(global: &GlobalArgs, args: &ShellArgs) -> Result<()> {
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
    let mut attached = exec::exec(&streaming, &namespace, &name, command, &params).await?;
    // Raw before anything is read or printed; the guard restores the terminal
    // on every way out of this function.
    let raw_mode = if tty { RawMode::enable() } else { None };
    let resize = attached
        .terminal_size()
        .map(|sizes| tokio::spawn(follow_window_size(sizes)));
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
        tokio::spawn(async move {
            let copied = tokio::io::copy(&mut remote, &mut tokio::io::stdout()).await;
            // A reader that stopped reading ends us, as it ends kubectl exec.
            if let Err(err) = copied
                && err.kind() == ErrorKind::BrokenPipe
            {
                output::closed_pipe();
            }
        })
    });
    let stderr = attached.stderr().map(|mut remote| {
        tokio::spawn(async move {
            tokio::io::copy(&mut remote, &mut tokio::io::stderr())
                .await
                .ok();
        })
    });
    let status = attached.take_status().expect("status is taken once");
    for task in [stdout, stderr].into_iter().flatten() {
        task.await.ok();
    }
    let status = status.await;
    tracing::debug!(?status, "remote command finished");
    if let Some(resize) = resize {
        resize.abort();
    }
    drop(raw_mode);
    match exec::exit_code(status.as_ref()) {
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

/// The local terminal in raw mode (keys go to the remote shell as typed, and
/// its output is shown untranslated), restored when dropped.
struct RawMode;

impl RawMode {
    fn enable() -> Option<Self> {
        match terminal::enable_raw_mode() {
            Ok(()) => Some(Self),
            Err(err) => {
                tracing::debug!(%err, "cannot switch the terminal to raw mode");
                None
            }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        terminal::disable_raw_mode().ok();
    }
}

/// Sends the local terminal's size, then a new one whenever the window is
/// resized (SIGWINCH), as kube's `pod_shell_crossterm` example does.
#[cfg(unix)]
async fn follow_window_size(mut sizes: TerminalSizes) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut changes = signal(SignalKind::window_change()).ok();
    while send_size(&mut sizes).await {
        let Some(changes) = changes.as_mut() else {
            return;
        };
        if changes.recv().await.is_none() {
            return;
        }
    }
}

/// Windows has no SIGWINCH: the remote terminal keeps the first size.
#[cfg(not(unix))]
async fn follow_window_size(mut sizes: TerminalSizes) {
    send_size(&mut sizes).await;
}

/// kube's channel for the remote terminal's size (only with a TTY).
type TerminalSizes = futures::channel::mpsc::Sender<TerminalSize>;

/// False once the size cannot be read or the command has ended.
async fn send_size(sizes: &mut TerminalSizes) -> bool {
    let Ok((width, height)) = terminal::size() else {
        return false;
    };
    sizes.send(TerminalSize { width, height }).await.is_ok()
}
