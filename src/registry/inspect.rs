//! Asking registries which platforms an image has: a HEAD for the digest
//! (free on Docker Hub), the cache by digest, and only on a miss a GET of the
//! manifest by digest, plus the config blob for single-platform images.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::auth::{self, Credential, CredentialSource};
use super::cache::PlatformCache;
use super::platform::{MEDIA_TYPES, ManifestKind, Platform, parse_config, parse_manifest};
use super::problem::{Failure, ImageError, Target};
use super::reference::{normalize, plain_http};
use super::{ImageInfo, RegistryOptions};

const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A registry asking for a longer wait than this gets reported, not waited for.
const LONGEST_WAIT: Duration = Duration::from_secs(5);
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting takes one round trip; a registry that has not answered in 5s is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials for one registry, and where they came from (for messages).
struct RegistryLogin {
    auth: RegistryAuth,
    origin: Option<String>,
}

struct Inspector {
    oci: oci_client::Client,
    http: reqwest::Client,
    insecure: Vec<String>,
    logins: BTreeMap<String, RegistryLogin>,
    cache: PlatformCache,
    /// Bounds one image from first request to last, retries included.
    per_image: Duration,
    /// Registries that hand out no bearer tokens (open ones, htpasswd ones):
    /// their images skip the per-repository token handshake.
    token_free: BTreeSet<String>,
}

