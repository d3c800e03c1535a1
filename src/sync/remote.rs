//! The pod side: POSIX shell scripts run through exec (`sh -c`), using the
//! container's own `sh`, `tar`, `mv`, `cp` and `rm`. Nothing is copied in,
//! so the same steps work on any architecture and under Pod Security
//! `restricted`. Values reach the scripts as positional arguments, never
//! spliced into their text.
//!
//! The lock is a directory (`mkdir` is atomic) in the code directory's
//! `.devenv-sync/`, holding the owner's token, host, pid and a heartbeat
//! refreshed every few seconds. A lock whose heartbeat stopped (a killed
//! sync) expires. It needs nothing beyond the `create pods/exec` that sync
//! needs anyway, where a Lease would need RBAC on coordination.k8s.io, and
//! it is scoped to exactly what it protects: the files in that pod.

use std::time::Duration;

use kube::api::AttachParams;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::cluster::{Cluster, exec};
use crate::sync::SyncError;
use crate::sync::manifest::Manifest;

/// How often the lock's heartbeat is refreshed, and when a silent lock is stale.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(10);
const STALE_AFTER_SECS: u64 = 45;

/// The dev pod sync writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub container: String,
    /// The code volume's mount path.
    pub code_dir: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.code_dir)
    }
}

/// kube's pipes between the exec stream and us hold 1 KiB by default, which
/// cut an upload into 1 KiB WebSocket messages, each flushed on its own
/// through the API server: the initial upload of 10,000 files took 1.3-1.9 s
/// on the test bed, now 1.0-1.1 s. (kube reads at most 4 KiB per message.)
const EXEC_PIPE: usize = 256 << 10;

/// Checks the tools and the code directory, and prints the manifest: `ok`,
/// the base's length in bytes, the base, then the journal. With `$5 = lock`
/// it also takes the lock and clears a staging directory left by a killed
/// sync; with `peek` it takes nothing, but is refused as well while another
/// sync holds the lock (a `--once` that finds nothing to send needs no lock,
/// and no second command to give it back).
const PREPARE: &str = r#"
d=$1 m="$1/.devenv-sync" stale=$4 now=$(date +%s)
command -v tar >/dev/null 2>&1 || exit 90
if tar --version 2>/dev/null | grep -q GNU && ! command -v gzip >/dev/null 2>&1; then exit 91; fi
[ -d "$d" ] || exit 92
held() {
  owner=$(cat "$m/lock/owner" 2>/dev/null)
  beat=$(printf '%s\n' "$owner" | cut -d' ' -f2)
  case "$beat" in ''|*[!0-9]*) beat=0;; esac
  [ $((now - beat)) -lt "$stale" ] && printf '%s %s\n' "$now" "$owner"
}
if [ "$5" = peek ]; then
  if [ -d "$m/lock" ] && held; then exit 94; fi
else
  mkdir -p "$m" 2>/dev/null && [ -w "$d" ] && [ -w "$m" ] || exit 93
  if ! mkdir "$m/lock" 2>/dev/null; then
    held && exit 94
    mv "$m/lock" "$m/lock.stale.$$" 2>/dev/null && rm -rf "$m/lock.stale.$$"
    mkdir "$m/lock" 2>/dev/null || { printf '%s %s\n' "$now" "$(cat "$m/lock/owner" 2>/dev/null)"; exit 94; }
  fi
  printf '%s %s %s\n' "$2" "$now" "$3" > "$m/lock/owner" || exit 93
  rm -rf "$m/staging"
fi
echo ok
if [ -f "$m/manifest.gz" ]; then wc -c < "$m/manifest.gz"; cat "$m/manifest.gz"; else echo 0; fi
cat "$m/journal" 2>/dev/null
exit 0
"#;

/// Applies one batch read from stdin. Extracts everything into staging
/// first: a full disk fails there, and staging is removed, so nothing in the
/// code directory or the manifest changes. Then: journal the dropped paths,
/// delete them, move the new content into place (a rename per top-level
/// entry, hard links to merge into existing directories), and journal the
/// new entries last. With `$4 = release`, the last batch of a `--once` gives
/// the lock back as it ends.
const APPLY: &str = r#"
d=$1 m="$1/.devenv-sync" s="$1/.devenv-sync/staging"
case "$(cat "$m/lock/owner" 2>/dev/null)" in "$2 "*) ;; *) exit 75;; esac
rm -rf "$s" && mkdir "$s" || exit 73
if ! tar -xzf - -C "$s"; then cd /; rm -rf "$s"; exit 74; fi
cd "$s" || exit 73
if [ -f ctl/del ]; then
  cat ctl/del >> "$m/journal" || { rm -rf "$s"; exit 76; }
  (cd "$d" && . "$s/ctl/delete.sh") || exit 77
