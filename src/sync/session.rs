//! Runs a sync: finds the dev pod, uploads what it lacks, then follows
//! local changes and the pod itself. When the pod is replaced, the new one
//! is brought up to date from its own manifest (none on a fresh emptyDir,
//! the old one on a persistent claim).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::ProgressBar;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::cluster::stack;
use crate::cluster::{Cluster, Scope};
use crate::error::{Error, Result};
use crate::forward::pods::is_ready;
use crate::sync::manifest::Manifest;
use crate::sync::pack::{Batch, pack};
use crate::sync::plan::{Plan, diff};
use crate::sync::remote::{HEARTBEAT, Hold, Remote, Target};
use crate::sync::scan::{Excludes, Scan, scan};
use crate::sync::{SyncError, watch as fs_watch};
use crate::{labels, progress, render, spec};

pub(crate) struct Options {
    /// The local tree (it exists; canonical).
    pub root: PathBuf,
    /// devenv.yaml's `sync.excludes`.
    pub excludes: Vec<String>,
    pub stack: Option<String>,
    /// Upload and exit.
    pub once: bool,
}

/// Runs until Ctrl-C (or, with `once`, until the pod matches the tree).
pub(crate) async fn run(cluster: &Cluster, options: Options) -> Result<()> {
    let excludes = Excludes::new(&options.root, &options.excludes).map_err(Error::Other)?;
    let pods =
        stack::component_pods(cluster, options.stack.as_deref(), spec::DEV_COMPONENT).await?;
    let first = &pods[0];
    let namespace = first.namespace().unwrap_or_default();
    let stack_name = first
        .labels()
        .get(labels::STACK)
        .cloned()
        .unwrap_or_default();
    let selector = format!(
        "{},{}={}",
        labels::stack_selector(&stack_name),
        labels::COMPONENT,
        spec::DEV_COMPONENT
    );
    let streaming = cluster.streaming()?;
    let api = streaming.api::<Pod>(&Scope::Namespace(namespace.clone()));
    let mut pods = follow(api, selector);
    // Watching starts before the first scan, so nothing saved during the
    // upload is missed.
    let mut watcher = if options.once {
        None
    } else {
        Some(fs_watch::watch(&options.root).map_err(Error::Other)?)
    };
    let token = token();
    let owner = format!("{} {}", hostname(), std::process::id());
    let mut session = Session {
        root: options.root.clone(),
        excludes,
        warned: BTreeSet::new(),
    };
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut replaced_from: Option<String> = None;
    loop {
        let target = tokio::select! {
            target = ready_target(&mut pods, &namespace) => target,
            _ = &mut interrupted => return Ok(()),
        };
        let target = target?;
        if let Some(old) = replaced_from.take() {
            eprintln!(
                "dev pod {old} was replaced by {}; sending what it lacks",
                target.name
            );
        }
        let remote = Arc::new(Remote::new(
            streaming.clone(),
            target.clone(),
            &token,
            &owner,
        ));
        let outcome = tokio::select! {
            outcome = session.serve(&remote, &mut pods, watcher.as_mut(), options.once) => outcome,
            _ = &mut interrupted => Ok(Served::Interrupted),
        };
        match outcome {
            Ok(Served::Done { holding }) => {
                if holding {
                    remote.release().await;
                }
                return Ok(());
            }
            Ok(Served::Interrupted) => {
                remote.release().await;
                return if options.once {
                    Err(Error::Other(
                        "interrupted before the pod was up to date".into(),
                    ))
                } else {
                    Ok(())
                };
            }
            Ok(Served::Replaced) => replaced_from = Some(target.name.clone()),
            Err(err) => {
                if may_be_replacement(&err) && gone_soon(&mut pods, &target).await {
                    tracing::debug!("pod {} went away: {err}", target.name);
                    replaced_from = Some(target.name.clone());
                    continue;
                }
                if !matches!(err, SyncError::Locked { .. } | SyncError::LockLost { .. }) {
                    remote.release().await;
                }
                return Err(err.into());
            }
        }
    }
}

