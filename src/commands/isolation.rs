//! `kubectl devenv check --isolation`: measures, rather than assumes, that
//! the stack's NetworkPolicy is enforced. The API server accepts a
//! NetworkPolicy on every cluster, but only a CNI plugin or policy
//! controller that implements it makes it mean anything, and a default EKS
//! cluster has none. So two short-lived probe pods try to connect to every
//! test-stack Service: one in a namespace of its own (it must be refused)
//! and one in the dev namespace (it must get through, which shows the
//! Services answer at all). The probe namespace and pods are removed
//! afterwards, also on errors and Ctrl-C.

use std::time::{Duration, Instant};

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::probe::{self, Probe};
use crate::duration::humanize;
use crate::error::{Error, Result};
use crate::isolation::{IsolationReport, PROBE_ROLE, Reach, Target, verdict};
use crate::{output, spec};

/// What `check --isolation` needs from the command line.
pub(crate) struct Options<'a> {
    pub stack: Option<&'a str>,
    pub file: Option<&'a std::path::Path>,
    pub probe_image: &'a str,
    pub timeout: Duration,
}

pub(crate) async fn run(global: &GlobalArgs, options: &Options<'_>) -> Result<()> {
    let name = stack_name(options)?;
    let cluster = Cluster::connect(&global.connection()).await?;
    let (dev_namespace, test_namespace) = probe::stack_namespaces(&cluster, &name).await?;
    let services = probe::stack_services(&cluster, &name, &test_namespace).await?;
    if services.is_empty() {
        return Err(Error::Other(format!(
            "stack \"{name}\" has no Services in namespace \"{test_namespace}\" to probe"
        )));
    }
    let placement = probe::dev_placement(&cluster, &dev_namespace).await?;
    let probe_namespace = format!("{name}-{PROBE_ROLE}");
    let probe = Probe {
        cluster: &cluster,
        stack: &name,
        image: options.probe_image,
        placement,
        addresses: services.iter().map(|(_, a)| a.clone()).collect(),
        pod_name: format!("{PROBE_ROLE}-{}", probe::suffix()),
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = probe.run_both(&probe_namespace, &dev_namespace, options.timeout) => outcome,
        _ = tokio::signal::ctrl_c() => Err(Error::Other("interrupted".into())),
    };
    // Always, whatever happened above: the probes must not outlive the check.
    probe.clean_up(&probe_namespace, &dev_namespace).await;
    let (outside, inside) = outcome?;
    tracing::info!("probed in {}", humanize(started.elapsed()));

    let targets: Vec<Target> = services
        .into_iter()
        .map(|(service, address)| Target {
            from_dev_namespace: inside.get(&address).copied().unwrap_or(Reach::Unknown),
            from_outside: outside.get(&address).copied().unwrap_or(Reach::Unknown),
            service,
            address,
        })
        .collect();
    let enforced = verdict(&targets)?;
    let reasons = if enforced {
        Vec::new()
    } else {
        probe::reasons(&cluster, &test_namespace).await
    };
    let report = IsolationReport {
        stack: name,
        dev_namespace,
        test_namespace,
        probe_namespace,
        probe_image: options.probe_image.to_owned(),
        targets,
        verdict: if enforced { "enforced" } else { "not enforced" }.to_owned(),
        enforced,
        reasons,
    };
    output::emit(global.output, &report, render)?;
    if report.enforced {
        return Ok(());
    }
    let leaks: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.from_outside == Reach::Open)
        .map(|t| format!("{} ({})", t.service, t.address))
        .collect();
    Err(Error::Other(format!(
        "isolation is not enforced: a pod in namespace \"{}\" reached {}",
        report.probe_namespace,
        leaks.join(", ")
    )))
}

/// The table, the verdict and the reasons, as printed for `-o table`.
pub(crate) fn render(report: &IsolationReport) -> String {
    let mut table = output::table(["SERVICE", "ADDRESS", "FROM DEV NAMESPACE", "FROM OUTSIDE"]);
    for t in &report.targets {
        table.add_row([
            t.service.clone(),
            t.address.clone(),
            t.from_dev_namespace.as_str().to_owned(),
            t.from_outside.as_str().to_owned(),
        ]);
    }
    let mut out = output::table_text(&table);
    out.push('\n');
    if report.enforced {
        out.push_str(&format!(
            "Verdict:  enforced: only namespace \"{}\" and the stack itself reach namespace \"{}\"\n",
            report.dev_namespace, report.test_namespace
        ));
    } else {
        out.push_str(&format!(
            "Verdict:  not enforced: a pod in namespace \"{}\" reached the test stack\n",
            report.probe_namespace
        ));
        for reason in &report.reasons {
            out.push_str(&format!("Why:      {reason}\n"));
        }
    }
    out
}

fn stack_name(options: &Options<'_>) -> Result<String> {
    if let Some(name) = options.stack {
        if let Some(problem) = spec::name_problem(name, spec::MAX_NAME_LEN) {
            return Err(Error::Usage(format!(
                "--stack: invalid name \"{name}\": {problem}"
            )));
        }
        return Ok(name.to_owned());
    }
    let default = std::path::Path::new(spec::DEFAULT_FILE);
    match options.file {
        Some(file) => Ok(spec::load(file)?.name),
        None if default.exists() => Ok(spec::load(default)?.name),
        None => Err(Error::Usage(format!(
            "which stack? there is no {} here: pass --stack NAME or -f FILE",
            spec::DEFAULT_FILE
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_both_sides_and_why() {
        let report = IsolationReport {
            stack: "shop".into(),
            dev_namespace: "dev".into(),
            test_namespace: "test".into(),
            probe_namespace: "shop-isolation-probe".into(),
            probe_image: "busybox:1.37".into(),
            targets: vec![Target {
                service: "mysql".into(),
                address: "10.96.0.12:3306".into(),
                from_dev_namespace: Reach::Open,
                from_outside: Reach::Open,
            }],
            verdict: "not enforced".into(),
            enforced: false,
            reasons: vec!["flannel does not enforce NetworkPolicy".into()],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["mysql", "10.96.0.12:3306", "open", "open"]
        );
        assert!(text.contains(
            "Verdict:  not enforced: a pod in namespace \"shop-isolation-probe\" reached the test stack"
        ));
        assert!(text.contains("Why:      flannel does not enforce NetworkPolicy"));
    }
}
