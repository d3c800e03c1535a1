//! The product on the test bed's real node: a kubelet with containerd and
//! runc, CNI bridge networking, kube-proxy, CoreDNS, the local-path
//! provisioner and kube-router enforcing NetworkPolicy. Every pod here runs
//! a real container from the test bed's Debian-built images, so readiness
//! probes, DNS names, volumes, policies, logs, exec and port-forwards are
//! the real thing. Stacks land on the node through `spec.placement` and
//! `image:` overrides only; nothing in the product knows about the test bed.
//!
//! Without the real node these tests fail: they never fall back to kwok.
#![cfg(feature = "cluster-tests")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use sha2::{Digest, Sha256};

const STARTUP: Duration = Duration::from_secs(120);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The test bed's real node and its images, read from the test bed's env;
/// a missing node or setting fails the test.
struct RealNode {
    node: String,
    busybox: String,
    mariadb: String,
    redis: String,
    postgres: String,
    php: String,
}

fn real_node() -> &'static RealNode {
    static NODE: OnceLock<RealNode> = OnceLock::new();
    NODE.get_or_init(|| {
        require_cluster();
        let node = testbed_env("TESTBED_REAL_NODE");
        let ready = kubectl(&[
            "get",
            "node",
            &node,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ]);
        assert!(
            ready.status.success() && stdout(&ready) == "True",
            "the test bed's real node \"{node}\" is missing or not Ready ({}{}): \
             these tests need it (tests/testbed/up.sh starts it)",
            stdout(&ready),
            stderr(&ready)
        );
        RealNode {
            node,
            busybox: testbed_env("TESTBED_IMAGE_BUSYBOX"),
            mariadb: testbed_env("TESTBED_IMAGE_MARIADB"),
            redis: testbed_env("TESTBED_IMAGE_REDIS"),
            postgres: testbed_env("TESTBED_IMAGE_POSTGRES"),
            php: testbed_env("TESTBED_IMAGE_PHP_FPM"),
        }
    })
}

/// `spec.placement` and `targetArch` that put a stack on the real node, as
/// a team would put it on a tainted node pool.
const PLACEMENT: &str = "  targetArch: amd64\n  placement:\n    nodeSelector: {devenv.test/real-node: \"true\"}\n    \
     tolerations: [{key: devenv.test/real-node, operator: Exists, effect: NoSchedule}]\n";

/// The registry of the test bed speaks plain HTTP.
fn registry_host() -> String {
    testbed_env("TESTBED_REGISTRY")
}

impl Stack {
    /// A stack on the real node: fails at once when the node is missing.
    fn on_real_node(prefix: &str) -> Self {
        real_node();
        Stack::new(prefix)
    }

    /// devenv.yaml with the real node's placement, the dev pod on the
    /// test bed's PHP-FPM image (plus `dev_extra` lines), and these components.
    fn write_real_spec(&self, dev_extra: &str, components: &str) -> PathBuf {
        self.write_spec(&format!(
            "{PLACEMENT}  dev:\n    image: {}\n{dev_extra}  components:\n{components}",
            real_node().php
        ))
    }

