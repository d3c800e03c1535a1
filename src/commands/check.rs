//! `kubectl devenv check`: which platforms each image provides, read from its
//! registry, against the architectures the cluster's nodes (or `--arch`)
//! require. Exits 1 when an image lacks one, so CI can gate on it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::arch::{self, Arch};
use crate::cli::GlobalArgs;
use crate::cluster::{Cluster, Scope, nodes, workloads};
use crate::commands::StackArg;
use crate::error::{Error, Result};
use crate::registry::gate::arches_of;
use crate::registry::{self, ImageCheck, RegistryOptions, check_images};
use crate::{output, spec};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check the images of this stack file (default: ./devenv.yaml when no other images are given)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Required architectures, comma-separated (default: devenv.yaml's targetArch, else every
    /// architecture among the cluster's nodes)
    #[arg(long, value_name = "ARCH", value_delimiter = ',')]
    pub arch: Vec<String>,

    /// An image to check; repeat or list several
    #[arg(long = "image", value_name = "IMAGE", num_args = 1..)]
    pub images: Vec<String>,

    /// Check the images of the workloads in the namespace (-n): Deployments,
    /// StatefulSets, DaemonSets, Jobs, CronJobs and bare Pods
    #[arg(long)]
    pub deployed: bool,

    /// Check the images of the workloads in all namespaces (implies --deployed)
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Instead of images: prove that the stack's NetworkPolicy is enforced, by
    /// probing its Services from a temporary namespace and from the dev namespace
    #[arg(long, conflicts_with_all = ["arch", "images", "deployed", "all_namespaces"])]
    pub isolation: bool,

    #[command(flatten)]
    pub stack: StackArg,

    /// The probe pods' image with --isolation; it needs sh, timeout and nc
    #[arg(long, value_name = "IMAGE", default_value = "busybox:1.37")]
    pub probe_image: String,

    /// How long the --isolation probe may take, pod start included
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::duration::parse_duration)]
    pub timeout: Duration,
}

/// The registry flags shared by `check` and `up`.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// A registry (host:port) to reach over plain HTTP; loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// How long to wait for a registry to answer, per request (to connect: at most 5s)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::parse_duration)]
    pub registry_timeout: Duration,
}

impl RegistryArgs {
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure_registries: self.insecure_registries.clone(),
            timeout: if self.registry_timeout.is_zero() {
                registry::DEFAULT_TIMEOUT
            } else {
                self.registry_timeout
            },
            ..RegistryOptions::default()
        }
    }
}

