//! Command-line definitions. kubectl does not pass its own global flags to
//! plugins (`kubectl --context x devenv` is refused), so every kubectl-style
//! flag is declared here, after the plugin name, and is global to all subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::cluster::ConnectOptions;
use crate::commands::{self, completion};
use crate::duration::parse_duration;
pub use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-devenv",
    bin_name = "kubectl devenv",
    version,
    about = "A dev pod and an isolated test stack (PHP-FPM, MySQL, Redis, ...) on any Kubernetes cluster",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the dev pod and test stack (wizard, devenv.yaml or flags), then wait until Ready
    Up(commands::up::UpArgs),
    /// Write a devenv.yaml from a docker-compose.yml (--from-compose), with a report per service
    Init(commands::init::InitArgs),
    /// Delete a stack's objects (data volumes and credentials are kept unless --purge)
    Down(commands::down::DownArgs),
    /// Print the logs of a component's pods
    Logs(commands::logs::LogsArgs),
    /// Open a shell, or run a command, in the dev pod (or another component)
    Shell(commands::shell::ShellArgs),
    /// Print the client version and, unless --client, the server's
    Version(commands::version::VersionArgs),
    /// List what kubectl-devenv manages in the cluster
    Status(commands::status::StatusArgs),
    /// Check that images have variants for the nodes' architectures, or (--isolation) that the stack is isolated
    Check(commands::check::CheckArgs),
    /// Forward local ports to the stack's components, following their Ready pods
    Forward(commands::forward::ForwardArgs),
    /// Upload local code into the dev pod and keep it in sync (one-way; local files are never changed)
    Sync(commands::sync::SyncArgs),
    /// Print a database component's generated credentials (never printed elsewhere)
    Credentials(commands::credentials::CredentialsArgs),
    /// Run a local command against the stack: forwards, and the dev pod's environment pointed at them
    Run(commands::run::RunArgs),
    /// Print the dev pod's environment pointed at local forwards (-o dotenv, shell, json or yaml)
    Env(commands::env::EnvArgs),
    /// Forward a local port to the dev pod's web server and print its URL
    Open(commands::open::OpenArgs),
    /// Print a shell completion script, the kubectl plugin-completion shim, or the man page
    Completion(commands::completion::CompletionArgs),
}

/// The flags kubectl users expect on every command (cli-runtime's config flags),
/// listed after each command's own options, as `kubectl options` lists them apart.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global Options")]
pub struct GlobalArgs {
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The name of the kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME", add = completion::contexts())]
    pub context: Option<String>,

    /// The name of the kubeconfig cluster to use
    #[arg(long, global = true, value_name = "NAME", add = completion::clusters())]
    pub cluster: Option<String>,

    /// The name of the kubeconfig user to use
    #[arg(long, global = true, value_name = "NAME", add = completion::users())]
    pub user: Option<String>,

    /// The namespace scope for this request
    #[arg(short = 'n', long, global = true, value_name = "NAME", add = completion::namespaces())]
    pub namespace: Option<String>,

    /// How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Output format
    #[arg(short = 'o', long, global = true, value_parser = output_format(), default_value = "table")]
    pub output: OutputFormat,

    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `-o`'s values as clap lists and completes them; [`OutputFormat`] stays free of clap.
fn output_format() -> impl TypedValueParser<Value = OutputFormat> {
    PossibleValuesParser::new([
        PossibleValue::new("table"),
        PossibleValue::new("json"),
        PossibleValue::new("yaml"),
        PossibleValue::new("dotenv").help("`NAME=value` lines (`env` only)"),
        PossibleValue::new("shell").help("`export NAME=value` lines (`env` only)"),
    ])
    .map(|value| match value.as_str() {
        "json" => OutputFormat::Json,
        "yaml" => OutputFormat::Yaml,
        "dotenv" => OutputFormat::Dotenv,
        "shell" => OutputFormat::Shell,
        _ => OutputFormat::Table,
    })
}

impl GlobalArgs {
    /// The connection flags, for [`Cluster::connect`].
    pub fn connection(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            namespace: self.namespace.clone(),
            request_timeout: self.request_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_after_the_subcommand_too() {
        let cli = Cli::try_parse_from([
            "kubectl-devenv",
            "status",
            "--context",
            "other",
            "-n",
            "test",
            "-o",
            "json",
            "--request-timeout",
            "5s",
        ])
        .unwrap();
        assert_eq!(cli.global.context.as_deref(), Some("other"));
        assert_eq!(cli.global.namespace.as_deref(), Some("test"));
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(cli.global.request_timeout, Duration::from_secs(5));
    }
}
