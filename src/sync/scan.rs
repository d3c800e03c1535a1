//! The local side: which files sync sends, by walking the tree with the
//! `ignore` crate. Only metadata is read here (one lstat per entry); content
//! is read while packing, and only for what the plan sends.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ignore::WalkBuilder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::sync::manifest::{Entry, Kind};

/// Ignore files read in every directory, gitignore syntax.
pub(crate) const IGNORE_FILES: [&str; 2] = [".gitignore", ".devenvignore"];
/// Read at the top of the tree only, as docker reads it, but with gitignore
/// rules (a pattern without a slash matches at any depth).
pub(crate) const DOCKER_IGNORE: &str = ".dockerignore";
/// Never sent: the repository, and sync's own bookkeeping in the pod.
pub(crate) const ALWAYS_EXCLUDED: [&str; 2] = [".git", super::META_DIR];

/// What to send from a local tree.
#[derive(Debug, Clone)]
pub(crate) struct Excludes {
    root: PathBuf,
    /// `.dockerignore` plus devenv.yaml's `sync.excludes`, relative to the root.
    top: Arc<Gitignore>,
}

impl Excludes {
    /// The rules for `root` (which must exist): its `.dockerignore`, then the
    /// patterns from devenv.yaml, which can re-include with `!`.
    pub(crate) fn new(root: &Path, patterns: &[String]) -> Result<Self, String> {
        let mut builder = GitignoreBuilder::new(root);
        let docker = root.join(DOCKER_IGNORE);
        if docker.is_file()
            && let Some(err) = builder.add(&docker)
        {
            return Err(format!("cannot read {}: {err}", docker.display()));
        }
        for pattern in patterns {
            builder
                .add_line(None, pattern)
                .map_err(|err| format!("invalid sync exclude \"{pattern}\": {err}"))?;
        }
        let top = builder
            .build()
            .map_err(|err| format!("invalid excludes: {err}"))?;
        Ok(Self {
            root: root.to_owned(),
            top: Arc::new(top),
        })
    }

    /// True when a path (relative to the root) is excluded by the top-level
    /// rules or is one of [`ALWAYS_EXCLUDED`]; per-directory ignore files are
    /// applied by the walk itself.
    fn excludes_top(&self, relative: &Path, is_dir: bool) -> bool {
        let mut components = relative.components();
        if let Some(Component::Normal(first)) = components.next()
            && ALWAYS_EXCLUDED.iter().any(|name| first == *name)
        {
            return true;
        }
        if relative
            .components()
            .any(|c| matches!(c, Component::Normal(name) if name == ".git"))
        {
            return true;
        }
        self.top
            .matched_path_or_any_parents(relative, is_dir)
            .is_ignore()
    }
}

/// The tree as sync sees it: relative `/`-separated paths to entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scan {
    pub entries: BTreeMap<String, Entry>,
    /// Entries skipped, one message each (odd types, links out of the tree, unreadable directories).
    pub warnings: Vec<String>,
}

/// Walks `excludes`' root. Never fails as a whole: what cannot be read is
/// reported in [`Scan::warnings`] and left out.
pub(crate) fn scan(excludes: &Excludes) -> Scan {
    let root = excludes.root.clone();
    let filter = excludes.clone();
    let mut builder = WalkBuilder::new(&root);
    builder
        .standard_filters(false)
        .git_ignore(true)
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILES[1])
        .filter_entry(move |entry| {
            let Ok(relative) = entry.path().strip_prefix(&filter.root) else {
                return true;
            };
            relative.as_os_str().is_empty()
                || !filter.excludes_top(relative, entry.file_type().is_some_and(|t| t.is_dir()))
        });
    let mut out = Scan::default();
    for result in builder.build() {
        let entry = match result {
            Ok(entry) => entry,
            Err(err) => {
                out.warnings.push(format!("skipped: {err}"));
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(&root) else {
            continue;
        };
        let Some(name) = relative_name(relative) else {
            out.warnings.push(format!(
                "skipped {}: the name is not valid UTF-8",
                entry.path().display()
            ));
            continue;
        };
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            // Vanished between listing and lstat.
            Err(_) => continue,
        };
        let file_type = metadata.file_type();
        let kind = if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            Kind::File
        } else if file_type.is_symlink() {
            match std::fs::read_link(entry.path()) {
                Ok(target) => match inside_link(relative, &target) {
                    Some(target) => Kind::Link(target),
                    None => {
                        out.warnings.push(format!(
                            "skipped {name}: the symlink points out of the synced tree ({})",
                            target.display()
                        ));
                        continue;
                    }
                },
                Err(_) => continue,
            }
        } else {
            out.warnings
                .push(format!("skipped {name}: not a file, directory or symlink"));
            continue;
        };
        out.entries
            .insert(name, Entry::from_metadata(kind, &metadata));
    }
    out
}

