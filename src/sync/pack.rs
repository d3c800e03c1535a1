//! One batch as one gzip'd tar stream, built on a blocking thread and handed
//! out in chunks while it is built, so reading, compressing and sending overlap.
//!
//! Layout of the stream, extracted into a staging directory in the pod:
//! `files/<path>` for content and new directories, `ctl/del` (journal line
//! of dropped paths), `ctl/delete.sh`, and last `ctl/set` (journal line of
//! new entries) or `ctl/manifest.gz` (a new base that replaces the journal).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::sync::manifest::{COMPACT_AFTER, Change, Entry, Kind, Manifest};
use crate::sync::plan::{Plan, delete_script};

/// Files up to this size are read whole, hashed, and skipped when only their
/// mtime changed; larger ones are streamed.
const READ_WHOLE: u64 = 8 << 20;
/// Bytes per chunk handed to the exec stream.
const CHUNK: usize = 256 << 10;
/// gzip level 1: the wire on a laptop's uplink is what costs, but past
/// level 1 compression costs more CPU time than it saves bytes on loopback-fast links.
const LEVEL: u32 = 1;

/// What a batch did, once the pod has applied it.
#[derive(Debug, Default)]
pub(crate) struct Packed {
    /// The pod's manifest after the batch.
    pub manifest: Manifest,
    /// Content sent: files and links, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Paths left out, one message each (vanished, unreadable).
    pub warnings: Vec<String>,
}

/// Everything the packer needs, owned, for its thread.
pub(crate) struct Batch {
    pub root: PathBuf,
    pub plan: Plan,
    /// The local entries of the plan's paths (from the scan).
    pub local: crate::sync::manifest::Entries,
    /// The pod's manifest before the batch.
    pub pod: Manifest,
    /// Write a new base instead of a journal line (first upload, or compaction).
    pub rebase: bool,
}

impl Batch {
    pub(crate) fn new(
        root: &Path,
        plan: Plan,
        local: &crate::sync::manifest::Entries,
        pod: &Manifest,
    ) -> Self {
        let wanted = plan.upload.iter().chain(&plan.mkdir);
        let local = wanted
            .filter_map(|p| local.get(p).map(|e| (p.clone(), e.clone())))
            .collect();
        let rebase = pod.entries.is_empty() || pod.journal_lines >= COMPACT_AFTER;
        Self {
            root: root.to_owned(),
            plan,
            local,
            pod: pod.clone(),
            rebase,
        }
    }
}

/// Builds the stream into `out`; `progress(bytes)` is called per file sent.
/// Fails only when `out` is closed (the pod stopped reading).
pub(crate) fn pack(
    batch: Batch,
    out: mpsc::Sender<Vec<u8>>,
    progress: impl Fn(u64),
) -> io::Result<Packed> {
    let writer = ChunkWriter {
        out,
        buf: Vec::with_capacity(CHUNK),
    };
    let encoder = flate2::write::GzEncoder::new(writer, flate2::Compression::new(LEVEL));
    let mut tar = tar::Builder::new(encoder);
    let mut packed = Packed::default();
    let dropped = batch.plan.dropped();
    let mut manifest = batch.pod.clone();
    if !dropped.is_empty() {
        let line = Change {
            del: dropped.clone(),
            ..Change::default()
        };
        control(&mut tar, "ctl/del", &line.to_line())?;
        let script = delete_script(&batch.plan.delete, &batch.plan.rmdir);
        control(&mut tar, "ctl/delete.sh", script.as_bytes())?;
        manifest.apply(line);
    }
    let mut set = Change::default();
    for path in &batch.plan.mkdir {
        let Some(entry) = batch.local.get(path) else {
            continue;
        };
        let mut header = header(entry, tar::EntryType::Directory, 0);
        tar.append_data(&mut header, format!("files/{path}"), io::empty())?;
        set.set.insert(path.clone(), entry.clone());
    }
    for path in &batch.plan.upload {
        let Some(entry) = batch.local.get(path) else {
            continue;
        };
        let held = batch.pod.entries.get(path);
        match send(&mut tar, &batch.root, path, entry, held)? {
            Sent::Content(recorded, bytes) => {
                packed.files += 1;
                packed.bytes += bytes;
                progress(bytes);
                set.set.insert(path.clone(), recorded);
            }
            Sent::Touched(recorded) => {
                set.set.insert(path.clone(), recorded);
            }
            Sent::Skipped(warning) => {
                if let Some(warning) = warning {
                    packed.warnings.push(warning);
                }
                // A kind change already dropped the old entry; otherwise the
                // pod keeps what it had, and so does the manifest.
            }
        }
    }
    manifest.apply(Change {
        del: Vec::new(),
        set: set.set.clone(),
    });
    if batch.rebase {
        manifest.journal_lines = 0;
        control(&mut tar, "ctl/manifest.gz", &manifest.to_base())?;
    } else if !set.is_empty() {
        manifest.journal_lines += 1 + usize::from(!dropped.is_empty());
        control(&mut tar, "ctl/set", &set.to_line())?;
    } else if !dropped.is_empty() {
        manifest.journal_lines += 1;
    }
    let encoder = tar.into_inner()?;
    let mut writer = encoder.finish()?;
    writer.flush()?;
    packed.manifest = manifest;
    Ok(packed)
}

