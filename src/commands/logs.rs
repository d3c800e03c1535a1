//! `kubectl devenv logs <component>`: the logs of every pod of a component,
//! each line prefixed with its pod when there are several.

use std::time::Duration;

use clap::Args;
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::LogParams;
use tokio::io::AsyncWriteExt;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::{exec, stack};
use crate::commands::{StackArg, completion};
use crate::duration::parse_duration;
use crate::error::{Error, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The component (mysql, redis, ..., or `dev` for the dev pod)
    #[arg(value_name = "COMPONENT", add = completion::components_or_dev_pod())]
    pub component: String,

    /// Keep streaming new lines
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// The previous, crashed instance of each container
    #[arg(short = 'p', long)]
    pub previous: bool,

    /// Only lines newer than this (e.g. 5s, 2m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,

    /// Only the last N lines of each pod
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,

    #[command(flatten)]
    pub stack: StackArg,
}

pub(crate) async fn run(global: &GlobalArgs, args: &LogsArgs) -> Result<()> {
    if args.tail.is_some_and(|n| n < 0) {
        return Err(Error::Usage("--tail must be 0 or more".into()));
    }
    if args.follow && args.previous {
        return Err(Error::Usage(
            "--follow and --previous cannot be combined: a previous container has stopped".into(),
        ));
    }
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    let pods = stack::component_pods(&cluster, stack.as_deref(), &args.component).await?;
    // Follows stay open for as long as the pods log; only connecting is bounded.
    let streaming = if args.follow {
        cluster.streaming()?
    } else {
        cluster.clone()
    };
    let prefix = pods.len() > 1;
    let tasks = pods
        .iter()
        .map(|pod| stream_pod(&streaming, pod, args, prefix));
    futures::future::try_join_all(tasks).await?;
    Ok(())
}

async fn stream_pod(cluster: &Cluster, pod: &Pod, args: &LogsArgs, prefix: bool) -> Result<()> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone());
    let params = LogParams {
        container,
        follow: args.follow,
        previous: args.previous,
        since_seconds: args.since.map(|d| d.as_secs().max(1) as i64),
        tail_lines: args.tail,
        ..Default::default()
    };
    // Opening is bounded by --request-timeout; reading the stream is not.
    let stream = exec::log_stream(cluster, &namespace, &name, &params).await?;
    let mut lines = stream.lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines
        .try_next()
        .await
        .map_err(|err| Error::Other(format!("reading the logs of pod \"{name}\": {err}")))?
    {
        let text = if prefix {
            format!("[{name}] {line}\n")
        } else {
            format!("{line}\n")
        };
        // One write per line, so lines of concurrent pods never interleave mid-line.
        stdout
            .write_all(text.as_bytes())
            .await
            .map_err(output::stdout_failed)?;
    }
    stdout.flush().await.ok();
    Ok(())
}
