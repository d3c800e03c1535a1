//! The dev pod a PHP developer works in, on the test bed's real node
//! (`real-0`): the dev image's stand-in (tests/testbed/images/php-dev, the
//! same drivers, tools, entrypoint and nginx configuration as images/dev)
//! reaches MariaDB, PostgreSQL and Redis from PHP, serves the code over HTTP
//! through `forward dev` and `open`, the `web` component serves a page from
//! the stack's php-fpm, and `run`/`env` give local commands the dev pod's
//! environment pointed at forwards. The bad-input cases run on kwok nodes.
//! Tests that need the real node fail when it is missing; none skips.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

impl Stack {
    /// `shell COMPONENT -i -- sh -c SCRIPT` with `input` on stdin.
    fn shell_with_input(&self, component: &str, script: &str, input: &str) -> Output {
        let mut child = self
            .command(&["shell", component, "-i", "--", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn secret(&self, component: &str, key: &str) -> String {
        let out = self.run_ok(&[
            "credentials",
            component,
            "--stack",
            &self.name,
            "-o",
            "json",
        ]);
        let values: BTreeMap<String, String> = serde_json::from_str(&out).unwrap();
        values[key].clone()
    }
}

/// A long-running command (`forward`, `open`), killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts `args` and returns it with the first stdout line that contains `needle`.
fn start_and_read(stack: &Stack, args: &[&str], needle: &str) -> (Running, String) {
    let mut child = stack
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{args:?} printed no line with {needle:?}"));
    // Keep reading in the background, so the command never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (running, line)
}

/// `curl -sS URL`, retried for a while: a pod may still be starting its web server.
fn http_get(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", url])
            .output()
            .expect("curl is required (Debian package curl)");
        let text = stdout(&out);
        if let (true, Some(body)) = (out.status.success(), text.strip_suffix("\n200")) {
            return body.trim_end().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "GET {url}: {}{}",
            text,
            stderr(&out)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The placement and image lines that put a whole stack on the real node.
fn on_the_real_node() -> String {
    assert_eq!(
        testbed_env("TESTBED_REAL_NODE"),
        "real-0",
        "these tests need the test bed's real node"
    );
    let nodes = kubectl_ok(&[
        "get",
        "nodes",
        "-l",
        "devenv.test/real-node=true",
        "-o",
        "name",
    ]);
    assert!(
        nodes.contains("real-0"),
        "node real-0 is missing (tests/testbed/node.sh adds it): {nodes}"
    );
    format!(
        "  targetArch: amd64\n  placement:\n    nodeSelector: {{devenv.test/real-node: \"true\"}}\n    \
         tolerations: [{{key: devenv.test/real-node, operator: Exists, effect: NoSchedule}}]\n  \
         dev:\n    image: {}\n    httpPort: 8080\n  components:\n    \
         - {{kind: mysql, image: {}}}\n    - {{kind: postgres, image: {}}}\n    \
         - {{kind: redis, image: {}}}\n    - {{kind: php, image: {}}}\n    \
         - {{kind: web, image: {}}}\n",
        testbed_env("TESTBED_IMAGE_PHP_DEV"),
        testbed_env("TESTBED_IMAGE_MARIADB"),
        testbed_env("TESTBED_IMAGE_POSTGRES"),
        testbed_env("TESTBED_IMAGE_REDIS"),
        testbed_env("TESTBED_IMAGE_PHP_FPM"),
        testbed_env("TESTBED_IMAGE_NGINX"),
    )
}

/// PHP in the dev pod: MariaDB (as the mysql kind) through PDO and mysqli,
/// PostgreSQL through PDO, Redis through the redis extension.
const DRIVERS_PHP: &str = r#"
$opts = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION];
$my = new PDO(sprintf("mysql:host=%s;port=%s;dbname=%s", getenv("DB_HOST"), getenv("DB_PORT"), getenv("DB_DATABASE")), getenv("DB_USERNAME"), getenv("DB_PASSWORD"), $opts);
$my->exec("CREATE TABLE IF NOT EXISTS notes (v VARCHAR(64))");
$my->prepare("INSERT INTO notes VALUES (?)")->execute(["written-by-pdo-mysql"]);
echo "mysql: ", $my->query("SELECT v FROM notes")->fetchColumn(), "\n";
$mi = new mysqli(getenv("DB_HOST"), getenv("DB_USERNAME"), getenv("DB_PASSWORD"), getenv("DB_DATABASE"), (int) getenv("DB_PORT"));
echo "mysqli: ", $mi->query("SELECT COUNT(*) FROM notes")->fetch_row()[0], "\n";
$pg = new PDO("pgsql:host=postgres;port=5432;dbname=app", "app", $argv[1], $opts);
$pg->exec("CREATE TABLE IF NOT EXISTS notes (v TEXT)");
$pg->prepare("INSERT INTO notes VALUES (?)")->execute(["written-by-pdo-pgsql"]);
echo "pgsql: ", $pg->query("SELECT v FROM notes")->fetchColumn(), "\n";
$r = new Redis();
$r->connect(getenv("REDIS_HOST"), (int) getenv("REDIS_PORT"));
$r->set("devenv-key", "written-by-phpredis");
echo "redis: ", $r->get("devenv-key"), "\n";
foreach (["memcached", "intl", "zip", "Zend OPcache", "bcmath"] as $e) { echo $e, ": ", extension_loaded($e) ? "yes" : "no", "\n"; }
"#;

/// The page the dev pod serves from public/: a value read from the database.
const PAGE_PHP: &str = r#"<?php
$db = new PDO(sprintf("mysql:host=%s;port=%s;dbname=%s", getenv("DB_HOST"), getenv("DB_PORT"), getenv("DB_DATABASE")), getenv("DB_USERNAME"), getenv("DB_PASSWORD"));
echo "page from ", PHP_SAPI, ": ", $db->query("SELECT v FROM notes")->fetchColumn(), "\n";
"#;

#[test]
fn the_dev_pod_works_with_the_stack_on_the_real_node() {
    let stack = Stack::new("dp-real");
    stack.write_spec(&on_the_real_node());
    stack.run_ok(&["up", "--yes", "--timeout", "5m"]);

    // Under Pod Security `restricted`: the namespaces enforce it, and the API
    // server admitted every pod.
    for namespace in [&stack.dev, &stack.test] {
        let level = kubectl_ok(&[
            "get",
            "namespace",
            namespace,
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ]);
        assert_eq!(level, "restricted", "{namespace}");
    }

    // The stand-in has the dev image's contents and account.
    let tools = stack.run_ok(&[
        "shell",
        "--",
        "sh",
        "-c",
        "id -u; composer --version; git --version; unzip -v | head -n 1; mysql --version; \
         psql --version; redis-cli -h \"$REDIS_HOST\" -p \"$REDIS_PORT\" ping",
    ]);
    let mut lines = tools.lines();
    assert_eq!(lines.next(), Some("82"), "{tools}");
    for needle in [
        "Composer",
        "git version",
        "UnZip",
        "MariaDB",
        "psql (PostgreSQL)",
        "PONG",
    ] {
        assert!(tools.contains(needle), "{needle} missing in: {tools}");
    }

    // Drivers: write through PDO to MariaDB and PostgreSQL, read back; Redis through phpredis.
    let pg_password = stack.secret("postgres", "password");
    let drivers = stack.run_ok(&["shell", "--", "php", "-r", DRIVERS_PHP, &pg_password]);
    for needle in [
        "mysql: written-by-pdo-mysql",
        "mysqli: 1",
        "pgsql: written-by-pdo-pgsql",
        "redis: written-by-phpredis",
        "memcached: yes",
        "intl: yes",
        "zip: yes",
        "Zend OPcache: yes",
        "bcmath: yes",
    ] {
        assert!(drivers.contains(needle), "{needle} missing in: {drivers}");
    }

    // The app in a browser: public/ is the document root once it exists.
    let written = stack.shell_with_input(
        "dev",
        "mkdir -p public && cat > public/index.php && echo '<?php echo \"not the docroot\";' > index.php",
        PAGE_PHP,
    );
    assert!(written.status.success(), "{}", stderr(&written));
    let (forward, row) = start_and_read(
        &stack,
        &["forward", "dev", "--stack", &stack.name],
        "curl http://",
    );
    let url = row
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    assert_eq!(
        http_get(&url),
        "page from fpm-fcgi: written-by-pdo-mysql",
        "forward dev"
    );
    drop(forward);
    let (open, url) = start_and_read(&stack, &["open", "--stack", &stack.name], "http://");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        http_get(&url),
        "page from fpm-fcgi: written-by-pdo-mysql",
        "open"
    );
    drop(open);

    // The web component: nginx-unprivileged's stand-in in front of the stack's php-fpm.
    let written = stack.shell_with_input(
        "php",
        "mkdir -p /var/www/html/public && cat > /var/www/html/public/index.php",
        "<?php echo 'web via ', PHP_SAPI, ' for ', $_SERVER['REQUEST_URI'], \"\\n\";",
    );
    assert!(written.status.success(), "{}", stderr(&written));
    let (web, row) = start_and_read(
        &stack,
        &["forward", "web", "--stack", &stack.name],
        "curl http://",
    );
    let url = row
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    // Every path goes to the front controller, as in Laravel and Symfony.
    assert_eq!(
        http_get(&format!("{url}some/route?x=1")),
        "web via fpm-fcgi for /some/route?x=1"
    );
    drop(web);

    // `run`: a local PHP (Debian's php-cli with php-mysql) reaches the
    // stack's database through the forwards, and its exit code comes back.
    let check = r#"
$db = new PDO(sprintf("mysql:host=%s;port=%s;dbname=%s", getenv("DB_HOST"), getenv("DB_PORT"), getenv("DB_DATABASE")), getenv("DB_USERNAME"), getenv("DB_PASSWORD"));
echo getenv("DB_HOST"), " ", $db->query("SELECT v FROM notes")->fetchColumn(), " redis:", getenv("REDIS_HOST"), "\n";
exit(7);
"#;
    let out = stack.run(&["run", "--stack", &stack.name, "--", "php", "-r", check]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "127.0.0.1 written-by-pdo-mysql redis:127.0.0.1\n"
    );
    assert_eq!(stderr(&out), "", "run prints nothing of its own");
    let ok = stack.run(&["run", "--", "php", "-r", "exit(0);"]);
    assert!(ok.status.success(), "{}", stderr(&ok));

    // `env -o dotenv` parses back into the same variables as `-o json`.
    let dotenv = stack.run_ok(&[
        "env",
        "--stack",
        &stack.name,
        "-o",
        "dotenv",
        "--show-secrets",
    ]);
    let parsed: BTreeMap<String, String> = dotenvy::from_read_iter(dotenv.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| panic!("{err}: {dotenv}"));
    let json: BTreeMap<String, String> = serde_json::from_str(&stack.run_ok(&[
        "env",
        "--stack",
        &stack.name,
        "-o",
        "json",
        "--show-secrets",
    ]))
    .unwrap();
    assert_eq!(parsed, json);
    assert_eq!(parsed["DB_HOST"], "127.0.0.1");
    assert_eq!(parsed["DB_PORT"], "3306");
    assert_eq!(parsed["DB_PASSWORD"], stack.secret("mysql", "password"));
    let hidden = stack.run(&["env", "--stack", &stack.name]);
    assert!(hidden.status.success(), "{}", stderr(&hidden));
    assert!(
        stdout(&hidden).contains("DB_PASSWORD='<hidden>'\n"),
        "{}",
        stdout(&hidden)
    );
    assert!(
        stderr(&hidden).contains("--show-secrets"),
        "{}",
        stderr(&hidden)
    );
    let shell = stack.run_ok(&["env", "--stack", &stack.name, "-o", "shell"]);
    assert!(shell.contains("export DB_HOST=127.0.0.1\n"), "{shell}");
}

/// A stack on kwok nodes: enough for errors found before any connection to a pod.
fn kwok_stack(prefix: &str, spec: &str) -> Stack {
    let stack = Stack::new(prefix);
    stack.write_spec(spec);
    stack.run_ok(&["up", "--yes", "--timeout", "2m"]);
    stack
}

fn assert_one_error_line(out: &Output, needle: &str) {
    assert_error(out, needle);
    let errors = stderr(out)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .count();
    assert_eq!(errors, 1, "{}", stderr(out));
}

#[test]
fn run_and_open_refuse_what_they_cannot_do() {
    let stack = kwok_stack(
        "dp-bad",
        "  dev: {image: \"php:8.3-fpm-alpine\"}\n  components:\n    - {kind: mysql}\n",
    );
    let missing = stack.run(&["run", "--", "kubectl-devenv-no-such-command", "x"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    assert_one_error_line(
        &missing,
        "kubectl-devenv-no-such-command: command not found",
    );

    // Every port of the allotted range (one) is taken.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let range = format!("{port}-{port}");
    let exhausted = stack.run(&["run", "--port-range", &range, "--", "true"]);
    assert_eq!(exhausted.status.code(), Some(1), "{}", stderr(&exhausted));
    assert_one_error_line(
        &exhausted,
        &format!("no free local port for mysql in {range}"),
    );

    // The bare official image serves no HTTP.
    let open = stack.run(&["open"]);
    assert_eq!(open.status.code(), Some(1), "{}", stderr(&open));
    assert_one_error_line(&open, "serves no HTTP: its image php:8.3-fpm-alpine");
    assert!(stdout(&open).is_empty());
    drop(taken);
}

#[test]
fn run_needs_a_database_in_the_stack() {
    let stack = kwok_stack("dp-nodb", "  components:\n    - {kind: redis}\n");
    let out = stack.run(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_one_error_line(
        &out,
        &format!("stack \"{}\" has no database component", stack.name),
    );
    // `env` works without one: it prints what there is.
    let env = stack.run_ok(&["env", "-o", "json"]);
    assert!(env.contains("\"REDIS_HOST\": \"127.0.0.1\""), "{env}");
}

/// `run` in a process group of its own, as a shell puts a foreground job;
/// SIGINT to the group is what Ctrl-C in a terminal sends.
fn interrupt_run(stack: &Stack, script: &str) -> std::process::ExitStatus {
    use std::os::unix::process::CommandExt;
    let ready = stack.dir.path().join("ready");
    // Each call waits for its own command: a file left by an earlier call
    // would send the signal while `run` is still starting its forwards.
    let _ = std::fs::remove_file(&ready);
    let script = format!("touch {}; {script}", ready.display());
    let mut child = stack
        .command(&["run", "--", "sh", "-c", &script])
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = format!("-{}", child.id());
    let sent = Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            panic!("`run` did not end within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_reaches_the_command_first() {
    use std::os::unix::process::ExitStatusExt;
    let stack = kwok_stack("dp-int", "  components:\n    - {kind: mysql}\n");
    // The command handles Ctrl-C: `run` waits for it and exits with its code.
    let handled = interrupt_run(&stack, "trap 'exit 42' INT; while :; do sleep 0.1; done");
    assert_eq!(handled.code(), Some(42), "{handled:?}");
    // The command dies of it: so does `run`, as a shell expects of its children.
    let killed = interrupt_run(&stack, "while :; do sleep 0.1; done");
    assert_eq!(killed.signal(), Some(2), "{killed:?}");
}
