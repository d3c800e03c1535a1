//! Local ports: the `-p` syntax, and which port to listen on when the user
//! did not fix one (the service port if it is free, else the next free one).

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;

/// One `-p` flag: `mysql=3307`, or `php:fastcgi=9001` / `php:9000=9001` to
/// pick one port of a Service that has several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub component: String,
    pub service_port: Option<ServicePortRef>,
    /// 0 asks the system for any free port.
    pub local: u16,
}

/// A Service port named by number or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePortRef {
    Number(u16),
    Name(String),
}

impl ServicePortRef {
    pub fn matches(&self, port: u16, name: Option<&str>) -> bool {
        match self {
            Self::Number(number) => *number == port,
            Self::Name(wanted) => name == Some(wanted.as_str()),
        }
    }
}

impl std::fmt::Display for ServicePortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl std::fmt::Display for PortRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.service_port {
            Some(port) => write!(f, "{}:{port}={}", self.component, self.local),
            None => write!(f, "{}={}", self.component, self.local),
        }
    }
}

/// Parses `COMPONENT=PORT` or `COMPONENT:SERVICE_PORT=PORT` (clap value parser).
pub(crate) fn parse_port_request(text: &str) -> Result<PortRequest, String> {
    let invalid = |why: &str| {
        format!("invalid port mapping \"{text}\": {why} (expected COMPONENT=PORT, e.g. mysql=3307)")
    };
    let (target, local) = text.split_once('=').ok_or_else(|| invalid("missing '='"))?;
    let local: u16 = local
        .trim()
        .parse()
        .map_err(|_| invalid("the local port must be a number from 0 to 65535"))?;
    let (component, service_port) = match target.split_once(':') {
        Some((component, port)) if !port.is_empty() => {
            let port = match port.parse::<u16>() {
                Ok(0) => return Err(invalid("service port 0 does not exist")),
                Ok(number) => ServicePortRef::Number(number),
                Err(_) => ServicePortRef::Name(port.to_owned()),
            };
            (component, Some(port))
        }
        Some(_) => return Err(invalid("empty service port after ':'")),
        None => (target, None),
    };
    if component.is_empty() {
        return Err(invalid("missing component"));
    }
    Ok(PortRequest {
        component: component.to_owned(),
        service_port,
        local,
    })
}

/// How to choose the local port of one mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalPort {
    /// Given with `-p`: this port or a clear error.
    Fixed(u16),
    /// The service port if free, else the next free one.
    Auto { preferred: u16 },
    /// The first free port of a range the user allotted (`run --port-range`).
    InRange { first: u16, last: u16 },
}

/// Parses `LO-HI` (clap value parser for `--port-range`).
pub(crate) fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let invalid =
        || format!("invalid port range \"{text}\" (expected FIRST-LAST, e.g. 20000-20100)");
    let (first, last) = text.split_once('-').ok_or_else(invalid)?;
    let first: u16 = first.trim().parse().map_err(|_| invalid())?;
    let last: u16 = last.trim().parse().map_err(|_| invalid())?;
    if first == 0 || first > last {
        return Err(invalid());
    }
    Ok((first, last))
}

/// How many ports above the preferred one are tried before asking the
/// system for any free port.
const NEARBY_PORTS: u16 = 100;

/// The ports tried, in order, when the user did not fix one. A privileged
/// service port (80, 443) continues at 8000 above it (8080, 8443), the
/// ports developers expect, since binding below 1024 usually needs root.
/// Ends with 0: any free port.
pub(crate) fn candidate_ports(preferred: u16) -> impl Iterator<Item = u16> {
    let then_from = if preferred < 1024 {
        preferred + 8000
    } else {
        preferred.saturating_add(1)
    };
    let nearby = (0..NEARBY_PORTS).filter_map(move |i| then_from.checked_add(i));
    std::iter::once(preferred)
        .filter(|port| *port != 0)
        .chain(nearby.filter(move |port| *port != preferred))
        .chain(std::iter::once(0))
}

/// Opens the listener of one mapping. An automatic port skips ports that are
/// taken or need privileges; a fixed one fails with the system's error.
pub(crate) async fn bind(address: IpAddr, port: LocalPort) -> io::Result<TcpListener> {
    let candidates: Box<dyn Iterator<Item = u16> + Send> = match port {
        LocalPort::Fixed(port) => return TcpListener::bind(SocketAddr::new(address, port)).await,
        LocalPort::Auto { preferred } => Box::new(candidate_ports(preferred)),
        LocalPort::InRange { first, last } => Box::new(first..=last),
    };
    let mut last_error = None;
    for candidate in candidates {
        match TcpListener::bind(SocketAddr::new(address, candidate)).await {
            Ok(listener) => return Ok(listener),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) =>
            {
                last_error = Some(err)
            }
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free local port")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_and_local_port() {
        assert_eq!(
            parse_port_request("mysql=3307"),
            Ok(PortRequest {
                component: "mysql".into(),
                service_port: None,
                local: 3307
            })
        );
    }

    #[test]
    fn one_port_of_a_multi_port_service() {
        let by_name = parse_port_request("php:fastcgi=9001").unwrap();
        assert_eq!(
            by_name.service_port,
            Some(ServicePortRef::Name("fastcgi".into()))
        );
        let by_number = parse_port_request("php:9000=0").unwrap();
        assert_eq!(by_number.service_port, Some(ServicePortRef::Number(9000)));
        assert_eq!(by_number.local, 0);
        assert_eq!(by_number.to_string(), "php:9000=0");
    }

    #[test]
    fn malformed_mappings_are_refused_with_the_reason() {
        for (bad, why) in [
            ("mysql", "missing '='"),
            ("=3306", "missing component"),
            ("mysql=70000", "from 0 to 65535"),
            ("mysql=abc", "from 0 to 65535"),
            ("mysql:=3306", "empty service port"),
            ("mysql:0=3306", "service port 0"),
        ] {
            let err = parse_port_request(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("COMPONENT=PORT"), "{err}");
        }
    }

    #[test]
    fn service_port_first_then_the_next_ones_then_any() {
        let ports: Vec<u16> = candidate_ports(3306).collect();
        assert_eq!(&ports[..3], &[3306, 3307, 3308]);
        assert_eq!(ports.len(), 1 + NEARBY_PORTS as usize + 1);
        assert_eq!(ports.last(), Some(&0));
    }

    #[test]
    fn privileged_ports_continue_where_developers_expect() {
        let ports: Vec<u16> = candidate_ports(80).collect();
        assert_eq!(&ports[..3], &[80, 8080, 8081]);
    }

    #[test]
    fn no_candidate_overflows_past_65535() {
        let ports: Vec<u16> = candidate_ports(65535).collect();
        assert_eq!(ports, vec![65535, 0]);
    }

    #[tokio::test]
    async fn a_taken_port_moves_to_the_next_free_one() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let taken = TcpListener::bind((loopback, 0)).await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let moved = bind(loopback, LocalPort::Auto { preferred: port })
            .await
            .unwrap();
        assert_ne!(moved.local_addr().unwrap().port(), port);
        let fixed = bind(loopback, LocalPort::Fixed(port)).await.unwrap_err();
        assert_eq!(fixed.kind(), io::ErrorKind::AddrInUse);
        let range = LocalPort::InRange {
            first: port,
            last: port,
        };
        assert_eq!(
            bind(loopback, range).await.unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("20000-20100"), Ok((20000, 20100)));
        assert_eq!(parse_port_range("3306-3306"), Ok((3306, 3306)));
        for bad in ["20000", "2-1", "0-10", "a-b", "1-70000"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }
}
