//! The isolation probe as data: the pod that tries every test-stack
//! Service, how its output reads, and what the answers mean. The cluster
//! side is `cluster::probe`; `check --isolation` prints the report.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec, Toleration};
use kube::api::ObjectMeta;
use serde::Serialize;

use crate::catalog::{Quantities, Resources};
use crate::error::{Error, Result};
use crate::labels;
use crate::render::{self, ROLE};

/// The probe pods' account: `nobody`, which every image can run as.
const PROBE_USER: i64 = 65534;
/// Marks the probe namespace and pods (beside the managed-by label).
pub(crate) const PROBE_ROLE: &str = "isolation-probe";
/// A leaked probe pod ends by itself after this long.
const PROBE_DEADLINE_SECONDS: i64 = 300;

/// Tries each `host:port` argument at once; `nc` exits 1 when the
/// connection is refused or times out (`-w 2`), 0 when it got through and
/// the server closed, and `timeout` ends a connection the server keeps open
/// (exit 143). Enforcers (kube-router, Calico, the VPC CNI) admit a new pod a
/// few seconds after it starts, so a refusal is retried five times, a second
/// apart, before it counts. The script needs only a POSIX sh, `timeout` and `nc`.
const PROBE_SCRIPT: &str = r#"for t in "$@"; do
  ( n=0; while :; do
      timeout 5 nc -w 2 "${t%:*}" "${t##*:}" </dev/null >/dev/null 2>&1; rc=$?
      n=$((n + 1)); [ "$rc" != 1 ] || [ "$n" -ge 5 ] && break; sleep 1
    done; echo "probe $t rc=$rc" ) &
done
wait"#;

/// One test-stack Service port, probed from both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Target {
    pub service: String,
    /// ClusterIP:port.
    pub address: String,
    pub from_dev_namespace: Reach,
    pub from_outside: Reach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Reach {
    Open,
    Blocked,
    /// The probe printed nothing for it.
    Unknown,
}

impl Reach {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reach::Open => "open",
            Reach::Blocked => "blocked",
            Reach::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IsolationReport {
    pub stack: String,
    pub dev_namespace: String,
    pub test_namespace: String,
    pub probe_namespace: String,
    pub probe_image: String,
    pub targets: Vec<Target>,
    /// `enforced` or `not enforced`.
    pub verdict: String,
    pub enforced: bool,
    /// Why isolation is not enforced, most specific first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// The result of one probe pod's line `probe 10.96.0.12:3306 rc=1`.
pub(crate) fn parse_probe_output(text: &str) -> BTreeMap<String, Reach> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("probe ")?;
            let (address, rc) = rest.split_once(" rc=")?;
            let reach = match rc.trim() {
                // Connected: the server closed (0), or it kept the connection
                // open until `timeout` ended it (SIGTERM: 143, or 124).
                "0" | "124" | "143" => Reach::Open,
                _ => Reach::Blocked,
            };
            Some((address.to_owned(), reach))
        })
        .collect()
}

/// Enforced when every Service the dev namespace reaches is blocked from
/// outside; a Service that answers nobody proves nothing either way.
pub(crate) fn verdict(targets: &[Target]) -> Result<bool> {
    let answering: Vec<&Target> = targets
        .iter()
        .filter(|t| t.from_dev_namespace == Reach::Open)
        .collect();
    if answering.is_empty() {
        return Err(Error::Other(
            "cannot tell whether isolation is enforced: no test-stack Service answered the probe \
             in the dev namespace either (is the stack Ready? see `kubectl devenv status`)"
                .into(),
        ));
    }
    Ok(answering.iter().all(|t| t.from_outside == Reach::Blocked))
}

/// Where the probes run: the dev pod's node selector and tolerations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placement {
    pub node_selector: Option<BTreeMap<String, String>>,
    pub tolerations: Option<Vec<Toleration>>,
}

pub(crate) fn probe_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (ROLE.to_owned(), PROBE_ROLE.to_owned()),
    ])
}