enum Served {
    /// `--once`: the pod matches the tree; the lock may still be ours.
    Done {
        holding: bool,
    },
    Interrupted,
    /// The pod stopped being the Ready dev pod.
    Replaced,
}

/// The first batch: the scan made while the pod was asked for its
/// manifest, and whether the batch gives the lock back (`--once`).
struct First {
    scanned: Scan,
    release: bool,
}

struct Session {
    root: PathBuf,
    excludes: Excludes,
    /// Warnings already shown: an unreadable file is reported once, not per batch.
    warned: BTreeSet<String>,
}

impl Session {
    /// Brings one pod up to date, then keeps it so.
    async fn serve(
        &mut self,
        remote: &Arc<Remote>,
        pods: &mut Pods,
        watcher: Option<&mut fs_watch::Watcher>,
        once: bool,
    ) -> Result<Served, SyncError> {
        // The local tree is scanned while the pod reports what it holds. A
        // `--once` only looks first: when nothing differs, it is done without
        // taking the lock, and without a command to give it back.
        let hold = if once { Hold::Peek } else { Hold::Lock };
        let (manifest, scanned) = tokio::join!(remote.prepare(hold), self.scan_local(remote));
        let (mut manifest, scanned) = (manifest?, scanned?);
        let target = &remote.target;
        eprintln!("Syncing {} to pod {}", self.root.display(), target);
        if once {
            if self.plan(&scanned, &manifest).is_empty() {
                self.warn(&scanned.warnings);
                self.up_to_date(remote, &scanned);
                return Ok(Served::Done { holding: false });
            }
            manifest = remote.prepare(Hold::Lock).await?;
        }
        let (beat_error_tx, mut beat_error) = mpsc::channel(1);
        let beating = Arc::clone(remote);
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Err(err) = beating.heartbeat().await {
                    let _ = beat_error_tx.send(err).await;
                    return;
                }
            }
        });
        let _stop_heartbeat = AbortOnDrop(heartbeat);
        let first = First {
            scanned,
            release: once,
        };
        let released = self.batch(remote, pods, &mut manifest, Some(first)).await?;
        let Some(watcher) = watcher else {
            return Ok(Served::Done { holding: !released });
        };
        eprintln!("Watching for changes (Ctrl-C to stop)");
        loop {
            tokio::select! {
                change = watcher.changes.recv() => {
                    if change.is_none() {
                        return Err(SyncError::Failed {
                            pod: target.name.clone(),
                            what: "watching local files".into(),
                            detail: "the watcher stopped".into(),
                        });
                    }
                    // Everything that arrived meanwhile is part of this batch.
                    while watcher.changes.try_recv().is_ok() {}
                    self.batch(remote, pods, &mut manifest, None).await?;
                }
                changed = pods.changed() => {
                    if changed.is_err() || pod_is_gone(pods, target) {
                        return Ok(Served::Replaced);
                    }
                }
                Some(err) = beat_error.recv() => return Err(err),
            }
        }
    }

    /// One scan (unless `first` brings it), diff and upload. The first batch
    /// shows a progress bar and a summary. Returns whether the pod gave the
    /// lock back with it (`first.release`, and something was sent).
    async fn batch(
        &mut self,
        remote: &Remote,
        pods: &mut Pods,
        manifest: &mut Manifest,
        first: Option<First>,
    ) -> Result<bool, SyncError> {
        let started = Instant::now();
        let release = first.as_ref().is_some_and(|first| first.release);
        let (first, scan) = match first {
            Some(first) => (true, first.scanned),
            None => (false, self.scan_local(remote).await?),
        };
        self.warn(&scan.warnings);
        let plan = self.plan(&scan, manifest);
        if plan.is_empty() {
            if first {
                self.up_to_date(remote, &scan);
            }
            return Ok(false);
        }
        let deleted = plan.delete.len() + plan.rmdir.len();
        let total: u64 = plan
            .upload
            .iter()
            .filter_map(|p| scan.entries.get(p))
            .map(|e| e.size)
            .sum();
        let files = plan.upload.len();
        let bar = progress_bar(first, total, files);
        let batch = Batch::new(&self.root, plan, &scan.entries, manifest);
        let (sender, stream) = mpsc::channel(16);
        let counter = bar.clone();
        let packer =
            tokio::task::spawn_blocking(move || pack(batch, sender, |bytes| counter.inc(bytes)));
        // A deleted pod's exec stream can stay open until its container is
        // killed; the pod watch knows sooner.
        let applied = tokio::select! {
            applied = remote.apply(stream, release) => applied,
            () = wait_gone(pods, &remote.target) => Err(SyncError::Stream {
                pod: remote.target.name.clone(),
            }),
        };
        let packed = packer.await.map_err(|err| internal(remote, err))?;
        bar.finish_and_clear();
        applied?;
        let packed = packed.map_err(|err| SyncError::Failed {
            pod: remote.target.name.clone(),
            what: "building the stream".into(),
            detail: err.to_string(),
        })?;
        self.warn(&packed.warnings);
        *manifest = packed.manifest;
        let elapsed = started.elapsed();
        let summary = format!(
            "sent {} file{} ({}), deleted {deleted}, in {}",
            packed.files,
            if packed.files == 1 { "" } else { "s" },
            bytes(packed.bytes),
            millis(elapsed)
        );
        if first {
            eprintln!("Synced to pod {}: {summary}", remote.target.name);
        } else {
            tracing::info!("{summary}");
        }
        Ok(release)
    }

    /// The local tree, walked on a blocking thread.
    async fn scan_local(&self, remote: &Remote) -> Result<Scan, SyncError> {
        let excludes = self.excludes.clone();
        tokio::task::spawn_blocking(move || scan(&excludes))
            .await
            .map_err(|err| internal(remote, err))
    }

    /// What the pod lacks of the scanned tree.
    fn plan(&self, scan: &Scan, manifest: &Manifest) -> Plan {
        diff(&scan.entries, &manifest.entries, |path| {
            self.root.join(path).symlink_metadata().is_ok()
        })
    }

    fn up_to_date(&self, remote: &Remote, scan: &Scan) {
        eprintln!(
            "Pod {} is up to date ({} entries)",
            remote.target.name,
            scan.entries.len()
        );
    }

    fn warn(&mut self, warnings: &[String]) {
        for warning in warnings {
            if self.warned.insert(warning.clone()) {
                eprintln!("Warning: {warning}");
            }
        }
    }
}

