//! Go `log`-style lines: `YYYY/MM/DD HH:MM:SS message` on stderr, local time.

use std::io::Write;

/// Formats one log entry (adds the timestamp, and a newline unless `msg` ends with one).
pub fn line(msg: &str) -> String {
    let ts = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
    if msg.ends_with('\n') {
        format!("{ts} {msg}")
    } else {
        format!("{ts} {msg}\n")
    }
}

/// Writes one log entry to stderr.
pub fn log(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line(msg).as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    #[test]
    fn format() {
        let l = super::line("hello");
        assert_eq!(l.len(), "2026/01/02 03:04:05 hello\n".len());
        assert_eq!(&l[4..5], "/");
        assert!(l.ends_with(" hello\n"));
        assert!(super::line("x\n").ends_with(" x\n"));
    }
}
