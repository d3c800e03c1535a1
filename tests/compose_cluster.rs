//! `init --from-compose` and `up` on the test bed's real node (a kubelet and
//! containerd, not kwok): each Compose fixture of tests/compose/ converts,
//! comes up Ready, and its `dependsOn` start order is observed in the
//! cluster: no dependent's pod exists before its dependencies' pods are Ready.
//!
//! Docker Hub is out of reach, so the generated devenv.yaml is edited here,
//! never in the product: catalog images become the test bed's Debian-built
//! stand-ins, which keep the official images' contract (UID, data path, env,
//! first-start init); generic components without a stand-in (meilisearch,
//! mailpit, wordpress, nginx) run busybox `httpd` on the same ports, so their
//! readiness probes, including the healthchecks mapped to `exec` probes, and
//! the start order still run for real. The stack is pinned to the real node
//! with `targetArch` and `placement`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::*;
use serde_json::{Value, json};

/// How long `up` may take: first starts initialise databases on 2 shared cores.
const UP_TIMEOUT: &str = "6m";

/// One converted fixture on the cluster; dropping it purges the stack.
struct Stack {
    name: String,
    dir: tempfile::TempDir,
    spec_path: PathBuf,
    /// The devenv.yaml `up` ran, as JSON.
    spec: Value,
}

impl Stack {
    /// Converts `tests/compose/<fixture>` and rewrites it for the real node.
    fn convert(fixture: &str, profiles: &[&str]) -> Self {
        let node = require_real_node();
        let name = unique(&format!("cc-{fixture}"));
        let dir = tempfile::tempdir().unwrap();
        let compose = repo()
            .join("tests/compose")
            .join(fixture)
            .join("compose.yaml");
        let mut args = vec![
            "init".to_owned(),
            "--from-compose".to_owned(),
            compose.display().to_string(),
            "--name".to_owned(),
            name.clone(),
            "-o".to_owned(),
            "yaml".to_owned(),
        ];
        for profile in profiles {
            args.extend(["--profile".to_owned(), (*profile).to_owned()]);
        }
        let out = run_in(dir.path(), &args);
        expect_success(&out, "init --from-compose");
        let mut spec: Value = serde_saphyr::from_str(&stdout(&out))
            .unwrap_or_else(|err| panic!("init printed invalid YAML: {err}\n{}", stdout(&out)));
        for_the_real_node(&mut spec, &name, &node);
        let spec_path = dir.path().join("devenv.yaml");
        std::fs::write(&spec_path, serde_saphyr::to_string(&spec).unwrap()).unwrap();
        Self {
            name,
            dir,
            spec_path,
            spec,
        }
    }

    fn dev_namespace(&self) -> String {
        format!("{}-dev", self.name)
    }

    fn test_namespace(&self) -> String {
        format!("{}-test", self.name)
    }

    /// `up`, timed; returns its stderr (the wave lines).
    fn up(&self) -> String {
        let started = Instant::now();
        let out = run_in(
            self.dir.path(),
            &[
                "up",
                "-f",
                self.spec_path.to_str().unwrap(),
                "--yes",
                "--timeout",
                UP_TIMEOUT,
            ],
        );
        eprintln!(
            "{}: up took {:.1}s\n{}",
            self.name,
            started.elapsed().as_secs_f64(),
            stderr(&out)
        );
        if !out.status.success() {
            // What the pods said, for the failure message.
            let pods = kubectl(&[
                "get",
                "pods",
                "-A",
                "-o",
                "wide",
                "-l",
                &format!("app.kubernetes.io/instance={}", self.name),
            ]);
            panic!(
                "up failed ({}):\nstderr: {}\npods:\n{}\ndevenv.yaml:\n{}",
                out.status,
                stderr(&out),
                stdout(&pods),
                std::fs::read_to_string(&self.spec_path).unwrap()
            );
        }
        stderr(&out)
    }

    /// The one pod of a component (`dev` is the dev pod).
    fn pod(&self, component: &str) -> Value {
        let namespace = if component == "dev" {
            self.dev_namespace()
        } else {
            self.test_namespace()
        };
        let list: Value = serde_json::from_str(&kubectl_ok(&[
            "get",
            "pods",
            "-n",
            &namespace,
            "-l",
            &format!(
                "app.kubernetes.io/instance={},app.kubernetes.io/component={component}",
                self.name
            ),
            "-o",
            "json",
        ]))
        .unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{component}: expected one pod, got {list}");
        items[0].clone()
    }

