//! `kubectl devenv down`: removes one stack's objects, and only those. Data
//! (PVCs) and credentials (Secrets) stay unless `--purge`, so the next `up`
//! finds the databases as they were.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::stack;
use crate::commands::up::interactive;
use crate::duration::{humanize, parse_duration};
use crate::error::{Action, Error, Result};
use crate::render::RETAIN;
use crate::{labels, spec, wizard};

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The stack's description (default: ./devenv.yaml if it exists)
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "stack"
    )]
    pub file: Option<PathBuf>,

    /// The stack to remove, by name
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,

    /// Also delete the data volumes (PVCs), the credential Secrets and the namespaces
    #[arg(long)]
    pub purge: bool,

    /// Delete without asking for confirmation (required when there is no terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// How long to wait for the pods (and, with --purge, the namespaces) to go away
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The stack to remove: its name and the namespaces the spec names, if a spec is known.
struct Target {
    name: String,
    spec_namespaces: Vec<String>,
}

fn target(args: &DownArgs) -> Result<Target> {
    if let Some(name) = &args.stack {
        if let Some(problem) = spec::name_problem(name, spec::MAX_NAME_LEN) {
            return Err(Error::Usage(format!(
                "--stack: invalid name \"{name}\": {problem}"
            )));
        }
        return Ok(Target {
            name: name.clone(),
            spec_namespaces: Vec::new(),
        });
    }
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(spec::DEFAULT_FILE));
    if args.file.is_none() && !path.exists() {
        return Err(Error::Usage(format!(
            "which stack? there is no {} here: pass --stack NAME or -f FILE",
            spec::DEFAULT_FILE
        )));
    }
    let spec = spec::load(&path)?;
    Ok(Target {
        spec_namespaces: spec.namespaces().map(str::to_owned).to_vec(),
        name: spec.name,
    })
}

pub async fn run(global: &GlobalArgs, args: &DownArgs) -> Result<()> {
    let target = target(args)?;
    let cluster = Cluster::connect(global).await?;
    let namespaces = owned_namespaces(&cluster, &target).await?;
    if namespaces.is_empty() {
        eprintln!("No stack \"{}\" found; nothing to delete.", target.name);
        return Ok(());
    }
    let names: Vec<String> = namespaces.iter().map(|ns| ns.name_any()).collect();
    if !args.yes {
        if !interactive() {
            return Err(Error::Usage(
                "refusing to delete without confirmation: there is no terminal to ask; pass --yes"
                    .into(),
            ));
        }
        let what = if args.purge {
            "everything, including data volumes, credentials and the namespaces"
        } else {
            "workloads, Services and policies (data volumes and credentials are kept)"
        };
        let question = format!(
            "Delete stack \"{}\" in namespaces {}: {what}?",
            target.name,
            names.join(", ")
        );
        if !wizard::confirm(&question)? {
            eprintln!("Nothing deleted.");
            return Ok(());
        }
    }
    let selector = labels::stack_selector(&target.name);
    let mut deleted = 0;
    for ns in &names {
        deleted += delete_stack_objects(&cluster, ns, &selector, args.purge).await?;
    }
    let mut removed_namespaces = Vec::new();
    if args.purge {
        for namespace in &namespaces {
            let name = namespace.name_any();
            match foreign_objects(&cluster, &name).await? {
                Some(example) => eprintln!(
                    "Warning: kept namespace \"{name}\": it holds {example}, which kubectl-devenv did not create"
                ),
                None => {
                    let api: Api<Namespace> = Api::all(cluster.client.clone());
                    cluster
                        .call(
                            Action::new("delete", "namespaces").named(&name),
                            api.delete(&name, &DeleteParams::default()),
                        )
                        .await?;
                    println!("namespace \"{name}\" deleted");
                    removed_namespaces.push(name);
                }
            }
        }
    }
    wait_for_termination(
        &cluster,
        &names,
        &selector,
        &removed_namespaces,
        args.timeout,
    )
    .await?;
    println!(
        "stack \"{}\" deleted ({deleted} objects{})",
        target.name,
        if args.purge {
            String::new()
        } else {
            "; data volumes and credential Secrets kept, --purge deletes them".to_owned()
        }
    );
    Ok(())
}

/// The stack's namespaces: those labelled as its own, after checking that
/// none the spec names belongs to someone else (such a namespace is never touched).
async fn owned_namespaces(cluster: &Cluster, target: &Target) -> Result<Vec<Namespace>> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    for name in &target.spec_namespaces {
        let action = Action::new("get", "namespaces").named(name);
        if let Some(namespace) = cluster.call(action, api.get_opt(name)).await?
            && let Some(problem) = stack::foreign_namespace_problem(&namespace, &target.name)
        {
            return Err(Error::Other(problem));
        }
    }
    stack::namespaces(cluster, &target.name).await
}

