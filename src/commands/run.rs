//! `kubectl devenv run -- COMMAND...`: a local command (`php artisan migrate`,
//! phpunit, a database GUI) against the stack. Forwards to the components
//! the dev pod's environment names, on free local ports, and the command
//! gets that environment pointed at them; no agent in the cluster and no
//! root on the machine. Like system(3), the parent ignores Ctrl-C while the
//! command runs: the terminal sends it to the command too, which decides.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitStatus;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::commands::StackArg;
use crate::commands::env::{DevEnvironment, LOCAL_ADDRESS};
use crate::commands::forward::{self, PlannedPort};
use crate::error::{Error, Result};
use crate::forward::ports::{self, LocalPort};
use crate::forward::tunnel::Protocol;
use crate::localenv;

/// Laravel's cached configuration: with it, `env()` no longer reads the environment.
const LARAVEL_CONFIG_CACHE: &str = "bootstrap/cache/config.php";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The command and its arguments (after `--`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    #[command(flatten)]
    pub stack: StackArg,

    /// Local ports to forward from, e.g. 20000-20100 (default: each Service port if free, else
    /// the next free one)
    #[arg(long, value_name = "FIRST-LAST", value_parser = ports::parse_port_range)]
    pub port_range: Option<(u16, u16)>,

    /// How streams reach the API server: spdy, or websocket through proxies that refuse SPDY
    /// upgrades
    #[arg(long, value_name = "PROTOCOL", value_parser = crate::commands::forward::protocol(), default_value = "spdy")]
    pub protocol: Protocol,
}

pub(crate) async fn run(global: &GlobalArgs, args: &RunArgs) -> Result<()> {
    let Some((program, arguments)) = args.command.split_first() else {
        return Err(Error::Usage(
            "name the command to run after `--`, e.g. `kubectl devenv run -- php artisan migrate`"
                .into(),
        ));
    };
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    let environment = DevEnvironment::read(&cluster, stack.as_deref()).await?;
    if !environment
        .endpoints
        .iter()
        .any(|e| e.host_var == "DB_HOST")
    {
        return Err(Error::Other(format!(
            "stack \"{}\" has no database component, so there is no DB_HOST to point the command at: add mysql, mariadb or postgres to its devenv.yaml, or reach other components with `kubectl devenv forward`",
            environment.stack
        )));
    }
    let secrets = environment.secrets(&cluster).await?;
    let (services, plan) = plan(&environment, args.port_range);
    let started = forward::start(
        &cluster,
        &services,
        &plan,
        LOCAL_ADDRESS,
        args.protocol,
        |component, preferred, bound| {
            tracing::info!("{component}: local port {preferred} is taken; using {bound}");
        },
    )
    .await?;
    forward::warn_without_pods(&started.mappings);
    let local: BTreeMap<(&str, u16), std::net::SocketAddr> = plan
        .iter()
        .zip(&started.mappings)
        .filter_map(|(planned, mapping)| {
            let service = &services[planned.service];
            let address = mapping.local_address.parse().ok()?;
            Some((
                (service.component.as_str(), service.ports[planned.port].port),
                address,
            ))
        })
        .collect();
    let vars = localenv::resolve(
        &environment.vars,
        &environment.endpoints,
        |component, port| local.get(&(component, port)).copied(),
        &secrets,
    );
    for mapping in &started.mappings {
        tracing::info!("{} on {}", mapping.component, mapping.local_address);
    }
    if Path::new(LARAVEL_CONFIG_CACHE).exists() {
        eprintln!(
            "warning: {LARAVEL_CONFIG_CACHE} exists: Laravel then ignores these variables; `php artisan config:clear` removes it"
        );
    }
    let mut command = tokio::process::Command::new(program);
    command
        .args(arguments)
        .envs(vars.iter().map(|v| (&v.name, &v.value)));
    let status = supervise(command, program).await;
    started.stop().await;
    exit_with(status?)
}

/// One planned port per component the environment names, at the port it names.
fn plan(
    environment: &DevEnvironment,
    range: Option<(u16, u16)>,
) -> (Vec<forward::ComponentService>, Vec<PlannedPort>) {
    let mut services = Vec::new();
    let mut plan: Vec<PlannedPort> = Vec::new();
    for endpoint in &environment.endpoints {
        let Some(service) = environment
            .services
            .iter()
            .find(|s| s.component == endpoint.component)
        else {
            continue;
        };
        let Some(port) = service.ports.iter().position(|p| p.port == endpoint.port) else {
            continue;
        };
        let index = match services.iter().position(|s| s == service) {
            Some(index) => index,
            None => {
                services.push(service.clone());
                services.len() - 1
            }
        };
        if plan.iter().any(|p| p.service == index && p.port == port) {
            continue;
        }
        let local = match range {
            Some((first, last)) => LocalPort::InRange { first, last },
            None => LocalPort::Auto {
                preferred: endpoint.port,
            },
        };
        plan.push(PlannedPort {
            service: index,
            port,
            local,
        });
    }
    (services, plan)
}