    /// Components (and `dev`) with what each must wait for, from the devenv.yaml that ran.
    fn dependencies(&self) -> BTreeMap<String, Vec<String>> {
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect()
        };
        let mut deps: BTreeMap<String, Vec<String>> = components(&self.spec)
            .iter()
            .map(|c| (component_name(c), names(&c["dependsOn"])))
            .collect();
        deps.insert(
            "dev".to_owned(),
            names(&self.spec["spec"]["dev"]["dependsOn"]),
        );
        deps
    }

    /// Every pod runs on the real node and is Ready, and each dependent's pod
    /// was created no earlier than its dependencies' pods became Ready.
    /// Returns the `dependent <- dependency` pairs checked.
    fn assert_start_order(&self, node: &str) -> Vec<String> {
        let deps = self.dependencies();
        let pods: BTreeMap<&String, Value> = deps.keys().map(|c| (c, self.pod(c))).collect();
        for (component, pod) in &pods {
            assert_eq!(
                pod["spec"]["nodeName"], node,
                "{component} is not on the real node"
            );
            assert_eq!(
                ready_condition(pod)["status"],
                "True",
                "{component} is not Ready"
            );
        }
        let mut checked = Vec::new();
        for (dependent, needs) in &deps {
            let created = timestamp(&pods[dependent]["metadata"]["creationTimestamp"]);
            for dependency in needs {
                let ready = timestamp(&ready_condition(&pods[dependency])["lastTransitionTime"]);
                // RFC 3339 in UTC with whole seconds: text order is time order.
                assert!(
                    ready <= created,
                    "{dependent}'s pod was created at {created}, before {dependency} was Ready at {ready}"
                );
                checked.push(format!("{dependent} <- {dependency}"));
            }
        }
        checked
    }

    /// `down --purge` succeeds and leaves neither namespace behind.
    fn down(&self) {
        let out = run_in(
            self.dir.path(),
            &[
                "down",
                "-f",
                self.spec_path.to_str().unwrap(),
                "--purge",
                "--yes",
            ],
        );
        expect_success(&out, "down --purge");
        for namespace in [self.dev_namespace(), self.test_namespace()] {
            let left = kubectl(&[
                "get",
                "namespace",
                &namespace,
                "--ignore-not-found",
                "-o",
                "name",
            ]);
            assert_eq!(stdout(&left).trim(), "", "{namespace} is still there");
        }
    }

    fn exec(&self, component: &str, command: &[&str]) -> String {
        let pod = self.pod(component);
        let namespace = pod["metadata"]["namespace"].as_str().unwrap();
        let name = pod["metadata"]["name"].as_str().unwrap();
        let mut args = vec!["exec", "-n", namespace, name, "--"];
        args.extend_from_slice(command);
        kubectl_ok(&args)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // After a failure; the tests themselves call `down` and check it.
        let _ = Command::new(devenv_bin())
            .args(["down", "--stack", &self.name, "--purge", "--yes"])
            .stdin(Stdio::null())
            .output();
    }
}

