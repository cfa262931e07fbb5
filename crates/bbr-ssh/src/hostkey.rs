//! Host-key policies: known_hosts with accept-new semantics, a pinned key, or a set of
//! accepted keys.

use russh::keys::{Algorithm, HashAlg, PublicKey};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How the server's host key is verified.
#[derive(Clone, Debug)]
pub enum HostKeyPolicy {
    /// Check against a known_hosts file; record unknown hosts there (with a warning) and
    /// refuse a key that differs from the recorded one.
    KnownHosts(PathBuf),
    /// Accept exactly this key (deployment mode: the key the director reported).
    Pinned(PublicKey),
    /// Accept any one of these keys and nothing else (for example the keys of operator-given
    /// known_hosts lines). The connection prefers host-key algorithms of these keys, so that a
    /// server with several host keys presents one that is listed.
    AnyOf(Vec<PublicKey>),
}

impl HostKeyPolicy {
    /// Host-key algorithms in the order the client should offer them: for
    /// [`HostKeyPolicy::AnyOf`], the algorithms of the accepted keys first.
    pub(crate) fn preferred_algorithms(&self) -> Option<Vec<Algorithm>> {
        let HostKeyPolicy::AnyOf(keys) = self else {
            return None;
        };
        let default = russh::Preferred::DEFAULT.key;
        let accepted = |candidate: &Algorithm| {
            keys.iter().any(|k| match (k.algorithm(), candidate) {
                (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
                (own, candidate) => own == *candidate,
            })
        };
        let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) =
            default.iter().cloned().partition(accepted);
        first.extend(rest);
        Some(first)
    }
}

/// What host-key verification concluded, kept so that a refusal can be explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key matched a recorded or pinned one.
    Known,
    /// The host was unknown; its key was recorded in the file.
    Learned { fingerprint: String, file: PathBuf },
    /// The key differs from the recorded one.
    Changed {
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    /// The key differs from the pinned one.
    PinMismatch { fingerprint: String },
    /// The key is none of the accepted ones.
    NotListed {
        fingerprint: String,
        accepted: Vec<String>,
    },
    /// The known_hosts file could not be read or written.
    FileError { file: PathBuf, reason: String },
}

pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Decides about `key` presented by `host:port`.
pub(crate) fn verify(policy: &HostKeyPolicy, host: &str, port: u16, key: &PublicKey) -> Verdict {
    match policy {
        HostKeyPolicy::Pinned(pinned) => {
            if pinned.key_data() == key.key_data() {
                Verdict::Known
            } else {
                Verdict::PinMismatch {
                    fingerprint: fingerprint(key),
                }
            }
        }
        HostKeyPolicy::AnyOf(keys) => {
            if keys.iter().any(|k| k.key_data() == key.key_data()) {
                Verdict::Known
            } else {
                Verdict::NotListed {
                    fingerprint: fingerprint(key),
                    accepted: keys.iter().map(fingerprint).collect(),
                }
            }
        }
        HostKeyPolicy::KnownHosts(file) => {
            match russh::keys::check_known_hosts_path(host, port, key, file) {
                Ok(true) => Verdict::Known,
                Ok(false) => {
                    match russh::keys::known_hosts::learn_known_hosts_path(host, port, key, file) {
                        Ok(()) => Verdict::Learned {
                            fingerprint: fingerprint(key),
                            file: file.clone(),
                        },
                        Err(e) => Verdict::FileError {
                            file: file.clone(),
                            reason: e.to_string(),
                        },
                    }
                }
                Err(russh::keys::Error::KeyChanged { line }) => Verdict::Changed {
                    fingerprint: fingerprint(key),
                    file: file.clone(),
                    line,
                },
                Err(e) => Verdict::FileError {
                    file: file.clone(),
                    reason: e.to_string(),
                },
            }
        }
    }
}

/// The russh client handler: verifies the host key and records the verdict.
pub(crate) struct ClientHandler {
    pub policy: HostKeyPolicy,
    pub host: String,
    pub port: u16,
    pub verdict: Arc<Mutex<Option<Verdict>>>,
}

impl russh::client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            russh::keys::PublicKeyOrCertificate::Certificate(c) => {
                PublicKey::from(c.public_key().clone())
            }
        };
        let verdict = verify(&self.policy, &self.host, self.port, &key);
        let accepted = matches!(verdict, Verdict::Known | Verdict::Learned { .. });
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(verdict);
        }
        Ok(accepted)
    }
}
