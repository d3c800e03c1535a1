//! The foundation against a real API server: plugin discovery, version,
//! status, kubeconfig selection, and the errors a user meets first.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A single-context copy of the test bed kubeconfig, with its certificates
/// embedded, that a test may then change.
fn kubeconfig_copy(dir: &Path, context: &str) -> PathBuf {
    let path = dir.join(format!("{context}.kubeconfig"));
    let text = kubectl_ok(&["config", "view", "--raw", "--minify", "--context", context]);
    std::fs::write(&path, text).unwrap();
    path
}

/// The test bed kubeconfig, pointed at another local port.
fn kubeconfig_for_port(dir: &Path, port: u16) -> PathBuf {
    let kc = kubeconfig_copy(dir, "testbed");
    let server = format!("--server=https://127.0.0.1:{port}");
    set_in(&kc, &["set-cluster", "testbed", &server]);
    kc
}

fn set_in(kubeconfig: &Path, args: &[&str]) {
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap(), "config"];
    all.extend_from_slice(args);
    kubectl_ok(&all);
}

fn managed_deployment(namespace: &str, stack: &str, component: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {component}
  namespace: {namespace}
  labels:
    app.kubernetes.io/managed-by: kubectl-devenv
    app.kubernetes.io/instance: {stack}
    app.kubernetes.io/component: {component}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {component}}}}}
  template:
    metadata:
      labels:
        app: {component}
        app.kubernetes.io/managed-by: kubectl-devenv
        app.kubernetes.io/instance: {stack}
        app.kubernetes.io/component: {component}
    spec:
      containers: [{{name: main, image: "redis:7.4"}}]
"#
    )
}

