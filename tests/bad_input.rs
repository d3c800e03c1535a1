//! Bad `devenv.yaml` files and bad flags: each gives one kubectl-style
//! `error: ...` line (with line and column for the file), a non-zero exit,
//! and never a panic. None of these needs a cluster: the kubeconfig points
//! nowhere, so any attempt to connect would fail differently.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;

const HEADER: &str =
    "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata:\n  name: shop\nspec:\n";

/// Runs kubectl-devenv with no usable kubeconfig, in a directory holding
/// `devenv.yaml` with `text` (when given).
fn run_in_dir(file_text: Option<&str>, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = file_text {
        std::fs::write(dir.path().join("devenv.yaml"), text).unwrap();
    }
    Command::new(devenv_bin())
        .args(args)
        .current_dir(dir.path())
        .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `up --dry-run -f devenv.yaml` on `text`; asserts exit 1 and the exact message.
fn assert_file_error(text: &str, expected: &str) {
    let out = run_in_dir(Some(text), &["up", "--dry-run", "-f", "devenv.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end(),
        format!("error: devenv.yaml:{expected}")
    );
    assert!(stdout(&out).is_empty(), "printed objects despite the error");
}

fn assert_flag_error(args: &[&str], code: i32, needle: &str) {
    let out = run_in_dir(None, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    assert_error(&out, needle);
    assert_eq!(
        stderr(&out)
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        1
    );
}

#[test]
fn a_valid_file_renders_without_any_cluster() {
    let out = run_in_dir(
        Some(&format!("{HEADER}  components:\n    - kind: mysql\n")),
        &["up", "--dry-run", "-o", "yaml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("kind: StatefulSet"));
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    assert_file_error(
        &format!("{HEADER}  components: [\n"),
        "6:15: unclosed bracket '['",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: redis\n\t- kind: php\n"),
        "7:13: while scanning a plain scalar, found a tab",
    );
}

#[test]
fn unknown_and_missing_fields() {
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: mysql\n      versoin: \"8.0\"\n"),
        "8:7: unknown field `versoin`, expected one of kind, name, version, image, localPort, storage, resources, dependsOn, ports, env, command, args, readiness, runAsUser, runAsGroup, files",
    );
    assert_file_error(
        "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\n",
        "2:1: missing field `metadata`",
    );
    assert_file_error(
        &format!(
            "{HEADER}  components:\n    - kind: mysql\n      resources: {{requests: {{cpu: 1}}, limits: {{cpu: 1, memory: 1Gi}}}}\n"
        ),
        "8:30: missing field `memory`",
    );
}

#[test]
fn wrong_shapes_and_documents() {
    assert_file_error(
        &format!("{HEADER}  components: {{kind: redis}}\n"),
        "6:15: expected sequence start",
    );
    let out = run_in_dir(Some("\n"), &["up", "--dry-run", "-f", "devenv.yaml"]);
    assert_error(&out, "devenv.yaml: the file is empty");
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: redis\n---\nkind: Other\n"),
        "9:1: the file holds several YAML documents; a devenv.yaml holds exactly one",
    );
}

#[test]
fn version_and_kind_of_the_file() {
    assert_file_error(
        &(HEADER.replace("kubectl-devenv.io/v1alpha1", "kubectl-devenv.io/v9")
            + "  components: [{kind: redis}]\n"),
        "1:13: unsupported apiVersion \"kubectl-devenv.io/v9\" (expected \"kubectl-devenv.io/v1alpha1\")",
    );
    assert_file_error(
        &(HEADER.replace("kind: DevEnv", "kind: Deployment") + "  components: [{kind: redis}]\n"),
        "2:7: unsupported kind \"Deployment\" (expected \"DevEnv\")",
    );
}

#[test]
fn components_must_come_from_the_catalog() {
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: mongodb\n"),
        "7:13: unknown component kind \"mongodb\" (known kinds: php, mysql, mariadb, postgres, redis, memcached, web)",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: mysql\n      version: \"5.7\"\n"),
        "8:16: mysql version \"5.7\" is not supported (choose one of: 8.4, 8.0; or set `image:`)",
    );
    assert_file_error(
        &format!("{HEADER}  components: []\n"),
        "6:15: spec.components is empty: add at least one component (known kinds: php, mysql, mariadb, postgres, redis, memcached, web)",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: memcached\n      storage: {{size: 1Gi}}\n"),
        "8:16: memcached keeps no data: remove `storage`",
    );
}

