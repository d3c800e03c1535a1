//! `kubectl devenv check` against the test bed's real registries (Debian's
//! docker-registry): an anonymous one on TESTBED_REGISTRY and an htpasswd one
//! on TESTBED_AUTH_REGISTRY. Every test pushes its own fixtures under unique names.

mod common;
mod oci_fixtures;

use std::path::Path;
use std::process::{Command, Output};

use oci_client::secrets::RegistryAuth;
use oci_fixtures::Registry;
use serde_json::Value;

use common::{testbed_env, unique};

fn open_registry() -> Registry {
    Registry::new(&testbed_env("TESTBED_REGISTRY"), RegistryAuth::Anonymous)
}

fn auth_registry() -> Registry {
    Registry::new(
        &testbed_env("TESTBED_AUTH_REGISTRY"),
        RegistryAuth::Basic(
            testbed_env("TESTBED_REGISTRY_USER"),
            testbed_env("TESTBED_REGISTRY_PASSWORD"),
        ),
    )
}

/// A clean environment for one run: its own docker config dir and platform cache.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn docker_config(&self, json: &str) {
        std::fs::write(self.dir.path().join("config.json"), json).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(common::devenv_bin());
        command
            .arg("check")
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run kubectl-devenv")
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}\nstderr: {}",
            common::stdout(out),
            common::stderr(out)
        )
    })
}

fn platforms(image: &Value) -> Vec<String> {
    image["platforms"]
        .as_array()
        .unwrap_or_else(|| panic!("no platforms in {image}"))
        .iter()
        .map(|p| {
            let mut text = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(variant) = p["variant"].as_str() {
                text = format!("{text}/{variant}");
            }
            text
        })
        .collect()
}

