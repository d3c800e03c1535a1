//! Distribution with the real tools, built from their Go modules by the test bed
//! (`--features cluster-tests`): krew's `validate-krew-manifest` and `kubectl krew install`
//! of the archives scripts/package.sh packs, kubectl's plugin discovery of the installed
//! binary, and actionlint on the release workflow.
//!
//! linux/amd64 is packed from the binary cargo built for these tests. The other platforms
//! cannot be built here; small stand-in executables fill their archives, so krew checks
//! their layout, checksum and LICENSE, but nothing runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::{PLATFORMS, devenv_bin, expect_success, repo, stderr, stdout, testbed_env};

const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
fn archive(dist: &Path, platform: &str) -> PathBuf {
    let ext = if platform.starts_with("windows") {
        "zip"
    } else {
        "tar.gz"
    };
    dist.join(format!("kubectl-devenv_{VERSION}_{platform}.{ext}"))
}

/// The packed archives and rendered manifest, made once per test run (packing the
/// debug binary takes a while) under cargo's scratch directory for tests.
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("krew-test");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        // A private copy: other builds may replace target/debug/kubectl-devenv meanwhile.
        let linux = work.join("kubectl-devenv");
        std::fs::copy(devenv_bin(), &linux).unwrap();
        let mut specs = vec![format!("linux_amd64={}", linux.display())];
        for platform in &PLATFORMS[1..] {
            let stand_in = work.join(format!("stand-in-{platform}"));
            std::fs::write(
                &stand_in,
                format!("#!/bin/sh\necho stand-in for {platform}\n"),
            )
            .unwrap();
            specs.push(format!("{platform}={}", stand_in.display()));
        }
        let dist = work.join("dist");
        let out = Command::new(repo().join("scripts/package.sh"))
            .arg(VERSION)
            .arg(&dist)
            .args(&specs)
            .output()
            .expect("run scripts/package.sh");
        assert!(out.status.success(), "package.sh failed: {}", stderr(&out));
        dist
    })
}

/// An empty KREW_ROOT whose PATH has kubectl, `kubectl-krew` and krew's bin directory,
/// and nothing of the developer's own.
struct Krew {
    root: tempfile::TempDir,
    bin: tempfile::TempDir,
}

impl Krew {
    fn new() -> Self {
        let krew = Self {
            root: tempfile::tempdir().unwrap(),
            bin: tempfile::tempdir().unwrap(),
        };
        let link = |name: &str, target: String| {
            std::os::unix::fs::symlink(target, krew.bin.path().join(name)).unwrap();
        };
        link("kubectl", testbed_env("TESTBED_KUBECTL"));
        link("kubectl-krew", testbed_env("TESTBED_KREW"));
        // krew refuses to work without a local index clone; an empty git repository is
        // enough for install --manifest and uninstall, which never read it.
        let index = krew.root.path().join("index/default");
        std::fs::create_dir_all(&index).unwrap();
        let init = Command::new("git")
            .args(["init", "-q"])
            .arg(&index)
            .status()
            .unwrap();
        assert!(init.success());
        krew
    }

    fn kubectl(&self, args: &[&str], os_arch: Option<(&str, &str)>) -> Output {
        let path = format!(
            "{}:{}:/usr/bin:/bin",
            self.bin.path().display(),
            self.root.path().join("bin").display()
        );
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.root.path())
            .env("KREW_ROOT", self.root.path())
            .stdin(Stdio::null());
        if let Some((os, arch)) = os_arch {
            cmd.env("KREW_OS", os).env("KREW_ARCH", arch);
        }
        cmd.output().expect("run kubectl")
    }

    fn install(&self, manifest: &Path, archive: &Path, os_arch: Option<(&str, &str)>) -> Output {
        let manifest = format!("--manifest={}", manifest.display());
        let archive = format!("--archive={}", archive.display());
        self.kubectl(&["krew", "install", &manifest, &archive], os_arch)
    }

    fn store(&self) -> PathBuf {
        self.root.path().join("store/devenv").join(VERSION)
    }
}

