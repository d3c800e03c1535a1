//! Platforms (os/arch/variant) as registries describe them, what a node
//! architecture requires of them, and reading them out of manifests.

use std::fmt;

use oci_client::manifest::{self, OciManifest};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// One platform an image provides, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Attestation manifests (SBOM, provenance) sit in indexes as `unknown/unknown`.
    fn is_attestation(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

/// Matching lives here, beside [`Platform`], so that [`Arch`] stays a leaf.
impl Arch {
    /// Whether a node of this architecture can run `platform`. Variants are
    /// optional on both sides; for 32-bit arm a node runs its own and older
    /// variants (a v7 node runs v6 images, not the other way round).
    pub fn runs(&self, platform: &Platform) -> bool {
        if platform.os != "linux" || platform.architecture != self.architecture() {
            return false;
        }
        match (self.variant(), &platform.variant) {
            (Some(node), Some(image)) if self.architecture() == "arm" => arm_level(image)
                .zip(arm_level(node))
                .is_none_or(|(i, n)| i <= n),
            _ => true,
        }
    }
}

fn arm_level(variant: &str) -> Option<u8> {
    variant.strip_prefix('v')?.parse().ok()
}

/// What a manifest tells about platforms, before any further request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    /// An OCI index or Docker manifest list: the platforms are listed, minus attestations.
    Index(Vec<Platform>),
    /// A single image: the platform is in its config blob.
    Image { config_digest: String },
}

/// The manifest formats `inspect` asks for (its Accept header).
pub(crate) const MEDIA_TYPES: [&str; 4] = [
    manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    manifest::OCI_IMAGE_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_MEDIA_TYPE,
];

/// Reads an index, a manifest list or an image manifest, with oci-client's
/// types (Docker's v2 formats have the same shape). Entries without a
/// platform and attestation entries are skipped.
pub(crate) fn parse_manifest(body: &[u8]) -> Result<ManifestKind, String> {
    match serde_json::from_slice::<OciManifest>(body) {
        Ok(OciManifest::ImageIndex(index)) => {
            let mut platforms: Vec<Platform> = index
                .manifests
                .into_iter()
                .filter_map(|entry| entry.platform)
                .map(|p| Platform {
                    os: p.os.to_string(),
                    architecture: p.architecture.to_string(),
                    variant: p.variant,
                })
                .filter(|p| !p.is_attestation())
                .collect();
            platforms.sort();
            platforms.dedup();
            Ok(ManifestKind::Index(platforms))
        }
        Ok(OciManifest::Image(image)) => Ok(ManifestKind::Image {
            config_digest: image.config.digest,
        }),
        // JSON of another kind (schema 1, an error document) names its media
        // type if it has one; anything else is not a manifest at all.
        Err(_) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(other) => Err(format!(
                "unsupported manifest (media type {})",
                other["mediaType"].as_str().unwrap_or("not given")
            )),
            Err(err) => Err(format!("unreadable manifest: {err}")),
        },
    }
}

/// The platform recorded in an image config blob (`os`, `architecture`, `variant`).
pub(crate) fn parse_config(body: &[u8]) -> Result<Platform, String> {
    serde_json::from_slice(body).map_err(|err| format!("unreadable image config: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> Platform {
        let mut parts = text.split('/');
        Platform {
            os: parts.next().unwrap().into(),
            architecture: parts.next().unwrap().into(),
            variant: parts.next().map(Into::into),
        }
    }

    fn arch(text: &str) -> Arch {
        Arch::parse(text).unwrap()
    }

    #[test]
    fn arm64_runs_with_or_without_the_v8_variant() {
        assert!(arch("arm64").runs(&platform("linux/arm64/v8")));
        assert!(arch("arm64").runs(&platform("linux/arm64")));
        assert!(arch("arm64/v8").runs(&platform("linux/arm64")));
    }

    #[test]
    fn wrong_architecture_or_os_does_not_run() {
        assert!(!arch("arm64").runs(&platform("linux/amd64")));
        assert!(!arch("amd64").runs(&platform("linux/arm64/v8")));
        assert!(!arch("amd64").runs(&platform("windows/amd64")));
        assert!(!arch("arm64").runs(&platform("linux/arm/v7")));
    }

    #[test]
    fn arm_nodes_run_older_variants_only() {
        assert!(arch("arm/v7").runs(&platform("linux/arm/v6")));
        assert!(arch("arm/v7").runs(&platform("linux/arm/v7")));
        assert!(!arch("arm/v6").runs(&platform("linux/arm/v7")));
        assert!(arch("arm").runs(&platform("linux/arm/v7")));
    }

    #[test]
    fn index_skips_attestations_and_entries_without_platform() {
        let body = br#"{
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a", "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:b", "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:c", "size": 1,
             "platform": {"os": "unknown", "architecture": "unknown"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:d", "size": 1}
          ]}"#;
        assert_eq!(
            parse_manifest(body).unwrap(),
            ManifestKind::Index(vec![platform("linux/amd64"), platform("linux/arm64/v8")])
        );
    }

    #[test]
    fn single_manifest_points_at_its_config() {
        let body = br#"{"schemaVersion": 2,
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:cfg", "size": 1},
          "layers": []}"#;
        assert_eq!(
            parse_manifest(body).unwrap(),
            ManifestKind::Image {
                config_digest: "sha256:cfg".into()
            }
        );
    }

    #[test]
    fn config_gives_the_platform() {
        let body = br#"{"architecture": "arm64", "variant": "v8", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}"#;
        assert_eq!(parse_config(body).unwrap(), platform("linux/arm64/v8"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_manifest(b"<html>").is_err());
        assert!(parse_manifest(br#"{"schemaVersion": 1}"#).is_err());
        assert!(parse_config(b"{}").is_err());
    }
}
