//! SCP destination: a directory on an SSH server, written over one SSH connection.
//!
//! The original service-backup shelled out to `ssh-keyscan`, `ssh` and `scp` with the private
//! key and a known_hosts file written to (leaked) temporary files, scanned the host key on every
//! run when no fingerprint was configured, and passed the remote path unquoted to the remote
//! shell. This module instead:
//!
//! - parses the private key from the configuration text in memory (it never touches disk);
//! - verifies the host key against the configured known_hosts lines
//!   ([`ScpHostKeys::KnownHostsLines`]), or trusts the server on first use **once** and records
//!   its key in a file, refusing a different key later ([`ScpHostKeys::TrustOnFirstUse`]);
//! - opens one SSH connection (bbr's own russh transport) for the whole upload and runs every
//!   remote command on it as a separate channel, with every path shell-quoted;
//! - copies the tree like `scp -r <entry> user@server:<dir>` for every top-level entry (dotfiles,
//!   empty directories), streaming each file with bounded memory into a hidden temporary file
//!   next to its target, which is renamed into place only once the server has received
//!   exactly the expected number of bytes. A failed or cancelled file leaves neither a
//!   complete-looking file nor its temporary behind.
//! - walks the local tree by the rules of [`crate::local`]: special files are skipped, never
//!   opened; symbolic links are followed only while they stay inside the source folder.
//! - writes file names byte for byte: a name that is not UTF-8 or holds control characters
//!   (a newline) reaches the remote shell as `printf` octal escapes, never mangled.

use crate::StorageError;
use crate::local::{LocalFile, LocalTree, Skipped};
use bbr_remote::{Output, Remote, RemoteError, shell_quote};
use bbr_ssh::{ConnectOptions, Dialer, HostKeyPolicy, SshConnection, SshError};
use futures::StreamExt;
use russh::keys::{HashAlg, PublicKey};
use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Files uploaded at once, each on its own channel of the one connection.
const FILE_CONCURRENCY: usize = 4;

/// Longest `mkdir -p` command line sent at once (directories are batched).
const MKDIR_BATCH_CHARS: usize = 32 * 1024;

/// How long a cancelled file upload may take to close its channel by itself before it is
/// abandoned.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// The phrase OpenSSH prints when it refuses a host key; operators and tests look for it.
const HOST_KEY_REFUSED: &str = "Host key verification failed";

/// How the server's host key is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScpHostKeys {
    /// The `fingerprint` config value: one or more known_hosts lines
    /// (`host keytype base64 [comment]`, as `ssh-keyscan` prints them; a bare
    /// `keytype base64 [comment]` public key line is accepted too, `#` comments and blank lines
    /// are ignored). The server's key must equal one of these keys (the host field is not
    /// compared: the lines are configured for this destination), else the connection is
    /// refused with an error containing "Host key verification failed". An unparsable line is
    /// refused with the same phrase plus what is wrong, before connecting.
    KnownHostsLines(String),
    /// No fingerprint configured: trust the server on first use **once** and record its key in
    /// this file (known_hosts format, keyed by `server` / `[server]:port`); later runs accept
    /// only the recorded key(s) and refuse a changed one with an error naming the file and
    /// containing "Host key verification failed".
    TrustOnFirstUse {
        /// The known_hosts file the learned key is recorded in (created with its directory).
        record_file: PathBuf,
    },
}

/// Where to upload and how to log in.
#[derive(Clone)]
pub struct ScpSettings {
    /// Login user.
    pub user: String,
    /// Host name or address.
    pub server: String,
    /// SSH port (the caller applies the default 22).
    pub port: u16,
    /// The private key **text** (OpenSSH or PEM; ed25519, RSA, ECDSA). Parsed in memory and
    /// never written to disk.
    pub private_key_pem: String,
    /// Host-key verification.
    pub host_keys: ScpHostKeys,
}

impl std::fmt::Debug for ScpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScpSettings")
            .field("user", &self.user)
            .field("server", &self.server)
            .field("port", &self.port)
            .field("private_key_pem", &"<redacted>")
            .field("host_keys", &self.host_keys)
            .finish()
    }
}

