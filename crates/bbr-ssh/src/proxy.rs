//! `BOSH_ALL_PROXY`: reaching VMs and the director through a jump host.
//!
//! * `socks5://host:port` — a plain SOCKS5 proxy: SSH connections are dialled through it
//!   (a minimal RFC 1928 client, no authentication), HTTP clients use it directly.
//! * `ssh+socks5://user@host:port?private-key=FILE` — one SSH connection to the jump host
//!   carries everything: SSH connections to VMs are `direct-tcpip` channels on it, and a
//!   local SOCKS5 listener on 127.0.0.1 (for the director's HTTPS) forwards each connection
//!   through another such channel. Go bbr does the same with an in-process SOCKS5 server.

use crate::connection::{ConnectOptions, SshConnection, SshError};
use crate::hostkey::HostKeyPolicy;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Why a `BOSH_ALL_PROXY` value is unusable; every text starts `BOSH_ALL_PROXY "<value>": `.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No `<scheme>://`.
    #[error("BOSH_ALL_PROXY {value:?}: expected socks5:// or ssh+socks5://")]
    NoScheme {
        /// The value as given.
        value: String,
    },
    /// The port is not a number from 0 to 65535.
    #[error("BOSH_ALL_PROXY {value:?}: bad port")]
    BadPort {
        /// The value as given.
        value: String,
    },
    /// The authority is not `host:port`.
    #[error("BOSH_ALL_PROXY {value:?}: expected host:port ({source})")]
    HostPort {
        /// The value as given.
        value: String,
        /// Why it could not be split.
        #[source]
        source: bbr_gocompat::HostPortError,
    },
    /// An empty host.
    #[error("BOSH_ALL_PROXY {value:?}: expected a host")]
    NoHost {
        /// The value as given.
        value: String,
    },
    /// `ssh+socks5://` without a user.
    #[error("BOSH_ALL_PROXY {value:?}: expected user@host:port")]
    NoUser {
        /// The value as given.
        value: String,
    },
    /// `ssh+socks5://` without `?private-key=FILE`.
    #[error("BOSH_ALL_PROXY {value:?}: expected ?private-key=FILE")]
    NoKey {
        /// The value as given.
        value: String,
    },
    /// A scheme other than `socks5`, `socks5h` and `ssh+socks5`.
    #[error("BOSH_ALL_PROXY {value:?}: unsupported scheme {scheme:?}")]
    Scheme {
        /// The value as given.
        value: String,
        /// The scheme.
        scheme: String,
    },
}

/// Why a stream to a destination could not be opened (Go's `dial tcp` wording for direct
/// connections).
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The name did not resolve (`reason` in Go's words, e.g. `no such host`).
    #[error("dial tcp: lookup {host}: {reason}")]
    Lookup {
        /// The name.
        host: String,
        /// Why, as Go words it.
        reason: String,
    },
    /// The name resolved to no address.
    #[error("dial tcp: lookup {host}: no such host")]
    NoAddress {
        /// The name.
        host: String,
    },
    /// TCP connect failed.
    #[error("dial tcp {host}:{port}: {source}")]
    Connect {
        /// The destination host.
        host: String,
        /// The destination port.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The SOCKS5 proxy could not be reached.
    #[error("connecting to the SOCKS5 proxy {proxy}:{proxy_port}: {source}")]
    ProxyConnect {
        /// The proxy host.
        proxy: String,
        /// The proxy port.
        proxy_port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The SOCKS5 proxy refused or failed the connection.
    #[error("SOCKS5 proxy {proxy}:{proxy_port} to {host}:{port}: {source}")]
    Socks5 {
        /// The proxy host.
        proxy: String,
        /// The proxy port.
        proxy_port: u16,
        /// The destination host.
        host: String,
        /// The destination port.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The jump host refused or failed the `direct-tcpip` channel.
    #[error("tunnelling to {host}:{port} through {jump}: {source}")]
    Tunnel {
        /// The destination host.
        host: String,
        /// The destination port.
        port: u16,
        /// The jump host's host:port.
        jump: String,
        /// Why.
        #[source]
        source: russh::Error,
    },
}

/// A parsed `BOSH_ALL_PROXY` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySpec {
    /// `socks5://host:port`.
    Socks5 {
        /// Proxy host.
        host: String,
        /// Proxy port.
        port: u16,
    },
    /// `ssh+socks5://user@host:port?private-key=FILE`.
    SshTunnel {
        /// Login user on the jump host.
        user: String,
        /// Jump host.
        host: String,
        /// Its SSH port.
        port: u16,
        /// The private key file.
        key: PathBuf,
    },
}

impl ProxySpec {
    /// Parses a `BOSH_ALL_PROXY` value; errors name what is wrong.
    pub fn parse(value: &str) -> Result<ProxySpec, ProxyError> {
        let owned = || value.to_string();
        let (scheme, rest) = value
            .split_once("://")
            .ok_or_else(|| ProxyError::NoScheme { value: owned() })?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, port) = match bbr_gocompat::split_host_port(hostport) {
            Ok((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| ProxyError::BadPort { value: owned() })?,
            ),
            Err(source) => {
                return Err(ProxyError::HostPort {
                    value: owned(),
                    source,
                });
            }
        };
        if host.is_empty() {
            return Err(ProxyError::NoHost { value: owned() });
        }
        match scheme {
            "socks5" | "socks5h" => Ok(ProxySpec::Socks5 { host, port }),
            "ssh+socks5" => {
                let user = user
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| ProxyError::NoUser { value: owned() })?;
                let key = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("private-key="))
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| ProxyError::NoKey { value: owned() })?;
                Ok(ProxySpec::SshTunnel {
                    user,
                    host,
                    port,
                    key: PathBuf::from(key),
                })
            }
            other => Err(ProxyError::Scheme {
                value: owned(),
                scheme: other.to_string(),
            }),
        }
    }
}

