//! Architecture checks against the test bed's control plane (kwok nodes
//! `kwok-amd64` and `kwok-arm64`) and its anonymous registry: auditing what
//! runs (`check --deployed`, `-A`), RBAC fallbacks, and the gate in `up`.

mod common;
mod oci_fixtures;

use std::process::{Command, Output};

use oci_client::secrets::RegistryAuth;
use oci_fixtures::Registry;
use serde_json::Value;

use common::*;

fn registry() -> Registry {
    Registry::new(&testbed_env("TESTBED_REGISTRY"), RegistryAuth::Anonymous)
}

/// `kubectl-devenv ARGS` with a throwaway platform cache and docker config.
fn devenv_isolated(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(devenv_bin())
        .args(args)
        .env("DOCKER_CONFIG", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
        .output()
        .expect("run kubectl-devenv")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}\nstderr: {}",
            stdout(out),
            stderr(out)
        )
    })
}

fn image_entry<'a>(report: &'a Value, image: &str) -> &'a Value {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == image)
        .unwrap_or_else(|| panic!("{image} not in {report}"))
}

/// A namespace with an amd64-only Deployment, a multi-arch CronJob and a bare Pod.
struct Workloads {
    namespace: String,
    amd64_only: String,
    multi: String,
}

impl Workloads {
    fn deploy() -> Self {
        let registry = registry();
        let amd64_repo = unique("amd64only");
        let multi_repo = unique("multiarch");
        registry.push_image(&amd64_repo, Some("1"), "linux/amd64", true);
        registry.push_multi(&multi_repo, "1", &["linux/amd64", "linux/arm64/v8"]);
        let amd64_only = format!("{}/{amd64_repo}:1", registry.host);
        let multi = format!("{}/{multi_repo}:1", registry.host);
        let namespace = unique("check");
        kubectl_apply(&format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: legacy, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: legacy}}}}
  template:
    metadata: {{labels: {{app: legacy}}}}
    spec:
      initContainers: [{{name: init, image: "{multi}"}}]
      containers: [{{name: main, image: "{amd64_only}"}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly, namespace: {namespace}}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: job, image: "{multi}"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: lonely, namespace: {namespace}}}
spec:
  containers: [{{name: main, image: "{multi}"}}]
"#
        ));
        Self {
            namespace,
            amd64_only,
            multi,
        }
    }
}

impl Drop for Workloads {
    fn drop(&mut self) {
        kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]);
    }
}

