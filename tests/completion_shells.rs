//! `kubectl devenv <TAB>` in real bash (with bash-completion), zsh and fish, through
//! kubectl's own completion: kubectl (the test bed's, 1.36) finds the `kubectl-devenv`
//! plugin and the committed `completions/kubectl_complete-devenv` shim on PATH, exactly
//! as after a krew install plus the caveats' set-up step.
//!
//! Needs the test bed (`--features cluster-tests`): TESTBED_KUBECTL and KUBECONFIG with
//! the contexts `testbed`, `testbed-second` and `testbed-restricted`.

mod common;
mod shells;

use std::path::Path;

use common::{devenv_bin, repo, stderr, testbed_env};
use shells::Sandbox;

const TESTBED_CONTEXTS: [&str; 3] = ["testbed", "testbed-restricted", "testbed-second"];

const BASH_SETUP: &str = "source <(kubectl completion bash)";
const ZSH_SETUP: &str = "source <(kubectl completion zsh)";
const FISH_SETUP: &str = "kubectl completion fish | source";

/// A shell sandbox where `kubectl` is the test bed's and the plugin and its shim are installed.
fn kubectl_sandbox() -> Sandbox {
    common::require_cluster();
    let kubectl = testbed_env("TESTBED_KUBECTL");
    let mut sandbox = Sandbox::new();
    sandbox.link("kubectl", Path::new(&kubectl));
    sandbox.link("kubectl-devenv", &devenv_bin());
    let shim = repo().join("completions/kubectl_complete-devenv");
    sandbox.link("kubectl_complete-devenv", &shim);
    sandbox
        .env
        .push(("KUBECONFIG".into(), testbed_env("KUBECONFIG")));
    sandbox
}

/// A stack brought up with `kubectl devenv up` for one test and taken down on drop, with
/// component names (`db`, `cache`) that only the stack, not the catalog, can know.
struct Stack {
    name: String,
    test_namespace: String,
}

const STACK_COMPONENTS: [&str; 2] = ["cache", "db"];
/// What `forward` offers for that stack: its components and the dev pod,
/// whose web server has a Service of its own.
const FORWARDABLE: [&str; 3] = ["cache", "db", "dev"];

impl Stack {
    fn up() -> Self {
        common::require_cluster();
        let name = common::unique("cmpl");
        let test_namespace = format!("{name}-test");
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("devenv.yaml");
        std::fs::write(
            &spec,
            format!(
                "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata:\n  name: {name}\n\
                 spec:\n  namespaces:\n    dev: {name}-dev\n    test: {test_namespace}\n\
                 \x20 components:\n    - kind: mysql\n      name: db\n    - kind: redis\n      name: cache\n"
            ),
        )
        .unwrap();
        let out = common::devenv(&["up", "-f", spec.to_str().unwrap(), "--yes"]);
        assert!(out.status.success(), "up failed: {}", stderr(&out));
        Self {
            name,
            test_namespace,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let out = common::devenv(&["down", "--stack", &self.name, "--purge", "--yes"]);
        if !out.status.success() {
            eprintln!("down --stack {} failed: {}", self.name, stderr(&out));
        }
    }
}

fn assert_offers(offered: &[String], expected: &[&str], line: &str) {
    for expected in expected {
        assert!(
            offered.iter().any(|o| o == expected),
            "`{line}<TAB>` did not offer {expected}: {offered:?}"
        );
    }
}

#[test]
fn bash_completes_kubectl_devenv() {
    let sandbox = kubectl_sandbox();
    let line = "kubectl devenv ";
    let offered = sandbox.bash(BASH_SETUP, line);
    assert_offers(
        &offered,
        &[
            "up",
            "down",
            "status",
            "logs",
            "shell",
            "forward",
            "check",
            "completion",
            "version",
        ],
        line,
    );
    assert!(offered.iter().all(|o| !o.starts_with('-')), "{offered:?}");

    let line = "kubectl devenv status --context ";
    assert_eq!(sandbox.bash(BASH_SETUP, line), TESTBED_CONTEXTS, "{line}");
    let line = "kubectl devenv status --context testbed-s";
    assert_eq!(sandbox.bash(BASH_SETUP, line), ["testbed-second"], "{line}");
}

#[test]
fn bash_completes_components_of_a_running_stack() {
    let stack = Stack::up();
    let sandbox = kubectl_sandbox();
    let line = format!("kubectl devenv forward --stack {} ", stack.name);
    assert_eq!(sandbox.bash(BASH_SETUP, &line), FORWARDABLE, "{line}");
    let line = format!("kubectl devenv logs -n {} c", stack.test_namespace);
    assert_eq!(sandbox.bash(BASH_SETUP, &line), ["cache"], "{line}");
    // `shell` and `logs` reach the dev pod too.
    let line = format!("kubectl devenv shell --stack {} ", stack.name);
    assert_eq!(
        sandbox.bash(BASH_SETUP, &line),
        ["cache", "db", "dev"],
        "{line}"
    );
    // Without a filter, every stack's components are offered, ours among them.
    let line = "kubectl devenv forward ";
    assert_offers(&sandbox.bash(BASH_SETUP, line), &STACK_COMPONENTS, line);
    let line = "kubectl devenv status --stack cmpl";
    assert_offers(&sandbox.bash(BASH_SETUP, line), &[&stack.name], line);
}

#[test]
fn fish_completes_kubectl_devenv() {
    let sandbox = kubectl_sandbox();
    let line = "kubectl devenv ";
    let offered = sandbox.fish(FISH_SETUP, line);
    assert_offers(
        &offered,
        &["up", "down", "status", "forward", "completion", "version"],
        line,
    );
    let line = "kubectl devenv --context ";
    assert_eq!(sandbox.fish(FISH_SETUP, line), TESTBED_CONTEXTS, "{line}");
}

#[test]
fn fish_completes_components_of_a_running_stack() {
    let stack = Stack::up();
    let sandbox = kubectl_sandbox();
    let line = format!("kubectl devenv forward --stack {} ", stack.name);
    assert_eq!(sandbox.fish(FISH_SETUP, &line), FORWARDABLE, "{line}");
}

#[test]
fn zsh_completes_kubectl_devenv() {
    let sandbox = kubectl_sandbox();
    let expected = ["up", "down", "status", "forward", "completion", "version"];
    let screen = sandbox.zsh(ZSH_SETUP, "kubectl devenv ", 1, &expected);
    let words = shells::words(&screen);
    for expected in expected {
        assert!(
            words.contains(&expected),
            "{expected} not offered:\n{screen}"
        );
    }
    // The contexts share the prefix `testbed`: the first TAB inserts it, the second lists.
    let screen = sandbox.zsh(ZSH_SETUP, "kubectl devenv --context ", 2, &TESTBED_CONTEXTS);
    let words = shells::words(&screen);
    for expected in TESTBED_CONTEXTS {
        assert!(
            words.contains(&expected),
            "{expected} not offered:\n{screen}"
        );
    }
}

#[test]
fn zsh_completes_components_of_a_running_stack() {
    let stack = Stack::up();
    let sandbox = kubectl_sandbox();
    let line = format!("kubectl devenv forward -n {} ", stack.test_namespace);
    let screen = sandbox.zsh(ZSH_SETUP, &line, 1, &STACK_COMPONENTS);
    let words = shells::words(&screen);
    for expected in STACK_COMPONENTS {
        assert!(
            words.contains(&expected),
            "{expected} not offered:\n{screen}"
        );
    }
}
