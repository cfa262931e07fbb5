//! Command-line parsing compatible with the original's Go `flag` package.
//!
//! Flags may be written with one or two dashes (`-config` or `--config`), values either
//! as the next argument or after `=`; boolean flags take an optional `=true|false`.
//! Parsing stops at the first non-flag argument or at `--`. Errors are reported the way Go
//! does it: the message, then `Usage of <argv0>:` with the flag defaults, exit status 2;
//! `-h`/`-help` prints the usage and exits 0.
//!
//! After parsing, the original's validation runs in its order (`Only one of: --backup or
//! --restore can be provided`, `Missing --backup or --restore flag`, `Missing --config
//! flag`, `Missing --artifact-file flag`); these exit 1 with [`USAGE_LINE`].

use std::fmt::Write as _;

/// The line the original prints after a flag validation error.
pub const USAGE_LINE: &str = "Usage: database-backup-restorer [--backup|--restore] --config <config-file> --artifact-file <artifact-file>";

/// Which action to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `--backup`: dump the database into the artifact file.
    Backup,
    /// `--restore`: load the artifact file into the database.
    Restore,
}

impl Action {
    /// `backup` or `restore`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Backup => "backup",
            Action::Restore => "restore",
        }
    }
}

/// A validated command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// The action.
    pub action: Action,
    /// `--config`: path of the JSON connection config.
    pub config_path: String,
    /// `--artifact-file`: output (backup) or input (restore) file.
    pub artifact_file: String,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run a backup or restore.
    Run(Flags),
    /// `--install-wrappers DIR`: write `DIR/bin/backup` and `DIR/bin/restore`.
    InstallWrappers(String),
    /// `-h` / `-help`: print [`Parsed::Help`]'s text to stderr, exit 0.
    Help(String),
    /// A Go `flag` syntax error: print the text to stderr, exit 2.
    SyntaxError(String),
    /// A validation error (one of the original's four messages): log it with
    /// [`USAGE_LINE`], exit 1.
    Invalid(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Str,
}

struct Def {
    name: &'static str,
    kind: Kind,
    usage: &'static str,
}

// Sorted by name, as Go's PrintDefaults lists them.
const DEFS: &[Def] = &[
    Def {
        name: "artifact-file",
        kind: Kind::Str,
        usage: "Path to output file",
    },
    Def {
        name: "backup",
        kind: Kind::Bool,
        usage: "Run database backup",
    },
    Def {
        name: "config",
        kind: Kind::Str,
        usage: "Path to JSON config file",
    },
    Def {
        name: "install-wrappers",
        kind: Kind::Str,
        usage: "Write bin/backup and bin/restore wrapper scripts under this directory, then exit",
    },
    Def {
        name: "restore",
        kind: Kind::Bool,
        usage: "Run database restore",
    },
];