fn run_in<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> Output {
    Command::new(devenv_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-devenv")
}

/// The real node's name; fails (never skips) when the test bed has none or it is not Ready.
fn require_real_node() -> String {
    require_cluster();
    let node = testbed_env("TESTBED_REAL_NODE");
    let ready = kubectl(&[
        "get",
        "node",
        &node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert!(
        ready.status.success() && stdout(&ready) == "True",
        "the test bed's real node {node} is missing or not Ready: {}{}",
        stdout(&ready),
        stderr(&ready)
    );
    node
}

fn components(spec: &Value) -> &Vec<Value> {
    spec["spec"]["components"].as_array().unwrap()
}

fn component_name(component: &Value) -> String {
    component["name"]
        .as_str()
        .or(component["kind"].as_str())
        .unwrap()
        .to_owned()
}

/// Unique namespaces, the real node's placement, and images the test bed has.
fn for_the_real_node(spec: &mut Value, name: &str, node: &str) {
    let taint = testbed_env("TESTBED_REAL_NODE_TAINT");
    let body = &mut spec["spec"];
    body["namespaces"] = json!({"dev": format!("{name}-dev"), "test": format!("{name}-test")});
    body["targetArch"] = json!("amd64");
    body["placement"] = json!({
        "nodeSelector": {"kubernetes.io/hostname": node},
        "tolerations": [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}],
    });
    body["dev"]["image"] = json!(testbed_env("TESTBED_IMAGE_PHP_FPM"));
    for component in body["components"].as_array_mut().unwrap() {
        let kind = component["kind"].as_str().unwrap().to_owned();
        let image = match kind.as_str() {
            // The mariadb stand-in also reads MYSQL_*, as the catalog's mysql sets them.
            "mysql" | "mariadb" => testbed_env("TESTBED_IMAGE_MARIADB"),
            "postgres" => testbed_env("TESTBED_IMAGE_POSTGRES"),
            "redis" => testbed_env("TESTBED_IMAGE_REDIS"),
            "generic" => {
                serve_ports_with_busybox(component);
                continue;
            }
            other => panic!("no stand-in image for kind {other}"),
        };
        component["image"] = json!(image);
    }
}

/// A generic component without a stand-in: busybox `httpd` on each of its
/// ports, serving `/health` (meilisearch's healthcheck path), so TCP, HTTP
/// and `wget --spider` probes find what the real image would offer.
/// (Debian's busybox has `httpd` and an `nc` without `-k`.)
fn serve_ports_with_busybox(component: &mut Value) {
    let ports: Vec<u64> = component["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert!(
        !ports.is_empty(),
        "{component}: a generic component without ports"
    );
    let mut script = "mkdir -p /tmp/www && echo ok > /tmp/www/health".to_owned();
    let (last, rest) = ports.split_last().unwrap();
    for port in rest {
        script += &format!(" && httpd -p {port} -h /tmp/www");
    }
    script += &format!(" && exec httpd -f -p {last} -h /tmp/www");
    let body = component.as_object_mut().unwrap();
    body.insert("image".into(), json!(testbed_env("TESTBED_IMAGE_BUSYBOX")));
    body.insert("command".into(), json!(["sh", "-c", script]));
    body.remove("args");
}

fn ready_condition(pod: &Value) -> &Value {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .unwrap_or_else(|| panic!("pod without a Ready condition: {pod}"))
}

fn timestamp(value: &Value) -> String {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    assert!(
        text.ends_with('Z') && text.len() == 20,
        "unexpected timestamp {text}"
    );
    text.to_owned()
}

/// Symfony: postgres with `service_healthy`, redis and meilisearch waiting on
/// it, the dev pod on both; mailpit through `--profile mail`.
#[test]
fn symfony_comes_up_on_the_real_node_in_depends_on_order() {
    let stack = Stack::convert("symfony", &["mail"]);
    let node = testbed_env("TESTBED_REAL_NODE");
    let log = stack.up();
    assert!(
        log.contains("Waiting for database before starting cache, search")
            && log.contains("Waiting for cache, database before starting dev"),
        "{log}"
    );
    let checked = stack.assert_start_order(&node);
    assert_eq!(
        checked,
        [
            "cache <- database",
            "dev <- database",
            "dev <- cache",
            "search <- database"
        ]
    );
    // The dev pod reaches postgres with the generated credentials.
    let php = "$pdo = new PDO(getenv('DB_CONNECTION').':host='.getenv('DB_HOST').';port='.getenv('DB_PORT').';dbname='.getenv('DB_DATABASE'), getenv('DB_USERNAME'), getenv('DB_PASSWORD')); echo $pdo->query('select 1')->fetchColumn();";
    assert_eq!(stack.exec("dev", &["php", "-r", php]), "1");
    stack.down();
}

/// WordPress: the site waits for mariadb.
#[test]
fn wordpress_comes_up_on_the_real_node_after_mariadb() {
    let stack = Stack::convert("wordpress", &[]);
    let node = testbed_env("TESTBED_REAL_NODE");
    let log = stack.up();
    assert!(
        log.contains("Waiting for db before starting wordpress"),
        "{log}"
    );
    assert_eq!(stack.assert_start_order(&node), ["wordpress <- db"]);
    stack.down();
}

/// Laravel Sail: the dev pod waits for mysql, redis, meilisearch and mailpit.
#[test]
fn sail_comes_up_on_the_real_node_with_the_dev_pod_last() {
    let stack = Stack::convert("sail", &[]);
    let node = testbed_env("TESTBED_REAL_NODE");
    let log = stack.up();
    assert!(
        log.contains("Waiting for mailpit, meilisearch, mysql, redis before starting dev"),
        "{log}"
    );
    assert_eq!(
        stack.assert_start_order(&node),
        [
            "dev <- mysql",
            "dev <- redis",
            "dev <- meilisearch",
            "dev <- mailpit"
        ]
    );
    stack.down();
}

/// LEMP: the dev pod waits for mysql (`service_healthy`); nginx and the dev
/// pod get their single-file mounts from ConfigMaps, readable by their users.
#[test]
fn lemp_comes_up_on_the_real_node_with_its_config_files() {
    let stack = Stack::convert("lemp", &[]);
    let node = testbed_env("TESTBED_REAL_NODE");
    let log = stack.up();
    assert!(
        log.contains("Waiting for mysql before starting dev"),
        "{log}"
    );
    assert_eq!(stack.assert_start_order(&node), ["dev <- mysql"]);
    let conf = stack.exec("nginx", &["cat", "/etc/nginx/conf.d/default.conf"]);
    assert!(conf.contains("fastcgi_pass"), "{conf}");
    // PHP itself reads the mounted php.ini as the dev pod's user.
    let limit = stack.exec(
        "dev",
        &[
            "env",
            "PHP_INI_SCAN_DIR=/usr/local/etc/php/conf.d",
            "php",
            "-r",
            "echo ini_get('memory_limit');",
        ],
    );
    assert_eq!(limit, "512M");
    stack.down();
}