enum Sent {
    /// Content sent; the entry to record and the bytes.
    Content(Entry, u64),
    /// Same content as the pod's copy: only the entry changes.
    Touched(Entry),
    /// Not sent; why, if worth saying.
    Skipped(Option<String>),
}

fn send<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    path: &str,
    entry: &Entry,
    held: Option<&Entry>,
) -> io::Result<Sent> {
    let name = format!("files/{path}");
    if let Kind::Link(target) = &entry.kind {
        let mut header = header(entry, tar::EntryType::Symlink, 0);
        tar.append_link(&mut header, &name, target)?;
        return Ok(Sent::Content(entry.clone(), 0));
    }
    let local = root.join(path);
    let mut file = match File::open(&local) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Ok(Sent::Skipped(Some(format!(
                "{path} vanished before it was sent"
            ))));
        }
        Err(err) => {
            return Ok(Sent::Skipped(Some(format!(
                "cannot read {path}: {err}; skipped"
            ))));
        }
    };
    let metadata = file.metadata()?;
    let mut recorded = Entry::from_metadata(Kind::File, &metadata);
    if metadata.len() <= READ_WHOLE {
        let mut content = Vec::with_capacity(metadata.len() as usize);
        if let Err(err) = file.read_to_end(&mut content) {
            return Ok(Sent::Skipped(Some(format!(
                "cannot read {path}: {err}; skipped"
            ))));
        }
        recorded.size = content.len() as u64;
        let hash = xxhash_rust::xxh3::xxh3_64(&content);
        recorded.hash = Some(hash);
        if let Some(held) = held
            && held.kind == Kind::File
            && held.hash == Some(hash)
            && held.size == recorded.size
            && held.mode == recorded.mode
        {
            return Ok(Sent::Touched(recorded));
        }
        let mut header = header(&recorded, tar::EntryType::Regular, recorded.size);
        tar.append_data(&mut header, &name, content.as_slice())?;
        return Ok(Sent::Content(recorded, content.len() as u64));
    }
    // Streamed: exactly the size announced in the header, whatever the file
    // does meanwhile. If it changed, the entry has no hash, so it is sent again.
    let size = metadata.len();
    let mut reader = Exact {
        inner: file,
        left: size,
        hasher: xxhash_rust::xxh3::Xxh3::new(),
        intact: true,
    };
    let mut header = header(&recorded, tar::EntryType::Regular, size);
    tar.append_data(&mut header, &name, &mut reader)?;
    let intact = reader.intact && {
        let mut probe = [0u8; 1];
        matches!(reader.inner.read(&mut probe), Ok(0))
    };
    recorded.hash = intact.then(|| reader.hasher.digest());
    Ok(Sent::Content(recorded, size))
}

