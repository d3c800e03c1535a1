//! kubectl-devenv: a dev pod and an isolated test stack on any Kubernetes cluster.
//!
//! The binary is a thin shell over [`run`]; everything that can be tested
//! without a cluster (rendering, parsing, validation) is pure and lives here.

pub(crate) mod arch;
pub mod catalog;
pub mod cli;
pub(crate) mod cluster;
pub(crate) mod commands;
pub mod compose;
pub(crate) mod duration;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod isolation;
pub(crate) mod labels;
pub(crate) mod localenv;
pub(crate) mod output;
pub(crate) mod progress;
pub(crate) mod registry;
pub mod render;
pub mod spec;
pub(crate) mod sync;
pub(crate) mod wizard;

use cli::{Cli, Command};
pub use commands::completion::answer_kubectl_completion;
pub use error::{Error, Result};

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    install_tls_provider();
    let global = &cli.global;
    if global.output.is_env_only() && !matches!(cli.command, Command::Env(_)) {
        return Err(output::env_only(global.output));
    }
    match &cli.command {
        Command::Version(args) => commands::version::run(global, args).await,
        Command::Status(args) => commands::status::run(global, args).await,
        Command::Up(args) => commands::up::run(global, args).await,
        Command::Init(args) => commands::init::run(global, args),
        Command::Down(args) => commands::down::run(global, args).await,
        Command::Logs(args) => commands::logs::run(global, args).await,
        Command::Shell(args) => commands::shell::run(global, args).await,
        Command::Credentials(args) => commands::credentials::run(global, args).await,
        Command::Check(args) => commands::check::run(global, args).await,
        Command::Forward(args) => commands::forward::run(global, args).await,
        Command::Run(args) => commands::run::run(global, args).await,
        Command::Env(args) => commands::env::run(global, args).await,
        Command::Open(args) => commands::open::run(global, args).await,
        Command::Sync(args) => commands::sync::run(global, args).await,
        Command::Completion(args) => commands::completion::run(args),
    }
}

/// ring, with AES-128-GCM first, as Go clients such as kubectl offer it: the
/// API server then runs 10 AES rounds per block of a forwarded stream rather
/// than the 14 of rustls' AES-256 default.
fn install_tls_provider() {
    use rustls::crypto::ring::{cipher_suite, default_provider};
    let mut provider = default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        let preferred = [
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ];
        !preferred.contains(suite)
    });
    let _ = provider.install_default();
}

/// Sends logs to stderr, so that `-o json|yaml` on stdout stays parseable.
/// `RUST_LOG` overrides `-v`.
pub fn init_logging(verbosity: u8) {
    let default = match verbosity {
        0 => "warn",
        1 => "kubectl_devenv=info,warn",
        2 => "kubectl_devenv=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}