#[test]
fn deployed_amd64_only_image_fails_on_a_mixed_cluster() {
    require_cluster();
    let workloads = Workloads::deploy();
    let dir = tempfile::tempdir().unwrap();
    let out = devenv_isolated(
        &[
            "check",
            "--deployed",
            "-n",
            &workloads.namespace,
            "-o",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["required"]["source"], "nodes");
    assert_eq!(
        report["required"]["architectures"],
        serde_json::json!(["amd64", "arm64"])
    );
    assert!(report["nodes"]["amd64"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["nodes"]["arm64"].as_u64().unwrap() >= 1, "{report}");

    let legacy = image_entry(&report, &workloads.amd64_only);
    assert_eq!(legacy["missing"], serde_json::json!(["arm64"]));
    assert_eq!(
        legacy["usedBy"],
        serde_json::json!([format!("deployment/{}/legacy", workloads.namespace)])
    );
    let multi = image_entry(&report, &workloads.multi);
    assert_eq!(multi["missing"], serde_json::json!([]));
    let users: Vec<&str> = multi["usedBy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let ns = &workloads.namespace;
    for expected in [
        format!("deployment/{ns}/legacy"),
        format!("cronjob/{ns}/nightly"),
        format!("pod/{ns}/lonely"),
    ] {
        assert!(
            users.contains(&expected.as_str()),
            "{expected} missing from {users:?}"
        );
    }
    assert_eq!(report["images"].as_array().unwrap().len(), 2, "{report}");
    assert_error(&out, &format!("{} (arm64)", workloads.amd64_only));

    // The table says the same: ✗ under ARM64, and who uses the image.
    let out = devenv_isolated(
        &["check", "--deployed", "-n", &workloads.namespace],
        dir.path(),
    );
    let table = stdout(&out);
    let row = table
        .lines()
        .find(|l| l.starts_with(&workloads.amd64_only))
        .unwrap_or_else(|| panic!("no row for the image: {table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1..4], ["linux/amd64", "✓", "✗"], "{table}");
    assert!(row.ends_with(&format!("deployment/{ns}/legacy")), "{table}");
    assert!(
        // The test bed's kwok-amd64 and kwok-arm64, and its real node (amd64).
        table.contains("Nodes:    amd64 (2 nodes), arm64 (1 node)"),
        "{table}"
    );
}

#[test]
fn all_namespaces_finds_the_deployed_image_too() {
    require_cluster();
    let workloads = Workloads::deploy();
    let dir = tempfile::tempdir().unwrap();
    let out = devenv_isolated(
        &["check", "-A", "--arch", "amd64", "-o", "json"],
        dir.path(),
    );
    let report = json(&out);
    let legacy = image_entry(&report, &workloads.amd64_only);
    assert_eq!(legacy["supports"]["amd64"], true);
    assert_eq!(report["required"]["source"], "--arch");
}

#[test]
fn restricted_user_without_node_access_is_told_and_checked_against_defaults() {
    require_cluster();
    let registry = registry();
    let repo = unique("arm-only");
    registry.push_multi(&repo, "1", &["linux/arm64"]);
    let image = format!("{}/{repo}:1", registry.host);
    let dir = tempfile::tempdir().unwrap();

    let out = devenv_isolated(
        &[
            "check",
            "--context",
            "testbed-restricted",
            "--image",
            &image,
            "-o",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["required"]["source"], "default");
    assert_eq!(
        image_entry(&report, &image)["missing"],
        serde_json::json!(["amd64"])
    );
    assert!(
        stderr(&out).contains("Warning: cannot read the nodes' architectures (forbidden: cannot list nodes at the cluster scope)"),
        "{}",
        stderr(&out)
    );

    // Auditing all namespaces needs cluster-wide list rights: a kubectl-style refusal.
    let out = devenv_isolated(
        &["check", "--context", "testbed-restricted", "-A"],
        dir.path(),
    );
    assert_error(
        &out,
        "forbidden: cannot list deployments at the cluster scope",
    );

    // devenv.yaml's targetArch is the next best requirement.
    std::fs::write(
        dir.path().join("devenv.yaml"),
        format!(
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {{name: armstack}}\nspec:\n  \
             targetArch: arm64\n  dev: {{image: \"{image}\"}}\n  components:\n    - kind: redis\n      image: \"{image}\"\n"
        ),
    )
    .unwrap();
    let out = devenv_isolated(
        &["check", "--context", "testbed-restricted", "-o", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["required"]["source"], "devenv.yaml targetArch");
    assert_eq!(report["images"].as_array().unwrap().len(), 1, "{report}");
}

#[test]
fn up_refuses_an_amd64_only_image_on_an_arm64_target() {
    require_cluster();
    let registry = registry();
    let amd64_repo = unique("amd64only");
    let multi_repo = unique("multiarch");
    registry.push_image(&amd64_repo, Some("1"), "linux/amd64", false);
    registry.push_multi(&multi_repo, "1", &["linux/amd64", "linux/arm64"]);
    let amd64_only = format!("{}/{amd64_repo}:1", registry.host);
    let multi = format!("{}/{multi_repo}:1", registry.host);
    let stack = unique("gate");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devenv.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {{name: {stack}}}\nspec:\n  \
             namespaces: {{dev: {stack}-dev, test: {stack}-test}}\n  targetArch: arm64\n  \
             dev: {{image: \"{multi}\"}}\n  components:\n    - kind: redis\n      image: \"{amd64_only}\"\n"
        ),
    )
    .unwrap();

    // Should the gate let it through, the stack still goes away with the test.
    let _cleanup = DeleteNamespaces(vec![format!("{stack}-dev"), format!("{stack}-test")]);
    let out = devenv_isolated(&["up", "-f", file.to_str().unwrap(), "-y"], dir.path());
    assert_error(
        &out,
        &format!("image {amd64_only} has no linux/arm64 variant (it has linux/amd64)"),
    );
    assert!(
        stderr(&out).contains("--skip-arch-check"),
        "{}",
        stderr(&out)
    );
    // Refused before anything was applied.
    let namespaces = kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(
        !namespaces.contains(&format!("{stack}-test")),
        "{namespaces}"
    );
}

struct DeleteNamespaces(Vec<String>);

impl Drop for DeleteNamespaces {
    fn drop(&mut self) {
        for namespace in &self.0 {
            kubectl(&[
                "delete",
                "namespace",
                namespace,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}
