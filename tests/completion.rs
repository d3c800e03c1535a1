//! Shell completion without a cluster: the committed files match the CLI, the
//! `__complete` hook speaks kubectl's protocol, and the static scripts work in
//! real bash, zsh and fish.
//!
//! Regenerate the committed files after changing the CLI:
//!   UPDATE_COMPLETIONS=1 cargo test --test completion committed_files

mod common;
mod shells;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{devenv_bin, repo, stderr, stdout};

/// `kubectl devenv completion <target>` and the file it is committed as.
const GENERATED: [(&str, &str); 6] = [
    ("bash", "completions/kubectl-devenv.bash"),
    ("zsh", "completions/_kubectl-devenv"),
    ("fish", "completions/kubectl-devenv.fish"),
    ("powershell", "completions/_kubectl-devenv.ps1"),
    ("kubectl-shim", "completions/kubectl_complete-devenv"),
    ("man", "man/kubectl-devenv.1"),
];

fn repo_file(relative: &str) -> PathBuf {
    repo().join(relative)
}

fn generate(target: &str) -> Vec<u8> {
    let out = common::devenv(&["completion", target]);
    assert!(
        out.status.success(),
        "completion {target}: {}",
        stderr(&out)
    );
    assert!(
        !out.stdout.is_empty(),
        "completion {target} printed nothing"
    );
    out.stdout
}

#[test]
fn committed_files_match_the_cli() {
    let update = std::env::var_os("UPDATE_COMPLETIONS").is_some();
    let mut stale = Vec::new();
    for (target, relative) in GENERATED {
        let path = repo_file(relative);
        let fresh = generate(target);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            if target == "kubectl-shim" {
                use std::os::unix::fs::PermissionsExt;
                let executable = std::fs::Permissions::from_mode(0o755);
                std::fs::set_permissions(&path, executable).unwrap();
            }
        } else if std::fs::read(&path).ok().as_deref() != Some(fresh.as_slice()) {
            stale.push(relative);
        }
    }
    assert!(
        stale.is_empty(),
        "out of date with the CLI: {stale:?}; regenerate with \
         `UPDATE_COMPLETIONS=1 cargo test --test completion committed_files` and commit them"
    );
}

#[test]
fn the_committed_shim_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let path = repo_file("completions/kubectl_complete-devenv");
    let mode = std::fs::metadata(&path).expect("shim").permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "{} is not executable", path.display());
}

#[test]
fn unknown_completion_targets_are_usage_errors() {
    let out = common::devenv(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&out)
    );
}

/// `kubectl-devenv __complete WORDS...` in `cwd`, as kubectl's plugin completion runs it.
fn hook(words: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(devenv_bin())
        .arg("__complete")
        .args(words)
        .current_dir(cwd)
        .env_remove("KUBECONFIG")
        .env("HOME", cwd)
        .envs(env.iter().copied())
        .output()
        .expect("run kubectl-devenv __complete")
}

/// The candidate values of a hook answer, after checking the protocol: success, nothing
/// on stderr (kubectl prints it over the user's command line), and `:4` last.
fn hook_values(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    assert_eq!(stderr(out), "", "the hook wrote to stderr");
    let text = stdout(out);
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some(":4"), "no directive line in {text:?}");
    lines
        .iter()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: lab
  cluster: {server: 'https://127.0.0.1:1'}
users:
- name: dev
  user: {token: not-used}
contexts:
- name: alpha
  context: {cluster: lab, user: dev}
- name: beta
  context: {cluster: lab, user: dev, namespace: shop}
";

#[test]
fn the_hook_offers_subcommands_with_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let out = hook(&[""], dir.path(), &[]);
    let values = hook_values(&out);
    for expected in ["version", "status", "forward", "completion"] {
        assert!(
            values.iter().any(|v| v == expected),
            "{expected} missing: {values:?}"
        );
    }
    assert!(values.iter().all(|v| !v.starts_with('-')), "{values:?}");
    assert!(
        stdout(&out).contains("status\tList what kubectl-devenv manages in the cluster\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_hook_offers_contexts_from_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, KUBECONFIG).unwrap();
    let kubeconfig = config.to_str().unwrap();
    let out = hook(
        &["status", "--context", ""],
        dir.path(),
        &[("KUBECONFIG", kubeconfig)],
    );
    assert_eq!(hook_values(&out), ["alpha", "beta"]);
    assert!(stdout(&out).contains("beta\tcluster lab, namespace shop\n"));
    // --kubeconfig on the line wins over the environment.
    let out = hook(
        &["--kubeconfig", kubeconfig, "--context", "b"],
        dir.path(),
        &[],
    );
    assert_eq!(hook_values(&out), ["beta"]);
}

#[test]
fn the_hook_offers_components_from_devenv_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("devenv.yaml"),
        "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: shop}\n\
         spec:\n  components: [{kind: mysql}, {kind: redis}]\n",
    )
    .unwrap();
    let out = hook(&["forward", ""], dir.path(), &[]);
    assert_eq!(hook_values(&out), ["mysql", "redis"]);
    let out = hook(&["forward", "mysql", "r"], dir.path(), &[]);
    assert_eq!(hook_values(&out), ["redis"]);
}

