#!/usr/bin/env bash
# Start one bbr test "VM": a private, key-only OpenSSH sshd running as root on
# ADDR:PORT inside its own mount namespace, where STATEDIR/var-vcap is
# bind-mounted on /var/vcap (so the VM has its own /var/vcap/jobs and
# /var/vcap/store, readable and writable from the host under STATEDIR).
# Shell counterpart of bbr-testkit's `Vm` for demos and benchmarks.
#
# usage: start-vm.sh STATEDIR ADDR PORT        prints the sshd PID on stdout
#   STATEDIR  per-VM directory (created; absolute or relative)
#   ADDR      loopback address, e.g. 127.100.0.1 (all of 127/8 is local)
#   PORT      TCP port, e.g. 2222
# env:
#   SSH_USER       login user (default vcap; created if missing, NOPASSWD sudo
#                  unless NO_SUDO=1)
#   NO_SUDO=1      do not grant sudo (the user must not already have it)
#   KEY_TYPE       client key type if STATEDIR/client_key is created:
#                  ed25519 (default) | rsa (3072) | ecdsa (nistp256)
#   HOST_KEY_TYPE  host key type, same values (default ed25519)
#   CLIENT_KEY     use this existing private key (its .pub must exist) instead
#                  of STATEDIR/client_key
#
# Files: STATEDIR/{sshd_config,sshd.log,sshd.pid,host_key{,.pub},
#   client_key{,.pub},known_hosts,authorized_keys/USER,var-vcap/{jobs,store}}
# Connect:  ssh -i STATEDIR/client_key -p PORT -o UserKnownHostsFile=STATEDIR/known_hosts \
#               vcap@ADDR 'sudo -n ls /var/vcap/jobs'
# Stop:     scripts/stop-pid.sh PID
set -euo pipefail
umask 022   # new dirs 0755, keys are 0600 anyway (ssh-keygen)

die() { echo "start-vm.sh: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: start-vm.sh STATEDIR ADDR PORT"
STATEDIR=$1; ADDR=$2; PORT=$3
[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $PORT =~ ^[0-9]+$ ]] || die "bad port: $PORT"
SSH_USER=${SSH_USER:-vcap}
SSHD=$(command -v sshd || true)
[ -x "$SSHD" ] || SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || die "sshd not found (apt-get install openssh-server)"

keygen_args() {
  case ${1:-ed25519} in
    ed25519) echo "-t ed25519" ;;
    rsa) echo "-t rsa -b 3072" ;;
    ecdsa) echo "-t ecdsa -b 256" ;;
    *) die "unknown key type: $1" ;;
  esac
}

mkdir -p "$STATEDIR"
STATEDIR=$(cd "$STATEDIR" && pwd)
# 0755: sshd reads authorized_keys with the login user's rights
chmod 0755 "$STATEDIR"
mkdir -p "$STATEDIR/var-vcap/jobs" "$STATEDIR/var-vcap/store" "$STATEDIR/authorized_keys"
mkdir -p /var/vcap /run/sshd   # bind-mount target; sshd privsep dir
# sshd reads authorized_keys as the login user: every parent must be traversable by it
d=$STATEDIR
while [ "$d" != / ]; do
  d=$(dirname "$d")
  [ "$(( 0$(stat -c %a "$d") & 01 ))" -ne 0 ] || die "$d is not traversable by other users (mode $(stat -c %a "$d")); sshd could not read $STATEDIR/authorized_keys"
done