/// `a/b.php` for a relative path; `None` for names that are not UTF-8.
fn relative_name(relative: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect();
    Some(parts?.join("/"))
}

/// The link target, if following it from `link` (relative to the root)
/// stays inside the tree; absolute targets never do, since the tree lands
/// elsewhere in the pod.
pub(crate) fn inside_link(link: &Path, target: &Path) -> Option<String> {
    if target.is_absolute() {
        return None;
    }
    let mut depth: usize = link.components().count().saturating_sub(1);
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1)?,
            _ => return None,
        }
    }
    target.to_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn names(dir: &Path, patterns: &[&str]) -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let excludes = Excludes::new(dir, &patterns).unwrap();
        scan(&excludes).entries.into_keys().collect()
    }

    #[test]
    fn ignore_files_at_every_level_and_git_always() {
        let dir = tree(&[
            (".gitignore", "*.log\n/build/\n"),
            ("app/.devenvignore", "cache/\n"),
            ("app/index.php", "<?php"),
            ("app/cache/x", "x"),
            ("app/debug.log", "x"),
            ("build/out", "x"),
            ("src/build/kept", "x"),
            (".git/HEAD", "ref"),
            ("sub/.git/config", "x"),
            (".devenv-sync/manifest.gz", "x"),
        ]);
        assert_eq!(
            names(dir.path(), &[]),
            [
                ".gitignore",
                "app",
                "app/.devenvignore",
                "app/index.php",
                "src",
                "src/build",
                "src/build/kept",
                "sub",
            ]
        );
    }

    #[test]
    fn dockerignore_and_devenv_yaml_excludes_apply_from_the_top() {
        let dir = tree(&[
            (".dockerignore", "node_modules\n*.md\n"),
            ("node_modules/a/b.js", "x"),
            ("README.md", "x"),
            ("docs/KEEP.md", "x"),
            ("vendor/autoload.php", "x"),
            ("var/cache/x", "x"),
            ("var/log/keep", "x"),
        ]);
        assert_eq!(
            names(dir.path(), &["vendor/", "var/*", "!var/log", "!KEEP.md"]),
            [
                ".dockerignore",
                "docs",
                "docs/KEEP.md",
                "var",
                "var/log",
                "var/log/keep"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_stay_inside_the_tree_or_are_reported() {
        let dir = tree(&[("a/real.php", "x")]);
        std::os::unix::fs::symlink("real.php", dir.path().join("a/inside")).unwrap();
        std::os::unix::fs::symlink("../../etc", dir.path().join("a/outside")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("absolute")).unwrap();
        let excludes = Excludes::new(dir.path(), &[]).unwrap();
        let scan = scan(&excludes);
        assert_eq!(scan.entries["a/inside"].kind, Kind::Link("real.php".into()));
        assert!(!scan.entries.contains_key("a/outside"));
        assert!(!scan.entries.contains_key("absolute"));
        assert_eq!(scan.warnings.len(), 2, "{:?}", scan.warnings);
        assert!(scan.warnings[0].contains("points out of the synced tree"));
    }

    #[test]
    fn odd_names_are_kept_as_they_are() {
        let dir = tree(&[
            ("with space.php", "x"),
            ("ünïcødé/日本.php", "x"),
            ("new\nline.php", "x"),
            ("-dash.php", "x"),
        ]);
        let names = names(dir.path(), &[]);
        for name in [
            "with space.php",
            "ünïcødé/日本.php",
            "new\nline.php",
            "-dash.php",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
    }

    #[test]
    fn link_targets_are_checked_lexically() {
        assert_eq!(
            inside_link(Path::new("a/b/l"), Path::new("../c")),
            Some("../c".into())
        );
        assert_eq!(inside_link(Path::new("a/l"), Path::new("../../x")), None);
        assert_eq!(inside_link(Path::new("l"), Path::new("..")), None);
        assert_eq!(inside_link(Path::new("l"), Path::new("/abs")), None);
        assert_eq!(
            inside_link(Path::new("l"), Path::new("./x/../y")),
            Some("./x/../y".into())
        );
    }
}
