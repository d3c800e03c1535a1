//! Our Compose reader against the reference, compose-go (the library Docker
//! Compose uses), through the test bed's `compose-ref` tool: for every
//! fixture, the interpolated, merged model must be the same.
//!
//! Needs `TESTBED_COMPOSE_REF` (set by the test bed's env, or
//! `go build` of tests/testbed/go/compose-ref); fails loudly without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubectl_devenv::compose::model::{MountType, Project, Service};
use kubectl_devenv::compose::{self, Options};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose")
}

fn oracle() -> PathBuf {
    let path = std::env::var("TESTBED_COMPOSE_REF").unwrap_or_else(|_| {
        panic!(
            "TESTBED_COMPOSE_REF is not set: source the test bed's env, or build \
             tests/testbed/go/compose-ref and point TESTBED_COMPOSE_REF at the binary"
        )
    });
    assert!(
        Path::new(&path).is_file(),
        "TESTBED_COMPOSE_REF={path} does not exist"
    );
    PathBuf::from(path)
}

/// The environment both readers see: nothing of the test runner's own.
fn environment(dir: &Path) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("HOME".to_owned(), "/home/me".to_owned()),
        ("PWD".to_owned(), dir.display().to_string()),
        ("FROM_PROCESS".to_owned(), "proc".to_owned()),
    ])
}

fn reference(dir: &Path, profiles: &[&str]) -> Value {
    let mut command = Command::new(oracle());
    command.env_clear().envs(environment(dir)).current_dir(dir);
    for profile in profiles {
        command.args(["-profile", profile]);
    }
    let output = command
        .arg("compose.yaml")
        .output()
        .expect("compose-ref runs");
    assert!(
        output.status.success(),
        "compose-ref failed on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("compose-ref prints JSON")
}

fn null_if_empty<T: serde::Serialize>(items: &[T]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// Our model in compose-ref's shape.
fn canonical(project: &Project) -> Value {
    let service = |s: &Service| {
        json!({
            "image": s.image.clone().unwrap_or_default(),
            "build": s.build,
            "environment": s.environment,
            "command": s.command,
            "entrypoint": s.entrypoint,
            "ports": s.ports.iter().map(|p| json!({
                "target": p.target,
                "published": p.published.clone().unwrap_or_default(),
                "protocol": p.protocol,
                "host_ip": p.host_ip.clone().unwrap_or_default(),
            })).collect::<Vec<_>>(),
            "expose": null_if_empty(&s.expose),
            "volumes": s.volumes.iter().map(|m| json!({
                "type": match m.kind {
                    MountType::Bind => "bind",
                    MountType::Volume => "volume",
                    MountType::Tmpfs => "tmpfs",
                    MountType::Other => "other",
                },
                "source": m.source,
                "target": m.target,
                "read_only": m.read_only,
            })).collect::<Vec<_>>(),
            "depends_on": s.depends_on.iter().map(|d| (d.service.clone(), json!(d.condition))).collect::<serde_json::Map<_, _>>(),
            "healthcheck": s.healthcheck.as_ref().map(|h| json!({
                "test": h.test,
                "interval": h.interval,
                "timeout": h.timeout,
                "retries": h.retries,
                "start_period": h.start_period,
                "disable": h.disable,
            })),
            "user": s.user.clone().unwrap_or_default(),
            "profiles": null_if_empty(&s.profiles),
        })
    };
    json!({
        "services": project.services.iter().map(|(n, s)| (n.clone(), service(s))).collect::<serde_json::Map<_, _>>(),
        "volumes": project.volumes,
    })
}

fn compare(fixture: &str, profiles: &[&str]) {
    let dir = fixtures().join(fixture);
    let expected = reference(&dir, profiles);
    let options = Options {
        environment: environment(&dir),
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
    };
    let project = compose::load(&dir.join("compose.yaml"), &options)
        .unwrap_or_else(|err| panic!("{fixture}: {err}"));
    let ours = canonical(&project);
    assert_eq!(
        ours,
        expected,
        "{fixture} {profiles:?}: our reading differs from compose-go's\nours:      {}\nreference: {}",
        serde_json::to_string_pretty(&ours).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
}

#[test]
fn laravel_sail() {
    compare("sail", &[]);
}

#[test]
fn symfony_without_and_with_its_profile() {
    compare("symfony", &[]);
    compare("symfony", &["mail"]);
}

#[test]
fn wordpress() {
    compare("wordpress", &[]);
}

#[test]
fn lemp() {
    compare("lemp", &[]);
}

#[test]
fn corner_cases() {
    compare("edge", &[]);
    compare("edge", &["debug"]);
}