fn rollout(namespace: &str, name: &str) {
    kubectl_ok(&[
        "-n",
        namespace,
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=60s",
    ]);
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn kubectl_finds_the_plugin() {
    require_cluster();
    let bin_dir = devenv_bin().parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = std::env::var("TESTBED_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&kubectl)
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains(&bin_dir.join("kubectl-devenv").display().to_string()),
        "plugin list: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = Command::new(&kubectl)
        .args(["devenv", "version", "--client"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Client Version: v"));
}

#[test]
fn version_reports_the_real_server() {
    require_cluster();
    let expected =
        serde_json::from_str::<serde_json::Value>(&kubectl_ok(&["version", "-o", "json"])).unwrap()
            ["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .to_owned();
    let report = json(&devenv(&["version", "-o", "json"]));
    assert_eq!(report["serverVersion"]["gitVersion"], expected.as_str());
    assert_eq!(
        report["clientVersion"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let text = stdout(&devenv(&["version"]));
    assert!(
        text.contains(&format!("Server Version: {expected}")),
        "{text}"
    );
}

#[test]
fn status_says_plainly_when_there_is_nothing() {
    require_cluster();
    let ns = unique("empty");
    kubectl_ok(&["create", "namespace", &ns]);
    let out = devenv(&["status", "-n", &ns]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains(&format!(
            "No kubectl-devenv stacks found in namespace \"{ns}\""
        )),
        "{}",
        stderr(&out)
    );
    let report = json(&devenv(&["status", "-n", &ns, "-o", "json"]));
    assert_eq!(report["components"], serde_json::json!([]));
    kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
fn status_lists_managed_workloads_only() {
    require_cluster();
    let ns = unique("status");
    let stack = unique("stack");
    kubectl_apply(&managed_deployment(&ns, &stack, "mysql"));
    // An unlabelled neighbour that status must not list.
    kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "deployment",
        "foreign",
        "--image=nginx",
    ]);
    rollout(&ns, "mysql");

    let report = json(&devenv(&["status", "-n", &ns, "-o", "json"]));
    let components = report["components"].as_array().unwrap();
    assert_eq!(components.len(), 1, "{report}");
    let mysql = &components[0];
    assert_eq!(mysql["component"], "mysql");
    assert_eq!(mysql["stack"], stack.as_str());
    assert_eq!(mysql["ready"], 1);
    assert_eq!(mysql["desired"], 1);
    assert_eq!(mysql["images"], serde_json::json!(["redis:7.4"]));
    let node = mysql["nodes"][0].as_str().unwrap();
    let arch = kubectl_ok(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.metadata.labels.kubernetes\\.io/arch}",
    ]);
    assert_eq!(mysql["architectures"], serde_json::json!([arch]));

    let table = devenv(&["status", "-n", &ns]);
    let text = stdout(&table);
    assert!(text.starts_with("STACK"), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("mysql") && l.contains("1/1")),
        "{text}"
    );
    assert!(!text.contains("foreign"), "{text}");

    let yaml = stdout(&devenv(&["status", "-n", &ns, "-o", "yaml"]));
    assert!(yaml.contains("component: mysql"), "{yaml}");

    // --stack narrows to one stack; another stack name finds nothing.
    let other = json(&devenv(&[
        "status",
        "--stack",
        "no-such-stack",
        "-n",
        &ns,
        "-o",
        "json",
    ]));
    assert_eq!(other["components"], serde_json::json!([]));
    kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
fn namespace_flag_selects_one_namespace() {
    require_cluster();
    let (a, b) = (unique("ns-a"), unique("ns-b"));
    let stack = unique("stack");
    kubectl_apply(&managed_deployment(&a, &stack, "redis"));
    kubectl_apply(&managed_deployment(&b, &stack, "mysql"));
    let only_a = json(&devenv(&["status", "-n", &a, "-o", "json"]));
    let names: Vec<&str> = only_a["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["redis"]);
    let both = json(&devenv(&["status", "--stack", &stack, "-o", "json"]));
    assert_eq!(both["components"].as_array().unwrap().len(), 2, "{both}");
    kubectl(&["delete", "namespace", &a, &b, "--wait=false"]);
}

#[test]
fn context_and_user_select_credentials() {
    require_cluster();
    let ns = unique("admin-only");
    kubectl_ok(&["create", "namespace", &ns]);
    // The admin context may read any namespace ...
    assert!(devenv(&["status", "-n", &ns]).status.success());
    // ... the restricted context only its two.
    let out = devenv(&["--context", "testbed-restricted", "status", "-n", &ns]);
    assert_error(
        &out,
        &format!("forbidden: cannot list deployments in namespace \"{ns}\""),
    );
    assert!(
        devenv(&[
            "--context",
            "testbed-restricted",
            "status",
            "-n",
            "restricted-b"
        ])
        .status
        .success()
    );
    // --user overrides the context's user.
    let out = devenv(&["--user", "restricted", "status", "-n", &ns]);
    assert_error(&out, "forbidden: cannot list deployments");
    // A context whose namespace is `second` and an unknown context.
    let out = devenv(&["--context", "does-not-exist", "status"]);
    assert_error(&out, "context \"does-not-exist\" does not exist");
    kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
fn restricted_user_without_namespace_is_refused_cluster_wide() {
    require_cluster();
    let out = devenv(&["--context", "testbed-restricted", "status"]);
    assert_error(
        &out,
        "forbidden: cannot list deployments at the cluster scope",
    );
}

#[test]
fn kubeconfig_flag_and_kubeconfig_merge() {
    require_cluster();
    let dir = tempfile::tempdir().unwrap();
    let admin = kubeconfig_copy(dir.path(), "testbed");
    let restricted = kubeconfig_copy(dir.path(), "testbed-restricted");

    // --kubeconfig wins over KUBECONFIG.
    let out = Command::new(devenv_bin())
        .args(["--kubeconfig", admin.to_str().unwrap(), "version"])
        .env("KUBECONFIG", dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // KUBECONFIG=a:b merges; the first file's current-context wins, missing files are skipped.
    let list = std::env::join_paths([
        dir.path().join("missing"),
        restricted.clone(),
        admin.clone(),
    ])
    .unwrap();
    let out = Command::new(devenv_bin())
        .args(["status", "-n", "default"])
        .env("KUBECONFIG", &list)
        .output()
        .unwrap();
    assert_error(
        &out,
        "forbidden: cannot list deployments in namespace \"default\"",
    );
    let out = Command::new(devenv_bin())
        .args(["--context", "testbed", "status", "-n", "default"])
        .env("KUBECONFIG", &list)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn exec_credential_plugin_authenticates() {
    require_cluster();
    let exec = testbed_env("TESTBED_EXEC_KUBECONFIG");
    let out = devenv(&["--kubeconfig", &exec, "version", "-o", "json"]);
    let report = json(&out);
    assert!(report["serverVersion"]["gitVersion"].is_string());
}

#[test]
fn a_wrong_token_is_unauthorized() {
    require_cluster();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_copy(dir.path(), "testbed");
    set_in(
        &kc,
        &["set-credentials", "intruder", "--token=not-a-valid-token"],
    );
    set_in(&kc, &["set-context", "testbed", "--user=intruder"]);
    let out = devenv(&["--kubeconfig", kc.to_str().unwrap(), "status"]);
    assert_error(&out, "You must be logged in to the server (Unauthorized)");
}

#[test]
fn an_unreachable_server_fails_fast_and_names_the_url() {
    require_cluster();
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let kc = kubeconfig_for_port(dir.path(), port);
    let started = Instant::now();
    let out = devenv(&["--kubeconfig", kc.to_str().unwrap(), "status"]);
    assert_error(
        &out,
        &format!("unable to connect to the server at https://127.0.0.1:{port}"),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_silent_server_fails_within_the_request_timeout() {
    require_cluster();
    let dir = tempfile::tempdir().unwrap();
    // Accepts connections and never answers, like a black-holed load balancer.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let kc = kubeconfig_for_port(dir.path(), port);
    let started = Instant::now();
    let out = devenv(&[
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--request-timeout",
        "2s",
        "version",
    ]);
    assert_error(&out, &format!("https://127.0.0.1:{port}"));
    assert!(stderr(&out).contains("2s"), "{}", stderr(&out));
    // Bounded by the timeout (plus process start), never a hang.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}