impl ScpSettings {
    /// `user@server:port`, as used in messages.
    fn target(&self) -> String {
        format!("{}@{}:{}", self.user, self.server, self.port)
    }
}

/// A connected SCP destination (one SSH connection for the whole upload).
pub struct ScpDestination {
    conn: Arc<SshConnection>,
    target: String,
    learned: Option<String>,
}

impl std::fmt::Debug for ScpDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScpDestination")
            .field("target", &self.target)
            .field("learned", &self.learned)
            .finish_non_exhaustive()
    }
}

fn other(message: String) -> StorageError {
    StorageError::Other(message)
}

/// Whether `word` is an SSH public key algorithm name (`ssh-ed25519`, `ecdsa-sha2-nistp256`,
/// `sk-ssh-ed25519@openssh.com`, ...).
fn is_key_type(word: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"]
        .iter()
        .any(|p| word.starts_with(p))
}

/// Parses configured known_hosts lines into keys; the error says which line is wrong and why.
fn parse_known_hosts_lines(text: &str) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let shown: String = line.chars().take(120).collect();
        let bad = |why: String| format!("fingerprint line {} ({shown:?}): {why}", index + 1);
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields[0].starts_with('@') {
            return Err(bad(format!(
                "known_hosts markers such as {} are not supported",
                fields[0]
            )));
        }
        let (kind, blob) = if fields.len() >= 3 && is_key_type(fields[1]) {
            (fields[1], fields[2])
        } else if fields.len() >= 2 && is_key_type(fields[0]) {
            (fields[0], fields[1])
        } else if fields.len() >= 2 {
            return Err(bad(format!(
                "expected `host keytype base64`, but {:?} is not an SSH key type",
                fields.get(1).unwrap_or(&fields[0])
            )));
        } else {
            return Err(bad("expected `host keytype base64`".to_string()));
        };
        let key = PublicKey::from_openssh(&format!("{kind} {blob}"))
            .map_err(|e| bad(format!("the {kind} key is not valid: {e}")))?;
        if key.algorithm().as_str() != kind {
            return Err(bad(format!(
                "the key is of type {}, not {kind}",
                key.algorithm().as_str()
            )));
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("the fingerprint contains no known_hosts line".to_string());
    }
    Ok(keys)
}

/// Maps a remote path to what the remote shell should see: `~` and `~/x` (home directory,
/// where commands start) become `.` and `x`, a trailing `/` is dropped, an empty path is `.`.
fn remote_base(remote_dir: &str) -> String {
    let path = if remote_dir == "~" {
        "."
    } else if let Some(rest) = remote_dir.strip_prefix("~/") {
        rest
    } else {
        remote_dir
    };
    let trimmed = path.trim_end_matches('/');
    match (trimmed.is_empty(), path.starts_with('/')) {
        (true, true) => "/".to_string(),
        (true, false) => ".".to_string(),
        _ => trimmed.to_string(),
    }
}

/// `base/rel` as raw bytes (the remote path of a local relative name).
fn remote_join_bytes(base: &str, rel: &OsStr) -> Vec<u8> {
    let mut out = base.as_bytes().to_vec();
    if !base.ends_with('/') {
        out.push(b'/');
    }
    out.extend_from_slice(rel.as_bytes());
    out
}

/// A `printf` format (single-quoted) that prints exactly `bytes`: safe characters as they
/// are, everything else (including `%`, `\\`, quotes, newlines and non-UTF-8 bytes) as a
/// three-digit octal escape.
fn printf_format(bytes: &[u8]) -> String {
    let mut out = String::from("'");
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"/._-+=:,@ ".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out.push('\'');
    out
}

/// Whether `bytes` can be passed as an ordinary quoted shell word.
fn plain_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.chars().any(char::is_control))
}

/// `var=<bytes>` for the remote shell, byte for byte (command substitution would drop
/// trailing newlines, hence the `x` guard).
fn shell_assign(var: &str, bytes: &[u8]) -> String {
    match plain_text(bytes) {
        Some(text) => format!("{var}={}", shell_quote(text)),
        None => {
            let mut guarded = bytes.to_vec();
            guarded.push(b'x');
            format!(
                "{var}=$(printf {}); {var}=${{{var}%x}}",
                printf_format(&guarded)
            )
        }
    }
}

