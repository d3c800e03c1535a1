//! Image references as Docker reads them (distribution's `reference`
//! grammar): `mysql` is `docker.io/library/mysql:latest`, and the first path
//! component is a registry host only with a dot, a port, or `localhost`.
//!
//! Parsed here rather than with oci-spec's `Reference::from_str`, whose
//! Unicode regex costs tens of milliseconds to compile on every run.

use oci_client::Reference;

const DOCKER_HUB: &str = "docker.io";

/// Parses and normalizes an image reference. Registry hosts are lower-cased:
/// DNS names are case-insensitive.
pub(crate) fn normalize(image: &str) -> Result<Reference, String> {
    let text = image.trim();
    let invalid = |why: String| format!("invalid image reference \"{text}\": {why}");
    if text.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    if let Some(digest) = digest {
        check_digest(digest).map_err(invalid)?;
    }
    // A tag's colon comes after the last slash; earlier ones belong to a port.
    let last_component = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_component..].rfind(':') {
        Some(i) => (
            &rest[..last_component + i],
            Some(&rest[last_component + i + 1..]),
        ),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag).map_err(invalid)?;
    }
    let (registry, repository) = split_registry(name);
    if let Some(registry) = registry {
        check_registry(registry).map_err(invalid)?;
    }
    for component in repository.split('/') {
        check_path_component(component).map_err(invalid)?;
    }
    let registry = match registry.map(str::to_ascii_lowercase) {
        None => DOCKER_HUB.to_owned(),
        Some(host) if host == "index.docker.io" => DOCKER_HUB.to_owned(),
        Some(host) => host,
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    };
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest").into()),
    })
}

/// Docker's rule: the first component is a host if it has a dot or a port,
/// is `localhost`, or has upper-case letters (repositories cannot).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.strip_prefix('[') {
        // [IPv6]:port
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => (None, port),
            _ => return Err(format!("registry \"{registry}\" is not a valid host")),
        },
        None => match registry.split_once(':') {
            Some((host, _)) => (Some(host), &registry[host.len()..]),
            None => (Some(registry), ""),
        },
    };
    let host_ok = host.is_none_or(|host| {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    });
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "registry \"{registry}\" is not a valid host[:port]"
        ))
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_path_component(component: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "repository component \"{component}\" must be lower-case letters and digits, \
             joined by '.', '_', '__' or '-'"
        )
    };
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let starts_and_ends = component.starts_with(alphanumeric) && component.ends_with(alphanumeric);
    if !starts_and_ends
        || !component
            .chars()
            .all(|c| alphanumeric(c) || "._-".contains(c))
    {
        return Err(bad());
    }
    // Between alphanumeric runs: one '.', one or two '_', or any number of '-'.
    let separators_ok = component
        .split(alphanumeric)
        .filter(|s| !s.is_empty())
        .all(|s| s == "." || s == "_" || s == "__" || s.chars().all(|c| c == '-'));
    if separators_ok { Ok(()) } else { Err(bad()) }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = (1..=128).contains(&tag.len())
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!("tag \"{tag}\" is not valid"))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let hex_len = match digest.split_once(':') {
        Some(("sha256", hex)) => (hex, 64),
        Some(("sha384", hex)) => (hex, 96),
        Some(("sha512", hex)) => (hex, 128),
        _ => return Err(format!("digest \"{digest}\" is not sha256:<64 hex digits>")),
    };
    let (hex, len) = hex_len;
    if hex.len() == len && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("digest \"{digest}\" is not sha256:<64 hex digits>"))
    }
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
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether to use plain HTTP for this registry.
pub(crate) fn plain_http(registry: &str, insecure: &[String]) -> bool {
    is_loopback(registry)
        || insecure
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(registry))
}

/// The command that logs in to this registry.
pub(crate) fn login_command(registry: &str) -> String {
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
    fn ports_ipv6_and_odd_but_valid_names() {
        assert_eq!(whole("[::1]:5000/app:1"), "[::1]:5000/app:1");
        assert_eq!(whole("localhost:5000"), "docker.io/library/localhost:5000");
        assert_eq!(
            whole("registry.example.com/a__b/c-d.e:v1.2_3"),
            "registry.example.com/a__b/c-d.e:v1.2_3"
        );
        assert_eq!(
            whole("Registry.Example.com/team/app"),
            "registry.example.com/team/app:latest"
        );
        assert_eq!(whole("my---name"), "docker.io/library/my---name:latest");
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(normalize("").is_err());
        assert!(normalize("mysql::5.7").is_err());
        assert!(normalize("mysql@sha256:short").is_err());
        assert!(normalize("a b").is_err());
        assert!(
            normalize("Upper/case").is_ok(),
            "an upper-case first component is a host"
        );
        assert!(normalize("team/Upper").is_err());
        assert!(normalize("a..b").is_err());
        assert!(normalize("a___b").is_err());
        assert!(normalize("-a").is_err());
        assert!(normalize("host:port/app").is_err());
        assert!(normalize("app:-tag").is_err());
        assert!(normalize(&format!("app:{}", "t".repeat(129))).is_err());
        assert!(normalize("app@sha256:zz").is_err());
        let err = normalize("mysql:5.7:x").unwrap_err();
        assert!(
            err.starts_with("invalid image reference \"mysql:5.7:x\""),
            "{err}"
        );
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
