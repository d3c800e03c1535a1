//! What one batch must do to bring the pod from its manifest to the local
//! tree, and the shell that deletes in bounded chunks. Pure.

use crate::sync::manifest::{Entries, Entry, Kind};

/// Paths per `rm`/`rmdir` command line, and bytes: far below any ARG_MAX
/// (the smallest in practice is 128 KiB per argument list on Linux, 256 KiB on macOS).
const CHUNK_PATHS: usize = 200;
const CHUNK_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Files and symlinks to send (new, or changed by size, mtime or mode).
    pub upload: Vec<String>,
    /// Directories the pod lacks.
    pub mkdir: Vec<String>,
    /// Files and symlinks gone from the local tree: deleted in the pod.
    pub delete: Vec<String>,
    /// Directories gone from the local tree, deepest first: removed when empty.
    pub rmdir: Vec<String>,
    /// Still on the local disk but now excluded (or unreadable): dropped from
    /// the manifest, left alone in the pod. Sync deletes only what the user deleted.
    pub forget: Vec<String>,
}

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.upload.is_empty()
            && self.mkdir.is_empty()
            && self.delete.is_empty()
            && self.rmdir.is_empty()
            && self.forget.is_empty()
    }

    /// Paths whose manifest entries go before anything is deleted.
    pub(crate) fn dropped(&self) -> Vec<String> {
        let mut dropped: Vec<String> = self
            .delete
            .iter()
            .chain(&self.rmdir)
            .chain(&self.forget)
            .cloned()
            .collect();
        dropped.sort();
        dropped.dedup();
        dropped
    }
}

/// Compares the local tree with what the pod holds. `on_disk` says whether
/// a path missing from the scan still exists locally (then it was excluded
/// or could not be read, and is forgotten rather than deleted).
pub(crate) fn diff(local: &Entries, pod: &Entries, on_disk: impl Fn(&str) -> bool) -> Plan {
    let mut plan = Plan::default();
    for (path, entry) in local {
        let held = pod.get(path);
        if let Some(held) = held {
            if held.unchanged(entry) {
                continue;
            }
            if kind_class(&held.kind) != kind_class(&entry.kind) {
                remove(&mut plan, path, held);
            } else if entry.kind == Kind::Dir {
                continue;
            }
        }
        match entry.kind {
            Kind::Dir => plan.mkdir.push(path.clone()),
            _ => plan.upload.push(path.clone()),
        }
    }
    for (path, held) in pod {
        if local.contains_key(path) {
            continue;
        }
        if on_disk(path) {
            plan.forget.push(path.clone());
        } else {
            remove(&mut plan, path, held);
        }
    }
    plan.delete.sort();
    plan.rmdir
        .sort_by(|a, b| depth(b).cmp(&depth(a)).then_with(|| b.cmp(a)));
    plan
}

/// Files and links are replaced in place by a rename; a directory must go first.
fn kind_class(kind: &Kind) -> bool {
    matches!(kind, Kind::Dir)
}

fn remove(plan: &mut Plan, path: &str, held: &Entry) {
    match held.kind {
        Kind::Dir => plan.rmdir.push(path.to_owned()),
        _ => plan.delete.push(path.to_owned()),
    }
}

fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// A POSIX shell script, run in the code directory, that deletes `files`
/// with `rm -f --` and then tries `rmdir` on `dirs` (which fails, silently,
/// where the pod added files of its own), each command with a bounded
/// number of arguments. No xargs: it is missing from some images, and its
/// own limits vary.
pub(crate) fn delete_script(files: &[String], dirs: &[String]) -> String {
    let mut script = String::new();
    for chunk in chunks(files) {
        script += "rm -f --";
        script += &chunk;
        script += "\n";
    }
    for chunk in chunks(dirs) {
        script += "rmdir --";
        script += &chunk;
        script += " 2>/dev/null\n";
    }
    script += "true\n";
    script
}

