//! Image references as Docker reads them: `mysql` is
//! `docker.io/library/mysql:latest`, and a host needs a dot, a port or `localhost`.

use oci_client::Reference;

/// Parses and normalizes an image reference. Registry hosts are matched
/// case-insensitively, as DNS names are.
pub fn normalize(image: &str) -> Result<Reference, String> {
    let image = image.trim();
    let parsed: Reference = image
        .parse()
        .map_err(|err| format!("invalid image reference \"{image}\": {err}"))?;
    let registry = parsed.registry().to_ascii_lowercase();
    let repository = parsed.repository().to_owned();
    Ok(match (parsed.tag(), parsed.digest()) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest").into()),
    })
}

/// The host part of a registry (`127.0.0.1:5000` → `127.0.0.1`, `[::1]:5000` → `::1`).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// Loopback registries are the only ones spoken to over plain HTTP without
/// `--insecure-registry`: traffic to them never leaves the machine.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether to use plain HTTP for this registry.
pub fn plain_http(registry: &str, insecure: &[String]) -> bool {
    is_loopback(registry)
        || insecure
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(registry))
}

/// The command that logs in to this registry.
pub fn login_command(registry: &str) -> String {
    if registry == "docker.io" {
        "docker login".to_owned()
    } else {
        format!("docker login {registry}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(image: &str) -> String {
        normalize(image).unwrap().whole()
    }

    #[test]
    fn docker_hub_short_names_expand() {
        assert_eq!(whole("mysql"), "docker.io/library/mysql:latest");
        assert_eq!(whole("mysql:5.7"), "docker.io/library/mysql:5.7");
        assert_eq!(whole("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(
            whole("index.docker.io/library/php:8.3-fpm"),
            "docker.io/library/php:8.3-fpm"
        );
        assert_eq!(
            whole("docker.io/mariadb"),
            "docker.io/library/mariadb:latest"
        );
    }

    #[test]
    fn other_registries_keep_their_host() {
        assert_eq!(whole("127.0.0.1:5000/multi:1"), "127.0.0.1:5000/multi:1");
        assert_eq!(whole("localhost/app"), "localhost/app:latest");
        assert_eq!(whole("GHCR.io/org/app:v1"), "ghcr.io/org/app:v1");
        assert_eq!(
            normalize("public.ecr.aws/docker/library/redis:7")
                .unwrap()
                .registry(),
            "public.ecr.aws"
        );
    }

    #[test]
    fn digests_are_kept_with_or_without_tag() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            whole(&format!("mysql@{digest}")),
            format!("docker.io/library/mysql@{digest}")
        );
        let both = normalize(&format!("mysql:8.4@{digest}")).unwrap();
        assert_eq!(both.tag(), Some("8.4"));
        assert_eq!(both.digest(), Some(digest.as_str()));
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(normalize("").is_err());
        assert!(normalize("mysql::5.7").is_err());
        assert!(normalize("mysql@sha256:short").is_err());
        assert!(normalize("a b").is_err());
    }

    #[test]
    fn only_loopback_is_plain_http_by_default() {
        assert!(plain_http("127.0.0.1:5000", &[]));
        assert!(plain_http("localhost:5000", &[]));
        assert!(plain_http("[::1]:5000", &[]));
        assert!(!plain_http("10.0.0.5:5000", &[]));
        assert!(!plain_http("docker.io", &[]));
        assert!(plain_http(
            "registry.lan:5000",
            &["registry.lan:5000".into()]
        ));
        assert!(!plain_http(
            "registry.lan:5001",
            &["registry.lan:5000".into()]
        ));
    }

    #[test]
    fn login_hint_names_the_registry() {
        assert_eq!(login_command("docker.io"), "docker login");
        assert_eq!(
            login_command("127.0.0.1:5001"),
            "docker login 127.0.0.1:5001"
        );
    }
}
