//! `database-backup-restorer`: the command release authors call from their bbr scripts.
//!
//! `database-backup-restorer --backup|--restore --config CONFIG --artifact-file FILE`,
//! or `--install-wrappers DIR` to write `DIR/bin/backup` and `DIR/bin/restore`.
//! Exit status: 0 success, 1 any failure, 2 a command-line syntax error.
//! See the library documentation for everything else.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use database_backup_restorer::discovery::ClientSearch;
use database_backup_restorer::flags::{self, Parsed, USAGE_LINE};
use database_backup_restorer::{golog, run, wrappers};

fn install_wrappers(dir: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the path of this program")?;
    let files = wrappers::install(std::path::Path::new(dir), &exe)
        .with_context(|| format!("cannot write the wrappers under {dir}"))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let argv0 = argv
        .next()
        .unwrap_or_else(|| "database-backup-restorer".into());
    let args: Vec<String> = argv.collect();

    match flags::parse(&argv0, &args) {
        Parsed::Help(text) => {
            let _ = std::io::stderr().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Parsed::SyntaxError(text) => {
            let _ = std::io::stderr().write_all(text.as_bytes());
            ExitCode::from(2)
        }
        Parsed::Invalid(msg) => {
            golog::log(&format!("{msg}\n{USAGE_LINE}\n"));
            ExitCode::from(1)
        }
        Parsed::InstallWrappers(dir) => match install_wrappers(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                golog::log(&format!("{e:#}"));
                ExitCode::from(1)
            }
        },
        Parsed::Run(flags) => match run::run(&flags, &ClientSearch::from_env()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                golog::log(&e.to_string());
                ExitCode::from(1)
            }
        },
    }
}
