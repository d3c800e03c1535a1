//! `kubectl devenv sync`: one-way upload of a local tree into the dev pod's
//! code directory, then pushing changes as they happen.
//!
//! Pure parts, unit-tested: [`scan`] (what to send, with the ignore rules),
//! [`manifest`] (what the pod holds), [`plan`] (the difference, and the
//! bounded deletes), [`pack`] (one gzip'd tar stream per batch). The I/O:
//! [`remote`] (scripts run through exec with the container's own `tar`),
//! [`watch`] (notify plus a debouncer) and [`session`] (following the pod).

pub(crate) mod manifest;
pub(crate) mod pack;
pub(crate) mod plan;
pub(crate) mod remote;
pub(crate) mod scan;
pub(crate) mod session;
pub(crate) mod watch;

/// Sync's directory inside the code directory, in the pod: manifest,
/// journal, lock, staging. Never synced from the local tree.
pub(crate) const META_DIR: &str = ".devenv-sync";

/// Why a sync stopped, each worded as one `error:` line.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API refusal or failure, already in kubectl's words
    /// (`forbidden: cannot create pods/exec in namespace "dev"`).
    #[error(transparent)]
    Api(Box<crate::Error>),

    #[error("the connection to pod {pod} ended before its command finished")]
    Stream { pod: String },

    #[error(
        "pod {pod} has no `tar`: sync uses the container's own tar (GNU or busybox); use an image that has one"
    )]
    NoTar { pod: String },

    #[error("pod {pod} has GNU tar but no `gzip`, which GNU tar needs to read the stream")]
    NoGzip { pod: String },

    #[error(
        "pod {pod} has no directory {dir}: the dev pod predates sync; run `kubectl devenv up` again"
    )]
    NoCodeDir { pod: String, dir: String },

    #[error("{dir} in pod {pod} is not writable by the pod's user")]
    NotWritable { pod: String, dir: String },

    #[error(
        "another sync is writing to pod {pod} ({holder}): stop it first; a lock whose sync was killed expires after {expires}s"
    )]
    Locked {
        pod: String,
        holder: String,
        expires: u64,
    },

    #[error("another sync took over pod {pod}; stopping")]
    LockLost { pod: String },

    #[error(
        "no space left on device in {dir} (pod {pod}): nothing of this batch was applied; free space or raise sync.size"
    )]
    DiskFull { pod: String, dir: String },

    #[error("{what} in pod {pod} failed: {detail}")]
    Failed {
        pod: String,
        what: String,
        detail: String,
    },
}

/// At the command's edge: an API failure keeps its kubectl wording and
/// exit code; the rest are one line of their own.
impl From<SyncError> for crate::Error {
    fn from(err: SyncError) -> Self {
        match err {
            SyncError::Api(err) => *err,
            other => crate::Error::Other(other.to_string()),
        }
    }
}
