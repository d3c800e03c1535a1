//! The pre-deploy gate of `up`: before anything is applied, refuse an image
//! that no node (or not the stack's target architecture) can run, and say
//! what to use instead.

use std::collections::BTreeMap;

use serde::Serialize;

use super::reference::normalize;
use super::{ImageCheck, RegistryOptions, check_images};
use crate::arch::Arch;
use crate::cluster::Cluster;
use crate::cluster::nodes;
use crate::error::{Error, Result};

/// What the images must provide, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub(crate) enum ArchRequirement {
    /// Every listed architecture: the stack is pinned to them (`--arch`,
    /// `targetArch:` in devenv.yaml).
    Every { arches: Vec<Arch>, source: String },
    /// At least one of the nodes' architectures: the scheduler can then
    /// place the pod somewhere (`up` without a target architecture).
    AnyOf { arches: Vec<Arch>, source: String },
}

impl ArchRequirement {
    pub(crate) fn arches(&self) -> &[Arch] {
        match self {
            ArchRequirement::Every { arches, .. } | ArchRequirement::AnyOf { arches, .. } => arches,
        }
    }
}

/// An image the gate refuses, with what it has and what could replace it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Refusal {
    pub image: String,
    pub platforms: Vec<String>,
    pub missing: Vec<Arch>,
    pub suggestions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GateReport {
    pub requirement: Option<ArchRequirement>,
    pub checks: Vec<ImageCheck>,
    pub refused: Vec<Refusal>,
    /// Things worth saying that do not block: unreadable nodes, unreachable
    /// registries, images that run on some node architectures only.
    pub warnings: Vec<String>,
}

impl GateReport {
    /// The one-line refusal `up` fails with, if any image is refused.
    pub(crate) fn refusal_error(&self) -> Option<Error> {
        if self.refused.is_empty() {
            return None;
        }
        let reasons: Vec<String> = self.refused.iter().map(describe_refusal).collect();
        Some(Error::Other(format!(
            "{}; pass --skip-arch-check to deploy anyway",
            reasons.join("; ")
        )))
    }
}

fn describe_refusal(refusal: &Refusal) -> String {
    let missing: Vec<String> = refusal
        .missing
        .iter()
        .map(|a| format!("linux/{a}"))
        .collect();
    let has = if refusal.platforms.is_empty() {
        "no platform".to_owned()
    } else {
        refusal.platforms.join(", ")
    };
    let mut text = format!(
        "image {} has no {} variant (it has {has})",
        refusal.image,
        missing.join(" or ")
    );
    if !refusal.suggestions.is_empty() {
        text.push_str(&format!(
            "; use {} instead",
            refusal.suggestions.join(" or ")
        ));
    }
    text
}

/// Judges the checked images against the requirement (pure: no I/O).
pub(crate) fn judge(checks: Vec<ImageCheck>, requirement: &ArchRequirement) -> GateReport {
    let mut refused = Vec::new();
    let mut warnings = Vec::new();
    for check in &checks {
        if let Some(problem) = &check.error {
            warnings.push(format!(
                "cannot check the architectures of {}: {}",
                check.image, problem.message
            ));
            continue;
        }
        let runs: Vec<&Arch> = requirement
            .arches()
            .iter()
            .filter(|a| check.runs_on(a) == Some(true))
            .collect();
        let missing: Vec<Arch> = requirement
            .arches()
            .iter()
            .filter(|a| !runs.contains(a))
            .cloned()
            .collect();
        let refuse = match requirement {
            ArchRequirement::Every { .. } => !missing.is_empty(),
            ArchRequirement::AnyOf { .. } => runs.is_empty() && !missing.is_empty(),
        };
        if refuse {
            refused.push(Refusal {
                image: check.image.clone(),
                platforms: check.platforms.iter().map(ToString::to_string).collect(),
                missing,
                suggestions: suggestions(&check.image),
            });
        } else if !missing.is_empty() {
            let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
            warnings.push(format!(
                "image {} has no {} variant: its pods must not land on such nodes",
                check.image,
                missing.join(", ")
            ));
        }
    }
    GateReport {
        requirement: Some(requirement.clone()),
        checks,
        refused,
        warnings,
    }
}

