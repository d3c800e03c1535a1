//! `kubectl devenv up`: from a wizard, a `devenv.yaml` or flags to a Ready
//! stack. Every step is idempotent, so an interrupted run is finished by the
//! next one, and re-running an unchanged spec changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde::Serialize;

use crate::arch::{self, Arch};
use crate::cli::{GlobalArgs, OutputFormat};
use crate::cluster::Cluster;
use crate::cluster::{apply, preflight, wait};
use crate::commands::completion;
use crate::duration::parse_duration;
use crate::error::{Error, Result};
use crate::render::{self, Credentials, StoragePlan};
use crate::spec::{self, DEV_COMPONENT, Draft, Spec};
use crate::{catalog, labels, output, wizard};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Stack description to apply (default: ./devenv.yaml if it exists, else the wizard)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Test stack components instead of a file, with optional versions: php,mysql:8.0,redis
    #[arg(long, value_delimiter = ',', value_name = "KIND[:VERSION]", add = completion::catalog_kinds())]
    pub components: Vec<String>,

    /// Stack name (labels every object; default: devenv)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Namespace of the dev pod (default: dev)
    #[arg(long, value_name = "NAME")]
    pub dev_namespace: Option<String>,

    /// Namespace of the test stack (default: test)
    #[arg(long, value_name = "NAME")]
    pub test_namespace: Option<String>,

    /// Host directory to mount into the dev pod at /var/www/html (hostPath)
    #[arg(long, value_name = "PATH")]
    pub code_path: Option<PathBuf>,

    /// The node that has --code-path; the dev pod is pinned to it (needed when
    /// several nodes could run the dev pod)
    #[arg(long, value_name = "NODE", requires = "code_path")]
    pub code_path_node: Option<String>,

    /// Run every pod on nodes of this architecture
    #[arg(long, value_name = "ARCH", value_parser = target_arch())]
    pub arch: Option<Arch>,

    /// Do not refuse a target architecture that no node has, nor images without a variant for it
    #[arg(long)]
    pub skip_arch_check: bool,

    #[command(flatten)]
    pub registry: crate::commands::check::RegistryArgs,

    /// Apply without asking for confirmation (required when there is no terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Print the objects instead of applying them; needs no cluster
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for every component to become Ready
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `--arch`: clap lists the possible values as for a `ValueEnum`, and [`Arch`]
/// stays free of clap.
fn target_arch() -> impl TypedValueParser<Value = Arch> {
    PossibleValuesParser::new(arch::TARGETS).try_map(|text| Arch::target(&text))
}

/// One row of the final summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Endpoint {
    pub component: String,
    pub image: String,
    /// `mysql.test.svc.cluster.local:3306`; empty for the dev pod.
    pub in_cluster: String,
    /// `mysql:3306`, through the dev namespace's alias; empty for the dev pod.
    pub from_dev_pod: String,
    /// The command that reaches the component from the developer's machine.
    pub local_access: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UpReport {
    stack: String,
    dev_namespace: String,
    test_namespace: String,
    endpoints: Vec<Endpoint>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &UpArgs) -> Result<()> {
    if global.namespace.is_some() {
        return Err(Error::Usage(
            "-n/--namespace does not apply to up: a stack's namespaces come from devenv.yaml \
             (spec.namespaces) or --dev-namespace/--test-namespace"
                .into(),
        ));
    }
    let (spec, confirmed) = resolve_spec(args)?;
    if args.dry_run {
        return print_dry_run(global.output, &spec);
    }
    if !args.yes && !confirmed && !confirm_apply(&spec)? {
        eprintln!("Nothing applied.");
        return Ok(());
    }
    let cluster = Cluster::connect(&global.connection()).await?;
    tokio::select! {
        result = converge(&cluster, &spec, args) => result?,
        _ = tokio::signal::ctrl_c() => {
            return Err(Error::Other(
                "interrupted: run `kubectl devenv up` again to finish; it continues where this run stopped".into(),
            ));
        }
    }
    let report = UpReport {
        stack: spec.name.clone(),
        dev_namespace: spec.dev_namespace.clone(),
        test_namespace: spec.test_namespace.clone(),
        endpoints: endpoints(&spec),
    };
    output::emit(global.output, &report, |report| {
        output::table_text(&endpoints_table(&report.endpoints))
    })?;
    if global.output == OutputFormat::Table {
        eprintln!(
            "Stack \"{}\" is ready: dev pod in namespace \"{}\", test stack in \"{}\".",
            spec.name, spec.dev_namespace, spec.test_namespace
        );
        if let Some(hint) = sync_hint(&spec) {
            eprintln!("{hint}");
        }
    }
    Ok(())
}

