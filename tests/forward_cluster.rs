//! `kubectl devenv forward` against the test bed: kwok answers the pods'
//! port-forwards with the real MariaDB and Redis on this machine, so every
//! byte here goes client -> forward -> kube-apiserver -> kwok -> server.
//! Each test works in its own namespace; everything is bounded in time.
#![cfg(feature = "cluster-tests")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};

const STARTUP: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A namespace of its own, deleted when the test ends.
struct Namespace(String);

impl Namespace {
    fn new(prefix: &str) -> Self {
        require_cluster();
        let name = unique(prefix);
        kubectl_ok(&["create", "namespace", &name]);
        Self(name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
    }
}

/// A Service and Deployment labelled as kubectl-devenv labels a stack
/// component; the Service reaches the pods through a named port.
fn component(namespace: &str, stack: &str, component: &str, port: u16, replicas: u32) {
    kubectl_apply(&format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: {stack}-{component}
  namespace: {namespace}
  labels:
    app.kubernetes.io/managed-by: kubectl-devenv
    app.kubernetes.io/instance: {stack}
    app.kubernetes.io/component: {component}
spec:
  selector:
    app.kubernetes.io/instance: {stack}
    app.kubernetes.io/component: {component}
  ports:
    - name: main
      port: {port}
      targetPort: main
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {stack}-{component}
  namespace: {namespace}
  labels:
    app.kubernetes.io/managed-by: kubectl-devenv
    app.kubernetes.io/instance: {stack}
    app.kubernetes.io/component: {component}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {stack}
      app.kubernetes.io/component: {component}
  template:
    metadata:
      labels:
        app.kubernetes.io/managed-by: kubectl-devenv
        app.kubernetes.io/instance: {stack}
        app.kubernetes.io/component: {component}
    spec:
      containers:
        - name: {component}
          image: {component}:latest
          ports:
            - name: main
              containerPort: {port}
"#
    ));
}

/// A namespace with one Ready pod of a component behind its Service.
fn ready_component(prefix: &str, stack: &str, name: &str, port: u16) -> Namespace {
    let ns = Namespace::new(prefix);
    component(&ns.0, stack, name, port, 1);
    wait_for("a Ready pod", STARTUP, || {
        (!ready_pods(&ns.0, stack, name).is_empty()).then_some(())
    });
    ns
}

fn selector(stack: &str, component: &str) -> String {
    format!("app.kubernetes.io/instance={stack},app.kubernetes.io/component={component}")
}

/// Names of the Ready, not terminating pods of a component.
fn ready_pods(namespace: &str, stack: &str, component: &str) -> Vec<String> {
    let out = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        &selector(stack, component),
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}{" "}{.metadata.deletionTimestamp}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ]);
    out.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // name + Ready status only: a deletionTimestamp adds a field.
            match fields.as_slice() {
                [name, "True"] => Some(name.to_string()),
                _ => None,
            }
        })
        .collect()
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
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `kubectl devenv forward`, its table parsed, its stderr kept.
struct Forwarding {
    child: Child,
    /// (component, local address) per table row.
    rows: Vec<(String, String)>,
    table: String,
    stderr: Arc<Mutex<String>>,
}

impl Forwarding {
    /// One component on any free port, over `protocol`.
    fn one(namespace: &str, component: &str, protocol: &str) -> Self {
        let port = format!("{component}=0");
        let args = [
            "-n",
            namespace,
            component,
            "-p",
            &port,
            "--protocol",
            protocol,
        ];
        Self::start(&args, 1)
    }

    fn start(args: &[&str], expected_rows: usize) -> Self {
        Self::start_with(args, expected_rows, &[])
    }