fi
if [ -d files ]; then
  cd files || exit 73
  for e in * .[!.]* ..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    if [ -d "$e" ] && [ ! -L "$e" ] && [ -d "$d/$e" ] && [ ! -L "$d/$e" ]; then
      cp -RPlf "./$e" "$d/" || exit 78
    else
      mv -f "./$e" "$d/" || exit 78
    fi
  done
  cd "$s"
fi
if [ -f ctl/manifest.gz ]; then
  mv -f ctl/manifest.gz "$m/manifest.gz" && : > "$m/journal" || exit 76
elif [ -f ctl/set ]; then
  cat ctl/set >> "$m/journal" || exit 76
fi
cd "$d" && rm -rf "$s"
[ "$4" = release ] && rm -rf "$m/lock"
exit 0
"#;

const HEARTBEAT_SCRIPT: &str = r#"
m="$1/.devenv-sync"
case "$(cat "$m/lock/owner" 2>/dev/null)" in "$2 "*) ;; *) exit 75;; esac
printf '%s %s %s\n' "$2" "$(date +%s)" "$3" > "$m/lock/owner.new" && mv -f "$m/lock/owner.new" "$m/lock/owner"
"#;

const RELEASE: &str = r#"
m="$1/.devenv-sync"
case "$(cat "$m/lock/owner" 2>/dev/null)" in "$2 "*) rm -rf "$m/lock";; esac
exit 0
"#;

/// What a script left behind.
#[derive(Debug)]
struct Output {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Whether reading the pod's manifest takes the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    Lock,
    /// Only look, for a `--once` that may find nothing to send.
    Peek,
}

/// One sync's hold on one pod.
pub(crate) struct Remote {
    cluster: Cluster,
    pub target: Target,
    token: String,
    /// `<host> <pid>`, shown to a second sync that finds the lock taken.
    owner: String,
}

impl Remote {
    /// `cluster` should be a streaming one: an upload can outlast any read timeout.
    pub(crate) fn new(cluster: Cluster, target: Target, token: &str, owner: &str) -> Self {
        Self {
            cluster,
            target,
            token: token.to_owned(),
            owner: owner.to_owned(),
        }
    }

    /// Reads what the pod holds; with [`Hold::Lock`], takes the lock first.
    pub(crate) async fn prepare(&self, hold: Hold) -> Result<Manifest, SyncError> {
        let stale = STALE_AFTER_SECS.to_string();
        let mode = match hold {
            Hold::Lock => "lock",
            Hold::Peek => "peek",
        };
        let out = self.run(PREPARE, &[&stale, mode], None).await?;
        let pod = self.target.name.clone();
        let dir = self.target.code_dir.clone();
        match out.code {
            0 => parse_manifest(&out.stdout).ok_or_else(|| SyncError::Failed {
                pod,
                what: "reading the manifest".into(),
                detail: "unexpected output".into(),
            }),
            90 | 127 => Err(SyncError::NoTar { pod }),
            91 => Err(SyncError::NoGzip { pod }),
            92 => Err(SyncError::NoCodeDir { pod, dir }),
            93 => Err(SyncError::NotWritable { pod, dir }),
            94 => Err(locked(pod, &String::from_utf8_lossy(&out.stdout))),
            code => Err(failure(pod, "preparing the pod", code, &out.stderr)),
        }
    }

