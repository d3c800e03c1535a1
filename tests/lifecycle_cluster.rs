//! The stack lifecycle (`up`, `down`, `status`, `logs`, `shell`) against the
//! test bed: a real API server, controller manager and scheduler, with kwok
//! playing the kubelet.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

impl Stack {
    /// Writes devenv.yaml with these component lines (YAML list items).
    fn write_components(&self, components: &str) -> PathBuf {
        self.write_spec(&format!("  components:\n{components}"))
    }

    /// kind/namespace/name -> resourceVersion of everything labelled as this stack's.
    fn resource_versions(&self) -> BTreeMap<String, String> {
        let text = kubectl_ok(&[
            "get",
            "namespaces,deployments,statefulsets,services,secrets,networkpolicies,pods",
            "-A",
            "-l",
            &self.selector(),
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
        ]);
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn secret_value(&self, namespace: &str, secret: &str, key: &str) -> String {
        kubectl_ok(&[
            "get",
            "secret",
            "-n",
            namespace,
            secret,
            "-o",
            &format!("jsonpath={{.data.{key}}}"),
        ])
    }

    fn assert_all_ready(&self, components: &[(&str, &str)]) {
        for (kind, name) in components {
            assert_eq!(
                ready_replicas(&self.test, kind, name),
                "1",
                "{kind}/{name} not ready"
            );
        }
        assert_eq!(
            ready_replicas(&self.dev, "deployment", "dev"),
            "1",
            "dev pod not ready"
        );
    }

    fn pod_names(&self, namespace: &str, component: &str) -> Vec<String> {
        kubectl_ok(&[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            &format!(
                "{},app.kubernetes.io/component={component}",
                self.selector()
            ),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
    }
}

const PHP_MYSQL_REDIS: &str = "    - kind: php\n    - kind: mysql\n    - kind: redis\n";
const TEST_WORKLOADS: [(&str, &str); 3] = [
    ("deployment", "php"),
    ("statefulset", "mysql"),
    ("statefulset", "redis"),
];

#[test]
fn up_brings_every_component_ready_and_a_rerun_changes_nothing() {
    let stack = Stack::new("lc-up");
    let spec = stack.write_components(PHP_MYSQL_REDIS);
    let summary = stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "--yes"]);
    stack.assert_all_ready(&TEST_WORKLOADS);
    assert!(
        summary.contains(&format!("mysql.{}.svc.cluster.local:3306", stack.test)),
        "{summary}"
    );
    assert!(
        summary.contains("mysql:3306") && summary.contains("redis:6379"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "kubectl devenv forward mysql --stack {}",
            stack.name
        )),
        "{summary}"
    );

    // The dev pod reaches the stack through aliases and gets the credentials from a Secret.
    let alias = kubectl_ok(&[
        "get",
        "service",
        "-n",
        &stack.dev,
        "mysql",
        "-o",
        "jsonpath={.spec.externalName}",
    ]);
    assert_eq!(alias, format!("mysql.{}.svc.cluster.local", stack.test));
    let env = kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        &stack.dev,
        "dev",
        "-o",
        "jsonpath={range .spec.template.spec.containers[0].env[*]}{.name}={.value}{.valueFrom.secretKeyRef.name}{\"\\n\"}{end}",
    ]);
    for expected in [
        "DB_HOST=mysql",
        "DB_PORT=3306",
        "DB_PASSWORD=mysql-credentials",
        "REDIS_HOST=redis",
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} missing in:\n{env}"
        );
    }

    let versions = stack.resource_versions();
    let password = stack.secret_value(&stack.test, "mysql-credentials", "password");
    let pods = stack.pod_names(&stack.test, "mysql");
    stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "--yes"]);
    assert_eq!(
        stack.resource_versions(),
        versions,
        "a re-run changed objects"
    );
    assert_eq!(
        stack.secret_value(&stack.test, "mysql-credentials", "password"),
        password
    );
    assert_eq!(
        stack.pod_names(&stack.test, "mysql"),
        pods,
        "a re-run restarted pods"
    );

    // The dev pod's copy of the Secret holds the same password.
    assert_eq!(
        stack.secret_value(&stack.dev, "mysql-credentials", "password"),
        password
    );
}

