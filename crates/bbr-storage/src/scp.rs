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
//!   empty directories, symlinks followed), streaming each file with bounded memory into a
//!   hidden temporary file next to its target, which is renamed into place only once the
//!   server has received exactly the expected number of bytes. A failed or cancelled file
//!   leaves neither a complete-looking file nor its temporary behind.

use crate::StorageError;
use bbr_core::commands::shell_quote;
use bbr_core::remote::{Output, Remote, RemoteError};
use bbr_ssh::{ConnectOptions, Dialer, HostKeyPolicy, SshConnection, SshError};
use futures::StreamExt;
use russh::keys::{HashAlg, PublicKey};
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
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

fn remote_join(base: &str, rel: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// What `upload_tree` will create: directories (parents first) and files, relative to the
/// remote base directory.
#[derive(Debug, Default)]
struct Plan {
    dirs: Vec<String>,
    files: Vec<PlannedFile>,
}

#[derive(Debug)]
struct PlannedFile {
    local: PathBuf,
    rel: String,
}

/// Lists `root` like `scp -r` would copy its top-level entries: symlinks followed, anything
/// that is neither a regular file nor a directory (or cannot be read) is an error.
fn plan_tree(root: &Path) -> Result<Plan, String> {
    let meta = std::fs::metadata(root)
        .map_err(|e| format!("cannot read local directory {}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let mut plan = Plan::default();
    let mut ancestors = vec![(meta.dev(), meta.ino())];
    walk(root, None, &mut ancestors, &mut plan)?;
    Ok(plan)
}

fn walk(
    dir: &Path,
    prefix: Option<&str>,
    ancestors: &mut Vec<(u64, u64)>,
    plan: &mut Plan,
) -> Result<(), String> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list local directory {}: {e}", dir.display()))?;
    let mut entries = Vec::new();
    for entry in listing {
        let entry =
            entry.map_err(|e| format!("cannot list local directory {}: {e}", dir.display()))?;
        entries.push(entry.file_name());
    }
    entries.sort();
    for name in entries {
        let path = dir.join(&name);
        let name = name
            .to_str()
            .ok_or_else(|| format!("local file name {path:?} is not valid UTF-8"))?;
        let rel = match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name.to_string(),
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| format!("cannot read local file {}: {e}", path.display()))?;
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                return Err(format!(
                    "local directory {} loops back to one of its parents (symbolic link loop)",
                    path.display()
                ));
            }
            plan.dirs.push(rel.clone());
            ancestors.push(id);
            walk(&path, Some(&rel), ancestors, plan)?;
            ancestors.pop();
        } else if meta.is_file() {
            plan.files.push(PlannedFile { local: path, rel });
        } else {
            return Err(format!(
                "local file {} is not a regular file or directory",
                path.display()
            ));
        }
    }
    Ok(())
}

/// The remote side of one file upload: receive stdin into `tmp`, check that exactly `size`
/// bytes arrived, give it the local file's permission bits (`mode`, as `scp` does for new
/// files), then rename to `dest`; on any failure (including stdin closed early because the
/// upload was cancelled) remove `tmp`.
fn receive_command(tmp: &str, dest: &str, size: u64, mode: u32) -> String {
    let script = format!(
        "t={tmp}; f={dest}; \
         if [ -d \"$f\" ]; then echo \"$f is a directory\" >&2; exit 1; fi; \
         if cat > \"$t\"; then \
           n=$(wc -c < \"$t\"); \
           if [ $n -eq {size} ]; then chmod {mode:o} \"$t\" && mv -f -- \"$t\" \"$f\" && exit 0; \
           else echo \"received $n of {size} bytes\" >&2; fi; \
         fi; \
         rm -f -- \"$t\"; exit 1",
        tmp = shell_quote(tmp),
        dest = shell_quote(dest),
        mode = mode & 0o777,
    );
    format!("sh -c {}", shell_quote(&script))
}

