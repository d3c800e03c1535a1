//! Which architectures an image provides, read from its registry, and
//! whether that covers the architectures the cluster (or the user) requires.
//! Used by `kubectl devenv check` and by the pre-deploy gate in `up`.

pub(crate) mod auth;
pub(crate) mod cache;
pub(crate) mod gate;
mod inspect;
pub(crate) mod platform;
pub(crate) mod problem;
pub(crate) mod reference;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::arch::Arch;

pub(crate) use inspect::inspect_all;
pub(crate) use platform::Platform;
pub(crate) use problem::{ImageError, Problem};

/// How long a registry may take to answer one request, unless told otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub insecure_registries: Vec<String>,
    pub timeout: Duration,
    /// Images checked at once: enough to hide latency, few enough to stay
    /// polite to registries with per-client limits.
    pub concurrency: usize,
    pub cache_dir: Option<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            concurrency: 16,
            cache_dir: cache::default_dir(),
        }
    }
}

/// What the registry says about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    /// The normalized reference (`docker.io/library/mysql:5.7`).
    pub reference: String,
    pub digest: String,
    pub media_type: Option<String>,
    pub platforms: Vec<Platform>,
}

/// One image judged against the required architectures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageCheck {
    /// As written in the spec, flag or workload.
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub platforms: Vec<Platform>,
    /// Required architecture → whether the image provides it.
    pub supports: BTreeMap<String, bool>,
    pub missing: Vec<Arch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// The workloads running this image (`check --deployed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
}

impl ImageCheck {
    pub(crate) fn evaluate(
        image: String,
        result: &Result<ImageInfo, ImageError>,
        required: &[Arch],
    ) -> Self {
        match result {
            Ok(info) => {
                let supports: BTreeMap<String, bool> = required
                    .iter()
                    .map(|arch| {
                        (
                            arch.to_string(),
                            info.platforms.iter().any(|p| arch.runs(p)),
                        )
                    })
                    .collect();
                let missing = required
                    .iter()
                    .filter(|arch| !info.platforms.iter().any(|p| arch.runs(p)))
                    .cloned()
                    .collect();
                Self {
                    image,
                    reference: Some(info.reference.clone()),
                    digest: Some(info.digest.clone()),
                    media_type: info.media_type.clone(),
                    platforms: info.platforms.clone(),
                    supports,
                    missing,
                    error: None,
                    used_by: Vec::new(),
                }
            }
            Err(err) => Self {
                image,
                reference: None,
                digest: None,
                media_type: None,
                platforms: Vec::new(),
                supports: BTreeMap::new(),
                missing: Vec::new(),
                error: Some(Problem::from(err)),
                used_by: Vec::new(),
            },
        }
    }

    /// Whether the image runs on `arch`; `None` when it could not be checked.
    pub(crate) fn runs_on(&self, arch: &Arch) -> Option<bool> {
        if self.error.is_some() {
            return None;
        }
        Some(self.platforms.iter().any(|p| arch.runs(p)))
    }
}

/// Checks `images` against `required`, in input order.
pub(crate) async fn check_images(
    images: &[String],
    required: &[Arch],
    options: &RegistryOptions,
) -> Vec<ImageCheck> {
    inspect_all(images, options)
        .await
        .into_iter()
        .map(|(image, result)| ImageCheck::evaluate(image, &result, required))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(platforms: &[(&str, Option<&str>)]) -> ImageInfo {
        ImageInfo {
            reference: "docker.io/library/x:1".into(),
            digest: "sha256:1".into(),
            media_type: None,
            platforms: platforms
                .iter()
                .map(|(arch, variant)| Platform {
                    os: "linux".into(),
                    architecture: (*arch).into(),
                    variant: variant.map(Into::into),
                })
                .collect(),
        }
    }

    fn arches(list: &str) -> Vec<Arch> {
        crate::arch::parse_list(&[list.to_owned()]).unwrap()
    }

    #[test]
    fn missing_lists_what_the_image_lacks() {
        let check = ImageCheck::evaluate(
            "x:1".into(),
            &Ok(info(&[("amd64", None)])),
            &arches("amd64,arm64"),
        );
        assert_eq!(check.missing, arches("arm64"));
        assert_eq!(check.supports.get("amd64"), Some(&true));
        assert_eq!(check.supports.get("arm64"), Some(&false));
    }

    #[test]
    fn variant_v8_satisfies_arm64() {
        let check = ImageCheck::evaluate(
            "x:1".into(),
            &Ok(info(&[("arm64", Some("v8"))])),
            &arches("arm64"),
        );
        assert!(check.missing.is_empty());
        assert_eq!(check.runs_on(&arches("arm64")[0]), Some(true));
        assert_eq!(check.runs_on(&arches("amd64")[0]), Some(false));
    }

    #[test]
    fn errors_are_neither_pass_nor_fail() {
        let err = ImageError::Unreachable {
            registry: "r".into(),
            cause: "Connection refused".into(),
        };
        let check = ImageCheck::evaluate("x:1".into(), &Err(err), &arches("arm64"));
        assert!(check.missing.is_empty());
        assert_eq!(check.runs_on(&arches("arm64")[0]), None);
        assert_eq!(check.error.unwrap().kind, "unreachable");
    }
}
