//! Asking registries which platforms an image has. oci-client does the
//! bearer-token handshake (Docker Hub's, once per repository); the manifest
//! and config requests go through one shared keep-alive client, so that a
//! registry without tokens costs no `/v2/` ping per request. With a platform
//! cache that has entries, a HEAD gives the digest first (free on Docker Hub)
//! and only a cache miss GETs the manifest by that digest; with an empty cache
//! a HEAD could not save the GET, so the manifest is fetched straight away.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};

use super::auth::{self, Credential, CredentialSource};
use super::cache::PlatformCache;
use super::platform::{MEDIA_TYPES, ManifestKind, parse_config, parse_manifest};
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
    /// Built on the first token handshake: each client loads the system's
    /// trust store, which costs more than a whole check on a local registry.
    oci: OnceLock<oci_client::Client>,
    http: reqwest::Client,
    insecure: Vec<String>,
    timeout: Duration,
    logins: BTreeMap<String, RegistryLogin>,
    cache: PlatformCache,
    /// Whether a HEAD may find the digest in the cache and so save a GET.
    head_first: bool,
    /// Bounds one image from first request to last, retries included.
    per_image: Duration,
    /// Registries that hand out no bearer tokens (open ones, htpasswd ones):
    /// their images skip the per-repository token handshake.
    token_free: BTreeSet<String>,
}

/// Checks every image, at most `options.concurrency` at a time, in input
/// order. One image's failure never stops the others.
pub(crate) async fn inspect_all(
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
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout.min(CONNECT_TIMEOUT))
            .read_timeout(options.timeout)
            .user_agent(USER_AGENT)
            .build()
            .unwrap_or_default();
        let cache = PlatformCache::new(options.cache_dir.clone());
        Self {
            oci: OnceLock::new(),
            http,
            insecure: plain,
            timeout: options.timeout,
            logins: resolve_logins(registries).await,
            head_first: cache.has_entries(),
            cache,
            per_image: options.timeout * (ATTEMPTS + 2),
            token_free: BTreeSet::new(),
        }
    }

    fn oci(&self) -> &oci_client::Client {
        self.oci.get_or_init(|| {
            oci_client::Client::new(ClientConfig {
                protocol: ClientProtocol::HttpsExcept(self.insecure.clone()),
                connect_timeout: Some(self.timeout.min(CONNECT_TIMEOUT)),
                read_timeout: Some(self.timeout),
                user_agent: USER_AGENT,
                platform_resolver: None,
                ..Default::default()
            })
        })
    }

    fn scheme(&self, host: &str) -> &'static str {
        if self.insecure.iter().any(|r| r == host) {
            "http"
        } else {
            "https"
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
                // A static bearer credential is the token: oci-client hands it out unasked.
                if self
                    .logins
                    .get(registry)
                    .is_some_and(|l| matches!(l.auth, RegistryAuth::Bearer(_)))
                {
                    return None;
                }
                let host = reference.resolve_registry();
                let url = format!("{}://{host}/v2/", self.scheme(host));
                let response = self.http.get(&url).send().await.ok()?;
                let wants_token = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"));
                (!wants_token).then(|| registry.to_owned())
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
                    crate::duration::humanize(self.per_image)
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
                self.oci()
                    .auth(reference, auth, RegistryOperation::Pull)
                    .await
                    .map_err(|err| target.oci_failure(err))
            })
            .await?
        };
        let request = Request {
            reference,
            target,
            auth,
            token: token.as_deref(),
        };
        let mut wanted = reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_owned();
        let mut head_media_type = None;
        if self.head_first {
            let head = retrying(|| async {
                let response = self
                    .send(&request, Method::HEAD, &format!("manifests/{wanted}"))
                    .await?;
                Ok(Head {
                    digest: header_text(response.headers(), "docker-content-digest"),
                    media_type: header_text(response.headers(), CONTENT_TYPE.as_str()),
                })
            })
            .await?;
            if let Some(digest) = head.digest.as_deref().or(reference.digest())
                && let Some(platforms) = self.cache.get(digest)
            {
                tracing::debug!(
                    "{}: platforms of {digest} from the cache",
                    reference.whole()
                );
                return Ok(ImageInfo {
                    reference: reference.whole(),
                    digest: digest.to_owned(),
                    media_type: head.media_type,
                    platforms,
                });
            }
            // GET what the HEAD saw, even if the tag moves in between.
            if let Some(digest) = head.digest {
                wanted = digest;
            }
            head_media_type = head.media_type;
        }
        let manifest_path = format!("manifests/{wanted}");
        let manifest = retrying(|| self.fetch(&request, &manifest_path)).await?;
        // The digest asked for (by the reference or the HEAD) binds the body;
        // else the registry's header, else the body's own hash.
        let expected = wanted
            .contains(':')
            .then_some(wanted.as_str())
            .or(manifest.digest.as_deref());
        let digest = verified_digest(&manifest.body, expected)
            .map_err(|m| registry_error(target, format!("manifest: {m}")))?;
        let platforms =
            match parse_manifest(&manifest.body).map_err(|m| registry_error(target, m))? {
                ManifestKind::Index(platforms) => platforms,
                ManifestKind::Image { config_digest } => {
                    let config_path = format!("blobs/{config_digest}");
                    let config = retrying(|| self.fetch(&request, &config_path)).await?;
                    verified_digest(&config.body, Some(&config_digest))
                        .map_err(|m| registry_error(target, format!("config: {m}")))?;
                    vec![parse_config(&config.body).map_err(|m| registry_error(target, m))?]
                }
            };
        self.cache.put(&digest, &platforms);
        Ok(ImageInfo {
            reference: reference.whole(),
            digest,
            media_type: manifest.media_type.or(head_media_type),
            platforms,
        })
    }

    /// One request to the image's repository (`path` is `manifests/<tag>` or
    /// `blobs/<digest>`), with the token or the basic credentials; anything
    /// but 200 becomes the failure its status means. Made here rather than in
    /// oci-client, which pings `/v2/` before each request to a registry
    /// without tokens, and drops the headers that word a 429.
    async fn send(
        &self,
        request: &Request<'_>,
        method: Method,
        path: &str,
    ) -> Result<reqwest::Response, Failure> {
        let host = request.reference.resolve_registry();
        let url = format!(
            "{}://{host}/v2/{}/{path}",
            self.scheme(host),
            request.reference.repository()
        );
        let mut builder = self
            .http
            .request(method, &url)
            .header(ACCEPT, MEDIA_TYPES.join(", "));
        builder = match (request.token, request.auth) {
            (Some(token), _) => builder.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => builder.basic_auth(user, Some(password)),
            (None, _) => builder,
        };
        let response = builder
            .send()
            .await
            .map_err(|err| request.target.transport_failure(&err))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(request.target.status_failure(
                status,
                response.headers(),
                Timestamp::now(),
            ));
        }
        Ok(response)
    }

    /// A GET with its body (a manifest or a config blob: small documents).
    async fn fetch(&self, request: &Request<'_>, path: &str) -> Result<Fetched, Failure> {
        let response = self.send(request, Method::GET, path).await?;
        let digest = header_text(response.headers(), "docker-content-digest");
        let media_type = header_text(response.headers(), CONTENT_TYPE.as_str());
        let body = response
            .bytes()
            .await
            .map_err(|err| request.target.transport_failure(&err))?;
        Ok(Fetched {
            body,
            digest,
            media_type,
        })
    }
}

