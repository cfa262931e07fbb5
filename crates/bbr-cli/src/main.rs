//! The `bbr` binary: all behaviour lives in the `bbr_cli` library.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(bbr_cli::run(args));
}
