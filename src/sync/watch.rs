//! Local changes as a stream of "something changed" signals. The debouncer
//! stitches renames and folds bursts (a `git checkout`, `composer install`)
//! into few events; each signal then leads to one rescan and diff against
//! the manifest, so what is sent never depends on which events arrived.

use std::path::{Component, Path};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use crate::sync::scan::ALWAYS_EXCLUDED;

/// Quiet time per path before its events are passed on: short enough for a
/// saved file to reach the pod well within 300 ms.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(50);

/// Watches a tree until dropped.
pub(crate) struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    pub changes: mpsc::UnboundedReceiver<()>,
}

pub(crate) fn watch(root: &Path) -> Result<Watcher, String> {
    let (sender, changes) = mpsc::unbounded_channel();
    let prefix = root.to_owned();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let relevant = events.iter().any(|event| {
                    event.need_rescan()
                        || event
                            .paths
                            .iter()
                            .any(|p| !p.strip_prefix(&prefix).is_ok_and(is_bookkeeping))
                });
                if relevant {
                    let _ = sender.send(());
                }
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!("watching for changes: {error}");
                }
                // Something may have been missed; a rescan finds it.
                let _ = sender.send(());
            }
        }
    })
    .map_err(|err| format!("cannot watch {}: {err}", root.display()))?;
    debouncer
        .watch(root, RecursiveMode::Recursive)
        .map_err(|err| {
            format!(
                "cannot watch {}: {err} (on Linux, raising fs.inotify.max_user_watches may help)",
                root.display()
            )
        })?;
    Ok(Watcher {
        _debouncer: debouncer,
        changes,
    })
}

/// `.git/...` changes on every `git status`; nothing in it is ever sent.
fn is_bookkeeping(relative: &Path) -> bool {
    match relative.components().next() {
        Some(Component::Normal(first)) => ALWAYS_EXCLUDED.iter().any(|name| first == *name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_internals_are_not_changes() {
        assert!(is_bookkeeping(Path::new(".git/index")));
        assert!(is_bookkeeping(Path::new(".devenv-sync")));
        assert!(!is_bookkeeping(Path::new("src/.gitignore")));
        assert!(!is_bookkeeping(Path::new("")));
    }

    #[tokio::test]
    async fn a_saved_file_is_signalled_and_git_internals_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let mut watcher = watch(&root).unwrap();
        std::fs::write(root.join(".git/index"), "x").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(400), watcher.changes.recv()).await;
        assert!(quiet.is_err(), "a .git change was signalled");
        std::fs::write(root.join("index.php"), "x").unwrap();
        let signalled = tokio::time::timeout(Duration::from_secs(5), watcher.changes.recv()).await;
        assert_eq!(signalled, Ok(Some(())));
    }
}