/// What one image's requests share.
struct Request<'a> {
    reference: &'a Reference,
    target: &'a Target,
    auth: &'a RegistryAuth,
    token: Option<&'a str>,
}

struct Head {
    digest: Option<String>,
    media_type: Option<String>,
}

struct Fetched {
    body: bytes::Bytes,
    digest: Option<String>,
    media_type: Option<String>,
}

const USER_AGENT: &str = concat!("kubectl-devenv/", env!("CARGO_PKG_VERSION"));

/// A header's value without parameters (`application/json; charset=utf-8` → `application/json`).
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
}

/// The body's sha256 digest, checked against `expected` when that is a
/// sha256 digest too: the platforms are cached under it, so a body that
/// does not match must not be believed.
fn verified_digest(body: &[u8], expected: Option<&str>) -> Result<String, String> {
    let hex: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let actual = format!("sha256:{hex}");
    match expected {
        Some(expected) if expected.starts_with("sha256:") && expected != actual => {
            Err(format!("the content's digest is {actual}, not {expected}"))
        }
        Some(expected) => Ok(expected.to_owned()),
        None => Ok(actual),
    }
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

    #[test]
    fn digests_are_computed_and_checked() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(verified_digest(b"", None).as_deref(), Ok(empty));
        assert_eq!(verified_digest(b"", Some(empty)).as_deref(), Ok(empty));
        let wrong = format!("sha256:{}", "0".repeat(64));
        assert!(
            verified_digest(b"", Some(&wrong))
                .unwrap_err()
                .contains(empty)
        );
        // Other algorithms are trusted as given.
        assert_eq!(
            verified_digest(b"", Some("sha512:ab")).as_deref(),
            Ok("sha512:ab")
        );
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
