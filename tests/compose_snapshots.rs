//! `init --from-compose` on the Compose files real projects use: each one
//! converts to the expected devenv.yaml and report (tests/snapshots/), and
//! the result renders to a locked-down stack in `dependsOn` order.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::PodSpec;
use kubectl_devenv::compose::{self, Options};
use kubectl_devenv::render::{self, Credentials, Object, StorageMode, StoragePlan};
use kubectl_devenv::spec;

/// The report and the devenv.yaml, as the command prints them.
fn converted(fixture: &str, profiles: &[&str]) -> (String, spec::Spec) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compose")
        .join(fixture);
    let options = Options {
        environment: BTreeMap::from([("PWD".to_owned(), "/src/app".to_owned())]),
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
    };
    let project = compose::load(&dir.join("compose.yaml"), &options).expect("fixture reads");
    let conversion = compose::convert(&project, "devenv").expect("fixture converts");
    let report: Vec<String> = conversion.report.iter().map(ToString::to_string).collect();
    let yaml = conversion.spec.to_yaml();
    // What init writes is what up reads back.
    assert_eq!(spec::parse(&yaml, "devenv.yaml").unwrap(), conversion.spec);
    (
        format!("{}\n---\n{yaml}", report.join("\n")),
        conversion.spec,
    )
}

/// Every pod renders with the stack's secure defaults.
fn renders_locked_down(spec: &spec::Spec) -> Vec<Object> {
    let mut n = 0;
    let credentials = render::complete_credentials(spec, &Credentials::new(), || {
        n += 1;
        format!("generated-{n}")
    });
    let objects = render::render(
        spec,
        &credentials,
        &StoragePlan::uniform(StorageMode::Persistent),
    );
    let pods: Vec<&PodSpec> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Deployment(d) => d.spec.as_ref()?.template.spec.as_ref(),
            Object::StatefulSet(s) => s.spec.as_ref()?.template.spec.as_ref(),
            _ => None,
        })
        .collect();
    assert_eq!(pods.len(), spec.components.len() + 1);
    for pod in pods {
        let security = pod.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(
            security.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        for container in &pod.containers {
            let sc = container.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_owned()][..])
            );
            assert!(container.resources.as_ref().unwrap().limits.is_some());
        }
        assert!(pod.volumes.iter().flatten().all(|v| v.host_path.is_none()));
    }
    // No password of the Compose files is anywhere in the rendered stack
    // outside the generated Secrets.
    let text = render::to_yaml_stream(&objects).unwrap();
    for password in [
        "s3cret-from-dotenv",
        "app-db-password",
        "somewordpress",
        "root-secret",
        "a-master-key-for-dev",
        "!ChangeMe!",
    ] {
        assert!(
            !text.contains(password),
            "{password} leaked into the rendered objects"
        );
    }
    objects
}

#[test]
fn laravel_sail() {
    let (text, spec) = converted("sail", &[]);
    insta::assert_snapshot!(text);
    renders_locked_down(&spec);
    assert_eq!(
        spec.start_waves(),
        [
            vec!["mysql", "redis", "meilisearch", "mailpit"],
            vec!["dev"]
        ]
    );
}

#[test]
fn symfony_with_service_healthy() {
    let (text, spec) = converted("symfony", &["mail"]);
    insta::assert_snapshot!(text);
    renders_locked_down(&spec);
    assert_eq!(
        spec.start_waves(),
        [
            vec!["database", "mailer"],
            vec!["cache", "search"],
            vec!["dev"]
        ]
    );
}

#[test]
fn wordpress_with_mariadb() {
    let (text, spec) = converted("wordpress", &[]);
    insta::assert_snapshot!(text);
    renders_locked_down(&spec);
}

#[test]
fn lemp_with_nginx_and_php_ini() {
    let (text, spec) = converted("lemp", &[]);
    insta::assert_snapshot!(text);
    let objects = renders_locked_down(&spec);
    let config_maps: Vec<(&str, &str)> = objects
        .iter()
        .filter(|o| o.kind() == "ConfigMap")
        .map(|o| (o.namespace().unwrap_or_default(), o.name()))
        .collect();
    assert_eq!(config_maps, [("test", "nginx-files"), ("dev", "dev-files")]);
}