    fn start_with(args: &[&str], expected_rows: usize, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(devenv_bin())
            .arg("forward")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl-devenv forward");
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
        let (lines_tx, lines_rx) = mpsc::channel();
        let out_pipe = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out_pipe.lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + STARTUP;
        let mut table = String::new();
        let mut rows = Vec::new();
        while rows.len() < expected_rows {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "no forwarding table within {STARTUP:?}; stdout so far: {table}; stderr: {}",
                        stderr.lock().unwrap()
                    );
                }
            };
            table.push_str(&line);
            table.push('\n');
            if line.starts_with("COMPONENT") {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            rows.push((fields[0].to_string(), fields[1].to_string()));
        }
        Self {
            child,
            rows,
            table,
            stderr,
        }
    }

    fn address(&self, component: &str) -> String {
        self.rows
            .iter()
            .find(|(c, _)| c == component)
            .unwrap_or_else(|| panic!("{component} not in the table:\n{}", self.table))
            .1
            .clone()
    }

    fn port(&self, component: &str) -> String {
        self.address(component)
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (bounded).
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("forward did not stop within 15s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// One RESP exchange: sends `command` (already encoded), reads one line reply.
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
    Ok(String::from_utf8_lossy(&reply).trim_end().to_string())
}

fn ping(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    redis_line(&mut stream, b"PING\r\n")
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One SQL statement through a forwarded port with the real `mysql` client, as
/// the test bed's MariaDB user; returns the batch output.
fn mysql_query(port: &str, sql: &str, database: Option<&str>) -> String {
    let user = testbed_env("TESTBED_MARIADB_USER");
    let password = format!("-p{}", testbed_env("TESTBED_MARIADB_PASSWORD"));
    let mut args = vec![
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-P",
        port,
        "-u",
        &user,
        &password,
        "--connect-timeout=20",
        "-N",
        "-B",
        "-e",
        sql,
    ];
    args.extend(database);
    run_ok("mysql", &args)
}

#[test]
fn usage_without_components_exits_with_two() {
    let out = devenv(&["forward"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_error(&out, "name at least one component");
}

#[test]
fn sql_and_redis_through_one_forward_of_two_components() {
    let ns = Namespace::new("fwd-two");
    component(&ns.0, "shop", "mysql", 3306, 1);
    component(&ns.0, "shop", "redis", 6379, 1);
    wait_for("Ready pods", STARTUP, || {
        (ready_pods(&ns.0, "shop", "mysql").len() == 1
            && ready_pods(&ns.0, "shop", "redis").len() == 1)
            .then_some(())
    });
    // The real MariaDB and Redis hold 3306 and 6379 on this machine, so
    // both default ports are taken and the forward must move to free ones.
    let forward = Forwarding::start(&["-n", &ns.0, "mysql", "redis"], 2);
    assert!(
        forward.table.contains("mysql -h 127.0.0.1 -P"),
        "{}",
        forward.table
    );
    assert!(forward.table.contains("redis-cli -p"), "{}", forward.table);
    assert!(
        forward.table.contains("shop-mysql-"),
        "pod names: {}",
        forward.table
    );
    assert!(forward.address("mysql").starts_with("127.0.0.1:"));
    wait_for("the moved-port notice", Duration::from_secs(5), || {
        forward
            .stderr()
            .contains("local port 6379 is not available; using")
            .then_some(())
    });

    let database = testbed_env("TESTBED_MARIADB_DATABASE");
    let answer = mysql_query(
        &forward.port("mysql"),
        "SELECT 6 * 7, DATABASE()",
        Some(&database),
    );
    assert_eq!(answer, format!("42\t{database}"));

    let redis_port = forward.port("redis");
    let redis = |args: &[&str]| {
        let mut all = vec!["-h", "127.0.0.1", "-p", &redis_port];
        all.extend_from_slice(args);
        run_ok("redis-cli", &all)
    };
    let key = unique("fwd-key");
    assert_eq!(redis(&["PING"]), "PONG");
    assert_eq!(redis(&["SET", &key, "through the forward"]), "OK");
    assert_eq!(redis(&["GET", &key]), "through the forward");
    redis(&["DEL", &key]);

    let stderr_before = forward.stderr();
    assert_eq!(
        forward.terminate(),
        Some(0),
        "SIGTERM must exit 0; stderr: {stderr_before}"
    );
}

#[test]
fn two_hundred_concurrent_connections() {
    let ns = ready_component("fwd-many", "many", "redis", 6379);
    let forward = Forwarding::start(&["-n", &ns.0, "redis", "-p", "redis=0"], 1);
    let address = forward.address("redis");
    // All 200 open at once: connect them all, then talk on each.
    let mut streams: Vec<TcpStream> = (0..200).map(|_| connect(&address)).collect();
    for (index, stream) in streams.iter_mut().enumerate() {
        let echo = format!("c{index}");
        let command = format!("*2\r\n$4\r\nECHO\r\n${}\r\n{echo}\r\n", echo.len());
        stream.write_all(command.as_bytes()).unwrap();
    }
    for (index, stream) in streams.iter_mut().enumerate() {
        let expected = format!("${}\r\nc{index}\r\n", format!("c{index}").len());
        let mut reply = vec![0u8; expected.len()];
        stream
            .read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("connection {index}: {e}; stderr: {}", forward.stderr()));
        assert_eq!(
            String::from_utf8_lossy(&reply),
            expected,
            "connection {index}"
        );
    }
    drop(streams);
    assert_eq!(
        ping(&address).unwrap(),
        "+PONG",
        "still serving after 200 connections"
    );
}

#[test]
fn new_connections_follow_the_pod_through_ten_replacements() {
    let ns = Namespace::new("fwd-replace");
    component(&ns.0, "churn", "redis", 6379, 1);
    let mut current = wait_for("a Ready pod", STARTUP, || {
        ready_pods(&ns.0, "churn", "redis").into_iter().next()
    });
    let forward = Forwarding::start(&["-v", "-n", &ns.0, "redis", "-p", "redis=0"], 1);
    let address = forward.address("redis");
    for round in 1..=10 {
        let mut old = connect(&address);
        let reply = redis_line(&mut old, b"PING\r\n");
        assert!(
            matches!(&reply, Ok(r) if r == "+PONG"),
            "round {round}: {reply:?}; stderr: {}",
            forward.stderr()
        );
        kubectl_ok(&["delete", "pod", "-n", &ns.0, &current, "--wait=false"]);
        let replacement = wait_for("the replacement pod", STARTUP, || {
            ready_pods(&ns.0, "churn", "redis")
                .into_iter()
                .find(|name| *name != current)
        });
        // The connection to the deleted pod ends with a clean end of stream.
        let mut rest = Vec::new();
        match old.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(err) => panic!("round {round}: old connection did not end cleanly: {err}"),
        }
        // A new connection reaches the new pod.
        wait_for(
            "a connection to the new pod",
            Duration::from_secs(20),
            || ping(&address).ok().filter(|reply| reply == "+PONG"),
        );
        let opened = format!("-> pod {replacement}:6379 opened");
        wait_for(
            "the connection log naming the new pod",
            Duration::from_secs(5),
            || forward.stderr().contains(&opened).then_some(()),
        );
        current = replacement;
    }
}

#[test]
fn no_ready_pod_is_loud_and_the_forward_recovers() {
    let ns = Namespace::new("fwd-empty");
    component(&ns.0, "late", "redis", 6379, 0);
    let forward = Forwarding::start(&["-n", &ns.0, "redis", "-p", "redis=0"], 1);
    assert!(
        forward.table.contains("<no Ready pod>"),
        "{}",
        forward.table
    );
    let address = forward.address("redis");
    // Accepted, then closed at once: the client sees the end, never a hang.
    let mut refused = connect(&address);
    let mut rest = Vec::new();
    let _ = refused.write_all(b"PING\r\n");
    let read = refused.read_to_end(&mut rest);
    assert!(read.is_ok() || rest.is_empty(), "{read:?}");
    assert!(rest.is_empty(), "nothing may answer without a pod");
    wait_for("the loud message", Duration::from_secs(5), || {
        forward
            .stderr()
            .contains("no Ready pod behind service")
            .then_some(())
    });

    kubectl_ok(&[
        "scale",
        "deployment",
        "-n",
        &ns.0,
        "late-redis",
        "--replicas=1",
    ]);
    wait_for("recovery through the forward", STARTUP, || {
        ping(&address).ok().filter(|reply| reply == "+PONG")
    });
    wait_for("the recovery notice", Duration::from_secs(5), || {
        forward
            .stderr()
            .contains("is Ready; forwarding")
            .then_some(())
    });
}

#[test]
fn a_fixed_port_in_use_is_a_clear_error() {
    let ns = Namespace::new("fwd-busy");
    component(&ns.0, "busy", "redis", 6379, 1);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = devenv(&["forward", "-n", &ns.0, "-p", &format!("redis={port}")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_error(
        &out,
        &format!("local port {port} (redis) is already in use"),
    );
}

#[test]
fn unknown_and_ambiguous_components_are_explained() {
    let first = Namespace::new("fwd-amb");
    let second = Namespace::new("fwd-amb");
    let stack = unique("twin");
    component(&first.0, &stack, "redis", 6379, 1);
    component(&second.0, &stack, "redis", 6379, 1);
    let out = devenv(&["forward", "-n", &first.0, "postgres"]);
    assert_error(&out, "unknown component \"postgres\"");
    assert_error(&out, "available: redis");
    let out = devenv(&["forward", "--stack", &stack, "redis"]);
    assert_error(&out, "component \"redis\" is ambiguous");
}

#[test]
fn a_hundred_megabytes_round_trip_intact_over_spdy() {
    hundred_megabytes_round_trip("spdy");
}

#[test]
fn a_hundred_megabytes_round_trip_intact_over_websocket() {
    hundred_megabytes_round_trip("websocket");
}

fn hundred_megabytes_round_trip(protocol: &str) {
    let ns = ready_component("fwd-bulk", "bulk", "redis", 6379);
    let forward = Forwarding::one(&ns.0, "redis", protocol);
    let mut stream = connect(&forward.address("redis"));
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(120)))
        .unwrap();

    // Pseudo-random, so that no layer can shortcut repeated data.
    let size = 100 * 1024 * 1024;
    let mut payload = vec![0u8; size];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for chunk in payload.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let sent_digest = Sha256::digest(&payload);
    let key = unique("fwd-bulk");

    let header = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${size}\r\n", key.len());
    stream.write_all(header.as_bytes()).unwrap();
    stream.write_all(&payload).unwrap();
    stream.write_all(b"\r\n").unwrap();
    drop(payload);
    let mut ok = [0u8; 5];
    stream.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");

    let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    stream.write_all(get.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length_line = String::new();
    reader.read_line(&mut length_line).unwrap();
    assert_eq!(length_line.trim_end(), format!("${size}"));
    let mut received = vec![0u8; size];
    reader.read_exact(&mut received).unwrap();
    let mut crlf = [0u8; 2];
    reader.read_exact(&mut crlf).unwrap();
    assert_eq!(&crlf, b"\r\n");
    assert_eq!(
        Sha256::digest(&received),
        sent_digest,
        "checksum through the forward"
    );

    let del = format!("*2\r\n$3\r\nDEL\r\n${}\r\n{key}\r\n", key.len());
    let _ = redis_line(&mut stream, del.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

#[test]
fn exec_credentials_work_for_the_forward() {
    let ns = ready_component("fwd-exec", "eks", "redis", 6379);
    let kubeconfig = testbed_env("TESTBED_EXEC_KUBECONFIG");
    let forward = Forwarding::start_with(
        &["-n", &ns.0, "redis", "-p", "redis=0"],
        1,
        &[("KUBECONFIG", &kubeconfig)],
    );
    assert_eq!(ping(&forward.address("redis")).unwrap(), "+PONG");
}

/// A TCP relay in front of the API server that can go away and come back on
/// the same port: to the forward, exactly what an API server restart looks
/// like (every connection dropped, then refused, then accepted again).
struct Relay {
    port: u16,
    running: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(port: u16, upstream: String) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let running = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (flag, open) = (running.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if !flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = open.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Self {
            port,
            running,
            connections,
        }
    }

    /// Drops every connection and stops listening.
    fn stop(self) {
        self.running
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn the_forward_recovers_from_an_api_server_restart() {
    let ns = Namespace::new("fwd-restart");
    component(&ns.0, "phoenix", "redis", 6379, 1);
    let first = wait_for("a Ready pod", STARTUP, || {
        ready_pods(&ns.0, "phoenix", "redis").into_iter().next()
    });
    let server = testbed_env("TESTBED_SERVER");
    let upstream = server.trim_start_matches("https://").to_string();
    let relay = Relay::start(0, upstream.clone());
    let relay_port = relay.port;
    let kubeconfig_text = kubectl_ok(&["config", "view", "--raw", "--minify", "--flatten"])
        .replace(&server, &format!("https://127.0.0.1:{relay_port}"));
    let dir = std::env::temp_dir().join(unique("fwd-restart-kubeconfig"));
    std::fs::write(&dir, kubeconfig_text).unwrap();
    let kubeconfig = dir.to_string_lossy().to_string();

    let forward = Forwarding::start_with(
        &["-v", "-n", &ns.0, "redis", "-p", "redis=0"],
        1,
        &[("KUBECONFIG", &kubeconfig)],
    );
    let address = forward.address("redis");
    assert_eq!(ping(&address).unwrap(), "+PONG");

    // The "API server" goes down: connections are closed, never left hanging.
    relay.stop();
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let mut during = connect(&address);
    let _ = during.write_all(b"PING\r\n");
    let mut rest = Vec::new();
    let _ = during.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "nothing can answer while the API server is down"
    );
    assert!(started.elapsed() < IO_TIMEOUT, "the connection hung");

    // It comes back on the same address: new connections work again, and
    // the pod watch has resumed, since a replaced pod is followed.
    let relay = Relay::start(relay_port, upstream);
    wait_for("connections after the restart", STARTUP, || {
        ping(&address).ok().filter(|reply| reply == "+PONG")
    });
    kubectl_ok(&["delete", "pod", "-n", &ns.0, &first, "--wait=false"]);
    let replacement = wait_for("the replacement pod", STARTUP, || {
        ready_pods(&ns.0, "phoenix", "redis")
            .into_iter()
            .find(|name| *name != first)
    });
    let opened = format!("-> pod {replacement}:6379 opened");
    wait_for("a connection to the replacement pod", STARTUP, || {
        let _ = ping(&address);
        forward.stderr().contains(&opened).then_some(())
    });
    assert_eq!(forward.terminate(), Some(0));
    relay.stop();
    let _ = std::fs::remove_file(dir);
}

/// The forward sends keepalive frames (a ping and an empty data message)
/// every 30 s on each open stream; an idle connection must come through
/// them usable. (kwok has no streaming idle timeout, so this shows the
/// frames are accepted, not that a kubelet's timeout is beaten.)
#[test]
fn an_idle_connection_stays_usable_across_keepalives() {
    let ns = ready_component("fwd-idle", "idle", "redis", 6379);
    let forward = Forwarding::start(&["-n", &ns.0, "redis", "-p", "redis=0"], 1);
    let mut idle = connect(&forward.address("redis"));
    assert_eq!(redis_line(&mut idle, b"PING\r\n").unwrap(), "+PONG");
    std::thread::sleep(Duration::from_secs(65));
    assert_eq!(
        redis_line(&mut idle, b"PING\r\n").unwrap(),
        "+PONG",
        "after two keepalive rounds; stderr: {}",
        forward.stderr()
    );
    assert!(!forward.stderr().contains("ended:"), "{}", forward.stderr());
}

/// The Services `kubectl devenv up` renders (StatefulSets behind named
/// target ports, an ExternalName alias in the dev namespace) forward as is.
#[test]
fn forward_all_of_a_stack_made_by_up() {
    require_cluster();
    let stack = unique("fwdup");
    let (dev, test) = (format!("{stack}-dev"), format!("{stack}-test"));
    let _cleanup = [Namespace(dev.clone()), Namespace(test.clone())];
    let out = devenv(&[
        "up",
        "--components",
        "mysql,redis",
        "--name",
        &stack,
        "--dev-namespace",
        &dev,
        "--test-namespace",
        &test,
        "--skip-arch-check",
        "-y",
    ]);
    assert!(out.status.success(), "up failed: {}", stderr(&out));

    // mysql, redis, and the dev pod's web server (the dev image serves HTTP).
    let forward = Forwarding::start(&["--stack", &stack, "--all"], 3);
    let answer = mysql_query(&forward.port("mysql"), "SELECT 1 + 1", None);
    assert_eq!(answer, "2");
    assert_eq!(ping(&forward.address("redis")).unwrap(), "+PONG");
    let out = devenv(&["down", "--stack", &stack, "--purge", "-y"]);
    assert!(out.status.success(), "down failed: {}", stderr(&out));
}

/// A component's `localPort` reaches `forward` through its Service's
/// annotation: with no -p, that is the port it listens on.
#[test]
fn forward_listens_on_the_local_port_of_devenv_yaml() {
    require_cluster();
    let stack = unique("fwdlp");
    let (dev, test) = (format!("{stack}-dev"), format!("{stack}-test"));
    let _cleanup = [Namespace(dev.clone()), Namespace(test.clone())];
    let local = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devenv.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {{name: {stack}}}\nspec:\n  namespaces: {{dev: {dev}, test: {test}}}\n  components: [{{kind: redis, localPort: {local}}}]\n"
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let out = devenv(&["up", "-f", &file, "--skip-arch-check", "-y"]);
    assert!(out.status.success(), "up failed: {}", stderr(&out));

    let forward = Forwarding::start(&["--stack", &stack, "redis"], 1);
    assert_eq!(
        forward.port("redis"),
        local.to_string(),
        "{}",
        forward.table
    );
    assert_eq!(ping(&forward.address("redis")).unwrap(), "+PONG");
    assert_eq!(forward.terminate(), Some(0));
    let out = devenv(&["down", "-f", &file, "--purge", "-y"]);
    assert!(out.status.success(), "down failed: {}", stderr(&out));
}

#[test]
fn a_port_the_pod_does_not_serve_is_reported_over_spdy() {
    unserved_port_is_reported("spdy");
}

#[test]
fn a_port_the_pod_does_not_serve_is_reported_over_websocket() {
    unserved_port_is_reported("websocket");
}

/// The kubelet (here kwok, which has no forward for 7777) reports the failure
/// on the error stream; the client gets an end of stream and the user the
/// kubelet's words.
fn unserved_port_is_reported(protocol: &str) {
    let ns = ready_component("fwd-unserved", "odd", "nothing", 7777);
    let forward = Forwarding::one(&ns.0, "nothing", protocol);
    let mut stream = connect(&forward.address("nothing"));
    let _ = stream.write_all(b"hello\r\n");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "unexpected reply: {rest:?}");
    wait_for("the kubelet's error", Duration::from_secs(10), || {
        forward
            .stderr()
            .contains("error forwarding port 7777 to pod")
            .then_some(())
    });
    assert!(
        forward.stderr().contains("no forward found for port 7777"),
        "{}",
        forward.stderr()
    );
}

/// SPDY carries a half-close: a client that sends its request and then shuts
/// down its writing side still gets the whole reply.
#[test]
fn a_half_closed_request_still_gets_its_reply() {
    let ns = ready_component("fwd-half", "half", "redis", 6379);
    let forward = Forwarding::start(&["-n", &ns.0, "redis", "-p", "redis=0"], 1);
    for _ in 0..3 {
        let mut stream = connect(&forward.address("redis"));
        stream.write_all(b"PING\r\nECHO half-closed\r\n").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "+PONG\r\n$11\r\nhalf-closed\r\n");
    }
}

/// After a connection opens, the next one to the same pod finds its SPDY
/// session already upgraded and only opens its streams.
#[test]
fn the_next_connection_shares_the_pods_session() {
    let ns = ready_component("fwd-standby", "warm", "redis", 6379);
    let forward = Forwarding::start(&["-v", "-n", &ns.0, "redis", "-p", "redis=0"], 1);
    assert_eq!(ping(&forward.address("redis")).unwrap(), "+PONG");
    let stderr = wait_for("a shared session in use", Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(ping(&forward.address("redis")).unwrap(), "+PONG");
        let stderr = forward.stderr();
        stderr
            .contains("opened on the pod's shared session")
            .then_some(stderr)
    });
    let first = stderr
        .lines()
        .find(|line| line.contains(" opened"))
        .unwrap();
    assert!(
        !first.contains("shared session"),
        "the first connection opens the session: {first}"
    );
}
