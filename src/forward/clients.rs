//! The ready-to-paste client command printed for each mapping, chosen by the
//! component's kind (its name) or, failing that, by the well-known port.

use std::net::IpAddr;

/// The database name and user the stack's catalog creates (`src/catalog.yaml`).
const STACK_USER: &str = "app";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mysql,
    Postgres,
    Redis,
    Mongo,
    Memcached,
    Http,
    Https,
}

fn kind_by_name(component: &str) -> Option<Kind> {
    let name = component.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if has(&["mysql", "mariadb", "percona"]) {
        Some(Kind::Mysql)
    } else if has(&["postgres", "pgsql"]) {
        Some(Kind::Postgres)
    } else if has(&["redis", "valkey", "keydb"]) {
        Some(Kind::Redis)
    } else if has(&["mongo"]) {
        Some(Kind::Mongo)
    } else if has(&["memcache"]) {
        Some(Kind::Memcached)
    } else {
        None
    }
}

fn kind_by_port(port: u16) -> Option<Kind> {
    match port {
        3306 => Some(Kind::Mysql),
        5432 => Some(Kind::Postgres),
        6379 => Some(Kind::Redis),
        27017 => Some(Kind::Mongo),
        11211 => Some(Kind::Memcached),
        80 | 3000 | 5000 | 8000 | 8025 | 8080 | 8081 | 9200 | 15672 => Some(Kind::Http),
        443 | 8443 => Some(Kind::Https),
        _ => None,
    }
}

/// The address a client should dial: a wildcard listen address is reached
/// over loopback.
fn dial_host(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// `host:port` for URLs, with IPv6 in brackets.
fn url_authority(host: IpAddr, port: u16) -> String {
    match host {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

/// A command that connects to the forward, or `None` when the component is
/// of no kind we know a client for (PHP-FPM's FastCGI, for one).
pub(crate) fn client_command(
    component: &str,
    remote_port: u16,
    address: IpAddr,
    local_port: u16,
) -> Option<String> {
    let host = dial_host(address);
    let kind = kind_by_name(component).or_else(|| kind_by_port(remote_port))?;
    let default_host = host == IpAddr::from([127, 0, 0, 1]);
    Some(match kind {
        // `-h 127.0.0.1`, not `localhost`: the mysql client takes `localhost` to mean its Unix socket.
        Kind::Mysql => format!("mysql -h {host} -P {local_port} -u {STACK_USER} -p"),
        Kind::Postgres => format!("psql -h {host} -p {local_port} -U {STACK_USER} {STACK_USER}"),
        Kind::Redis if default_host => format!("redis-cli -p {local_port}"),
        Kind::Redis => format!("redis-cli -h {host} -p {local_port}"),
        Kind::Mongo => format!("mongosh --host {host} --port {local_port}"),
        Kind::Memcached => format!("telnet {host} {local_port}"),
        Kind::Http => format!("curl http://{}/", url_authority(host, local_port)),
        Kind::Https => format!("curl -k https://{}/", url_authority(host, local_port)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn databases_by_component_name() {
        assert_eq!(
            client_command("mysql", 3306, loopback(), 3306).as_deref(),
            Some("mysql -h 127.0.0.1 -P 3306 -u app -p")
        );
        assert_eq!(
            client_command("mariadb", 3306, loopback(), 3307).as_deref(),
            Some("mysql -h 127.0.0.1 -P 3307 -u app -p")
        );
        assert_eq!(
            client_command("redis", 6379, loopback(), 6379).as_deref(),
            Some("redis-cli -p 6379")
        );
        assert_eq!(
            client_command("postgres", 5432, loopback(), 5432).as_deref(),
            Some("psql -h 127.0.0.1 -p 5432 -U app app")
        );
    }

    #[test]
    fn unknown_names_fall_back_to_the_well_known_port() {
        assert_eq!(
            client_command("cache", 6379, loopback(), 16379).as_deref(),
            Some("redis-cli -p 16379")
        );
        assert_eq!(
            client_command("web", 80, loopback(), 8080).as_deref(),
            Some("curl http://127.0.0.1:8080/")
        );
        assert_eq!(client_command("php", 9000, loopback(), 9000), None);
    }

    #[test]
    fn other_addresses_are_spelled_out() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            client_command("redis", 6379, v6, 6379).as_deref(),
            Some("redis-cli -h ::1 -p 6379")
        );
        assert_eq!(
            client_command("web", 8080, v6, 8080).as_deref(),
            Some("curl http://[::1]:8080/")
        );
        let everywhere: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(
            client_command("mysql", 3306, everywhere, 3306).as_deref(),
            Some("mysql -h 127.0.0.1 -P 3306 -u app -p")
        );
    }
}
