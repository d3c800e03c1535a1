use clap::Parser;
use kubectl_devenv::cli::Cli;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    kubectl_devenv::init_logging(cli.global.verbose);
    if let Err(err) = kubectl_devenv::run(cli).await {
        eprintln!("error: {err}");
        std::process::exit(err.exit_code());
    }
}
