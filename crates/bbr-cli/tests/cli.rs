//! Command-line grammar, help, version and validation messages (bbr.md §1, §8.1).

use std::process::Command;

fn bbr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bbr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_args_and_help_show_the_app_help() {
    for args in [&[][..], &["help"], &["h"]] {
        let (code, out, _) = bbr(args);
        assert_eq!(code, 0);
        assert!(out.contains("bbr command [command options] [subcommand] [subcommand options]"));
        assert!(out.contains("SUBCOMMANDS:\n   backup\n   backup-cleanup\n   restore\n   restore-cleanup\n   pre-backup-check"));
    }
}

#[test]
fn version() {
    let (code, out, _) = bbr(&["version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("bbr version "), "{out}");
}

#[test]
fn unknown_command() {
    let (code, out, _) = bbr(&["rubbish"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("Error command 'rubbish' not found\n\n"),
        "{out}"
    );
}

#[test]
fn required_director_flags() {
    let (code, out, err) = bbr(&["director", "backup"]);
    assert_eq!(code, 1);
    assert!(err.contains("--host flag is required."), "{err}");
    assert!(out.contains("--host value"), "help is shown: {out}");
    let (_, _, err) = bbr(&["director", "--host", "h", "backup"]);
    assert!(err.contains("--username flag is required."));
    let (_, _, err) = bbr(&["director", "--host", "h", "-u", "x", "backup"]);
    assert!(err.contains("--private-key-path flag is required."));
    let (code, _, err) = bbr(&[
        "director", "--host", "h", "-u", "x", "--key", "k", "restore",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--artifact-path flag is required."));
}

#[test]
fn help_flags_skip_validation() {
    let (code, out, _) = bbr(&["director", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("BOSH Director hostname, with an optional port. Port defaults to 22"));
    let (code, out, _) = bbr(&["director", "backup", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--artifact-path value, -a value"));
}

#[test]
fn bad_flag_values_are_named() {
    let (code, out, _) = bbr(&["director", "--nope", "backup"]);
    assert_eq!(code, 1);
    assert!(out.contains("Incorrect Usage"));
    let (code, _, err) = bbr(&[
        "director",
        "--host",
        "h",
        "-u",
        "x",
        "--key",
        "k",
        "--script-timeout",
        "soon",
        "backup",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--script-timeout"), "{err}");
    let (code, _, err) = bbr(&[
        "director", "--host", "h", "-u", "x", "--key", "/no/key", "backup",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("failed reading private key /no/key"), "{err}");
}
