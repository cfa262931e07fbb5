//! `--target` and `--ca-cert` as bosh-cli reads them: the scheme is optional, the host
//! required, the port defaults to 25555 and the director is always spoken to over HTTPS;
//! the CA is a path or the PEM text itself.

use std::path::Path;

/// Why a `--target` value is not a director address (bosh-cli's `invalid bosh URL` texts).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The port is not a number from 0 to 65535.
    #[error("invalid bosh URL - {text:?}: the port is not a number")]
    Port {
        /// The value as given.
        text: String,
    },
    /// The address's shape is wrong (stray brackets, too many colons).
    #[error("invalid bosh URL - {text:?}: {source}")]
    Address {
        /// The value as given.
        text: String,
        /// Why the host and port could not be split.
        #[source]
        source: bbr_gocompat::HostPortError,
    },
    /// No host.
    #[error("invalid bosh URL - {text:?}: expected a host")]
    NoHost {
        /// The value as given.
        text: String,
    },
}

/// Why `--ca-cert` could not be used (bosh-cli's texts).
#[derive(Debug, thiserror::Error)]
pub enum CaCertError {
    /// The file does not exist.
    #[error("open {path}: no such file or directory")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The file could not be read.
    #[error("open {path}: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// Neither the text nor the file holds a certificate.
    #[error("Missing PEM block")]
    MissingPemBlock,
}

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
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let rest = match text.split_once("://") {
            Some((_, r)) => r,
            None => text,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) =
            bbr_gocompat::hostport::host_and_port(authority, 25555).map_err(|e| match e {
                bbr_gocompat::HostPortError::Port { .. } => TargetError::Port {
                    text: text.to_string(),
                },
                source => TargetError::Address {
                    text: text.to_string(),
                    source,
                },
            })?;
        if host.is_empty() {
            return Err(TargetError::NoHost {
                text: text.to_string(),
            });
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
    pub fn load(value: &str) -> Result<CaCert, CaCertError> {
        let pem = if value.trim_start().starts_with("-----BEGIN") {
            value.to_string()
        } else {
            std::fs::read_to_string(Path::new(value)).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    CaCertError::NotFound {
                        path: value.to_string(),
                    }
                } else {
                    CaCertError::Read {
                        path: value.to_string(),
                        source: e,
                    }
                }
            })?
        };
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(CaCertError::MissingPemBlock);
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
        assert_eq!(
            Target::parse("https://:25555").unwrap_err().to_string(),
            r#"invalid bosh URL - "https://:25555": expected a host"#
        );
        assert_eq!(
            Target::parse("h:port").unwrap_err().to_string(),
            r#"invalid bosh URL - "h:port": the port is not a number"#
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
        let err = Target::parse("https://[::1/").unwrap_err();
        assert!(matches!(err, TargetError::Address { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(r#"invalid bosh URL - "https://[::1/": address "#),
            "{err}"
        );
    }

    #[test]
    fn ca_from_text_or_file() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(CaCert::load(pem).unwrap().0, pem);
        assert_eq!(
            CaCert::load("/tmp/whatever-not-here")
                .unwrap_err()
                .to_string(),
            "open /tmp/whatever-not-here: no such file or directory"
        );
        let dir = std::env::temp_dir().join(format!("bbr-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a cert").unwrap();
        assert_eq!(
            CaCert::load(dir.to_str().unwrap()).unwrap_err().to_string(),
            "Missing PEM block"
        );
        let _ = std::fs::remove_file(dir);
    }
}
