//! Command-line parsing with urfave/cli v1 semantics, as Go bbr has them: command flags go
//! before the subcommand, long flags may be written with one or two dashes, `--flag=value`
//! and `--flag value` are both accepted, and `-h`/`--help` anywhere asks for help.
//!
//! clap is not used because Go bbr's help layout, its `--<flag> flag is required.` errors
//! (printed after the command help) and its single-dash long flags are part of the contract.

use std::time::Duration;

/// The five subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    /// `pre-backup-check` / `c`.
    PreBackupCheck,
    /// `backup` / `b`.
    Backup,
    /// `restore` / `r`.
    Restore,
    /// `backup-cleanup`.
    BackupCleanup,
    /// `restore-cleanup`.
    RestoreCleanup,
}

impl Subcommand {
    /// Parses a subcommand name or alias.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pre-backup-check" | "c" => Subcommand::PreBackupCheck,
            "backup" | "b" => Subcommand::Backup,
            "restore" | "r" => Subcommand::Restore,
            "backup-cleanup" => Subcommand::BackupCleanup,
            "restore-cleanup" => Subcommand::RestoreCleanup,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Subcommand::PreBackupCheck => "pre-backup-check",
            Subcommand::Backup => "backup",
            Subcommand::Restore => "restore",
            Subcommand::BackupCleanup => "backup-cleanup",
            Subcommand::RestoreCleanup => "restore-cleanup",
        }
    }
}

/// A flag definition: names (first is canonical), whether it takes a value.
pub struct FlagSpec {
    /// Canonical name and aliases, without dashes.
    pub names: &'static [&'static str],
    /// False for booleans.
    pub takes_value: bool,
}

/// The `bbr director` command flags.
pub const DIRECTOR_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        names: &["host"],
        takes_value: true,
    },
    FlagSpec {
        names: &["username", "u"],
        takes_value: true,
    },
    FlagSpec {
        names: &["private-key-path", "key"],
        takes_value: true,
    },
    FlagSpec {
        names: &["debug"],
        takes_value: false,
    },
    FlagSpec {
        names: &["known-hosts"],
        takes_value: true,
    },
    FlagSpec {
        names: &["max-parallel"],
        takes_value: true,
    },
    FlagSpec {
        names: &["script-timeout"],
        takes_value: true,
    },
];

/// The `bbr deployment` command flags.
pub const DEPLOYMENT_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        names: &["target", "t"],
        takes_value: true,
    },
    FlagSpec {
        names: &["username", "u"],
        takes_value: true,
    },
    FlagSpec {
        names: &["password", "p"],
        takes_value: true,
    },
    FlagSpec {
        names: &["deployment", "d"],
        takes_value: true,
    },
    FlagSpec {
        names: &["ca-cert"],
        takes_value: true,
    },
    FlagSpec {
        names: &["debug"],
        takes_value: false,
    },
    FlagSpec {
        names: &["all-deployments"],
        takes_value: false,
    },
    FlagSpec {
        names: &["max-parallel"],
        takes_value: true,
    },
    FlagSpec {
        names: &["script-timeout"],
        takes_value: true,
    },
];

/// Flags of `bbr deployment backup`.
pub const DEPLOYMENT_BACKUP_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        names: &["with-manifest"],
        takes_value: false,
    },
    FlagSpec {
        names: &["artifact-path", "a"],
        takes_value: true,
    },
    FlagSpec {
        names: &["unsafe-lock-free"],
        takes_value: false,
    },
];

/// Environment fallbacks of the deployment flags, first set variable wins.
pub const DEPLOYMENT_ENV: &[(&str, &[&str])] = &[
    ("target", &["BOSH_ENVIRONMENT"]),
    ("username", &["BOSH_CLIENT"]),
    ("password", &["BOSH_CLIENT_SECRET"]),
    ("deployment", &["BOSH_DEPLOYMENT"]),
    ("ca-cert", &["CA_CERT", "BOSH_CA_CERT"]),
];

/// Flags of `backup` and `restore`.
pub const ARTIFACT_FLAGS: &[FlagSpec] = &[FlagSpec {
    names: &["artifact-path", "a"],
    takes_value: true,
}];

