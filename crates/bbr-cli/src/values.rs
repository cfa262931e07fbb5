//! Parsers of flag and environment values that are more than a string: durations,
//! `--script-timeout` and the director-mode `--host`. Each returns a typed error whose text
//! the operator sees (after `--script-timeout: `, `BBR_DIRECTOR_TASK_TIMEOUT: `, or in the
//! error block for `--host`).

use std::time::Duration;

/// The hint appended to every duration error.
const DURATION_HINT: &str = "use e.g. 90s, 15m or 1h30m";

/// A duration that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Well formed but not positive (`0s`).
    #[error("invalid duration {0:?}: {DURATION_HINT}")]
    NotPositive(String),
    /// Not Go's duration syntax.
    #[error("{0}: {DURATION_HINT}")]
    Syntax(bbr_gocompat::DurationError),
}

/// A `--script-timeout` value that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScriptTimeoutError {
    /// A duration (the whole value or one pair's) is bad.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A comma-separated item without `=`.
    #[error("expected phase=duration, got {0:?}")]
    NotAPair(String),
    /// A phase that is not `all`, `lock`, `unlock` or a script name.
    #[error(
        "unknown phase {0:?}: use all, lock, unlock or a script name (metadata, pre-backup-lock, backup, post-backup-unlock, pre-restore-lock, restore, post-restore-unlock)"
    )]
    UnknownPhase(String),
}

/// A director-mode `--host` that is not `host[:port]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// The port is not a number from 0 to 65535.
    #[error("invalid host {host:?}: bad port {port:?}")]
    Port {
        /// The whole `--host` value.
        host: String,
        /// The port part.
        port: String,
    },
    /// The address's shape is wrong.
    #[error("invalid host {host:?}: {source}")]
    Address {
        /// The whole `--host` value.
        host: String,
        /// What is wrong.
        source: bbr_gocompat::HostPortError,
    },
    /// Nothing before the port.
    #[error("invalid host {0:?}: no host name")]
    NoName(String),
}

/// Parses a positive duration: Go's `time.ParseDuration` syntax (`90s`, `5m`, `1h30m`,
/// `250ms`, `1.5h`, `500us`) by [`bbr_gocompat::parse_go_duration`], or plain seconds (`90`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    match bbr_gocompat::parse_go_duration(text) {
        Ok(nanos) if nanos > 0 => Ok(Duration::from_nanos(nanos.unsigned_abs())),
        Ok(_) => Err(DurationError::NotPositive(text.to_string())),
        Err(e) => Err(DurationError::Syntax(e)),
    }
}

/// Parses `--script-timeout`: one duration for every script (`30m`), or comma-separated
/// `phase=duration` pairs (`backup=2h,lock=5m`) where a phase is a script name or `lock`
/// (both lock scripts), `unlock` (both unlock scripts), and `all` sets the rest.
pub fn parse_script_timeouts(
    text: &str,
) -> Result<bbr_core::workflow::ScriptTimeouts, ScriptTimeoutError> {
    use bbr_core::ScriptKind as K;
    let mut out = bbr_core::workflow::ScriptTimeouts::default();
    if !text.contains('=') {
        out.all = Some(parse_duration(text)?);
        return Ok(out);
    }
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (phase, value) = pair
            .split_once('=')
            .ok_or_else(|| ScriptTimeoutError::NotAPair(pair.to_string()))?;
        let duration = parse_duration(value)?;
        let kinds: Vec<K> = match phase.trim() {
            "all" => {
                out.all = Some(duration);
                continue;
            }
            "lock" => vec![K::PreBackupLock, K::PreRestoreLock],
            "unlock" => vec![K::PostBackupUnlock, K::PostRestoreUnlock],
            name => vec![
                K::from_file_name(name)
                    .ok_or_else(|| ScriptTimeoutError::UnknownPhase(name.to_string()))?,
            ],
        };
        for k in kinds {
            out.by_kind.insert(k, duration);
        }
    }
    Ok(out)
}