/// The summary: where each component is, from the cluster, the dev pod and here.
fn endpoints_table(endpoints: &[Endpoint]) -> comfy_table::Table {
    let mut table = output::table([
        "COMPONENT",
        "IMAGE",
        "IN-CLUSTER ADDRESS",
        "FROM THE DEV POD",
        "FROM YOUR MACHINE",
    ]);
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    for e in endpoints {
        table.add_row([
            e.component.clone(),
            e.image.clone(),
            or_dash(&e.in_cluster),
            or_dash(&e.from_dev_pod),
            e.local_access.clone(),
        ]);
    }
    table
}

/// Without `codePath` the dev pod starts with an empty code directory.
pub(crate) fn sync_hint(spec: &Spec) -> Option<String> {
    if spec.dev.code_path.is_some() {
        return None;
    }
    let stack_flag = if spec.name == spec::DEFAULT_STACK {
        String::new()
    } else {
        format!(" --stack {}", spec.name)
    };
    Some(format!(
        "The code directory {} is empty: `kubectl devenv sync{stack_flag}` uploads your code and keeps it in sync.",
        spec.dev.sync.remote_path
    ))
}

/// The spec to apply and whether the user already confirmed it (in the wizard).
fn resolve_spec(args: &UpArgs) -> Result<(Spec, bool)> {
    let (mut spec, confirmed) = resolve_spec_source(args)?;
    if let Some(node) = &args.code_path_node {
        spec.dev.code_path_node = Some(node.clone());
    }
    Ok((spec, confirmed))
}

fn resolve_spec_source(args: &UpArgs) -> Result<(Spec, bool)> {
    if let Some(path) = &args.file {
        if !args.components.is_empty() {
            return Err(Error::Usage(
                "--components cannot be combined with -f: edit the file instead".into(),
            ));
        }
        return Ok((apply_overrides(spec::load(path)?, args)?, false));
    }
    if !args.components.is_empty() {
        return Ok((draft_from_flags(args)?.resolve()?, false));
    }
    let default_file = Path::new(spec::DEFAULT_FILE);
    if default_file.exists() {
        eprintln!("Using {}", spec::DEFAULT_FILE);
        return Ok((apply_overrides(spec::load(default_file)?, args)?, false));
    }
    if wizard::interactive() && !args.yes && !args.dry_run {
        let spec = wizard::run(&draft_from_flags(args)?, default_file)?;
        return Ok((spec, true));
    }
    Err(Error::Usage(format!(
        "nothing to apply: there is no {} here and no terminal for the wizard; \
         pass -f FILE or --components KIND[:VERSION],... (with --yes)",
        spec::DEFAULT_FILE
    )))
}

/// The flags as a draft; components are checked against the catalog here so
/// that mistakes are reported in terms of the flag, not of generated YAML.
fn draft_from_flags(args: &UpArgs) -> Result<Draft> {
    let mut draft = Draft::default();
    for item in &args.components {
        let (kind, version) = match item.split_once(':') {
            Some((kind, version)) => (kind.trim(), Some(version.trim().to_owned())),
            None => (item.trim(), None),
        };
        let entry = catalog::find(kind).ok_or_else(|| {
            Error::Usage(format!(
                "--components: unknown component kind \"{kind}\" (known kinds: {})",
                catalog::kinds()
            ))
        })?;
        if let Some(version) = &version
            && !entry.versions.contains(version)
        {
            return Err(Error::Usage(format!(
                "--components: {kind} version \"{version}\" is not supported (choose one of: {})",
                entry.versions.join(", ")
            )));
        }
        if draft.components.iter().any(|(k, _)| k == kind) {
            return Err(Error::Usage(format!(
                "--components: \"{kind}\" is listed twice; use -f devenv.yaml to run two of a kind under different names"
            )));
        }
        draft.components.push((kind.to_owned(), version));
    }
    let flags = Overrides::checked(args)?;
    flags.onto(
        &mut draft.name,
        &mut draft.dev_namespace,
        &mut draft.test_namespace,
        &mut draft.code_path,
        &mut draft.target_arch,
    )?;
    Ok(draft)
}

