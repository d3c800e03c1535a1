use clap::Parser;
use kubectl_devenv::Error;
use kubectl_devenv::cli::Cli;

fn main() {
    // kubectl's plugin-completion hook, answered before any runtime starts: a completer that
    // needs the cluster starts one of its own. Kept out of clap so no help or script lists it.
    if kubectl_devenv::answer_kubectl_completion(std::env::args_os()) {
        return;
    }
    let cli = Cli::parse();
    kubectl_devenv::init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => exit_with(Error::Other(format!("cannot start the runtime: {err}"))),
    };
    if let Err(err) = runtime.block_on(kubectl_devenv::run(cli)) {
        // With the runtime still up: exiting does not wait for its blocking tasks.
        exit_with(err);
    }
}

/// Prints `error: …` unless the error explained itself, and exits with its code.
fn exit_with(err: Error) -> ! {
    if err.is_reported() {
        eprintln!("error: {err}");
    }
    std::process::exit(err.exit_code())
}