#[test]
fn an_interrupted_up_is_finished_by_the_next_one() {
    let stack = Stack::new("lc-int");
    let spec = stack.write_components(PHP_MYSQL_REDIS);
    let spec = spec.to_str().unwrap();
    // Interrupt at several points: before connecting, while applying, while waiting.
    for (signal, delay_ms) in [
        ("INT", 0),
        ("INT", 60),
        ("KILL", 150),
        ("INT", 300),
        ("KILL", 500),
    ] {
        let child = stack
            .command(&["up", "-f", spec, "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        if signal == "INT" && !out.status.success() && out.status.code().is_some() {
            assert!(
                err.contains("interrupted: run `kubectl devenv up` again"),
                "{err}"
            );
        }
    }
    stack.run_ok(&["up", "-f", spec, "--yes"]);
    stack.assert_all_ready(&TEST_WORKLOADS);
    let versions = stack.resource_versions();
    let password = stack.secret_value(&stack.test, "mysql-credentials", "password");
    assert_eq!(
        stack.secret_value(&stack.dev, "mysql-credentials", "password"),
        password
    );
    stack.run_ok(&["up", "-f", spec, "--yes"]);
    assert_eq!(
        stack.resource_versions(),
        versions,
        "not converged after the interruptions"
    );
}

#[test]
fn two_stacks_run_side_by_side() {
    let first = Stack::new("lc-a");
    let second = Stack::new("lc-b");
    let first_spec = first.write_components("    - kind: mysql\n");
    let second_spec = second.write_components("    - kind: redis\n    - kind: postgres\n");
    first.run_ok(&["up", "-f", first_spec.to_str().unwrap(), "-y"]);
    second.run_ok(&["up", "-f", second_spec.to_str().unwrap(), "-y"]);
    first.assert_all_ready(&[("statefulset", "mysql")]);
    second.assert_all_ready(&[("statefulset", "redis"), ("statefulset", "postgres")]);

    let status = first.run_ok(&["status", "--stack", &first.name]);
    assert!(
        status.contains("mysql") && !status.contains("postgres"),
        "{status}"
    );

    first.run_ok(&["down", "--stack", &first.name, "--purge", "-y"]);
    second.assert_all_ready(&[("statefulset", "redis"), ("statefulset", "postgres")]);
    let status = second.run_ok(&["status", "--stack", &second.name, "--exit-code"]);
    assert!(status.contains("postgres"), "{status}");
}

#[test]
fn down_keeps_data_and_credentials_until_purge() {
    let stack = Stack::new("lc-pvc");
    // A static volume of a class of our own, so the claim binds without a provisioner.
    let class = format!("{}-class", stack.name);
    let volume = format!("{}-pv", stack.name);
    kubectl_apply(&format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {volume}}}\nspec:\n  capacity: {{storage: 1Gi}}\n  \
         accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: {class}\n  \
         hostPath: {{path: /tmp/{volume}}}\n"
    ));
    let spec = stack.write_components(&format!(
        "    - kind: mysql\n      storage: {{size: 1Gi, className: {class}}}\n"
    ));
    let spec = spec.to_str().unwrap();
    stack.run_ok(&["up", "-f", spec, "-y"]);
    stack.assert_all_ready(&[("statefulset", "mysql")]);
    let claim_phase = || {
        kubectl(&[
            "get",
            "pvc",
            "-n",
            &stack.test,
            "data-mysql-0",
            "-o",
            "jsonpath={.status.phase}",
        ])
    };
    assert_eq!(stdout(&claim_phase()), "Bound");
    let password = stack.secret_value(&stack.test, "mysql-credentials", "password");

    let out = stack.run_ok(&["down", "-f", spec, "--yes"]);
    assert!(
        out.contains("data volumes and credential Secrets kept"),
        "{out}"
    );
    assert_eq!(
        stdout(&claim_phase()),
        "Bound",
        "down without --purge deleted the claim"
    );
    assert_eq!(
        stack.secret_value(&stack.test, "mysql-credentials", "password"),
        password
    );
    let left = kubectl_ok(&[
        "get",
        "statefulsets,services,pods",
        "-n",
        &stack.test,
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "workloads survived down: {left}");

    // The next up finds the database's password where it left it.
    stack.run_ok(&["up", "-f", spec, "-y"]);
    assert_eq!(
        stack.secret_value(&stack.test, "mysql-credentials", "password"),
        password
    );

    stack.run_ok(&["down", "-f", spec, "--yes", "--purge"]);
    assert!(!claim_phase().status.success(), "--purge kept the claim");
    for ns in [&stack.dev, &stack.test] {
        assert!(
            !kubectl(&["get", "namespace", ns]).status.success(),
            "--purge kept namespace {ns}"
        );
    }
    kubectl_ok(&["delete", "pv", &volume, "--wait=false"]);
}

