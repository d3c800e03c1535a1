//! `kubectl devenv env`: the dev pod's environment pointed at local
//! forwards, for `.env.local` files and IDE run configurations. Also the
//! reading of that environment that `run` shares.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::cluster::stack;
use crate::cluster::{Cluster, Scope};
use crate::commands::StackArg;
use crate::commands::forward::{self, ComponentService};
use crate::error::{Error, Result};
use crate::localenv::{self, Endpoint, LocalVar, PodVar, Source};
use crate::{labels, output, spec};

/// Where forwards listen, and so where the rewritten variables point.
pub(crate) const LOCAL_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub stack: StackArg,

    /// Print values that come from Secrets (passwords); otherwise they are placeholders
    #[arg(long)]
    pub show_secrets: bool,
}

/// The dev pod's environment and the stack components it names.
pub(crate) struct DevEnvironment {
    pub stack: String,
    pub namespace: String,
    pub vars: Vec<PodVar>,
    /// The stack's components (not the dev pod), from their Services.
    pub services: Vec<ComponentService>,
    pub endpoints: Vec<Endpoint>,
}

impl DevEnvironment {
    /// Reads the dev Deployment of `stack` and the stack's Services.
    pub(crate) async fn read(cluster: &Cluster, stack: Option<&str>) -> Result<Self> {
        let deployment = stack::dev_deployment(cluster, stack).await?;
        let stack = deployment
            .labels()
            .get(labels::STACK)
            .cloned()
            .unwrap_or_default();
        let namespace = deployment.namespace().unwrap_or_default();
        let env = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|pod| pod.containers.first())
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let (vars, skipped) = localenv::pod_vars(&env);
        for name in skipped {
            eprintln!("{name}: left out (its value comes from neither a literal nor a Secret)");
        }
        let (found, _) = forward::list_services(cluster, Some(&stack)).await?;
        let services: Vec<ComponentService> = found
            .into_iter()
            .filter(|s| s.component != spec::DEV_COMPONENT && s.stack == stack)
            .collect();
        let ports: BTreeMap<String, Vec<u16>> = services
            .iter()
            .map(|s| {
                (
                    s.component.clone(),
                    s.ports.iter().map(|p| p.port).collect(),
                )
            })
            .collect();
        let endpoints = localenv::endpoints(&vars, &ports);
        Ok(Self {
            stack,
            namespace,
            vars,
            services,
            endpoints,
        })
    }

    /// The values of every Secret key the variables use, read from the dev namespace.
    pub(crate) async fn secrets(
        &self,
        cluster: &Cluster,
    ) -> Result<BTreeMap<(String, String), String>> {
        let names: BTreeSet<&str> = self
            .vars
            .iter()
            .filter_map(|v| match &v.source {
                Source::Secret { name, .. } => Some(name.as_str()),
                Source::Literal(_) => None,
            })
            .collect();
        let scope = Scope::Namespace(self.namespace.clone());
        let api = cluster.api::<Secret>(&scope);
        let mut values = BTreeMap::new();
        for name in names {
            let secret = cluster
                .call(
                    cluster.action::<Secret>("get", &scope).named(name),
                    api.get(name),
                )
                .await?;
            for (key, value) in secret.data.unwrap_or_default() {
                let text = String::from_utf8(value.0).map_err(|_| {
                    Error::Other(format!("secret {name}: key \"{key}\" is not text"))
                })?;
                values.insert((name.to_owned(), key), text);
            }
        }
        Ok(values)
    }

    /// The local port `forward` takes for a Service port while it is free:
    /// the port's `localPort`, else the port itself.
    pub(crate) fn forward_port(&self, component: &str, port: u16) -> u16 {
        self.services
            .iter()
            .filter(|s| s.component == component)
            .flat_map(|s| &s.ports)
            .find(|p| p.port == port)
            .and_then(|p| p.local)
            .unwrap_or(port)
    }

    /// The components the variables point at, once each, in order.
    pub(crate) fn endpoint_components(&self) -> Vec<&str> {
        let mut components: Vec<&str> = Vec::new();
        for endpoint in &self.endpoints {
            if !components.contains(&endpoint.component.as_str()) {
                components.push(&endpoint.component);
            }
        }
        components
    }
}

pub(crate) async fn run(global: &GlobalArgs, args: &EnvArgs) -> Result<()> {
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    let environment = DevEnvironment::read(&cluster, stack.as_deref()).await?;
    let secrets = if args.show_secrets {
        environment.secrets(&cluster).await?
    } else {
        BTreeMap::new()
    };
    let local = |component: &str, port: u16| {
        let port = environment.forward_port(component, port);
        Some(SocketAddr::new(LOCAL_ADDRESS, port))
    };
    let vars = localenv::resolve(&environment.vars, &environment.endpoints, local, &secrets);
    output::print(render(global.output, &vars)?)?;
    hint(&environment, &vars);
    Ok(())
}

/// The text `-o` asks for; dotenv unless json, yaml or shell.
pub(crate) fn render(format: OutputFormat, vars: &[LocalVar]) -> Result<String> {
    Ok(match format {
        OutputFormat::Table | OutputFormat::Dotenv => localenv::dotenv(vars),
        OutputFormat::Shell => localenv::shell(vars),
        OutputFormat::Json | OutputFormat::Yaml => {
            output::structured(format, &localenv::as_map(vars))?.unwrap_or_default()
        }
    })
}

/// On stderr: which forwards the variables expect, and what was hidden.
fn hint(environment: &DevEnvironment, vars: &[LocalVar]) {
    let components = environment.endpoint_components();
    if !components.is_empty() {
        eprintln!(
            "These point at local forwards: keep `kubectl devenv forward --stack {} {}` running (it takes these ports while they are free), or use `kubectl devenv run -- COMMAND`.",
            environment.stack,
            components.join(" ")
        );
    }
    let hidden: Vec<&str> = vars
        .iter()
        .filter(|v| v.secret.is_some() && v.value == localenv::HIDDEN)
        .map(|v| v.name.as_str())
        .collect();
    if !hidden.is_empty() {
        eprintln!(
            "{} come from Secrets and are hidden; pass --show-secrets to print them.",
            hidden.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::forward::ServicePort;
    use crate::forward::pods::TargetPort;

    #[test]
    fn env_points_at_the_port_forward_takes() {
        let port = |port: u16, local: Option<u16>| ServicePort {
            name: None,
            port,
            target: TargetPort::Number(port),
            local,
        };
        let environment = DevEnvironment {
            stack: "shop".into(),
            namespace: "dev".into(),
            vars: Vec::new(),
            services: vec![ComponentService {
                component: "mysql".into(),
                stack: "shop".into(),
                namespace: "test".into(),
                name: "mysql".into(),
                selector: BTreeMap::new(),
                ports: vec![port(3306, Some(13306)), port(33060, None)],
            }],
            endpoints: Vec::new(),
        };
        assert_eq!(environment.forward_port("mysql", 3306), 13306);
        assert_eq!(environment.forward_port("mysql", 33060), 33060);
        assert_eq!(environment.forward_port("redis", 6379), 6379);
    }
}