    /// `up` of ./devenv.yaml with the flags every real-node run needs.
    fn up(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "up",
            "--yes",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--timeout",
            "4m",
        ];
        let registry = registry_host();
        if registry != "127.0.0.1:5000" {
            args.extend(["--insecure-registry", registry.as_str()]);
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn up_ok(&self) -> String {
        expect_success(&self.up(&[]), "up")
    }

    /// A command in the dev pod through `kubectl devenv shell`; its stdout.
    /// `up` returns once the Services list their pods as ready endpoints, but
    /// kube-proxy programs them a moment later, and a connection made before
    /// that leaves un-NATed: "No route to host". That one error is retried
    /// for 20 s; kube-router's policy rejections read "Connection refused".
    fn in_dev_pod(&self, command: &[&str]) -> String {
        let mut args = vec!["shell", "--stack", &self.name, "--"];
        args.extend_from_slice(command);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run(&args);
            if out.status.success() {
                return stdout(&out);
            }
            if !stderr(&out).contains("No route to host") || Instant::now() >= deadline {
                return self.run_ok(&args);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// kind/namespace/name -> resourceVersion of everything labelled as this stack's.
    fn resource_versions(&self) -> BTreeMap<String, String> {
        let text = kubectl_ok(&[
            "get",
            "namespaces,deployments,statefulsets,services,secrets,networkpolicies,pods,persistentvolumeclaims",
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

    /// `namespace/pod` of every pod of the stack.
    fn pods(&self) -> Vec<(String, String)> {
        kubectl_ok(&[
            "get",
            "pods",
            "-A",
            "-l",
            &self.selector(),
            "-o",
            "jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{\"\\n\"}{end}",
        ])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
        .collect()
    }

    fn pod_of(&self, namespace: &str, component: &str) -> String {
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
            "jsonpath={.items[0].metadata.name}",
        ])
    }

    /// A key of a component's generated credentials, decoded.
    fn secret(&self, component: &str, key: &str) -> String {
        let encoded = kubectl_ok(&[
            "get",
            "secret",
            "-n",
            &self.test,
            &format!("{component}-credentials"),
            "-o",
            &format!("jsonpath={{.data.{key}}}"),
        ]);
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .unwrap(),
        )
        .unwrap()
    }
}

fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// PHP run in the dev pod, connecting with the dev pod's own environment.
const PDO_CONNECT: &str = r#"
$dsn = getenv('DB_CONNECTION') . ':host=' . getenv('DB_HOST') . ';port=' . getenv('DB_PORT') . ';dbname=' . getenv('DB_DATABASE');
$pdo = new PDO($dsn, getenv('DB_USERNAME'), getenv('DB_PASSWORD'), [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
"#;

fn php(body: &str) -> String {
    format!("{PDO_CONNECT}{body}")
}

/// `Uid:` and `CapEff:` of PID 1 in a container, read through kubectl exec.
fn process_status(namespace: &str, pod: &str) -> BTreeMap<String, String> {
    kubectl_ok(&["exec", "-n", namespace, pod, "--", "cat", "/proc/1/status"])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn a_stack_on_the_real_node_is_ready_locked_down_and_keeps_its_data() {
    let node = real_node();
    let stack = Stack::on_real_node("rn-life");
    stack.write_real_spec(
        "",
        &format!(
            "    - {{kind: mysql, image: {}}}\n    - {{kind: redis, image: {}}}\n    - {{kind: php, image: {}}}\n",
            node.mariadb, node.redis, node.php
        ),
    );
    let summary = stack.up_ok();
    assert!(summary.contains("mysql:3306"), "{summary}");

    // Every pod: Ready through its real readiness probe, on the real node,
    // running as the image's non-root user with no capability at all.
    let pods = stack.pods();
    assert_eq!(pods.len(), 4, "{pods:?}");
    for (namespace, pod) in &pods {
        let fields = kubectl_ok(&[
            "get",
            "pod",
            "-n",
            namespace,
            pod,
            "-o",
            r#"jsonpath={.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status} {.spec.containers[0].readinessProbe.tcpSocket.port}"#,
        ]);
        let fields: Vec<&str> = fields.split_whitespace().collect();
        assert_eq!(
            fields[..2],
            [node.node.as_str(), "True"],
            "{namespace}/{pod}"
        );
        assert!(
            !fields[2].is_empty(),
            "{namespace}/{pod} has a TCP readiness probe"
        );
        let status = process_status(namespace, pod);
        let uids: Vec<&str> = status["Uid"].split_whitespace().collect();
        assert!(
            uids.iter().all(|u| *u != "0"),
            "{namespace}/{pod} runs as root: {uids:?}"
        );
        for capabilities in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(
                status[capabilities], "0000000000000000",
                "{namespace}/{pod} {capabilities}"
            );
        }
        assert_eq!(status["NoNewPrivs"], "1", "{namespace}/{pod}");
        assert_eq!(status["Seccomp"], "2", "{namespace}/{pod} seccomp filter");
    }
    // The mysql kind runs the MariaDB stand-in as its image's 999; php as 82.
    let mysql_pod = stack.pod_of(&stack.test, "mysql");
    assert!(process_status(&stack.test, &mysql_pod)["Uid"].starts_with("999"));
    let dev_pod = stack.pod_of(&stack.dev, "dev");
    assert!(process_status(&stack.dev, &dev_pod)["Uid"].starts_with("82"));
    for namespace in [&stack.dev, &stack.test] {
        let enforce = kubectl_ok(&[
            "get",
            "namespace",
            namespace,
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ]);
        assert_eq!(enforce, "restricted", "{namespace}");
    }

    // The claims were bound by the provisioner, on the real node.
    let claims = kubectl_ok(&[
        "get",
        "pvc",
        "-n",
        &stack.test,
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.spec.storageClassName} {.metadata.annotations.volume\.kubernetes\.io/storage-provisioner} {.metadata.annotations.volume\.kubernetes\.io/selected-node}{"\n"}{end}"#,
    ]);
    let claims: Vec<Vec<&str>> = claims
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(claims.len(), 2, "{claims:?}");
    let class = testbed_env("TESTBED_STORAGE_CLASS");
    for claim in &claims {
        assert_eq!(
            claim[1..],
            [
                "Bound",
                class.as_str(),
                "rancher.io/local-path",
                node.node.as_str()
            ],
            "{claim:?}"
        );
    }

    // A rerun changes nothing.
    let versions = stack.resource_versions();
    stack.up_ok();
    assert_eq!(
        stack.resource_versions(),
        versions,
        "a rerun changed objects"
    );

    // From inside the dev pod, by short name through CoreDNS and kube-proxy,
    // with the credentials from the pod's own environment.
    let host = stack.in_dev_pod(&["sh", "-c", "echo $DB_HOST:$DB_PORT $REDIS_HOST:$REDIS_PORT"]);
    assert_eq!(host.trim(), "mysql:3306 redis:6379");
    let marker = format!("row-{}", stack.name);
    let answer = stack.in_dev_pod(&[
        "php",
        "-r",
        &php(&format!(
            "$pdo->exec('CREATE TABLE IF NOT EXISTS kept (v VARCHAR(64))');\n\
             $pdo->exec(\"INSERT INTO kept VALUES ('{marker}')\");\n\
             echo $pdo->query('SELECT 6 * 7')->fetchColumn(), ' ', $pdo->getAttribute(PDO::ATTR_DRIVER_NAME), \"\\n\";"
        )),
    ]);
    assert_eq!(answer.trim(), "42 mysql");
    let redis = stack.in_dev_pod(&[
        "php",
        "-r",
        "$r = new Redis(); $r->connect(getenv('REDIS_HOST'), (int) getenv('REDIS_PORT'), 5); \
         $r->set('devenv', 'through-the-alias'); echo $r->get('devenv'), \"\\n\";",
    ]);
    assert_eq!(redis.trim(), "through-the-alias");

    // `down` keeps the data: the rows are there after the next `up`.
    stack.run_ok(&["down", "--stack", &stack.name, "--yes"]);
    wait_for("the stack's pods to go", STARTUP, || {
        stack.pods().is_empty().then_some(())
    });
    stack.up_ok();
    let kept = stack.in_dev_pod(&[
        "php",
        "-r",
        &php("foreach ($pdo->query('SELECT v FROM kept') as $row) { echo $row['v'], \"\\n\"; }"),
    ]);
    assert_eq!(kept.trim(), marker, "rows written before `down`");

    // `down --purge` removes everything, the volumes with their claims.
    let volumes = kubectl_ok(&[
        "get",
        "pvc",
        "-n",
        &stack.test,
        "-o",
        "jsonpath={.items[*].spec.volumeName}",
    ]);
    stack.run_ok(&[
        "down",
        "--stack",
        &stack.name,
        "--purge",
        "--yes",
        "--timeout",
        "2m",
    ]);
    let left = kubectl_ok(&[
        "get",
        "namespaces,pvc,secrets,pods",
        "-A",
        "-l",
        &stack.selector(),
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "left after --purge");
    for volume in volumes.split_whitespace() {
        wait_for("the provisioner to delete the volume", STARTUP, || {
            let out = kubectl(&["get", "pv", volume]);
            (!out.status.success()).then_some(())
        });
    }
    for namespace in [&stack.dev, &stack.test] {
        wait_for("the namespace to go", STARTUP, || {
            (!kubectl(&["get", "namespace", namespace]).status.success()).then_some(())
        });
    }
}

/// A pod in a namespace of its own on the real node, running `script`.
fn foreign_pod(namespace: &str, script: &str) -> String {
    let node = real_node();
    kubectl_apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: outsider, namespace: {namespace}}}
spec:
  restartPolicy: Never
  nodeSelector: {{devenv.test/real-node: "true"}}
  tolerations: [{{key: devenv.test/real-node, operator: Exists, effect: NoSchedule}}]
  securityContext: {{runAsNonRoot: true, runAsUser: 65534, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: probe
      image: {}
      command: [sh, -c, {}]
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
"#,
        node.busybox,
        serde_json::to_string(script).unwrap()
    ));
    wait_for("the outsider pod to finish", STARTUP, || {
        let phase = kubectl_ok(&[
            "get",
            "pod",
            "-n",
            namespace,
            "outsider",
            "-o",
            "jsonpath={.status.phase}",
        ]);
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(())
    });
    let logs = kubectl_ok(&["logs", "-n", namespace, "outsider"]);
    kubectl_ok(&["delete", "pod", "-n", namespace, "outsider", "--wait=false"]);
    wait_for("the outsider pod to go", STARTUP, || {
        (!kubectl(&["get", "pod", "-n", namespace, "outsider"])
            .status
            .success())
        .then_some(())
    });
    logs
}

/// A namespace the tests create for a pod that is not the stack's.
struct Foreign(String);

impl Foreign {
    fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        kubectl_ok(&["create", "namespace", &name]);
        Self(name)
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
    }
}

fn isolation_check(stack: &Stack, output: &str) -> Output {
    stack.run(&[
        "check",
        "--isolation",
        "--stack",
        &stack.name,
        "--probe-image",
        &real_node().busybox,
        "-o",
        output,
    ])
}

/// No probe namespace and no probe pod outlive the check.
fn assert_probes_removed(stack: &Stack) {
    let probe_namespace = format!("{}-isolation-probe", stack.name);
    wait_for("the probe namespace to go", STARTUP, || {
        (!kubectl(&["get", "namespace", &probe_namespace])
            .status
            .success())
        .then_some(())
    });
    let probes = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &stack.dev,
        "-l",
        "kubectl-devenv.io/role=isolation-probe",
        "-o",
        "name",
    ]);
    assert_eq!(probes.trim(), "", "probe pods left in the dev namespace");
}

