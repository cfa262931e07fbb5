//! What the bbr-ssh integration tests share: a connection to a test VM, its host key pinned.

use bbr_ssh::{ConnectOptions, Dialer, HostKeyPolicy, SshConnection};
use bbr_testkit::Vm;
use std::sync::Arc;

/// Options to reach `vm` as its login user, the host key pinned, any warning a test failure;
/// `root_runner` chooses one root process per VM or a `sudo` per command.
pub fn options(vm: &Vm, root_runner: bool) -> ConnectOptions {
    let key = russh::keys::parse_public_key_base64(
        vm.host_public_key_line()
            .split_whitespace()
            .nth(1)
            .expect("host key line"),
    )
    .expect("host key");
    ConnectOptions {
        host: vm.addr().to_string(),
        port: vm.port(),
        user: vm.user().to_string(),
        key: ConnectOptions::load_key(vm.client_key_path()).expect("client key"),
        host_key: HostKeyPolicy::Pinned(key),
        on_warning: Arc::new(|w| panic!("unexpected warning: {w}")),
        dialer: Dialer::Direct,
        root_runner,
    }
}

/// Connects with [`options`].
pub async fn connect(vm: &Vm, root_runner: bool) -> Arc<SshConnection> {
    SshConnection::connect(options(vm, root_runner))
        .await
        .expect("connect")
}