#[test]
fn foreign_namespaces_are_never_touched() {
    let stack = Stack::new("lc-foreign");
    // Someone else's namespace, named like the one our spec asks for.
    kubectl_apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n---\napiVersion: v1\nkind: ConfigMap\n\
         metadata: {{name: precious, namespace: {}}}\ndata: {{owner: someone-else}}\n",
        stack.dev, stack.dev
    ));
    let spec = stack.write_components("    - kind: redis\n");
    let spec = spec.to_str().unwrap();
    let out = stack.run(&["up", "-f", spec, "-y"]);
    assert_error(
        &out,
        &format!(
            "namespace \"{}\" exists and was not created by kubectl-devenv",
            stack.dev
        ),
    );
    let out = stack.run(&["down", "-f", spec, "-y", "--purge"]);
    assert_error(
        &out,
        &format!(
            "namespace \"{}\" exists and was not created by kubectl-devenv",
            stack.dev
        ),
    );
    let out = stack.run(&["down", "--stack", &stack.name, "-y", "--purge"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to delete"),
        "{}",
        stderr(&out)
    );
    let kept = kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        &stack.dev,
        "precious",
        "-o",
        "jsonpath={.data.owner}",
    ]);
    assert_eq!(kept, "someone-else");
    assert!(
        !kubectl(&["get", "namespace", &stack.test]).status.success(),
        "up created the test namespace anyway"
    );

    // A namespace of another stack is refused too.
    let other = Stack::new("lc-other");
    let other_spec = other.write_components("    - kind: redis\n");
    other.run_ok(&["up", "-f", other_spec.to_str().unwrap(), "-y"]);
    let out = stack.run(&[
        "up",
        "-f",
        spec,
        "-y",
        "--dev-namespace",
        &format!("{}-x", stack.name),
        "--test-namespace",
        &other.test,
    ]);
    assert_error(
        &out,
        &format!("belongs to the kubectl-devenv stack \"{}\"", other.name),
    );
    kubectl_ok(&["delete", "namespace", &stack.dev, "--wait=false"]);
}

#[test]
fn without_a_terminal_up_and_down_name_the_missing_flag() {
    let stack = Stack::new("lc-notty");
    let out = stack.run(&["up"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_error(
        &out,
        "pass -f FILE or --components KIND[:VERSION],... (with --yes)",
    );
    let spec = stack.write_components("    - kind: redis\n");
    let out = stack.run(&["up", "-f", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_error(&out, "there is no terminal to ask; pass --yes");
    // Nothing was applied.
    assert!(!kubectl(&["get", "namespace", &stack.test]).status.success());

    stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "--yes"]);
    let out = stack.run(&["down", "--stack", &stack.name]);
    assert_eq!(out.status.code(), Some(2));
    assert_error(
        &out,
        "refusing to delete without confirmation: there is no terminal to ask; pass --yes",
    );
    // Nothing was deleted.
    assert_eq!(ready_replicas(&stack.test, "statefulset", "redis"), "1");
}

#[test]
fn flags_alone_create_a_stack() {
    let stack = Stack::new("lc-flags");
    stack.run_ok(&[
        "up",
        "--components",
        "mariadb,memcached",
        "--name",
        &stack.name,
        "--dev-namespace",
        &stack.dev,
        "--test-namespace",
        &stack.test,
        "--arch",
        "arm64",
        "--code-path",
        "/tmp",
        "--yes",
    ]);
    // Admitted by the API server's Pod Security admission: `restricted` in the
    // test namespace, `privileged` only in the dev namespace for the hostPath mount.
    stack.assert_all_ready(&[("statefulset", "mariadb"), ("deployment", "memcached")]);
    let mount = kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        &stack.dev,
        "dev",
        "-o",
        "jsonpath={.spec.template.spec.volumes[0].hostPath.path}",
    ]);
    assert_eq!(mount, "/tmp");
    let enforce = |ns: &str| {
        kubectl_ok(&[
            "get",
            "namespace",
            ns,
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ])
    };
    assert_eq!(enforce(&stack.test), "restricted");
    assert_eq!(enforce(&stack.dev), "privileged");
    let nodes = kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        &stack.selector(),
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert!(!nodes.is_empty());
    assert!(
        nodes.split_whitespace().all(|n| n == "kwok-arm64"),
        "{nodes}"
    );
}