#[test]
fn isolation_is_measured_and_check_isolation_reports_both_results() {
    let node = real_node();
    let stack = Stack::on_real_node("rn-iso");
    stack.write_real_spec(
        "",
        &format!(
            "    - {{kind: postgres, image: {}}}\n    - {{kind: redis, image: {}}}\n",
            node.postgres, node.redis
        ),
    );
    stack.up_ok();
    let postgres = format!("postgres.{}.svc.cluster.local", stack.test);

    // The dev pod reaches PostgreSQL by short name with its own environment.
    let answer = stack.in_dev_pod(&[
        "php",
        "-r",
        &php("echo $pdo->query('SELECT 6 * 7')->fetchColumn(), ' ', $pdo->getAttribute(PDO::ATTR_DRIVER_NAME), \"\\n\";"),
    ]);
    assert_eq!(answer.trim(), "42 pgsql");

    // Measured from a foreign namespace: refused, while the dev pod connects.
    let foreign = Foreign::new("rn-iso-foreign");
    let probe = format!(
        "if timeout 5 nc -w 2 {postgres} 5432 </dev/null 2>/dev/null; then echo reached; else echo refused; fi"
    );
    assert_eq!(foreign_pod(&foreign.0, &probe).trim(), "refused");
    let from_dev = stack.in_dev_pod(&[
        "php",
        "-r",
        &format!(
            "$s = @fsockopen('{postgres}', 5432, $errno, $error, 5); echo $s ? \"reached\\n\" : \"refused: $error\\n\";"
        ),
    ]);
    assert_eq!(from_dev.trim(), "reached");

    // check --isolation agrees: enforced, exit 0.
    let out = isolation_check(&stack, "json");
    assert!(
        out.status.success(),
        "check --isolation: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["verdict"], "enforced", "{report}");
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{report}");
    for target in targets {
        assert_eq!(target["fromDevNamespace"], "open", "{report}");
        assert_eq!(target["fromOutside"], "blocked", "{report}");
    }
    assert_probes_removed(&stack);

    // Without the policy, traffic passes: measured, and reported as such.
    kubectl_ok(&[
        "delete",
        "networkpolicy",
        "-n",
        &stack.test,
        "devenv-isolation",
    ]);
    wait_for(
        "kube-router to drop the policy",
        Duration::from_secs(30),
        || (foreign_pod(&foreign.0, &probe).trim() == "reached").then_some(()),
    );
    let out = isolation_check(&stack, "table");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let table = stdout(&out);
    assert!(table.contains("Verdict:  not enforced"), "{table}");
    assert!(
        table.contains("the stack's NetworkPolicy \"devenv-isolation\" is missing"),
        "{table}"
    );
    assert_error(&out, "isolation is not enforced: a pod in namespace");
    assert_probes_removed(&stack);

    // `up` puts the policy back, and the check sees it enforced again.
    stack.up_ok();
    wait_for(
        "the policy to be enforced again",
        Duration::from_secs(60),
        || {
            isolation_check(&stack, "table")
                .status
                .success()
                .then_some(())
        },
    );
    assert_probes_removed(&stack);
}

/// `(child, lines)` of a running `kubectl-devenv logs -f`.
fn follow_logs(stack: &Stack, component: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = stack
        .command(&["logs", component, "-f", "--stack", &stack.name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn logs_and_shell_against_real_containers() {
    let node = real_node();
    let stack = Stack::on_real_node("rn-logs");
    stack.write_real_spec(
        "",
        &format!("    - {{kind: redis, image: {}}}\n", node.redis),
    );
    stack.up_ok();

    // -f streams a line written to the container's stdout after it started.
    let (mut child, lines) = follow_logs(&stack, "redis");
    let marker = format!("{} followed", stack.name);
    stack.run_ok(&[
        "shell",
        "redis",
        "--stack",
        &stack.name,
        "--",
        "sh",
        "-c",
        &format!("echo '{marker}' > /proc/1/fd/1"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line == marker => break,
            Ok(_) => {}
            Err(_) => panic!("`logs -f` did not show the marker within 30s"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    // --previous: the log of the container before a restart.
    let before = format!("{} before the restart", stack.name);
    let pod = stack.pod_of(&stack.test, "redis");
    stack.run_ok(&[
        "shell",
        "redis",
        "--stack",
        &stack.name,
        "--",
        "sh",
        "-c",
        &format!("echo '{before}' > /proc/1/fd/1; kill 1"),
    ]);
    wait_for("the container to restart", STARTUP, || {
        let restarts = kubectl_ok(&[
            "get",
            "pod",
            "-n",
            &stack.test,
            &pod,
            "-o",
            r#"jsonpath={.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type=="Ready")].status}"#,
        ]);
        (restarts == "1 True").then_some(())
    });
    let previous = stack.run_ok(&["logs", "redis", "--previous", "--stack", &stack.name]);
    assert!(previous.lines().any(|l| l == before), "{previous}");
    let current = stack.run_ok(&["logs", "redis", "--stack", &stack.name]);
    assert!(!current.contains(&before), "{current}");

    // shell: exit codes pass through, without and with a terminal.
    let out = stack.run(&["shell", "--stack", &stack.name, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_error(&out, "command terminated with exit code 7");
    let who = stack.in_dev_pod(&["id", "-u"]);
    assert_eq!(who.trim(), "82");

    // A real TTY through `script`: the remote shell sees a terminal, and an
    // interactive session's exit code is ours.
    let command = format!("{} shell --stack {}", devenv_bin().display(), stack.name);
    let mut session = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(stack.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keyboard = session.stdin.take().unwrap();
    let (tx, screen) = mpsc::channel();
    let mut pty_out = session.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pty_out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    keyboard
        .write_all(b"tty; echo answer-$((6*7)); exit 3\n")
        .unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains("answer-42") {
        let left = deadline.saturating_duration_since(Instant::now());
        match screen.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "no answer from the remote shell: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    let status = wait_child(&mut session, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("/dev/pts/"),
        "the remote side has a terminal: {text}"
    );
    assert_eq!(status, Some(3), "{text}");
}

fn wait_child(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Images for the failure tests, pushed to the test bed's registry once
/// per test run: one whose entrypoint logs two lines and exits 3, and one
/// whose manifest says amd64 but whose binary is an arm64 ELF (what a
/// mis-configured cross build produces).
struct FailureImages {
    crash: String,
    wrong_arch: String,
}

fn failure_images() -> &'static FailureImages {
    static IMAGES: OnceLock<FailureImages> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let crane = testbed_env("TESTBED_CRANE");
        let registry = registry_host();
        let tag = unique("t");
        let crash = format!("{registry}/realnode-tests/crash:{tag}");
        run(Command::new(&crane).args([
            "mutate",
            &real_node().busybox,
            "--insecure",
            "--entrypoint",
            "sh,-c,echo realnode-crash: starting; echo realnode-crash: bad configuration; exit 3",
            "-t",
            &crash,
        ]));
        let work = tempfile::tempdir().unwrap();
        std::fs::write(
            work.path().join("go.mod"),
            "module example.com/hello\n\ngo 1.21\n",
        )
        .unwrap();
        std::fs::write(
            work.path().join("main.go"),
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from arm64\") }\n",
        )
        .unwrap();
        let root = work.path().join("root");
        std::fs::create_dir(&root).unwrap();
        run(Command::new("go")
            .args(["build", "-trimpath", "-o"])
            .arg(root.join("hello"))
            .arg(".")
            .current_dir(work.path())
            .env("GOOS", "linux")
            .env("GOARCH", "arm64")
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod"));
        let layer = work.path().join("layer.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&layer)
            .arg("hello"));
        let wrong_arch = format!("{registry}/realnode-tests/wrong-arch:{tag}");
        run(Command::new(&crane)
            .args(["append", "--insecure", "-f"])
            .arg(&layer)
            .args(["-t", &wrong_arch]));
        run(Command::new(&crane).args([
            "mutate",
            &wrong_arch,
            "--insecure",
            "--entrypoint",
            "/hello",
            "-t",
            &wrong_arch,
        ]));
        FailureImages { crash, wrong_arch }
    })
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("start a helper");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `up` with the healthy base plus one broken component, expected to fail
/// within `within` with `needle` on stderr; returns stderr.
fn up_fails(
    stack: &Stack,
    broken: &str,
    dev_extra: &str,
    within: Duration,
    needle: &str,
) -> String {
    let node = real_node();
    stack.write_real_spec(
        dev_extra,
        &format!("    - {{kind: redis, image: {}}}\n{broken}", node.redis),
    );
    let started = Instant::now();
    let out = stack.up(&["--skip-arch-check"]);
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert!(!out.status.success(), "up succeeded: {err}");
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    assert!(!err.contains("timed out after"), "{err}");
    assert!(
        elapsed < within,
        "reported after {elapsed:?}, not within {within:?}:\n{err}"
    );
    err
}

#[test]
fn the_wait_reports_real_failures_early_each_with_its_own_message() {
    let node = real_node();
    let images = failure_images();
    let stack = Stack::on_real_node("rn-fail");

    // A missing image: the registry's "not found" is final, nothing is retried.
    let missing = format!("{}/realnode-tests/missing:{}", registry_host(), stack.name);
    let err = up_fails(
        &stack,
        &format!("    - {{kind: memcached, name: broken, image: {missing}}}\n"),
        "",
        Duration::from_secs(60),
        &format!("broken is not ready: cannot pull image \"{missing}\""),
    );
    assert!(err.contains("not found"), "{err}");

    // A crashing container, with its last log lines.
    let err = up_fails(
        &stack,
        &format!(
            "    - {{kind: memcached, name: broken, image: {}}}\n",
            images.crash
        ),
        "",
        Duration::from_secs(60),
        "broken: container \"broken\" keeps crashing (CrashLoopBackOff): last exit code 3",
    );
    assert!(err.contains("broken: last log lines:"), "{err}");
    assert!(err.contains("realnode-crash: bad configuration"), "{err}");

    // A binary for another architecture.
    up_fails(
        &stack,
        &format!(
            "    - {{kind: memcached, name: broken, image: {}}}\n",
            images.wrong_arch
        ),
        "",
        Duration::from_secs(60),
        &format!(
            "broken: image \"{}\" does not run on node \"{}\" (amd64) (exec format error)",
            images.wrong_arch, node.node
        ),
    );

    // A pod no node can take: reported after the grace, with the scheduler's words.
    let err = up_fails(
        &stack,
        "    - kind: memcached\n      name: broken\n      resources:\n        \
         requests: {cpu: \"5000\", memory: 64Mi}\n        limits: {cpu: \"5000\", memory: 64Mi}\n",
        "",
        Duration::from_secs(60),
        "broken: cannot be scheduled: 0/",
    );
    assert!(err.contains("Insufficient cpu"), "{err}");

    // A hostPath the node does not have: FailedMount, at once, naming the node
    // the dev pod was pinned to (the only one the placement allows).
    let absent = format!("/nonexistent/{}", stack.name);
    let err = up_fails(
        &stack,
        "",
        &format!("    codePath: {absent}\n"),
        Duration::from_secs(60),
        &format!(
            "dev is not ready: cannot mount volume \"code\" on node \"{}\" (FailedMount): hostPath type check failed: {absent} is not a directory",
            node.node
        ),
    );
    assert!(
        err.contains(&format!("Mounting {absent} from node \"{}\"", node.node)),
        "{err}"
    );
}

/// A provisioner that takes longer than the old 15 s rule allowed: the test
/// plays it for a StorageClass of its own (WaitForFirstConsumer, as k3s'
/// local-path), creating the volume 25 s after the claim waits for it. `up`
/// waits and succeeds; before, it failed with "still Pending" after 15 s.
#[test]
fn a_wait_for_first_consumer_claim_is_waited_for_while_it_is_provisioned() {
    let node = real_node();
    let stack = Stack::on_real_node("rn-wffc");
    let class = format!("{}-slow", stack.name);
    let provisioner = format!("devenv.test/slow-{}", stack.name);
    kubectl_apply(&format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {class}}}\n\
         provisioner: {provisioner}\nvolumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Delete\n"
    ));
    struct Cleanup(String, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = kubectl(&["delete", "storageclass", &self.0, "--wait=false"]);
            let _ = kubectl(&["delete", "pv", &self.0, "--wait=false"]);
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let dir = std::env::temp_dir().join(&class);
    let _cleanup = Cleanup(class.clone(), dir.clone());
    stack.write_real_spec(
        "",
        &format!(
            "    - {{kind: redis, image: {}, storage: {{className: {class}}}}}\n",
            node.redis
        ),
    );
    let mut up = stack
        .command(&[
            "up",
            "--yes",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--timeout",
            "3m",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();

    // The claim waits for its pod, then for our provisioner, which announces
    // itself as a real external provisioner does.
    let claim = "data-redis-0";
    let uid = wait_for("the claim to wait for its provisioner", STARTUP, || {
        let fields = kubectl_ok(&[
            "get",
            "pvc",
            "-n",
            &stack.test,
            claim,
            "--ignore-not-found",
            "-o",
            r#"jsonpath={.metadata.uid} {.metadata.annotations.volume\.kubernetes\.io/selected-node}"#,
        ]);
        let fields: Vec<&str> = fields.split_whitespace().collect();
        (fields.len() == 2 && fields[1] == node.node).then(|| fields[0].to_owned())
    });
    kubectl_apply(&format!(
        r#"apiVersion: v1
kind: Event
metadata: {{name: {claim}.{}, namespace: {}}}
involvedObject: {{kind: PersistentVolumeClaim, name: {claim}, namespace: {}, uid: {uid}, apiVersion: v1}}
reason: Provisioning
message: External provisioner is provisioning volume for claim "{}/{claim}"
type: Normal
source: {{component: {provisioner}}}
count: 1
"#,
        stack.name, stack.test, stack.test, stack.test
    ));
    while started.elapsed() < Duration::from_secs(25) {
        assert!(
            up.try_wait().unwrap().is_none(),
            "up ended while the volume was being provisioned: {}",
            {
                let mut err = String::new();
                up.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                err
            }
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let phase = kubectl_ok(&[
        "get",
        "pvc",
        "-n",
        &stack.test,
        claim,
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Pending", "the claim waited past the old 15 s limit");
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("chmod").arg("0777").arg(&dir));
    kubectl_apply(&format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata:
  name: {class}
  annotations: {{pv.kubernetes.io/provisioned-by: {provisioner}}}
spec:
  capacity: {{storage: 512Mi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: {class}
  claimRef: {{namespace: {}, name: {claim}, uid: {uid}}}
  hostPath: {{path: {}, type: Directory}}
  nodeAffinity:
    required:
      nodeSelectorTerms: [{{matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{}]}}]}}]
"#,
        stack.test,
        dir.display(),
        node.node
    ));
    let status = wait_child(&mut up, Duration::from_secs(150));
    let mut err = String::new();
    up.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status, Some(0), "up failed: {err}");
    assert!(started.elapsed() > Duration::from_secs(25));
    let phase = kubectl_ok(&[
        "get",
        "pvc",
        "-n",
        &stack.test,
        claim,
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Bound");
}

/// A running `kubectl devenv forward`, its table parsed, its stderr kept.
struct Forwarding {
    child: Child,
    rows: Vec<(String, String)>,
    stderr: Arc<Mutex<String>>,
}

impl Forwarding {
    fn start(stack: &Stack, protocol: &str) -> Self {
        let mut child = stack
            .command(&[
                "forward",
                "-v",
                "--stack",
                &stack.name,
                "--all",
                "--protocol",
                protocol,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err_pipe = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while err_pipe
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut rows = Vec::new();
        let deadline = Instant::now() + STARTUP;
        while rows.len() < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no forwarding table; stderr: {}", stderr.lock().unwrap())
            });
            if line.starts_with("COMPONENT") {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            rows.push((fields[0].to_owned(), fields[1].to_owned()));
        }
        Self {
            child,
            rows,
            stderr,
        }
    }

    fn address(&self, component: &str) -> String {
        self.rows
            .iter()
            .find(|(c, _)| c == component)
            .unwrap_or_else(|| panic!("{component} not forwarded: {:?}", self.rows))
            .1
            .clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect to the forward");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn redis_line(stream: &mut TcpStream, command: &[u8]) -> std::io::Result<String> {
    stream.write_all(command)?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        reply.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&reply).trim_end().to_owned())
}

fn ping(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    redis_line(&mut stream, b"PING\r\n")
}

/// One SQL statement with the real `mysql` client through a local port.
fn mysql_query(stack: &Stack, address: &str, sql: &str) -> String {
    let port = address.rsplit(':').next().unwrap();
    let password = format!("-p{}", stack.secret("mysql", "password"));
    run(Command::new("mysql").args([
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-P",
        port,
        "-u",
        &stack.secret("mysql", "username"),
        &password,
        "--connect-timeout=20",
        "-N",
        "-B",
        "-e",
        sql,
        &stack.secret("mysql", "database"),
    ]))
    .trim()
    .to_owned()
}

/// 100 MB of pseudo-random data SET and GET through the forward, compared by checksum.
fn hundred_megabytes(address: &str) {
    let mut stream = connect(address);
    stream
        .set_read_timeout(Some(Duration::from_secs(180)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(180)))
        .unwrap();
    let size = 100 * 1024 * 1024;
    let mut payload = vec![0u8; size];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for chunk in payload.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let sent = Sha256::digest(&payload);
    let header = format!("*3\r\n$3\r\nSET\r\n$4\r\nbulk\r\n${size}\r\n");
    stream.write_all(header.as_bytes()).unwrap();
    stream.write_all(&payload).unwrap();
    stream.write_all(b"\r\n").unwrap();
    drop(payload);
    let mut ok = [0u8; 5];
    stream.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$4\r\nbulk\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = String::new();
    reader.read_line(&mut length).unwrap();
    assert_eq!(length.trim_end(), format!("${size}"));
    let mut received = vec![0u8; size];
    reader.read_exact(&mut received).unwrap();
    assert_eq!(
        Sha256::digest(&received),
        sent,
        "checksum through the forward"
    );
    let _ = redis_line(&mut stream, b"*2\r\n$3\r\nDEL\r\n$4\r\nbulk\r\n");
    let _ = stream.shutdown(Shutdown::Both);
}

/// `kubectl port-forward` to the component's Service, on a free local port.
fn kubectl_port_forward(namespace: &str, target: &str, port: u16) -> (Child, String) {
    let kubectl = std::env::var("TESTBED_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(kubectl)
        .args(["port-forward", "-n", namespace, target, &format!(":{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "Forwarding from 127.0.0.1:LOCAL -> PORT"
    let address = line
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("kubectl port-forward said: {line}"))
        .to_owned();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    (child, address)
}

/// Deletes the component's pod and waits for its replacement (a new UID,
/// the same StatefulSet name) to be Ready.
fn replace_pod(stack: &Stack, component: &str) {
    let pod = stack.pod_of(&stack.test, component);
    let uid = kubectl_ok(&[
        "get",
        "pod",
        "-n",
        &stack.test,
        &pod,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    kubectl_ok(&["delete", "pod", "-n", &stack.test, &pod, "--wait=false"]);
    wait_for("the replacement pod", STARTUP, || {
        let now = kubectl_ok(&[
            "get",
            "pod",
            "-n",
            &stack.test,
            &pod,
            "--ignore-not-found",
            "-o",
            r#"jsonpath={.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}"#,
        ]);
        (!now.is_empty() && !now.starts_with(&uid) && now.ends_with("True")).then_some(())
    });
}

fn forward_through_the_real_kubelet(protocol: &str) {
    let node = real_node();
    let stack = Stack::on_real_node(&format!("rn-fwd-{}", &protocol[..2]));
    // 100 MB SET and GET need room beside the value.
    stack.write_real_spec(
        "",
        &format!(
            "    - {{kind: mysql, image: {}}}\n    - kind: redis\n      image: {}\n      resources:\n        \
             requests: {{cpu: 50m, memory: 64Mi}}\n        limits: {{cpu: \"1\", memory: 1Gi}}\n",
            node.mariadb, node.redis
        ),
    );
    stack.up_ok();
    let forward = Forwarding::start(&stack, protocol);
    let mysql = forward.address("mysql");
    let redis = forward.address("redis");

    // SQL through the real kubelet's port-forward, then an idle connection
    // that must survive the churn below (well beyond two keepalive rounds).
    assert_eq!(mysql_query(&stack, &mysql, "SELECT 6 * 7"), "42");
    let mut idle = connect(&redis);
    assert_eq!(redis_line(&mut idle, b"PING\r\n").unwrap(), "+PONG");
    let idle_since = Instant::now();

    hundred_megabytes(&redis);

    // Ten pod deletions, followed; kubectl port-forward, started on the same
    // pod, fails on the first replacement while the forward moves on.
    let (mut kubectl_forward, kubectl_address) =
        kubectl_port_forward(&stack.test, "svc/mysql", 3306);
    replace_pod(&stack, "mysql");
    assert_eq!(
        mysql_query(&stack, &mysql, "SELECT 1 + 1"),
        "2",
        "after the replacement"
    );
    let through_kubectl = TcpStream::connect(&kubectl_address).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut greeting = [0u8; 4];
        s.read_exact(&mut greeting).map(|_| ())
    });
    assert!(
        through_kubectl.is_err(),
        "kubectl port-forward still answered after its pod was replaced"
    );
    let _ = kubectl_forward.kill();
    let _ = kubectl_forward.wait();

    // Ten replacements of the mysql pod in a row, each followed.
    for round in 2..=10 {
        replace_pod(&stack, "mysql");
        let answer = wait_for(
            "a query through the forward",
            Duration::from_secs(30),
            || {
                let port = mysql.rsplit(':').next().unwrap().to_owned();
                let out = Command::new("mysql")
                    .args([
                        "--protocol=TCP",
                        "-h",
                        "127.0.0.1",
                        "-P",
                        &port,
                        "-u",
                        &stack.secret("mysql", "username"),
                        &format!("-p{}", stack.secret("mysql", "password")),
                        "--connect-timeout=10",
                        "-N",
                        "-B",
                        "-e",
                        "SELECT 'round'",
                    ])
                    .output()
                    .ok()?;
                out.status.success().then(|| stdout(&out).trim().to_owned())
            },
        );
        assert_eq!(
            answer,
            "round",
            "round {round}; stderr: {}",
            forward.stderr()
        );
    }

    // The idle connection outlived the churn and the keepalives.
    if idle_since.elapsed() < Duration::from_secs(65) {
        std::thread::sleep(Duration::from_secs(65) - idle_since.elapsed());
    }
    assert_eq!(
        redis_line(&mut idle, b"PING\r\n").unwrap(),
        "+PONG",
        "after {:?} idle; stderr: {}",
        idle_since.elapsed(),
        forward.stderr()
    );
    assert_eq!(ping(&redis).unwrap(), "+PONG");
}

#[test]
fn forward_through_the_real_kubelet_over_spdy() {
    forward_through_the_real_kubelet("spdy");
}

#[test]
fn forward_through_the_real_kubelet_over_websocket() {
    forward_through_the_real_kubelet("websocket");
}