/// Multi-arch replacements for images known to lack arm64.
pub(crate) fn suggestions(image: &str) -> Vec<String> {
    let Ok(reference) = normalize(image) else {
        return Vec::new();
    };
    let tag = reference.tag().unwrap_or("latest");
    match (reference.registry(), reference.repository()) {
        ("docker.io", "library/mysql") if tag.starts_with('5') => {
            vec!["mysql:8.4".into(), "mariadb:11.4".into()]
        }
        ("docker.io", "library/percona") if tag.starts_with('5') => {
            vec!["percona/percona-server:8.0".into(), "mariadb:11.4".into()]
        }
        _ => Vec::new(),
    }
}

/// Node architecture names as [`Arch`]es, dropping what is not an architecture (`unknown`).
pub(crate) fn arches_of(counts: &BTreeMap<String, usize>) -> Vec<Arch> {
    let names: Vec<String> = counts.keys().cloned().collect();
    names.iter().filter_map(|n| Arch::parse(n).ok()).collect()
}

/// What `up` requires: the target architectures if the stack has any, else
/// one of the nodes' architectures. `None` when neither is known.
pub(crate) async fn requirement_for_up(
    cluster: &Cluster,
    target: &[Arch],
    notes: &mut Vec<String>,
) -> Option<ArchRequirement> {
    if !target.is_empty() {
        return Some(ArchRequirement::Every {
            arches: target.to_vec(),
            source: "target architecture".into(),
        });
    }
    match nodes::architecture_counts(cluster).await {
        Ok(counts) if !arches_of(&counts).is_empty() => Some(ArchRequirement::AnyOf {
            arches: arches_of(&counts),
            source: "nodes".into(),
        }),
        Ok(_) => {
            notes.push("the cluster has no nodes with a known architecture: skipping the architecture check; set a target architecture (--arch) to check anyway".into());
            None
        }
        Err(err) => {
            notes.push(format!(
                "cannot read the nodes' architectures ({err}): skipping the architecture check; set a target architecture (--arch or `targetArch:` in devenv.yaml) to check against it instead"
            ));
            None
        }
    }
}

/// The gate as `up` runs it, before applying anything (and unless
/// `--skip-arch-check`): prints warnings to stderr and fails with a one-line
/// refusal. `target` is the stack's target architectures (`--arch`,
/// `targetArch:` in devenv.yaml), possibly empty.
pub(crate) async fn run(
    cluster: &Cluster,
    images: &[String],
    target: &[Arch],
    options: &RegistryOptions,
) -> Result<GateReport> {
    let mut notes = Vec::new();
    let requirement = requirement_for_up(cluster, target, &mut notes).await;
    for note in &notes {
        eprintln!("Warning: {note}");
    }
    let Some(requirement) = requirement else {
        return Ok(GateReport {
            requirement: None,
            checks: Vec::new(),
            refused: Vec::new(),
            warnings: notes,
        });
    };
    let report = check(images, &requirement, options).await;
    for warning in &report.warnings {
        eprintln!("Warning: {warning}");
    }
    match report.refusal_error() {
        Some(err) => Err(err),
        None => Ok(report),
    }
}

