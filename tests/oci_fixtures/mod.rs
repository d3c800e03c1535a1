//! Pushes tiny images to a real registry (Debian's docker-registry in the
//! test bed) with oci-client: a config and a layer blob per image, then the
//! image manifest, then indexes over pushed children (distribution refuses an
//! index whose children are missing).
#![allow(dead_code)] // each test binary uses a different subset

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub(crate) fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A pushed manifest, as an index entry needs it.
#[derive(Debug, Clone)]
pub(crate) struct Pushed {
    pub digest: String,
    pub size: usize,
    pub media_type: &'static str,
}

pub(crate) struct Registry {
    /// `127.0.0.1:5000`
    pub host: String,
    client: oci_client::Client,
    auth: RegistryAuth,
    runtime: tokio::runtime::Runtime,
}

impl Registry {
    pub(crate) fn new(host: &str, auth: RegistryAuth) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![host.to_owned()]),
            ..Default::default()
        };
        Self {
            host: host.to_owned(),
            client: oci_client::Client::new(config),
            auth,
            runtime: tokio::runtime::Runtime::new().expect("tokio runtime"),
        }
    }

    fn reference(&self, repository: &str, tag_or_digest: &str) -> Reference {
        let text = if tag_or_digest.contains(':') {
            format!("{}/{repository}@{tag_or_digest}", self.host)
        } else {
            format!("{}/{repository}:{tag_or_digest}", self.host)
        };
        text.parse().expect("valid fixture reference")
    }

    async fn login(&self, reference: &Reference) {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Push)
            .await
            .expect("registry auth for push");
    }

    fn push_blob(&self, repository: &str, data: Vec<u8>) -> (String, usize) {
        let digest = sha256(&data);
        let size = data.len();
        let reference = self.reference(repository, "blobs");
        self.runtime.block_on(async {
            self.login(&reference).await;
            self.client
                .push_blob(&reference, data, &digest)
                .await
                .expect("push blob");
        });
        (digest, size)
    }

    /// Pushes `manifest` under `tag` (or only by digest when `tag` is None).
    pub(crate) fn push_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        media_type: &'static str,
        manifest: &Value,
    ) -> Pushed {
        let body = serde_json::to_vec(manifest).unwrap();
        let digest = sha256(&body);
        let size = body.len();
        let reference = self.reference(repository, tag.unwrap_or(&digest));
        self.runtime.block_on(async {
            self.login(&reference).await;
            self.client
                .push_manifest_raw(&reference, body, HeaderValue::from_static(media_type))
                .await
                .expect("push manifest");
        });
        Pushed {
            digest,
            size,
            media_type,
        }
    }

    /// A single-platform image whose config says `os/arch[/variant]`.
    /// `docker_types` picks Docker v2 media types instead of OCI ones.
    pub(crate) fn push_image(
        &self,
        repository: &str,
        tag: Option<&str>,
        platform: &str,
        docker_types: bool,
    ) -> Pushed {
        let mut parts = platform.split('/');
        let (os, arch, variant) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
        let layer = format!("layer of {repository} for {platform}").into_bytes();
        let (layer_digest, layer_size) = self.push_blob(repository, layer);
        let mut config = json!({
            "os": os,
            "architecture": arch,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        let (config_digest, config_size) =
            self.push_blob(repository, serde_json::to_vec(&config).unwrap());
        let (manifest_type, config_type, layer_type) = if docker_types {
            (
                DOCKER_MANIFEST,
                DOCKER_CONFIG,
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            )
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
        });
        self.push_manifest(repository, tag, manifest_type, &manifest)
    }

    /// An index over already pushed children, each with the platform given
    /// (`unknown/unknown` for attestation entries).
    pub(crate) fn push_index(
        &self,
        repository: &str,
        tag: &str,
        children: &[(Pushed, &str)],
    ) -> Pushed {
        let manifests: Vec<Value> = children
            .iter()
            .map(|(child, platform)| {
                let mut parts = platform.split('/');
                let mut platform_json = json!({
                    "os": parts.next().unwrap(),
                    "architecture": parts.next().unwrap(),
                });
                if let Some(variant) = parts.next() {
                    platform_json["variant"] = json!(variant);
                }
                json!({
                    "mediaType": child.media_type,
                    "digest": child.digest,
                    "size": child.size,
                    "platform": platform_json,
                })
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.push_manifest(repository, Some(tag), OCI_INDEX, &index)
    }

    /// A multi-platform image: one child per platform, then the index.
    pub(crate) fn push_multi(&self, repository: &str, tag: &str, platforms: &[&str]) -> Pushed {
        let children: Vec<(Pushed, &str)> = platforms
            .iter()
            .map(|p| (self.push_image(repository, None, p, false), *p))
            .collect();
        self.push_index(repository, tag, &children)
    }
}