/// Go's `PrintDefaults` text preceded by `Usage of <argv0>:`.
pub fn usage_text(argv0: &str) -> String {
    let mut s = format!("Usage of {argv0}:\n");
    for d in DEFS {
        let _ = write!(s, "  -{}", d.name);
        if matches!(d.kind, Kind::Str) {
            s.push_str(" string");
        }
        let _ = writeln!(s, "\n    \t{}", d.usage);
    }
    s
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `args` (without the program name); `argv0` is used in the usage text.
pub fn parse<S: AsRef<str>>(argv0: &str, args: &[S]) -> Parsed {
    let mut backup = false;
    let mut restore = false;
    let mut config = String::new();
    let mut artifact = String::new();
    let mut install = String::new();

    let fail = |msg: String| Parsed::SyntaxError(format!("{msg}\n{}", usage_text(argv0)));

    let mut i = 0;
    while i < args.len() {
        let s = args[i].as_ref();
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let mut dashes = 1;
        if s.as_bytes()[1] == b'-' {
            dashes = 2;
            if s.len() == 2 {
                break;
            }
        }
        let name_val = &s[dashes..];
        if name_val.is_empty() || name_val.starts_with('-') || name_val.starts_with('=') {
            return fail(format!("bad flag syntax: {s}"));
        }
        i += 1;
        let (name, value) = match name_val.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name_val, None),
        };
        let Some(def) = DEFS.iter().find(|d| d.name == name) else {
            if name == "h" || name == "help" {
                return Parsed::Help(usage_text(argv0));
            }
            return fail(format!("flag provided but not defined: -{name}"));
        };
        match def.kind {
            Kind::Bool => {
                let v = match value {
                    Some(v) => match parse_bool(&v) {
                        Some(b) => b,
                        None => {
                            return fail(format!(
                                "invalid boolean value {v:?} for -{name}: parse error"
                            ));
                        }
                    },
                    None => true,
                };
                if name == "backup" {
                    backup = v;
                } else {
                    restore = v;
                }
            }
            Kind::Str => {
                let v = match value {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].as_ref().to_string()
                    }
                    None => return fail(format!("flag needs an argument: -{name}")),
                };
                match name {
                    "config" => config = v,
                    "artifact-file" => artifact = v,
                    _ => install = v,
                }
            }
        }
    }

    if !install.is_empty() {
        return Parsed::InstallWrappers(install);
    }
    if backup && restore {
        return Parsed::Invalid("Only one of: --backup or --restore can be provided".into());
    }
    if !backup && !restore {
        return Parsed::Invalid("Missing --backup or --restore flag".into());
    }
    if config.is_empty() {
        return Parsed::Invalid("Missing --config flag".into());
    }
    if artifact.is_empty() {
        return Parsed::Invalid("Missing --artifact-file flag".into());
    }
    Parsed::Run(Flags {
        action: if backup {
            Action::Backup
        } else {
            Action::Restore
        },
        config_path: config,
        artifact_file: artifact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        parse("dbr", args)
    }

    #[test]
    fn accepts_one_and_two_dashes_and_equals() {
        let want = Parsed::Run(Flags {
            action: Action::Backup,
            config_path: "c.json".into(),
            artifact_file: "a".into(),
        });
        assert_eq!(
            p(&["--backup", "--config", "c.json", "--artifact-file", "a"]),
            want
        );
        assert_eq!(p(&["-backup", "-config=c.json", "-artifact-file=a"]), want);
        assert_eq!(
            p(&[
                "--backup=true",
                "--restore=0",
                "--config=c.json",
                "--artifact-file",
                "a"
            ]),
            want
        );
    }

    #[test]
    fn validation_order_and_messages() {
        assert_eq!(
            p(&["--backup", "--restore"]),
            Parsed::Invalid("Only one of: --backup or --restore can be provided".into())
        );
        assert_eq!(
            p(&["--config", "x"]),
            Parsed::Invalid("Missing --backup or --restore flag".into())
        );
        assert_eq!(
            p(&["--restore", "--artifact-file", "x"]),
            Parsed::Invalid("Missing --config flag".into())
        );
        assert_eq!(
            p(&["--restore", "--config", "x"]),
            Parsed::Invalid("Missing --artifact-file flag".into())
        );
    }

    #[test]
    fn go_flag_errors() {
        match p(&["--foo"]) {
            Parsed::SyntaxError(s) => {
                assert!(s.starts_with("flag provided but not defined: -foo\nUsage of dbr:\n"));
                assert!(s.contains("  -artifact-file string\n    \tPath to output file\n"));
                assert!(s.contains("  -backup\n    \tRun database backup\n"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(p(&["--config"]), Parsed::SyntaxError(s) if s.starts_with("flag needs an argument: -config\n"))
        );
        assert!(
            matches!(p(&["--backup=yes"]), Parsed::SyntaxError(s) if s.starts_with("invalid boolean value \"yes\" for -backup: parse error\n"))
        );
        assert!(
            matches!(p(&["---x"]), Parsed::SyntaxError(s) if s.starts_with("bad flag syntax: ---x\n"))
        );
        assert!(matches!(p(&["-h"]), Parsed::Help(_)));
        assert!(matches!(p(&["--help"]), Parsed::Help(_)));
    }

    #[test]
    fn stops_at_non_flag_and_double_dash() {
        assert_eq!(
            p(&["--backup", "pos", "--restore"]),
            Parsed::Invalid("Missing --config flag".into())
        );
        assert_eq!(
            p(&["--backup", "--", "--restore"]),
            Parsed::Invalid("Missing --config flag".into())
        );
        // A string flag takes the next argument even if it starts with a dash.
        assert_eq!(
            p(&["--backup", "--config", "--artifact-file"]),
            Parsed::Invalid("Missing --artifact-file flag".into())
        );
    }

    #[test]
    fn install_wrappers() {
        assert_eq!(
            p(&["--install-wrappers", "/d"]),
            Parsed::InstallWrappers("/d".into())
        );
    }
}