#[test]
fn a_code_mount_from_a_subdirectory_becomes_the_sync_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  app:\n    build: .\n    volumes: ['./src:/app']\n  redis:\n    image: redis:7\n",
    )
    .unwrap();
    let project = compose::load(&file, &Options::default()).unwrap();
    let conversion = compose::convert(&project, "shop").unwrap();
    assert_eq!(
        conversion.spec.dev.sync.local_path.as_deref(),
        Some(Path::new("src"))
    );
    // In the pod the code stays where the dev image's web server serves it.
    assert_eq!(conversion.spec.dev.sync.remote_path, "/var/www/html");
    let report: Vec<String> = conversion.report.iter().map(ToString::to_string).collect();
    assert!(
        report.iter().any(|l| l.contains(
            "code ./src -> carried by `kubectl devenv sync` (sync.localPath src), at /var/www/html rather than /app"
        )),
        "{report:?}"
    );
    let yaml = conversion.spec.to_yaml();
    assert_eq!(spec::parse(&yaml, "devenv.yaml").unwrap(), conversion.spec);
}

#[test]
fn the_apps_environment_and_published_ports_carry_over() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        r#"
services:
  app:
    build: .
    volumes: ['.:/var/www/html']
    environment:
      APP_ENV: local
      APP_KEY: base64:c2VjcmV0
      DB_HOST: 127.0.0.1
      DATABASE_URL: mysql://app:hunter2@mysql:3306/app
      MAIL_HOST: mail
      UNSET:
  mysql:
    image: mysql:8.0
    ports: ["13306:3306"]
  mail:
    image: axllent/mailpit
    ports: ["1025:1025", "18025:8025"]
"#,
    )
    .unwrap();
    let project = compose::load(&file, &Options::default()).unwrap();
    let conversion = compose::convert(&project, "shop").unwrap();
    let spec = &conversion.spec;
    assert_eq!(
        spec.dev.env,
        BTreeMap::from([
            ("APP_ENV".to_owned(), "local".to_owned()),
            ("MAIL_HOST".to_owned(), "mail".to_owned()),
        ])
    );
    assert_eq!(spec.component("mysql").unwrap().local_port, Some(13306));
    assert_eq!(
        spec.component("mail").unwrap().local_ports(),
        [("tcp-8025".to_owned(), 18025)]
    );
    let yaml = spec.to_yaml();
    for secret in ["c2VjcmV0", "hunter2"] {
        assert!(!yaml.contains(secret), "{secret} written:\n{yaml}");
    }
    let app = conversion.report[0].to_string();
    for note in [
        "env APP_ENV, MAIL_HOST -> dev.env",
        "env replaced by the stack's: DB_HOST (from mysql)",
        "dropped env: APP_KEY, DATABASE_URL (secrets: devenv.yaml never holds them in plain text",
        "dropped env: UNSET (not set anywhere)",
    ] {
        assert!(app.contains(note), "{note:?} not in {app}");
    }
    let mysql = conversion.report[1].to_string();
    assert!(
        mysql.contains("port 13306:3306 -> localPort 13306 (forward's default)"),
        "{mysql}"
    );
    assert!(
        !mysql.contains("devenv forward"),
        "no forward -p hint: {mysql}"
    );
}

#[test]
fn a_url_with_a_password_never_reaches_devenv_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  worker:\n    image: example/worker:1\n    environment:\n      \
         DATABASE_URL: mysql://app:hunter2-in-url@db/app\n      QUEUE: default\n",
    )
    .unwrap();
    let project = compose::load(&file, &Options::default()).unwrap();
    let conversion = compose::convert(&project, "shop").unwrap();
    let yaml = conversion.spec.to_yaml();
    assert!(!yaml.contains("hunter2-in-url"), "{yaml}");
    assert!(yaml.contains("QUEUE"), "{yaml}");
    let report: Vec<String> = conversion.report.iter().map(ToString::to_string).collect();
    assert!(
        report
            .iter()
            .any(|l| l.contains("dropped env: DATABASE_URL (a URL with a password in it")),
        "{report:?}"
    );
}
