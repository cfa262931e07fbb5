//! The `bbr` command line. The workflows themselves live in `bbr-core`; this crate turns a
//! command line into a run of one of them and its outcome into output and an exit code:
//!
//! | module | role |
//! |---|---|
//! | [`commands`] | the command table: modes, subcommands, usage lines (how to add a command) |
//! | [`flags`] | the flag table: every flag once, with aliases, env vars, help, where accepted |
//! | [`parse`] | urfave/cli-style parsing driven by the two tables |
//! | [`help`] | help texts rendered from the two tables |
//! | [`usage`] | usage errors and how each is shown |
//! | [`values`] | typed parsers of durations, `--script-timeout`, `--host` |
//! | [`resolve`] | parsed flags → a typed invocation per mode, checks in Go bbr's order |
//! | [`connect`] | `BOSH_ALL_PROXY`, the director client, director-mode SSH, the known_hosts rule |
//! | [`execute`] | runs an invocation, prints the error block and footers, exit codes |
//! | [`all_deployments`] | `bbr deployment --all-deployments` |
//! | [`artifact`] | `bbr artifact validate` / `list`: local artifacts, offline |
//! | [`metrics`] | `--metrics-file`: run metrics through bbr-metrics |
//! | [`director`] | the director-mode deployment source (`bosh/0` over plain SSH) |
//! | [`output`] | log lines and progress on stdout |
//! | [`signals`] | SIGINT and SIGTERM |
//!
//! The contract kept is in docs/cli.md.

pub mod all_deployments;
pub mod artifact;
pub mod commands;
pub mod connect;
pub mod director;
pub mod execute;
pub mod flags;
pub mod help;
pub mod metrics;
pub mod output;
pub mod parse;
pub mod resolve;
pub mod signals;
pub mod usage;
pub mod values;

use bbr_core::error::exit_code;
use parse::Request;
use resolve::Refusal;

/// The version printed by `bbr version` and given to metadata scripts as `BBR_VERSION`.
pub const VERSION: &str = match option_env!("BBR_BUILD_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Runs bbr with `args` (including the program name) and returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    let env = |name: &str| std::env::var(name).ok();
    let line = match parse::parse(&args[1.min(args.len())..], &env) {
        Ok(Request::Help(topic, code)) => {
            print!("{}", topic.render());
            return code;
        }
        Ok(Request::Version) => {
            println!("bbr version {VERSION}");
            return 0;
        }
        Ok(Request::Run(line)) => line,
        Err(rejection) => return rejection.report(),
    };
    let invocation = match resolve::resolve(line, &env) {
        Ok(invocation) => invocation,
        Err(Refusal::Usage(rejection)) => return rejection.report(),
        Err(Refusal::Invalid(sub, e)) => return execute::fail(sub, e.to_string()),
    };
    // The one runtime of the process.
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(execute::run(invocation)),
        Err(e) => {
            eprintln!("could not start the runtime: {e}");
            exit_code::GENERAL
        }
    }
}
