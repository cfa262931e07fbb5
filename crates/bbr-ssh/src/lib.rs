//! SSH transport for bbr, built on russh.
//!
//! One authenticated connection per host carries every command of a run as separate exec
//! channels (Go bbr opens a new TCP connection and handshake for each command). Commands are
//! never given a PTY, so stdout stays binary-clean and separate from stderr. Host keys are
//! checked: in director mode against a known_hosts file (an unknown host is accepted once and
//! recorded with a warning, a changed key is refused), or pinned to a key the BOSH director
//! returned. A connection that drops is re-established once for later commands, so that
//! unlock and cleanup still reach a VM after a network blip. Root commands other than
//! artifact streams go to one root process kept on the VM (`root_runner`), which saves each
//! of them an SSH session, a shell and a `sudo`.

mod connection;
mod hostkey;
pub mod proxy;
mod root_runner;

pub use connection::{ConnectOptions, SshConnection, SshError};
pub use hostkey::HostKeyPolicy;
pub use proxy::{DialError, Dialer, ProxyError, ProxySpec};
