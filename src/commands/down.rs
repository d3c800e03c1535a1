//! `kubectl devenv down`: removes one stack's objects, and only those. Data
//! (PVCs) and credentials (Secrets) stay unless `--purge`, so the next `up`
//! finds the databases as they were.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kube::ResourceExt;

use crate::cli::GlobalArgs;
use crate::cluster::{Cluster, prune, within};
use crate::commands::StackArg;
use crate::duration::{humanize, parse_duration};
use crate::error::{Error, Result};
use crate::{labels, output, progress, spec, wizard};

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The stack's description (default: ./devenv.yaml if it exists)
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "stack"
    )]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub stack: StackArg,

    /// Also delete the data volumes (PVCs), the credential Secrets and the namespaces
    #[arg(long)]
    pub purge: bool,

    /// Delete without asking for confirmation (required when there is no terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// How long to wait for the pods (and, with --purge, the namespaces) to go away
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The stack to remove: its name and the namespaces the spec names, if a spec is known.
struct Target {
    name: String,
    spec_namespaces: Vec<String>,
}

fn target(args: &DownArgs) -> Result<Target> {
    if let Some(name) = &args.stack.name {
        if let Some(problem) = spec::name_problem(name, spec::MAX_NAME_LEN) {
            return Err(Error::Usage(format!(
                "--stack: invalid name \"{name}\": {problem}"
            )));
        }
        return Ok(Target {
            name: name.clone(),
            spec_namespaces: Vec::new(),
        });
    }
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(spec::DEFAULT_FILE));
    if args.file.is_none() && !path.exists() {
        return Err(Error::Usage(format!(
            "which stack? there is no {} here: pass --stack NAME or -f FILE",
            spec::DEFAULT_FILE
        )));
    }
    let spec = spec::load(&path)?;
    Ok(Target {
        spec_namespaces: spec.namespaces().map(str::to_owned).to_vec(),
        name: spec.name,
    })
}

pub(crate) async fn run(global: &GlobalArgs, args: &DownArgs) -> Result<()> {
    if global.namespace.is_some() {
        return Err(Error::Usage(
            "-n/--namespace does not apply to down: it finds a stack's namespaces by its labels; \
             pass --stack NAME or -f FILE"
                .into(),
        ));
    }
    let target = target(args)?;
    let cluster = Cluster::connect(&global.connection()).await?;
    let namespaces =
        prune::owned_namespaces(&cluster, &target.name, &target.spec_namespaces).await?;
    if namespaces.is_empty() {
        eprintln!("No stack \"{}\" found; nothing to delete.", target.name);
        return Ok(());
    }
    let names: Vec<String> = namespaces.iter().map(|ns| ns.name_any()).collect();
    if !args.yes {
        let what = if args.purge {
            "everything, including data volumes, credentials and the namespaces"
        } else {
            "workloads, Services and policies (data volumes and credentials are kept)"
        };
        let question = || {
            format!(
                "Delete stack \"{}\" in namespaces {}: {what}?",
                target.name,
                names.join(", ")
            )
        };
        if !wizard::confirm_or_refuse("delete", question)? {
            eprintln!("Nothing deleted.");
            return Ok(());
        }
    }
    let selector = labels::stack_selector(&target.name);
    let mut deleted = 0;
    for ns in &names {
        deleted += prune::delete_stack_objects(&cluster, ns, &selector, args.purge).await?;
    }
    let mut removed_namespaces = Vec::new();
    if args.purge {
        for namespace in &namespaces {
            let name = namespace.name_any();
            match prune::foreign_object(&cluster, &name).await? {
                Some(example) => eprintln!(
                    "Warning: kept namespace \"{name}\": it holds {example}, which kubectl-devenv did not create"
                ),
                None => {
                    prune::delete_namespace(&cluster, &name).await?;
                    output::print(format!("namespace \"{name}\" deleted\n"))?;
                    removed_namespaces.push(name);
                }
            }
        }
    }
    wait_for_termination(
        &cluster,
        &names,
        &selector,
        &removed_namespaces,
        args.timeout,
    )
    .await?;
    output::print(format!(
        "stack \"{}\" deleted ({deleted} objects{})\n",
        target.name,
        if args.purge {
            String::new()
        } else {
            "; data volumes and credential Secrets kept, --purge deletes them".to_owned()
        }
    ))?;
    Ok(())
}

/// Waits, with a spinner, until the stack's pods are gone and the purged
/// namespaces have finished terminating. Lists again after each watch, in
/// case a controller started a pod while its owner was being deleted.
async fn wait_for_termination(
    cluster: &Cluster,
    namespaces: &[String],
    selector: &str,
    removed_namespaces: &[String],
    timeout: Duration,
) -> Result<()> {
    let bar = progress::spinner("waiting for the stack's pods to terminate");
    let message = RefCell::new(String::new());
    let waiting = async {
        loop {
            let left = prune::leftovers(cluster, namespaces, selector, removed_namespaces).await?;
            if left.is_empty() {
                return Ok(());
            }
            let mut pods = left.pods.len();
            let mut terminating: Vec<String> =
                left.namespaces.iter().map(|n| n.name_any()).collect();
            let show = |pods: usize, terminating: &[String]| {
                let text = waiting_for(pods, terminating);
                bar.set_message(text.clone());
                *message.borrow_mut() = text;
            };
            show(pods, &terminating);
            prune::await_deleted(cluster, &left, |kind, name| {
                match kind {
                    "Pod" => pods = pods.saturating_sub(1),
                    _ => terminating.retain(|n| n != name),
                }
                show(pods, &terminating);
            })
            .await?;
        }
    };
    let result = match within(timeout, waiting).await {
        Some(result) => result,
        None => Err(Error::Other(format!(
            "timed out after {} {} (--timeout)",
            humanize(timeout),
            message.borrow()
        ))),
    };
    bar.finish_and_clear();
    result
}

fn waiting_for(pods: usize, terminating: &[String]) -> String {
    match pods {
        0 => format!(
            "waiting for namespace {} to terminate",
            terminating.join(", ")
        ),
        n => format!(
            "waiting for {n} pod{} to terminate",
            if n == 1 { "" } else { "s" }
        ),
    }
}