/// A probe pod that passes Pod Security `restricted` anywhere: non-root,
/// no capabilities, no privilege escalation, RuntimeDefault seccomp, a
/// read-only root, small limits, and a deadline after which it ends itself.
pub(crate) fn probe_pod(
    namespace: &str,
    name: &str,
    image: &str,
    placement: &Placement,
    addresses: &[String],
) -> Pod {
    let mut command = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        PROBE_SCRIPT.to_owned(),
        "probe".to_owned(),
    ];
    command.extend(addresses.iter().cloned());
    let resources = Resources {
        requests: Quantities {
            cpu: "10m".into(),
            memory: "16Mi".into(),
        },
        limits: Quantities {
            cpu: "100m".into(),
            memory: "32Mi".into(),
        },
    };
    let mut container = render::locked_down("probe", image, &resources, PROBE_USER, PROBE_USER);
    container.command = Some(command);
    if let Some(security) = container.security_context.as_mut() {
        security.read_only_root_filesystem = Some(true);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(probe_labels()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".to_owned()),
            active_deadline_seconds: Some(PROBE_DEADLINE_SECONDS),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(0),
            node_selector: placement.node_selector.clone(),
            tolerations: placement.tolerations.clone(),
            security_context: Some(render::restricted_pod_security(PROBE_USER, PROBE_USER)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the kube-system DaemonSets and kubelet versions say about policy
/// enforcement (pure, for the tests).
pub(crate) fn cni_reasons(daemonsets: &[String], kubelet_versions: &[String]) -> Vec<String> {
    let has = |name: &str| daemonsets.iter().any(|d| d.contains(name));
    let enforcer = [
        "calico",
        "cilium",
        "kube-router",
        "canal",
        "antrea",
        "weave",
    ]
    .iter()
    .any(|e| has(e));
    let mut reasons = Vec::new();
    if has("aws-node") && !enforcer {
        reasons.push(
            "this looks like EKS: the Amazon VPC CNI enforces NetworkPolicy only when its \
             network policy agent is on, and it is off by default; set enableNetworkPolicy \
             to \"true\" in the vpc-cni add-on's configuration (aws eks update-addon \
             --addon-name vpc-cni --configuration-values '{\"enableNetworkPolicy\":\"true\"}'), \
             or install Calico or Cilium"
                .to_owned(),
        );
    } else if kubelet_versions.iter().any(|v| v.contains("k3s")) && !enforcer {
        reasons.push(
            "this looks like k3s: its embedded network policy controller is off when the \
             server runs with --disable-network-policy, and with --flannel-backend=none the \
             CNI installed instead must enforce policies; remove the flag or install a CNI \
             that does (Calico, Cilium)"
                .to_owned(),
        );
    } else if has("flannel") && !enforcer {
        reasons.push(
            "flannel does not enforce NetworkPolicy; add a policy controller (Calico as \
             canal, or kube-router) or use a CNI that enforces it"
                .to_owned(),
        );
    }
    if reasons.is_empty() {
        reasons.push(
            "the API server accepts NetworkPolicy objects on every cluster, but only the CNI \
             plugin or a policy controller applies them; this cluster's does not (Calico, \
             Cilium and kube-router do)"
                .to_owned(),
        );
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(service: &str, dev: Reach, outside: Reach) -> Target {
        Target {
            service: service.into(),
            address: format!("10.96.0.1:{}", service.len()),
            from_dev_namespace: dev,
            from_outside: outside,
        }
    }

    #[test]
    fn probe_lines_become_verdicts() {
        let out = "probe 10.96.0.12:3306 rc=0\nprobe 10.96.0.13:6379 rc=1\n\
                   probe 10.96.0.14:5432 rc=143\nnoise\nprobe 10.96.0.15:11211 rc=127\n";
        let parsed = parse_probe_output(out);
        assert_eq!(parsed["10.96.0.12:3306"], Reach::Open);
        assert_eq!(parsed["10.96.0.13:6379"], Reach::Blocked);
        assert_eq!(parsed["10.96.0.14:5432"], Reach::Open);
        // No nc in the image (127) is no connection either.
        assert_eq!(parsed["10.96.0.15:11211"], Reach::Blocked);
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn enforced_only_when_every_answering_service_is_blocked_from_outside() {
        use Reach::*;
        assert!(
            verdict(&[
                target("mysql", Open, Blocked),
                target("redis", Open, Blocked)
            ])
            .unwrap()
        );
        assert!(!verdict(&[target("mysql", Open, Blocked), target("redis", Open, Open)]).unwrap());
        // A Service that answers nobody does not count.
        assert!(
            verdict(&[
                target("mysql", Open, Blocked),
                target("php", Blocked, Blocked)
            ])
            .unwrap()
        );
        let err = verdict(&[target("mysql", Blocked, Blocked)]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot tell whether isolation is enforced")
        );
    }

    #[test]
    fn the_reasons_name_the_platform() {
        let eks = cni_reasons(&["aws-node".into(), "kube-proxy".into()], &[]);
        assert!(eks[0].contains("enableNetworkPolicy"), "{eks:?}");
        let eks_with_calico = cni_reasons(&["aws-node".into(), "calico-node".into()], &[]);
        assert!(!eks_with_calico[0].contains("enableNetworkPolicy"));
        let k3s = cni_reasons(&[], &["v1.31.4+k3s1".into()]);
        assert!(k3s[0].contains("--disable-network-policy"), "{k3s:?}");
        let flannel = cni_reasons(&["kube-flannel-ds".into()], &["v1.36.3".into()]);
        assert!(
            flannel[0].starts_with("flannel does not enforce"),
            "{flannel:?}"
        );
        let generic = cni_reasons(&[], &[]);
        assert!(generic[0].contains("only the CNI plugin or a policy controller"));
    }

    #[test]
    fn probe_pods_pass_pod_security_restricted() {
        let placement = Placement {
            node_selector: Some(BTreeMap::from([("pool".into(), "dev".into())])),
            tolerations: None,
        };
        let pod = probe_pod(
            "dev",
            "isolation-probe-abcde",
            "busybox:1.37",
            &placement,
            &["10.96.0.12:3306".to_owned()],
        );
        let spec = pod.spec.unwrap();
        let container = &spec.containers[0];
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_owned()])
        );
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(
            spec.security_context
                .unwrap()
                .seccomp_profile
                .unwrap()
                .type_,
            "RuntimeDefault"
        );
        assert!(container.resources.as_ref().unwrap().limits.is_some());
        assert_eq!(spec.node_selector.unwrap()["pool"], "dev");
        assert_eq!(
            container.command.as_ref().unwrap().last().unwrap(),
            "10.96.0.12:3306"
        );
    }
}
