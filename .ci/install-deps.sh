#!/usr/bin/env bash
# Install the system packages the bbr test suite needs on a fresh Debian 12
# machine (run as root). Idempotent and fast on reruns: packages already
# installed (per dpkg) are skipped, and `apt-get update` runs only when
# something is missing.
#
#   openssh-server  sshd for bbr-testkit's VMs      openssh-client  ssh, ssh-keygen
#   sudo            bbr runs every script with sudo redis-server    example workload
#   openssl         checksums / test fixtures       util-linux      unshare, mount, flock
#   procps          ps (scripts/stop-pid.sh)
#
# Also checks that `cargo nextest` is available (it is preinstalled on CI
# machines; this script does not install Rust tooling).
set -euo pipefail

PACKAGES=(openssh-server openssh-client sudo redis-server openssl util-linux procps)

die() { echo "install-deps: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'; }

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  log=$(mktemp)
  if ! apt-get install -y -qq "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$log"
  for p in "${missing[@]}"; do
    installed "$p" || die "$p still not installed"
  done
else
  echo "install-deps: all packages present (${PACKAGES[*]})"
fi

# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd && chmod 0755 /run/sshd

if ! command -v cargo >/dev/null 2>&1; then
  die "cargo not found on PATH (install a Rust toolchain first)"
fi
if ! nextest=$(cargo nextest --version 2>/dev/null | head -n1); then
  die "cargo-nextest is missing: install it (e.g. 'cargo install --locked cargo-nextest' or the prebuilt binary from https://get.nexte.st)"
fi
echo "install-deps: $nextest"