/// Where the required architectures came from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Required {
    pub architectures: Vec<Arch>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Verdict {
    pub ready: bool,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct CheckReport {
    pub required: Required,
    /// Architecture → node count; absent when the nodes could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<BTreeMap<String, usize>>,
    pub images: Vec<ImageCheck>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &CheckArgs) -> Result<()> {
    if args.stack.name.is_some() && !args.isolation {
        return Err(Error::Usage(
            "--stack is for --isolation; images are checked from -f FILE or ./devenv.yaml".into(),
        ));
    }
    if args.isolation {
        let options = crate::commands::isolation::Options {
            stack: args.stack.name.as_deref(),
            file: args.file.as_deref(),
            probe_image: &args.probe_image,
            timeout: args.timeout,
        };
        return crate::commands::isolation::run(global, &options).await;
    }
    let flag_arches = arch::parse_list(&args.arch).map_err(Error::Usage)?;
    let deployed = args.deployed || args.all_namespaces;
    let spec = stack_file(args, deployed)?;
    let mut notes = Vec::new();
    let cluster = match Cluster::connect(&global.connection()).await {
        Ok(cluster) => Some(cluster),
        Err(err) if !deployed => {
            notes.push(format!("no cluster to read node architectures from: {err}"));
            None
        }
        Err(err) => return Err(err),
    };
    let in_cluster = cluster.as_ref().filter(|_| deployed);
    let Some(used_by) = gather_images(args, spec.as_ref(), in_cluster).await? else {
        return Ok(());
    };
    let target = spec.as_ref().and_then(|s| s.target_arch.as_ref());
    let report = inspect(
        cluster.as_ref(),
        used_by,
        flag_arches,
        target,
        &args.registry.options(),
        notes,
    )
    .await;
    for note in &report.notes {
        eprintln!("Warning: {note}");
    }
    output::emit(global.output, &report, |report| render(report, deployed))?;
    if report.verdict.ready {
        Ok(())
    } else {
        Err(Error::Other(report.verdict.message.clone()))
    }
}

/// `-f FILE`, else ./devenv.yaml when neither images nor `--deployed` are given.
fn stack_file(args: &CheckArgs, deployed: bool) -> Result<Option<spec::Spec>> {
    let spec_file = match &args.file {
        Some(file) => Some(file.clone()),
        None if args.images.is_empty() && !deployed => {
            let default = PathBuf::from(spec::DEFAULT_FILE);
            default.exists().then_some(default)
        }
        None => None,
    };
    let spec = spec_file.as_deref().map(spec::load).transpose()?;
    if args.images.is_empty() && spec.is_none() && !deployed {
        return Err(Error::Usage(
            "nothing to check: pass --image IMAGE, -f devenv.yaml, or --deployed (no devenv.yaml in the current directory)".into(),
        ));
    }
    Ok(spec)
}

/// The images to check in first-seen order, each with the workloads that
/// use it (from `--deployed`). `None` when the cluster has no workloads.
async fn gather_images(
    args: &CheckArgs,
    spec: Option<&spec::Spec>,
    deployed_in: Option<&Cluster>,
) -> Result<Option<Vec<(String, Vec<String>)>>> {
    let mut used_by: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |image: &str, user: Option<String>| {
        let at = match used_by.iter().position(|(i, _)| i == image) {
            Some(at) => at,
            None => {
                used_by.push((image.to_owned(), Vec::new()));
                used_by.len() - 1
            }
        };
        used_by[at].1.extend(user);
    };
    for image in &args.images {
        add(image, None);
    }
    for image in spec.iter().flat_map(|s| s.images()) {
        add(&image, None);
    }
    if let Some(cluster) = deployed_in {
        let scope = if args.all_namespaces {
            Scope::All
        } else {
            cluster.default_scope()
        };
        for (image, workload) in workloads::deployed_images(cluster, &scope).await? {
            add(&image, Some(workload));
        }
        if used_by.is_empty() {
            let scope = if args.all_namespaces {
                "in the cluster".to_owned()
            } else {
                format!("in namespace \"{}\"", cluster.namespace)
            };
            eprintln!("No workloads found {scope}.");
            return Ok(None);
        }
    }
    Ok(Some(used_by))
}

/// The requirement, the nodes and each image's platforms, judged.
async fn inspect(
    cluster: Option<&Cluster>,
    used_by: Vec<(String, Vec<String>)>,
    flag_arches: Vec<Arch>,
    target: Option<&Arch>,
    options: &RegistryOptions,
    mut notes: Vec<String>,
) -> CheckReport {
    let images: Vec<String> = used_by.iter().map(|(i, _)| i.clone()).collect();
    let nodes_future = async {
        match cluster {
            Some(cluster) => Some(nodes::architecture_counts(cluster).await),
            None => None,
        }
    };
    let (nodes, required, mut checks) = if flag_arches.is_empty() {
        // The requirement depends on the nodes, so they come first.
        let nodes = nodes_future.await;
        let required = required_without_flag(nodes.as_ref(), target, &mut notes);
        let checks = check_images(&images, &required.architectures, options).await;
        (nodes, required, checks)
    } else {
        // Node architectures are only shown: read them while the registries answer.
        let (nodes, checks) =
            tokio::join!(nodes_future, check_images(&images, &flag_arches, options));
        let required = Required {
            architectures: flag_arches,
            source: "--arch".into(),
        };
        (nodes, required, checks)
    };
    let nodes = match nodes {
        Some(Ok(counts)) => Some(counts),
        // The default requirement's note already names the reason.
        Some(Err(err)) if required.source != "default" => {
            notes.push(format!("cannot read the nodes' architectures: {err}"));
            None
        }
        _ => None,
    };
    for (check, (_, users)) in checks.iter_mut().zip(used_by) {
        check.used_by = users;
    }
    let verdict = verdict(&checks, &required.architectures);
    CheckReport {
        required,
        nodes,
        images: checks,
        verdict,
        notes,
    }
}

/// Without `--arch`: devenv.yaml's targetArch, to which the stack's pods are
/// pinned; else every architecture among the nodes; when the nodes cannot be
/// read either, amd64 and arm64.
fn required_without_flag(
    nodes: Option<&Result<BTreeMap<String, usize>>>,
    target: Option<&Arch>,
    notes: &mut Vec<String>,
) -> Required {
    if let Some(target) = target {
        return Required {
            architectures: vec![target.clone()],
            source: "devenv.yaml targetArch".into(),
        };
    }
    if let Some(Ok(counts)) = nodes {
        let arches = arches_of(counts);
        if !arches.is_empty() {
            return Required {
                architectures: arches,
                source: "nodes".into(),
            };
        }
    }
    let why = match nodes {
        Some(Err(err)) => format!("cannot read the nodes' architectures ({err})"),
        Some(Ok(_)) => "the cluster has no nodes with a known architecture".to_owned(),
        None => "no cluster".to_owned(),
    };
    notes.push(format!(
        "{why}: checking against amd64 and arm64; pass --arch to choose"
    ));
    Required {
        architectures: vec![Arch::amd64(), Arch::arm64()],
        source: "default".into(),
    }
}

/// Ready when every image was read and provides every required architecture.
pub(crate) fn verdict(checks: &[ImageCheck], required: &[Arch]) -> Verdict {
    let lacking: Vec<String> = checks
        .iter()
        .filter(|c| !c.missing.is_empty())
        .map(|c| {
            let missing: Vec<String> = c.missing.iter().map(ToString::to_string).collect();
            format!("{} ({})", c.image, missing.join(", "))
        })
        .collect();
    let unchecked: Vec<&str> = checks
        .iter()
        .filter(|c| c.error.is_some())
        .map(|c| c.image.as_str())
        .collect();
    let arches: Vec<String> = required.iter().map(ToString::to_string).collect();
    let total = checks.len();
    if lacking.is_empty() && unchecked.is_empty() {
        let what = if total == 1 {
            "the image runs"
        } else {
            "all images run"
        };
        return Verdict {
            ready: true,
            message: format!("ready: {what} on {}", arches.join(", ")),
        };
    }
    let mut parts = Vec::new();
    if !lacking.is_empty() {
        parts.push(format!(
            "{} of {total} images {} a required architecture: {}",
            lacking.len(),
            if lacking.len() == 1 { "lacks" } else { "lack" },
            lacking.join(", ")
        ));
    }
    if !unchecked.is_empty() {
        parts.push(format!(
            "{} of {total} images could not be checked: {}",
            unchecked.len(),
            unchecked.join(", ")
        ));
    }
    Verdict {
        ready: false,
        message: format!("not ready: {}", parts.join("; ")),
    }
}

/// The table, the problems, the nodes and the verdict, as printed for `-o table`.
pub(crate) fn render(report: &CheckReport, with_users: bool) -> String {
    let arch_headers: Vec<String> = report
        .required
        .architectures
        .iter()
        .map(|a| a.to_string().to_uppercase())
        .collect();
    let mut headers = vec!["IMAGE".to_owned(), "PLATFORMS".to_owned()];
    headers.extend(arch_headers);
    headers.push("DIGEST".into());
    if with_users {
        headers.push("USED BY".into());
    }
    let mut table = output::table(headers);
    let mut problems = Vec::new();
    for check in &report.images {
        if let Some(problem) = &check.error {
            problems.push(format!("{}: {}", check.image, problem.message));
        }
        table.add_row(image_row(check, &report.required.architectures, with_users));
    }
    let mut out = output::table_text(&table);
    if !problems.is_empty() {
        out.push('\n');
        for problem in problems {
            out.push_str(&problem);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "Nodes:    {}\n",
        describe_nodes(report.nodes.as_ref())
    ));
    out.push_str(&format!(
        "Required: {} (from {})\n",
        report
            .required
            .architectures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        report.required.source
    ));
    out.push_str(&format!("Verdict:  {}\n", report.verdict.message));
    out
}

/// One image: its platforms (or the kind of problem), a mark per required
/// architecture, the short digest and, with `--deployed`, who uses it.
fn image_row(check: &ImageCheck, required: &[Arch], with_users: bool) -> Vec<String> {
    let mut row = vec![check.image.clone()];
    row.push(match &check.error {
        Some(problem) => format!("<{}>", problem.kind),
        None if check.platforms.is_empty() => "<none>".into(),
        None => check
            .platforms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    });
    for arch in required {
        row.push(
            match check.runs_on(arch) {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "?",
            }
            .into(),
        );
    }
    row.push(
        check
            .digest
            .as_deref()
            .map(short_digest)
            .unwrap_or_default(),
    );
    if with_users {
        row.push(match check.used_by.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (+{})", rest.len()),
        });
    }
    row
}