/// The director VM as `--host` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    /// The "deployment name" of log lines, errors and the artifact directory: the host part.
    pub name: String,
    /// The host to connect to.
    pub connect_host: String,
    /// The SSH port (22 unless given).
    pub port: u16,
}

/// Splits `--host` into name, connect host and port: a scheme is stripped, the port
/// defaults to 22, `[v6]:port` is understood.
pub fn parse_host(host: &str) -> Result<HostAddr, HostError> {
    let without_scheme = host.split_once("://").map(|(_, r)| r).unwrap_or(host);
    let without_path = without_scheme.split('/').next().unwrap_or("");
    let (name, port) =
        bbr_gocompat::hostport::host_and_port(without_path, 22).map_err(|e| match e {
            bbr_gocompat::HostPortError::Port { port, .. } => HostError::Port {
                host: host.to_string(),
                port,
            },
            source => HostError::Address {
                host: host.to_string(),
                source,
            },
        })?;
    if name.is_empty() {
        return Err(HostError::NoName(host.to_string()));
    }
    Ok(HostAddr {
        connect_host: name.clone(),
        name,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").is_err());
        // Go's syntax throughout; the former local parser refused `us`/`ns` and had its
        // own messages.
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500us").unwrap(), Duration::from_micros(500));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1h30").is_err());
        assert_eq!(
            parse_duration("1d").unwrap_err().to_string(),
            r#"time: unknown unit "d" in duration "1d": use e.g. 90s, 15m or 1h30m"#
        );
        assert_eq!(
            parse_duration("0s").unwrap_err().to_string(),
            r#"invalid duration "0s": use e.g. 90s, 15m or 1h30m"#
        );
    }

    #[test]
    fn script_timeouts_per_phase() {
        use bbr_core::ScriptKind as K;
        let all = parse_script_timeouts("30m").unwrap();
        assert_eq!(all.for_kind(K::Backup), Some(Duration::from_secs(1800)));
        let t = parse_script_timeouts("backup=2h, lock=5m,all=10m").unwrap();
        assert_eq!(t.for_kind(K::Backup), Some(Duration::from_secs(7200)));
        assert_eq!(
            t.for_kind(K::PreRestoreLock),
            Some(Duration::from_secs(300))
        );
        assert_eq!(t.for_kind(K::Metadata), Some(Duration::from_secs(600)));
        let only = parse_script_timeouts("restore=1h").unwrap();
        assert_eq!(only.for_kind(K::Backup), None);
        assert!(
            parse_script_timeouts("bogus=1m")
                .unwrap_err()
                .to_string()
                .contains("bogus")
        );
        assert!(parse_script_timeouts("backup").is_err());
        assert!(parse_script_timeouts("backup=").is_err());
        assert_eq!(
            parse_script_timeouts("backup=1m,lock").unwrap_err(),
            ScriptTimeoutError::NotAPair("lock".into())
        );
    }

    fn triple(h: &str) -> (String, String, u16) {
        let a = parse_host(h).unwrap();
        (a.name, a.connect_host, a.port)
    }

    #[test]
    fn hosts() {
        assert_eq!(
            triple("10.0.0.6"),
            ("10.0.0.6".into(), "10.0.0.6".into(), 22)
        );
        assert_eq!(triple("10.0.0.6:2222").2, 2222);
        assert_eq!(triple("ssh://d.example:25").0, "d.example");
        assert_eq!(triple("[::1]:2200"), ("::1".into(), "::1".into(), 2200));
        assert!(parse_host(":22").is_err());
        assert!(parse_host("h:port").is_err());
        assert_eq!(
            parse_host("h:port").unwrap_err().to_string(),
            r#"invalid host "h:port": bad port "port""#
        );
        // Split at the first colon before, so a bare IPv6 address was refused.
        assert_eq!(triple("::1"), ("::1".into(), "::1".into(), 22));
        // `::1:22` is itself an IPv6 address; a port needs brackets.
        assert_eq!(triple("::1:22").2, 22);
    }
}