/// Polls a tmux pane until `needle` shows, returning the screen.
fn wait_for_screen(socket: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("tmux")
            .args(["-L", socket, "capture-pane", "-p", "-t", "wizard"])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        if screen.contains(needle) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn send_keys(socket: &str, keys: &[&str]) {
    let mut args = vec!["-L", socket, "send-keys", "-t", "wizard"];
    args.extend_from_slice(keys);
    assert!(Command::new("tmux").args(&args).status().unwrap().success());
}

#[test]
fn the_wizard_in_a_real_terminal_writes_devenv_yaml_and_starts_the_stack() {
    let stack = Stack::new("lc-wiz");
    let socket = stack.name.clone();
    let script = stack.dir.path().join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncd '{}'\nKUBECONFIG='{}' '{}' up\necho \"EXIT=$?\"\nsleep 60\n",
            stack.dir.path().display(),
            std::env::var("KUBECONFIG").unwrap(),
            devenv_bin().display()
        ),
    )
    .unwrap();
    let started = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-s",
            "wizard",
            "-x",
            "160",
            "-y",
            "50",
            "sh",
        ])
        .arg(&script)
        .status()
        .unwrap();
    assert!(started.success());
    let kill_server = || {
        let _ = Command::new("tmux")
            .args(["-L", &socket, "kill-server"])
            .status();
    };

    wait_for_screen(&socket, "Stack name");
    send_keys(&socket, &[&stack.name, "Enter"]);
    wait_for_screen(&socket, "Test stack components");
    send_keys(&socket, &["Enter"]); // the preselected php, mysql, redis
    wait_for_screen(&socket, "php version");
    send_keys(&socket, &["Enter"]);
    wait_for_screen(&socket, "mysql version");
    send_keys(&socket, &["Down", "Enter"]); // the second version: 8.0
    wait_for_screen(&socket, "redis version");
    send_keys(&socket, &["Enter"]);
    wait_for_screen(&socket, "PHP version of the dev pod");
    send_keys(&socket, &["Enter"]);
    wait_for_screen(&socket, "with tools: ghcr.io/kubectl-devenv/php-dev:8.3");
    send_keys(&socket, &["Down", "Enter"]); // the bare official image
    wait_for_screen(&socket, "Dev namespace");
    send_keys(&socket, &["C-u", &stack.dev, "Enter"]);
    wait_for_screen(&socket, "Test namespace");
    send_keys(&socket, &["C-u", &stack.test, "Enter"]);
    wait_for_screen(&socket, "Code directory");
    send_keys(&socket, &["Enter"]);
    wait_for_screen(&socket, "Target CPU architecture");
    send_keys(&socket, &["Down", "Enter"]); // amd64
    let screen = wait_for_screen(&socket, "create this stack?");
    assert!(
        screen.contains("mysql:8.0"),
        "summary lacks the chosen version:\n{screen}"
    );
    send_keys(&socket, &["y"]);
    let screen = wait_for_screen(&socket, "EXIT=");
    kill_server();
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("FROM THE DEV POD"), "{screen}");

    let written = std::fs::read_to_string(stack.dir.path().join("devenv.yaml")).unwrap();
    assert!(
        written.contains(&format!("name: {}", stack.name)),
        "{written}"
    );
    assert!(written.contains("targetArch: amd64"), "{written}");
    assert!(
        written.contains("image: php:8.3-fpm-alpine"),
        "the bare image is written down: {written}"
    );
    stack.assert_all_ready(&TEST_WORKLOADS);

    // The written file replays: `up` without arguments reads it and changes nothing.
    let versions = stack.resource_versions();
    stack.run_ok(&["up", "--yes"]);
    assert_eq!(stack.resource_versions(), versions);
}