fn checked_name(flag: &str, value: &str, max: usize) -> Result<String> {
    match spec::name_problem(value, max) {
        None => Ok(value.to_owned()),
        Some(problem) => Err(Error::Usage(format!(
            "{flag}: invalid name \"{value}\": {problem}"
        ))),
    }
}

fn checked_code_path(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Err(Error::Usage(format!(
            "--code-path: \"{}\" must be an absolute path (it is mounted from the node)",
            path.display()
        )))
    }
}

/// Flags given with a file override the file's settings.
fn apply_overrides(mut spec: Spec, args: &UpArgs) -> Result<Spec> {
    Overrides::checked(args)?.onto(
        &mut spec.name,
        &mut spec.dev_namespace,
        &mut spec.test_namespace,
        &mut spec.dev.code_path,
        &mut spec.target_arch,
    )?;
    Ok(spec)
}

/// `--name`, the namespaces, `--code-path` and `--arch`, each checked once,
/// for a draft (flags and the wizard's defaults) and a file alike.
struct Overrides {
    name: Option<String>,
    dev_namespace: Option<String>,
    test_namespace: Option<String>,
    code_path: Option<PathBuf>,
    arch: Option<Arch>,
}

impl Overrides {
    fn checked(args: &UpArgs) -> Result<Self> {
        let name = |flag, value: &Option<String>, max| {
            value
                .as_deref()
                .map(|v| checked_name(flag, v, max))
                .transpose()
        };
        Ok(Self {
            name: name("--name", &args.name, spec::MAX_NAME_LEN)?,
            dev_namespace: name("--dev-namespace", &args.dev_namespace, 63)?,
            test_namespace: name("--test-namespace", &args.test_namespace, 63)?,
            code_path: args
                .code_path
                .as_deref()
                .map(checked_code_path)
                .transpose()?,
            arch: args.arch.clone(),
        })
    }

    fn onto(
        self,
        name: &mut String,
        dev_namespace: &mut String,
        test_namespace: &mut String,
        code_path: &mut Option<PathBuf>,
        target_arch: &mut Option<Arch>,
    ) -> Result<()> {
        let given = self.dev_namespace.is_some() || self.test_namespace.is_some();
        let set = |field: &mut String, value: Option<String>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(name, self.name);
        set(dev_namespace, self.dev_namespace);
        set(test_namespace, self.test_namespace);
        if dev_namespace == test_namespace {
            let which = if given {
                "--dev-namespace and --test-namespace"
            } else {
                "the dev and test namespaces"
            };
            return Err(Error::Usage(format!(
                "{which} must differ (both are \"{dev_namespace}\")"
            )));
        }
        if self.code_path.is_some() {
            *code_path = self.code_path;
        }
        if self.arch.is_some() {
            *target_arch = self.arch;
        }
        Ok(())
    }
}

fn confirm_apply(spec: &Spec) -> Result<bool> {
    wizard::confirm_or_refuse("apply", || {
        eprintln!("{}", wizard::summary(spec));
        "Apply this stack?".to_owned()
    })
}