    /// Sends one batch (the tar.gz chunks on `stream`) and applies it; with
    /// `release`, the lock is given back as the batch ends.
    pub(crate) async fn apply(
        &self,
        stream: mpsc::Receiver<Vec<u8>>,
        release: bool,
    ) -> Result<(), SyncError> {
        let then = if release { "release" } else { "keep" };
        let out = self.run(APPLY, &[then], Some(stream)).await?;
        let pod = self.target.name.clone();
        if out.stderr.contains("No space left on device") {
            return Err(SyncError::DiskFull {
                pod,
                dir: self.target.code_dir.clone(),
            });
        }
        match out.code {
            0 => {
                if !out.stderr.trim().is_empty() {
                    for line in out.stderr.lines() {
                        eprintln!("Warning: in pod {pod}: {line}");
                    }
                }
                Ok(())
            }
            75 => Err(SyncError::LockLost { pod }),
            74 => Err(failure(pod, "extracting the stream", 74, &out.stderr)),
            76 => Err(failure(pod, "writing the manifest", 76, &out.stderr)),
            77 => Err(failure(pod, "deleting files", 77, &out.stderr)),
            78 => Err(failure(pod, "moving files into place", 78, &out.stderr)),
            code => Err(failure(pod, "applying a batch", code, &out.stderr)),
        }
    }

    /// Refreshes the lock's heartbeat; fails if another sync took it over.
    pub(crate) async fn heartbeat(&self) -> Result<(), SyncError> {
        let out = self.run(HEARTBEAT_SCRIPT, &[], None).await?;
        match out.code {
            0 => Ok(()),
            75 => Err(SyncError::LockLost {
                pod: self.target.name.clone(),
            }),
            code => Err(failure(
                self.target.name.clone(),
                "refreshing the lock",
                code,
                &out.stderr,
            )),
        }
    }

    /// Gives the lock back (best effort: a lock left behind expires).
    pub(crate) async fn release(&self) {
        if let Err(err) = self.run(RELEASE, &[], None).await {
            tracing::debug!("releasing the lock: {err}");
        }
    }

