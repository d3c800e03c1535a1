//! Why one image could not be checked, worded for the user, and the HTTP
//! facts (status, rate-limit headers) that decide between those reasons.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::reference::login_command;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ImageError {
    #[error("{0}")]
    InvalidReference(String),

    #[error("not found: {registry}/{repository} has no {wanted}")]
    NotFound {
        registry: String,
        repository: String,
        /// `tag "5.7"` or `manifest sha256:...`.
        wanted: String,
    },

    #[error(
        "unauthorized: {registry} refused {}; run `{}`",
        describe_credentials(credentials.as_deref(), repository),
        login_command(registry)
    )]
    Unauthorized {
        registry: String,
        repository: String,
        /// Where the refused credentials came from, `None` when anonymous.
        credentials: Option<String>,
    },

    #[error("unreachable: cannot reach {registry}: {cause}")]
    Unreachable { registry: String, cause: String },

    #[error("rate-limited by {registry}{}", reset_hint(reset.as_ref(), limit.as_deref()))]
    RateLimited {
        registry: String,
        /// When the budget refills, if the registry says.
        reset: Option<Timestamp>,
        /// The registry's own statement of its limit (`100;w=21600`).
        limit: Option<String>,
    },

    #[error("registry error from {registry}: {message}")]
    Registry { registry: String, message: String },
}

fn describe_credentials(credentials: Option<&str>, repository: &str) -> String {
    match credentials {
        Some(source) => format!("the credentials from {source} for {repository}"),
        None => format!("anonymous access to {repository} (it is private, or it does not exist)"),
    }
}

fn reset_hint(reset: Option<&Timestamp>, limit: Option<&str>) -> String {
    let mut hint = String::new();
    if let Some(limit) = limit {
        hint.push_str(&format!(" (limit {})", describe_limit(limit)));
    }
    match reset {
        Some(reset) => hint.push_str(&format!(
            "; try again after {}",
            reset
                .round(k8s_openapi::jiff::Unit::Second)
                .unwrap_or(*reset)
        )),
        None => hint.push_str("; try again later, or log in for a higher limit"),
    }
    hint
}

/// `100;w=21600` → `100 per 6h`.
fn describe_limit(limit: &str) -> String {
    match limit.split_once(";w=") {
        Some((count, window)) => match window.trim().parse::<u64>() {
            Ok(secs) if secs % 3600 == 0 => format!("{} per {}h", count.trim(), secs / 3600),
            Ok(secs) => format!(
                "{} per {}",
                count.trim(),
                crate::duration::humanize(Duration::from_secs(secs))
            ),
            Err(_) => limit.to_owned(),
        },
        None => limit.to_owned(),
    }
}

impl ImageError {
    /// A stable, machine-readable name for `-o json`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ImageError::InvalidReference(_) => "invalidReference",
            ImageError::NotFound { .. } => "notFound",
            ImageError::Unauthorized { .. } => "unauthorized",
            ImageError::Unreachable { .. } => "unreachable",
            ImageError::RateLimited { .. } => "rateLimited",
            ImageError::Registry { .. } => "registryError",
        }
    }
}

/// The problem as `-o json|yaml` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    pub kind: &'static str,
    pub message: String,
}

