//! Helpers shared by the integration tests. Tests that need the cluster are
//! built only with `--features cluster-tests`, and run against whatever
//! `KUBECONFIG` names: the local test bed (tests/testbed/up.sh exports it)
//! or any other cluster.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The platforms a release is packed for (scripts/package.sh, krew/devenv.yaml).
pub(crate) const PLATFORMS: [&str; 5] = [
    "linux_amd64",
    "linux_arm64",
    "darwin_amd64",
    "darwin_arm64",
    "windows_amd64",
];

/// The repository's top directory.
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The plugin binary that cargo built for this test run.
pub(crate) fn devenv_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-devenv"))
}

/// `kubectl-devenv ARGS`, with the test's environment.
pub(crate) fn devenv(args: &[&str]) -> Output {
    Command::new(devenv_bin())
        .args(args)
        .output()
        .expect("run kubectl-devenv")
}

/// `kubectl ARGS` with the test bed's kubectl (`TESTBED_KUBECTL`), else the one on PATH.
pub(crate) fn kubectl(args: &[&str]) -> Output {
    let kubectl = std::env::var("TESTBED_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    Command::new(kubectl)
        .args(args)
        .output()
        .expect("run kubectl")
}

/// Runs kubectl and panics with its stderr unless it succeeds; returns stdout.
pub(crate) fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Applies a YAML document with kubectl.
pub(crate) fn kubectl_apply(yaml: &str) {
    use std::io::Write;
    let kubectl = std::env::var("TESTBED_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(kubectl)
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kubectl apply");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name unique to this test process, so tests can share one cluster.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Fails loudly when the cluster tests run without a cluster.
pub(crate) fn require_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "cluster tests need KUBECONFIG: run tests/run-all.sh, or source $TESTBED_DIR/env after tests/testbed/up.sh"
    );
}

/// A required test-bed setting, e.g. `TESTBED_REGISTRY`.
pub(crate) fn testbed_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run tests/run-all.sh, or source $TESTBED_DIR/env after tests/testbed/up.sh")
    })
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `what` succeeded, showing both streams when it did not; its stdout.
pub(crate) fn expect_success(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts a non-zero exit with a one-line `error: ...` on stderr containing `needle`.
pub(crate) fn assert_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains(needle)),
        "expected an `error: ...{needle}...` line, got: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
}

/// One stack under test: its own directory (for devenv.yaml) and namespaces.
/// Dropping it purges whatever the test left behind.
pub(crate) struct Stack {
    pub(crate) name: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) dev: String,
    pub(crate) test: String,
}

impl Stack {
    pub(crate) fn new(prefix: &str) -> Self {
        require_cluster();
        let name = unique(prefix);
        Self {
            dev: format!("{name}-dev"),
            test: format!("{name}-test"),
            dir: tempfile::tempdir().unwrap(),
            name,
        }
    }

    /// Writes devenv.yaml: `spec` holds the lines after `namespaces`, indented by two.
    pub(crate) fn write_spec(&self, spec: &str) -> PathBuf {
        let path = self.dir.path().join("devenv.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata:\n  name: {}\nspec:\n  \
                 namespaces:\n    dev: {}\n    test: {}\n{spec}",
                self.name, self.dev, self.test
            ),
        )
        .unwrap();
        path
    }

    /// `kubectl-devenv ARGS` in the stack's directory, stdin closed.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(devenv_bin());
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run kubectl-devenv")
    }

    pub(crate) fn run_ok(&self, args: &[&str]) -> String {
        expect_success(&self.run(args), &format!("kubectl-devenv {args:?}"))
    }

    pub(crate) fn selector(&self) -> String {
        format!("app.kubernetes.io/instance={}", self.name)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let out = self.run(&[
            "down",
            "--stack",
            &self.name,
            "--purge",
            "--yes",
            "--timeout",
            "60s",
        ]);
        if !out.status.success() {
            eprintln!("cleanup of {} failed: {}", self.name, stderr(&out));
        }
    }
}