# Login user, created under the same lock bbr-testkit uses.
mkdir -p /tmp/bbr-testkit
(
  flock 9
  if ! id "$SSH_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -p '*' "$SSH_USER"
  fi
  # '!' (locked) hashes are refused by sshd with UsePAM no
  if [ "$(getent shadow "$SSH_USER" | cut -d: -f2 | cut -c1)" = '!' ]; then
    usermod -p '*' "$SSH_USER"
  fi
  SUDOERS=/etc/sudoers.d/90-$SSH_USER
  if [ "${NO_SUDO:-0}" = 1 ]; then
    [ ! -e "$SUDOERS" ] || die "$SSH_USER must not have sudo but $SUDOERS exists"
  else
    command -v sudo >/dev/null || die "sudo not installed"
    want="$SSH_USER ALL=(ALL) NOPASSWD:ALL"
    if [ "$(cat "$SUDOERS" 2>/dev/null)" != "$want" ]; then
      tmp=/etc/sudoers.d/.90-$SSH_USER.$$   # names with a dot are ignored by sudo
      echo "$want" > "$tmp" && chmod 0440 "$tmp" && mv -f "$tmp" "$SUDOERS"
    fi
  fi
) 9>/tmp/bbr-testkit/users.lock

if [ -n "${CLIENT_KEY:-}" ]; then
  [ -f "$CLIENT_KEY" ] && [ -f "$CLIENT_KEY.pub" ] || die "CLIENT_KEY $CLIENT_KEY (or .pub) missing"
else
  CLIENT_KEY=$STATEDIR/client_key
  # shellcheck disable=SC2046
  [ -f "$CLIENT_KEY" ] || ssh-keygen -q $(keygen_args "${KEY_TYPE:-}") -N '' -C bbr-vm-client -f "$CLIENT_KEY"
fi
HOST_KEY=$STATEDIR/host_key
# shellcheck disable=SC2046
[ -f "$HOST_KEY" ] || ssh-keygen -q $(keygen_args "${HOST_KEY_TYPE:-}") -N '' -C bbr-vm-host -f "$HOST_KEY"
cp "$CLIENT_KEY.pub" "$STATEDIR/authorized_keys/$SSH_USER"
chmod 0644 "$STATEDIR/authorized_keys/$SSH_USER"
# known_hosts line as OpenSSH writes it (non-22 ports in brackets)
read -r ktype kblob _ < "$HOST_KEY.pub"
if [ "$PORT" = 22 ]; then hostpat=$ADDR; else hostpat="[$ADDR]:$PORT"; fi
echo "$hostpat $ktype $kblob" > "$STATEDIR/known_hosts"

cat > "$STATEDIR/sshd_config" <<CFG
# bbr test VM (scripts/start-vm.sh)
ListenAddress $ADDR
Port $PORT
AddressFamily inet
HostKey $HOST_KEY
PidFile $STATEDIR/sshd.pid
AuthorizedKeysFile $STATEDIR/authorized_keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxSessions 64
MaxStartups 100:30:200
Subsystem sftp internal-sftp
LogLevel INFO
CFG
"$SSHD" -t -f "$STATEDIR/sshd_config" || die "sshd rejected $STATEDIR/sshd_config"

LOG=$STATEDIR/sshd.log
offset=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
# setsid: detach from our session; unshare: private mount namespace;
# sh -c ... exec: bind /var/vcap, then become sshd (the PID stays the same).
# -D: stay in the foreground (so $! is sshd), -e: log to stderr.
# shellcheck disable=SC2016
setsid unshare --mount --propagation private -- /bin/sh -c \
  'mount --bind "$1" /var/vcap && exec "$2" -D -e -f "$3"' bbr-vm \
  "$STATEDIR/var-vcap" "$SSHD" "$STATEDIR/sshd_config" >>"$LOG" 2>&1 </dev/null &
PID=$!

# Wait (≤ 30 s) for sshd to listen; fail early if it exits.
ready="Server listening on $ADDR port $PORT."
for _ in $(seq 1 3000); do
  if tail -c +"$((offset + 1))" "$LOG" | grep -qF "$ready"; then
    echo "$PID"
    exit 0
  fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.01
done
tail -c +"$((offset + 1))" "$LOG" >&2
kill -KILL "$PID" 2>/dev/null || true
die "sshd on $ADDR:$PORT did not start"
