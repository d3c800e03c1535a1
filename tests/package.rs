//! scripts/package.sh: archive layout, the sha256 in the rendered krew manifest, and its
//! refusals. The real krew tools run in tests/krew.rs (cluster-tests, built with the bed).
//!
//! Only linux/amd64 can be built here, so these tests pack small stand-in executables for
//! every platform: what is checked is the packing and the manifest, not the binaries.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{PLATFORMS, repo};
use sha2::{Digest, Sha256};

/// A stand-in executable per platform, each with different content.
fn stand_ins(dir: &Path) -> Vec<String> {
    PLATFORMS
        .iter()
        .map(|platform| {
            let path = dir.join(format!("bin-{platform}"));
            std::fs::write(&path, format!("#!/bin/sh\necho stand-in for {platform}\n")).unwrap();
            format!("{platform}={}", path.display())
        })
        .collect()
}

fn package(version: &str, out: &Path, specs: &[String]) -> Output {
    Command::new(repo().join("scripts/package.sh"))
        .arg(version)
        .arg(out)
        .args(specs)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run scripts/package.sh")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sha256_hex(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn archive_name(platform: &str) -> String {
    let ext = if platform.starts_with("windows") {
        "zip"
    } else {
        "tar.gz"
    };
    format!("kubectl-devenv_v0.1.0_{platform}.{ext}")
}

/// `(mode, name)` of each archive member, from tar's or unzip's own listing.
fn members(archive: &Path) -> Vec<(String, String)> {
    let listing = if archive.extension().is_some_and(|e| e == "zip") {
        Command::new("zipinfo")
            .arg(archive)
            .output()
            .expect("zipinfo")
    } else {
        Command::new("tar")
            .arg("-tvzf")
            .arg(archive)
            .output()
            .expect("tar")
    };
    assert!(listing.status.success(), "{}", stderr(&listing));
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields[0].to_owned(), fields.last().unwrap().to_string())
        })
        .collect()
}

fn extract(archive: &Path, member: &str) -> Vec<u8> {
    let out = if archive.extension().is_some_and(|e| e == "zip") {
        Command::new("unzip")
            .arg("-p")
            .arg(archive)
            .arg(member)
            .output()
    } else {
        Command::new("tar")
            .arg("-xzOf")
            .arg(archive)
            .arg(member)
            .output()
    }
    .expect("extract");
    assert!(out.status.success(), "{}", stderr(&out));
    out.stdout
}

#[test]
fn archives_hold_binary_and_license_and_the_manifest_has_their_sha256() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let out = package("v0.1.0", &dist, &stand_ins(work.path()));
    assert!(out.status.success(), "{}", stderr(&out));

    let license = std::fs::read(repo().join("LICENSE")).unwrap();
    let manifest_text = std::fs::read_to_string(dist.join("devenv.yaml")).unwrap();
    let manifest: serde_json::Value = serde_saphyr::from_str(&manifest_text).unwrap();
    assert_eq!(manifest["metadata"]["name"], "devenv");
    assert_eq!(manifest["spec"]["version"], "v0.1.0");
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), PLATFORMS.len());
    let checksums = std::fs::read_to_string(dist.join("checksums.txt")).unwrap();

    for (platform, entry) in PLATFORMS.iter().zip(platforms) {
        let archive: PathBuf = dist.join(archive_name(platform));
        let binary = if platform.starts_with("windows") {
            "kubectl-devenv.exe"
        } else {
            "kubectl-devenv"
        };
        let mut found = members(&archive);
        found.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(found.len(), 2, "{platform}: {found:?}");
        assert_eq!(found[0].1, "LICENSE");
        assert_eq!(found[1].1, binary);
        assert!(
            found[1].0.starts_with("-rwxr-xr-x"),
            "{platform}: {found:?}"
        );
        assert_eq!(extract(&archive, "LICENSE"), license);
        let expected = format!("echo stand-in for {platform}");
        assert!(String::from_utf8_lossy(&extract(&archive, binary)).contains(&expected));

        let (os, arch) = platform.split_once('_').unwrap();
        assert_eq!(entry["selector"]["matchLabels"]["os"], os);
        assert_eq!(entry["selector"]["matchLabels"]["arch"], arch);
        assert_eq!(entry["bin"], binary);
        let sha = sha256_hex(&archive);
        assert_eq!(entry["sha256"], sha.as_str(), "{platform}");
        assert_eq!(
            entry["uri"],
            format!(
                "https://github.com/kubectl-devenv/kubectl-devenv/releases/download/v0.1.0/{}",
                archive_name(platform)
            )
            .as_str()
        );
        assert!(checksums.contains(&format!("{sha}  {}\n", archive_name(platform))));
    }
    assert!(
        !manifest_text.contains('@'),
        "a placeholder is left:\n{manifest_text}"
    );
}

#[test]
fn the_same_binaries_pack_to_the_same_sha256() {
    let work = tempfile::tempdir().unwrap();
    let specs = stand_ins(work.path());
    let (first, second) = (work.path().join("one"), work.path().join("two"));
    assert!(package("v0.1.0", &first, &specs).status.success());
    assert!(package("v0.1.0", &second, &specs).status.success());
    for platform in PLATFORMS {
        let name = archive_name(platform);
        assert_eq!(
            sha256_hex(&first.join(&name)),
            sha256_hex(&second.join(&name)),
            "{name}"
        );
    }
}

#[test]
fn release_url_overrides_the_download_location() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let out = Command::new(repo().join("scripts/package.sh"))
        .arg("v0.1.0")
        .arg(&dist)
        .args(stand_ins(work.path()))
        .env(
            "RELEASE_URL",
            "https://example.test/fork/releases/download/v0.1.0",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = std::fs::read_to_string(dist.join("devenv.yaml")).unwrap();
    assert!(manifest.contains(
        "uri: https://example.test/fork/releases/download/v0.1.0/kubectl-devenv_v0.1.0_darwin_arm64.tar.gz"
    ));
}

fn assert_refused(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains(needle)),
        "expected an `error: ...{needle}...` line, got: {err}"
    );
}

#[test]
fn a_manifest_with_a_missing_platform_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let specs = stand_ins(work.path());
    let out = package("v0.1.0", &work.path().join("dist"), &specs[..4]);
    assert_refused(&out, "@SHA256_WINDOWS_AMD64@");
}

#[test]
fn bad_arguments_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let specs = stand_ins(work.path());
    assert_refused(
        &package("0.1.0", &dist, &specs),
        "not semver with a leading v",
    );
    let freebsd = vec!["freebsd_amd64=/bin/sh".to_owned()];
    assert_refused(
        &package("v0.1.0", &dist, &freebsd),
        "unknown platform \"freebsd_amd64\"",
    );
    let missing = vec!["linux_amd64=/nonexistent/kubectl-devenv".to_owned()];
    assert_refused(&package("v0.1.0", &dist, &missing), "no binary at");
    assert_refused(&package("v0.1.0", &dist, &[]), "usage:");
}
