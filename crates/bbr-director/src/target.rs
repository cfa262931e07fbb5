//! `--target` and `--ca-cert` as bosh-cli reads them: the scheme is optional, the host
//! required, the port defaults to 25555 and the director is always spoken to over HTTPS;
//! the CA is a path or the PEM text itself.

use std::path::Path;

/// A director address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port (default 25555).
    pub port: u16,
}

impl Target {
    /// Parses a `--target` value; errors carry bosh-cli's `invalid bosh URL` prefix.
    pub fn parse(text: &str) -> Result<Target, String> {
        let invalid = |why: &str| format!("invalid bosh URL - {text:?}: {why}");
        let rest = match text.split_once("://") {
            Some((_, r)) => r,
            None => text,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) =
            bbr_gocompat::hostport::host_and_port(authority, 25555).map_err(|e| match e {
                bbr_gocompat::HostPortError::Port { .. } => invalid("the port is not a number"),
                other => invalid(&other.to_string()),
            })?;
        if host.is_empty() {
            return Err(invalid("expected a host"));
        }
        Ok(Target { host, port })
    }

    /// The HTTPS base URL.
    pub fn url(&self) -> String {
        format!(
            "https://{}",
            bbr_gocompat::join_host_port(&self.host, self.port)
        )
    }
}

/// The director's CA certificate, given as a path or as PEM text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert(pub String);

impl CaCert {
    /// Reads the value of `--ca-cert` / `CA_CERT` / `BOSH_CA_CERT`: PEM text is used as is,
    /// anything else is a file to read. Errors are bosh-cli's texts.
    pub fn load(value: &str) -> Result<CaCert, String> {
        let pem = if value.trim_start().starts_with("-----BEGIN") {
            value.to_string()
        } else {
            std::fs::read_to_string(Path::new(value)).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!("open {value}: no such file or directory")
                } else {
                    format!("open {value}: {e}")
                }
            })?
        };
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err("Missing PEM block".to_string());
        }
        Ok(CaCert(pem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_like_bosh_cli() {
        assert_eq!(
            Target::parse("10.0.0.6").unwrap(),
            Target {
                host: "10.0.0.6".into(),
                port: 25555
            }
        );
        assert_eq!(Target::parse("https://d.example:443").unwrap().port, 443);
        assert_eq!(Target::parse("d.example:2555/").unwrap().port, 2555);
        assert_eq!(
            Target::parse("[::1]:25555").unwrap().url(),
            "https://[::1]:25555"
        );
        assert!(
            Target::parse("https://:25555")
                .unwrap_err()
                .starts_with("invalid bosh URL")
        );
        assert!(
            Target::parse("h:port")
                .unwrap_err()
                .contains("invalid bosh URL")
        );
        // A bare IPv6 address is a host on the default port (it used to split at its last
        // colon into host "::" and port 1).
        assert_eq!(
            Target::parse("::1").unwrap(),
            Target {
                host: "::1".into(),
                port: 25555
            }
        );
        assert!(Target::parse("https://[::1/").is_err());
    }

    #[test]
    fn ca_from_text_or_file() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(CaCert::load(pem).unwrap().0, pem);
        assert_eq!(
            CaCert::load("/tmp/whatever-not-here").unwrap_err(),
            "open /tmp/whatever-not-here: no such file or directory"
        );
        let dir = std::env::temp_dir().join(format!("bbr-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a cert").unwrap();
        assert_eq!(
            CaCert::load(dir.to_str().unwrap()).unwrap_err(),
            "Missing PEM block"
        );
        let _ = std::fs::remove_file(dir);
    }
}