fn internal(remote: &Remote, err: tokio::task::JoinError) -> SyncError {
    SyncError::Failed {
        pod: remote.target.name.clone(),
        what: "a sync task".into(),
        detail: err.to_string(),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn progress_bar(first: bool, total: u64, files: usize) -> ProgressBar {
    if !first || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    progress::bytes(total, format!("{files} files"))
}

/// Errors a vanished pod can cause (as opposed to what the pod says about itself).
fn may_be_replacement(err: &SyncError) -> bool {
    match err {
        SyncError::Api(err) => !err.is_forbidden(),
        SyncError::Stream { .. } | SyncError::Failed { .. } => true,
        _ => false,
    }
}

/// Whether `target` stops being the Ready dev pod within a few seconds: the
/// pod watch can lag behind the exec stream that broke.
async fn gone_soon(pods: &mut Pods, target: &Target) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if pod_is_gone(pods, target) {
            return true;
        }
        match tokio::time::timeout_at(deadline, pods.changed()).await {
            Ok(Ok(())) => {}
            _ => return false,
        }
    }
}

/// Returns once `target` is no longer the Ready dev pod.
async fn wait_gone(pods: &mut Pods, target: &Target) {
    while !pod_is_gone(pods, target) {
        if pods.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The dev pods, kept current by a watch; `None` until the first listing.
type Pods = watch::Receiver<Option<Vec<Pod>>>;

fn follow(api: Api<Pod>, selector: String) -> Pods {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        let (store, writer) = reflector::store::<Pod>();
        let config = watcher::Config::default().labels(&selector);
        let events = reflector(writer, watcher::watcher(api, config)).default_backoff();
        let mut events = std::pin::pin!(events);
        let mut listed = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::InitDone) => listed = true,
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!("dev pod watch: {err}");
                    continue;
                }
            }
            if listed {
                let pods: Vec<Pod> = store.state().iter().map(|p| (**p).clone()).collect();
                if sender.send(Some(pods)).is_err() {
                    return;
                }
            }
        }
    });
    receiver
}