fn describe_nodes(nodes: Option<&BTreeMap<String, usize>>) -> String {
    match nodes {
        None => "unknown".into(),
        Some(counts) if counts.is_empty() => "none".into(),
        Some(counts) => counts
            .iter()
            .map(|(arch, count)| {
                format!(
                    "{arch} ({count} {})",
                    if *count == 1 { "node" } else { "nodes" }
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `sha256:` plus 12 hex digits, as `docker images` shortens IDs.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if hex.len() > 12 => format!("{algorithm}:{}", &hex[..12]),
        _ => digest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ImageError, ImageInfo, Platform};

    fn arches(list: &str) -> Vec<Arch> {
        arch::parse_list(&[list.to_owned()]).unwrap()
    }

    fn image(name: &str, platforms: &[&str], required: &[Arch]) -> ImageCheck {
        let info = ImageInfo {
            reference: name.into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            media_type: None,
            platforms: platforms
                .iter()
                .map(|arch| Platform {
                    os: "linux".into(),
                    architecture: (*arch).into(),
                    variant: None,
                })
                .collect(),
        };
        ImageCheck::evaluate(name.into(), &Ok(info), required)
    }

    fn broken(name: &str) -> ImageCheck {
        let err = ImageError::NotFound {
            registry: "127.0.0.1:5000".into(),
            repository: "nope".into(),
            wanted: "tag \"1\"".into(),
        };
        ImageCheck::evaluate(name.into(), &Err(err), &[])
    }

    #[test]
    fn verdict_ready_when_all_images_cover_all_arches() {
        let required = arches("amd64,arm64");
        let checks = vec![image("a:1", &["amd64", "arm64"], &required)];
        assert_eq!(
            verdict(&checks, &required),
            Verdict {
                ready: true,
                message: "ready: the image runs on amd64, arm64".into()
            }
        );
    }

    #[test]
    fn verdict_names_lacking_and_unchecked_images() {
        let required = arches("amd64,arm64");
        let checks = vec![
            image("a:1", &["amd64", "arm64"], &required),
            image("mysql:5.7", &["amd64"], &required),
            broken("nope:1"),
        ];
        let verdict = verdict(&checks, &required);
        assert!(!verdict.ready);
        assert_eq!(
            verdict.message,
            "not ready: 1 of 3 images lacks a required architecture: mysql:5.7 (arm64); 1 of 3 images could not be checked: nope:1"
        );
    }

    #[test]
    fn table_marks_each_required_arch() {
        let required = arches("amd64,arm64");
        let checks = vec![image("mysql:5.7", &["amd64"], &required), broken("nope:1")];
        let report = CheckReport {
            verdict: verdict(&checks, &required),
            required: Required {
                architectures: required,
                source: "nodes".into(),
            },
            nodes: Some(BTreeMap::from([("amd64".into(), 1), ("arm64".into(), 2)])),
            images: checks,
            notes: Vec::new(),
        };
        let text = render(&report, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["IMAGE", "PLATFORMS", "AMD64", "ARM64", "DIGEST"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["mysql:5.7", "linux/amd64", "✓", "✗", "sha256:abababababab"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["nope:1", "<notFound>", "?", "?"]
        );
        assert!(
            text.contains("nope:1: not found: 127.0.0.1:5000/nope has no tag \"1\""),
            "{text}"
        );
        assert!(
            text.contains("Nodes:    amd64 (1 node), arm64 (2 nodes)"),
            "{text}"
        );
        assert!(
            text.contains("Required: amd64, arm64 (from nodes)"),
            "{text}"
        );
    }

    #[test]
    fn target_arch_then_nodes_then_both_arches_are_required() {
        let mut notes = Vec::new();
        let nodes = Ok(BTreeMap::from([("arm64".into(), 3), ("amd64".into(), 1)]));
        let required = required_without_flag(Some(&nodes), Some(&Arch::arm64()), &mut notes);
        assert_eq!(required.architectures, arches("arm64"));
        assert_eq!(required.source, "devenv.yaml targetArch");
        assert!(notes.is_empty());

        let required = required_without_flag(Some(&nodes), None, &mut notes);
        assert_eq!(required.architectures, arches("amd64,arm64"));
        assert_eq!(required.source, "nodes");
        assert!(notes.is_empty());

        let forbidden = Err(Error::Other(
            "forbidden: cannot list nodes at the cluster scope".into(),
        ));
        let required = required_without_flag(Some(&forbidden), None, &mut notes);
        assert_eq!(required.architectures, arches("amd64,arm64"));
        assert_eq!(required.source, "default");
        assert!(
            notes[0].starts_with("cannot read the nodes' architectures (forbidden"),
            "{notes:?}"
        );
    }

    #[test]
    fn digests_are_shortened_for_the_table() {
        assert_eq!(
            short_digest(&format!("sha256:{}", "0123456789abcdef".repeat(4))),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
    }
}