/// How connections leave this machine.
#[derive(Clone, Default)]
pub enum Dialer {
    /// Straight TCP.
    #[default]
    Direct,
    /// Through a SOCKS5 proxy at this address.
    Socks5(String, u16),
    /// As `direct-tcpip` channels on an SSH connection to a jump host.
    Tunnel(Arc<SshConnection>),
}

/// A byte stream to a destination, whichever way it was dialled.
pub trait ProxyStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ProxyStream for T {}

impl Dialer {
    /// Sets up the dialer for a proxy spec (connecting to the jump host for a tunnel, with
    /// its host key checked against `known_hosts`).
    pub async fn for_proxy(
        spec: &ProxySpec,
        known_hosts: PathBuf,
        on_warning: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Result<Dialer, SshError> {
        match spec {
            ProxySpec::Socks5 { host, port } => Ok(Dialer::Socks5(host.clone(), *port)),
            ProxySpec::SshTunnel {
                user,
                host,
                port,
                key,
            } => {
                let options = ConnectOptions {
                    host: host.clone(),
                    port: *port,
                    user: user.clone(),
                    key: ConnectOptions::load_key(key)?,
                    host_key: HostKeyPolicy::KnownHosts(known_hosts),
                    on_warning,
                    dialer: Dialer::Direct,
                    root_runner: false,
                };
                Ok(Dialer::Tunnel(SshConnection::connect(options).await?))
            }
        }
    }

    /// Opens a stream to `host:port`.
    pub async fn dial(&self, host: &str, port: u16) -> Result<Box<dyn ProxyStream>, DialError> {
        match self {
            Dialer::Direct => {
                // Resolve first, so that a name that does not resolve reads as Go's
                // `lookup <host>: no such host`, which Go's tests look for.
                let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| DialError::Lookup {
                        host: host.to_string(),
                        reason: lookup_failure(&e),
                    })?
                    .collect();
                if addresses.is_empty() {
                    return Err(DialError::NoAddress {
                        host: host.to_string(),
                    });
                }
                let s = TcpStream::connect(addresses.as_slice())
                    .await
                    .map_err(|source| DialError::Connect {
                        host: host.to_string(),
                        port,
                        source,
                    })?;
                let _ = s.set_nodelay(true);
                Ok(Box::new(s))
            }
            Dialer::Socks5(proxy, proxy_port) => {
                let mut s = TcpStream::connect((proxy.as_str(), *proxy_port))
                    .await
                    .map_err(|source| DialError::ProxyConnect {
                        proxy: proxy.clone(),
                        proxy_port: *proxy_port,
                        source,
                    })?;
                socks5_connect(&mut s, host, port)
                    .await
                    .map_err(|source| DialError::Socks5 {
                        proxy: proxy.clone(),
                        proxy_port: *proxy_port,
                        host: host.to_string(),
                        port,
                        source,
                    })?;
                let _ = s.set_nodelay(true);
                Ok(Box::new(s))
            }
            Dialer::Tunnel(jump) => jump
                .open_tunnel(host, port)
                .await
                .map(|c| Box::new(c) as Box<dyn ProxyStream>)
                .map_err(|source| DialError::Tunnel {
                    host: host.to_string(),
                    port,
                    jump: jump.address_text().to_string(),
                    source,
                }),
        }
    }

