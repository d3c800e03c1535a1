//! `kubectl devenv status`: one row per managed component, with the health
//! and placement facts a developer needs (ready, restarts, node, architecture).

use clap::Args;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::cluster::workloads::{self, ComponentStatus};
use crate::cluster::{Cluster, Scope};
use crate::commands::StackArg;
use crate::error::{Error, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub stack: StackArg,

    /// Exit with 1 when a component is not fully ready (for scripts)
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Serialize)]
struct StatusReport {
    components: Vec<ComponentStatus>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<()> {
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    let scope = cluster.scope();
    let components = workloads::statuses(&cluster, &scope, stack.as_deref()).await?;
    let unhealthy = components.iter().any(|c| !c.healthy());
    let report = StatusReport { components };
    output::emit(global.output, &report, |report| {
        if report.components.is_empty() {
            // On stderr, as kubectl's "No resources found": stdout stays data.
            eprintln!("{}", nothing_found(&scope, stack.as_deref()));
            return String::new();
        }
        output::table_text(&render_table(&report.components))
    })?;
    if args.exit_code && unhealthy {
        return Err(Error::Other("the stack is not healthy".into()));
    }
    Ok(())
}

fn nothing_found(scope: &Scope, stack: Option<&str>) -> String {
    let what = match stack {
        Some(stack) => format!("No kubectl-devenv stack named \"{stack}\" found"),
        None => "No kubectl-devenv stacks found".to_owned(),
    };
    match scope {
        Scope::Namespace(namespace) => format!("{what} in namespace \"{namespace}\"."),
        Scope::All => format!("{what} in the cluster. Create one with `kubectl devenv up`."),
    }
}

fn render_table(rows: &[ComponentStatus]) -> comfy_table::Table {
    let mut table = output::table([
        "STACK",
        "NAMESPACE",
        "COMPONENT",
        "READY",
        "RESTARTS",
        "AGE",
        "IMAGE",
        "NODE",
        "ARCH",
    ]);
    let list = |items: &[String]| {
        if items.is_empty() {
            "<none>".to_owned()
        } else {
            items.join(",")
        }
    };
    for row in rows {
        table.add_row([
            if row.stack.is_empty() {
                "<none>".to_owned()
            } else {
                row.stack.clone()
            },
            row.namespace.clone(),
            row.component.clone(),
            format!("{}/{}", row.ready, row.desired),
            row.restarts.to_string(),
            row.age.clone(),
            list(&row.images),
            list(&row.nodes),
            list(&row.architectures),
        ]);
    }
    table
}