    async fn run(
        &self,
        script: &str,
        extra: &[&str],
        stdin: Option<mpsc::Receiver<Vec<u8>>>,
    ) -> Result<Output, SyncError> {
        let target = &self.target;
        let mut command: Vec<&str> = vec![
            "sh",
            "-c",
            script,
            "devenv-sync",
            &target.code_dir,
            &self.token,
            &self.owner,
        ];
        command.extend_from_slice(extra);
        let params = AttachParams::default()
            .container(target.container.clone())
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true)
            .max_stdin_buf_size(EXEC_PIPE)
            .max_stdout_buf_size(EXEC_PIPE);
        let mut attached = exec::exec(
            &self.cluster,
            &target.namespace,
            &target.name,
            command,
            &params,
        )
        .await
        .map_err(|err| SyncError::Api(Box::new(err)))?;
        let writer = attached.stdin();
        let send = async move {
            let (Some(mut writer), Some(mut stream)) = (writer, stdin) else {
                return;
            };
            while let Some(chunk) = stream.recv().await {
                if writer.write_all(&chunk).await.is_err() {
                    // The pod stopped reading; dropping the stream stops the packer.
                    return;
                }
            }
            writer.shutdown().await.ok();
        };
        let mut stdout = attached.stdout();
        let mut stderr = attached.stderr();
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(out) = stdout.as_mut() {
                out.read_to_end(&mut buf).await.ok();
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(err) = stderr.as_mut() {
                err.read_to_end(&mut buf).await.ok();
            }
            buf
        };
        let status = attached.take_status();
        let ((), stdout, stderr) = tokio::join!(send, read_out, read_err);
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let Some(status) = status else {
            return Err(SyncError::Stream {
                pod: target.name.clone(),
            });
        };
        Ok(Output {
            code: exec::exit_code(Some(&status)),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

/// `ok\n<length>\n<base bytes><journal>` from [`PREPARE`].
fn parse_manifest(out: &[u8]) -> Option<Manifest> {
    let rest = out.strip_prefix(b"ok\n")?;
    let newline = rest.iter().position(|b| *b == b'\n')?;
    let length: usize = std::str::from_utf8(&rest[..newline])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = &rest[newline + 1..];
    let base = rest.get(..length)?;
    Some(Manifest::load(base, &rest[length..]))
}

/// `<now> <token> <heartbeat> <host> <pid>` from a refused [`PREPARE`].
fn locked(pod: String, line: &str) -> SyncError {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let holder = match (fields.get(3), fields.get(4)) {
        (Some(host), Some(pid)) => format!("from host {host}, pid {pid}"),
        _ => "from another machine".to_owned(),
    };
    let seen = match (number(0), number(2)) {
        (Some(now), Some(beat)) => format!(", seen {}s ago", now.saturating_sub(beat)),
        _ => String::new(),
    };
    SyncError::Locked {
        pod,
        holder: format!("{holder}{seen}"),
        expires: STALE_AFTER_SECS,
    }
}

fn failure(pod: String, what: &str, code: i32, stderr: &str) -> SyncError {
    let detail = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map_or_else(|| format!("exit code {code}"), str::to_owned);
    SyncError::Failed {
        pod,
        what: what.to_owned(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::manifest::{Change, Entry, Kind};

    #[test]
    fn manifests_arrive_after_a_length_line() {
        let mut manifest = Manifest::default();
        manifest.entries.insert(
            "a".into(),
            Entry {
                kind: Kind::Dir,
                size: 0,
                mtime_ns: 0,
                mode: 0o755,
                hash: None,
            },
        );
        let base = manifest.to_base();
        let mut out = format!("ok\n  {}\n", base.len()).into_bytes();
        out.extend(&base);
        out.extend(
            Change {
                del: vec!["a".into()],
                ..Change::default()
            }
            .to_line(),
        );
        let parsed = parse_manifest(&out).unwrap();
        assert!(parsed.entries.is_empty());
        assert_eq!(parsed.journal_lines, 1);
        assert_eq!(parse_manifest(b"ok\n0\n").unwrap(), Manifest::default());
        assert_eq!(parse_manifest(b"garbage"), None);
        assert_eq!(parse_manifest(b"ok\n99\nshort"), None);
    }

    #[test]
    fn a_refused_lock_names_its_holder() {
        let err = locked("dev-1".into(), "1000 tok 990 laptop 4242\n");
        assert_eq!(
            err.to_string(),
            "another sync is writing to pod dev-1 (from host laptop, pid 4242, seen 10s ago): \
             stop it first; a lock whose sync was killed expires after 45s"
        );
    }

    /// The scripts against the local sh, tar, cp and mv: what the pod runs.
    fn sh(script: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("devenv-sync")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn the_lock_refuses_a_second_sync_until_released_or_stale() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let first = sh(PREPARE, &[d, "one", "host-a 1", "45"], b"");
        assert_eq!(first.status.code(), Some(0), "{first:?}");
        assert!(first.stdout.starts_with(b"ok\n0\n"));
        let second = sh(PREPARE, &[d, "two", "host-b 2", "45"], b"");
        assert_eq!(second.status.code(), Some(94));
        assert!(String::from_utf8_lossy(&second.stdout).contains("one "));
        // The holder's heartbeat works, the other's is refused.
        assert_eq!(
            sh(HEARTBEAT_SCRIPT, &[d, "one", "host-a 1"], b"")
                .status
                .code(),
            Some(0)
        );
        assert_eq!(
            sh(HEARTBEAT_SCRIPT, &[d, "two", "host-b 2"], b"")
                .status
                .code(),
            Some(75)
        );
        // Released only by its holder.
        sh(RELEASE, &[d, "two", "host-b 2"], b"");
        assert_eq!(
            sh(PREPARE, &[d, "two", "host-b 2", "45"], b"")
                .status
                .code(),
            Some(94)
        );
        // With a zero expiry, the first lock counts as stale and is taken over.
        let takeover = sh(PREPARE, &[d, "two", "host-b 2", "0"], b"");
        assert_eq!(takeover.status.code(), Some(0), "{takeover:?}");
        assert_eq!(
            sh(HEARTBEAT_SCRIPT, &[d, "one", "host-a 1"], b"")
                .status
                .code(),
            Some(75)
        );
    }

    #[test]
    fn a_peek_takes_no_lock_and_a_last_batch_gives_the_lock_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let lock = dir.path().join(".devenv-sync/lock");
        let peek = sh(PREPARE, &[d, "one", "host-a 1", "45", "peek"], b"");
        assert_eq!(peek.status.code(), Some(0), "{peek:?}");
        assert!(peek.stdout.starts_with(b"ok\n0\n"));
        assert!(!lock.exists());
        let locked = sh(PREPARE, &[d, "two", "host-b 2", "45", "lock"], b"");
        assert_eq!(locked.status.code(), Some(0), "{locked:?}");
        // While another sync holds the lock, a peek is refused as a lock would be.
        let refused = sh(PREPARE, &[d, "one", "host-a 1", "45", "peek"], b"");
        assert_eq!(refused.status.code(), Some(94));
        assert!(String::from_utf8_lossy(&refused.stdout).contains(" two "));
        let stale = sh(PREPARE, &[d, "one", "host-a 1", "0", "peek"], b"");
        assert_eq!(stale.status.code(), Some(0), "{stale:?}");
        assert!(lock.exists(), "a peek leaves even a stale lock alone");
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        tar.append_dir("files", dir.path()).unwrap();
        let empty = tar.into_inner().unwrap().finish().unwrap();
        let kept = sh(APPLY, &[d, "two", "host-b 2", "keep"], &empty);
        assert_eq!(kept.status.code(), Some(0), "{kept:?}");
        assert!(lock.exists());
        let released = sh(APPLY, &[d, "two", "host-b 2", "release"], &empty);
        assert_eq!(released.status.code(), Some(0), "{released:?}");
        assert!(!lock.exists());
    }

    #[test]
    fn a_batch_is_applied_and_a_broken_stream_changes_nothing() {
        use crate::sync::pack::{Batch, pack};
        use crate::sync::plan::diff;
        use crate::sync::scan::{Excludes, scan};
        let local = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(local.path().join("app/sub")).unwrap();
        std::fs::write(local.path().join("app/sub/x.php"), "x").unwrap();
        std::fs::write(local.path().join("top.php"), "t").unwrap();
        std::fs::write(local.path().join("-rf"), "dash").unwrap();
        let pod = tempfile::tempdir().unwrap();
        let d = pod.path().to_str().unwrap();
        std::fs::create_dir_all(pod.path().join("app/from-pod")).unwrap();
        assert_eq!(
            sh(PREPARE, &[d, "t", "h 1", "45"], b"").status.code(),
            Some(0)
        );
        let stream = |manifest: &Manifest| {
            let entries = scan(&Excludes::new(local.path(), &[]).unwrap()).entries;
            let plan = diff(&entries, &manifest.entries, |_| false);
            let (tx, mut rx) = mpsc::channel(1024);
            let packed = pack(
                Batch::new(local.path(), plan, &entries, manifest),
                tx,
                |_| {},
            )
            .unwrap();
            let mut bytes = Vec::new();
            while let Ok(chunk) = rx.try_recv() {
                bytes.extend(chunk);
            }
            (packed, bytes)
        };
        let (packed, bytes) = stream(&Manifest::default());
        // Cut short: tar fails, and neither the code nor the manifest changes.
        let broken = sh(APPLY, &[d, "t", "h 1"], &bytes[..bytes.len() / 2]);
        assert_eq!(broken.status.code(), Some(74), "{broken:?}");
        assert!(!pod.path().join("top.php").exists());
        assert!(!pod.path().join(".devenv-sync/staging").exists());
        assert!(!pod.path().join(".devenv-sync/manifest.gz").exists());
        let applied = sh(APPLY, &[d, "t", "h 1"], &bytes);
        assert_eq!(applied.status.code(), Some(0), "{applied:?}");
        assert_eq!(
            std::fs::read(pod.path().join("app/sub/x.php")).unwrap(),
            b"x"
        );
        assert!(
            pod.path().join("app/from-pod").is_dir(),
            "merged, not replaced"
        );
        let read = sh(PREPARE, &[d, "t2", "h 2", "0"], b"");
        let held = parse_manifest(&read.stdout).unwrap();
        assert_eq!(held.entries, packed.manifest.entries);
        // A delete and an edit, applied as a journal line each.
        std::fs::remove_dir_all(local.path().join("app/sub")).unwrap();
        std::fs::write(local.path().join("top.php"), "edited").unwrap();
        let (packed, bytes) = stream(&held);
        let applied = sh(APPLY, &[d, "t2", "h 2"], &bytes);
        assert_eq!(applied.status.code(), Some(0), "{applied:?}");
        assert!(!pod.path().join("app/sub/x.php").exists());
        assert!(!pod.path().join("app/sub").exists());
        assert_eq!(
            std::fs::read(pod.path().join("top.php")).unwrap(),
            b"edited"
        );
        let held = parse_manifest(&sh(PREPARE, &[d, "t3", "h 3", "0"], b"").stdout).unwrap();
        assert_eq!(held.entries, packed.manifest.entries);
        assert_eq!(held.journal_lines, 2);
        // Another holder's batch is refused.
        assert_eq!(sh(APPLY, &[d, "t2", "h 2"], &bytes).status.code(), Some(75));
    }
}