#[test]
fn the_hook_stays_quiet_when_nothing_can_be_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken"), "clusters: [").unwrap();
    std::fs::write(dir.path().join("devenv.yaml"), "spec: {components: 7}").unwrap();
    let broken = dir.path().join("broken");
    let out = hook(
        &["--context", ""],
        dir.path(),
        &[("KUBECONFIG", broken.to_str().unwrap())],
    );
    assert!(hook_values(&out).is_empty());

    // A cluster that refuses connections and an invalid devenv.yaml: no namespaces, no
    // components; only the command's flags remain.
    let config = dir.path().join("config");
    std::fs::write(&config, KUBECONFIG).unwrap();
    let env = [("KUBECONFIG", config.to_str().unwrap())];
    assert!(hook_values(&hook(&["forward", "-n", ""], dir.path(), &env)).is_empty());
    let values = hook_values(&hook(&["forward", ""], dir.path(), &env));
    assert!(values.iter().all(|v| v.starts_with('-')), "{values:?}");
}

#[test]
fn the_hook_gives_up_on_a_silent_cluster() {
    // Accepts TCP connections (the kernel does) but never answers the TLS handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let server = format!("https://{}", silent.local_addr().unwrap());
    std::fs::write(&config, KUBECONFIG.replace("https://127.0.0.1:1", &server)).unwrap();
    let started = Instant::now();
    let out = hook(
        &["status", "-n", ""],
        dir.path(),
        &[("KUBECONFIG", config.to_str().unwrap())],
    );
    let waited = started.elapsed();
    assert!(hook_values(&out).is_empty());
    // The lookup is bounded by 2s; the upper margin only absorbs a loaded machine.
    assert!(
        waited >= Duration::from_millis(1500),
        "did not wait for the server: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "completion hung for {waited:?}"
    );
}

/// A sandbox with `kubectl-devenv` on PATH and the committed scripts in reach.
fn static_script_sandbox() -> shells::Sandbox {
    let sandbox = shells::Sandbox::new();
    sandbox.link("kubectl-devenv", &devenv_bin());
    sandbox
}

#[test]
fn bash_completes_the_executable_with_the_committed_script() {
    let sandbox = static_script_sandbox();
    let setup = format!("source {}", repo_file(GENERATED[0].1).display());
    let offered = sandbox.bash(&setup, "kubectl-devenv ");
    for expected in ["status", "version", "forward", "completion"] {
        assert!(
            offered.iter().any(|o| o == expected),
            "{expected} missing: {offered:?}"
        );
    }
    assert_eq!(sandbox.bash(&setup, "kubectl-devenv st"), ["status"]);
    let offered = sandbox.bash(&setup, "kubectl-devenv completion ");
    for expected in ["bash", "zsh", "fish", "powershell", "kubectl-shim", "man"] {
        assert!(
            offered.iter().any(|o| o == expected),
            "{expected} missing: {offered:?}"
        );
    }
}

#[test]
fn fish_completes_the_executable_with_the_committed_script() {
    let sandbox = static_script_sandbox();
    let setup = format!("source {}", repo_file(GENERATED[2].1).display());
    let offered = sandbox.fish(&setup, "kubectl-devenv ");
    for expected in ["status", "version", "forward", "completion"] {
        assert!(
            offered.iter().any(|o| o == expected),
            "{expected} missing: {offered:?}"
        );
    }
    // clap's fish script completes option values (not positional ones).
    assert_eq!(
        sandbox.fish(&setup, "kubectl-devenv status --output "),
        // The global flag's values; dotenv and shell are for `env` alone.
        ["dotenv", "json", "shell", "table", "yaml"]
    );
}

#[test]
fn zsh_completes_the_executable_with_the_committed_script() {
    let sandbox = static_script_sandbox();
    let zshrc = format!("source {}", repo_file(GENERATED[1].1).display());
    let expected = ["status", "version", "forward", "completion"];
    let screen = sandbox.zsh(&zshrc, "kubectl-devenv ", 1, &expected);
    let words = shells::words(&screen);
    for expected in expected {
        assert!(words.contains(&expected), "{expected} missing:\n{screen}");
    }
}
