//! The dev image's sources (images/dev): the Dockerfile passes BuildKit's
//! parser and lint rules (tests/tools/dockerfile-lint, built with Go), the
//! entrypoint passes shellcheck, and the release workflow publishes exactly
//! the image and the PHP versions the catalog offers. None needs a cluster.

mod common;

use std::process::Command;

use common::*;
use kubectl_devenv::catalog;

fn release_workflow() -> String {
    std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap()
}

#[test]
fn the_dockerfile_passes_buildkits_lint_rules() {
    let tool = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dockerfile-lint");
    let build = Command::new("go")
        .args(["build", "-o"])
        .arg(&tool)
        .arg(".")
        .current_dir(repo().join("tests/tools/dockerfile-lint"))
        .output()
        .expect("go is required (Go 1.26 from go.dev): it builds the Dockerfile linter");
    assert!(build.status.success(), "go build: {}", stderr(&build));
    let out = Command::new(&tool)
        .arg(repo().join("images/dev/Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dockerfile-lint: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // The linter does find what it claims to find.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "FROM alpine AS Build\nMAINTAINER me\n").unwrap();
    let out = Command::new(&tool).arg(bad.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("StageNameCasing"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("MaintainerDeprecated"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_entrypoint_passes_shellcheck() {
    let out = Command::new("shellcheck")
        .arg(repo().join("images/dev/devenv-entrypoint"))
        .output()
        .expect("shellcheck is required (Debian package shellcheck)");
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn the_release_publishes_the_catalogs_dev_image_for_every_php_version() {
    let php = catalog::php();
    let dev = php.dev.as_ref().expect("the php kind names its dev image");
    let workflow = release_workflow();
    let matrix = format!(
        "php: [{}]",
        php.versions
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(workflow.contains(&matrix), "release.yml lacks `{matrix}`");
    assert!(
        workflow.contains(&format!("{}:${{{{ matrix.php }}}}\n", dev.image)),
        "release.yml does not push {}:<version>",
        dev.image
    );
    assert!(workflow.contains("platforms: linux/amd64,linux/arm64"));
    assert_eq!(dev.tag, "{version}", "the workflow tags by PHP version");
    let dockerfile = std::fs::read_to_string(repo().join("images/dev/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("ARG PHP_VERSION={}\n", php.default_version)),
        "the Dockerfile's default PHP version is the catalog's"
    );
    assert!(dockerfile.contains(&format!("EXPOSE {} {}", php.port, dev.http_port)));
    assert!(
        dockerfile.contains("USER www-data"),
        "runs as the base image's account"
    );
}