fn chunks(paths: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for path in paths {
        let quoted = format!(" {}", quote(path));
        if count == CHUNK_PATHS || (count > 0 && current.len() + quoted.len() > CHUNK_BYTES) {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
        current += &quoted;
        count += 1;
    }
    if count > 0 {
        out.push(current);
    }
    out
}

/// Single quotes: nothing inside is special to sh, newlines included.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, hash: Option<u64>) -> Entry {
        Entry {
            kind: Kind::File,
            size,
            mtime_ns: 1,
            mode: 0o644,
            hash,
        }
    }

    fn dir() -> Entry {
        Entry {
            kind: Kind::Dir,
            size: 0,
            mtime_ns: 1,
            mode: 0o755,
            hash: None,
        }
    }

    fn entries(list: &[(&str, Entry)]) -> Entries {
        list.iter()
            .map(|(p, e)| (p.to_string(), e.clone()))
            .collect()
    }

    #[test]
    fn an_empty_pod_gets_everything() {
        let local = entries(&[("a", dir()), ("a/x.php", file(3, None))]);
        let plan = diff(&local, &Entries::new(), |_| false);
        assert_eq!(plan.mkdir, ["a"]);
        assert_eq!(plan.upload, ["a/x.php"]);
        assert!(plan.delete.is_empty() && plan.rmdir.is_empty());
    }

    #[test]
    fn nothing_changed_means_nothing_to_do() {
        let pod = entries(&[("a", dir()), ("a/x.php", file(3, Some(7)))]);
        let local = entries(&[("a", dir()), ("a/x.php", file(3, None))]);
        assert!(diff(&local, &pod, |_| false).is_empty());
    }

    #[test]
    fn edits_deletes_and_renames() {
        let pod = entries(&[
            ("old", dir()),
            ("old/a.php", file(1, Some(1))),
            ("edited.php", file(1, Some(2))),
            ("gone.php", file(1, Some(3))),
        ]);
        let local = entries(&[
            ("new", dir()),
            ("new/a.php", file(1, None)),
            ("edited.php", file(2, None)),
        ]);
        let plan = diff(&local, &pod, |_| false);
        assert_eq!(plan.upload, ["edited.php", "new/a.php"]);
        assert_eq!(plan.mkdir, ["new"]);
        assert_eq!(plan.delete, ["gone.php", "old/a.php"]);
        assert_eq!(plan.rmdir, ["old"]);
    }

    #[test]
    fn excluded_files_are_forgotten_not_deleted() {
        let pod = entries(&[("vendor", dir()), ("vendor/x.php", file(1, Some(1)))]);
        let plan = diff(&Entries::new(), &pod, |_| true);
        assert_eq!(plan.forget, ["vendor", "vendor/x.php"]);
        assert!(plan.delete.is_empty() && plan.rmdir.is_empty());
        assert_eq!(plan.dropped(), ["vendor", "vendor/x.php"]);
    }

    #[test]
    fn type_changes_remove_the_old_kind_first() {
        let pod = entries(&[
            ("was_dir", dir()),
            ("was_dir/x", file(1, Some(1))),
            ("was_file", file(1, Some(1))),
        ]);
        let local = entries(&[("was_dir", file(1, None)), ("was_file", dir())]);
        let plan = diff(&local, &pod, |_| false);
        assert_eq!(plan.rmdir, ["was_dir"]);
        assert_eq!(plan.delete, ["was_dir/x", "was_file"]);
        assert_eq!(plan.upload, ["was_dir"]);
        assert_eq!(plan.mkdir, ["was_file"]);
        // A link replacing a file is a rename over it: no delete.
        let pod = entries(&[("l", file(1, Some(1)))]);
        let link = Entry {
            kind: Kind::Link("x".into()),
            ..file(0, None)
        };
        let plan = diff(&entries(&[("l", link)]), &pod, |_| false);
        assert_eq!((plan.upload.len(), plan.delete.len()), (1, 0));
    }

    #[test]
    fn directories_go_deepest_first() {
        let pod = entries(&[("a", dir()), ("a/b", dir()), ("a/b/c", dir()), ("z", dir())]);
        let plan = diff(&Entries::new(), &pod, |_| false);
        assert_eq!(plan.rmdir, ["a/b/c", "a/b", "z", "a"]);
    }

    #[test]
    fn deletes_are_chunked_and_quoted() {
        let files: Vec<String> = (0..450).map(|i| format!("f{i}.php")).collect();
        let script = delete_script(&files, &["it's a dir".into()]);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines.len(), 5, "three rm chunks, one rmdir, true");
        assert!(lines[0].starts_with("rm -f -- 'f0.php' 'f1.php'"));
        assert_eq!(lines[0].matches(".php").count(), CHUNK_PATHS);
        assert_eq!(lines[2].matches(".php").count(), 50);
        assert_eq!(lines[3], r"rmdir -- 'it'\''s a dir' 2>/dev/null");
        let long: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "x".repeat(1000)))
            .collect();
        assert!(
            delete_script(&long, &[])
                .lines()
                .all(|l| l.len() <= CHUNK_BYTES + 1100)
        );
    }

    #[test]
    fn quoting_survives_sh() {
        let names = ["a b", "it's", "new\nline", "-rf", "$(echo no)", "ü"];
        let script: String = names
            .iter()
            .map(|n| format!("printf '%s\\0' {}\n", quote(n)))
            .collect();
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let printed: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(printed, names);
    }
}
