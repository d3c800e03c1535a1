//! `kubectl devenv sync [PATH]`: uploads a local tree into the dev pod's code
//! directory and keeps it in sync (see `crate::sync`). This module only turns
//! flags and devenv.yaml into the session's options.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::commands::StackArg;
use crate::error::{Error, Result};
use crate::spec;
use crate::sync::session::{self, Options};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The local directory to sync (default: sync.localPath, else the directory of devenv.yaml)
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// The devenv.yaml with the sync settings (default: ./devenv.yaml when it exists)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub stack: StackArg,

    /// Upload what the pod lacks, then exit instead of watching
    #[arg(long)]
    pub once: bool,
}

pub(crate) async fn run(global: &GlobalArgs, args: &SyncArgs) -> Result<()> {
    let file = match &args.file {
        Some(file) => Some(file.clone()),
        None => Some(PathBuf::from(spec::DEFAULT_FILE)).filter(|f| f.is_file()),
    };
    let spec = file.as_deref().map(spec::load).transpose()?;
    let root = local_root(args.path.as_deref(), file.as_deref(), spec.as_ref())?;
    let options = Options {
        root,
        excludes: spec
            .as_ref()
            .map(|s| s.dev.sync.excludes.clone())
            .unwrap_or_default(),
        // `-f FILE` names the stack as ./devenv.yaml would.
        stack: match &args.stack.name {
            Some(_) => args.stack.resolve()?,
            None => spec.as_ref().map(|s| s.name.clone()),
        },
        once: args.once,
    };
    let cluster = Cluster::connect(&global.connection()).await?;
    session::run(&cluster, options).await
}

/// PATH, else `sync.localPath` (relative to devenv.yaml), else devenv.yaml's directory.
fn local_root(
    path: Option<&Path>,
    file: Option<&Path>,
    spec: Option<&spec::Spec>,
) -> Result<PathBuf> {
    let spec_dir = file.map(|f| match f.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    });
    let chosen = match (path, &spec_dir) {
        (Some(path), _) => path.to_owned(),
        (None, Some(dir)) => match spec.and_then(|s| s.dev.sync.local_path.as_ref()) {
            Some(local) => dir.join(local),
            None => dir.clone(),
        },
        (None, None) => {
            return Err(Error::Usage(format!(
                "no PATH given and no {} here: pass the directory to sync, or -f FILE",
                spec::DEFAULT_FILE
            )));
        }
    };
    let root = chosen.canonicalize().map_err(|err| {
        Error::Other(format!(
            "local path {} does not exist or cannot be read: {err}",
            chosen.display()
        ))
    })?;
    if !root.is_dir() {
        return Err(Error::Other(format!(
            "local path {} is not a directory",
            chosen.display()
        )));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_path_defaults_to_devenv_yamls_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        let file = dir.path().join("devenv.yaml");
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(local_root(None, Some(&file), None).unwrap(), canonical);
        let spec = spec::parse(
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: a}\nspec:\n  dev: {sync: {localPath: app}}\n  components: [{kind: redis}]\n",
            "x",
        )
        .unwrap();
        assert_eq!(
            local_root(None, Some(&file), Some(&spec)).unwrap(),
            canonical.join("app")
        );
        let explicit = dir.path().join("app");
        assert_eq!(
            local_root(Some(&explicit), Some(&file), Some(&spec)).unwrap(),
            canonical.join("app")
        );
        let missing = local_root(Some(Path::new("/no/such/dir")), None, None).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("local path /no/such/dir does not exist"),
            "{missing}"
        );
        assert!(matches!(local_root(None, None, None), Err(Error::Usage(_))));
    }
}