/// One shell word naming the directory `bytes` byte for byte (a trailing `/` guards
/// trailing newlines from command substitution).
fn shell_dir_word(bytes: &[u8]) -> String {
    match plain_text(bytes) {
        Some(text) => shell_quote(text),
        None => {
            let mut guarded = bytes.to_vec();
            guarded.push(b'/');
            format!("\"$(printf {})\"", printf_format(&guarded))
        }
    }
}

/// What [`ScpDestination::upload_walked`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TreeUpload {
    /// File bytes uploaded.
    pub bytes: u64,
    /// Files left out at upload time because they changed into something that is not
    /// uploaded by rule since the walk (see [`crate::local::LocalTree::open`]).
    pub skipped: Vec<Skipped>,
}

/// The remote side of one file upload: receive stdin into `tmp`, check that exactly `size`
/// bytes arrived, give it the local file's permission bits (`mode`, as `scp` does for new
/// files), then rename to `dest`; on any failure (including stdin closed early because the
/// upload was cancelled) remove `tmp`.
fn receive_command(tmp: &[u8], dest: &[u8], size: u64, mode: u32) -> String {
    let script = format!(
        "{tmp}; {dest}; \
         if [ -d \"$f\" ]; then echo \"$f is a directory\" >&2; exit 1; fi; \
         if cat > \"$t\"; then \
           n=$(wc -c < \"$t\"); \
           if [ $n -eq {size} ]; then chmod {mode:o} \"$t\" && mv -f -- \"$t\" \"$f\" && exit 0; \
           else echo \"received $n of {size} bytes\" >&2; fi; \
         fi; \
         rm -f -- \"$t\"; exit 1",
        tmp = shell_assign("t", tmp),
        dest = shell_assign("f", dest),
        mode = mode & 0o777,
    );
    format!("sh -c {}", shell_quote(&script))
}

/// Reads a local file for sending (at most the size seen when it was opened, so a growing file
/// sends that prefix); fails as soon as the upload is cancelled, counts the bytes handed out
/// and notices a file that ends before its size said.
struct UploadReader {
    inner: std::io::Take<File>,
    cancel: CancellationToken,
    sent: Arc<AtomicU64>,
    shrank: Arc<AtomicBool>,
}