/// Runs the command to its end. Unix: Ctrl-C and Ctrl-\ reach the command
/// from the terminal and are ignored here; SIGTERM and SIGHUP sent to us
/// are passed on to it.
async fn supervise(mut command: tokio::process::Command, program: &str) -> Result<ExitStatus> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|err| Error::Other(format!("cannot listen for signals: {err}")))
        };
        let mut interrupt = listen(SignalKind::interrupt())?;
        let mut quit = listen(SignalKind::quit())?;
        let mut terminate = listen(SignalKind::terminate())?;
        let mut hangup = listen(SignalKind::hangup())?;
        let mut child = command.spawn().map_err(|err| spawn_error(program, err))?;
        let pid = child.id().and_then(|id| libc::pid_t::try_from(id).ok());
        let pass_on = |sig: libc::c_int| {
            if let Some(pid) = pid {
                // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
                // child's, which we have not reaped yet.
                unsafe { libc::kill(pid, sig) };
            }
        };
        loop {
            tokio::select! {
                status = child.wait() => {
                    return status.map_err(|err| Error::Other(format!("cannot wait for {program}: {err}")));
                }
                _ = interrupt.recv() => {}
                _ = quit.recv() => {}
                _ = terminate.recv() => pass_on(libc::SIGTERM),
                _ = hangup.recv() => pass_on(libc::SIGHUP),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let mut child = command.spawn().map_err(|err| spawn_error(program, err))?;
        loop {
            tokio::select! {
                status = child.wait() => {
                    return status.map_err(|err| Error::Other(format!("cannot wait for {program}: {err}")));
                }
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
}

/// A shell's words for a command it cannot start.
fn spawn_error(program: &str, err: std::io::Error) -> Error {
    match err.kind() {
        std::io::ErrorKind::NotFound => Error::CommandNotFound(program.to_owned()),
        std::io::ErrorKind::PermissionDenied => Error::CommandNotExecutable {
            command: program.to_owned(),
            reason: "permission denied".to_owned(),
        },
        _ => Error::CommandNotExecutable {
            command: program.to_owned(),
            reason: err.to_string(),
        },
    }
}

/// The command's exit code becomes ours. A command ended by Ctrl-C ends us the
/// same way, so that a calling shell script stops too; other signals give
/// 128 + the signal number, as in a shell.
fn exit_with(status: ExitStatus) -> Result<()> {
    if let Some(code) = status.code() {
        return if code == 0 {
            Ok(())
        } else {
            Err(Error::PassThrough(code))
        };
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            if sig == libc::SIGINT {
                // SAFETY: restoring the default disposition and raising a signal
                // have no memory-safety preconditions; the forwards are stopped.
                unsafe {
                    libc::signal(libc::SIGINT, libc::SIG_DFL);
                    libc::raise(libc::SIGINT);
                }
            }
            return Err(Error::PassThrough(128 + sig));
        }
    }
    Err(Error::PassThrough(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_command_is_127_and_a_directory_126() {
        let missing = spawn_error(
            "no-such-tool",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(missing.exit_code(), 127);
        let denied = spawn_error(
            "/etc",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(denied.exit_code(), 126);
        assert_eq!(
            denied.to_string(),
            "/etc: cannot execute: permission denied"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn exit_codes_pass_through_and_signals_read_as_in_a_shell() {
        let status = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .status()
                .unwrap()
        };
        assert!(exit_with(status("exit 0")).is_ok());
        assert_eq!(exit_with(status("exit 3")).unwrap_err().exit_code(), 3);
        assert_eq!(
            exit_with(status("kill -TERM $$")).unwrap_err().exit_code(),
            128 + libc::SIGTERM
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_command_runs_with_the_environment_and_its_code() {
        let mut command = tokio::process::Command::new("sh");
        command
            .args(["-c", "test \"$DB_HOST\" = 127.0.0.1 && exit 7"])
            .env("DB_HOST", "127.0.0.1");
        let status = supervise(command, "sh").await.unwrap();
        assert_eq!(status.code(), Some(7));
        let missing = tokio::process::Command::new("kubectl-devenv-no-such-command");
        let err = supervise(missing, "kubectl-devenv-no-such-command")
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 127);
    }
}
