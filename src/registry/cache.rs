//! Platforms by manifest digest, on disk. A digest names immutable content,
//! so an entry never goes stale: once an image was read, later checks need only
//! a HEAD for its digest, which Docker Hub does not count as a pull.

use std::path::{Path, PathBuf};

use super::platform::Platform;

/// `$XDG_CACHE_HOME/kubectl-devenv/platforms`, else `~/.cache/kubectl-devenv/platforms`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|h| h.join(".cache")))?;
    Some(base.join("kubectl-devenv").join("platforms"))
}

/// `sha256:abc` → `sha256-abc.json`; anything that is not a plain digest gets no entry.
fn file_name(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':')?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    (plain(algorithm) && plain(hex)).then(|| format!("{algorithm}-{hex}.json"))
}

#[derive(Debug, Clone)]
pub(crate) struct PlatformCache {
    dir: Option<PathBuf>,
}

impl PlatformCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(file_name(digest)?))
    }

    /// Whether any entry exists: with none, a HEAD for the digest cannot save a GET.
    pub(crate) fn has_entries(&self) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
    }

    pub(crate) fn get(&self, digest: &str) -> Option<Vec<Platform>> {
        let bytes = std::fs::read(self.path(digest)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Best effort: a cache that cannot be written only costs a GET next time.
    pub(crate) fn put(&self, digest: &str, platforms: &[Platform]) {
        let Some(path) = self.path(digest) else {
            return;
        };
        if let Err(err) = write_atomically(&path, platforms) {
            tracing::debug!("cannot write {}: {err}", path.display());
        }
    }
}

fn write_atomically(path: &Path, platforms: &[Platform]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, serde_json::to_vec(platforms)?)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PlatformCache::new(Some(dir.path().join("p")));
        let digest = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(cache.get(&digest), None);
        assert!(!cache.has_entries());
        let platforms = vec![Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        }];
        cache.put(&digest, &platforms);
        assert_eq!(cache.get(&digest), Some(platforms));
        assert!(cache.has_entries());
    }

    #[test]
    fn odd_digests_are_never_paths() {
        assert_eq!(file_name("sha256:../../etc/passwd"), None);
        assert_eq!(file_name("latest"), None);
        assert_eq!(file_name("sha256:abc").as_deref(), Some("sha256-abc.json"));
        let cache = PlatformCache::new(None);
        cache.put("sha256:abc", &[]);
        assert_eq!(cache.get("sha256:abc"), None);
    }
}
