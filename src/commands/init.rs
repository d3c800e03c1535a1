//! `kubectl devenv init --from-compose [FILE]`: write a devenv.yaml from the
//! team's Compose file. The reading and mapping live in [`crate::compose`].

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::compose::{self, Options};
use crate::error::{Error, Result};
use crate::{output, spec};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Convert a Compose file; given a directory or nothing, the first of compose.yaml, compose.yml,
    /// docker-compose.yaml and docker-compose.yml there
    #[arg(long = "from-compose", value_name = "FILE", num_args = 0..=1, default_missing_value = ".", required = true)]
    pub from_compose: Option<PathBuf>,

    /// Enable a Compose profile (repeatable; default: $COMPOSE_PROFILES)
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,

    /// Stack name (default: devenv)
    #[arg(long, value_name = "NAME", default_value = spec::DEFAULT_STACK)]
    pub name: String,

    /// Where to write the stack description
    #[arg(long = "file", short = 'f', value_name = "FILE", default_value = spec::DEFAULT_FILE)]
    pub file: PathBuf,

    /// Overwrite an existing devenv.yaml
    #[arg(long)]
    pub force: bool,
}

pub(crate) fn run(global: &GlobalArgs, args: &InitArgs) -> Result<()> {
    let given = args.from_compose.as_deref().unwrap_or(Path::new("."));
    let source = if given.is_dir() {
        compose::find_file(given).map_err(|e| Error::Other(e.to_string()))?
    } else {
        given.to_owned()
    };
    if let Some(problem) = spec::name_problem(&args.name, spec::MAX_NAME_LEN) {
        return Err(Error::Usage(format!(
            "--name: invalid name \"{}\": {problem}",
            args.name
        )));
    }
    let write = global.output != OutputFormat::Yaml;
    if write && args.file.exists() && !args.force {
        return Err(Error::Other(format!(
            "{} already exists: pass --force to overwrite it, or -o yaml to print the stack instead",
            args.file.display()
        )));
    }
    let profiles = if args.profiles.is_empty() {
        std::env::var("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        args.profiles.clone()
    };
    let options = Options {
        environment: std::env::vars().collect(),
        profiles,
    };
    let project = compose::load(&source, &options).map_err(|e| Error::Other(e.to_string()))?;
    let conversion =
        compose::convert(&project, &args.name).map_err(|e| Error::Other(e.to_string()))?;
    for line in &conversion.report {
        eprintln!("{line}");
    }
    let yaml = conversion.spec.to_yaml();
    if !write {
        output::print(yaml)?;
        return Ok(());
    }
    std::fs::write(&args.file, yaml)
        .map_err(|err| Error::Other(format!("cannot write {}: {err}", args.file.display())))?;
    eprintln!(
        "Wrote {} from {}; review it, then run `kubectl devenv up`.",
        args.file.display(),
        source.display()
    );
    Ok(())
}
