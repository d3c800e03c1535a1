//! What the pod holds, as far as sync knows: one entry per path with its
//! kind, size, mtime, mode and content hash. It lives in the pod, next to
//! the files (`<code dir>/.devenv-sync/`), so a rerun, or a new pod on the
//! same volume, gets only what differs.
//!
//! The invariant every write keeps: the manifest never claims something the
//! pod does not hold. Entries are added only after their files are in
//! place, and removed before the files are deleted; a failure in between
//! leaves the pod with more than the manifest says, which costs a resend
//! and nothing else.
//!
//! On disk: `manifest.gz`, a gzip'd JSON base, plus `journal`, one JSON line
//! per change batch, appended with `>>`. A line cut short by a full disk is
//! ignored on load, which by the invariant is safe.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io::{Read, Write};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// Journal lines after which the next batch rewrites the base.
pub(crate) const COMPACT_AFTER: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    #[serde(rename = "f")]
    File,
    #[serde(rename = "d")]
    Dir,
    /// A symlink and its (relative, inside the tree) target.
    #[serde(rename = "l")]
    Link(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    #[serde(rename = "k")]
    pub kind: Kind,
    #[serde(rename = "s", default)]
    pub size: u64,
    /// Nanoseconds since the epoch, as the local file had it.
    #[serde(rename = "m", default)]
    pub mtime_ns: i64,
    #[serde(rename = "x", default)]
    pub mode: u32,
    /// xxh3 of the content: files only, and only once read.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<u64>,
}

impl Entry {
    pub(crate) fn from_metadata(kind: Kind, metadata: &Metadata) -> Self {
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let size = if kind == Kind::File {
            metadata.len()
        } else {
            0
        };
        Self {
            kind,
            size,
            mtime_ns,
            mode: mode_of(metadata),
            hash: None,
        }
    }

    /// Whether the pod's copy (`self`) still matches the local entry without
    /// reading it: same kind and mode, and for files the same size and mtime.
    pub(crate) fn unchanged(&self, local: &Entry) -> bool {
        match (&self.kind, &local.kind) {
            (Kind::Dir, Kind::Dir) => true,
            (Kind::Link(a), Kind::Link(b)) => a == b,
            (Kind::File, Kind::File) => {
                self.size == local.size
                    && self.mtime_ns == local.mtime_ns
                    && self.mode == local.mode
                    && self.hash.is_some()
            }
            _ => false,
        }
    }
}

#[cfg(unix)]
fn mode_of(metadata: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_of(metadata: &Metadata) -> u32 {
    if metadata.is_dir() { 0o755 } else { 0o644 }
}

/// Path -> entry, paths relative to the code directory with `/` separators.
pub(crate) type Entries = BTreeMap<String, Entry>;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Manifest {
    pub entries: Entries,
    /// Journal lines on top of the base, to know when to compact.
    pub journal_lines: usize,
}

#[derive(Serialize, Deserialize)]
struct Base {
    v: u32,
    entries: Entries,
}

/// One journal line: paths dropped, then entries added or replaced.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Change {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub del: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: Entries,
}

impl Change {
    pub(crate) fn is_empty(&self) -> bool {
        self.del.is_empty() && self.set.is_empty()
    }

    /// The journal line, newline-terminated.
    pub(crate) fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("entries encode");
        line.push(b'\n');
        line
    }
}

impl Manifest {
    /// From the base (gzip'd JSON; empty when there is none) and the journal.
    /// An unreadable base means starting over (a full upload); unreadable
    /// journal lines are skipped.
    pub(crate) fn load(base: &[u8], journal: &[u8]) -> Self {
        let mut manifest = Manifest::default();
        if !base.is_empty() {
            let mut text = Vec::new();
            let decoded = flate2::read::GzDecoder::new(base).read_to_end(&mut text);
            match decoded
                .ok()
                .and_then(|_| serde_json::from_slice::<Base>(&text).ok())
            {
                Some(parsed) if parsed.v == 1 => manifest.entries = parsed.entries,
                _ => return Manifest::default(),
            }
        } else if !journal.is_empty() {
            // A journal without its base belongs to a base that is gone.
            return Manifest::default();
        }
        for line in journal.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(change) = serde_json::from_slice::<Change>(line) {
                manifest.apply(change);
                manifest.journal_lines += 1;
            }
        }
        manifest
    }

    pub(crate) fn apply(&mut self, change: Change) {
        for path in change.del {
            self.entries.remove(&path);
        }
        self.entries.extend(change.set);
    }

    /// The gzip'd base that replaces base and journal.
    pub(crate) fn to_base(&self) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        serde_json::to_writer(
            &mut encoder,
            &Base {
                v: 1,
                entries: self.entries.clone(),
            },
        )
        .expect("entries encode");
        encoder
            .flush()
            .and_then(|_| encoder.finish())
            .expect("writing to memory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn file(size: u64, mtime_ns: i64, hash: u64) -> Entry {
        Entry {
            kind: Kind::File,
            size,
            mtime_ns,
            mode: 0o644,
            hash: Some(hash),
        }
    }

    #[test]
    fn base_and_journal_replay_in_order() {
        let mut manifest = Manifest::default();
        manifest.entries.insert("a.php".into(), file(1, 1, 11));
        manifest.entries.insert("b.php".into(), file(2, 2, 22));
        let base = manifest.to_base();
        let mut journal = Change {
            del: vec!["a.php".into()],
            set: Entries::new(),
        }
        .to_line();
        journal.extend(
            Change {
                del: vec![],
                set: [("c\nd.php".to_owned(), file(3, 3, 33))].into(),
            }
            .to_line(),
        );
        // A line cut short by a full disk.
        journal.extend(b"{\"set\":{\"e.php\":{\"k\":");
        let loaded = Manifest::load(&base, &journal);
        let names: Vec<&str> = loaded.entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["b.php", "c\nd.php"]);
        assert_eq!(loaded.journal_lines, 2);
    }

    #[test]
    fn missing_or_broken_bases_mean_a_full_upload() {
        assert_eq!(Manifest::load(b"", b""), Manifest::default());
        assert_eq!(Manifest::load(b"not gzip", b""), Manifest::default());
        let orphan = Change {
            del: vec![],
            set: [("a".to_owned(), file(1, 1, 1))].into(),
        }
        .to_line();
        assert_eq!(Manifest::load(b"", &orphan), Manifest::default());
    }

    #[test]
    fn unchanged_needs_a_hash_for_files() {
        let pod = file(10, 5, 1);
        assert!(pod.unchanged(&Entry {
            hash: None,
            ..pod.clone()
        }));
        assert!(!pod.unchanged(&Entry {
            mtime_ns: 6,
            ..pod.clone()
        }));
        assert!(!pod.unchanged(&Entry {
            mode: 0o755,
            ..pod.clone()
        }));
        let unhashed = Entry {
            hash: None,
            ..pod.clone()
        };
        assert!(!unhashed.unchanged(&pod), "a file never read is resent");
        let dir = Entry {
            kind: Kind::Dir,
            ..file(0, 0, 0)
        };
        assert!(!dir.unchanged(&pod));
    }
}