/// Parsed flags: canonical name → value ("true" for booleans).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    values: Vec<(&'static str, String)>,
}

impl Flags {
    /// Fills flags that were not given from the first set environment variable of each.
    pub fn with_env(
        mut self,
        env: &[(&'static str, &[&str])],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        for (name, vars) in env {
            if self.get(name).is_none()
                && let Some(value) = vars
                    .iter()
                    .find_map(|v| lookup(v).filter(|x| !x.is_empty()))
            {
                self.values.push((name, value));
            }
        }
        self
    }

    /// The value of `name`, if given and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// True when a boolean flag was given.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "false")
    }
}

/// Result of parsing one level of flags.
#[derive(Debug)]
pub struct ParsedLevel {
    /// The flags.
    pub flags: Flags,
    /// Remaining arguments (the first non-flag and everything after it).
    pub rest: Vec<String>,
    /// `-h`/`--help` was among the flags.
    pub help: bool,
}

/// Parses flags from the front of `args` until the first non-flag argument.
pub fn parse_flags(specs: &[FlagSpec], args: &[String]) -> Result<ParsedLevel, String> {
    let mut flags = Flags::default();
    let mut help = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break;
        };
        if stripped.is_empty() {
            break;
        }
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        if name == "help" || name == "h" {
            help = true;
            i += 1;
            continue;
        }
        let Some(spec) = specs.iter().find(|s| s.names.contains(&name)) else {
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let value = if !spec.takes_value {
            inline.unwrap_or_else(|| "true".to_string())
        } else if let Some(v) = inline {
            v
        } else {
            i += 1;
            match args.get(i) {
                Some(v) => v.clone(),
                None => return Err(format!("flag needs an argument: -{name}")),
            }
        };
        flags.values.push((spec.names[0], value));
        i += 1;
    }
    Ok(ParsedLevel {
        flags,
        rest: args[i..].to_vec(),
        help,
    })
}

/// Parses a positive duration: Go's `time.ParseDuration` syntax (`90s`, `5m`, `1h30m`,
/// `250ms`, `1.5h`, `500us`) by [`bbr_gocompat::parse_go_duration`], or plain seconds (`90`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    match bbr_gocompat::parse_go_duration(text) {
        Ok(nanos) if nanos > 0 => Ok(Duration::from_nanos(nanos.unsigned_abs())),
        Ok(_) => Err(format!(
            "invalid duration {text:?}: use e.g. 90s, 15m or 1h30m"
        )),
        Err(e) => Err(format!("{e}: use e.g. 90s, 15m or 1h30m")),
    }
}

/// Parses `--script-timeout`: one duration for every script (`30m`), or comma-separated
/// `phase=duration` pairs (`backup=2h,lock=5m`) where a phase is a script name or `lock`
/// (both lock scripts), `unlock` (both unlock scripts), and `all` sets the rest.
pub fn parse_script_timeouts(text: &str) -> Result<bbr_core::workflow::ScriptTimeouts, String> {
    use bbr_core::ScriptKind as K;
    let mut out = bbr_core::workflow::ScriptTimeouts::default();
    if !text.contains('=') {
        out.all = Some(parse_duration(text)?);
        return Ok(out);
    }
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (phase, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected phase=duration, got {pair:?}"))?;
        let duration = parse_duration(value)?;
        let kinds: Vec<K> = match phase.trim() {
            "all" => {
                out.all = Some(duration);
                continue;
            }
            "lock" => vec![K::PreBackupLock, K::PreRestoreLock],
            "unlock" => vec![K::PostBackupUnlock, K::PostRestoreUnlock],
            name => vec![K::from_file_name(name).ok_or_else(|| {
                format!("unknown phase {name:?}: use all, lock, unlock or a script name (metadata, pre-backup-lock, backup, post-backup-unlock, pre-restore-lock, restore, post-restore-unlock)")
            })?],
        };
        for k in kinds {
            out.by_kind.insert(k, duration);
        }
    }
    Ok(out)
}

