//! `manual-backup CONFIG`: one backup run, then exit (see `service_backup::app::run_manual`).

use std::path::PathBuf;

use service_backup::lager::{LogFormat, Sink};

fn main() -> anyhow::Result<()> {
    let Some(config) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: manual-backup CONFIG_FILE");
        std::process::exit(service_backup::app::EXIT_FAILURE);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(service_backup::app::run_manual(
        &config,
        Sink::stdout(LogFormat::Legacy),
    ));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