impl Read for UploadReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(std::io::Error::other("upload cancelled"));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            self.shrank.store(true, Ordering::Relaxed);
        }
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl ScpDestination {
    /// Parses the key, verifies the host key and logs in: one SSH connection for the whole
    /// upload.
    pub async fn connect(settings: ScpSettings) -> Result<ScpDestination, StorageError> {
        let target = settings.target();
        let key = russh::keys::decode_secret_key(&settings.private_key_pem, None)
            .map(Arc::new)
            .map_err(|e| {
                other(format!(
                    "scp destination {target}: the private key (`key`) cannot be used: {e}"
                ))
            })?;

        let learned = Arc::new(AtomicBool::new(false));
        // For trust on first use: the file the keys were recorded in, if this server is
        // already known (then only the recorded keys are accepted).
        let mut recorded_in: Option<&Path> = None;
        let policy = match &settings.host_keys {
            ScpHostKeys::KnownHostsLines(text) => {
                let keys = parse_known_hosts_lines(text)
                    .map_err(|why| other(format!("{HOST_KEY_REFUSED} for {target}: {why}")))?;
                HostKeyPolicy::AnyOf(keys)
            }
            ScpHostKeys::TrustOnFirstUse { record_file } => {
                let keys = russh::keys::known_hosts::known_host_keys_path(
                    &settings.server,
                    settings.port,
                    record_file,
                )
                .map_err(|e| {
                    other(format!(
                        "{HOST_KEY_REFUSED} for {target}: cannot read the recorded host keys in {}: {e}",
                        record_file.display()
                    ))
                })?;
                if keys.is_empty() {
                    HostKeyPolicy::KnownHosts(record_file.clone())
                } else {
                    recorded_in = Some(record_file);
                    HostKeyPolicy::AnyOf(keys.into_iter().map(|(_, k)| k).collect())
                }
            }
        };

        let flag = learned.clone();
        let options = ConnectOptions {
            host: settings.server.clone(),
            port: settings.port,
            user: settings.user.clone(),
            key,
            host_key: policy,
            on_warning: Arc::new(move |_| flag.store(true, Ordering::SeqCst)),
            dialer: Dialer::Direct,
            root_runner: false,
        };
        let conn = SshConnection::connect(options)
            .await
            .map_err(|e| match e {
                SshError::HostKey(message) => {
                    let message = match message.strip_prefix("host key verification failed") {
                        Some(rest) => format!("{HOST_KEY_REFUSED}{rest}"),
                        None => message,
                    };
                    match recorded_in {
                        Some(file) => other(format!(
                            "{message}. The key recorded in {} when this server was first trusted differs; if the server's host key was changed on purpose, remove its line from {} (or configure the destination's fingerprint)",
                            file.display(),
                            file.display()
                        )),
                        None => other(message),
                    }
                }
                other_error => other(format!("scp destination {target}: {other_error}")),
            })?;

        let learned = if learned.load(Ordering::SeqCst) {
            match &settings.host_keys {
                ScpHostKeys::TrustOnFirstUse { record_file } => {
                    russh::keys::known_hosts::known_host_keys_path(
                        &settings.server,
                        settings.port,
                        record_file,
                    )
                    .ok()
                    .and_then(|keys| keys.last().map(|(_, k)| k.fingerprint(HashAlg::Sha256)))
                    .map(|f| f.to_string())
                }
                ScpHostKeys::KnownHostsLines(_) => None,
            }
        } else {
            None
        };
        Ok(ScpDestination {
            conn,
            target,
            learned,
        })
    }

    /// The fingerprint (`SHA256:...`) of the host key trusted on first use and recorded by
    /// this connection, if it recorded one (the caller logs it).
    pub fn learned_host_key(&self) -> Option<String> {
        self.learned.clone()
    }

    async fn run_checked(&self, command: &str, what: &str) -> Result<Output, StorageError> {
        let output = self
            .conn
            .run(command)
            .await
            .map_err(|e| other(format!("{what} on {} failed: {e}", self.target)))?;
        if !output.success() {
            return Err(other(format!(
                "{what} on {} failed (exit status {}): {}",
                self.target,
                output.exit_code,
                output.stderr_text()
            )));
        }
        Ok(output)
    }

    /// Creates `remote_dir` and its parents (`mkdir -p`; the path is shell-quoted, so spaces
    /// and quotes work; `~/` means the login user's home directory).
    pub async fn make_dir(&self, remote_dir: &str) -> Result<(), StorageError> {
        let base = remote_base(remote_dir);
        self.make_dirs(&[base.into_bytes()]).await
    }

    /// Creates remote directories (raw byte names), batching them into few commands.
    async fn make_dirs(&self, dirs: &[Vec<u8>]) -> Result<(), StorageError> {
        let mut batch = String::new();
        let mut first = None::<&[u8]>;
        for dir in dirs {
            if batch.len() > MKDIR_BATCH_CHARS {
                let shown = String::from_utf8_lossy(first.unwrap_or(dir)).into_owned();
                self.run_checked(
                    &format!("mkdir -p --{batch}"),
                    &format!("creating remote directory {shown}"),
                )
                .await?;
                batch.clear();
                first = None;
            }
            first.get_or_insert(dir);
            batch.push(' ');
            batch.push_str(&shell_dir_word(dir));
        }
        if let Some(first) = first {
            let shown = String::from_utf8_lossy(first);
            let what = if dirs.len() == 1 {
                format!("creating remote directory {shown}")
            } else {
                format!("creating remote directories (starting with {shown})")
            };
            self.run_checked(&format!("mkdir -p --{batch}"), &what)
                .await?;
        }
        Ok(())
    }

    /// Walks `local_dir` ([`crate::local::walk`]) and uploads it with
    /// [`upload_walked`](Self::upload_walked). Returns the number of file bytes uploaded;
    /// entries skipped by rule are left out (walk first and call `upload_walked` to learn
    /// which).
    pub async fn upload_tree(
        &self,
        local_dir: &Path,
        remote_dir: &str,
        cancel: &CancellationToken,
    ) -> Result<u64, StorageError> {
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let root = local_dir.to_path_buf();
        let tree = tokio::task::spawn_blocking(move || crate::local::walk(&root))
            .await
            .map_err(|e| other(format!("listing {} failed: {e}", local_dir.display())))??;
        Ok(self.upload_walked(&tree, remote_dir, cancel).await?.bytes)
    }

    /// Copies every top-level entry of a walked tree (dotfiles included) into `remote_dir`,
    /// like `scp -r <entry> user@server:<remote_dir>`: regular files, directories recursively
    /// (empty ones too), symbolic links that stay inside the tree followed. `remote_dir` is
    /// created if missing. Names are written byte for byte.
    ///
    /// Each file is streamed (bounded memory) into a hidden temporary name in its target
    /// directory and renamed into place only when the server has received all of it, so an
    /// interrupted upload never leaves a complete-looking file; on error or cancellation the
    /// temporary is removed. An unreadable local file is an error naming its path; a file that
    /// turned into a special file or a link leaving the tree since the walk is skipped and
    /// reported in [`TreeUpload::skipped`]. `Err(StorageError::Cancelled)` once `cancel`
    /// fires.
    pub async fn upload_walked(
        &self,
        tree: &LocalTree,
        remote_dir: &str,
        cancel: &CancellationToken,
    ) -> Result<TreeUpload, StorageError> {
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let base = remote_base(remote_dir);
        let mut dirs = vec![base.clone().into_bytes()];
        dirs.extend(tree.dirs.iter().map(|d| remote_join_bytes(&base, d)));
        tokio::select! {
            result = self.make_dirs(&dirs) => result?,
            _ = cancel.cancelled() => return Err(StorageError::Cancelled),
        }

        // Stops the remaining files after the first failure, and all of them on cancel.
        let stop = cancel.child_token();
        let run = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        let mut uploads = futures::stream::iter(0..tree.files.len())
            .map(|index| {
                let file = &tree.files[index];
                let rel = file.relative.as_bytes();
                let tmp_dir = match rel.iter().rposition(|b| *b == b'/') {
                    Some(slash) => remote_join_bytes(&base, OsStr::from_bytes(&rel[..slash])),
                    None => base.clone().into_bytes(),
                };
                let mut tmp = tmp_dir;
                tmp.extend_from_slice(format!("/.bbr-partial-{run}-{index}").as_bytes());
                let dest = remote_join_bytes(&base, &file.relative);
                let stop = stop.clone();
                self.upload_file(tree, file, tmp, dest, stop)
            })
            .buffer_unordered(FILE_CONCURRENCY);

        let mut done = TreeUpload::default();
        let mut failure = None;
        while let Some(result) = uploads.next().await {
            match result {
                Ok(bytes) => done.bytes += bytes,
                Err(StorageError::Cancelled) => {}
                Err(StorageError::NotUploadable(skipped)) => done.skipped.push(skipped),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                    stop.cancel();
                }
            }
        }
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Uploads one local file to `dest` through the temporary `tmp`; returns its size.
    async fn upload_file(
        &self,
        tree: &LocalTree,
        file: &LocalFile,
        tmp: Vec<u8>,
        dest: Vec<u8>,
        cancel: CancellationToken,
    ) -> Result<u64, StorageError> {
        let local = file.path.as_path();
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let opened = tree.open(file)?;
        let size = opened.size;
        let sent = Arc::new(AtomicU64::new(0));
        let shrank = Arc::new(AtomicBool::new(false));
        let reader = UploadReader {
            inner: opened.file.take(size),
            cancel: cancel.clone(),
            sent: sent.clone(),
            shrank: shrank.clone(),
        };
        let command = receive_command(&tmp, &dest, size, opened.mode);
        let upload = self.conn.run_with_stdin(&command, Box::new(reader));
        tokio::pin!(upload);

        let finished = tokio::select! {
            result = &mut upload => Some(result),
            _ = cancel.cancelled() => None,
        };
        let result = match finished {
            Some(result) => result,
            None => {
                // The reader fails on its next read, which closes the channel; the remote
                // side then sees too few bytes and removes the temporary itself. Removing it
                // from here as well covers a remote side that never got that far.
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut upload).await;
                self.remove_quietly(&tmp).await;
                return Err(StorageError::Cancelled);
            }
        };
        let failed = |why: String| {
            other(format!(
                "uploading {} to {} on {} failed: {why}",
                local.display(),
                String::from_utf8_lossy(&dest),
                self.target
            ))
        };
        match result {
            Ok(output) if output.success() => Ok(size),
            Ok(output) => {
                if shrank.load(Ordering::Relaxed) {
                    Err(failed(format!(
                        "the local file shrank while it was read ({} of {size} bytes)",
                        sent.load(Ordering::Relaxed)
                    )))
                } else {
                    Err(failed(format!(
                        "exit status {}: {}",
                        output.exit_code,
                        output.stderr_text()
                    )))
                }
            }
            Err(RemoteError::Source { source, .. }) => {
                self.remove_quietly(&tmp).await;
                if cancel.is_cancelled() {
                    return Err(StorageError::Cancelled);
                }
                Err(other(format!(
                    "reading local file {} failed: {source}",
                    local.display()
                )))
            }
            Err(e) => {
                self.remove_quietly(&tmp).await;
                Err(failed(e.to_string()))
            }
        }
    }

    /// Removes a temporary remote file, ignoring failures (the connection may be gone) and
    /// giving up after [`CANCEL_GRACE`], so that cancelling stays prompt.
    async fn remove_quietly(&self, tmp: &[u8]) {
        let command = format!("{}; rm -f -- \"$t\"", shell_assign("t", tmp));
        let _ = tokio::time::timeout(CANCEL_GRACE, self.conn.run(&command)).await;
    }

    /// Closes the SSH connection.
    pub async fn disconnect(self) {
        self.conn.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKue6+71ZxoIMivmlx/n+tfqi+QzM0nEoVAMK4LjFbN3";

    #[test]
    fn parses_keyscan_output_and_bare_keys() {
        let text = format!(
            "# 127.0.0.1:22 SSH-2.0-OpenSSH_9.6\n\n[127.0.0.1]:2222 {ED25519} comment\n{ED25519}\n"
        );
        assert_eq!(parse_known_hosts_lines(&text).unwrap().len(), 2);
    }

    #[test]
    fn refuses_invalid_lines() {
        let e = parse_known_hosts_lines("localhost ssh-rsa totally-invalid").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(e.contains("totally-invalid"), "{e}");
        let e = parse_known_hosts_lines("localhost").unwrap_err();
        assert!(e.contains("expected"), "{e}");
        let e = parse_known_hosts_lines("").unwrap_err();
        assert!(e.contains("no known_hosts line"), "{e}");
        let blob = ED25519.split(' ').nth(1).unwrap();
        let e = parse_known_hosts_lines(&format!("h ssh-rsa {blob}")).unwrap_err();
        assert!(e.contains("ssh-rsa"), "{e}");
    }

    #[test]
    fn odd_names_reach_the_shell_byte_for_byte() {
        assert_eq!(shell_assign("f", b"/a b/c"), "f='/a b/c'");
        let odd = b"/d/caf\xff\nname\n";
        let cmd = format!("{}; printf %s \"$f\"", shell_assign("f", odd));
        assert!(cmd.is_ascii(), "{cmd}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(out.stdout, odd, "{cmd}");
        let word = shell_dir_word(b"we'ird%s\\\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"we'ird%s\\\n/");
    }

    #[test]
    fn remote_base_paths() {
        assert_eq!(remote_base("~"), ".");
        assert_eq!(remote_base("~/backups/"), "backups");
        assert_eq!(remote_base("/"), "/");
        assert_eq!(remote_base(""), ".");
        assert_eq!(remote_base("/a b/c/"), "/a b/c");
        assert_eq!(remote_join_bytes("/", OsStr::new("x")), b"/x");
        assert_eq!(remote_join_bytes("/a", OsStr::new("x/y")), b"/a/x/y");
    }
}
