//! The `bbr` binary: all behaviour lives in the `bbr_cli` library.

fn main() {
    // Go's monotonic clock readings (in `Backup created of ... m=+1.23`) count from here.
    bbr_artifact::timefmt::mark_process_start();
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(bbr_cli::run(args));
}