#[test]
fn the_rendered_manifest_passes_krews_validation() {
    let validate = testbed_env("TESTBED_VALIDATE_KREW_MANIFEST");
    let manifest = dist().join("devenv.yaml");
    let out = Command::new(&validate)
        .arg("-manifest")
        .arg(&manifest)
        .arg("-skip-install")
        .output()
        .unwrap();
    expect_success(&out, "validate-krew-manifest");
    for step in [
        "structural validation OK",
        "all spec.platform[] items are used",
        "no overlapping",
    ] {
        assert!(
            stderr(&out).contains(step),
            "{step} missing: {}",
            stderr(&out)
        );
    }

    // The same validator rejects what krew-index would: here an upper-case checksum.
    let work = tempfile::tempdir().unwrap();
    let broken = work.path().join("devenv.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let sha = std::fs::read_to_string(dist().join("checksums.txt")).unwrap();
    let first_sha = sha.split_whitespace().next().unwrap();
    std::fs::write(
        &broken,
        text.replacen(first_sha, &first_sha.to_uppercase(), 1),
    )
    .unwrap();
    let out = Command::new(&validate)
        .arg("-manifest")
        .arg(&broken)
        .arg("-skip-install")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an upper-case sha256 was accepted");
    assert!(stderr(&out).contains("sha256"), "{}", stderr(&out));
}

#[test]
fn krew_installs_the_linux_archive_and_kubectl_runs_the_plugin() {
    let krew = Krew::new();
    let manifest = dist().join("devenv.yaml");
    let out = krew.install(&manifest, &archive(dist(), "linux_amd64"), None);
    expect_success(&out, "kubectl krew install");
    assert!(
        stderr(&out).contains("Installed plugin: devenv"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("kubectl_complete-devenv"),
        "caveats not shown: {}",
        stderr(&out)
    );

    // The LICENSE is extracted next to the binary.
    let license = std::fs::read(repo().join("LICENSE")).unwrap();
    assert_eq!(
        std::fs::read(krew.store().join("LICENSE")).unwrap(),
        license
    );

    // kubectl finds the plugin that krew linked into KREW_ROOT/bin, and runs it.
    let out = krew.kubectl(&["plugin", "list"], None);
    expect_success(&out, "kubectl plugin list");
    let linked = krew.root.path().join("bin/kubectl-devenv");
    assert!(
        stdout(&out).contains(&linked.display().to_string()),
        "{}",
        stdout(&out)
    );
    let out = krew.kubectl(&["devenv", "version", "--client"], None);
    expect_success(&out, "kubectl devenv version --client");
    let printed = stdout(&out);
    assert!(
        printed.starts_with(&format!("Client Version: {VERSION} (commit ")),
        "{printed}"
    );
    assert!(printed.contains("x86_64-unknown-linux"), "{printed}");

    let out = krew.kubectl(&["krew", "uninstall", "devenv"], None);
    expect_success(&out, "kubectl krew uninstall");
    assert!(
        !linked.exists() && !krew.store().exists(),
        "uninstall left files behind"
    );
    let out = krew.kubectl(&["devenv", "version", "--client"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown command \"devenv\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_platform_archive_installs_with_its_license() {
    let manifest = dist().join("devenv.yaml");
    for platform in &PLATFORMS[1..] {
        let krew = Krew::new();
        let (os, arch) = platform.split_once('_').unwrap();
        let out = krew.install(&manifest, &archive(dist(), platform), Some((os, arch)));
        expect_success(&out, &format!("kubectl krew install for {platform}"));
        let binary = if os == "windows" {
            "kubectl-devenv.exe"
        } else {
            "kubectl-devenv"
        };
        assert!(
            krew.store().join("LICENSE").is_file(),
            "{platform}: no LICENSE"
        );
        let installed = std::fs::read_to_string(krew.store().join(binary)).unwrap();
        assert!(
            installed.contains(&format!("stand-in for {platform}")),
            "{platform}"
        );
        assert!(
            krew.root.path().join("bin").join(binary).exists(),
            "{platform}: not linked"
        );
    }
}

#[test]
fn krew_refuses_an_archive_that_does_not_match_the_manifest() {
    let krew = Krew::new();
    let manifest = dist().join("devenv.yaml");
    // linux/amd64 is selected, but the archive is the darwin one: its sha256 differs.
    let out = krew.install(&manifest, &archive(dist(), "darwin_arm64"), None);
    assert!(!out.status.success(), "a mismatched archive was installed");
    assert!(
        stderr(&out).contains("checksum does not match"),
        "{}",
        stderr(&out)
    );
    assert!(!krew.root.path().join("bin/kubectl-devenv").exists());
}

#[test]
fn the_release_workflow_passes_actionlint() {
    let actionlint = testbed_env("TESTBED_ACTIONLINT");
    let workflow = repo().join(".github/workflows/release.yml");
    // actionlint also runs shellcheck on each `run:` script when shellcheck is on PATH.
    let out = Command::new(actionlint)
        .arg("-no-color")
        .arg(&workflow)
        .output()
        .unwrap();
    expect_success(&out, "actionlint");
    assert_eq!(stdout(&out), "", "actionlint findings");
}