    /// The proxy URL an HTTP client should use, starting a local SOCKS5 listener for a
    /// tunnel. `None` for direct connections.
    pub async fn http_proxy_url(&self) -> std::io::Result<Option<String>> {
        match self {
            Dialer::Direct => Ok(None),
            Dialer::Socks5(h, p) => Ok(Some(format!("socks5h://{h}:{p}"))),
            Dialer::Tunnel(jump) => {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                let jump = jump.clone();
                tokio::spawn(async move {
                    while let Ok((client, _)) = listener.accept().await {
                        let jump = jump.clone();
                        tokio::spawn(async move {
                            let _ = serve_socks5(client, &jump).await;
                        });
                    }
                });
                Ok(Some(format!("socks5h://{addr}")))
            }
        }
    }
}

/// The resolver's failure in Go's words where Go has them: an unknown name is `no such host`;
/// anything else (a resolver that cannot be reached, say) keeps the resolver's text.
fn lookup_failure(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    if text.contains("Name or service not known") || text.contains("No address associated") {
        "no such host".to_string()
    } else {
        text.to_string()
    }
}

async fn socks5_connect(s: &mut TcpStream, host: &str, port: u16) -> std::io::Result<()> {
    let err = |m: &str| std::io::Error::other(m.to_string());
    s.write_all(&[5, 1, 0]).await?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await?;
    if reply != [5, 0] {
        return Err(err(
            "the proxy wants authentication, which is not supported",
        ));
    }
    let name = host.as_bytes();
    if name.len() > 255 {
        return Err(err("host name too long"));
    }
    let mut request = vec![5, 1, 0, 3, name.len() as u8];
    request.extend_from_slice(name);
    request.extend_from_slice(&port.to_be_bytes());
    s.write_all(&request).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[1] != 0 {
        return Err(err(&format!(
            "the proxy refused the connection (reply code {})",
            head[1]
        )));
    }
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            len[0] as usize
        }
        _ => return Err(err("malformed proxy reply")),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).await?;
    Ok(())
}

/// Serves one SOCKS5 CONNECT by forwarding it through the jump host.
async fn serve_socks5(mut client: TcpStream, jump: &SshConnection) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    client.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    match jump.open_tunnel(&host, port).await {
        Ok(mut stream) => {
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            tokio::io::copy_bidirectional(&mut client, &mut stream).await?;
            Ok(())
        }
        Err(_) => {
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_values() {
        // Go's net.SplitHostPort: brackets for IPv6; the former rsplit read `::1:1080` as
        // host `::1`.
        assert_eq!(
            ProxySpec::parse("socks5://[::1]:1080").unwrap(),
            ProxySpec::Socks5 {
                host: "::1".into(),
                port: 1080
            }
        );
        assert!(ProxySpec::parse("socks5://::1:1080").is_err());
        assert_eq!(
            ProxySpec::parse("socks5://10.0.0.1:1080").unwrap(),
            ProxySpec::Socks5 {
                host: "10.0.0.1".into(),
                port: 1080
            }
        );
        assert_eq!(
            ProxySpec::parse("ssh+socks5://jumpbox@10.0.0.2:22?private-key=/tmp/key").unwrap(),
            ProxySpec::SshTunnel {
                user: "jumpbox".into(),
                host: "10.0.0.2".into(),
                port: 22,
                key: "/tmp/key".into()
            }
        );
        assert_eq!(
            ProxySpec::parse("ssh+socks5://10.0.0.2:22?private-key=/k")
                .unwrap_err()
                .to_string(),
            r#"BOSH_ALL_PROXY "ssh+socks5://10.0.0.2:22?private-key=/k": expected user@host:port"#
        );
        assert_eq!(
            ProxySpec::parse("ssh+socks5://u@10.0.0.2:22")
                .unwrap_err()
                .to_string(),
            r#"BOSH_ALL_PROXY "ssh+socks5://u@10.0.0.2:22": expected ?private-key=FILE"#
        );
        assert_eq!(
            ProxySpec::parse("http://x:1").unwrap_err().to_string(),
            r#"BOSH_ALL_PROXY "http://x:1": unsupported scheme "http""#
        );
        assert_eq!(
            ProxySpec::parse("socks5://10.0.0.1:99999")
                .unwrap_err()
                .to_string(),
            r#"BOSH_ALL_PROXY "socks5://10.0.0.1:99999": bad port"#
        );
        assert_eq!(
            ProxySpec::parse("socks5://:1080").unwrap_err().to_string(),
            r#"BOSH_ALL_PROXY "socks5://:1080": expected a host"#
        );
        assert_eq!(
            ProxySpec::parse("x").unwrap_err().to_string(),
            r#"BOSH_ALL_PROXY "x": expected socks5:// or ssh+socks5://"#
        );
        let err = ProxySpec::parse("socks5://x").unwrap_err();
        assert!(matches!(err, ProxyError::HostPort { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(r#"BOSH_ALL_PROXY "socks5://x": expected host:port (address x: "#),
            "{err}"
        );
    }
}