/// Deletes the stack's objects in one namespace; returns how many.
async fn delete_stack_objects(
    cluster: &Cluster,
    ns: &str,
    selector: &str,
    purge: bool,
) -> Result<usize> {
    let without_retained = format!("{selector},!{RETAIN}");
    let secret_selector = if purge {
        selector
    } else {
        without_retained.as_str()
    };
    let mut count = 0;
    count += delete_collection::<Deployment>(cluster, ns, "deployments", selector).await?;
    count += delete_collection::<StatefulSet>(cluster, ns, "statefulsets", selector).await?;
    count += delete_services(cluster, ns, selector).await?;
    count += delete_collection::<NetworkPolicy>(cluster, ns, "networkpolicies", selector).await?;
    count += delete_collection::<ConfigMap>(cluster, ns, "configmaps", selector).await?;
    count += delete_collection::<Secret>(cluster, ns, "secrets", secret_selector).await?;
    if purge {
        count += delete_collection::<PersistentVolumeClaim>(
            cluster,
            ns,
            "persistentvolumeclaims",
            selector,
        )
        .await?;
    }
    Ok(count)
}

async fn delete_collection<K>(
    cluster: &Cluster,
    ns: &str,
    resource: &'static str,
    selector: &str,
) -> Result<usize>
where
    K: kube::Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), ns);
    let params = ListParams::default().labels(selector);
    let deleted = cluster
        .call(
            Action::new("deletecollection", resource).in_namespace(Some(ns)),
            api.delete_collection(&DeleteParams::background(), &params),
        )
        .await?;
    Ok(deleted.left().map_or(0, |list| list.items.len()))
}

/// Services have no deletecollection before Kubernetes 1.31, so they go one by one.
async fn delete_services(cluster: &Cluster, ns: &str, selector: &str) -> Result<usize> {
    let api: Api<Service> = Api::namespaced(cluster.client.clone(), ns);
    let list = cluster
        .call(
            Action::new("list", "services").in_namespace(Some(ns)),
            api.list(&ListParams::default().labels(selector)),
        )
        .await?;
    for service in &list.items {
        let name = service.name_any();
        cluster
            .call(
                Action::new("delete", "services")
                    .named(&name)
                    .in_namespace(Some(ns)),
                api.delete(&name, &DeleteParams::default()),
            )
            .await?;
    }
    Ok(list.items.len())
}

/// Something in the namespace that is not the stack's (other than what
/// Kubernetes puts in every namespace), e.g. `configmap "notes"`.
async fn foreign_objects(cluster: &Cluster, ns: &str) -> Result<Option<String>> {
    let is_ours = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER)
    };
    let list = |resource: &'static str| Action::new("list", resource).in_namespace(Some(ns));
    let all = ListParams::default();
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    for cm in cluster
        .call(list("configmaps"), configmaps.list(&all))
        .await?
        .items
    {
        if cm.name_any() != "kube-root-ca.crt" && !is_ours(cm.labels()) {
            return Ok(Some(format!("configmap \"{}\"", cm.name_any())));
        }
    }
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
    for secret in cluster
        .call(list("secrets"), secrets.list(&all))
        .await?
        .items
    {
        let service_account_token =
            secret.type_.as_deref() == Some("kubernetes.io/service-account-token");
        if !service_account_token && !is_ours(secret.labels()) {
            return Ok(Some(format!("secret \"{}\"", secret.name_any())));
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), ns);
    for claim in cluster
        .call(list("persistentvolumeclaims"), claims.list(&all))
        .await?
        .items
    {
        if !is_ours(claim.labels()) {
            return Ok(Some(format!(
                "persistentvolumeclaim \"{}\"",
                claim.name_any()
            )));
        }
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let not_ours = format!("!{}", labels::MANAGED_BY);
    let foreign_pods = cluster
        .call(
            list("pods"),
            pods.list(&ListParams::default().labels(&not_ours)),
        )
        .await?;
    if let Some(pod) = foreign_pods.items.first() {
        return Ok(Some(format!("pod \"{}\"", pod.name_any())));
    }
    Ok(None)
}

/// Waits, with a spinner, until the stack's pods are gone and the purged
/// namespaces have finished terminating.
async fn wait_for_termination(
    cluster: &Cluster,
    namespaces: &[String],
    selector: &str,
    removed_namespaces: &[String],
    timeout: Duration,
) -> Result<()> {
    let bar = ProgressBar::with_draw_target(
        None,
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}").expect("valid progress template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let result = loop {
        let mut pods_left = 0;
        for ns in namespaces {
            let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
            let list = cluster
                .call(
                    Action::new("list", "pods").in_namespace(Some(ns)),
                    pods.list(&ListParams::default().labels(selector)),
                )
                .await?;
            pods_left += list.items.len();
        }
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        let mut namespaces_left = Vec::new();
        for name in removed_namespaces {
            if cluster
                .call(
                    Action::new("get", "namespaces").named(name),
                    api.get_opt(name),
                )
                .await?
                .is_some()
            {
                namespaces_left.push(name.as_str());
            }
        }
        if pods_left == 0 && namespaces_left.is_empty() {
            break Ok(());
        }
        let message = match pods_left {
            0 => format!(
                "waiting for namespace {} to terminate",
                namespaces_left.join(", ")
            ),
            n => format!(
                "waiting for {n} pod{} to terminate",
                if n == 1 { "" } else { "s" }
            ),
        };
        bar.set_message(message.clone());
        if started.elapsed() >= timeout {
            break Err(Error::Other(format!(
                "timed out after {} {message} (--timeout)",
                humanize(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    result
}
