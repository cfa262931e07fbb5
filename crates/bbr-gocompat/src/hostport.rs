//! `host:port` the way Go's `net` package reads and writes it: [`split_host_port`] is
//! `net.SplitHostPort` (same rules, same error texts), [`join_host_port`] is
//! `net.JoinHostPort`, and [`host_and_port`] is the "host with an optional port" that
//! director answers, `--host`, `--target` and proxy URLs use: `10.0.0.5`, `10.0.0.5:2222`,
//! `[::1]:2222`, `[::1]` and a bare `::1` (a bare IPv6 address has no port).

use std::net::Ipv6Addr;

/// An address that cannot be split; the text follows Go's `net.AddrError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// The address's shape is wrong (missing port, too many colons, stray brackets).
    #[error("address {addr}: {why}")]
    Address {
        /// The address as given.
        addr: String,
        /// Go's reason text.
        why: &'static str,
    },
    /// The port is not a number from 0 to 65535.
    #[error("address {addr}: invalid port {port:?}")]
    Port {
        /// The address as given.
        addr: String,
        /// The port text.
        port: String,
    },
}

const MISSING_PORT: &str = "missing port in address";
const TOO_MANY_COLONS: &str = "too many colons in address";

fn address(addr: &str, why: &'static str) -> HostPortError {
    HostPortError::Address {
        addr: addr.to_string(),
        why,
    }
}

/// Go's `net.SplitHostPort`: `host:port`, `[host]:port` or `[host%zone]:port` into host
/// and port text (brackets removed). The port may be empty (`host:`) and is not checked.
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), HostPortError> {
    let Some(i) = hostport.rfind(':') else {
        return Err(address(hostport, MISSING_PORT));
    };
    let (host, j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(address(hostport, "missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(address(hostport, MISSING_PORT));
        } else if end + 1 != i {
            return Err(if hostport.as_bytes()[end + 1] == b':' {
                address(hostport, TOO_MANY_COLONS)
            } else {
                address(hostport, MISSING_PORT)
            });
        }
        host = &hostport[1..end];
        (j, k) = (1, end + 1);
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return Err(address(hostport, TOO_MANY_COLONS));
        }
        (j, k) = (0, 0);
    }
    if hostport[j..].contains('[') {
        return Err(address(hostport, "unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(address(hostport, "unexpected ']' in address"));
    }
    Ok((host, &hostport[i + 1..]))
}

/// Go's `net.JoinHostPort`: `host:port`, with brackets around a host containing `:`.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A host with an optional port: [`split_host_port`] when the text has a port, otherwise
/// the host (brackets removed) and `default_port`. A bare IPv6 address (`::1`) is a host
/// without a port; an empty port (`host:`) means `default_port`. The host may be empty;
/// callers that need one check.
pub fn host_and_port(text: &str, default_port: u16) -> Result<(String, u16), HostPortError> {
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text.to_string(), default_port));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
        && !inner.contains(['[', ']'])
    {
        return Ok((inner.to_string(), default_port));
    }
    if !text.contains(':') && !text.contains(['[', ']']) {
        return Ok((text.to_string(), default_port));
    }
    let (host, port) = split_host_port(text)?;
    let port = if port.is_empty() {
        default_port
    } else {
        port.parse().map_err(|_| HostPortError::Port {
            addr: text.to_string(),
            port: port.to_string(),
        })?
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_go() {
        let ok: &[(&str, (&str, &str))] = &[
            ("localhost:http", ("localhost", "http")),
            ("127.0.0.1:22", ("127.0.0.1", "22")),
            ("[::1]:22", ("::1", "22")),
            ("[fe80::1%lo0]:80", ("fe80::1%lo0", "80")),
            (":80", ("", "80")),
            ("host:", ("host", "")),
            ("[::1]:", ("::1", "")),
        ];
        for (input, want) in ok {
            assert_eq!(split_host_port(input), Ok(*want), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("golang.org", "address golang.org: missing port in address"),
            ("::1:22", "address ::1:22: too many colons in address"),
            ("[::1]", "address [::1]: missing port in address"),
            (
                "[::1]:22:33",
                "address [::1]:22:33: too many colons in address",
            ),
            ("[::1]x:22", "address [::1]x:22: missing port in address"),
            ("[::1:22", "address [::1:22: missing ']' in address"),
            ("a]b:22", "address a]b:22: unexpected ']' in address"),
            ("a[b:22", "address a[b:22: unexpected '[' in address"),
        ];
        for (input, want) in bad {
            assert_eq!(
                split_host_port(input).unwrap_err().to_string(),
                *want,
                "{input}"
            );
        }
    }

    #[test]
    fn join_brackets_ipv6() {
        assert_eq!(join_host_port("127.0.0.1", 5432), "127.0.0.1:5432");
        assert_eq!(join_host_port("db.example", "3306"), "db.example:3306");
        assert_eq!(join_host_port("::1", 22), "[::1]:22");
    }

    /// The cases where the former copies disagreed: `--host` split at the first colon (so
    /// `::1` and `::1:22` failed), the proxy parser at the last one (so `::1:22` became host
    /// `::1`), and the director's accepted anything that did not parse as a socket address
    /// as a host (`10.0.0.5:x` became host `10.0.0.5:x`, port 22).
    #[test]
    fn host_with_optional_port() {
        let ok: &[(&str, (&str, u16))] = &[
            ("10.0.0.5", ("10.0.0.5", 22)),
            ("10.0.0.5:2222", ("10.0.0.5", 2222)),
            ("d.example", ("d.example", 22)),
            ("d.example:", ("d.example", 22)),
            ("::1", ("::1", 22)),
            ("fe80::1", ("fe80::1", 22)),
            ("[::1]", ("::1", 22)),
            ("[::1]:2200", ("::1", 2200)),
        ];
        for (input, (host, port)) in ok {
            assert_eq!(
                host_and_port(input, 22),
                Ok((host.to_string(), *port)),
                "{input}"
            );
        }
        for input in ["::1:22x", "10.0.0.5:x", "10.0.0.5:70000", "[::1", "a:b:c"] {
            assert!(host_and_port(input, 22).is_err(), "{input}");
        }
        assert_eq!(
            host_and_port("10.0.0.5:x", 22).unwrap_err().to_string(),
            "address 10.0.0.5:x: invalid port \"x\""
        );
    }
}