/// Checks the images and judges them: the gate without any cluster access.
pub(crate) async fn check(
    images: &[String],
    requirement: &ArchRequirement,
    options: &RegistryOptions,
) -> GateReport {
    let mut unique: Vec<String> = Vec::new();
    for image in images {
        if !unique.contains(image) {
            unique.push(image.clone());
        }
    }
    let checks = check_images(&unique, requirement.arches(), options).await;
    judge(checks, requirement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ImageError, ImageInfo, Platform};

    fn check(image: &str, platforms: &[&str]) -> ImageCheck {
        let info = ImageInfo {
            reference: image.into(),
            digest: "sha256:1".into(),
            media_type: None,
            platforms: platforms
                .iter()
                .map(|p| {
                    let (arch, variant) =
                        p.split_once('/').map_or((*p, None), |(a, v)| (a, Some(v)));
                    Platform {
                        os: "linux".into(),
                        architecture: arch.into(),
                        variant: variant.map(Into::into),
                    }
                })
                .collect(),
        };
        ImageCheck::evaluate(image.into(), &Ok(info), &[])
    }

    fn every(list: &str) -> ArchRequirement {
        ArchRequirement::Every {
            arches: crate::arch::parse_list(&[list.into()]).unwrap(),
            source: "test".into(),
        }
    }

    fn any_of(list: &str) -> ArchRequirement {
        ArchRequirement::AnyOf {
            arches: crate::arch::parse_list(&[list.into()]).unwrap(),
            source: "nodes".into(),
        }
    }

    #[test]
    fn amd64_only_image_is_refused_on_an_arm64_target() {
        let report = judge(vec![check("mysql:5.7", &["amd64"])], &every("arm64"));
        assert_eq!(report.refused.len(), 1);
        let message = report.refusal_error().unwrap().to_string();
        assert_eq!(
            message,
            "image mysql:5.7 has no linux/arm64 variant (it has linux/amd64); use mysql:8.4 or mariadb:11.4 instead; pass --skip-arch-check to deploy anyway"
        );
    }

    #[test]
    fn multi_arch_images_pass() {
        let report = judge(
            vec![check("mariadb:11.4", &["amd64", "arm64/v8"])],
            &every("arm64,amd64"),
        );
        assert!(report.refused.is_empty());
        assert!(report.refusal_error().is_none());
        assert!(report.warnings.is_empty());
    }

    #[test]
    fn mixed_nodes_need_one_arch_and_warn_about_the_rest() {
        let report = judge(vec![check("app:1", &["amd64"])], &any_of("amd64,arm64"));
        assert!(report.refused.is_empty());
        assert_eq!(report.warnings.len(), 1);
        assert!(
            report.warnings[0].contains("no arm64 variant"),
            "{:?}",
            report.warnings
        );

        let report = judge(vec![check("app:1", &["s390x"])], &any_of("amd64,arm64"));
        assert_eq!(report.refused.len(), 1);
    }

    #[test]
    fn unreadable_images_warn_but_do_not_block() {
        let broken = ImageCheck::evaluate(
            "private/app:1".into(),
            &Err(ImageError::Unreachable {
                registry: "r".into(),
                cause: "refused".into(),
            }),
            &[],
        );
        let report = judge(vec![broken], &every("arm64"));
        assert!(report.refused.is_empty());
        assert!(report.warnings[0].starts_with("cannot check the architectures of private/app:1"));
    }

    #[test]
    fn suggestions_come_from_the_catalog() {
        assert_eq!(suggestions("mysql:5.7"), vec!["mysql:8.4", "mariadb:11.4"]);
        assert_eq!(
            suggestions("docker.io/library/mysql:5.6.51"),
            vec!["mysql:8.4", "mariadb:11.4"]
        );
        assert!(suggestions("mysql:8.4").is_empty());
        assert!(suggestions("127.0.0.1:5000/mysql:5.7").is_empty());
    }

    #[test]
    fn node_counts_become_arches() {
        let counts = BTreeMap::from([
            ("amd64".to_owned(), 2),
            ("arm64".to_owned(), 1),
            ("unknown".to_owned(), 1),
        ]);
        assert_eq!(
            arches_of(&counts),
            crate::arch::parse_list(&["amd64,arm64".into()]).unwrap()
        );
    }
}