fn print_dry_run(format: OutputFormat, spec: &Spec) -> Result<()> {
    let credentials = render::complete_credentials(spec, &Credentials::new(), generate_password);
    let objects = render::render(
        spec,
        &credentials,
        &StoragePlan::uniform(render::StorageMode::Persistent),
    );
    match format {
        OutputFormat::Yaml => output::print(
            render::to_yaml_stream(&objects)
                .map_err(|e| Error::Other(format!("cannot encode YAML: {e}")))?,
        )?,
        OutputFormat::Json => {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects });
            output::print(output::structured(format, &list)?.unwrap_or_default())?;
        }
        OutputFormat::Dotenv | OutputFormat::Shell => return Err(output::env_only(format)),
        OutputFormat::Table => {
            let mut table = output::table(["KIND", "NAMESPACE", "NAME"]);
            for object in &objects {
                table.add_row([
                    object.kind(),
                    object.namespace().unwrap_or("<cluster>"),
                    object.name(),
                ]);
            }
            output::print_table(&table)?;
        }
    }
    Ok(())
}

/// Everything after the spec is settled, in an order where each step can be
/// interrupted and redone.
async fn converge(cluster: &Cluster, spec: &Spec, args: &UpArgs) -> Result<()> {
    preflight::check_namespaces(cluster, spec, args.timeout).await?;
    let spec = &preflight::pin_code_path(cluster, spec).await?;
    if !args.skip_arch_check {
        preflight::check_target_arch(cluster, spec).await?;
        let target = spec.target_arch.as_slice();
        crate::registry::gate::run(cluster, &spec.images(), target, &args.registry.options())
            .await?;
    }
    let storage = preflight::storage_plan(cluster, spec).await?;
    let existing = preflight::existing_credentials(cluster, spec).await?;
    let credentials = render::complete_credentials(spec, &existing, generate_password);
    let objects = render::render(spec, &credentials, &storage);
    let waves = spec.start_waves();
    let deadline = wait::Deadline::after(args.timeout);
    let (first, later) = split_by_wave(&objects, &waves);
    apply::apply_all(cluster, &first).await?;
    let pruned = apply::prune(cluster, &spec.name, &spec.namespaces(), &objects).await?;
    tracing::info!("applied {} objects, pruned {pruned}", first.len());
    for (wave, workloads) in waves.iter().skip(1).zip(later) {
        let mut needed: Vec<String> = wave
            .iter()
            .flat_map(|name| spec.dependencies_of(name).iter().cloned())
            .collect();
        needed.sort();
        needed.dedup();
        eprintln!(
            "Waiting for {} before starting {}",
            needed.join(", "),
            wave.join(", ")
        );
        wait::wait_components(cluster, spec, &needed, deadline).await?;
        apply::apply_all(cluster, &workloads).await?;
    }
    wait::wait_ready(cluster, spec, deadline).await
}

/// Everything the first wave needs (namespaces, Secrets, Services, ... and
/// the first wave's workloads), then the workloads of each later wave.
fn split_by_wave(
    objects: &[render::Object],
    waves: &[Vec<String>],
) -> (Vec<render::Object>, Vec<Vec<render::Object>>) {
    let wave_of = |object: &render::Object| -> usize {
        let workload = matches!(
            object,
            render::Object::Deployment(_) | render::Object::StatefulSet(_)
        );
        let component = object
            .metadata()
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::COMPONENT));
        match component {
            Some(component) if workload => waves
                .iter()
                .position(|w| w.contains(component))
                .unwrap_or(0),
            _ => 0,
        }
    };
    let mut first = Vec::new();
    let mut later = vec![Vec::new(); waves.len().saturating_sub(1)];
    for object in objects {
        match wave_of(object) {
            0 => first.push(object.clone()),
            n => later[n - 1].push(object.clone()),
        }
    }
    (first, later)
}