#[test]
fn multi_arch_index_has_both_architectures() {
    let registry = open_registry();
    let repo = unique("multi");
    let pushed = registry.push_multi(&repo, "1", &["linux/amd64", "linux/arm64/v8"]);
    let image = format!("{}/{repo}:1", registry.host);
    let out = Env::new().run(&["--image", &image, "--arch", "amd64,arm64", "-o", "json"]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    let report = json(&out);
    let checked = &report["images"][0];
    assert_eq!(platforms(checked), ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(checked["digest"], pushed.digest.as_str());
    assert_eq!(checked["supports"]["arm64"], true);
    assert_eq!(checked["supports"]["amd64"], true);
    assert_eq!(report["verdict"]["ready"], true);
}

#[test]
fn amd64_only_single_manifest_fails_arm64_from_its_config() {
    let registry = open_registry();
    let repo = unique("amd64only");
    let pushed = registry.push_image(&repo, Some("1"), "linux/amd64", true);
    let image = format!("{}/{repo}:1", registry.host);
    let env = Env::new();

    let out = env.run(&["--image", &image, "--arch", "arm64,amd64"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        common::stderr(&out)
    );
    let table = common::stdout(&out);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..4],
        [image.as_str(), "linux/amd64", "✗", "✓"],
        "{table}"
    );
    assert!(pushed.digest.starts_with(row[4]), "{table}");
    common::assert_error(
        &out,
        &format!("1 of 1 images lacks a required architecture: {image} (arm64)"),
    );

    let out = env.run(&["--image", &image, "--arch", "amd64"]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
}

#[test]
fn arm64_only_index_and_v8_variant_satisfy_arm64() {
    let registry = open_registry();
    let repo = unique("arm64only");
    registry.push_multi(&repo, "index", &["linux/arm64"]);
    registry.push_image(&repo, Some("v8"), "linux/arm64/v8", false);
    let index = format!("{}/{repo}:index", registry.host);
    let single_v8 = format!("{}/{repo}:v8", registry.host);
    let env = Env::new();

    let out = env.run(&[
        "--image", &index, &single_v8, "--arch", "arm64/v8", "-o", "json",
    ]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    let report = json(&out);
    assert_eq!(platforms(&report["images"][0]), ["linux/arm64"]);
    assert_eq!(platforms(&report["images"][1]), ["linux/arm64/v8"]);

    let out = env.run(&["--image", &index, "--arch", "amd64", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json(&out)["images"][0]["missing"],
        serde_json::json!(["amd64"])
    );
}

#[test]
fn attestation_entries_are_skipped() {
    let registry = open_registry();
    let repo = unique("attested");
    let amd64 = registry.push_image(&repo, None, "linux/amd64", false);
    let arm64 = registry.push_image(&repo, None, "linux/arm64/v8", false);
    let attestation = registry.push_image(&repo, None, "unknown/unknown", false);
    registry.push_index(
        &repo,
        "1",
        &[
            (amd64, "linux/amd64"),
            (attestation.clone(), "unknown/unknown"),
            (arm64, "linux/arm64/v8"),
            (attestation, "unknown/unknown"),
        ],
    );
    let image = format!("{}/{repo}:1", registry.host);
    let out = Env::new().run(&["--image", &image, "--arch", "arm64", "-o", "yaml"]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    let report: Value = serde_saphyr::from_str(&common::stdout(&out)).expect("YAML output");
    assert_eq!(
        platforms(&report["images"][0]),
        ["linux/amd64", "linux/arm64/v8"]
    );
}

#[test]
fn missing_tag_is_reported_and_does_not_stop_the_others() {
    let registry = open_registry();
    let repo = unique("present");
    registry.push_multi(&repo, "1", &["linux/amd64", "linux/arm64"]);
    let present = format!("{}/{repo}:1", registry.host);
    let missing_tag = format!("{}/{repo}:no-such-tag", registry.host);
    let missing_repo = format!("{}/{}:1", registry.host, unique("never-pushed"));
    let unreachable = "127.0.0.1:1/nothing:1";
    let out = Env::new().run(&[
        "--image",
        &missing_tag,
        &present,
        &missing_repo,
        unreachable,
        "--arch",
        "arm64",
        "-o",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        common::stderr(&out)
    );
    let report = json(&out);
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    assert_eq!(images[0]["error"]["kind"], "notFound");
    assert_eq!(
        images[0]["error"]["message"],
        format!(
            "not found: {}/{repo} has no tag \"no-such-tag\"",
            registry.host
        )
        .as_str()
    );
    assert_eq!(images[1]["supports"]["arm64"], true);
    assert_eq!(images[2]["error"]["kind"], "notFound");
    assert_eq!(images[3]["error"]["kind"], "unreachable");
    assert!(
        images[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{}",
        images[3]
    );
    common::assert_error(&out, "3 of 4 images could not be checked");
}

#[test]
fn digest_references_are_checked_by_digest() {
    let registry = open_registry();
    let repo = unique("bydigest");
    let pushed = registry.push_image(&repo, Some("1"), "linux/arm64", false);
    let image = format!("{}/{repo}@{}", registry.host, pushed.digest);
    let out = Env::new().run(&["--image", &image, "--arch", "arm64", "-o", "json"]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    assert_eq!(json(&out)["images"][0]["digest"], pushed.digest.as_str());
}

#[test]
fn second_check_reads_platforms_from_the_digest_cache() {
    let registry = open_registry();
    let repo = unique("cached");
    registry.push_image(&repo, Some("1"), "linux/amd64", false);
    let image = format!("{}/{repo}:1", registry.host);
    let env = Env::new();
    let first = json(&env.run(&["--image", &image, "--arch", "amd64", "-o", "json"]));
    let cache = env.dir.path().join("cache/kubectl-devenv/platforms");
    let digest = first["images"][0]["digest"].as_str().unwrap().to_owned();
    let entry = cache.join(format!("{}.json", digest.replace(':', "-")));
    assert!(entry.exists(), "no cache entry at {}", entry.display());
    // Rewriting the entry proves the second run answered from it, after a HEAD only.
    std::fs::write(&entry, r#"[{"os":"linux","architecture":"riscv64"}]"#).unwrap();
    let second = json(&env.run(&["--image", &image, "--arch", "amd64", "-o", "json"]));
    assert_eq!(platforms(&second["images"][0]), ["linux/riscv64"]);
    assert_eq!(second["images"][0]["digest"], digest.as_str());
}

fn auth_image() -> (Registry, String) {
    let registry = auth_registry();
    let repo = unique("private");
    registry.push_multi(&repo, "1", &["linux/amd64", "linux/arm64"]);
    let image = format!("{}/{repo}:1", registry.host);
    (registry, image)
}

#[test]
fn auth_registry_without_credentials_says_how_to_log_in() {
    let (registry, image) = auth_image();
    let env = Env::new();
    env.docker_config(r#"{"auths": {}}"#);
    let out = env.run(&["--image", &image, "--arch", "arm64", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let error = &json(&out)["images"][0]["error"];
    assert_eq!(error["kind"], "unauthorized");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("run `docker login {}`", registry.host)),
        "{message}"
    );
}

#[test]
fn auth_registry_with_credentials_in_the_docker_config() {
    use base64::Engine;
    let (registry, image) = auth_image();
    let env = Env::new();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        testbed_env("TESTBED_REGISTRY_USER"),
        testbed_env("TESTBED_REGISTRY_PASSWORD")
    ));
    env.docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#,
        registry.host
    ));
    let out = env.run(&["--image", &image, "--arch", "arm64,amd64", "-o", "json"]);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        common::stdout(&out),
        common::stderr(&out)
    );
    assert_eq!(
        platforms(&json(&out)["images"][0]),
        ["linux/amd64", "linux/arm64"]
    );

    // Wrong credentials are refused, and the message says where they came from.
    let wrong = base64::engine::general_purpose::STANDARD.encode("devenv:wrong-password");
    env.docker_config(&format!(
        r#"{{"auths": {{"http://{}/v1/": {{"auth": "{wrong}"}}}}}}"#,
        registry.host
    ));
    let out = env.run(&["--image", &image, "--arch", "arm64", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let message = json(&out)["images"][0]["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("the credentials from") && message.contains("config.json"),
        "{message}"
    );
}

/// A credential helper is a program on PATH speaking Docker's protocol:
/// `get`, the server on stdin, JSON on stdout.
fn install_helper(dir: &Path, name: &str, server: &str) {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = '{server}' ]; then\n  \
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\nelse\n  \
         echo 'credentials not found in native keychain'; exit 1\nfi\n",
        testbed_env("TESTBED_REGISTRY_USER"),
        testbed_env("TESTBED_REGISTRY_PASSWORD")
    );
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn auth_registry_with_a_credential_helper() {
    let (registry, image) = auth_image();
    let env = Env::new();
    let bin = env.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    install_helper(&bin, "testbed", &registry.host);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    env.docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "testbed"}}}}"#,
        registry.host
    ));
    let out = env
        .command(&["--image", &image, "--arch", "arm64", "-o", "json"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));

    // credsStore covers every registry; the helper has nothing for the open one, which stays anonymous.
    let open = open_registry();
    let repo = unique("store");
    open.push_image(&repo, Some("1"), "linux/arm64", false);
    let open_image = format!("{}/{repo}:1", open.host);
    env.docker_config(r#"{"credsStore": "testbed"}"#);
    let out = env
        .command(&[
            "--image",
            &image,
            &open_image,
            "--arch",
            "arm64",
            "-o",
            "json",
        ])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
}

#[test]
fn bad_input_is_a_one_line_error() {
    let env = Env::new();
    let out = env.run(&["--image", "a b", "--arch", "arm64"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stdout(&out).contains("invalid image reference \"a b\""));
    let out = env.run(&["--image", "x:1", "--arch", "sparc"]);
    assert_eq!(out.status.code(), Some(2));
    common::assert_error(&out, "unknown architecture \"sparc\"");
    let out = Command::new(common::devenv_bin())
        .args(["check", "--arch", "arm64"])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    common::assert_error(&out, "nothing to check");
}
