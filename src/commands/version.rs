//! `kubectl devenv version`: what this binary is, and what it talks to.

use clap::Args;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::error::{Action, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print the client version only, without contacting the cluster
    #[arg(long)]
    pub client: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionReport {
    client_version: ClientVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<ServerVersion>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClientVersion {
    pub version: &'static str,
    pub commit: &'static str,
    pub target: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerVersion {
    git_version: String,
    platform: String,
}

/// This build's version, commit and target triple.
pub(crate) fn client_version() -> ClientVersion {
    ClientVersion {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("DEVENV_GIT_COMMIT"),
        target: env!("DEVENV_TARGET"),
    }
}

pub(crate) async fn run(global: &GlobalArgs, args: &VersionArgs) -> Result<()> {
    let server_version = if args.client {
        None
    } else {
        let cluster = Cluster::connect(&global.connection()).await?;
        let info = cluster
            .call(
                Action::new("get", "version"),
                cluster.client.apiserver_version(),
            )
            .await?;
        Some(ServerVersion {
            git_version: info.git_version,
            platform: info.platform,
        })
    };
    let report = VersionReport {
        client_version: client_version(),
        server_version,
    };
    output::emit(global.output, &report, |report| {
        let client = &report.client_version;
        let mut text = format!(
            "Client Version: v{} (commit {}, {})\n",
            client.version, client.commit, client.target
        );
        if let Some(server) = &report.server_version {
            text += &format!(
                "Server Version: {} ({})\n",
                server.git_version, server.platform
            );
        }
        text
    })
}