/// Checks every image, at most `options.concurrency` at a time, in input
/// order. One image's failure never stops the others.
pub async fn inspect_all(
    images: &[String],
    options: &RegistryOptions,
) -> Vec<(String, Result<ImageInfo, ImageError>)> {
    let references: Vec<Result<Reference, ImageError>> = images
        .iter()
        .map(|image| normalize(image).map_err(ImageError::InvalidReference))
        .collect();
    let registries: BTreeSet<String> = references
        .iter()
        .flatten()
        .map(|r| r.registry().to_owned())
        .collect();
    let mut inspector = Inspector::new(&registries, options).await;
    inspector.token_free = inspector.token_free_registries(&references).await;
    futures::stream::iter(images.iter().zip(references))
        .map(|(image, reference)| {
            let inspector = &inspector;
            async move {
                let result = match reference {
                    Ok(reference) => inspector.inspect(&reference).await,
                    Err(err) => Err(err),
                };
                (image.clone(), result)
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await
}

impl Inspector {
    async fn new(registries: &BTreeSet<String>, options: &RegistryOptions) -> Self {
        // reqwest is built without a bundled provider; use ring, as kube does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let plain: Vec<String> = registries
            .iter()
            .filter(|r| plain_http(r, &options.insecure_registries))
            .cloned()
            .collect();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain.clone()),
            connect_timeout: Some(options.timeout.min(CONNECT_TIMEOUT)),
            read_timeout: Some(options.timeout),
            user_agent: concat!("kubectl-devenv/", env!("CARGO_PKG_VERSION")),
            platform_resolver: None,
            ..Default::default()
        };
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout.min(CONNECT_TIMEOUT))
            .read_timeout(options.timeout)
            .user_agent(config.user_agent)
            .build()
            .unwrap_or_default();
        Self {
            oci: oci_client::Client::new(config),
            http,
            insecure: plain,
            logins: resolve_logins(registries).await,
            cache: PlatformCache::new(options.cache_dir.clone()),
            per_image: options.timeout * (ATTEMPTS + 2),
            token_free: BTreeSet::new(),
        }
    }

    /// Asks each registry once, in parallel, whether it wants a bearer token
    /// (Docker Hub does, per repository). A failure here is left to the
    /// per-image handshake, which words it for each image.
    async fn token_free_registries(
        &self,
        references: &[Result<Reference, ImageError>],
    ) -> BTreeSet<String> {
        let mut first_per_registry: BTreeMap<&str, &Reference> = BTreeMap::new();
        for reference in references.iter().flatten() {
            first_per_registry
                .entry(reference.registry())
                .or_insert(reference);
        }
        let pings = first_per_registry
            .into_iter()
            .map(|(registry, reference)| async move {
                let anonymous = RegistryAuth::Anonymous;
                let auth = self.logins.get(registry).map_or(&anonymous, |l| &l.auth);
                let answer = self
                    .oci
                    .auth(reference, auth, RegistryOperation::Pull)
                    .await;
                matches!(answer, Ok(None)).then(|| registry.to_owned())
            });
        futures::future::join_all(pings)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn inspect(&self, reference: &Reference) -> Result<ImageInfo, ImageError> {
        let registry = reference.registry().to_owned();
        let login = self.logins.get(&registry);
        let target = Target {
            registry: registry.clone(),
            repository: reference.repository().to_owned(),
            wanted: match (reference.digest(), reference.tag()) {
                (Some(digest), _) => format!("manifest {digest}"),
                (None, tag) => format!("tag \"{}\"", tag.unwrap_or("latest")),
            },
            credentials: login.and_then(|l| l.origin.clone()),
        };
        let anonymous = RegistryAuth::Anonymous;
        let auth = login.map_or(&anonymous, |l| &l.auth);
        let work = self.inspect_with(reference, &target, auth);
        match tokio::time::timeout(self.per_image, work).await {
            Ok(result) => result,
            Err(_) => Err(ImageError::Unreachable {
                registry,
                cause: format!(
                    "no answer within {}",
                    crate::error::humanize(self.per_image)
                ),
            }),
        }
    }

    async fn inspect_with(
        &self,
        reference: &Reference,
        target: &Target,
        auth: &RegistryAuth,
    ) -> Result<ImageInfo, ImageError> {
        let token = if self.token_free.contains(reference.registry()) {
            None
        } else {
            retrying(|| async {
                self.oci
                    .auth(reference, auth, RegistryOperation::Pull)
                    .await
                    .map_err(|err| target.from_oci(err))
            })
            .await?
        };
        let head = retrying(|| self.head(reference, target, auth, token.as_deref())).await?;
        let digest = match (head.digest, reference.digest()) {
            (Some(digest), _) => digest,
            (None, Some(digest)) => digest.to_owned(),
            // A registry that omits Docker-Content-Digest: the GET computes it.
            (None, None) => String::new(),
        };
        if let Some(platforms) = (!digest.is_empty())
            .then(|| self.cache.get(&digest))
            .flatten()
        {
            tracing::debug!(
                "{}: platforms of {digest} from the cache",
                reference.whole()
            );
            return Ok(ImageInfo {
                reference: reference.whole(),
                digest,
                media_type: head.media_type,
                platforms,
            });
        }
        let by_digest = if digest.is_empty() {
            reference.clone()
        } else {
            reference.clone_with_digest(digest.clone())
        };
        let (body, digest) = retrying(|| async {
            self.oci
                .pull_manifest_raw(&by_digest, auth, &MEDIA_TYPES)
                .await
                .map_err(|err| target.from_oci(err))
        })
        .await
        .map_err(|err| match err {
            ImageError::RateLimited { .. } => head.rate_limit.clone(),
            other => other,
        })?;
        let platforms = match parse_manifest(&body).map_err(|m| registry_error(target, m))? {
            ManifestKind::Index(platforms) => platforms,
            ManifestKind::Image { config_digest } => {
                vec![
                    self.config_platform(&by_digest, target, auth, &config_digest)
                        .await?,
                ]
            }
        };
        self.cache.put(&digest, &platforms);
        Ok(ImageInfo {
            reference: reference.whole(),
            digest,
            media_type: head.media_type,
            platforms,
        })
    }

    /// HEAD on the manifest: its digest and type, and the registry's
    /// rate-limit headers when it refuses. Made here rather than in
    /// oci-client, which neither returns headers nor stops at a 404.
    async fn head(
        &self,
        reference: &Reference,
        target: &Target,
        auth: &RegistryAuth,
        token: Option<&str>,
    ) -> Result<Head, Failure> {
        let host = reference.resolve_registry();
        let scheme = if self.insecure.iter().any(|r| r == host) {
            "http"
        } else {
            "https"
        };
        let tag_or_digest = reference.digest().or(reference.tag()).unwrap_or("latest");
        let url = format!(
            "{scheme}://{host}/v2/{}/manifests/{tag_or_digest}",
            reference.repository()
        );
        let mut request = self.http.head(&url).header(ACCEPT, MEDIA_TYPES.join(", "));
        request = match (token, auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            (None, _) => request,
        };
        let response = request
            .send()
            .await
            .map_err(|err| target.from_transport(&err))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        if status != 200 {
            return Err(target.from_status(status, headers, Timestamp::now()));
        }
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        };
        Ok(Head {
            digest: text(reqwest::header::HeaderName::from_static(
                "docker-content-digest",
            )),
            media_type: text(CONTENT_TYPE),
            rate_limit: target.rate_limited(headers, Timestamp::now()),
        })
    }

    async fn config_platform(
        &self,
        reference: &Reference,
        target: &Target,
        auth: &RegistryAuth,
        config_digest: &str,
    ) -> Result<Platform, ImageError> {
        self.oci
            .store_auth_if_needed(reference.resolve_registry(), auth)
            .await;
        let body = retrying(|| async {
            let mut body = Vec::new();
            self.oci
                .pull_blob(reference, config_digest, &mut body)
                .await
                .map_err(|err| target.from_oci(err))?;
            Ok(body)
        })
        .await?;
        parse_config(&body).map_err(|m| registry_error(target, m))
    }
}

