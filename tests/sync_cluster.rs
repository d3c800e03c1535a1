//! `kubectl devenv sync` on the test bed's real node (a kubelet with
//! containerd, so exec runs in a real container as UID 82): trees arrive
//! byte-identical, changes follow, the local tree is never touched, a
//! replaced pod converges, and each failure is one clear `error:` line.
//! Every test fails, never skips, when the real node is missing.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Run in the pod and locally, in the code directory: every file's sha256,
/// every symlink's target and every directory, sorted. Excluded paths, and
/// the symlink out of the tree that sync skips, are pruned on both sides.
const FINGERPRINT: &str = r#"find . \( -path ./.git -o -path ./vendor -o -path ./.devenv-sync -o -path ./node_modules -o -path ./link-outside \) -prune -o -type f ! -name '*.log' -exec sha256sum {} + | LC_ALL=C sort
find . \( -path ./.git -o -path ./vendor -o -path ./.devenv-sync -o -path ./node_modules -o -path ./link-outside \) -prune -o -type l -exec sh -c 'for l; do printf "%s -> %s\n" "$l" "$(readlink "$l")"; done' sh {} + | LC_ALL=C sort
find . \( -path ./.git -o -path ./vendor -o -path ./.devenv-sync -o -path ./node_modules -o -path ./link-outside \) -prune -o -type d -print | LC_ALL=C sort"#;