#[test]
fn names_and_namespaces() {
    assert_file_error(
        &(HEADER.replace("name: shop", "name: My_Shop") + "  components: [{kind: redis}]\n"),
        "4:9: invalid stack name \"My_Shop\": use lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: redis\n    - kind: redis\n"),
        "8:13: duplicate component name \"redis\": give one of them a distinct `name:`",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: redis\n      name: dev\n"),
        "8:13: component name \"dev\" is reserved for the dev pod",
    );
    assert_file_error(
        &format!(
            "{HEADER}  namespaces: {{dev: same, test: same}}\n  components: [{{kind: redis}}]\n"
        ),
        "6:33: the dev and test namespaces must differ (both are \"same\")",
    );
}

#[test]
fn settings_with_bad_values() {
    assert_file_error(
        &format!("{HEADER}  targetArch: x86\n  components: [{{kind: redis}}]\n"),
        "6:15: unsupported architecture \"x86\" (supported: amd64, arm64)",
    );
    assert_file_error(
        &format!("{HEADER}  dev: {{codePath: relative/dir}}\n  components: [{{kind: redis}}]\n"),
        "6:19: codePath \"relative/dir\" must be an absolute path (it is mounted from the node)",
    );
    assert_file_error(
        &format!(
            "{HEADER}  components:\n    - kind: mysql\n      resources: {{requests: {{cpu: 2, memory: 1Gi}}, limits: {{cpu: 1, memory: 1Gi}}}}\n"
        ),
        "8:18: CPU request 2 is above its limit 1",
    );
    assert_file_error(
        &format!(
            "{HEADER}  components:\n    - kind: redis\n      resources: {{requests: {{cpu: lots, memory: 1Gi}}, limits: {{cpu: 1, memory: 1Gi}}}}\n"
        ),
        "8:18: invalid CPU quantity \"lots\" (examples: 250m, 1)",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: redis\n      storage: {{size: 1GB}}\n"),
        "8:23: invalid storage size \"1GB\" (examples: 512Mi, 5Gi)",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - kind: redis\n      image: \"redis 7\"\n"),
        "8:14: invalid image reference \"redis 7\"",
    );
}

