//! SSH transport for bbr, built on russh.
//!
//! One authenticated connection per host carries every command of a run as separate exec
//! channels (Go bbr opens a new TCP connection and handshake for each command). Commands are
//! never given a PTY, so stdout stays binary-clean and separate from stderr. Host keys are
//! checked: in director mode against a known_hosts file (an unknown host is accepted once and
//! recorded with a warning, a changed key is refused), or pinned to a key the BOSH director
//! returned. A connection that drops is re-established once for later commands, so that
//! unlock and cleanup still reach a VM after a network blip.

mod connection;
mod hostkey;
pub mod proxy;

pub use connection::{ConnectOptions, SshConnection, SshError};
pub use hostkey::HostKeyPolicy;
pub use proxy::{Dialer, ProxySpec};