/// `shell` from a terminal: the remote terminal gets the window's size and
/// follows a resize (SIGWINCH), and the local terminal leaves raw mode after.
#[test]
fn shell_in_a_terminal_follows_the_window_size_and_restores_the_terminal() {
    let stack = Stack::new("lc-tty");
    let spec = stack.write_components("    - kind: redis\n");
    stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "-y"]);
    let dir = stack.dir.path();
    let [first, second, before, after] =
        ["first", "second", "before", "after"].map(|name| dir.join(name));
    // kwok runs the command on this machine, so it can leave its answers in files here.
    // The first size arrives just after the command starts, hence the pause.
    let remote = dir.join("remote.sh");
    std::fs::write(
        &remote,
        format!(
            "sleep 1\nstty size > '{first}'\n\
             while [ \"$(stty size)\" = \"$(cat '{first}')\" ]; do sleep 0.1; done\n\
             stty size > '{second}'\n",
            first = first.display(),
            second = second.display(),
        ),
    )
    .unwrap();
    let script = dir.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nstty -g > '{}'\nKUBECONFIG='{}' '{}' shell --stack {} -- sh '{}'\n\
             stty -g > '{}'\nsleep 60\n",
            before.display(),
            std::env::var("KUBECONFIG").unwrap(),
            devenv_bin().display(),
            stack.name,
            remote.display(),
            after.display(),
        ),
    )
    .unwrap();
    let socket = stack.name.clone();
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .status()
            .unwrap()
    };
    let wait_for = |path: &Path| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() || std::fs::read_to_string(path).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "no {}", path.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::read_to_string(path).unwrap()
    };
    let script = script.to_str().unwrap();
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        "tty",
        "-x",
        "91",
        "-y",
        "27",
        "sh",
        script,
    ]);
    assert!(started.success());
    let first_size = wait_for(&first);
    assert!(tmux(&["resize-window", "-t", "tty", "-x", "100", "-y", "30"]).success());
    let second_size = wait_for(&second);
    let restored = wait_for(&after);
    let cooked = wait_for(&before);
    tmux(&["kill-server"]);
    assert_eq!(first_size.trim(), "27 91");
    assert_eq!(second_size.trim(), "30 100");
    assert_eq!(restored, cooked, "the terminal is left in raw mode");
}

/// Sets a pod's status the way a kubelet would, through the status subresource.
fn patch_pod_status(namespace: &str, pod: &str, status: &str) {
    kubectl_ok(&[
        "patch",
        "pod",
        "-n",
        namespace,
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
}

/// A pod status that kwok's stages leave alone: they only act on Pending
/// pods (pod-ready), Job pods (pod-complete) and deleted ones (pod-delete),
/// so a Running pod with a failing container keeps the status we give it,
/// exactly as a kubelet reports a container that failed after starting once.
fn failing_status(
    image: &str,
    container: &str,
    waiting: (&str, &str),
    last_message: &str,
) -> String {
    serde_json::json!({
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"}
            ],
            "containerStatuses": [{
                "name": container,
                "image": image,
                "imageID": "",
                "ready": false,
                "started": false,
                "restartCount": 4,
                "state": {"waiting": {"reason": waiting.0, "message": waiting.1}},
                "lastState": {"terminated": {
                    "exitCode": 1, "reason": "Error", "message": last_message,
                    "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"
                }}
            }]
        }
    })
    .to_string()
}

/// Ready replicas of a workload, as the controllers report them.
fn ready_replicas(namespace: &str, kind: &str, name: &str) -> String {
    kubectl_ok(&[
        "get",
        kind,
        "-n",
        namespace,
        name,
        "-o",
        "jsonpath={.status.readyReplicas}",
    ])
}

