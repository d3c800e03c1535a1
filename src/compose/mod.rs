//! `kubectl devenv init --from-compose`: read a Compose file as Docker
//! Compose does (compose-go is the reference), then map its services to a
//! devenv.yaml, with one report line per service saying what each became.
//!
//! Reading ([`model`]) and mapping ([`convert`]) are pure functions of the
//! files and the given environment; the command only finds the file and
//! writes the result.

pub mod convert;
pub mod dotenv;
pub mod interpolate;
pub mod model;
pub mod yaml;

use std::path::{Path, PathBuf};

use serde_saphyr::Location;

pub use convert::{Conversion, convert};
pub use model::{Options, Project, load};

/// The names Compose looks for, in its order.
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}:{line}:{column}: {message}")]
    At {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: not a Compose file: {reason}")]
    NotCompose { file: String, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no Compose file in {} (looked for {})", dir.display(), FILE_NAMES.join(", "))]
    NotFound { dir: PathBuf },
}

impl ComposeError {
    /// `file:line:column: message`, or `file: message` without a location.
    pub fn located(file: &str, at: Location, message: impl Into<String>) -> Self {
        if at == Location::UNKNOWN {
            ComposeError::File {
                file: file.to_owned(),
                message: message.into(),
            }
        } else {
            ComposeError::At {
                file: file.to_owned(),
                line: at.line(),
                column: at.column(),
                message: message.into(),
            }
        }
    }
}

/// The Compose file of `dir`: the first of [`FILE_NAMES`] that exists.
pub fn find_file(dir: &Path) -> Result<PathBuf, ComposeError> {
    FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ComposeError::NotFound {
            dir: dir.to_owned(),
        })
}