fn require_real_node() -> String {
    require_cluster();
    let node = testbed_env("TESTBED_REAL_NODE");
    let ready = kubectl(&[
        "get",
        "node",
        &node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert!(
        ready.status.success() && stdout(&ready) == "True",
        "the real node {node} is missing or not Ready: {}{}",
        stdout(&ready),
        stderr(&ready)
    );
    node
}

/// A stack whose pods run on the real node, with the code under `code/`.
impl Stack {
    fn up(prefix: &str, sync: &str) -> Self {
        require_real_node();
        let image = testbed_env("TESTBED_IMAGE_PHP_FPM");
        let stack = Stack::new(prefix);
        std::fs::create_dir(stack.code()).unwrap();
        stack.write_spec(&format!(
            "  targetArch: amd64\n  \
             placement:\n    nodeSelector: {{devenv.test/real-node: \"true\"}}\n    \
             tolerations: [{{key: devenv.test/real-node, operator: Exists, effect: NoSchedule}}]\n  \
             dev:\n    image: {image}\n    sync:\n      localPath: code\n{sync}  \
             components: [{{kind: php, image: {image}}}]\n"
        ));
        let out = stack.run(&["up", "--yes", "--skip-arch-check", "--timeout", "3m"]);
        expect_success(&out, "up");
        assert!(
            stderr(&out).contains("kubectl devenv sync --stack"),
            "up names the sync command: {}",
            stderr(&out)
        );
        stack
    }

    fn code(&self) -> PathBuf {
        self.dir.path().join("code")
    }

    fn sync_once(&self) -> Output {
        self.run(&["sync", "--once", "--stack", &self.name])
    }

    /// `sync` in the background, its stderr in a file; returns once it watches.
    fn start_sync(&self) -> Background {
        let log = self.dir.path().join(format!("sync-{}.log", unique("run")));
        let child = self
            .command(&["sync", "--stack", &self.name, "-v"])
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let background = Background { child, log };
        background.wait_for("Watching for changes", Duration::from_secs(180));
        background
    }

    fn pod(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let names = kubectl_ok(&[
                "get",
                "pods",
                "-n",
                &self.dev,
                "-l",
                "app.kubernetes.io/component=dev",
                "-o",
                "jsonpath={range .items[?(@.status.containerStatuses[0].ready==true)]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
            ]);
            if let Some(name) = names
                .lines()
                .find(|l| l.split_whitespace().count() == 1)
                .map(|l| l.trim().to_owned())
            {
                return name;
            }
            assert!(
                Instant::now() < deadline,
                "no Ready dev pod in {}",
                self.dev
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn in_pod(&self, script: &str) -> Output {
        let pod = self.pod();
        kubectl(&[
            "exec",
            "-n",
            &self.dev,
            &pod,
            "--",
            "sh",
            "-c",
            &format!("cd /var/www/html && {script}"),
        ])
    }

    fn in_pod_ok(&self, script: &str) -> String {
        let out = self.in_pod(script);
        assert!(
            out.status.success(),
            "{script} failed in the pod: {}",
            stderr(&out)
        );
        stdout(&out)
    }

    fn remote_fingerprint(&self) -> String {
        self.in_pod_ok(FINGERPRINT)
    }

    /// Waits until the pod holds exactly the local tree.
    fn wait_identical(&self, within: Duration) {
        let local = local_fingerprint(&self.code());
        let deadline = Instant::now() + within;
        loop {
            let remote = self.in_pod(FINGERPRINT);
            if remote.status.success() && stdout(&remote) == local {
                return;
            }
            if Instant::now() > deadline {
                let remote = stdout(&remote);
                let diff: Vec<&str> = local
                    .lines()
                    .filter(|l| !remote.lines().any(|r| r == *l))
                    .take(10)
                    .collect();
                panic!(
                    "the pod did not converge within {within:?}; missing or different: {diff:?} ({} local, {} remote lines)",
                    local.lines().count(),
                    remote.lines().count()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

struct Background {
    child: Child,
    log: PathBuf,
}

impl Background {
    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            file.read_to_string(&mut text).ok();
        }
        text
    }

    fn wait_for(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "sync never said {needle:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ctrl-C; sync must exit 0.
    fn interrupt(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log();
                assert!(status.success(), "sync exited with {status}: {log}");
                assert!(!log.contains("panicked"), "{log}");
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "sync ignored Ctrl-C: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fingerprints compared line by line, naming only what differs.
fn assert_same(local: &str, remote: &str) {
    let only_local: Vec<&str> = local
        .lines()
        .filter(|l| !remote.contains(l))
        .take(10)
        .collect();
    let only_remote: Vec<&str> = remote
        .lines()
        .filter(|l| !local.contains(l))
        .take(10)
        .collect();
    assert!(
        local == remote,
        "the trees differ: only local {only_local:?}, only in the pod {only_remote:?}"
    );
}

fn local_fingerprint(dir: &Path) -> String {
    let out = Command::new("sh")
        .args(["-c", FINGERPRINT])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Every byte, mode and mtime of the local tree, to prove sync changed nothing.
fn local_state(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32, std::time::SystemTime)> {
    use std::os::unix::fs::PermissionsExt;
    let mut state = BTreeMap::new();
    for entry in walk(dir) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        let content = if meta.is_file() {
            std::fs::read(&entry).unwrap()
        } else {
            Vec::new()
        };
        state.insert(
            entry.strip_prefix(dir).unwrap().display().to_string(),
            (content, meta.permissions().mode(), meta.modified().unwrap()),
        );
    }
    state
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

/// `count` PHP-ish files of 200 B to 8 KiB in 1,800 directories, the same
/// every time (bench/sync.sh builds the same shape).
fn generate(root: &Path, count: usize) {
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..count {
        let dir = root.join(format!("src/m{}/d{}", i % 40, (i / 40) % 45));
        std::fs::create_dir_all(&dir).unwrap();
        let size = 200 + (next() % 8000) as usize;
        let mut content = format!("<?php\n// file {i}\nnamespace App\\M{};\n", i % 40).into_bytes();
        while content.len() < size {
            content.extend(
                format!("function f{}() {{ return {}; }}\n", next() % 1000, next()).bytes(),
            );
        }
        content.truncate(size);
        std::fs::write(dir.join(format!("C{i}.php")), content).unwrap();
    }
}

/// Names and links sync must carry as they are, or report and skip.
fn odd_entries(root: &Path) {
    std::fs::write(root.join("with space.php"), "space").unwrap();
    std::fs::create_dir_all(root.join("ünïcødé")).unwrap();
    std::fs::write(root.join("ünïcødé/日本.php"), "unicode").unwrap();
    std::fs::write(root.join("new\nline.php"), "newline").unwrap();
    std::fs::write(root.join("-dash.php"), "dash").unwrap();
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    std::os::unix::fs::symlink("src", root.join("link-inside")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("link-outside")).unwrap();
    // Excluded by .gitignore, devenv.yaml and .devenvignore, and .git always.
    std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
    std::fs::write(root.join("debug.log"), "log").unwrap();
    std::fs::create_dir_all(root.join("vendor/pkg")).unwrap();
    std::fs::write(root.join("vendor/pkg/big.php"), "vendor").unwrap();
    std::fs::create_dir_all(root.join("node_modules")).unwrap();
    std::fs::write(root.join(".devenvignore"), "node_modules/\n").unwrap();
    std::fs::write(root.join("node_modules/x.js"), "js").unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main").unwrap();
}

#[test]
fn a_ten_thousand_file_tree_arrives_identical_and_changes_follow() {
    let stack = Stack::up("sync-tree", "      excludes: [\"vendor/\"]\n");
    let code = stack.code();
    generate(&code, 10_000);
    odd_entries(&code);
    let before = local_state(&code);

    let out = stack.sync_once();
    assert!(out.status.success(), "sync --once failed: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Synced to pod"), "{err}");
    assert!(
        err.contains("link-outside: the symlink points out of the synced tree"),
        "{err}"
    );
    assert_same(&local_fingerprint(&code), &stack.remote_fingerprint());
    // Excludes: nothing of them reached the pod, the .git directory included.
    let excluded =
        stack.in_pod_ok("ls -d debug.log vendor node_modules .git link-outside 2>/dev/null; true");
    assert_eq!(excluded, "", "excluded paths in the pod");
    // The pod's user owns every file and can change and delete them.
    assert_eq!(
        stack.in_pod_ok("find . -mindepth 1 ! -user 82 -print | head -5"),
        "",
        "files not owned by UID 82"
    );
    stack.in_pod_ok(
        "id -u | grep -qx 82 && echo more >> 'with space.php' && rm -r empty/dir && mkdir empty/dir && mkdir -p vendor/new && touch vendor/new/x",
    );

    // A rerun sends only what differs from the manifest: nothing. (Edits
    // made in the pod are not looked for: sync is one-way.)
    let rerun = stack.sync_once();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert!(
        stderr(&rerun).contains("is up to date"),
        "{}",
        stderr(&rerun)
    );
    assert_eq!(local_state(&code), before, "sync changed the local tree");

    // Watching: creates, edits, deletes, renames, and a 1,000-file burst.
    let sync = stack.start_sync();
    std::fs::write(code.join("created.php"), "<?php echo 'new';").unwrap();
    std::fs::write(code.join("src/m1/d0/C1.php"), "<?php echo 'edited';").unwrap();
    std::fs::remove_file(code.join("src/m2/d0/C2.php")).unwrap();
    std::fs::rename(code.join("src/m3"), code.join("src/renamed")).unwrap();
    std::fs::rename(code.join("with space.php"), code.join("moved space.php")).unwrap();
    stack.wait_identical(Duration::from_secs(30));
    let burst = Instant::now();
    std::fs::create_dir_all(code.join("burst")).unwrap();
    for i in 0..1000 {
        std::fs::write(
            code.join(format!("burst/B{i}.php")),
            format!("<?php // {i}"),
        )
        .unwrap();
    }
    stack.wait_identical(Duration::from_secs(60));
    eprintln!(
        "1,000-file burst visible in the pod after {:?}",
        burst.elapsed()
    );
    let removed = Instant::now();
    std::fs::remove_dir_all(code.join("burst")).unwrap();
    stack.wait_identical(Duration::from_secs(60));
    eprintln!("1,000-file delete visible after {:?}", removed.elapsed());
    // The pod's own files (vendor/new) are not the sync's to delete.
    assert_eq!(stack.in_pod_ok("ls vendor/new"), "x\n");

    // A second sync to the same pod is refused while the first runs.
    let second = stack.sync_once();
    assert_error(&second, "another sync is writing to pod");
    let log = sync.interrupt();
    assert!(log.contains("sent "), "-v prints a line per batch: {log}");
    // Released on Ctrl-C: the next one gets in.
    let after = stack.sync_once();
    assert!(after.status.success(), "{}", stderr(&after));
}

#[test]
fn a_replaced_pod_converges() {
    let stack = Stack::up("sync-replace", "");
    generate(&stack.code(), 10_000);
    // Replaced in the middle of a --once upload: it follows and finishes.
    let mut once = stack
        .command(&["sync", "--once", "--stack", &stack.name, "-vv"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pod = stack.pod();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stack
        .in_pod("test -d .devenv-sync/staging")
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    kubectl_ok(&["delete", "pod", "-n", &stack.dev, &pod, "--wait=false"]);
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = once.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            once.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    once.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let Some(status) = status else {
        panic!("sync --once did not finish: {err}");
    };
    assert!(status.success(), "sync --once failed: {err}");
    assert!(
        err.contains("was replaced by"),
        "the replacement is announced: {err}"
    );
    stack.wait_identical(Duration::from_secs(5));

    // Replaced while watching: the new pod gets everything again (emptyDir),
    // and later changes reach it.
    let sync = stack.start_sync();
    let pod = stack.pod();
    kubectl_ok(&["delete", "pod", "-n", &stack.dev, &pod, "--wait=false"]);
    sync.wait_for("was replaced by", Duration::from_secs(180));
    std::fs::write(stack.code().join("after.php"), "<?php // after").unwrap();
    stack.wait_identical(Duration::from_secs(120));
    sync.interrupt();
}

#[test]
fn a_persistent_code_volume_keeps_the_code_across_pods() {
    let stack = Stack::up("sync-persist", "      persist: true\n      size: 256Mi\n");
    generate(&stack.code(), 500);
    let out = stack.sync_once();
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = stack.pod();
    kubectl_ok(&["delete", "pod", "-n", &stack.dev, &pod, "--wait=true"]);
    stack.wait_identical(Duration::from_secs(120));
    let again = stack.sync_once();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("is up to date"),
        "the new pod on the same claim needs nothing: {}",
        stderr(&again)
    );
}

#[test]
fn a_missing_local_path_is_one_error_line() {
    let out = common::devenv(&["sync", "/no/such/dir", "--once", "--stack", "x"]);
    assert_error(&out, "local path /no/such/dir does not exist");
}

#[test]
fn a_full_code_volume_is_reported_and_leaves_nothing_half_written() {
    let stack = Stack::up("sync-full", "      size: 1Mi\n");
    // A memory-backed emptyDir of 1 MiB: writes fail with ENOSPC at once,
    // where a disk-backed one would only get the pod evicted later.
    kubectl_ok(&[
        "patch",
        "deployment",
        "dev",
        "-n",
        &stack.dev,
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/template/spec/volumes/0/emptyDir/medium","value":"Memory"}]"#,
    ]);
    kubectl_ok(&[
        "rollout",
        "status",
        "deployment/dev",
        "-n",
        &stack.dev,
        "--timeout=120s",
    ]);
    generate(&stack.code(), 2_000);
    let out = stack.sync_once();
    assert_error(&out, "no space left on device in /var/www/html");
    assert_eq!(
        stack.in_pod_ok("ls -A"),
        ".devenv-sync\n",
        "nothing was moved into place"
    );
    assert_eq!(
        stack.in_pod_ok("ls -A .devenv-sync"),
        "",
        "no manifest, no staging, no lock"
    );
}

#[test]
fn exec_refused_by_rbac_names_the_verb_and_resource() {
    let stack = Stack::up("sync-rbac", "");
    let sa = "no-exec";
    kubectl_ok(&["create", "serviceaccount", sa, "-n", &stack.dev]);
    kubectl_ok(&[
        "create",
        "role",
        "pods-read-only",
        "-n",
        &stack.dev,
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    kubectl_ok(&[
        "create",
        "rolebinding",
        "pods-read-only",
        "-n",
        &stack.dev,
        "--role=pods-read-only",
        &format!("--serviceaccount={}:{sa}", stack.dev),
    ]);
    let token = kubectl_ok(&["create", "token", sa, "-n", &stack.dev]);
    let kubeconfig = stack.dir.path().join("no-exec.kubeconfig");
    let server = kubectl_ok(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: \"{}\"}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u, namespace: {}}}}}]\ncurrent-context: x\n",
            token.trim(),
            stack.dev
        ),
    )
    .unwrap();
    let out = stack.run(&[
        "sync",
        "--once",
        "--stack",
        &stack.name,
        "-n",
        &stack.dev,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert_error(
        &out,
        &format!(
            "forbidden: cannot create pods/exec in namespace \"{}\"",
            stack.dev
        ),
    );
}
