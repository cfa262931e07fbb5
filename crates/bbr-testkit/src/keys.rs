//! SSH key pairs made with the system `ssh-keygen`: client keys (shareable
//! between several [`Vm`](crate::Vm)s) and host keys.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// Key algorithm for client or host keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `ssh-ed25519` (the default).
    #[default]
    Ed25519,
    /// `ssh-rsa`, 3072 bits (signatures negotiated as `rsa-sha2-*`).
    Rsa,
    /// `ecdsa-sha2-nistp256`.
    Ecdsa,
}

impl KeyType {
    /// The key type name as it appears in `.pub` files and `known_hosts`.
    pub fn ssh_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::Rsa => "ssh-rsa",
            KeyType::Ecdsa => "ecdsa-sha2-nistp256",
        }
    }

    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ed25519 => &["-t", "ed25519"],
            KeyType::Rsa => &["-t", "rsa", "-b", "3072"],
            KeyType::Ecdsa => &["-t", "ecdsa", "-b", "256"],
        }
    }
}

/// Run `ssh-keygen` to create `path` and `path.pub` (no passphrase,
/// OpenSSH private key format, mode 0600). Existing files are replaced.
pub(crate) fn keygen(path: &Path, key_type: KeyType, comment: &str) -> io::Result<()> {
    // ssh-keygen asks before overwriting; generate next to the target and rename.
    let tmp = path.with_extension("keygen-tmp");
    let tmp_pub = pub_path(&tmp);
    let _ = fs::remove_file(&tmp);
    let _ = fs::remove_file(&tmp_pub);
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .args(key_type.keygen_args())
        .args(["-N", "", "-C", comment, "-f"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running ssh-keygen: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ssh-keygen {:?} failed ({}): {}",
            key_type,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    fs::rename(&tmp_pub, pub_path(path))?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// `<path>.pub`.
pub(crate) fn pub_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Read a `.pub` file and return its single line without the trailing newline.
pub(crate) fn read_pub(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(pub_path(path))?.trim_end().to_owned())
}

/// Prefix of client key directories: `bbr-testkit-key-<owner pid>-XXXXXX`.
pub(crate) const KEY_DIR_PREFIX: &str = "bbr-testkit-key-";

/// A client key pair in its own temporary directory.
///
/// Share one between several VMs with
/// [`VmOptions::client_key`](crate::VmOptions::client_key) (wrap it in an
/// [`Arc`](std::sync::Arc)), as BOSH does with its one key per deployment.
/// The directory is removed on drop unless `BBR_TESTKIT_KEEP=1`.
#[derive(Debug)]
pub struct ClientKey {
    dir: Option<TempDir>,
    path: PathBuf,
    key_type: KeyType,
    public: String,
}

impl ClientKey {
    /// Generate a new key pair of `key_type` (private key `client_key`, mode
    /// 0600, in OpenSSH format; public key `client_key.pub`).
    pub fn generate(key_type: KeyType) -> io::Result<ClientKey> {
        // The owner's PID in the name lets a later process remove the
        // directory if this one is killed before Drop (see registry).
        let prefix = format!("{KEY_DIR_PREFIX}{}-", std::process::id());
        let dir = tempfile::Builder::new().prefix(&prefix).tempdir()?;
        let path = dir.path().join("client_key");
        keygen(&path, key_type, "bbr-testkit-client")?;
        let public = read_pub(&path)?;
        Ok(ClientKey {
            dir: Some(dir),
            path,
            key_type,
            public,
        })
    }

    /// Path of the private key file (pass it to `ssh -i` or to bbr).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The private key file's content (OpenSSH PEM-armoured format).
    pub fn private_key_pem(&self) -> io::Result<String> {
        fs::read_to_string(&self.path)
    }

    /// The public key line (`ssh-ed25519 AAAA... bbr-testkit-client`).
    pub fn public_key_line(&self) -> &str {
        &self.public
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
}

impl Drop for ClientKey {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && crate::keep_requested()
        {
            let kept = dir.keep();
            eprintln!("bbr-testkit: keeping client key dir {}", kept.display());
        }
    }
}