struct Head {
    digest: Option<String>,
    media_type: Option<String>,
    /// The registry's budget as of the HEAD (Docker Hub sends it on every
    /// answer), for wording a 429 on the GET, whose headers oci-client drops.
    rate_limit: ImageError,
}

fn registry_error(target: &Target, message: String) -> ImageError {
    ImageError::Registry {
        registry: target.registry.clone(),
        message,
    }
}

/// Runs `attempt` up to [`ATTEMPTS`] times, backing off (with jitter) on
/// retryable failures, or as long as the registry asks when that is short.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ImageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Retry { error, wait }) => {
                if tries >= ATTEMPTS || wait.is_some_and(|w| w > LONGEST_WAIT) {
                    return Err(error);
                }
                let pause = wait.unwrap_or(backoff) + jitter(backoff / 4);
                tracing::debug!("{error}; retrying in {}ms", pause.as_millis());
                tokio::time::sleep(pause).await;
                backoff *= 2;
            }
        }
    }
}

/// Spreads retries of concurrent checks apart, without a random-number crate.
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let max_nanos = max.as_nanos().max(1) as u64;
    Duration::from_nanos(u64::from(nanos) % max_nanos)
}

/// Looks up credentials once per registry, calling credential helpers as needed.
async fn resolve_logins(registries: &BTreeSet<String>) -> BTreeMap<String, RegistryLogin> {
    let config = match auth::load_config() {
        Ok(config) => config,
        Err(err) => {
            tracing::warn!("ignoring the docker config: {err}");
            return BTreeMap::new();
        }
    };
    let config_file = auth::config_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the docker config".to_owned());
    let mut logins = BTreeMap::new();
    for registry in registries {
        let (credential, origin) = match config.source_for(registry) {
            Ok(CredentialSource::None) => (None, None),
            Ok(CredentialSource::Static(credential)) => {
                (Some(credential), Some(config_file.clone()))
            }
            Ok(CredentialSource::Helper { helper, server }) => {
                match auth::run_helper(&helper, &server, HELPER_TIMEOUT).await {
                    Ok(credential) => (credential, Some(format!("docker-credential-{helper}"))),
                    Err(err) => {
                        tracing::warn!("no credentials for {registry}: {err}");
                        (None, None)
                    }
                }
            }
            Err(err) => {
                tracing::warn!("no credentials for {registry}: {config_file}: {err}");
                (None, None)
            }
        };
        if credential == Some(Credential::IdentityToken) {
            tracing::warn!(
                "the credentials for {registry} are an identity token (SSO login), which kubectl-devenv cannot use; trying anonymously"
            );
        }
        let origin = origin.filter(|_| {
            matches!(
                credential,
                Some(Credential::Basic { .. } | Credential::Bearer(_))
            )
        });
        logins.insert(
            registry.clone(),
            RegistryLogin {
                auth: auth::to_registry_auth(credential.as_ref()),
                origin,
            },
        );
    }
    logins
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn rate_limited() -> ImageError {
        ImageError::RateLimited {
            registry: "r".into(),
            reset: None,
            limit: None,
        }
    }

    #[tokio::test]
    async fn retries_a_retryable_failure_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), ImageError> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Retry {
                error: rate_limited(),
                wait: None,
            })
        })
        .await;
        assert_eq!(result, Err(rate_limited()));
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test]
    async fn recovers_when_a_retry_succeeds() {
        let calls = AtomicU32::new(0);
        let result = retrying(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Failure::Retry {
                    error: rate_limited(),
                    wait: Some(Duration::from_millis(10)),
                })
            } else {
                Ok("manifest")
            }
        })
        .await;
        assert_eq!(result, Ok("manifest"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn final_failures_and_long_waits_are_not_retried() {
        let calls = AtomicU32::new(0);
        let not_found = ImageError::NotFound {
            registry: "r".into(),
            repository: "x".into(),
            wanted: "tag \"1\"".into(),
        };
        let result: Result<(), ImageError> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Final(not_found.clone()))
        })
        .await;
        assert_eq!(result, Err(not_found));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result: Result<(), ImageError> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Retry {
                error: rate_limited(),
                wait: Some(Duration::from_secs(3600)),
            })
        })
        .await;
        assert_eq!(result, Err(rate_limited()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