/// Splits `--host` into (deployment name, connect host, port): a scheme is stripped, the
/// port defaults to 22, `[v6]:port` is understood.
pub fn parse_host(host: &str) -> Result<(String, String, u16), String> {
    let without_scheme = host.split_once("://").map(|(_, r)| r).unwrap_or(host);
    let without_path = without_scheme.split('/').next().unwrap_or("");
    let (name, port) =
        bbr_gocompat::hostport::host_and_port(without_path, 22).map_err(|e| match e {
            bbr_gocompat::HostPortError::Port { port, .. } => {
                format!("invalid host {host:?}: bad port {port:?}")
            }
            other => format!("invalid host {host:?}: {other}"),
        })?;
    if name.is_empty() {
        return Err(format!("invalid host {host:?}: no host name"));
    }
    Ok((name.clone(), name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_in_go_styles() {
        let p = parse_flags(
            DIRECTOR_FLAGS,
            &strings(&[
                "--host", "h:2222", "-u", "vcap", "-key=k", "--debug", "backup", "-a", "x",
            ]),
        )
        .unwrap();
        assert_eq!(p.flags.get("host"), Some("h:2222"));
        assert_eq!(p.flags.get("username"), Some("vcap"));
        assert_eq!(p.flags.get("private-key-path"), Some("k"));
        assert!(p.flags.is_set("debug"));
        assert_eq!(p.rest, strings(&["backup", "-a", "x"]));
        assert!(parse_flags(DIRECTOR_FLAGS, &strings(&["--bogus"])).is_err());
        assert!(parse_flags(DIRECTOR_FLAGS, &strings(&["--host"])).is_err());
        assert!(
            parse_flags(DIRECTOR_FLAGS, &strings(&["--help"]))
                .unwrap()
                .help
        );
    }

    #[test]
    fn env_fallbacks_and_ca_cert_precedence() {
        let p = parse_flags(DEPLOYMENT_FLAGS, &strings(&["-d", "flag-dep", "backup"])).unwrap();
        let env = |k: &str| match k {
            "BOSH_ENVIRONMENT" => Some("10.0.0.6".to_string()),
            "BOSH_DEPLOYMENT" => Some("env-dep".to_string()),
            "CA_CERT" => Some("first".to_string()),
            "BOSH_CA_CERT" => Some("second".to_string()),
            _ => None,
        };
        let f = p.flags.with_env(DEPLOYMENT_ENV, env);
        assert_eq!(f.get("target"), Some("10.0.0.6"));
        assert_eq!(
            f.get("deployment"),
            Some("flag-dep"),
            "a flag beats its variable"
        );
        assert_eq!(
            f.get("ca-cert"),
            Some("first"),
            "CA_CERT beats BOSH_CA_CERT"
        );
        assert_eq!(f.get("password"), None);
    }

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
            parse_duration("1d").unwrap_err(),
            r#"time: unknown unit "d" in duration "1d": use e.g. 90s, 15m or 1h30m"#
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
                .contains("bogus")
        );
        assert!(parse_script_timeouts("backup").is_err());
        assert!(parse_script_timeouts("backup=").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("10.0.0.6").unwrap(),
            ("10.0.0.6".into(), "10.0.0.6".into(), 22)
        );
        assert_eq!(parse_host("10.0.0.6:2222").unwrap().2, 2222);
        assert_eq!(parse_host("ssh://d.example:25").unwrap().0, "d.example");
        assert_eq!(
            parse_host("[::1]:2200").unwrap(),
            ("::1".into(), "::1".into(), 2200)
        );
        assert!(parse_host(":22").is_err());
        assert!(parse_host("h:port").is_err());
        // Split at the first colon before, so a bare IPv6 address was refused.
        assert_eq!(parse_host("::1").unwrap(), ("::1".into(), "::1".into(), 22));
        // `::1:22` is itself an IPv6 address; a port needs brackets.
        assert_eq!(parse_host("::1:22").unwrap().2, 22);
    }

    #[test]
    fn subcommand_aliases() {
        assert_eq!(Subcommand::parse("c"), Some(Subcommand::PreBackupCheck));
        assert_eq!(Subcommand::parse("b"), Some(Subcommand::Backup));
        assert_eq!(Subcommand::parse("r"), Some(Subcommand::Restore));
        assert_eq!(Subcommand::parse("x"), None);
    }
}