fn header(entry: &Entry, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    // The pod's UID extracts, and must be able to change and delete what it
    // gets: owner read-write (and search for directories) always.
    let mode = match kind {
        tar::EntryType::Directory => entry.mode | 0o700,
        tar::EntryType::Symlink => 0o777,
        _ => entry.mode | 0o600,
    };
    header.set_mode(mode & 0o777);
    header.set_mtime(u64::try_from(entry.mtime_ns / 1_000_000_000).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn control<W: Write>(tar: &mut tar::Builder<W>, name: &str, content: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(content.len() as u64);
    header.set_mode(0o600);
    tar.append_data(&mut header, name, content)
}

/// Yields exactly `left` bytes: the file's, then zeros if it shrank.
struct Exact {
    inner: File,
    left: u64,
    hasher: xxhash_rust::xxh3::Xxh3,
    intact: bool,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(0) | Err(_) => {
                self.intact = false;
                buf[..want].fill(0);
                want
            }
            Ok(n) => n,
        };
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hands the stream out in chunks; a closed receiver is a broken pipe.
struct ChunkWriter {
    out: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.out
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the pod stopped reading"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::manifest::Entries;
    use crate::sync::plan::diff;
    use crate::sync::scan::{Excludes, scan};

    /// Packs on this thread and unpacks with the tar crate.
    fn run(batch: Batch) -> (Packed, Vec<(String, Vec<u8>)>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let packed = pack(batch, tx, |_| {}).unwrap();
        let mut stream = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            stream.extend(chunk);
        }
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(stream.as_slice()));
        let entries = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (name, content)
            })
            .collect();
        (packed, entries)
    }

    fn batch_for(root: &Path, pod: &Manifest) -> Batch {
        let local = scan(&Excludes::new(root, &[]).unwrap()).entries;
        let plan = diff(&local, &pod.entries, |p| root.join(p).exists());
        Batch::new(root, plan, &local, pod)
    }

    #[test]
    fn first_upload_sends_everything_and_a_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/empty")).unwrap();
        std::fs::write(dir.path().join("a/x.php"), "<?php echo 1;").unwrap();
        let (packed, entries) = run(batch_for(dir.path(), &Manifest::default()));
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "files/a",
                "files/a/empty",
                "files/a/x.php",
                "ctl/manifest.gz"
            ]
        );
        assert_eq!(entries[2].1, b"<?php echo 1;");
        assert_eq!((packed.files, packed.bytes), (1, 13));
        let base = Manifest::load(&entries[3].1, b"");
        assert_eq!(base.entries, packed.manifest.entries);
        assert!(base.entries["a/x.php"].hash.is_some());
    }

    #[test]
    fn touched_files_are_not_sent_and_deletes_are_journalled_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("same.php"), "same").unwrap();
        std::fs::write(dir.path().join("gone.php"), "x").unwrap();
        let (first, _) = run(batch_for(dir.path(), &Manifest::default()));
        std::fs::remove_file(dir.path().join("gone.php")).unwrap();
        // Same content, new mtime: only the entry changes.
        let file = File::options()
            .write(true)
            .open(dir.path().join("same.php"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5))
            .unwrap();
        let (second, entries) = run(batch_for(dir.path(), &first.manifest));
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ctl/del", "ctl/delete.sh", "ctl/set"]);
        assert_eq!(second.files, 0);
        assert_eq!(entries[0].1, b"{\"del\":[\"gone.php\"]}\n");
        assert_eq!(
            std::str::from_utf8(&entries[1].1).unwrap(),
            "rm -f -- 'gone.php'\ntrue\n"
        );
        assert_eq!(second.manifest.entries["same.php"].mtime_ns, 5_000_000_000);
        assert!(!second.manifest.entries.contains_key("gone.php"));
        assert_eq!(second.manifest.journal_lines, 2);
    }

    #[test]
    fn vanished_files_are_reported_and_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.php"), "x").unwrap();
        let batch = batch_for(dir.path(), &Manifest::default());
        std::fs::remove_file(dir.path().join("a.php")).unwrap();
        let (packed, _) = run(batch);
        assert_eq!(packed.warnings, ["a.php vanished before it was sent"]);
        assert_eq!(packed.manifest.entries, Entries::new());
    }

    #[test]
    fn unreadable_files_are_reported_and_the_rest_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.php"), "x").unwrap();
        std::fs::write(dir.path().join("bad.php"), "x").unwrap();
        let mut batch = batch_for(dir.path(), &Manifest::default());
        // Opens but cannot be read, as a file on a failing disk (tests run
        // as root, for whom permissions make nothing unreadable).
        std::fs::remove_file(dir.path().join("bad.php")).unwrap();
        std::fs::create_dir(dir.path().join("bad.php")).unwrap();
        batch.plan.mkdir.clear();
        let (packed, _) = run(batch);
        assert_eq!(packed.files, 1);
        assert_eq!(packed.warnings.len(), 1, "{:?}", packed.warnings);
        assert!(packed.warnings[0].starts_with("cannot read bad.php: "));
        assert!(packed.manifest.entries.contains_key("ok.php"));
        assert!(!packed.manifest.entries.contains_key("bad.php"));
    }

    #[test]
    fn a_closed_stream_fails_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..64 {
            std::fs::write(dir.path().join(format!("{i}")), vec![i as u8; 64 << 10]).unwrap();
        }
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let err = pack(batch_for(dir.path(), &Manifest::default()), tx, |_| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