/// Reads a local file for sending; fails as soon as the upload is cancelled, counts the bytes
/// handed out and notices a file that ends before its size said.
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
        self.make_dirs(std::slice::from_ref(&base)).await
    }

    /// Creates remote directories, batching them into few commands.
    async fn make_dirs(&self, dirs: &[String]) -> Result<(), StorageError> {
        let mut batch = String::new();
        let mut first = None::<&str>;
        for dir in dirs {
            if batch.len() > MKDIR_BATCH_CHARS {
                self.run_checked(
                    &format!("mkdir -p --{batch}"),
                    &format!("creating remote directory {}", first.unwrap_or(dir)),
                )
                .await?;
                batch.clear();
                first = None;
            }
            first.get_or_insert(dir);
            batch.push(' ');
            batch.push_str(&shell_quote(dir));
        }
        if let Some(first) = first {
            let what = if dirs.len() == 1 {
                format!("creating remote directory {first}")
            } else {
                format!("creating remote directories (starting with {first})")
            };
            self.run_checked(&format!("mkdir -p --{batch}"), &what)
                .await?;
        }
        Ok(())
    }

    /// Copies every top-level entry of `local_dir` (dotfiles included) into `remote_dir`, like
    /// `scp -r <entry> user@server:<remote_dir>`: regular files, directories recursively (empty
    /// ones too), symlinks followed. `remote_dir` is created if missing.
    ///
    /// Each file is streamed (bounded memory) into a hidden temporary name in its target
    /// directory and renamed into place only when the server has received all of it, so an
    /// interrupted upload never leaves a complete-looking file; on error or cancellation the
    /// temporary is removed. An unreadable local file or directory (or one that is neither a
    /// file nor a directory) is an error naming its path, found before anything is sent when
    /// possible. Returns the number of file bytes uploaded; `Err(StorageError::Cancelled)`
    /// once `cancel` fires.
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
        let plan = tokio::task::spawn_blocking(move || plan_tree(&root))
            .await
            .map_err(|e| other(format!("listing {} failed: {e}", local_dir.display())))?
            .map_err(other)?;
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }

        let base = remote_base(remote_dir);
        let mut dirs = vec![base.clone()];
        dirs.extend(plan.dirs.iter().map(|d| remote_join(&base, d)));
        tokio::select! {
            result = self.make_dirs(&dirs) => result?,
            _ = cancel.cancelled() => return Err(StorageError::Cancelled),
        }

        // Stops the remaining files after the first failure, and all of them on cancel.
        let stop = cancel.child_token();
        let run = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        let mut uploads = futures::stream::iter(plan.files.into_iter().enumerate())
            .map(|(index, file)| {
                let tmp_dir = match file.rel.rsplit_once('/') {
                    Some((parent, _)) => remote_join(&base, parent),
                    None => base.clone(),
                };
                let tmp = remote_join(&tmp_dir, &format!(".bbr-partial-{run}-{index}"));
                let dest = remote_join(&base, &file.rel);
                let stop = stop.clone();
                self.upload_file(file.local, tmp, dest, stop)
            })
            .buffer_unordered(FILE_CONCURRENCY);

        let mut total = 0u64;
        let mut failure = None;
        while let Some(result) = uploads.next().await {
            match result {
                Ok(bytes) => total += bytes,
                Err(StorageError::Cancelled) => {}
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
            None => Ok(total),
        }
    }

    /// Uploads one local file to `dest` through the temporary `tmp`; returns its size.
    async fn upload_file(
        &self,
        local: PathBuf,
        tmp: String,
        dest: String,
        cancel: CancellationToken,
    ) -> Result<u64, StorageError> {
        let (local, tmp, dest) = (local.as_path(), tmp.as_str(), dest.as_str());
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let unreadable =
            |e: std::io::Error| other(format!("cannot read local file {}: {e}", local.display()));
        let file = File::open(local).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(other(format!(
                "local file {} is not a regular file",
                local.display()
            )));
        }
        let size = meta.len();
        let sent = Arc::new(AtomicU64::new(0));
        let shrank = Arc::new(AtomicBool::new(false));
        let reader = UploadReader {
            inner: file.take(size),
            cancel: cancel.clone(),
            sent: sent.clone(),
            shrank: shrank.clone(),
        };
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        let command = receive_command(tmp, dest, size, mode);
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
                self.remove_quietly(tmp).await;
                return Err(StorageError::Cancelled);
            }
        };
        let failed = |why: String| {
            other(format!(
                "uploading {} to {dest} on {} failed: {why}",
                local.display(),
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
                self.remove_quietly(tmp).await;
                if cancel.is_cancelled() {
                    return Err(StorageError::Cancelled);
                }
                Err(other(format!(
                    "reading local file {} failed: {source}",
                    local.display()
                )))
            }
            Err(e) => {
                self.remove_quietly(tmp).await;
                Err(failed(e.to_string()))
            }
        }
    }

    /// Removes a temporary remote file, ignoring failures (the connection may be gone) and
    /// giving up after [`CANCEL_GRACE`], so that cancelling stays prompt.
    async fn remove_quietly(&self, tmp: &str) {
        let command = format!("rm -f -- {}", shell_quote(tmp));
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
    fn remote_base_paths() {
        assert_eq!(remote_base("~"), ".");
        assert_eq!(remote_base("~/backups/"), "backups");
        assert_eq!(remote_base("/"), "/");
        assert_eq!(remote_base(""), ".");
        assert_eq!(remote_base("/a b/c/"), "/a b/c");
        assert_eq!(remote_join("/", "x"), "/x");
        assert_eq!(remote_join("/a", "x/y"), "/a/x/y");
    }
}
