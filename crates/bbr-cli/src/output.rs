//! What the operator sees on stdout: `[bbr] YYYY/MM/DD HH:MM:SS LEVEL - msg` log lines (every
//! level on stdout, as Go bbr does), and transfer progress: a bar per artifact when stdout is
//! a terminal, otherwise `Copying backup for job <job> on <instance> -- N% complete` lines at
//! every 5%. Output can be paused (while the SIGINT question waits for an answer) and is
//! buffered meanwhile.

use bbr_core::report::{Level, Reporter, TransferProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

struct State {
    paused: bool,
    buffered: Vec<String>,
}

/// The bbr logger.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

struct Inner {
    debug: bool,
    state: Mutex<State>,
    bars: Option<MultiProgress>,
    /// `--all-deployments`: lines go to a per-deployment log file and a copy is kept to be
    /// printed if that deployment fails.
    file: Option<Mutex<(std::fs::File, String)>>,
}

/// Local time in Go's log layout.
fn timestamp() -> String {
    chrono::Local::now().format("%Y/%m/%d %H:%M:%S").to_string()
}

impl Logger {
    /// A logger printing DEBUG lines when `debug`; bars when stdout is a terminal.
    pub fn new(debug: bool) -> Self {
        let bars = std::io::stdout()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self {
            inner: Arc::new(Inner {
                debug,
                state: Mutex::new(State {
                    paused: false,
                    buffered: Vec::new(),
                }),
                bars,
                file: None,
            }),
        }
    }

    /// A logger writing to `path` (created or truncated, mode 0644) instead of stdout.
    pub fn to_file(path: &std::path::Path, debug: bool) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                debug,
                state: Mutex::new(State {
                    paused: false,
                    buffered: Vec::new(),
                }),
                bars: None,
                file: Some(Mutex::new((file, String::new()))),
            }),
        })
    }

    /// A logger that keeps its lines to itself (pre-backup-check for all deployments, where
    /// only the per-deployment verdicts are printed).
    pub fn quiet(debug: bool) -> Self {
        let logger = Self::new(debug);
        logger.pause();
        logger
    }

    /// Everything a file logger wrote (empty for a stdout logger).
    pub fn written(&self) -> String {
        self.inner
            .file
            .as_ref()
            .and_then(|f| f.lock().ok().map(|g| g.1.clone()))
            .unwrap_or_default()
    }

    /// Prints a line exactly as given (no prefix), honouring pause.
    pub fn print_raw(&self, line: &str) {
        let Ok(mut state) = self.inner.state.lock() else {
            return;
        };
        if state.paused {
            state.buffered.push(line.to_string());
            return;
        }
        self.emit(line);
    }

    fn emit(&self, line: &str) {
        if let Some(file) = &self.inner.file {
            if let Ok(mut guard) = file.lock() {
                let (f, copy) = &mut *guard;
                let _ = writeln!(f, "{line}");
                copy.push_str(line);
                copy.push('\n');
            }
            return;
        }
        match &self.inner.bars {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }

    /// Holds back every line until [`Logger::resume`].
    pub fn pause(&self) {
        if let Ok(mut s) = self.inner.state.lock() {
            s.paused = true;
        }
    }

    /// Prints what was held back and goes on printing.
    pub fn resume(&self) {
        let Ok(mut s) = self.inner.state.lock() else {
            return;
        };
        s.paused = false;
        for line in std::mem::take(&mut s.buffered) {
            self.emit(&line);
        }
    }
}

impl Reporter for Logger {
    fn wants(&self, level: Level) -> bool {
        level != Level::Debug || self.inner.debug
    }

    fn log(&self, level: Level, message: &str) {
        if level == Level::Debug && !self.inner.debug {
            return;
        }
        self.print_raw(&format!(
            "[bbr] {} {} - {}",
            timestamp(),
            level.as_str(),
            message
        ));
    }

    fn transfer(&self, job: &str, instance: &str, total: u64) -> Box<dyn TransferProgress> {
        match &self.inner.bars {
            Some(m) => {
                let bar = m.add(ProgressBar::new(total.max(1)));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{job} on {instance}"));
                Box::new(Bar { bar, total })
            }
            None => Box::new(PercentLines {
                logger: self.clone(),
                label: format!("Copying backup for job {job} on {instance}"),
                total,
                bytes: 0,
                logged: 0,
                done: false,
            }),
        }
    }
}

struct Bar {
    bar: ProgressBar,
    total: u64,
}

impl TransferProgress for Bar {
    fn advance(&mut self, bytes: u64) {
        let next = (self.bar.position() + bytes).min(self.total.max(1));
        self.bar.set_position(next);
    }

    fn finish(&mut self, _completed: bool) {
        self.bar.finish_and_clear();
    }
}

struct PercentLines {
    logger: Logger,
    label: String,
    total: u64,
    bytes: u64,
    logged: u64,
    done: bool,
}

impl TransferProgress for PercentLines {
    fn advance(&mut self, bytes: u64) {
        self.bytes += bytes;
        // 100% is said only by `finish`, once the copy really completed: the total is an
        // estimate (file sizes, without tar headers), reached before the stream ends.
        let pct = self
            .bytes
            .saturating_mul(100)
            .checked_div(self.total)
            .unwrap_or(100)
            .min(95);
        if pct >= self.logged + 5 {
            self.logged = pct - pct % 5;
            self.logger.log(
                Level::Info,
                &format!("{} -- {}% complete", self.label, self.logged),
            );
        }
    }

    fn finish(&mut self, completed: bool) {
        if completed && !self.done && self.bytes > 0 {
            self.logger
                .log(Level::Info, &format!("{} -- 100% complete", self.label));
        }
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress_lines(steps: &[u64], completed: bool) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let logger = Logger::to_file(&dir.path().join("log"), false).unwrap();
        let mut progress = logger.transfer("redis", "redis/0", 1000);
        for step in steps {
            progress.advance(*step);
        }
        progress.finish(completed);
        logger
            .written()
            .lines()
            .map(|l| l.split(" - ").nth(1).unwrap_or(l).to_string())
            .collect()
    }

    #[test]
    fn a_cut_copy_never_claims_100_percent() {
        let label = "Copying backup for job redis on redis/0";
        // More bytes than the estimate arrived (tar headers), then the stream broke.
        assert_eq!(
            progress_lines(&[520, 700], false),
            vec![
                format!("{label} -- 50% complete"),
                format!("{label} -- 95% complete")
            ]
        );
        assert_eq!(progress_lines(&[30], false), Vec::<String>::new());
    }

    #[test]
    fn a_completed_copy_says_100_percent_once() {
        let label = "Copying backup for job redis on redis/0";
        assert_eq!(
            progress_lines(&[100, 1200, 50], true),
            vec![
                format!("{label} -- 10% complete"),
                format!("{label} -- 95% complete"),
                format!("{label} -- 100% complete")
            ]
        );
    }
}
