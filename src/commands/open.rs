//! `kubectl devenv open`: the app in a browser. Forwards a local port to the
//! dev pod's web server and prints its URL on stdout; the URL works for as
//! long as the command runs.

use std::net::{IpAddr, SocketAddr};

use clap::Args;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::stack;
use crate::commands::StackArg;
use crate::commands::forward::{self, PlannedPort, StopSignal};
use crate::error::{Error, Result};
use crate::forward::ports::LocalPort;
use crate::forward::tunnel::Protocol;
use crate::{output, render, spec};

#[derive(Debug, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub stack: StackArg,

    /// Local port (default: the dev pod's HTTP port if free, else the next free one)
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Local address to listen on
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub address: IpAddr,

    /// How streams reach the API server: spdy, or websocket through proxies that refuse SPDY
    /// upgrades
    #[arg(long, value_name = "PROTOCOL", value_parser = crate::commands::forward::protocol(), default_value = "spdy")]
    pub protocol: Protocol,
}

pub(crate) async fn run(global: &GlobalArgs, args: &OpenArgs) -> Result<()> {
    let mut stop = StopSignal::listen()?;
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    // The dev Deployment first: it names the stack, or says there is none.
    let deployment = stack::dev_deployment(&cluster, stack.as_deref()).await?;
    let stack = kube::ResourceExt::labels(&deployment)
        .get(crate::labels::STACK)
        .cloned()
        .unwrap_or_default();
    let (found, _) = forward::list_services(&cluster, Some(&stack)).await?;
    let web = found.into_iter().find(|s| {
        s.component == spec::DEV_COMPONENT
            && s.ports
                .iter()
                .any(|p| p.name.as_deref() == Some(render::HTTP_PORT_NAME))
    });
    let Some(service) = web else {
        let image = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|pod| pod.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        return Err(Error::Other(format!(
            "the dev pod of stack \"{stack}\" serves no HTTP: its image {image} has no web server known to kubectl-devenv; use the default dev image (leave out spec.dev.image) or set spec.dev.httpPort for an image that serves HTTP"
        )));
    };
    let port = service
        .ports
        .iter()
        .position(|p| p.name.as_deref() == Some(render::HTTP_PORT_NAME))
        .unwrap_or_default();
    let local = match args.port {
        Some(port) => LocalPort::Fixed(port),
        None => LocalPort::Auto {
            preferred: service.ports[port].port,
        },
    };
    let plan = [PlannedPort {
        service: 0,
        port,
        local,
    }];
    let started = forward::start(
        &cluster,
        std::slice::from_ref(&service),
        &plan,
        args.address,
        args.protocol,
        |_, preferred, bound| eprintln!("local port {preferred} is not available; using {bound}"),
    )
    .await?;
    let mapping = &started.mappings[0];
    let address: SocketAddr = mapping
        .local_address
        .parse()
        .map_err(|_| Error::Other(format!("bad local address {}", mapping.local_address)))?;
    output::print(format!("{}\n", url(address)))?;
    forward::warn_without_pods(&started.mappings);
    eprintln!("Forwarding to the dev pod's web server. Press Ctrl-C to stop.");
    stop.wait().await;
    started.stop().await;
    Ok(())
}

/// `http://127.0.0.1:8080/`; a wildcard listen address is reached over loopback.
fn url(address: SocketAddr) -> String {
    let host = match address.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(host, address.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_reachable_host() {
        assert_eq!(
            url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            url("0.0.0.0:8081".parse().unwrap()),
            "http://127.0.0.1:8081/"
        );
        assert_eq!(url("[::]:8080".parse().unwrap()), "http://[::1]:8080/");
    }
}