/// 24 random alphanumerics (about 143 bits), safe in URLs and shell variables.
pub(crate) fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        // Rejection sampling keeps every character equally likely.
        for byte in bytes {
            if (byte as usize) < ALPHABET.len() * 4 && out.len() < 24 {
                out.push(ALPHABET[byte as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// The summary rows: every component, then the dev pod.
pub(crate) fn endpoints(spec: &Spec) -> Vec<Endpoint> {
    let stack_flag = if spec.name == spec::DEFAULT_STACK {
        String::new()
    } else {
        format!(" --stack {}", spec.name)
    };
    spec.components
        .iter()
        .map(|c| Endpoint {
            component: c.name.clone(),
            image: c.image.clone(),
            in_cluster: format!("{}:{}", spec.service_host(c), c.port),
            from_dev_pod: format!("{}:{}", c.name, c.port),
            local_access: format!("kubectl devenv forward {}{stack_flag}", c.name),
        })
        .chain(std::iter::once(Endpoint {
            component: DEV_COMPONENT.to_owned(),
            image: spec.dev.image.clone(),
            in_cluster: String::new(),
            from_dev_pod: String::new(),
            local_access: format!("kubectl devenv shell{stack_flag}"),
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> UpArgs {
        let mut argv = vec!["kubectl-devenv", "up"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Up(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_build_a_spec() {
        let spec = draft_from_flags(&args(&[
            "--components",
            "php,mysql:8.0,redis",
            "--name",
            "shop",
            "--arch",
            "arm64",
            "--code-path",
            "/src",
        ]))
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(spec.name, "shop");
        assert_eq!(spec.component("mysql").unwrap().image, "mysql:8.0");
        assert_eq!(spec.target_arch, Some(Arch::arm64()));
        assert_eq!(spec.dev.code_path.as_deref(), Some(Path::new("/src")));
    }

    #[test]
    fn flag_mistakes_name_the_flag() {
        let err = |extra: &[&str]| draft_from_flags(&args(extra)).unwrap_err().to_string();
        assert!(
            err(&["--components", "mongodb"])
                .starts_with("--components: unknown component kind \"mongodb\"")
        );
        assert!(
            err(&["--components", "mysql:5.7"]).contains("mysql version \"5.7\" is not supported")
        );
        assert!(err(&["--components", "redis,redis"]).contains("listed twice"));
        assert!(
            err(&["--components", "redis", "--name", "Bad_Name"])
                .starts_with("--name: invalid name")
        );
        assert!(
            err(&["--components", "redis", "--code-path", "src"])
                .contains("must be an absolute path")
        );
        assert!(
            err(&[
                "--components",
                "redis",
                "--dev-namespace",
                "x",
                "--test-namespace",
                "x"
            ])
            .contains("must differ")
        );
    }

    #[test]
    fn passwords_are_random_and_alphanumeric() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }

    #[test]
    fn summary_rows_point_at_the_aliases() {
        let spec = Draft {
            name: "shop".into(),
            components: vec![("mysql".into(), None)],
            ..Draft::default()
        }
        .resolve()
        .unwrap();
        let rows = endpoints(&spec);
        assert_eq!(rows[0].in_cluster, "mysql.test.svc.cluster.local:3306");
        assert_eq!(rows[0].from_dev_pod, "mysql:3306");
        assert_eq!(
            rows[0].local_access,
            "kubectl devenv forward mysql --stack shop"
        );
        assert_eq!(rows[1].component, "dev");
        assert_eq!(
            sync_hint(&spec).as_deref(),
            Some(
                "The code directory /var/www/html is empty: `kubectl devenv sync --stack shop` uploads your code and keeps it in sync."
            )
        );
        let mounted = Draft {
            code_path: Some("/src".into()),
            components: vec![("redis".into(), None)],
            ..Draft::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(sync_hint(&mounted), None);
    }

    #[test]
    fn dry_run_objects_cover_the_whole_stack() {
        let spec = Draft {
            components: vec![
                ("php".into(), None),
                ("mysql".into(), None),
                ("redis".into(), None),
            ],
            ..Draft::default()
        }
        .resolve()
        .unwrap();
        let credentials =
            render::complete_credentials(&spec, &Credentials::new(), generate_password);
        let objects = render::render(
            &spec,
            &credentials,
            &StoragePlan::uniform(render::StorageMode::Persistent),
        );
        let kinds: Vec<&str> = objects.iter().map(render::Object::kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "Namespace").count(), 2);
        assert_eq!(
            kinds.iter().filter(|k| **k == "Service").count(),
            7,
            "3 services + 3 aliases + the dev pod's web server"
        );
    }
}