/// The newest Ready dev pod, waiting (and saying so) while there is none.
async fn ready_target(pods: &mut Pods, namespace: &str) -> Result<Target> {
    let mut said = false;
    loop {
        let (listed, found) = {
            let current = pods.borrow_and_update();
            let found = current
                .iter()
                .flatten()
                .filter(|p| is_ready(p))
                .max_by_key(|p| p.creation_timestamp())
                .map(target_of);
            (current.is_some(), found)
        };
        match found {
            Some(target) => return target,
            None if listed && !said => {
                eprintln!("Waiting for a Ready dev pod in namespace \"{namespace}\"");
                said = true;
            }
            None => {}
        }
        if pods.changed().await.is_err() {
            return Err(Error::Other("stopped watching the dev pod".into()));
        }
    }
}

/// Where in the pod the code goes: the code volume's mount.
fn target_of(pod: &Pod) -> Result<Target> {
    let name = pod.name_any();
    let spec = pod.spec.as_ref();
    let container = spec.and_then(|s| s.containers.first());
    let volume = spec
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == render::CODE_VOLUME));
    if volume.is_some_and(|v| v.host_path.is_some()) {
        return Err(Error::Other(format!(
            "dev pod {name} mounts its code from the node (codePath); sync needs a stack without codePath"
        )));
    }
    let mount = container
        .and_then(|c| c.volume_mounts.as_ref())
        .and_then(|m| m.iter().find(|m| m.name == render::CODE_VOLUME));
    let (Some(container), Some(mount), Some(_)) = (container, mount, volume) else {
        return Err(Error::Other(format!(
            "dev pod {name} has no code volume: it was created before sync existed; run `kubectl devenv up` again"
        )));
    };
    Ok(Target {
        namespace: pod.namespace().unwrap_or_default(),
        name,
        uid: pod.uid().unwrap_or_default(),
        container: container.name.clone(),
        code_dir: mount.mount_path.trim_end_matches('/').to_owned(),
    })
}

/// True when `target` is no longer a Ready pod (deleted, terminating, or not Ready).
fn pod_is_gone(pods: &Pods, target: &Target) -> bool {
    match &*pods.borrow() {
        None => false,
        Some(pods) => !pods
            .iter()
            .any(|p| p.uid().as_deref() == Some(target.uid.as_str()) && is_ready(p)),
    }
}

/// Identifies this sync in the pod's lock.
fn token() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn millis(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(10) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, HostPathVolumeSource, PodSpec, Volume, VolumeMount,
    };

    fn pod(volume: Volume) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("dev-1".into()),
                namespace: Some("dev".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "dev".into(),
                    volume_mounts: Some(vec![VolumeMount {
                        name: render::CODE_VOLUME.into(),
                        mount_path: "/app/".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                volumes: Some(vec![volume]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn the_code_volume_is_where_sync_writes() {
        let target = target_of(&pod(Volume {
            name: render::CODE_VOLUME.into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(target.code_dir, "/app");
        assert_eq!(target.to_string(), "dev/dev-1:/app");
        let host = pod(Volume {
            name: render::CODE_VOLUME.into(),
            host_path: Some(HostPathVolumeSource {
                path: "/src".into(),
                type_: None,
            }),
            ..Default::default()
        });
        assert!(
            target_of(&host)
                .unwrap_err()
                .to_string()
                .contains("codePath")
        );
        let old = pod(Volume {
            name: "other".into(),
            ..Default::default()
        });
        assert!(
            target_of(&old)
                .unwrap_err()
                .to_string()
                .contains("no code volume")
        );
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(69 << 20), "69.0 MiB");
        assert_eq!(millis(Duration::from_millis(84)), "84 ms");
        assert_eq!(millis(Duration::from_secs(12)), "12.0 s");
        assert_eq!(token().len(), 16);
    }
}