impl From<&ImageError> for Problem {
    fn from(err: &ImageError) -> Self {
        Self {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

/// An attempt's failure: retried on 429, 5xx and timeouts, final otherwise.
#[derive(Debug)]
pub(crate) enum Failure {
    Final(ImageError),
    Retry {
        error: ImageError,
        /// What the registry asked us to wait (`Retry-After`).
        wait: Option<Duration>,
    },
}

/// What the request was about, to word its failure.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub registry: String,
    pub repository: String,
    /// `tag "5.7"` or `manifest sha256:...`, for "not found".
    pub wanted: String,
    pub credentials: Option<String>,
}

impl Target {
    fn not_found(&self) -> ImageError {
        ImageError::NotFound {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            wanted: self.wanted.clone(),
        }
    }

    fn unauthorized(&self) -> ImageError {
        ImageError::Unauthorized {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            credentials: self.credentials.clone(),
        }
    }

    fn registry_error(&self, message: impl Into<String>) -> ImageError {
        ImageError::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// Classifies an HTTP answer that was not 200 (our own HEAD requests).
    pub(crate) fn status_failure(
        &self,
        status: u16,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Failure {
        match status {
            404 => Failure::Final(self.not_found()),
            401 | 403 => Failure::Final(self.unauthorized()),
            429 => Failure::Retry {
                error: self.rate_limited(headers, now),
                wait: retry_after(headers, now),
            },
            500..=599 => Failure::Retry {
                error: self.registry_error(format!("HTTP {status}")),
                wait: retry_after(headers, now),
            },
            other => Failure::Final(self.registry_error(format!("unexpected HTTP {other}"))),
        }
    }

    pub(crate) fn rate_limited(&self, headers: &HeaderMap, now: Timestamp) -> ImageError {
        ImageError::RateLimited {
            registry: self.registry.clone(),
            reset: rate_limit_reset(headers, now),
            limit: header(headers, "ratelimit-limit"),
        }
    }

    /// A failure of a reqwest request made by us.
    pub(crate) fn transport_failure(&self, err: &reqwest::Error) -> Failure {
        let cause = crate::cluster::root_cause(err);
        let error = ImageError::Unreachable {
            registry: self.registry.clone(),
            cause,
        };
        // A connect that timed out is a firewall or a wrong address, not a busy registry.
        if err.is_timeout() && !err.is_connect() {
            Failure::Retry { error, wait: None }
        } else {
            Failure::Final(error)
        }
    }

    /// Classifies an oci-client error (manifest GET, blob GET, token handshake).
    pub(crate) fn oci_failure(&self, err: OciDistributionError) -> Failure {
        match err {
            OciDistributionError::RequestError(err) => self.transport_failure(&err),
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => Failure::Final(self.unauthorized()),
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let message = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    Failure::Final(self.not_found())
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    Failure::Final(self.unauthorized())
                } else if codes.contains(&&OciErrorCode::Toomanyrequests) {
                    Failure::Retry {
                        error: ImageError::RateLimited {
                            registry: self.registry.clone(),
                            reset: None,
                            limit: None,
                        },
                        wait: None,
                    }
                } else {
                    Failure::Final(self.registry_error(message))
                }
            }
            OciDistributionError::ServerError { code, message, .. } => {
                let mut failure = self.status_failure(code, &HeaderMap::new(), Timestamp::now());
                if let Failure::Final(ImageError::Registry { message: m, .. })
                | Failure::Retry {
                    error: ImageError::Registry { message: m, .. },
                    ..
                } = &mut failure
                    && !message.trim().is_empty()
                {
                    *m = format!("{m}: {}", first_line(&message));
                }
                failure
            }
            other => Failure::Final(self.registry_error(first_line(&other.to_string()))),
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    line.chars().take(200).collect()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = header(headers, "retry-after")?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(&value)
        .ok()?;
    let wait = at.duration_since(now);
    Some(Duration::from_secs(wait.as_secs().max(0).unsigned_abs()))
}

/// When the rate limit resets: `Retry-After`, else `RateLimit-Reset` /
/// `X-RateLimit-Reset` (seconds from now, or a Unix time when that large).
pub(crate) fn rate_limit_reset(headers: &HeaderMap, now: Timestamp) -> Option<Timestamp> {
    if let Some(wait) = retry_after(headers, now) {
        return now.checked_add(SignedDuration::try_from(wait).ok()?).ok();
    }
    let value =
        header(headers, "ratelimit-reset").or_else(|| header(headers, "x-ratelimit-reset"))?;
    let number: i64 = value.split(';').next()?.trim().parse().ok()?;
    if number > 1_000_000_000 {
        Timestamp::from_second(number).ok()
    } else {
        now.checked_add(SignedDuration::from_secs(number)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn now() -> Timestamp {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn target(credentials: Option<&str>) -> Target {
        Target {
            registry: "127.0.0.1:5001".into(),
            repository: "private/app".into(),
            wanted: "tag \"1\"".into(),
            credentials: credentials.map(Into::into),
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "30")]), now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Fri, 27 Nov 2026 12:01:00 GMT")]),
                now()
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after(&headers(&[]), now()), None);
    }

    #[test]
    fn reset_time_from_the_headers_registries_send() {
        let at = |h: &[(&'static str, &str)]| {
            rate_limit_reset(&headers(h), now()).map(|t| t.to_string())
        };
        assert_eq!(
            at(&[("retry-after", "3600")]).as_deref(),
            Some("2026-11-27T13:00:00Z")
        );
        assert_eq!(
            at(&[("ratelimit-reset", "120")]).as_deref(),
            Some("2026-11-27T12:02:00Z")
        );
        assert_eq!(
            at(&[("x-ratelimit-reset", "1795780800")]).as_deref(),
            Some("2026-11-27T12:00:00Z")
        );
        assert_eq!(at(&[("ratelimit-remaining", "0;w=21600")]), None);
    }

    #[test]
    fn rate_limit_message_has_reset_and_limit() {
        let err = target(None).rate_limited(
            &headers(&[("retry-after", "60"), ("ratelimit-limit", "100;w=21600")]),
            now(),
        );
        assert_eq!(
            err.to_string(),
            "rate-limited by 127.0.0.1:5001 (limit 100 per 6h); try again after 2026-11-27T12:01:00Z"
        );
        let err = target(None).rate_limited(&headers(&[]), now());
        assert!(
            err.to_string()
                .ends_with("try again later, or log in for a higher limit")
        );
    }

    #[test]
    fn statuses_map_to_reasons() {
        let t = target(None);
        let h = HeaderMap::new();
        assert!(matches!(
            t.status_failure(404, &h, now()),
            Failure::Final(ImageError::NotFound { .. })
        ));
        assert!(matches!(
            t.status_failure(401, &h, now()),
            Failure::Final(ImageError::Unauthorized { .. })
        ));
        assert!(matches!(
            t.status_failure(429, &h, now()),
            Failure::Retry {
                error: ImageError::RateLimited { .. },
                ..
            }
        ));
        assert!(matches!(
            t.status_failure(503, &h, now()),
            Failure::Retry {
                error: ImageError::Registry { .. },
                ..
            }
        ));
        assert!(matches!(
            t.status_failure(418, &h, now()),
            Failure::Final(ImageError::Registry { .. })
        ));
    }

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: oci_client::errors::OciEnvelope {
                errors: vec![oci_client::errors::OciError {
                    code,
                    message: "from the registry".into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://127.0.0.1:5001/v2/private/app/manifests/1".into(),
        }
    }

    #[test]
    fn registry_error_codes_map_to_reasons() {
        let t = target(None);
        assert!(matches!(
            t.oci_failure(envelope(OciErrorCode::ManifestUnknown)),
            Failure::Final(ImageError::NotFound { .. })
        ));
        assert!(matches!(
            t.oci_failure(envelope(OciErrorCode::NameUnknown)),
            Failure::Final(ImageError::NotFound { .. })
        ));
        assert!(matches!(
            t.oci_failure(envelope(OciErrorCode::Denied)),
            Failure::Final(ImageError::Unauthorized { .. })
        ));
        assert!(matches!(
            t.oci_failure(envelope(OciErrorCode::Toomanyrequests)),
            Failure::Retry {
                error: ImageError::RateLimited { .. },
                ..
            }
        ));
        let Failure::Final(other) = t.oci_failure(envelope(OciErrorCode::Unsupported)) else {
            panic!("unsupported is final")
        };
        assert_eq!(
            other.to_string(),
            "registry error from 127.0.0.1:5001: from the registry"
        );
        let server = OciDistributionError::ServerError {
            code: 502,
            url: String::new(),
            message: "bad gateway\n<html>".into(),
        };
        let Failure::Retry { error, .. } = t.oci_failure(server) else {
            panic!("5xx is retried")
        };
        assert_eq!(
            error.to_string(),
            "registry error from 127.0.0.1:5001: HTTP 502: bad gateway"
        );
    }

    #[test]
    fn unauthorized_says_how_to_log_in() {
        let Failure::Final(anonymous) = target(None).status_failure(401, &HeaderMap::new(), now())
        else {
            panic!("401 is final")
        };
        assert_eq!(
            anonymous.to_string(),
            "unauthorized: 127.0.0.1:5001 refused anonymous access to private/app (it is private, or it does not exist); run `docker login 127.0.0.1:5001`"
        );
        let Failure::Final(refused) =
            target(Some("/tmp/d/config.json")).status_failure(401, &HeaderMap::new(), now())
        else {
            panic!("401 is final")
        };
        assert!(
            refused
                .to_string()
                .contains("the credentials from /tmp/d/config.json"),
            "{refused}"
        );
    }
}