#[test]
fn bad_flags_name_the_flag() {
    assert_flag_error(
        &["up", "--dry-run", "-f", "missing.yaml"],
        1,
        "cannot read missing.yaml: No such file or directory",
    );
    assert_flag_error(
        &["up", "--dry-run", "--components", "mongodb"],
        2,
        "--components: unknown component kind \"mongodb\"",
    );
    assert_flag_error(
        &["up", "--dry-run", "--components", "mysql:5.7"],
        2,
        "--components: mysql version \"5.7\" is not supported (choose one of: 8.4, 8.0)",
    );
    assert_flag_error(
        &[
            "up",
            "--dry-run",
            "--components",
            "redis",
            "--name",
            "Bad_Name",
        ],
        2,
        "--name: invalid name \"Bad_Name\"",
    );
    assert_flag_error(
        &[
            "up",
            "--dry-run",
            "--components",
            "redis",
            "--code-path",
            "src",
        ],
        2,
        "--code-path: \"src\" must be an absolute path",
    );
    assert_flag_error(
        &[
            "up",
            "--dry-run",
            "--components",
            "redis",
            "--test-namespace",
            "dev",
        ],
        2,
        "--dev-namespace and --test-namespace must differ (both are \"dev\")",
    );
    assert_flag_error(
        &["up", "--timeout", "5x", "--dry-run"],
        2,
        "invalid duration \"5x\"",
    );
    assert_flag_error(
        &["up", "--arch", "x86", "--dry-run"],
        2,
        "invalid value 'x86' for '--arch <ARCH>'",
    );
    assert_flag_error(
        &["up", "--yes"],
        2,
        "nothing to apply: there is no devenv.yaml here and no terminal for the wizard; pass -f FILE or --components",
    );
    assert_flag_error(
        &["down", "--yes"],
        2,
        "which stack? there is no devenv.yaml here: pass --stack NAME or -f FILE",
    );
    assert_flag_error(
        &["up", "-n", "shop", "--components", "redis", "--yes"],
        2,
        "-n/--namespace does not apply to up: a stack's namespaces come from devenv.yaml",
    );
    assert_flag_error(
        &["down", "-n", "shop", "--stack", "shop", "--yes"],
        2,
        "-n/--namespace does not apply to down",
    );
    assert_flag_error(
        &["check", "--stack", "shop", "--image", "nginx:1.27"],
        2,
        "--stack is for --isolation",
    );
    assert_flag_error(
        &["down", "--stack", "Bad_Name", "--yes"],
        2,
        "--stack: invalid name \"Bad_Name\"",
    );
    assert_flag_error(
        &["logs", "mysql", "--tail=-1"],
        2,
        "--tail must be 0 or more",
    );
    assert_flag_error(
        &["logs", "mysql", "-f", "--previous"],
        2,
        "--follow and --previous cannot be combined",
    );
}

#[test]
fn a_bad_file_in_the_working_directory_is_reported_by_up_and_down() {
    let text = format!("{HEADER}  components:\n    - kind: mongodb\n");
    for args in [&["up", "--dry-run"][..], &["down", "--yes"][..]] {
        let out = run_in_dir(Some(&text), args);
        assert_error(&out, "devenv.yaml:7:13: unknown component kind \"mongodb\"");
    }
}

#[test]
fn run_without_a_command_says_how_to_name_one() {
    let out = run_in_dir(None, &["run", "--stack", "shop"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end(),
        "error: name the command to run after `--`, e.g. `kubectl devenv run -- php artisan migrate`"
    );
}

#[test]
fn env_only_formats_are_refused_elsewhere_before_any_connection() {
    assert_flag_error(
        &["status", "-o", "dotenv"],
        2,
        "output format \"dotenv\": it is only for `kubectl devenv env`",
    );
    assert_flag_error(&["forward", "mysql", "-o", "shell"], 2, "\"shell\"");
    assert_flag_error(
        &["run", "--port-range", "9-1", "--", "true"],
        2,
        "invalid port range",
    );
}

#[test]
fn docroot_and_web_mistakes_are_located() {
    assert_file_error(
        &format!("{HEADER}  dev: {{docroot: ../secrets}}\n  components: [{{kind: redis}}]\n"),
        "6:18: invalid docroot \"../secrets\": use a path inside the code directory, such as public or web",
    );
    assert_file_error(
        &format!("{HEADER}  components: [{{kind: web}}]\n"),
        "6:23: web sits in front of php: add a php component to the stack",
    );
}

#[test]
fn dev_env_and_local_port_mistakes_are_located() {
    assert_file_error(
        &format!(
            "{HEADER}  dev:\n    env: {{DB_HOST: 127.0.0.1}}\n  components: [{{kind: mysql}}]\n"
        ),
        "7:20: dev.env DB_HOST: the stack sets DB_HOST from component \"mysql\" and that value wins; remove it here",
    );
    assert_file_error(
        &format!(
            "{HEADER}  components:\n    - {{kind: mysql, localPort: 3307}}\n    - {{kind: mariadb, localPort: 3307}}\n"
        ),
        "8:34: localPort 3307 is already claimed by component \"mysql\"",
    );
    assert_file_error(
        &format!("{HEADER}  components:\n    - {{kind: redis, localPort: 70000}}\n"),
        "7:32: localPort 70000 must be from 1 to 65535",
    );
}
