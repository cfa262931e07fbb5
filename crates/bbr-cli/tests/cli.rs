//! Command-line grammar, help, version and validation messages (docs/cli.md; Go's
//! `integration/cli_test.go`).

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

fn bbr_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bbr"));
    for var in [
        "BOSH_ENVIRONMENT",
        "BOSH_CLIENT",
        "BOSH_CLIENT_SECRET",
        "BOSH_DEPLOYMENT",
        "CA_CERT",
        "BOSH_CA_CERT",
    ] {
        c.env_remove(var);
    }
    let out = c.args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deployment_help_lists_every_flag_with_its_env_vars_in_order() {
    let (code, out, _) = bbr_env(&["deployment", "--help"], &[]);
    assert_eq!(code, 0);
    let mut at = 0;
    for needle in [
        "--target value, -t value",
        "BOSH Director URL",
        "[$BOSH_ENVIRONMENT]",
        "--username value, -u value",
        "BOSH Director username",
        "[$BOSH_CLIENT]",
        "--password value, -p value",
        "BOSH Director password",
        "[$BOSH_CLIENT_SECRET]",
        "--deployment value, -d value",
        "Name of BOSH deployment. Omit if '--all-deployments' is provided",
        "[$BOSH_DEPLOYMENT]",
        "--ca-cert value",
        "Path or value of BOSH Director custom CA certificate",
        "[$CA_CERT, $BOSH_CA_CERT]",
        "--debug",
        "Enable debug logs",
        "--all-deployments",
        "Run command for all deployments.",
    ] {
        let found = out[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in\n{out}"));
        at += found + needle.len();
    }
}

#[test]
fn deployment_required_flags_and_exclusive_deployment_choice() {
    let (code, out, err) = bbr_env(&["deployment", "backup"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("--target flag is required."), "{err}");
    assert!(out.contains("--target value"));
    let (_, _, err) = bbr_env(&["deployment", "-t", "x", "backup"], &[]);
    assert!(err.contains("--username flag is required."));
    let (_, _, err) = bbr_env(&["deployment", "-t", "x", "-u", "u", "backup"], &[]);
    assert!(err.contains("--password flag is required."));
    let (code, _, err) = bbr_env(
        &["deployment", "-t", "x", "-u", "u", "-p", "p", "backup"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("provide one of '--deployment' or '--all-deployments' flags."),
        "{err}"
    );
    let (_, _, err) = bbr_env(
        &[
            "deployment",
            "-t",
            "x",
            "-u",
            "u",
            "-p",
            "p",
            "-d",
            "d",
            "--all-deployments",
            "backup",
        ],
        &[],
    );
    assert!(err.contains("provide one of '--deployment' or '--all-deployments' flags."));
    let (_, _, err) = bbr_env(
        &[
            "deployment",
            "-t",
            "x",
            "-u",
            "u",
            "-p",
            "p",
            "--all-deployments",
            "backup",
            "--unsafe-lock-free",
        ],
        &[],
    );
    assert!(
        err.contains(
            "Cannot use the --unsafe-lock-free flag in conjunction with the --all-deployments flag"
        ),
        "{err}"
    );
    let (code, _, err) = bbr_env(
        &[
            "deployment",
            "-t",
            "x",
            "-u",
            "u",
            "-p",
            "p",
            "-d",
            "d",
            "restore",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--artifact-path flag is required."));
}

#[test]
fn deployment_flags_come_from_the_environment() {
    let env = [
        ("BOSH_ENVIRONMENT", "https://:25555"),
        ("BOSH_CLIENT", "admin"),
        ("BOSH_CLIENT_SECRET", "s3cret-value"),
        ("BOSH_DEPLOYMENT", "dep"),
    ];
    let (code, _, err) = bbr_env(&["deployment", "backup"], &env);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid bosh URL"),
        "the target came from BOSH_ENVIRONMENT: {err}"
    );
    assert!(!err.contains("s3cret-value"), "the password never appears");
}

#[test]
fn deployment_ca_cert_errors_are_bosh_clis() {
    let base = [
        "deployment",
        "-t",
        "127.0.0.1:1",
        "-u",
        "u",
        "-p",
        "p",
        "-d",
        "d",
    ];
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--ca-cert", "/tmp/whatever", "backup"]);
    let (code, _, err) = bbr_env(&args, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("open /tmp/whatever: no such file or directory"),
        "{err}"
    );
    let (_, _, err) = bbr_env(
        &[&base[..], &["backup"]].concat(),
        &[
            ("CA_CERT", "not a pem"),
            ("BOSH_CA_CERT", "-----BEGIN CERTIFICATE-----\n"),
        ],
    );
    assert!(
        err.contains("open not a pem"),
        "CA_CERT wins over BOSH_CA_CERT: {err}"
    );
    let (_, _, err) = bbr_env(&[&base[..], &["backup"]].concat(), &[]);
    assert!(
        err.contains("bosh director unreachable or unhealthy"),
        "{err}"
    );
}
