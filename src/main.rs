use clap::Parser;
use kubectl_devenv::cli::Cli;

#[tokio::main]
async fn main() {
    // kubectl's plugin-completion hook; kept out of clap so no help or script lists it.
    if kubectl_devenv::commands::completion::answer_kubectl_completion(std::env::args_os()) {
        return;
    }
    let cli = Cli::parse();
    kubectl_devenv::init_logging(cli.global.verbose);
    if let Err(err) = kubectl_devenv::run(cli).await {
        if err.is_reported() {
            eprintln!("error: {err}");
        }
        std::process::exit(err.exit_code());
    }
}
