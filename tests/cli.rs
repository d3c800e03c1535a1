//! The command line without a cluster: usage errors, kubeconfig problems,
//! and the client version.

mod common;

use std::process::Command;

use common::*;

fn devenv_with_kubeconfig_env(kubeconfig: &str, args: &[&str]) -> std::process::Output {
    Command::new(devenv_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

#[test]
fn client_version_needs_no_cluster() {
    let out = devenv_with_kubeconfig_env("/nonexistent", &["version", "--client", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["clientVersion"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        report["clientVersion"]["target"]
            .as_str()
            .unwrap()
            .contains('-')
    );
    assert!(report.get("serverVersion").is_none());
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = devenv(&["status", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: unexpected argument '--no-such-flag'"));
}

#[test]
fn unknown_subcommands_are_usage_errors() {
    let out = devenv(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn bad_request_timeout_is_a_usage_error() {
    let out = devenv(&["status", "--request-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid duration \"soon\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_kubeconfig_names_the_path() {
    let out = devenv(&["--kubeconfig", "/nonexistent/kubeconfig", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_error(&out, "cannot read kubeconfig \"/nonexistent/kubeconfig\"");
}

#[test]
fn no_kubeconfig_at_all_says_where_it_looked() {
    let out = devenv_with_kubeconfig_env("/nonexistent/a:/nonexistent/b", &["status"]);
    assert_error(&out, "no kubeconfig found");
    assert!(stderr(&out).contains("/nonexistent/a, /nonexistent/b"));
}

#[test]
fn broken_kubeconfig_yaml_gives_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: x\n   cluster: [\n",
    )
    .unwrap();
    let out = devenv(&["--kubeconfig", path.to_str().unwrap(), "status"]);
    assert_error(
        &out,
        &format!("cannot parse kubeconfig \"{}\": line 5", path.display()),
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn unknown_context_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: known, context: {cluster: c, user: u}}]\n\
         current-context: known\n",
    )
    .unwrap();
    let out = devenv(&[
        "--kubeconfig",
        path.to_str().unwrap(),
        "--context",
        "other",
        "status",
    ]);
    assert_error(&out, "context \"other\" does not exist in the kubeconfig");
}

/// `kubectl devenv … | head -1`: a reader that has gone ends the program as it
/// ends kubectl, by SIGPIPE, with no panic and no `error:` line. The reader is
/// closed before the program starts, so its first write finds the pipe closed.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_program_quietly_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("devenv.yaml");
    std::fs::write(
        &spec,
        "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: shop}\n\
         spec:\n  components: [{kind: mysql}]\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    for args in [
        &["version", "--client"][..],
        &["version", "--client", "-o", "yaml"],
        &["completion", "bash"],
        &["completion", "man"],
        &["up", "-f", spec, "--dry-run"],
        &["up", "-f", spec, "--dry-run", "-o", "json"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(devenv_bin())
            .args(args)
            .env("KUBECONFIG", "/nonexistent")
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}, stderr: {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}