fn wait_until_not_ready(namespace: &str, kind: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready_replicas(namespace, kind, name) == "1" {
        assert!(Instant::now() < deadline, "{kind}/{name} stayed ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Appends lines to a kwok log file in the CRI format kwok serves.
fn append_log(file: &str, lines: &[&str]) {
    let path = Path::new(&testbed_env("TESTBED_DIR"))
        .join("kwok")
        .join(file);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(log, "2026-11-27T10:00:00.000000000Z stdout F {line}").unwrap();
    }
}

#[test]
fn failing_pods_are_reported_early_with_their_cause() {
    let stack = Stack::new("lc-fail");
    let spec = stack.write_components("    - kind: mysql\n    - kind: redis\n    - kind: php\n");
    let spec = spec.to_str().unwrap();
    stack.run_ok(&["up", "-f", spec, "-y"]);

    // ImagePullBackOff names the image.
    patch_pod_status(
        &stack.test,
        "mysql-0",
        &failing_status(
            "mysql:8.4",
            "mysql",
            ("ImagePullBackOff", "Back-off pulling image \"mysql:8.4\""),
            "",
        ),
    );
    wait_until_not_ready(&stack.test, "statefulset", "mysql");
    let started = Instant::now();
    let out = stack.run(&["up", "-f", spec, "-y", "--timeout", "2m"]);
    assert_error(
        &out,
        "mysql is not ready: cannot pull image \"mysql:8.4\" (ImagePullBackOff)",
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "reported late: {:?}",
        started.elapsed()
    );

    // CrashLoopBackOff comes with the last log lines of the crashed container.
    let marker = format!("{} redis crashed: bad config", stack.name);
    append_log("pod-previous.log", &["starting redis", &marker]);
    patch_pod_status(
        &stack.test,
        "redis-0",
        &failing_status(
            "redis:7.4",
            "redis",
            (
                "CrashLoopBackOff",
                "back-off 40s restarting failed container",
            ),
            "",
        ),
    );
    wait_until_not_ready(&stack.test, "statefulset", "redis");
    let out = stack.run(&["up", "-f", spec, "-y"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "redis: container \"redis\" keeps crashing (CrashLoopBackOff): last exit code 1"
        ),
        "{err}"
    );
    assert!(
        err.contains("redis: last log lines:") && err.contains(&marker),
        "{err}"
    );
    // Every problem is listed, and the error line counts the others.
    assert_error(
        &out,
        "mysql is not ready: cannot pull image \"mysql:8.4\" (ImagePullBackOff)",
    );
    assert!(err.contains("(and 1 more problem)"), "{err}");

    // An architecture mismatch is told apart from an ordinary crash.
    let php_pod = stack.pod_names(&stack.test, "php").remove(0);
    patch_pod_status(
        &stack.test,
        &php_pod,
        &failing_status(
            "php:8.3-fpm-alpine",
            "php",
            ("CrashLoopBackOff", "back-off"),
            "exec /usr/local/bin/docker-php-entrypoint: exec format error",
        ),
    );
    wait_until_not_ready(&stack.test, "deployment", "php");
    let out = stack.run(&["up", "-f", spec, "-y"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("php: image \"php:8.3-fpm-alpine\" does not run on node")
            && err.contains("exec format error")
            && err.contains("spec.targetArch / --arch"),
        "{err}"
    );
}

#[test]
fn unschedulable_pods_and_pending_claims_are_reported_after_a_grace_period() {
    let stack = Stack::new("lc-sched");
    // More CPU than any kwok node offers, and a claim no volume can satisfy.
    let spec = stack.write_components(&format!(
        "    - kind: memcached\n      resources:\n        requests: {{cpu: \"5000\", memory: 64Mi}}\n        \
         limits: {{cpu: \"5000\", memory: 64Mi}}\n    - kind: redis\n      storage: {{className: {}-none}}\n",
        stack.name
    ));
    let out = stack.run(&["up", "-f", spec.to_str().unwrap(), "-y", "--timeout", "2m"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        // Two kwok nodes without the CPU, and the real node's taint.
        err.contains("memcached: cannot be scheduled: 0/3 nodes are available"),
        "{err}"
    );
    assert!(err.contains("Insufficient cpu"), "{err}");
    assert!(
        err.contains(&format!(
            "redis: PersistentVolumeClaim \"data-redis-0\" is still Pending (StorageClass \"{}-none\")",
            stack.name
        )),
        "{err}"
    );
}

#[test]
fn timeouts_name_what_was_still_missing() {
    let stack = Stack::new("lc-timeout");
    let spec = stack.write_components(&format!(
        "    - kind: redis\n      storage: {{className: {}-none}}\n",
        stack.name
    ));
    let out = stack.run(&["up", "-f", spec.to_str().unwrap(), "-y", "--timeout", "3s"]);
    assert_error(
        &out,
        "timed out after 3s waiting for redis (0/1 ready) (--timeout)",
    );
}

#[test]
fn logs_and_shell_go_through_the_simulated_kubelet() {
    let stack = Stack::new("lc-logs");
    let spec = stack.write_components("    - kind: redis\n");
    stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "-y"]);

    let marker = format!("{} ready to accept connections", stack.name);
    append_log("pod.log", &[&marker]);
    let logs = stack.run_ok(&["logs", "redis", "--tail", "50"]);
    assert!(logs.lines().any(|l| l == marker), "{logs}");
    let logs = stack.run_ok(&["logs", "dev", "--stack", &stack.name, "--tail", "1"]);
    assert_eq!(logs.lines().count(), 1, "{logs}");

    // kwok runs exec'd commands on this machine, in the test bed's kwok directory.
    let out = stack.run_ok(&["shell", "--", "sh", "-c", "echo from-the-dev-pod; pwd"]);
    assert!(out.starts_with("from-the-dev-pod\n"), "{out}");
    let out = stack.run(&["shell", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_error(&out, "command terminated with exit code 7");
    let out = stack.run(&["shell", "postgres"]);
    assert_error(&out, "no pods for component \"postgres\"");
}

#[test]
fn removing_a_component_from_the_spec_removes_it_from_the_stack() {
    let stack = Stack::new("lc-prune");
    let spec = stack.write_components("    - kind: mysql\n    - kind: redis\n");
    stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "-y"]);
    let mysql_version = |stack: &Stack| {
        kubectl_ok(&[
            "get",
            "statefulset",
            "-n",
            &stack.test,
            "mysql",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
    };
    let before = mysql_version(&stack);
    let spec = stack.write_components("    - kind: mysql\n");
    stack.run_ok(&["up", "-f", spec.to_str().unwrap(), "-y"]);
    for (ns, kind) in [
        (&stack.test, "statefulset"),
        (&stack.test, "service"),
        (&stack.dev, "service"),
    ] {
        let out = kubectl(&["get", kind, "-n", ns, "redis"]);
        assert!(
            !out.status.success(),
            "{kind} {ns}/redis survived its removal from the spec"
        );
    }
    assert_eq!(
        mysql_version(&stack),
        before,
        "the kept component was touched"
    );
    // The kept component's alias stays.
    assert!(
        kubectl(&["get", "service", "-n", &stack.dev, "mysql"])
            .status
            .success()
    );
}

#[test]
fn credentials_are_printed_only_when_asked_for() {
    let stack = Stack::new("lc-creds");
    let up = stack.run(&[
        "up",
        "--components",
        "mariadb,redis",
        "--name",
        &stack.name,
        "--dev-namespace",
        &stack.dev,
        "--test-namespace",
        &stack.test,
        "--yes",
    ]);
    assert!(up.status.success(), "{}", stderr(&up));
    let password = kubectl_ok(&[
        "get",
        "secret",
        "-n",
        &stack.test,
        "mariadb-credentials",
        "-o",
        "go-template={{.data.password | base64decode}}",
    ]);
    assert!(password.len() >= 16, "generated password: {password:?}");
    for text in [stdout(&up), stderr(&up)] {
        assert!(!text.contains(&password), "up printed the password");
    }
    let shown: serde_json::Value = serde_json::from_str(&stack.run_ok(&[
        "credentials",
        "mariadb",
        "--stack",
        &stack.name,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(shown["password"], password.as_str());
    assert_eq!(shown["username"], "app");
    assert_eq!(shown["database"], "app");
    let table = stack.run_ok(&["credentials", "mariadb", "--stack", &stack.name]);
    assert!(table.starts_with("KEY"), "{table}");
    assert_error(
        &stack.run(&["credentials", "redis", "--stack", &stack.name]),
        "no credentials for component \"redis\"",
    );
    stack.run_ok(&["down", "--stack", &stack.name, "--purge", "--yes"]);
}
