//! `init --from-compose` on broken input: one `error:` line, with
//! file:line:column where there is one, and nothing written.

use std::path::Path;
use std::process::{Command, Output};

fn init(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-devenv"))
        .arg("init")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("the binary runs")
}

/// Runs init on `compose` and checks the one-line error.
fn refused(compose: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let output = init(dir.path(), &["--from-compose"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: {expected}")),
        "expected `error: {expected}...`, got: {stderr}"
    );
    assert!(output.stdout.is_empty());
    assert!(
        !dir.path().join("devenv.yaml").exists(),
        "nothing is written"
    );
}

#[test]
fn broken_yaml() {
    refused(
        "services:\n  db:\n    image: [mysql\n",
        "./compose.yaml:3:12: unclosed bracket",
    );
}

#[test]
fn undefined_required_variable() {
    refused(
        "services:\n  db:\n    image: mysql:8.0\n    environment:\n      MYSQL_PASSWORD: ${DB_PASSWORD:?put DB_PASSWORD in .env}\n",
        "./compose.yaml:5:23: required variable DB_PASSWORD is missing a value: put DB_PASSWORD in .env",
    );
}

#[test]
fn depends_on_cycle() {
    refused(
        "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on:\n      a:\n        condition: service_healthy\n",
        "./compose.yaml:8:7: depends_on cycle: a -> b -> a",
    );
}

#[test]
fn port_range() {
    refused(
        "services:\n  web:\n    image: nginx\n    ports:\n      - \"8000-8010:8000-8010\"\n",
        "./compose.yaml:5:9: port range \"8000-8010\" is not supported",
    );
}

#[test]
fn two_services_on_one_host_port() {
    refused(
        "services:\n  a:\n    image: mysql:8.0\n    ports: [\"3306:3306\"]\n  b:\n    image: mariadb:11.4\n    ports:\n      - 3306:3306\n",
        "./compose.yaml:8:9: services \"a\" and \"b\" both publish host port 3306",
    );
}

#[test]
fn neither_image_nor_build() {
    refused(
        "services:\n  web:\n    ports: [\"80:80\"]\n",
        "./compose.yaml:2:3: service \"web\" has neither an image nor a build context",
    );
}

#[test]
fn unknown_top_level_key() {
    refused(
        "services:\n  web:\n    image: nginx\nservces:\n  db: {}\n",
        "./compose.yaml:4:1: unknown top-level key \"servces\"",
    );
}

#[test]
fn not_compose_at_all() {
    refused(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "./compose.yaml: not a Compose file: it has no top-level `services:`",
    );
    refused(
        "just some text\n",
        "./compose.yaml: not a Compose file: it holds a string",
    );
}

#[test]
fn no_compose_file_here() {
    let dir = tempfile::tempdir().unwrap();
    let output = init(dir.path(), &["--from-compose"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: no Compose file in . (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml)"),
        "{stderr}"
    );
}

#[test]
fn writes_once_then_needs_force_and_prints_with_o_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        "services:\n  cache:\n    image: redis:7.4\n    restart: always\n",
    )
    .unwrap();
    let first = init(dir.path(), &["--from-compose"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.starts_with("cache: catalog redis 7.4; dropped: restart (not needed"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("devenv.yaml")).unwrap();
    assert!(
        written.contains("- kind: redis\n      name: cache\n"),
        "{written}"
    );

    let again = init(dir.path(), &["--from-compose", "docker-compose.yml"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: devenv.yaml already exists: pass --force"),
        "{stderr}"
    );

    let printed = init(dir.path(), &["--from-compose", "-o", "yaml"]);
    assert!(printed.status.success());
    assert_eq!(String::from_utf8_lossy(&printed.stdout), written);

    let forced = init(dir.path(), &["--from-compose", "--force", "--name", "shop"]);
    assert!(forced.status.success());
    let rewritten = std::fs::read_to_string(dir.path().join("devenv.yaml")).unwrap();
    assert!(rewritten.contains("name: shop"), "{rewritten}");
}
